"""InterPodAffinity: required pod affinity and anti-affinity filter nodes by topology
domain, existing pods' required anti-affinity is honoured symmetrically, and preferred
terms (the pod's own and those of the pods already placed) score.

PreFilter counts, per topology pair (key, value), the pods that the incoming pod's
required terms select and the placed pods whose anti-affinity rejects the incoming pod;
Filter then only looks those counts up for each node.  Placed pods' terms come from the
cache's term index (one entry per distinct term), and per-node pod counts are memoised on
the NodeInfo, so a cycle costs the number of nodes plus the number of distinct terms."""

from __future__ import annotations

from typing import Optional

from kybernetes.scheduler.cache import ANTI, SCORE
from kybernetes.scheduler.framework import MAX_NODE_SCORE, Code, NodeInfo, PodInfo, Status, pod_info
from kybernetes.scheduler.terms import AffinityTerm

NAME = "InterPodAffinity"
ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

Pair = tuple[str, str]


def _bump(counts: dict[Pair, int], pair: Pair, n: int) -> None:
    v = counts.get(pair, 0) + n
    if v:
        counts[pair] = v
    else:
        counts.pop(pair, None)


def _bump_nested(counts: dict[str, dict[str, int]], tk: str, tv: str, n: int) -> None:
    d = counts.setdefault(tk, {})
    v = d.get(tv, 0) + n
    if v:
        d[tv] = v
    else:
        d.pop(tv, None)
        if not d:
            del counts[tk]


def _matches_all(terms: list[AffinityTerm], pi: PodInfo, nsl) -> bool:
    return all(t.matches(pi.namespace, pi.labels, nsl) for t in terms)


class _FilterState:
    __slots__ = ("pi", "existing_anti", "affinity", "anti", "nsl")

    def __init__(self, pi: PodInfo, nsl) -> None:
        self.pi = pi
        self.nsl = nsl
        # placed pods whose anti-affinity rejects the pod: topology key -> value -> count
        self.existing_anti: dict[str, dict[str, int]] = {}
        self.affinity: dict[Pair, int] = {}        # pods matching all required affinity terms
        self.anti: dict[Pair, int] = {}            # pods matching a required anti-affinity term

    def clone(self) -> "_FilterState":
        c = _FilterState(self.pi, self.nsl)
        c.existing_anti = {k: dict(v) for k, v in self.existing_anti.items()}
        c.affinity, c.anti = dict(self.affinity), dict(self.anti)
        return c

    def update(self, other: PodInfo, ni: NodeInfo, sign: int) -> None:
        """Account for `other` appearing on (sign 1) or leaving (sign -1) node `ni`."""
        labels, pi, nsl = ni.labels, self.pi, self.nsl
        for t in other.required_anti_affinity:
            tv = labels.get(t.topology_key)
            if tv is not None and t.matches(pi.namespace, pi.labels, nsl):
                _bump_nested(self.existing_anti, t.topology_key, tv, sign)
        if other.terminating:
            return
        if pi.required_affinity and _matches_all(pi.required_affinity, other, nsl):
            for t in pi.required_affinity:
                tv = labels.get(t.topology_key)
                if tv is not None:
                    _bump(self.affinity, (t.topology_key, tv), sign)
        for t in pi.required_anti_affinity:
            tv = labels.get(t.topology_key)
            if tv is not None and t.matches(other.namespace, other.labels, nsl):
                _bump(self.anti, (t.topology_key, tv), sign)


def _term_count_key(t: AffinityTerm):
    # a namespaceSelector's answer changes with namespace labels: never memoise it
    return ("ipa", t.key) if t.ns_selector is None else None


class InterPodAffinity:
    name = NAME

    # -- filter
    def pre_filter(self, state, pod) -> Optional[Status]:
        snap = state.snapshot
        pi = pod_info(state, pod)
        nsl = snap.namespace_labels
        fs = _FilterState(pi, nsl)
        for t, pairs in snap.term_index[ANTI].values():
            if t.matches(pi.namespace, pi.labels, nsl):
                for (tk, tv), n in pairs.items():
                    _bump_nested(fs.existing_anti, tk, tv, n)
        if not fs.existing_anti and not pi.required_affinity and not pi.required_anti_affinity:
            return Status(Code.SKIP)
        if pi.required_affinity or pi.required_anti_affinity:
            aff = pi.required_affinity
            aff_key = ("ipa-all", tuple(t.key for t in aff)) if all(t.ns_selector is None for t in aff) else None

            def match_all(p: PodInfo) -> bool:
                return _matches_all(aff, p, nsl)

            for ni in snap.node_infos():
                if not ni.pods:
                    continue
                labels = ni.labels
                if aff:
                    n = ni.count_matching(aff_key, match_all)
                    if n:
                        for t in aff:
                            tv = labels.get(t.topology_key)
                            if tv is not None:
                                _bump(fs.affinity, (t.topology_key, tv), n)
                for t in pi.required_anti_affinity:
                    tv = labels.get(t.topology_key)
                    if tv is None:
                        continue
                    n = ni.count_matching(_term_count_key(t), lambda p, t=t: t.matches(p.namespace, p.labels, nsl))
                    if n:
                        _bump(fs.anti, (t.topology_key, tv), n)
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
        labels = ni.labels
        aff = fs.pi.required_affinity
        if aff:
            exist = True
            for t in aff:
                tv = labels.get(t.topology_key)
                if tv is None:
                    return Status.unresolvable(ERR_AFFINITY)
                if fs.affinity.get((t.topology_key, tv), 0) <= 0:
                    exist = False
            # the first of a group of pods with affinity to each other may go anywhere
            if not exist and not (not fs.affinity and _matches_all(aff, fs.pi, fs.nsl)):
                return Status.unresolvable(ERR_AFFINITY)
        if fs.anti:
            for t in fs.pi.required_anti_affinity:
                tv = labels.get(t.topology_key)
                if tv is not None and fs.anti.get((t.topology_key, tv), 0) > 0:
                    return Status.unschedulable(ERR_ANTI_AFFINITY)
        if fs.existing_anti:
            for tk, values in fs.existing_anti.items():
                tv = labels.get(tk)
                if tv is not None and values.get(tv, 0) > 0:
                    return Status.unschedulable(ERR_EXISTING_ANTI_AFFINITY)
        return None

    def filter_batch(self, state, pod, nodes):
        fs: _FilterState = state.get(NAME)
        if fs is None:
            return [None] * len(nodes)
        if fs.pi.required_affinity:
            return [self.filter(state, pod, ni) for ni in nodes]
        anti = [(t.topology_key, fs.anti) for t in fs.pi.required_anti_affinity] if fs.anti else []
        existing = list(fs.existing_anti.items())
        out = []
        for ni in nodes:
            labels = ni.labels
            r = None
            for tk, counts in anti:
                tv = labels.get(tk)
                if tv is not None and counts.get((tk, tv), 0) > 0:
                    r = Status.unschedulable(ERR_ANTI_AFFINITY)
                    break
            if r is None:
                for tk, values in existing:
                    tv = labels.get(tk)
                    if tv is not None and values.get(tv, 0) > 0:
                        r = Status.unschedulable(ERR_EXISTING_ANTI_AFFINITY)
                        break
            out.append(r)
        return out

    # -- score
    def pre_score(self, state, pod, nodes) -> Optional[Status]:
        snap = state.snapshot
        pi = pod_info(state, pod)
        nsl = snap.namespace_labels
        topo: dict[Pair, int] = {}
        for t, pairs in snap.term_index[SCORE].values():
            if t.matches(pi.namespace, pi.labels, nsl):
                for pair, w in pairs.items():
                    topo[pair] = topo.get(pair, 0) + w
        own = [(t, t.weight) for t in pi.preferred_affinity] + [(t, -t.weight) for t in pi.preferred_anti_affinity]
        if own:
            for ni in snap.node_infos():
                if not ni.pods:
                    continue
                labels = ni.labels
                for t, w in own:
                    tv = labels.get(t.topology_key)
                    if tv is None:
                        continue
                    n = ni.count_matching(_term_count_key(t), lambda p, t=t: t.matches(p.namespace, p.labels, nsl))
                    if n:
                        pair = (t.topology_key, tv)
                        topo[pair] = topo.get(pair, 0) + w * n
        topo = {k: v for k, v in topo.items() if v}
        if not topo:
            return Status(Code.SKIP)
        state[NAME + "/score"] = topo
        return None

    def score(self, state, pod, ni) -> int:
        topo = state[NAME + "/score"]
        total = 0
        for k, v in ni.labels.items():
            total += topo.get((k, v), 0)
        return total

    def normalize_score(self, state, pod, scores: dict[str, int]) -> None:
        if not scores:
            return
        lo, hi = min(scores.values()), max(scores.values())
        diff = hi - lo
        for k, s in scores.items():
            scores[k] = int(MAX_NODE_SCORE * (s - lo) / diff) if diff > 0 else 0
