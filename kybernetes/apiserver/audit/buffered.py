"""Batching in front of a slow backend (upstream plugin/pkg/audit/buffered).

``process`` only puts a copy of the event into a bounded queue and never waits: when the
queue is full the event is dropped and counted (``errors_total`` of plugin "buffered",
upstream's ``apiserver_audit_error_total{plugin="buffered"}``).  A collector task takes
up to ``max_batch_size`` events or whatever arrived within ``max_batch_wait``, waits for
a token of the throttle (``throttle_qps`` batches per second, bursts of
``throttle_burst``) and hands the batch to the delegate in its own task, so a slow
webhook never stops the queue from draining (upstream's AsyncDelegate)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Optional

from kybernetes.apiserver.audit.backends import Backend, Obj, plugin_error

log = logging.getLogger("kybernetes.audit")

PLUGIN_NAME = "buffered"
SHUTDOWN_GRACE = 5.0  # seconds shutdown waits for batches still being delivered


@dataclass
class BatchConfig:
    """upstream --audit-webhook-batch-* defaults"""

    buffer_size: int = 10000
    max_batch_size: int = 400
    max_batch_wait: float = 30.0
    throttle_enable: bool = True
    throttle_qps: float = 10.0
    throttle_burst: int = 15


class TokenBucket:
    """client-go's token bucket rate limiter: ``accept`` waits for a token."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.last = time.monotonic()

    async def accept(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.qps)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.qps)


class BufferedBackend(Backend):
    name = PLUGIN_NAME

    def __init__(self, delegate: Backend, config: Optional[BatchConfig] = None) -> None:
        super().__init__()
        self.delegate = delegate
        self.cfg = config or BatchConfig()
        self.throttle = TokenBucket(self.cfg.throttle_qps, self.cfg.throttle_burst) if self.cfg.throttle_enable else None
        self.queue: Optional[asyncio.Queue] = None
        self.task: Optional[asyncio.Task] = None
        self.sending: set[asyncio.Task] = set()
        self.batches_total = 0
        self._stopping = False

    @property
    def dropped_total(self) -> int:
        """Events lost here or in the delegate (buffer overflow, failed delivery)."""
        return self.errors_total + self.delegate.errors_total

    async def start(self) -> None:
        await self.delegate.start()
        self.queue = asyncio.Queue(self.cfg.buffer_size)
        self.task = asyncio.create_task(self._run(), name="audit-buffered")

    def process(self, event: Obj) -> bool:
        if self.queue is None or self._stopping:
            plugin_error(self, "audit backend shut down", [event])
            return True
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            plugin_error(self, "audit buffer queue blocked", [event])
        return True

    async def _collect(self, wait: float) -> list[Obj]:
        """Up to max_batch_size events, or what arrived within `wait` seconds."""
        assert self.queue is not None
        batch: list[Obj] = []
        deadline = time.monotonic() + wait
        while len(batch) < self.cfg.max_batch_size:
            try:
                batch.append(self.queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _dispatch(self, batch: list[Obj], *, throttled: bool = True) -> None:
        if not batch:
            return
        if throttled and self.throttle is not None:
            await self.throttle.accept()
        self.batches_total += 1
        t = asyncio.create_task(self._deliver(batch), name="audit-batch")
        self.sending.add(t)
        t.add_done_callback(self.sending.discard)

    async def _deliver(self, batch: list[Obj]) -> None:
        try:
            await self.delegate.send(batch)
        except asyncio.CancelledError:
            plugin_error(self.delegate, "audit backend shut down", batch)
            raise
        except Exception as e:  # noqa: BLE001 - a failed batch must not stop the collector
            plugin_error(self.delegate, str(e), batch)

    async def _run(self) -> None:
        while True:
            await self._dispatch(await self._collect(self.cfg.max_batch_wait))

    async def shutdown(self) -> None:
        """Stop taking events, hand what is buffered to the delegate, give the batches in
        flight a bounded time, then stop the delegate (what is left is counted lost)."""
        self._stopping = True
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self.queue is not None:
            # what is left goes out at once: shutdown is bounded by the grace period, not the throttle
            while not self.queue.empty():
                await self._dispatch(await self._collect(0), throttled=False)
        if self.sending:
            _, pending = await asyncio.wait(set(self.sending), timeout=SHUTDOWN_GRACE)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
                log.error("audit %s: gave up delivering %d batches at shutdown", self.name, len(pending))
        await self.delegate.shutdown()


def validate(plugin: str, mode: str, cfg: BatchConfig) -> list[str]:
    """upstream validateBackendBatchOptions, with its messages."""
    from kybernetes.apiserver.audit.backends import ALLOWED_MODES

    if mode not in ALLOWED_MODES:
        return [f'invalid audit {plugin} mode {mode}, allowed modes are "{",".join(ALLOWED_MODES)}"']
    if mode != "batch":
        return []
    if cfg.buffer_size <= 0:
        return [f"invalid audit batch {plugin} buffer size {cfg.buffer_size}, must be a positive number"]
    if cfg.max_batch_size <= 0:
        return [f"invalid audit batch {plugin} max batch size {cfg.max_batch_size}, must be a positive number"]
    if cfg.throttle_enable:
        if cfg.throttle_qps <= 0:
            return [f"invalid audit batch {plugin} throttle QPS {_g(cfg.throttle_qps)}, must be a positive number"]
        if cfg.throttle_burst <= 0:
            return [f"invalid audit batch {plugin} throttle burst {cfg.throttle_burst}, must be a positive number"]
    return []


def _g(v: Any) -> str:
    """Go's %v of a float32."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


