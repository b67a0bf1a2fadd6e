"""Matching rules shared by plugins: node selector terms (kybernetes.api.nodeselector,
re-exported here) and taint tolerations (upstream component-helpers/scheduling/corev1)."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from kybernetes.api.nodeselector import match_expression, match_node_selector_terms, match_term

__all__ = ["match_expression", "match_term", "match_node_selector_terms", "tolerates", "find_untolerated"]


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Toleration.ToleratesTaint."""
    eff = toleration.get("effect") or ""
    if eff and eff != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def find_untolerated(taints: Sequence[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]],
                     effects: Sequence[str]) -> Optional[Mapping[str, Any]]:
    for t in taints:
        if t.get("effect") not in effects:
            continue
        if not any(tolerates(tol, t) for tol in tolerations):
            return t
    return None
