"""Recording Events with `events.k8s.io/v1` semantics, as client-go's tools/events does.

Events are built as events.k8s.io/v1 Events and written through `api_version`: by default
the new API itself. The API server stores both event APIs as one resource, so kubectl
(`kubectl events`, `kubectl get events`, which read core/v1) shows them too. Pass
`api_version="v1"` to write their core/v1 rendering instead (upstream's conversion:
regarding -> involvedObject, note -> message, reportingController -> reportingComponent;
eventTime, series, action, related and reportingInstance kept), for servers without
events.k8s.io.

An `EventBroadcaster` (one writer task, one cache; each controller has its own, made by
controllers.base.Controller) hands out an `EventRecorder` per reporting controller.  `recorder.event(...)` never blocks and never
raises: the event goes onto a bounded queue the writer drains.

- The first occurrence creates an Event named `<regarding name>.<unix nanoseconds hex>` in
  the regarding object's namespace ("default" for cluster-scoped objects), with
  `reportingController`, `reportingInstance` (`<controller>-<hostname>`) and `eventTime`.
- Repeats of an isomorphic event (same type, reason, action, note, regarding, related and
  reporting controller) only bump its `series` (count, lastObservedTime) in memory.  The
  first repeat is patched at once (count 2); later ones are written by a periodic refresh,
  and a series unchanged for `finish_after` seconds is flushed and forgotten.  Upstream's
  key leaves the note out; it is in ours because the controllers here word their notes
  the way the core/v1 recorder's correlator keys them ("Created pod: web-abc" and
  "Created pod: web-def" are two events, not a series).
- A spam filter per regarding object (a token bucket: `spam_burst` events, then one more
  every `spam_refill` seconds, upstream's 25 and 5 minutes) drops new events for an object
  that produces too many distinct ones; repeats of a series cost nothing and are kept.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from kybernetes.client.errors import APIStatusError, ClientError, NotFound

__all__ = ["EventBroadcaster", "EventRecorder", "object_reference", "NORMAL", "WARNING"]

log = logging.getLogger("kybernetes.client.events")

Obj = dict[str, Any]
NORMAL, WARNING = "Normal", "Warning"

REFRESH_INTERVAL = 30 * 60.0  # upstream refreshTime: series counts reach the server at least this often
FINISH_AFTER = 6 * 60.0       # upstream finishTime: a series quiet this long is over
SPAM_BURST = 25               # upstream defaultSpamBurst
SPAM_REFILL = 5 * 60.0        # upstream defaultSpamQPS = 1/300
QUEUE_SIZE = 1000             # upstream maxQueuedEvents
CACHE_SIZE = 4096             # upstream maxLruCacheEntries
NOTE_LIMIT = 1024             # bytes; longer notes are cut, as the API rejects them


def micro_time(t: Optional[float] = None) -> str:
    """metav1.MicroTime of a Unix time (now by default)."""
    dt = datetime.fromtimestamp(time.time() if t is None else t, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def object_reference(obj: Obj, api_version: str = "", kind: str = "") -> Obj:
    """The ObjectReference of an object (or the reference itself when given one);
    `api_version` and `kind` fill in what the object lacks (informer caches may drop them)."""
    if "metadata" not in obj:
        ref = {"apiVersion": api_version, "kind": kind, **obj}
        return {k: v for k, v in ref.items() if v not in (None, "")}
    meta = obj["metadata"]
    ref = {"apiVersion": obj.get("apiVersion") or api_version, "kind": obj.get("kind") or kind,
           "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
           "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", "")}
    return {k: v for k, v in ref.items() if v}


def _ref_key(ref: Optional[Obj]) -> tuple:
    if not ref:
        return ()
    return tuple(ref.get(k, "") for k in ("apiVersion", "kind", "namespace", "name", "uid", "fieldPath"))


@dataclass
class _Cached:
    event: Obj              # as last sent (name, namespace, series)
    count: int = 1
    last_observed: float = field(default_factory=time.time)
    dirty: bool = False     # a series count not yet on the server
    created: bool = False   # the create went through (until then only the writer touches it)


class _TokenBucket:
    def __init__(self, burst: int, refill: float, now: float) -> None:
        self.tokens, self.burst, self.refill, self.last = float(burst), burst, refill, now

    def take(self, now: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) / self.refill)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class EventBroadcaster:
    """Writes the events of every recorder it made (see the module docstring).
    `await shutdown()` flushes pending series and stops the writer."""

    def __init__(self, client: Any, *, api_version: str = "events.k8s.io/v1", refresh_interval: float = REFRESH_INTERVAL,
                 finish_after: float = FINISH_AFTER, spam_burst: int = SPAM_BURST,
                 spam_refill: float = SPAM_REFILL, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        if api_version not in ("v1", "events.k8s.io/v1"):
            raise ValueError(f"events are written as v1 or events.k8s.io/v1, not {api_version}")
        self.core = api_version == "v1"
        self.events = client.resource("" if self.core else "events.k8s.io", "v1", "events")
        self.refresh_interval = refresh_interval
        self.finish_after = finish_after
        self.spam_burst = spam_burst
        self.spam_refill = spam_refill
        self.clock = clock
        self._cache: collections.OrderedDict[tuple, _Cached] = collections.OrderedDict()
        self._spam: collections.OrderedDict[tuple, _TokenBucket] = collections.OrderedDict()
        self._queue: Optional[asyncio.Queue[Optional[tuple[tuple, _Cached, str]]]] = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.dropped = 0  # events lost to the spam filter or a full queue

    def recorder(self, reporting_controller: str, reporting_instance: Optional[str] = None) -> "EventRecorder":
        """A recorder whose events name `reporting_controller` (a qualified name such as
        "replicaset-controller") and `reporting_instance` (default `<controller>-<hostname>`)."""
        instance = reporting_instance or f"{reporting_controller}-{socket.gethostname()}"
        return EventRecorder(self, reporting_controller, instance)

    # ------------------------------------------------------------------ intake (sync)
    def _record(self, event: Obj) -> None:
        if self._closed:
            return
        key = (event["type"], event["reason"], event["action"], event.get("note", ""), event["reportingController"],
               _ref_key(event["regarding"]), _ref_key(event.get("related")))
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            cached.count += 1
            cached.last_observed = now
            if cached.count == 2:
                self._enqueue((key, cached, "series"))  # the first repeat is written at once
            else:
                cached.dirty = True  # the refresh writes it
            return
        if not self._allow(event, now):
            self.dropped += 1
            log.debug("event dropped by the spam filter: %s %s", event["reason"], event["regarding"])
            return
        cached = _Cached(event, last_observed=now)
        self._cache[key] = cached
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self._enqueue((key, cached, "create"))

    def _allow(self, event: Obj, now: float) -> bool:
        k = (event["reportingController"], event["reportingInstance"], _ref_key(event["regarding"]))
        bucket = self._spam.get(k)
        if bucket is None:
            bucket = self._spam[k] = _TokenBucket(self.spam_burst, self.spam_refill, now)
            while len(self._spam) > CACHE_SIZE:
                self._spam.popitem(last=False)
        else:
            self._spam.move_to_end(k)
        return bucket.take(now)

    def _enqueue(self, item: tuple[tuple, _Cached, str]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.dropped += 1
            return
        if self._queue is None:
            self._queue = asyncio.Queue(QUEUE_SIZE)
            self._tasks = [loop.create_task(self._writer(), name="event writer"),
                           loop.create_task(self._refresher(), name="event series refresh")]
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    # ------------------------------------------------------------------ writing (async)
    async def _writer(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                if item is None:
                    return
                key, cached, what = item
                await self._write(cached, create=(what == "create"))
            finally:
                self._queue.task_done()

    async def wait_idle(self) -> None:
        """Wait until every event recorded so far was written (or given up)."""
        if self._queue is not None:
            await self._queue.join()

    async def _write(self, cached: _Cached, *, create: bool) -> None:
        ev = cached.event
        ns = ev["metadata"]["namespace"]
        series = None if cached.count < 2 else {"count": cached.count, "lastObservedTime": micro_time(cached.last_observed)}
        cached.dirty = False
        for attempt in range(3):
            try:
                if not create:
                    try:
                        await self.events.patch(ev["metadata"]["name"], {"series": series}, "merge", namespace=ns)
                        return
                    except NotFound:
                        # gone (expired or deleted): start again under a fresh name, series kept
                        ev = cached.event = {**ev, "metadata": {**ev["metadata"],
                                                               "name": _event_name(ev["regarding"], self.clock())}}
                body = to_core(ev) if self.core else dict(ev)
                if series is not None:
                    body["series"] = series
                await self.events.create(body, namespace=ns)
                cached.created = True
                return
            except APIStatusError as e:
                if e.code < 500 and e.code != 429:
                    log.warning("event %s %s about %s rejected: %s", ev["type"], ev["reason"],
                                ev["regarding"].get("name"), e)
                    return
            except ClientError as e:
                log.debug("writing event failed (attempt %d): %s", attempt + 1, e)
            except Exception:  # noqa: BLE001 - the writer must outlive one bad event
                log.exception("writing event failed")
                return
            await asyncio.sleep(0.5 * 2 ** attempt)

    async def _refresher(self) -> None:
        step = max(0.05, min(self.refresh_interval, self.finish_after) / 2)
        last_refresh = self.clock()
        while True:
            await asyncio.sleep(step)
            await self.flush(refresh=self.clock() - last_refresh >= self.refresh_interval)
            if self.clock() - last_refresh >= self.refresh_interval:
                last_refresh = self.clock()

    async def flush(self, *, refresh: bool = True, finish_all: bool = False) -> None:
        """Write pending series counts (all of them when `refresh`, else only those of
        series that are finishing) and forget series quiet for `finish_after` seconds."""
        now = self.clock()
        for key, cached in list(self._cache.items()):
            finished = finish_all or now - cached.last_observed >= self.finish_after
            if cached.dirty and cached.created and (refresh or finished):
                await self._write(cached, create=False)
            if finished:
                self._cache.pop(key, None)

    async def shutdown(self) -> None:
        """Write what is queued and pending, then stop."""
        if self._closed:
            return
        self._closed = True
        if self._queue is None:
            return
        await self._queue.put(None)
        writer, refresher = self._tasks
        refresher.cancel()
        try:
            await asyncio.wait_for(writer, 5)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
        await asyncio.gather(refresher, return_exceptions=True)
        try:
            await asyncio.wait_for(self.flush(finish_all=True), 5)
        except asyncio.TimeoutError:
            pass


_CORE_NAMES = {"regarding": "involvedObject", "note": "message", "reportingController": "reportingComponent",
               "deprecatedSource": "source", "deprecatedFirstTimestamp": "firstTimestamp",
               "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count"}


def to_core(event: Obj) -> Obj:
    """The core/v1 form of an events.k8s.io/v1 Event (upstream's conversion: renames only)."""
    out = {_CORE_NAMES.get(k, k): v for k, v in event.items()}
    out["apiVersion"], out["kind"] = "v1", "Event"
    return out


def _event_name(regarding: Obj, t: float) -> str:
    return f"{regarding.get('name') or 'event'}.{int(t * 1e9):x}"


class EventRecorder:
    """Records events of one reporting controller (client-go's events.EventRecorder)."""

    def __init__(self, broadcaster: EventBroadcaster, reporting_controller: str, reporting_instance: str) -> None:
        self.broadcaster = broadcaster
        self.reporting_controller = reporting_controller
        self.reporting_instance = reporting_instance

    def event(self, regarding: Obj, type_: str, reason: str, note: str, *, action: Optional[str] = None,
              related: Optional[Obj] = None) -> None:
        """Record that `reason` happened to `regarding` (an object or an ObjectReference).
        `action` is what was done or failed (defaults to the reason)."""
        ref = object_reference(regarding)
        now = self.broadcaster.clock()
        raw = note.encode()
        if len(raw) > NOTE_LIMIT:
            note = raw[:NOTE_LIMIT].decode(errors="ignore")
        ev: Obj = {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": _event_name(ref, now), "namespace": ref.get("namespace") or "default"},
            "eventTime": micro_time(now),
            "regarding": ref,
            "type": type_, "reason": reason, "action": action or reason, "note": note,
            "reportingController": self.reporting_controller,
            "reportingInstance": self.reporting_instance,
        }
        if related is not None:
            ev["related"] = object_reference(related)
        self.broadcaster._record(ev)

    def eventf(self, regarding: Obj, type_: str, reason: str, fmt: str, *args: Any, action: Optional[str] = None) -> None:
        """`event` with a %-formatted note."""
        self.event(regarding, type_, reason, fmt % args if args else fmt, action=action)
