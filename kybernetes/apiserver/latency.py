"""Per-request latency trackers (upstream endpoints/request/webhook_duration.go).

The audit filter starts a tracker for each audited request (a ContextVar, so the code
a request awaits — filters, handlers, the storage calls — adds to the same tracker
without passing it around).  When a request took longer than ``SLOW_THRESHOLD`` the
audit event gets one ``apiserver.latency.k8s.io/<layer>`` annotation per layer that
spent time, plus ``.../total``, in Go's duration format."""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any, Optional

from kybernetes.api.protobuf.codec import format_duration

PREFIX = "apiserver.latency.k8s.io/"
SLOW_THRESHOLD = 0.5  # seconds; upstream adds the annotations only above 500ms

AUTHENTICATION = "authentication"
AUTHORIZATION = "authorization"
STORAGE = "etcd"  # upstream's name, whatever the datastore
TRANSFORM = "transform-response-object"
SERIALIZE = "serialize-response-object"
RESPONSE_WRITE = "response-write"
MUTATING_WEBHOOK = "mutating-webhook"
VALIDATING_WEBHOOK = "validating-webhook"
DECODE = "decode-response-object"
APF_QUEUE_WAIT = "apf-queue-wait"


class LatencyTrackers:
    """Seconds spent per layer for one request (summed when a layer is entered twice)."""

    __slots__ = ("spent",)

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def add(self, layer: str, seconds: float) -> None:
        self.spent[layer] = self.spent.get(layer, 0.0) + seconds

    def annotations(self) -> dict[str, str]:
        return {PREFIX + layer: go_duration(s) for layer, s in sorted(self.spent.items()) if s > 0}


_current: ContextVar[Optional[LatencyTrackers]] = ContextVar("kyb_latency_trackers", default=None)


def go_duration(seconds: float) -> str:
    return format_duration(int(round(seconds * 1e9)))


def start() -> LatencyTrackers:
    """A fresh tracker for the current request (task context)."""
    t = LatencyTrackers()
    _current.set(t)
    return t


def current() -> Optional[LatencyTrackers]:
    return _current.get()


def add(layer: str, seconds: float) -> None:
    t = _current.get()
    if t is not None:
        t.add(layer, seconds)


class track:
    """``with track(layer):`` times the block into ``layer`` of the current request's
    tracker (if any).  A plain class, not a generator context manager: it wraps
    per-request steps, and costs next to nothing when no tracker is running."""

    __slots__ = ("layer", "tracker", "t0")

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.tracker: Optional[LatencyTrackers] = None
        self.t0 = 0.0

    def __enter__(self) -> None:
        self.tracker = _current.get()
        if self.tracker is not None:
            self.t0 = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        if self.tracker is not None:
            self.tracker.add(self.layer, time.perf_counter() - self.t0)


def slow_request_annotations(tracker: Optional[LatencyTrackers], total: float) -> dict[str, str]:
    """upstream writeLatencyToAnnotation: nothing for a fast request or when nothing was
    tracked; else the per-layer latencies and the total."""
    if tracker is None or total <= SLOW_THRESHOLD:
        return {}
    out = tracker.annotations()
    if not out:
        return {}
    out[PREFIX + "total"] = go_duration(total)
    return out


class TimedStore:
    """A Store whose round trips (get/list/create/update/delete/count) count as the
    ``etcd`` layer of the request awaiting them; everything else passes through."""

    _TIMED = ("get", "list", "create", "update", "delete", "count")

    def __init__(self, store: Any) -> None:
        self._store = store
        for name in self._TIMED:  # wrappers made once, not per call
            method = getattr(store, name, None)
            if method is not None:
                setattr(self, name, _timed(method))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _timed(method: Any) -> Any:
    async def timed(*a: Any, **kw: Any) -> Any:
        t = _current.get()
        if t is None:
            return await method(*a, **kw)
        t0 = time.perf_counter()
        try:
            return await method(*a, **kw)
        finally:
            t.add(STORAGE, time.perf_counter() - t0)

    return timed
