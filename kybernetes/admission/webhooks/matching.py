"""Which webhooks a request calls (upstream apiserver/pkg/admission/plugin/webhook/predicates):
rules (operations, groups, versions, resources and subresources, scope), matchPolicy,
the namespace selector and the object selector.  Pure functions over `Attributes`, except
the namespace selector, which reads the namespace's labels through a callback."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Optional

from kybernetes.apiserver import errors
from kybernetes.registry.base import selector_matches

Obj = dict[str, Any]

ADMISSIONREGISTRATION = "admissionregistration.k8s.io"
# Requests on these never reach webhooks, so a broken webhook cannot lock out its own fix
# (upstream rules.IsExemptAdmissionConfigurationResource).
EXEMPT_RESOURCES = frozenset({
    "validatingwebhookconfigurations", "mutatingwebhookconfigurations",
    "validatingadmissionpolicies", "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
})


@dataclass(frozen=True)
class GVRK:
    """A served resource: group, version, resource (plural) and kind."""

    group: str
    version: str
    resource: str
    kind: str


@dataclass
class Attributes:
    """What admission knows about one request (upstream admission.Attributes)."""

    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    gvrk: GVRK
    subresource: str
    namespace: str  # "" for cluster-scoped objects; a Namespace's own name for namespaces
    name: str
    obj: Optional[Obj]
    old: Optional[Obj]
    dry_run: bool = False
    user: Any = None
    options: Optional[Obj] = None
    # other served versions of the same resource, for matchPolicy Equivalent
    equivalents: tuple[GVRK, ...] = field(default_factory=tuple)

    @property
    def is_namespace(self) -> bool:
        return self.gvrk.group == "" and self.gvrk.resource == "namespaces"


def is_exempt(attrs: Attributes) -> bool:
    return attrs.gvrk.group == ADMISSIONREGISTRATION and attrs.gvrk.resource in EXEMPT_RESOURCES


def _exact_or_wildcard(items: Iterable[str], requested: str) -> bool:
    return any(i == "*" or i == requested for i in items)


def _split_resource(res_sub: str) -> tuple[str, str]:
    if "/" in res_sub:
        res, sub = res_sub.split("/", 1)
        return res, sub
    return res_sub, ""


def _scope_matches(rule: Obj, attrs: Attributes) -> bool:
    scope = rule.get("scope") or "*"
    if scope == "*":
        return True
    if scope == "Namespaced":
        # a Namespace is cluster-scoped even though its requests carry its own name as namespace
        return not attrs.is_namespace and attrs.namespace != ""
    if scope == "Cluster":
        return attrs.is_namespace or attrs.namespace == ""
    return False


def rule_matches(rule: Obj, attrs: Attributes, gvrk: Optional[GVRK] = None) -> bool:
    """upstream rules.Matcher.Matches for one RuleWithOperations, against `gvrk` (default: the
    request's own resource)."""
    gvrk = gvrk or attrs.gvrk
    if not _scope_matches(rule, attrs):
        return False
    if not _exact_or_wildcard(rule.get("operations") or [], attrs.operation):
        return False
    if not _exact_or_wildcard(rule.get("apiGroups") or [], gvrk.group):
        return False
    if not _exact_or_wildcard(rule.get("apiVersions") or [], gvrk.version):
        return False
    for res_sub in rule.get("resources") or []:
        res, sub = _split_resource(res_sub)
        if (res == "*" or res == gvrk.resource) and (sub == "*" or sub == attrs.subresource):
            return True
    return False


def match_rules(hook: Obj, attrs: Attributes) -> Optional[GVRK]:
    """The resource version the hook is called with, or None when no rule matches.  Under
    matchPolicy Equivalent a rule naming another served version of the same resource also
    matches, and the request is then sent as that version."""
    rules = hook.get("rules") or []
    if any(rule_matches(r, attrs) for r in rules):
        return attrs.gvrk
    if (hook.get("matchPolicy") or "Equivalent") != "Equivalent":
        return None
    for eq in attrs.equivalents:
        if any(rule_matches(r, attrs, eq) for r in rules):
            return eq
    return None


def _labels(obj: Optional[Obj]) -> Optional[dict[str, str]]:
    if not isinstance(obj, dict):
        return None
    return (obj.get("metadata") or {}).get("labels") or {}


def object_selector_matches(hook: Obj, attrs: Attributes) -> bool:
    """An empty selector matches everything; otherwise the new or the old object must match
    (a missing object never matches)."""
    sel = hook.get("objectSelector") or {}
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        return True
    return any(labels is not None and selector_matches(sel, labels)
               for labels in (_labels(attrs.obj), _labels(attrs.old)))


NamespaceLabels = Callable[[str], Awaitable[Optional[dict[str, str]]]]


async def namespace_selector_matches(hook: Obj, attrs: Attributes, namespace_labels: NamespaceLabels) -> bool:
    """upstream namespace.Matcher.MatchNamespaceSelector.  Cluster-scoped objects other than
    Namespaces always match; a Namespace being created or updated is judged by its labels in
    the request; otherwise the stored namespace's labels count (404 if it does not exist)."""
    if attrs.namespace == "" and not attrs.is_namespace:
        return True
    sel = hook.get("namespaceSelector") or {}
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        return True
    if attrs.is_namespace and not attrs.subresource and attrs.operation in ("CREATE", "UPDATE"):
        labels = _labels(attrs.obj) or {}
    else:
        found = await namespace_labels(attrs.namespace)
        if found is None:
            raise errors.not_found("namespaces", "", attrs.namespace)
        labels = found
    return selector_matches(sel, labels)


async def should_call(hook: Obj, attrs: Attributes, namespace_labels: NamespaceLabels) -> Optional[GVRK]:
    """The resource version to call `hook` with, or None when it does not apply.  The
    checks run in upstream's order: rules first, then the namespace and object selectors."""
    gvrk = match_rules(hook, attrs)
    if gvrk is None:
        return None
    if not await namespace_selector_matches(hook, attrs, namespace_labels):
        return None
    if not object_selector_matches(hook, attrs):
        return None
    return gvrk
