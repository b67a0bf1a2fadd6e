"""RBAC escalation prevention, as upstream's pkg/registry/rbac (policybased storage,
escalation_check.go) and pkg/registry/rbac/validation (ConfirmNoEscalation, Covers,
CompactRules).

A user may create or update a Role/ClusterRole only when they already hold every
permission it grants — unless they are in ``system:masters`` or are allowed the
``escalate`` verb on that role.  A user may create or update a (Cluster)RoleBinding only
when they hold every permission of the referenced role — unless they are in
``system:masters`` or allowed ``bind`` on the referenced role.  Setting (or keeping) an
aggregationRule on a ClusterRole needs full authority (``*`` on everything).

The checks raise ``StatusError`` (403 Forbidden, 404 NotFound) with upstream's text,
e.g.::

    clusterroles.rbac.authorization.k8s.io "x" is forbidden: user "u" (groups=["g"]) is
    attempting to grant RBAC permissions not currently held:
    {APIGroups:[""], Resources:["pods"], Verbs:["get"]}
"""

from __future__ import annotations

import copy
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional, Sequence

from .authorizer import SYSTEM_MASTERS, Attributes, Decision, StatusError, aggregate_errors, go_quote, go_quote_list
from .rbac import RBAC_GROUP, RoleRefError, normalize_rule

__all__ = [
    "StatusError",
    "EscalationError",
    "breakdown_rule",
    "covers",
    "compact_rules",
    "compact_string",
    "escalation_allowed",
    "confirm_no_escalation",
    "role_escalation_authorized",
    "binding_authorized",
    "is_only_mutating_gc_fields",
    "check_role_write",
    "check_binding_write",
    "FULL_AUTHORITY",
]

UserRulesFn = Callable[[Any, str], Awaitable[tuple[list, list]]]

FULL_AUTHORITY = [
    {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
    {"verbs": ["*"], "nonResourceURLs": ["*"]},
]

AGGREGATION_MESSAGE = "must have cluster-admin privileges to use the aggregationRule"


class EscalationError(Exception):
    """ConfirmNoEscalation's refusal (the message only; callers wrap it in a 403)."""


# ---------------------------------------------------------------------------
# covering


def breakdown_rule(rule: Mapping[str, Any]) -> list[dict]:
    """A rule as rules of at most one verb, group, resource and resource name."""
    r = normalize_rule(rule)
    out: list[dict] = []
    for group in r["apiGroups"]:
        for resource in r["resources"]:
            for verb in r["verbs"]:
                if r["resourceNames"]:
                    for rn in r["resourceNames"]:
                        out.append({"apiGroups": [group], "resources": [resource], "verbs": [verb], "resourceNames": [rn]})
                else:
                    out.append({"apiGroups": [group], "resources": [resource], "verbs": [verb]})
    for url in r["nonResourceURLs"]:
        for verb in r["verbs"]:
            out.append({"nonResourceURLs": [url], "verbs": [verb]})
    return out


def _resource_covers_all(owner: Sequence[str], wanted: Sequence[str]) -> bool:
    owned = set(owner)
    if "*" in owned or owned.issuperset(wanted):
        return True
    for path in wanted:
        if path in owned:
            continue
        if "/" not in path:
            return False
        if "*/" + path.split("/", 1)[1] not in owned:
            return False
    return True


def _url_covers(owner: str, sub: str) -> bool:
    if owner == sub:
        return True
    return owner.endswith("*") and sub.startswith(owner.rstrip("*"))


def _rule_covers(owner: Mapping[str, Any], sub: Mapping[str, Any]) -> bool:
    o = normalize_rule(owner)
    s = normalize_rule(sub)
    verbs = "*" in o["verbs"] or set(o["verbs"]).issuperset(s["verbs"])
    groups = "*" in o["apiGroups"] or set(o["apiGroups"]).issuperset(s["apiGroups"])
    resources = _resource_covers_all(o["resources"], s["resources"])
    urls = all(any(_url_covers(ou, su) for ou in o["nonResourceURLs"]) for su in s["nonResourceURLs"])
    if not s["resourceNames"]:
        names = not o["resourceNames"]
    else:
        names = not o["resourceNames"] or set(o["resourceNames"]).issuperset(s["resourceNames"])
    return verbs and groups and resources and names and urls


def covers(owner_rules: Iterable[Mapping[str, Any]], servant_rules: Iterable[Mapping[str, Any]]) -> tuple[bool, list[dict]]:
    """Whether the owner's rules allow everything the servant's do, and what is not
    covered (upstream validation.Covers)."""
    owners = [normalize_rule(r) for r in owner_rules]
    missing = []
    for servant in servant_rules:
        for sub in breakdown_rule(servant):
            if not any(_rule_covers(o, sub) for o in owners):
                missing.append(sub)
    return not missing, missing


def _is_simple(rule: Mapping[str, Any]) -> Optional[tuple[str, str]]:
    r = normalize_rule(rule)
    if r["resourceNames"] or r["nonResourceURLs"]:
        return None
    if len(r["apiGroups"]) != 1 or len(r["resources"]) != 1:
        return None
    return r["apiGroups"][0], r["resources"][0]


def compact_rules(rules: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Merge rules of one group and one resource that differ only by verb."""
    compacted: list[dict] = []
    simple: dict[tuple[str, str], dict] = {}
    for rule in rules:
        key = _is_simple(rule)
        if key is None:
            compacted.append(normalize_rule(rule))
            continue
        existing = simple.get(key)
        if existing is None:
            simple[key] = normalize_rule(rule)
        else:
            existing["verbs"].extend(rule.get("verbs") or [])
    compacted.extend(simple.values())
    return compacted


def compact_string(rule: Mapping[str, Any]) -> str:
    """``{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`` (upstream CompactString)."""
    r = normalize_rule(rule)
    parts = []
    for key, label in (
        ("apiGroups", "APIGroups"),
        ("resources", "Resources"),
        ("nonResourceURLs", "NonResourceURLs"),
        ("resourceNames", "ResourceNames"),
        ("verbs", "Verbs"),
    ):
        if r[key]:
            parts.append(f"{label}:{go_quote_list(r[key])}")
    return "{" + ", ".join(parts) + "}"


# ---------------------------------------------------------------------------
# the checks


def escalation_allowed(user: Any) -> bool:
    """Members of system:masters may grant anything (upstream EscalationAllowed)."""
    return user is not None and SYSTEM_MASTERS in (user.groups or ())


async def confirm_no_escalation(
    user_rules_fn: UserRulesFn, user: Any, namespace: str, rules: Iterable[Mapping[str, Any]]
) -> None:
    """Raise EscalationError unless the user's own rules in `namespace` cover `rules`.

    ``user_rules_fn(user, namespace)`` returns (rules, resolution errors), e.g.
    ``RBACAuthorizer.rules_for_user``."""
    owner_rules, errors = await user_rules_fn(user, namespace)
    ok, missing = covers(owner_rules, rules)
    if ok:
        return
    descriptions = sorted({compact_string(r) for r in compact_rules(missing)})
    msg = (
        f"user {go_quote(user.name)} (groups={go_quote_list(user.groups or ())}) is attempting to grant "
        f"RBAC permissions not currently held:\n" + "\n".join(descriptions)
    )
    if errors:
        msg += f"; resolution errors: [{aggregate_errors(errors)}]"
    raise EscalationError(msg)


async def role_escalation_authorized(
    authorizer: Any, user: Any, *, resource: str, namespace: str = "", name: str = "", api_group: str = RBAC_GROUP
) -> bool:
    """Whether the user may ``escalate`` the role the request is about (the request's
    group, resource, namespace and name — the name is empty on create)."""
    if authorizer is None or user is None:
        return False
    if api_group != RBAC_GROUP or resource not in ("roles", "clusterroles"):
        return False
    attrs = Attributes(
        user=user,
        verb="escalate",
        namespace=namespace,
        api_group=api_group,
        api_version="*",
        resource=resource,
        name=name,
        is_resource_request=True,
    )
    decision, _ = await authorizer.authorize(attrs)
    return decision is Decision.ALLOW


async def binding_authorized(authorizer: Any, user: Any, role_ref: Mapping[str, Any], binding_namespace: str) -> bool:
    """Whether the user may ``bind`` the referenced role in the binding's namespace
    ("" for a ClusterRoleBinding)."""
    if authorizer is None or user is None:
        return False
    kind = role_ref.get("kind")
    if kind == "ClusterRole":
        resource = "clusterroles"
    elif kind == "Role":
        resource = "roles"
    else:
        return False
    attrs = Attributes(
        user=user,
        verb="bind",
        namespace=binding_namespace,
        api_group=role_ref.get("apiGroup") or "",
        resource=resource,
        name=role_ref.get("name") or "",
        is_resource_request=True,
    )
    decision, _ = await authorizer.authorize(attrs)
    return decision is Decision.ALLOW


def is_only_mutating_gc_fields(new: Optional[Mapping[str, Any]], old: Optional[Mapping[str, Any]]) -> bool:
    """True when an update changes nothing but ownerReferences and finalizers (what the
    garbage collector touches); such updates skip the escalation checks."""
    if old is None or new is None:
        return False
    a = copy.deepcopy(dict(new))
    b = copy.deepcopy(dict(old))
    ma = a.setdefault("metadata", {}) or {}
    mb = b.setdefault("metadata", {}) or {}
    a["metadata"], b["metadata"] = ma, mb
    for m in (ma, mb):
        for k in ("ownerReferences", "finalizers", "selfLink", "resourceVersion", "managedFields"):
            m.pop(k, None)
    return _semantic(a) == _semantic(b)


def _semantic(v: Any) -> Any:
    """Treat empty and missing lists/maps alike (upstream's Semantic equality)."""
    if isinstance(v, Mapping):
        return {k: _semantic(x) for k, x in v.items() if x not in (None, [], {})}
    if isinstance(v, list):
        return [_semantic(x) for x in v]
    return v


def _has_aggregation(obj: Optional[Mapping[str, Any]]) -> bool:
    if not obj:
        return False
    ar = obj.get("aggregationRule")
    return bool(ar) and bool(ar.get("clusterRoleSelectors"))


async def check_role_write(
    *,
    authorizer: Any,
    user_rules_fn: UserRulesFn,
    user: Any,
    obj: Mapping[str, Any],
    old: Optional[Mapping[str, Any]] = None,
    namespace: str = "",
    request_name: str = "",
    cluster: Optional[bool] = None,
) -> None:
    """Escalation check for creating (old=None) or updating a Role or ClusterRole.

    ``namespace`` and ``request_name`` come from the request URL (the name is "" on
    create) — what the ``escalate`` check is asked about and where the user's own
    rules are looked up.  ``cluster`` defaults to ``obj["kind"] == "ClusterRole"``.
    Raises StatusError 403."""
    if cluster is None:
        cluster = (obj.get("kind") or "") == "ClusterRole"
    resource = "clusterroles" if cluster else "roles"
    md = obj.get("metadata") or {}
    name = md.get("name") or request_name
    namespace = "" if cluster else (namespace or md.get("namespace") or "")
    if escalation_allowed(user):
        return
    if await role_escalation_authorized(authorizer, user, resource=resource, namespace=namespace, name=request_name):
        return
    if old is not None and is_only_mutating_gc_fields(obj, old):
        return
    try:
        await confirm_no_escalation(user_rules_fn, user, namespace, obj.get("rules") or [])
    except EscalationError as e:
        raise StatusError.forbidden(resource, name, str(e)) from None
    if cluster and (_has_aggregation(obj) or (old is not None and _has_aggregation(old))):
        try:
            await confirm_no_escalation(user_rules_fn, user, namespace, FULL_AUTHORITY)
        except EscalationError:
            raise StatusError.forbidden(resource, name, AGGREGATION_MESSAGE) from None


async def check_binding_write(
    *,
    authorizer: Any,
    user_rules_fn: UserRulesFn,
    role_ref_rules_fn: Callable[[Mapping[str, Any], str], Awaitable[list]],
    user: Any,
    obj: Mapping[str, Any],
    namespace: str = "",
    old: Optional[Mapping[str, Any]] = None,
) -> None:
    """Escalation check for creating (old=None) or updating a RoleBinding (namespace =
    the request's namespace) or ClusterRoleBinding (namespace "").

    ``role_ref_rules_fn(role_ref, namespace)`` gives the referenced role's rules or
    raises RoleRefError (e.g. ``RBACAuthorizer.role_ref_rules``).  Raises StatusError:
    404 when the referenced role does not exist, 403 when binding it would escalate."""
    cluster = (obj.get("kind") or "") == "ClusterRoleBinding" or not namespace
    resource = "clusterrolebindings" if cluster else "rolebindings"
    ns = "" if cluster else namespace
    name = (obj.get("metadata") or {}).get("name") or ""
    role_ref = obj.get("roleRef") or {}
    if escalation_allowed(user):
        return
    if old is not None and is_only_mutating_gc_fields(obj, old):
        return
    if await binding_authorized(authorizer, user, role_ref, ns):
        return
    try:
        rules = await role_ref_rules_fn(role_ref, ns)
    except RoleRefError as e:
        if e.not_found:
            raise StatusError.not_found(e.resource, e.name) from None
        raise StatusError(500, "InternalError", f"Internal error occurred: {e}") from None
    try:
        await confirm_no_escalation(user_rules_fn, user, ns, rules)
    except EscalationError as e:
        raise StatusError.forbidden(resource, name, str(e)) from None
