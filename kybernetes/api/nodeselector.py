"""Node selector terms (upstream component-helpers/scheduling/corev1/nodeaffinity), one
implementation for every component: the scheduler's node affinity and topology plugins,
the DaemonSet controller, and PersistentVolume node affinity (api/storagehelpers) as the
scheduler and the kubelet check it."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence


def _int(v: str) -> Optional[int]:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def match_expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One NodeSelectorRequirement against a label set."""
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    has = key in labels
    if op == "In":
        return has and labels[key] in values
    if op == "NotIn":
        return not has or labels[key] not in values
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt"):
        if not has or len(values) != 1:
            return False
        a, b = _int(labels[key]), _int(values[0])
        if a is None or b is None:
            return False
        return a > b if op == "Gt" else a < b
    return False


def _match_fields(expr: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    # the only supported field is metadata.name (operators In / NotIn)
    if expr.get("key") != "metadata.name":
        return False
    return match_expression(expr, {"metadata.name": node["metadata"]["name"]})


def match_term(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """A NodeSelectorTerm: all expressions AND; an empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = node["metadata"].get("labels") or {}
    return all(match_expression(e, labels) for e in exprs) and all(_match_fields(f, node) for f in fields)


def match_node_selector_terms(terms: Sequence[Mapping[str, Any]], node: Mapping[str, Any]) -> bool:
    """NodeSelector: terms OR."""
    return any(match_term(t, node) for t in terms)
