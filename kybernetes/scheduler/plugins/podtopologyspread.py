"""PodTopologySpread: spec.topologySpreadConstraints.  DoNotSchedule constraints filter
(a node is rejected when placing the pod there would make its domain exceed the global
minimum by more than maxSkew, with minDomains treating missing domains as empty);
ScheduleAnyway constraints score (fewer matching pods in the node's domain is better).

Which nodes count follows nodeAffinityPolicy (default Honor: only nodes that match the
pod's nodeSelector and required node affinity) and nodeTaintsPolicy (default Ignore).
Per-node pod counts are memoised on the NodeInfo until its pods change.

A pod without constraints of its own is scored with upstream's system defaults (hostname
maxSkew 3, zone maxSkew 5, both ScheduleAnyway) when a Service, ReplicationController,
ReplicaSet or StatefulSet selects it; the Scheduler keeps those selectors in its cache."""

from __future__ import annotations

import math
from typing import Any, Optional

from kybernetes.api.selectors import LabelSelector
from kybernetes.scheduler.framework import MAX_NODE_SCORE, Code, NodeInfo, PodInfo, Status, pod_info
from kybernetes.scheduler.plugins.helpers import find_untolerated, match_node_selector_terms
from kybernetes.scheduler.terms import _intern, selector_with_keys

NAME = "PodTopologySpread"
ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = ERR_CONSTRAINTS + " (missing required label)"
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
DO_NOT_SCHEDULE, SCHEDULE_ANYWAY = "DoNotSchedule", "ScheduleAnyway"


class Constraint:
    __slots__ = ("max_skew", "topology_key", "when", "selector", "min_domains", "honor_affinity", "honor_taints")

    def __init__(self, c: dict[str, Any], pod_labels) -> None:
        self.max_skew = int(c.get("maxSkew") or 1)
        self.topology_key = c.get("topologyKey") or ""
        self.when = c.get("whenUnsatisfiable") or DO_NOT_SCHEDULE
        self.selector: LabelSelector = selector_with_keys(c.get("labelSelector"), pod_labels, c.get("matchLabelKeys"))
        self.min_domains = int(c.get("minDomains") or 1)
        self.honor_affinity = (c.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"


# upstream's system default constraints (defaultingType System), used by scoring for a
# pod that has no topologySpreadConstraints of its own but is selected by a Service,
# ReplicationController, ReplicaSet or StatefulSet
SYSTEM_DEFAULT_CONSTRAINTS = (
    {"topologyKey": HOSTNAME, "whenUnsatisfiable": SCHEDULE_ANYWAY, "maxSkew": 3},
    {"topologyKey": ZONE, "whenUnsatisfiable": SCHEDULE_ANYWAY, "maxSkew": 5},
)
_WORKLOADS = {("v1", "ReplicationController"), ("apps/v1", "ReplicaSet"), ("apps/v1", "StatefulSet")}


def default_selector(pod, cache) -> Optional[dict[str, Any]]:
    """The label selector the system defaults spread by (upstream DefaultSelector): the
    selectors of the Services in the pod's namespace that select it, and that of its
    controlling ReplicationController, ReplicaSet or StatefulSet, all required at once.
    None when nothing selects the pod (no default spreading then)."""
    meta = pod.get("metadata") or {}
    ns, labels = meta.get("namespace") or "", meta.get("labels") or {}
    match: dict[str, str] = {}
    for sel in (getattr(cache, "services", None) or {}).get(ns, {}).values():
        if all(labels.get(k) == v for k, v in sel.items()):
            match.update(sel)
    exprs: list[dict[str, Any]] = []
    ref = next((r for r in meta.get("ownerReferences") or () if r.get("controller")), None)
    if ref is not None and (ref.get("apiVersion"), ref.get("kind")) in _WORKLOADS:
        sel = (getattr(cache, "workloads", None) or {}).get((ref["kind"], ns, ref.get("name")))
        if sel is not None and ref["kind"] == "ReplicationController":
            match.update(sel)
        elif sel is not None:
            # each of its requirements is added (ANDed), whatever the Services asked
            exprs += [{"key": k, "operator": "In", "values": [v]} for k, v in (sel.get("matchLabels") or {}).items()]
            exprs += list(sel.get("matchExpressions") or ())
    if not match and not exprs:
        return None
    out: dict[str, Any] = {}
    if match:
        out["matchLabels"] = match
    if exprs:
        out["matchExpressions"] = exprs
    return out


def default_constraints(pod, cache) -> list["Constraint"]:
    """The system default constraints with the pod's default selector (none when nothing
    selects the pod)."""
    sel = default_selector(pod, cache)
    if sel is None:
        return []
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return [Constraint({**c, "labelSelector": sel}, labels) for c in SYSTEM_DEFAULT_CONSTRAINTS]


def constraints_of(pod, when: str) -> list[Constraint]:
    spec = pod.get("spec") or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return [c for c in (Constraint(x or {}, labels) for x in spec.get("topologySpreadConstraints") or ()) if c.when == when]


class _Inclusion:
    """The pod's node-inclusion checks (nodeSelector/required affinity, tolerations)."""

    def __init__(self, pod) -> None:
        spec = pod.get("spec") or {}
        self.selector = spec.get("nodeSelector") or {}
        req = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        self.terms = (req or {}).get("nodeSelectorTerms") if req else None
        self.tolerations = spec.get("tolerations") or []

    def matches(self, c: Constraint, ni: NodeInfo) -> bool:
        if c.honor_affinity:
            labels = ni.labels
            for k, v in self.selector.items():
                if labels.get(k) != v:
                    return False
            if self.terms is not None and not match_node_selector_terms(self.terms, ni.node):
                return False
        if c.honor_taints and find_untolerated(ni.taints, self.tolerations, ("NoSchedule", "NoExecute")) is not None:
            return False
        return True


def _counter(c: Constraint, ns: str):
    sel = c.selector

    def match(p: PodInfo) -> bool:
        return p.namespace == ns and sel.matches(p.labels)
    return _intern(("pts", ns, sel)), match  # an int key: memo lookups hash cheaply


def _has_keys(ni: NodeInfo, cs: list[Constraint]) -> bool:
    labels = ni.labels
    return all(c.topology_key in labels for c in cs)


class _FilterState:
    __slots__ = ("constraints", "counts", "_mins", "inclusion", "namespace", "self_match")

    def __init__(self, constraints: list[Constraint], inclusion: _Inclusion, namespace: str,
                 self_match: list[int]) -> None:
        self.constraints = constraints
        self.inclusion = inclusion
        self.namespace = namespace
        self.self_match = self_match  # per constraint: 1 if the pod counts for itself
        self.counts: list[dict[str, int]] = [{} for _ in constraints]  # per constraint: domain -> pods
        self._mins: list[Optional[int]] = [None] * len(constraints)

    def clone(self) -> "_FilterState":
        c = _FilterState(self.constraints, self.inclusion, self.namespace, self.self_match)
        c.counts = [dict(d) for d in self.counts]
        c._mins = list(self._mins)
        return c

    def min_match(self, i: int) -> Optional[int]:
        """The smallest domain count (0 while fewer than minDomains domains exist); None
        when there is no eligible domain at all."""
        m = self._mins[i]
        if m is None:
            d = self.counts[i]
            if not d:
                return None
            m = 0 if len(d) < self.constraints[i].min_domains else min(d.values())
            self._mins[i] = m
        return m

    def update(self, other: PodInfo, ni: NodeInfo, sign: int) -> None:
        if other.namespace != self.namespace or other.terminating or not _has_keys(ni, self.constraints):
            return
        for i, c in enumerate(self.constraints):
            if c.selector.matches(other.labels) and self.inclusion.matches(c, ni):
                tv = ni.labels[c.topology_key]
                self.counts[i][tv] = self.counts[i].get(tv, 0) + sign
                self._mins[i] = None


class PodTopologySpread:
    name = NAME

    def __init__(self, *, system_defaulting: bool = True) -> None:
        # upstream defaultingType: System (the default) or List with no default constraints
        self.system_defaulting = system_defaulting

    # -- filter
    def pre_filter(self, state, pod) -> Optional[Status]:
        cs = constraints_of(pod, DO_NOT_SCHEDULE)
        if not cs:
            return Status(Code.SKIP)
        pi = pod_info(state, pod)
        inc = _Inclusion(pod)
        fs = _FilterState(cs, inc, pi.namespace, [1 if c.selector.matches(pi.labels) else 0 for c in cs])
        counters = [_counter(c, pi.namespace) for c in cs]
        keys = [c.topology_key for c in cs]
        trivial = [not c.honor_affinity and not c.honor_taints for c in cs]
        plain_inc = not inc.selector and inc.terms is None and not any(c.honor_taints for c in cs)
        for ni in state.snapshot.node_infos():
            labels = ni.labels
            if len(keys) == 1:
                if keys[0] not in labels:
                    continue
            elif not all(k in labels for k in keys):
                continue
            for i, c in enumerate(cs):
                if not (trivial[i] or plain_inc) and not inc.matches(c, ni):
                    continue
                key, match = counters[i]
                tv = labels[keys[i]]
                d = fs.counts[i]
                d[tv] = d.get(tv, 0) + (ni.count_matching(key, match) if ni.pods else 0)
        state[NAME] = fs
        return None

    def add_pod(self, state, pod, other: PodInfo, ni: NodeInfo) -> None:
        fs = state.get(NAME)
        if fs is not None:
            fs.update(other, ni, 1)

    def remove_pod(self, state, pod, other: PodInfo, ni: NodeInfo) -> None:
        fs = state.get(NAME)
        if fs is not None:
            fs.update(other, ni, -1)

    def filter(self, state, pod, ni) -> Optional[Status]:
        fs: _FilterState = state.get(NAME)
        if fs is None:
            return None
        for i, c in enumerate(fs.constraints):
            tv = ni.labels.get(c.topology_key)
            if tv is None:
                return Status.unresolvable(ERR_MISSING_LABEL)
            m = fs.min_match(i)
            if m is None:
                continue
            if fs.counts[i].get(tv, 0) + fs.self_match[i] - m > c.max_skew:
                return Status.unschedulable(ERR_CONSTRAINTS)
        return None

    def filter_batch(self, state, pod, nodes):
        fs: _FilterState = state.get(NAME)
        if fs is None or len(fs.constraints) != 1:
            return [self.filter(state, pod, ni) for ni in nodes]
        c = fs.constraints[0]
        tk, counts, m = c.topology_key, fs.counts[0], fs.min_match(0)
        limit = None if m is None else c.max_skew + m - fs.self_match[0]  # count must stay <= limit
        out = []
        for ni in nodes:
            tv = ni.labels.get(tk)
            if tv is None:
                out.append(Status.unresolvable(ERR_MISSING_LABEL))
            elif limit is not None and counts.get(tv, 0) > limit:
                out.append(Status.unschedulable(ERR_CONSTRAINTS))
            else:
                out.append(None)
        return out

    # -- score
    def pre_score(self, state, pod, nodes) -> Optional[Status]:
        if (pod.get("spec") or {}).get("topologySpreadConstraints"):
            cs, require_all = constraints_of(pod, SCHEDULE_ANYWAY), True
        elif self.system_defaulting:
            # nodes without a zone label still get hostname spreading (upstream
            # requireAllTopologies is false for the system defaults)
            cs, require_all = default_constraints(pod, state.snapshot), False
        else:
            cs, require_all = [], True
        if not cs:
            return Status(Code.SKIP)
        pi = pod_info(state, pod)
        inc = _Inclusion(pod)
        ignored: set[str] = set()
        pairs: dict[tuple[str, str], int] = {}
        sizes = [0] * len(cs)
        for ni in nodes:
            if require_all and not _has_keys(ni, cs):
                ignored.add(ni.name)
                continue
            for i, c in enumerate(cs):
                if c.topology_key == HOSTNAME:
                    continue
                pair = (c.topology_key, ni.labels.get(c.topology_key, ""))
                if pair not in pairs:
                    pairs[pair] = 0
                    sizes[i] += 1
        counters = [_counter(c, pi.namespace) for c in cs]
        for i, c in enumerate(cs):
            if c.topology_key == HOSTNAME:
                sizes[i] = len(nodes) - len(ignored)
        if pairs:
            for ni in state.snapshot.node_infos():
                if not ni.pods or (require_all and not _has_keys(ni, cs)):
                    continue
                for i, c in enumerate(cs):
                    if c.topology_key == HOSTNAME:
                        continue
                    pair = (c.topology_key, ni.labels.get(c.topology_key, ""))
                    if pair in pairs and inc.matches(c, ni):
                        key, match = counters[i]
                        pairs[pair] += ni.count_matching(key, match)
        weights = [math.log(s + 2) for s in sizes]
        state[NAME + "/score"] = (cs, counters, pairs, weights, ignored)
        return None

    def score(self, state, pod, ni) -> int:
        cs, counters, pairs, weights, ignored = state[NAME + "/score"]
        if ni.name in ignored:
            return 0
        total = 0.0
        for i, c in enumerate(cs):
            tv = ni.labels.get(c.topology_key)
            if tv is None:
                continue
            if c.topology_key == HOSTNAME:
                key, match = counters[i]
                cnt = ni.count_matching(key, match) if ni.pods else 0
            else:
                cnt = pairs.get((c.topology_key, tv), 0)
            total += cnt * weights[i] + (c.max_skew - 1)
        return int(total + 0.5)  # Go's math.Round (half away from zero; total >= 0)

    def normalize_score(self, state, pod, scores: dict[str, int]) -> None:
        ignored = state[NAME + "/score"][4]
        live = [s for n, s in scores.items() if n not in ignored]
        lo, hi = (min(live), max(live)) if live else (0, 0)
        for n, s in scores.items():
            if n in ignored:
                scores[n] = 0
            elif hi == 0:
                scores[n] = MAX_NODE_SCORE
            else:
                scores[n] = MAX_NODE_SCORE * (hi + lo - s) // hi
