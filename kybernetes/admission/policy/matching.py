"""Which requests a policy's matchConstraints or a binding's matchResources select (upstream
admission/plugin/policy/matching): the namespace and object selectors, the excluded rules,
then the resource rules (with resourceNames); matchPolicy Equivalent as for webhooks."""

from __future__ import annotations

from typing import Any

from kybernetes.admission.webhooks.matching import (
    Attributes,
    NamespaceLabels,
    namespace_selector_matches,
    object_selector_matches,
    rule_matches,
)

Obj = dict[str, Any]


def _named_rules_match(rules: list[Obj], attrs: Attributes, match_policy: str) -> bool:
    candidates = [attrs.gvrk] + (list(attrs.equivalents) if match_policy == "Equivalent" else [])
    for gvrk in candidates:
        for rule in rules:
            names = rule.get("resourceNames") or []
            if rule_matches(rule, attrs, gvrk) and (not names or attrs.name in names):
                return True
    return False


async def matches(mr: Obj, attrs: Attributes, namespace_labels: NamespaceLabels) -> bool:
    """Whether MatchResources `mr` selects the request.  No resourceRules selects every
    resource (a binding narrowing nothing); a policy's matchConstraints always has some."""
    if not await namespace_selector_matches({"namespaceSelector": mr.get("namespaceSelector") or {}}, attrs,
                                            namespace_labels):
        return False
    if not object_selector_matches({"objectSelector": mr.get("objectSelector") or {}}, attrs):
        return False
    policy = mr.get("matchPolicy") or "Equivalent"
    if _named_rules_match(mr.get("excludeResourceRules") or [], attrs, policy):
        return False
    rules = mr.get("resourceRules") or []
    return not rules or _named_rules_match(rules, attrs, policy)
