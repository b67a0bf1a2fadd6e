"""A rate-limited work queue with client-go's semantics, for asyncio.

- A key is queued at most once (dirty set), however often it is added.
- A key being processed (handed out by get(), not yet done()) is not handed to another
  worker; if it is added meanwhile it is queued again when done() is called.
- add_after() delays an add; add_rate_limited() delays it by the key's backoff from the
  rate limiter, and forget() resets that backoff once the key is reconciled.
- shutdown() wakes every waiting get() with ShutDown; later adds are ignored.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Callable, Generic, Hashable, Optional, Protocol, TypeVar

from kybernetes.client import metrics as _metrics

__all__ = [
    "ShutDown",
    "RateLimiter",
    "ItemExponentialFailureRateLimiter",
    "BucketRateLimiter",
    "MaxOfRateLimiter",
    "default_controller_rate_limiter",
    "WorkQueue",
]

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down and has nothing more to hand out."""


class RateLimiter(Protocol):
    def when(self, key: Hashable) -> float:
        """Seconds to wait before this retry of `key` (records one more failure)."""

    def forget(self, key: Hashable) -> None:
        """Stop tracking `key`: its next failure starts from the base delay again."""

    def num_requeues(self, key: Hashable) -> int: ...


class ItemExponentialFailureRateLimiter:
    """base_delay * 2**failures, capped at max_delay (client-go: 5 ms, 1000 s)."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n >= 64:  # 2**n would overflow any sane cap anyway
            return self.max_delay
        return min(self.base_delay * (2 ** n), self.max_delay)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter:
    """A token bucket shared by all keys (overall retry rate: qps, bursts of `burst`)."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, key: Hashable) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0  # reserve a token, possibly going into debt
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: Hashable) -> None:
        pass

    def num_requeues(self, key: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay of several limiters."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, key: Hashable) -> float:
        return max(lim.when(key) for lim in self.limiters)

    def forget(self, key: Hashable) -> None:
        for lim in self.limiters:
            lim.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return max(lim.num_requeues(key) for lim in self.limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter:
    """client-go's default: per-key 5 ms doubling to 1000 s, and 10 qps / 100 burst overall."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100))


class WorkQueue(Generic[K]):
    """The queue controllers' workers pull keys from (see the module docstring)."""

    def __init__(self, rate_limiter: Optional[RateLimiter] = None, *, name: str = "") -> None:
        self.name = name
        self.rate_limiter: RateLimiter = rate_limiter or default_controller_rate_limiter()
        self._queue: collections.deque[K] = collections.deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._delayed: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._idle: Optional[asyncio.Event] = None
        self._shutting_down = False
        # metrics (upstream queueMetrics): when each dirty key was added, when each key's processing began
        self._added_at: dict[K, float] = {}
        self._started_at: dict[K, float] = {}
        self._metrics = _metrics.queue_metrics(self)

    # ------------------------------------------------------------------ basic queue
    def add(self, key: K) -> None:
        """Queue `key` unless it is already queued; if it is being processed it is
        queued again when done() is called."""
        if self._shutting_down or key in self._dirty:
            return
        if self._metrics is not None:
            self._metrics.adds.inc()
            self._added_at.setdefault(key, time.monotonic())
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    async def get(self) -> K:
        """The next key; the caller must call done(key) when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif fut.done() and not fut.cancelled():
                    self._wake_one()  # we were woken for an item; pass it on
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        if self._metrics is not None:
            now = time.monotonic()
            added = self._added_at.pop(key, None)
            if added is not None:
                self._metrics.queue_duration.observe(now - added)
            self._started_at[key] = now
        return key

    def done(self, key: K) -> None:
        """Mark `key` finished; re-queue it if it was added while being processed."""
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if started is not None and self._metrics is not None:
            self._metrics.work_duration.observe(time.monotonic() - started)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()
        elif not self._processing and self._idle is not None:
            self._idle.set()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    def metric_snapshot(self, now: float) -> tuple[int, float, float]:
        """(depth, seconds of unfinished work, longest running processor) at `now`,
        read by the metrics collector (depth counts added keys not yet handed out)."""
        running = [now - t for t in self._started_at.values()]
        return len(self._dirty), sum(running), max(running, default=0.0)

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # ------------------------------------------------------------------ delays
    def add_after(self, key: K, delay: float) -> None:
        """Add `key` after `delay` seconds; if it is already waiting, the earlier time wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready = loop.time() + delay
        existing = self._delayed.get(key)
        if existing is not None:
            if existing[0] <= ready:
                return
            existing[1].cancel()
        handle = loop.call_at(ready, self._fire, key)
        self._delayed[key] = (ready, handle)

    def _fire(self, key: K) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    @property
    def waiting(self) -> int:
        """How many keys wait for an add_after delay."""
        return len(self._delayed)

    # ------------------------------------------------------------------ rate limiting
    def add_rate_limited(self, key: K) -> None:
        """Add `key` after its backoff (one more failure recorded)."""
        if self._shutting_down:
            return
        if self._metrics is not None:
            self._metrics.retries.inc()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset `key`'s backoff (call after it reconciled successfully)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self) -> None:
        """Stop handing out keys: waiting get()s raise ShutDown, delayed adds are
        dropped, later adds ignored.  Keys already queued are still handed out."""
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    async def wait_idle(self) -> None:
        """Wait until no key is being processed (for a graceful stop)."""
        while self._processing:
            self._idle = asyncio.Event()
            await self._idle.wait()
