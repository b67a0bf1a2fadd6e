"""The kubelet's own Prometheus metrics: `/metrics` (runtime operations, pod workers, pod
start latency, running pods and containers, process figures) and `/metrics/probes`
(prober results), each from its own registry as upstream keeps them apart.

The kubelet's parts report through small hooks: the CRI client's `observer` (every RPC,
its duration and error), the pod workers' `observer` (sync durations, sandboxes started,
pods first seen running, probe results).  Running pods and containers are counted from
the runtime when the metrics are scraped, as upstream reads its runtime cache.

    m = KubeletMetrics("node-1"); m.attach(kubelet)
    text = await m.render()            # /metrics
    text = m.render_probes()           # /metrics/probes
"""

from __future__ import annotations

import logging
import re
import time
from typing import Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kybernetes.cri import pb
from kybernetes.kubelet.static_pods import CONFIG_SOURCE, is_mirror_pod

log = logging.getLogger("kybernetes.kubelet.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
NS = "kubelet"

# upstream's buckets for the kubelet's latency histograms (seconds)
_DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_POD_START_BUCKETS = (0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900,
                      1200, 1800, 2700, 3600)
_PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

_CONTAINER_STATES = {pb.CONTAINER_CREATED: "created", pb.CONTAINER_RUNNING: "running",
                     pb.CONTAINER_EXITED: "exited", pb.CONTAINER_UNKNOWN: "unknown"}

_CONTAINER_TYPES = {"init": "init_container", "app": "container", "ephemeral": "ephemeral_container"}

PROBE_TYPES = {"liveness": "Liveness", "readiness": "Readiness", "startup": "Startup"}


def operation_type(method: str) -> str:
    """A CRI method as upstream names the operation: RunPodSandbox -> run_podsandbox,
    ListContainers -> list_containers."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()
    return snake.replace("pod_sandbox", "podsandbox")


def grpc_code(code) -> str:
    """A grpc.StatusCode as Go's codes.Code prints it: DEADLINE_EXCEEDED -> DeadlineExceeded."""
    if code is None:
        return "Unknown"
    name = getattr(code, "name", str(code))
    return "OK" if name == "OK" else "".join(part.capitalize() for part in name.split("_"))


class _WithoutCreated:
    """A registry's metrics without prometheus-client's `_created` samples (timestamps of
    each series' birth), which the kubelet's Go metrics never expose."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self):
        for m in self.registry.collect():
            if m.type in ("counter", "histogram", "summary"):
                m.samples = [s for s in m.samples if not s.name.endswith("_created")]
            yield m


def _evictions_text(counts: dict[str, int]) -> bytes:
    """kubelet_evictions{eviction_signal} in text exposition: a counter named without the
    _total suffix, as upstream names it (prometheus-client insists on one for counters)."""
    name = f"{NS}_evictions"
    lines = [f"# HELP {name} [ALPHA] Cumulative number of pod evictions by eviction signal", f"# TYPE {name} counter"]
    lines += [f'{name}{{eviction_signal="{sig}"}} {float(n)}' for sig, n in sorted(counts.items())]
    return ("\n".join(lines) + "\n").encode()


class KubeletMetrics:
    """The kubelet's metric families in two registries (never the process-global one)."""

    def __init__(self, node_name: str, *, process: bool = True):
        self.registry = CollectorRegistry(auto_describe=True)
        self.probe_registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.node_name = Gauge(f"{NS}_node_name", "[ALPHA] The node's name. The count is always 1.", ["node"], registry=r)
        self.node_name.labels(node_name).set(1)
        self.running_pods = Gauge(f"{NS}_running_pods", "[ALPHA] Number of pods that have a running pod sandbox",
                                  registry=r)
        self.running_containers = Gauge(f"{NS}_running_containers", "[ALPHA] Number of containers currently running",
                                        ["container_state"], registry=r)
        self.pod_start = Histogram(f"{NS}_pod_start_duration_seconds",
                                   "[ALPHA] Duration in seconds from kubelet seeing a pod for the first time to the pod "
                                   "starting to run", buckets=_POD_START_BUCKETS, registry=r)
        self.pod_worker = Histogram(f"{NS}_pod_worker_duration_seconds",
                                    "[ALPHA] Duration in seconds to sync a single pod. Broken down by operation type: "
                                    "create, update, or sync", ["operation_type"], buckets=_DEFAULT_BUCKETS,
                                    registry=r)
        self.started_containers = Counter(f"{NS}_started_containers", "[ALPHA] Cumulative number of containers started",
                                          ["container_type"], registry=r)
        self.started_containers_errors = Counter(f"{NS}_started_containers_errors",
                                                 "[ALPHA] Cumulative number of errors when starting containers",
                                                 ["code", "container_type"], registry=r)
        self.desired_pods = Gauge(f"{NS}_desired_pods", "[ALPHA] The number of pods the kubelet is being instructed to run. "
                                  "static is true if the pod is not from the apiserver.", ["static"], registry=r)
        self.active_pods = Gauge(f"{NS}_active_pods", "[ALPHA] The number of pods the kubelet considers active and which are "
                                 "being considered when admitting new pods. static is true if the pod is not from "
                                 "the apiserver.", ["static"], registry=r)
        self.mirror_pods = Gauge(f"{NS}_mirror_pods", "[ALPHA] The number of mirror pods the kubelet will try to create "
                                 "(one per admitted static pod)", registry=r)
        self.pleg_duration = Histogram(f"{NS}_pleg_relist_duration_seconds",
                                       "[ALPHA] Duration in seconds for relisting pods in PLEG.", buckets=_DEFAULT_BUCKETS,
                                       registry=r)
        self.pleg_interval = Histogram(f"{NS}_pleg_relist_interval_seconds",
                                       "[ALPHA] Interval in seconds between relisting in PLEG.", buckets=_DEFAULT_BUCKETS,
                                       registry=r)
        self.pleg_last_seen = Gauge(f"{NS}_pleg_last_seen_seconds",
                                    "[ALPHA] Timestamp in seconds when PLEG was last seen active.", registry=r)
        self.started_pods = Counter(f"{NS}_started_pods", "[ALPHA] Cumulative number of pods started", registry=r)
        self.started_pods_errors = Counter(f"{NS}_started_pods_errors", "[ALPHA] Cumulative number of errors when starting pods",
                                           registry=r)
        self.runtime_ops = Counter(f"{NS}_runtime_operations", "[ALPHA] Cumulative number of runtime operations by operation type.",
                                   ["operation_type"], registry=r)
        self.runtime_errors = Counter(f"{NS}_runtime_operations_errors",
                                      "[ALPHA] Cumulative number of runtime operation errors by operation type.",
                                      ["operation_type"], registry=r)
        self.runtime_duration = Histogram(f"{NS}_runtime_operations_duration_seconds",
                                          "[ALPHA] Duration in seconds of runtime operations. Broken down by operation type.",
                                          ["operation_type"], buckets=_DEFAULT_BUCKETS, registry=r)
        self.evictions: dict[str, int] = {}  # signal -> pods evicted (exposed by _evictions_text)
        if process:
            ProcessCollector(registry=r)
        p = self.probe_registry
        labels = ["probe_type", "result", "container", "pod", "namespace", "pod_uid"]
        self.probe_total = Counter("prober_probe", "[ALPHA] Cumulative number of a liveness, readiness or startup probe "
                                   "for a container by result.", labels, registry=p)
        self.probe_duration = Histogram("prober_probe_duration_seconds",
                                        "[ALPHA] Duration in seconds for a probe response.",
                                        ["probe_type", "container", "pod", "namespace"], buckets=_PROBE_BUCKETS,
                                        registry=p)
        self._cri = None
        self._kl = None

    # ------------------------------------------------------------ hooks

    def attach(self, kubelet) -> "KubeletMetrics":
        """Hook into the kubelet's CRI client, pod workers and eviction manager."""
        self._cri, self._kl = kubelet.cri, kubelet
        kubelet.cri.observer = self.runtime_operation
        kubelet.workers.observer = self
        kubelet.eviction.on_evicted = self.pod_evicted
        kubelet.pleg.observer = self.pleg_relisted
        return self

    def runtime_operation(self, method: str, seconds: float, error: Optional[BaseException]) -> None:
        op = operation_type(method)
        self.runtime_ops.labels(op).inc()
        self.runtime_duration.labels(op).observe(seconds)
        if error is not None:
            self.runtime_errors.labels(op).inc()

    def pleg_relisted(self, seconds: float, interval: Optional[float]) -> None:
        self.pleg_duration.observe(seconds)
        if interval is not None:
            self.pleg_interval.observe(interval)
        self.pleg_last_seen.set(time.time())

    def pod_worker_duration(self, operation: str, seconds: float) -> None:
        self.pod_worker.labels(operation).observe(seconds)

    def pod_sandbox_started(self, ok: bool) -> None:
        (self.started_pods if ok else self.started_pods_errors).inc()

    def container_started(self, kind: str) -> None:
        self.started_containers.labels(_CONTAINER_TYPES.get(kind, "container")).inc()

    def container_start_failed(self, kind: str, code) -> None:
        self.started_containers_errors.labels(grpc_code(code), _CONTAINER_TYPES.get(kind, "container")).inc()

    def pod_running(self, seconds: float) -> None:
        self.pod_start.observe(seconds)

    def pod_evicted(self, signal: str) -> None:
        self.evictions[signal] = self.evictions.get(signal, 0) + 1

    def probe_result(self, pod: dict, kind: str, container: str, result: str, seconds: float) -> None:
        """One probe run: `result` is successful, failed or unknown (upstream's labels)."""
        m = pod.get("metadata") or {}
        ptype = PROBE_TYPES.get(kind, kind)
        self.probe_total.labels(ptype, result, container, m.get("name", ""), m.get("namespace", ""),
                                m.get("uid", "")).inc()
        if result == "successful":
            self.probe_duration.labels(ptype, container, m.get("name", ""), m.get("namespace", "")).observe(seconds)

    # ------------------------------------------------------------ scrape

    def count_pods(self) -> None:
        """Desired, active and mirror pods from the kubelet's pod workers and informer."""
        desired, active = {"true": 0, "false": 0}, {"true": 0, "false": 0}
        for w in list(self._kl.workers.workers.values()):
            if w.done:
                continue
            ann = (w.pod.get("metadata") or {}).get("annotations") or {}
            static = "true" if ann.get(CONFIG_SOURCE, "api") != "api" else "false"
            desired[static] += 1
            if (w.last_status or {}).get("phase") not in ("Succeeded", "Failed"):
                active[static] += 1
        for static in ("true", "false"):
            self.desired_pods.labels(static).set(desired[static])
            self.active_pods.labels(static).set(active[static])
        self.mirror_pods.set(sum(1 for p in self._kl.informer.list() if is_mirror_pod(p)))

    async def refresh(self) -> None:
        """Count pods from the kubelet, running sandboxes and containers from the runtime."""
        if self._kl is None:
            return
        self.count_pods()
        pleg = getattr(self._kl, "pleg", None)
        if pleg is not None and pleg.relists:
            # the runtime as the PLEG last listed it (upstream reads its runtime cache)
            sandbox_states = [st for k, (_, st) in pleg.last.items() if k.startswith("s:")]
            container_states = [st for k, (_, st) in pleg.last.items() if k.startswith("c:")]
        else:
            sandbox_states = [s.state for s in await self._cri.list_pod_sandbox()]
            container_states = [c.state for c in await self._cri.list_containers()]
        self.running_pods.set(sum(1 for st in sandbox_states if st == pb.SANDBOX_READY))
        counts = dict.fromkeys(_CONTAINER_STATES.values(), 0)
        for st in container_states:
            counts[_CONTAINER_STATES.get(st, "unknown")] += 1
        for state, n in counts.items():
            self.running_containers.labels(state).set(n)

    async def render(self) -> bytes:
        try:
            await self.refresh()
        except Exception as e:  # noqa: BLE001 - the runtime away: the other figures still count
            log.warning("kubelet metrics: runtime not counted: %s", e)
        return generate_latest(_WithoutCreated(self.registry)) + _evictions_text(self.evictions)

    def render_probes(self) -> bytes:
        return generate_latest(_WithoutCreated(self.probe_registry))
