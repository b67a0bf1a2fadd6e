"""Prometheus metrics of work queues and controllers, named as upstream's workqueue
metrics (k8s.io/component-base/metrics/prometheus/workqueue), in the process's default
prometheus-client registry.

Counters and histograms are updated as queues work.  Depth, unfinished work and the
longest running processor are read from the live queues at scrape time (upstream polls
them every 500 ms), summed over queues of one name, so a queue that was shut down or
garbage collected leaves no stale value behind.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any, Iterator, Optional

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from kybernetes.client.workqueue import WorkQueue

__all__ = ["QueueMetrics", "queue_metrics", "controller_metrics", "register_live_queue_collector"]

disable_created_metrics()  # upstream exposes no *_created series

# upstream: prometheus.ExponentialBuckets(10e-9, 10, 10)
_DURATION_BUCKETS = tuple(1e-8 * 10 ** i for i in range(10))

ADDS = Counter("workqueue_adds", "Total number of adds handled by workqueue", ["name"])
RETRIES = Counter("workqueue_retries", "Total number of retries handled by workqueue", ["name"])
QUEUE_DURATION = Histogram("workqueue_queue_duration_seconds",
                           "How long in seconds an item stays in workqueue before being requested.",
                           ["name"], buckets=_DURATION_BUCKETS)
WORK_DURATION = Histogram("workqueue_work_duration_seconds",
                          "How long in seconds processing an item from workqueue takes.",
                          ["name"], buckets=_DURATION_BUCKETS)
# controller-runtime's names: the outcome of each reconcile
RECONCILE_TOTAL = Counter("controller_runtime_reconcile", "Total number of reconciliations per controller",
                          ["controller", "result"])
RECONCILE_ERRORS = Counter("controller_runtime_reconcile_errors", "Total number of reconciliation errors per controller",
                           ["controller"])

_LIVE: "weakref.WeakSet[WorkQueue[Any]]" = weakref.WeakSet()


class QueueMetrics:
    """One named queue's metric children (looked up once, not per operation)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.adds = ADDS.labels(name)
        self.retries = RETRIES.labels(name)
        self.queue_duration = QUEUE_DURATION.labels(name)
        self.work_duration = WORK_DURATION.labels(name)


def queue_metrics(queue: "WorkQueue[Any]") -> Optional[QueueMetrics]:
    """The metrics of a named queue (None for an unnamed one, as upstream's noop provider),
    and the queue is read at scrape time while it lives."""
    if not queue.name:
        return None
    _LIVE.add(queue)
    return QueueMetrics(queue.name)


class ControllerMetrics:
    def __init__(self, name: str) -> None:
        self.results = {r: RECONCILE_TOTAL.labels(name, r) for r in ("success", "error", "requeue", "requeue_after")}
        self.errors = RECONCILE_ERRORS.labels(name)


def controller_metrics(name: str) -> ControllerMetrics:
    return ControllerMetrics(name)


class _LiveQueueCollector:
    """workqueue_depth, workqueue_unfinished_work_seconds and
    workqueue_longest_running_processor_seconds from the queues alive now."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=["name"])
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed by work_duration. "
            "Large values indicate stuck threads. One can deduce the number of stuck threads by observing the "
            "rate at which this increases.", labels=["name"])
        longest = GaugeMetricFamily("workqueue_longest_running_processor_seconds",
                                    "How many seconds has the longest running processor for workqueue been running.",
                                    labels=["name"])
        now = time.monotonic()
        by_name: dict[str, list[float]] = {}
        for q in list(_LIVE):
            if q.shutting_down:
                continue
            d, total, oldest = q.metric_snapshot(now)
            agg = by_name.setdefault(q.name, [0.0, 0.0, 0.0])
            agg[0] += d
            agg[1] += total
            agg[2] = max(agg[2], oldest)
        for name, (d, total, oldest) in sorted(by_name.items()):
            depth.add_metric([name], d)
            unfinished.add_metric([name], total)
            longest.add_metric([name], oldest)
        yield depth
        yield unfinished
        yield longest


_COLLECTOR = _LiveQueueCollector()


def register_live_queue_collector(registry: CollectorRegistry = REGISTRY) -> None:
    """Idempotent: the gauges read from live queues, in `registry`."""
    try:
        registry.register(_COLLECTOR)  # type: ignore[arg-type]
    except ValueError:
        pass  # already registered


register_live_queue_collector()
