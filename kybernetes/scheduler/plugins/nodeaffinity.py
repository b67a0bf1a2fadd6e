"""NodeAffinity: spec.nodeSelector and required node affinity filter; preferred terms
score (sum of matching weights, normalized to 0..100)."""

from __future__ import annotations

from kybernetes.scheduler.framework import Code, Status, default_normalize
from kybernetes.scheduler.plugins.helpers import match_node_selector_terms, match_term

NAME = "NodeAffinity"
ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"


def _node_affinity(pod):
    return ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}


class NodeAffinity:
    name = NAME

    def pre_filter(self, state, pod):
        spec = pod.get("spec") or {}
        sel = spec.get("nodeSelector") or {}
        req = (_node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution") or {})
        terms = req.get("nodeSelectorTerms") if req else None
        if not sel and terms is None:
            return Status(Code.SKIP)
        state[NAME] = (sel, terms)
        return None

    def filter(self, state, pod, ni):
        sel, terms = state.get(NAME) or ({}, None)
        node = ni.node
        labels = ni.labels
        for k, v in sel.items():
            if labels.get(k) != v:
                return Status.unresolvable(ERR_REASON_POD)
        if terms is not None and not match_node_selector_terms(terms, node):
            return Status.unresolvable(ERR_REASON_POD)
        return None

    def pre_score(self, state, pod, nodes):
        pref = _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or []
        pref = [t for t in pref if t.get("weight")]
        if not pref:
            return Status(Code.SKIP)
        state[NAME + "/pref"] = pref
        return None

    def score(self, state, pod, ni):
        total = 0
        for t in state.get(NAME + "/pref") or ():
            if match_term(t.get("preference") or {}, ni.node):
                total += int(t["weight"])
        return total

    def normalize_score(self, state, pod, scores):
        default_normalize(scores)
