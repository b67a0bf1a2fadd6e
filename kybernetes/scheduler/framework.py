"""The scheduling framework: extension points, plugin statuses, node snapshots and the
runner that calls a profile's plugins in order (upstream pkg/scheduler/framework).

A plugin is an object with a `name` and any of these methods (the extension points it
implements are the methods it has):

    pre_filter(state, pod) -> Status | None
    add_pod / remove_pod(state, pod, other_pod_info, node_info)   (PreFilterExtensions: keep
        the PreFilter state right when preemption or nominated pods change a node)
    filter(state, pod, node_info) -> Status | None
    filter_batch(state, pod, node_infos) -> [Status | None]   (optional: many nodes per call)
    post_filter(state, pod, statuses: dict[node, Status]) -> (nominated_node | None, Status)
    pre_score(state, pod, node_infos) -> Status | None
    score(state, pod, node_info) -> int
    score_nodes(state, pod, node_infos) -> [int]                (optional: many nodes per call)
    normalize_score(state, pod, scores: dict[node, int]) -> None      (in place)
    reserve(state, pod, node_name) -> Status | None ; unreserve(state, pod, node_name)
    permit(state, pod, node_name) -> Status | None
    async pre_bind(state, pod, node_name) -> Status | None   (before binding, e.g. volumes)
    async bind(state, pod, node_name) -> Status | None   (Skip passes to the next binder)

Scheduling-cycle points are synchronous (they only read the cache, `state.snapshot`);
bind is async.  A plugin with `set_framework(fwk)` is handed its framework (preemption
runs the filters itself).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from kybernetes.scheduler.resources import Resource, pod_requests
from kybernetes.scheduler.terms import AffinityTerm, parse_terms, parse_weighted

Obj = dict[str, Any]

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


class Status:
    __slots__ = ("code", "reasons", "plugin", "error")

    def __init__(self, code: Code = Code.SUCCESS, *reasons: str, plugin: str = "", error: Optional[BaseException] = None) -> None:
        self.code = code
        self.reasons = list(reasons)
        self.plugin = plugin
        self.error = error

    @classmethod
    def unschedulable(cls, *reasons: str) -> "Status":
        return cls(Code.UNSCHEDULABLE, *reasons)

    @classmethod
    def unresolvable(cls, *reasons: str) -> "Status":
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, *reasons)

    @classmethod
    def as_error(cls, err: BaseException) -> "Status":
        return cls(Code.ERROR, str(err), error=err)

    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def message(self) -> str:
        return ", ".join(self.reasons)

    def __repr__(self) -> str:
        return f"Status({self.code.name}, {self.reasons!r}, plugin={self.plugin!r})"


SUCCESS = Status()


def _ok(st: Optional[Status]) -> bool:
    return st is None or st.code == Code.SUCCESS


class CycleState(dict):
    """Per-pod scratch space shared by the plugins during one scheduling attempt.
    `snapshot` is the cluster view the cycle reads (the scheduler cache): node_infos(),
    nodes, namespace_labels(ns) and the affinity-term indexes."""

    def __init__(self, snapshot: Any = None) -> None:
        super().__init__()
        self.snapshot = snapshot

    def clone(self) -> "CycleState":
        """A copy whose plugin states can be changed (preemption's what-if runs)."""
        c = CycleState(self.snapshot)
        for k, v in self.items():
            cl = getattr(v, "clone", None)
            c[k] = cl() if cl is not None else v
        return c


# --------------------------------------------------------------------------- node snapshot

def pod_key(pod: Mapping[str, Any]) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


class PodInfo:
    """A pod with what the plugins need precomputed (requests, priority, parsed affinity
    terms), built once when the pod enters the cache or the cycle."""

    __slots__ = ("pod", "key", "namespace", "labels", "requests", "non_zero", "priority", "terminating",
                 "required_affinity", "required_anti_affinity", "preferred_affinity", "preferred_anti_affinity",
                 "index_entries")

    def __init__(self, pod: Obj) -> None:
        self.pod = pod
        meta = pod.get("metadata") or {}
        self.key = pod_key(pod)
        self.namespace = meta.get("namespace", "")
        self.labels: Mapping[str, str] = meta.get("labels") or {}
        self.terminating = bool(meta.get("deletionTimestamp"))
        self.requests = pod_requests(pod)
        self.non_zero = pod_requests(pod, non_zero=True)
        spec = pod.get("spec") or {}
        self.priority = int(spec.get("priority") or 0)
        self.index_entries: list[tuple[str, tuple, tuple[str, str], int]] = []
        aff = spec.get("affinity")
        if not aff:
            self.required_affinity = self.required_anti_affinity = _NO_TERMS
            self.preferred_affinity = self.preferred_anti_affinity = _NO_TERMS
            return
        pa = aff.get("podAffinity") or {}
        paa = aff.get("podAntiAffinity") or {}
        ns, labels = self.namespace, self.labels
        self.required_affinity = parse_terms(pa.get("requiredDuringSchedulingIgnoredDuringExecution"), ns, labels)
        self.required_anti_affinity = parse_terms(paa.get("requiredDuringSchedulingIgnoredDuringExecution"), ns, labels)
        self.preferred_affinity = parse_weighted(pa.get("preferredDuringSchedulingIgnoredDuringExecution"), ns, labels)
        self.preferred_anti_affinity = parse_weighted(paa.get("preferredDuringSchedulingIgnoredDuringExecution"), ns, labels)

    @property
    def has_affinity(self) -> bool:
        """Upstream PodWithAffinity: any pod (anti-)affinity term at all."""
        return bool(self.required_affinity or self.required_anti_affinity or self.preferred_affinity
                    or self.preferred_anti_affinity)


_NO_TERMS: list[AffinityTerm] = []


def pod_info(state: "CycleState", pod: Obj) -> PodInfo:
    """The incoming pod's PodInfo, built once per cycle and shared by the plugins."""
    pi = state.get("__podinfo")
    if pi is None or pi.pod is not pod:
        pi = state["__podinfo"] = PodInfo(pod)
    return pi


class NodeInfo:
    """A node and the pods assigned (or assumed) to it, with their summed requests."""

    __slots__ = ("node", "name", "pods", "requested", "non_zero_requested", "allocatable", "labels",
                 "taints", "generation", "used_ports", "affinity_pods", "anti_affinity_pods", "_counts", "unschedulable")

    def __init__(self, node: Optional[Obj] = None, name: str = "") -> None:
        self.node: Optional[Obj] = None
        self.name = name
        self.pods: dict[str, PodInfo] = {}
        self.requested = Resource()
        self.non_zero_requested = Resource()
        self.allocatable = Resource()
        self.labels: Mapping[str, str] = {}
        self.taints: list[Obj] = []
        self.unschedulable = False
        self.generation = 0
        self.used_ports: dict[tuple[str, str, int], int] = {}
        self.affinity_pods = 0        # pods with any pod (anti-)affinity term
        self.anti_affinity_pods = 0   # pods with required anti-affinity terms
        self._counts: dict[Any, int] = {}
        if node is not None:
            self.set_node(node)

    def set_node(self, node: Obj) -> None:
        self.node = node
        self.name = node["metadata"]["name"]
        self.labels = node["metadata"].get("labels") or {}
        self.taints = list((node.get("spec") or {}).get("taints") or [])
        self.unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
        st = node.get("status") or {}
        self.allocatable = Resource.from_list(st.get("allocatable") or st.get("capacity") or {})
        self.generation += 1

    def add_pod(self, pi: PodInfo) -> None:
        old = self.pods.get(pi.key)
        if old is not None:
            self.remove_pod(pi.key)
        self.pods[pi.key] = pi
        self.requested.add(pi.requests)
        self.non_zero_requested.add(pi.non_zero)
        for p in _host_ports(pi.pod):
            self.used_ports[p] = self.used_ports.get(p, 0) + 1
        if pi.has_affinity:
            self.affinity_pods += 1
            if pi.required_anti_affinity:
                self.anti_affinity_pods += 1
        self._counts = {}
        self.generation += 1

    def remove_pod(self, key: str) -> Optional[PodInfo]:
        pi = self.pods.pop(key, None)
        if pi is None:
            return None
        self.requested.add(pi.requests, -1)
        self.non_zero_requested.add(pi.non_zero, -1)
        for p in _host_ports(pi.pod):
            n = self.used_ports.get(p, 0) - 1
            if n > 0:
                self.used_ports[p] = n
            else:
                self.used_ports.pop(p, None)
        if pi.has_affinity:
            self.affinity_pods -= 1
            if pi.required_anti_affinity:
                self.anti_affinity_pods -= 1
        self._counts = {}
        self.generation += 1
        return pi

    def count_matching(self, key: Any, match: Callable[[PodInfo], bool]) -> int:
        """How many (non-terminating) pods here satisfy `match`; memoised under `key`
        until the node's pods change, so topology counts cost little between cycles.
        `key` None means: do not memoise (the predicate depends on changing state)."""
        if key is not None:
            n = self._counts.get(key)
            if n is not None:
                return n
        n = 0
        for pi in self.pods.values():
            if not pi.terminating and match(pi):
                n += 1
        if key is not None:
            self._counts[key] = n
        return n

    def clone(self) -> "NodeInfo":
        c = NodeInfo()
        c.node, c.name, c.labels, c.taints = self.node, self.name, self.labels, self.taints
        c.unschedulable = self.unschedulable
        c.pods = dict(self.pods)
        c.requested = self.requested.copy()
        c.non_zero_requested = self.non_zero_requested.copy()
        c.allocatable = self.allocatable
        c.used_ports = dict(self.used_ports)
        c.affinity_pods, c.anti_affinity_pods = self.affinity_pods, self.anti_affinity_pods
        c.generation = self.generation
        return c

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)})"


def _host_ports(pod: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            hp = p.get("hostPort")
            if hp:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
    return out


# --------------------------------------------------------------------------- the runner

@dataclass
class PluginRef:
    plugin: Any
    weight: int = 1


@dataclass
class Diagnosis:
    """Why a pod did not fit: each node's rejecting status, and PreFilter/PostFilter messages."""

    node_statuses: dict[str, Status] = field(default_factory=dict)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""
    num_all_nodes: int = 0

    def message(self) -> str:
        """Upstream FitError.Error(): `0/N nodes are available: <histogram>. <postfilter>.`"""
        msg = f"0/{self.num_all_nodes} nodes are available:"
        if self.pre_filter_msg:
            msg += f" {self.pre_filter_msg}."
        else:
            counts: dict[str, int] = {}
            for st in self.node_statuses.values():
                for r in st.reasons:
                    counts[r] = counts.get(r, 0) + 1
            parts = sorted(f"{v} {k}" for k, v in counts.items())
            if parts:
                msg += f" {', '.join(parts)}."
        if self.post_filter_msg:
            msg += f" {self.post_filter_msg}"
        return msg


class Framework:
    """One profile's plugins, called per extension point in the order listed."""

    def __init__(self, scheduler_name: str, plugins: Sequence[Any], weights: Optional[Mapping[str, int]] = None) -> None:
        self.scheduler_name = scheduler_name
        self.plugins = list(plugins)
        # this profile's EventRecorder (reportingController = scheduler_name), set by the
        # Scheduler that runs the profile; None when a profile runs without one (unit tests)
        self.recorder: Any = None
        weights = weights or {}

        def having(method: str) -> list[Any]:
            return [p for p in self.plugins if callable(getattr(p, method, None))]

        self.pre_filter_plugins = having("pre_filter")
        self.filter_plugins = having("filter")
        self.post_filter_plugins = having("post_filter")
        self.pre_score_plugins = having("pre_score")
        self.score_plugins = [PluginRef(p, int(weights.get(p.name, 1))) for p in having("score")]
        self.reserve_plugins = having("reserve")
        self.permit_plugins = having("permit")
        self.pre_bind_plugins = having("pre_bind")
        self.bind_plugins = having("bind")
        self.pod_extension_plugins = [p for p in self.pre_filter_plugins if callable(getattr(p, "add_pod", None))]
        for p in self.plugins:
            hook = getattr(p, "set_framework", None)
            if hook is not None:
                hook(self)

    def plugin(self, name: str) -> Any:
        return next((p for p in self.plugins if p.name == name), None)

    # -- scheduling cycle
    def run_pre_filter(self, state: CycleState, pod: Obj) -> Status:
        state.pop("__filters", None)
        for p in self.pre_filter_plugins:
            st = p.pre_filter(state, pod)
            if not _ok(st):
                if st.code == Code.SKIP:
                    state.setdefault("__skip_filter", set()).add(p.name)
                    continue
                st.plugin = p.name
                return st
        return SUCCESS

    def filters(self, state: CycleState) -> list[tuple[str, Any, Any]]:
        """This cycle's filters, (plugin name, filter, filter_batch or None), for the
        plugins PreFilter did not tell to skip.  `filter_batch(state, pod, nodes)` answers
        a list of statuses (None: fits) for many nodes in one call."""
        fl = state.get("__filters")
        if fl is None:
            skip = state.get("__skip_filter") or ()
            fl = state["__filters"] = [(p.name, p.filter, getattr(p, "filter_batch", None))
                                       for p in self.filter_plugins if p.name not in skip]
        return fl

    def run_filter(self, state: CycleState, pod: Obj, ni: NodeInfo) -> Status:
        for name, f, _ in self.filters(state):
            st = f(state, pod, ni)
            if st is not None and st.code != Code.SUCCESS:
                st.plugin = name
                return st
        return SUCCESS

    def run_filter_with_nominated(self, state: CycleState, pod: Obj, ni: NodeInfo, nominated: Sequence[PodInfo]) -> Status:
        """Filter as if the nominated pods (of at least the pod's priority) were already on
        the node, so a preemptor's room is not taken by a lower-priority pod; the node must
        also fit without them (upstream RunFilterPluginsWithNominatedPods)."""
        trial = ni.clone()
        st = state.clone()
        for p in nominated:
            trial.add_pod(p)
            for pl in self.pod_extension_plugins:
                pl.add_pod(st, pod, p, trial)
        status = self.run_filter(st, pod, trial)
        if not status.is_success():
            return status
        return self.run_filter(state, pod, ni)

    def run_post_filter(self, state: CycleState, pod: Obj, statuses: dict[str, Status]) -> tuple[Optional[str], Status]:
        last: Status = Status.unschedulable()
        for p in self.post_filter_plugins:
            nominated, st = p.post_filter(state, pod, statuses)
            if _ok(st):
                return nominated, SUCCESS
            st.plugin = p.name
            last = st
            if st.code != Code.UNSCHEDULABLE:
                return None, st
        return None, last

    def run_pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        skip: set[str] = set()
        for p in self.pre_score_plugins:
            st = p.pre_score(state, pod, nodes)
            if not _ok(st):
                if st.code == Code.SKIP:
                    skip.add(p.name)
                    continue
                st.plugin = p.name
                return st
        state["__skip_score"] = skip
        return SUCCESS

    def run_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> dict[str, int]:
        """Total weighted score per node name (each plugin's scores normalized to 0..100).
        A plugin may score all nodes in one call (`score_nodes`), which saves a Python call
        per node and plugin on the hot path."""
        names = [ni.name for ni in nodes]
        totals = [0] * len(nodes)
        skip = state.get("__skip_score") or ()
        for ref in self.score_plugins:
            p = ref.plugin
            if p.name in skip:
                continue
            batch = getattr(p, "score_nodes", None)
            if batch is not None:
                values = batch(state, pod, nodes)
            else:
                values = [p.score(state, pod, ni) for ni in nodes]
            norm = getattr(p, "normalize_score", None)
            if norm is not None:
                scores = dict(zip(names, values))
                norm(state, pod, scores)
                values = [scores[n] for n in names]
            w = ref.weight
            if w == 1:
                totals = [a + b for a, b in zip(totals, values)]
            else:
                totals = [a + b * w for a, b in zip(totals, values)]
        return dict(zip(names, totals))

    def run_reserve(self, state: CycleState, pod: Obj, node: str) -> Status:
        for i, p in enumerate(self.reserve_plugins):
            st = p.reserve(state, pod, node)
            if not _ok(st):
                st.plugin = p.name
                self.run_unreserve(state, pod, node)
                return st
        return SUCCESS

    def run_unreserve(self, state: CycleState, pod: Obj, node: str) -> None:
        for p in reversed(self.reserve_plugins):
            un = getattr(p, "unreserve", None)
            if un is not None:
                un(state, pod, node)

    def run_permit(self, state: CycleState, pod: Obj, node: str) -> Status:
        for p in self.permit_plugins:
            st = p.permit(state, pod, node)
            if not _ok(st):
                st.plugin = p.name
                return st
        return SUCCESS

    # -- binding cycle
    async def run_pre_bind(self, state: CycleState, pod: Obj, node: str) -> Status:
        """PreBind plugins in order; the first failure ends the binding cycle (upstream
        wraps it as `running PreBind plugin "NAME": ...`)."""
        for p in self.pre_bind_plugins:
            st = await p.pre_bind(state, pod, node)
            if st is not None and st.code == Code.SKIP:
                continue
            if not _ok(st):
                st.plugin = p.name
                st.reasons = [f'running PreBind plugin "{p.name}": {st.message()}']
                return st
        return SUCCESS

    async def run_bind(self, state: CycleState, pod: Obj, node: str) -> Status:
        for p in self.bind_plugins:
            st = await p.bind(state, pod, node)
            if st is not None and st.code == Code.SKIP:
                continue
            if not _ok(st):
                st.plugin = p.name
                return st
            return SUCCESS
        return Status(Code.ERROR, "no bind plugin bound the pod")


def default_normalize(scores: dict[str, int], reverse: bool = False) -> None:
    """Upstream helper.DefaultNormalizeScore: scale to 0..100 by the max; reverse flips."""
    mx = max(scores.values(), default=0)
    if mx == 0:
        if reverse:
            for k in scores:
                scores[k] = MAX_NODE_SCORE
        return
    for k, s in scores.items():
        s = MAX_NODE_SCORE * s // mx
        scores[k] = MAX_NODE_SCORE - s if reverse else s
