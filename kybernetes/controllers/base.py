"""The shape every controller has (client-go's controller pattern):

informers fill caches and turn events into keys on a rate-limited work queue; N workers
take keys and call `reconcile(key)`, which reads the cache (or the API) and converges
the world for that one key, idempotently.  Returning normally forgets the key's
backoff; raising `Requeue(after)` re-adds it after a delay; raising anything else
logs and re-adds it with per-key exponential backoff.  Controllers never poll.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Optional

from kybernetes.client.errors import ClientError
from kybernetes.client.events import EventBroadcaster, EventRecorder
from kybernetes.client.informer import Informer, object_key
from kybernetes.client.metrics import controller_metrics
from kybernetes.client.rest import Client, ResourceHandle
from kybernetes.client.workqueue import RateLimiter, ShutDown, WorkQueue

__all__ = ["Controller", "Requeue", "ReconcileError", "InformerFactory"]

log = logging.getLogger("kybernetes.controllers")

Obj = dict[str, Any]


def _being_cancelled() -> bool:
    """Whether the running task has a cancellation request pending (Task.cancelling)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Requeue(Exception):
    """Raised by reconcile(): not an error, but look at this key again after `after`
    seconds (or with rate-limited backoff when `after` is None)."""

    def __init__(self, after: Optional[float] = None, reason: str = "") -> None:
        super().__init__(reason or (f"requeue after {after}s" if after is not None else "requeue"))
        self.after = after


class ReconcileError(Exception):
    """An expected failure of reconcile (logged without a traceback, then retried
    with backoff)."""


class InformerFactory:
    """Shared informers: one per (resource, namespace, selectors) however many
    controllers ask, so each resource is listed and watched once per process."""

    def __init__(self, client: Client, *, resync: float = 0) -> None:
        self.client = client
        self.resync = resync
        self._informers: dict[tuple[Any, ...], Informer] = {}
        self._started = False

    def informer(
        self,
        group: str,
        version: str,
        resource: str,
        *,
        namespace: Optional[str] = None,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
    ) -> Informer:
        key = (group, version, resource, namespace, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            handle = self.client.resource(group, version, resource)
            inf = Informer(handle, namespace, label_selector, self.resync, field_selector=field_selector)
            self._informers[key] = inf
            if self._started:
                inf.start()
        return inf

    def start(self) -> None:
        self._started = True
        for inf in self._informers.values():
            inf.start()

    async def wait_synced(self, timeout: Optional[float] = None) -> bool:
        results = await asyncio.gather(*(inf.wait_synced(timeout) for inf in self._informers.values()))
        return all(results)

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()))

    def __iter__(self):
        return iter(self._informers.values())


class Controller:
    """Base class: subclasses set `name`, register informers and handlers in
    `setup()`, and implement `reconcile(key)`."""

    name: str = "controller"
    workers: int = 1
    # reportingController of its Events (upstream's event source); default "<name>-controller"
    event_source: str = ""

    def __init__(
        self,
        client: Client,
        informers: Optional[InformerFactory] = None,
        *,
        workers: Optional[int] = None,
        rate_limiter: Optional[RateLimiter] = None,
        events: Optional[EventBroadcaster] = None,
    ) -> None:
        self.client = client
        self._own_events = events is None
        self.event_broadcaster = events or EventBroadcaster(client)
        self.recorder: EventRecorder = self.event_broadcaster.recorder(self.event_source or f"{self.name}-controller")
        self.informers = informers or InformerFactory(client)
        self._own_informers = informers is None
        if workers is not None:
            self.workers = workers
        self.queue: WorkQueue[str] = WorkQueue(rate_limiter, name=self.name)
        self.metrics = controller_metrics(self.name)
        self._tasks: list[asyncio.Task[None]] = []
        self._watched: list[Informer] = []
        self.log = logging.getLogger(f"kybernetes.controllers.{self.name}")
        self.setup()

    # ------------------------------------------------------------------ to override
    def setup(self) -> None:
        """Create informers (self.watch(...)) and hook handlers; called from __init__."""

    async def reconcile(self, key: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def watch(
        self,
        group: str,
        version: str,
        resource: str,
        *,
        namespace: Optional[str] = None,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        enqueue: Optional[Callable[[Obj], Optional[str]]] = object_key,
    ) -> Informer:
        """A shared informer this controller waits for; unless `enqueue` is None, every
        add/update/delete enqueues enqueue(obj) (skipped when it returns None)."""
        inf = self.informers.informer(group, version, resource, namespace=namespace,
                                      label_selector=label_selector, field_selector=field_selector)
        self._watched.append(inf)
        if enqueue is not None:
            def one(obj: Obj) -> None:
                key = enqueue(obj)
                if key is not None:
                    self.queue.add(key)

            inf.add_handlers(on_add=one, on_update=lambda old, new: one(new), on_delete=one)
        return inf

    def resource(self, group: str, version: str, resource: str) -> ResourceHandle:
        return self.client.resource(group, version, resource)

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, *, sync_timeout: Optional[float] = None) -> None:
        """Start the informers (if this controller owns them), wait for its caches,
        then start the workers."""
        if self._own_informers:
            self.informers.start()
        for inf in self._watched:
            inf.start()  # idempotent; shared factories may have been started already
        for inf in self._watched:
            if not await inf.wait_synced(sync_timeout):
                raise TimeoutError(f"{self.name}: informer {inf.name} did not sync")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(i), name=f"{self.name} worker {i}") for i in range(self.workers)]
        self.log.info("started with %d workers", self.workers)

    async def stop(self) -> None:
        self.queue.shutdown()
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_informers:
            await self.informers.stop()
        await self.on_stop()
        if self._own_events:
            await self.event_broadcaster.shutdown()

    async def on_stop(self) -> None:
        """Release what the controller holds beyond workers and informers."""

    def _failed(self, key: str, e: BaseException) -> None:
        self.metrics.results["error"].inc()
        self.metrics.errors.inc()
        retry = self.queue.num_requeues(key) + 1
        if isinstance(e, (ReconcileError, ClientError)):
            self.log.warning("reconcile %r failed (retry %d): %s", key, retry, e)
        else:
            self.log.error("reconcile %r failed (retry %d)", key, retry, exc_info=e)
        self.queue.add_rate_limited(key)

    async def _worker(self, n: int) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.reconcile(key)
            except Requeue as r:
                if r.after is None:
                    self.metrics.results["requeue"].inc()
                    self.queue.add_rate_limited(key)
                else:
                    self.metrics.results["requeue_after"].inc()
                    self.queue.forget(key)
                    self.queue.add_after(key, r.after)
            except asyncio.CancelledError:
                if _being_cancelled():
                    raise  # stop(): the worker ends
                # a cancellation meant for something inside reconcile (a timeout that fired
                # as its operation finished) must not end the worker nor drop the key:
                # with the workers gone nothing would ever sync again
                self._failed(key, ReconcileError("reconcile was cancelled from inside"))
            except Exception as e:  # noqa: BLE001 - a failed reconcile is retried, never fatal
                self._failed(key, e)
            else:
                self.metrics.results["success"].inc()
                self.queue.forget(key)
            finally:
                self.queue.done(key)
