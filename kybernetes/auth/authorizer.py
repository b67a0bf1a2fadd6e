"""Authorization: the attributes of a request, decisions, and the chain of authorizers.

Mirrors upstream's ``k8s.io/apiserver/pkg/authorization`` contract:

- an authorizer answers ALLOW, DENY or NO_OPINION with a reason;
- a union asks each in turn; the first ALLOW or DENY wins, otherwise the reasons of
  all who had no opinion are joined with newlines (upstream's unionAuthzHandler);
- the ``system:masters`` group is allowed everything before any mode is asked
  (upstream's privileged-group authorizer, always first in the chain);
- a 403 carries upstream's wording (``forbidden_message``).

Authorizers that can also list what a user may do (for SelfSubjectRulesReview)
implement ``rules_for(user, namespace) -> RulesResult``.

``build_authorizer(modes, rbac=..., node=...)`` turns ``--authorization-mode`` into the
chain.  The Node authorizer (a later issue) plugs in through the ``node`` argument: any
object with ``async authorize(attrs)``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Protocol, Sequence, runtime_checkable

from kybernetes.api.goformat import go_quote

__all__ = [
    "UserInfo",
    "ANONYMOUS",
    "Attributes",
    "Decision",
    "Authorizer",
    "RuleResolver",
    "RulesResult",
    "Union",
    "AlwaysAllow",
    "AlwaysDeny",
    "NoOpinion",
    "PrivilegedGroups",
    "build_authorizer",
    "forbidden_message",
    "forbidden_status",
    "aggregate_errors",
    "go_quote",
    "go_quote_list",
    "attributes_from_subject_access_review",
    "validate_subject_access_review",
    "rules_review_status",
    "attributes_from_dict",
    "as_access_check",
    "as_rules_check",
    "SYSTEM_MASTERS",
    "StatusError",
    "ALL_AUTHENTICATED",
    "ALL_UNAUTHENTICATED",
]

SYSTEM_MASTERS = "system:masters"
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"


@dataclass(frozen=True)
class UserInfo:
    """Who is asking (upstream user.Info).  ``extra`` maps keys to lists of strings.

    Same shape as ``kybernetes.apiserver.filters.authentication.UserInfo``; code in
    ``kybernetes.auth`` only relies on the attributes, so either class works."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict = field(default_factory=dict)


ANONYMOUS = UserInfo(ANONYMOUS_USER, (ALL_UNAUTHENTICATED,))


class Decision(enum.Enum):
    DENY = 0
    ALLOW = 1
    NO_OPINION = 2


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do (upstream authorizer.AttributesRecord)."""

    user: Any
    verb: str
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    is_resource_request: bool = True
    path: str = ""
    # selector-aware authorization (upstream AuthorizeWithSelectors, on by default in
    # 1.37): the parsed requirements of a list/watch/deletecollection, or why parsing failed
    field_selector: tuple = ()
    field_selector_error: str = ""
    label_selector: tuple = ()
    label_selector_error: str = ""

    @classmethod
    def from_request_info(cls, user: Any, info: Any) -> "Attributes":
        """From the API server's RequestInfo (kybernetes.apiserver.requestinfo)."""
        return cls(
            user=user,
            verb=info.verb,
            namespace=info.namespace,
            api_group=info.api_group,
            api_version=info.api_version,
            resource=info.resource,
            subresource=info.subresource,
            name=info.name,
            is_resource_request=info.is_resource_request,
            path=info.path,
        )


class RulesResult(NamedTuple):
    """What a user may do in a namespace (SelfSubjectRulesReview status)."""

    resource_rules: list  # [{"verbs", "apiGroups", "resources", "resourceNames"?}]
    non_resource_rules: list  # [{"verbs", "nonResourceURLs"}]
    incomplete: bool = False
    evaluation_error: str = ""


@runtime_checkable
class Authorizer(Protocol):
    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]: ...


@runtime_checkable
class RuleResolver(Protocol):
    async def rules_for(self, user: Any, namespace: str) -> RulesResult: ...


# ---------------------------------------------------------------------------
# Go-style formatting helpers (messages must match upstream byte for byte)


def go_quote_list(items: Iterable[str]) -> str:
    """Go's %q of a []string: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(s) for s in items) + "]"


def aggregate_errors(errors: Sequence[str]) -> str:
    """utilerrors.NewAggregate(errs).Error(): one message as is, several (deduplicated,
    in order) as ``[a, b]``."""
    seen: list[str] = []
    for e in errors:
        if e not in seen:
            seen.append(e)
    if not seen:
        return ""
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


class StatusError(Exception):
    """An API error with upstream's code, reason, message and details."""

    def __init__(self, code: int, reason: str, message: str, details: Optional[dict] = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": dict(self.details),
            "code": self.code,
        }

    @classmethod
    def forbidden(cls, resource: str, name: str, err: str, group: str = "rbac.authorization.k8s.io") -> "StatusError":
        qualified = f"{resource}.{group}" if group else resource
        if name:
            msg = f"{qualified} {go_quote(name)} is forbidden: {err}"
        else:
            msg = f"{qualified} is forbidden: {err}"
        details = _details(name, group, resource)
        return cls(403, "Forbidden", msg, details)

    @classmethod
    def not_found(cls, resource: str, name: str, group: str = "rbac.authorization.k8s.io") -> "StatusError":
        qualified = f"{resource}.{group}" if group else resource
        return cls(404, "NotFound", f"{qualified} {go_quote(name)} not found", _details(name, group, resource))

    @classmethod
    def bad_request(cls, message: str) -> "StatusError":
        return cls(400, "BadRequest", message)

    @classmethod
    def conflict(cls, resource: str, name: str, err: str, group: str = "") -> "StatusError":
        qualified = f"{resource}.{group}" if group else resource
        msg = f"Operation cannot be fulfilled on {qualified} {go_quote(name)}: {err}"
        return cls(409, "Conflict", msg, _details(name, group, resource))

    @classmethod
    def invalid(cls, kind: str, group: str, name: str, causes: list) -> "StatusError":
        """422 Invalid with field causes [(path, value, detail)] (upstream NewInvalid;
        values are rendered as Go's %v would for strings and numbers)."""
        parts = []
        cause_list = []
        for path, value, detail in causes:
            v = go_quote(value) if isinstance(value, str) else str(value)
            parts.append(f"{path}: Invalid value: {v}: {detail}")
            cause_list.append({"reason": "FieldValueInvalid", "message": f"Invalid value: {v}: {detail}", "field": path})
        qualified = f"{kind}.{group}" if group else kind
        if len(parts) == 1:
            agg = parts[0]
        else:
            agg = "[" + ", ".join(parts) + "]"
        msg = f"{qualified} {go_quote(name)} is invalid: {agg}"
        details = _details(name, group, kind)
        details["causes"] = cause_list
        return cls(422, "Invalid", msg, details)


def _details(name: str, group: str, kind: str) -> dict:
    d: dict = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    return d


# ---------------------------------------------------------------------------
# authorizers


class AlwaysAllow:
    """--authorization-mode=AlwaysAllow."""

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        return Decision.ALLOW, ""

    async def rules_for(self, user: Any, namespace: str) -> RulesResult:
        return RulesResult(
            [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            False,
        )


class AlwaysDeny:
    """--authorization-mode=AlwaysDeny (upstream answers 'no opinion', with a reason)."""

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        return Decision.NO_OPINION, "Everything is forbidden."

    async def rules_for(self, user: Any, namespace: str) -> RulesResult:
        return RulesResult([], [], False)


class NoOpinion:
    """An authorizer with nothing to say: the seam for a mode not yet implemented
    (e.g. Node before its authorizer lands)."""

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        return Decision.NO_OPINION, ""


class PrivilegedGroups:
    """Members of these groups (default system:masters) may do anything."""

    def __init__(self, groups: Iterable[str] = (SYSTEM_MASTERS,)) -> None:
        self.groups = frozenset(groups)

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        user = attrs.user
        if user is None:
            return Decision.NO_OPINION, "Error"
        for g in user.groups:
            if g in self.groups:
                return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


class Union:
    """Ask each authorizer in order; the first ALLOW or DENY decides."""

    def __init__(self, authorizers: Iterable[Any]) -> None:
        self.authorizers = list(authorizers)

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        reasons: list[str] = []
        for a in self.authorizers:
            decision, reason = await a.authorize(attrs)
            if decision is not Decision.NO_OPINION:
                return decision, reason
            if reason:
                reasons.append(reason)
        return Decision.NO_OPINION, "\n".join(reasons)

    async def rules_for(self, user: Any, namespace: str) -> RulesResult:
        """The union of every rule resolver's rules (upstream unionAuthzRulesHandler)."""
        resource: list = []
        non_resource: list = []
        incomplete = False
        errors: list[str] = []
        for a in self.authorizers:
            rf = getattr(a, "rules_for", None)
            if rf is None:
                continue
            r = await rf(user, namespace)
            resource.extend(r.resource_rules)
            non_resource.extend(r.non_resource_rules)
            incomplete = incomplete or r.incomplete
            if r.evaluation_error:
                errors.append(r.evaluation_error)
        return RulesResult(resource, non_resource, incomplete, aggregate_errors(errors))


def build_authorizer(
    modes: Iterable[str] | str,
    *,
    rbac: Any = None,
    node: Any = None,
    privileged_groups: Iterable[str] = (SYSTEM_MASTERS,),
) -> Union:
    """The authorizer chain for ``--authorization-mode`` (e.g. "Node,RBAC").

    The privileged-group authorizer always comes first (upstream does the same).
    ``rbac`` is an RBACAuthorizer (required when RBAC is a mode); ``node`` is the Node
    authorizer — while it is None, Node mode has no opinion on anything."""
    if isinstance(modes, str):
        modes = [m.strip() for m in modes.split(",") if m.strip()]
    chain: list[Any] = [PrivilegedGroups(privileged_groups)]
    seen: set[str] = set()
    for mode in modes:
        if mode in seen:
            raise ValueError(f'authorization-mode "{mode}" has mode specified more than once')
        seen.add(mode)
        if mode == "AlwaysAllow":
            chain.append(AlwaysAllow())
        elif mode == "AlwaysDeny":
            chain.append(AlwaysDeny())
        elif mode == "RBAC":
            if rbac is None:
                raise ValueError("RBAC authorization mode needs an RBAC authorizer")
            chain.append(rbac)
        elif mode == "Node":
            chain.append(node if node is not None else NoOpinion())
        else:
            raise ValueError(f"unknown authorization mode {mode} specified")
    if not seen:
        raise ValueError("at least one authorization-mode must be passed")
    return Union(chain)


# ---------------------------------------------------------------------------
# the 403


def _forbidden_core(attrs: Attributes) -> str:
    user = attrs.user
    username = user.name if user is not None else ""
    if not attrs.is_resource_request:
        return f"User {go_quote(username)} cannot {attrs.verb} path {go_quote(attrs.path)}"
    resource = attrs.resource
    if attrs.subresource:
        resource = f"{resource}/{attrs.subresource}"
    if attrs.namespace:
        return (
            f"User {go_quote(username)} cannot {attrs.verb} resource {go_quote(resource)} "
            f"in API group {go_quote(attrs.api_group)} in the namespace {go_quote(attrs.namespace)}"
        )
    return (
        f"User {go_quote(username)} cannot {attrs.verb} resource {go_quote(resource)} "
        f"in API group {go_quote(attrs.api_group)} at the cluster scope"
    )


def forbidden_message(attrs: Attributes, reason: str = "") -> str:
    """Upstream's 403 message (responsewriters.Forbidden + errors.NewForbidden):

    ``pods "p" is forbidden: User "u" cannot get resource "pods/log" in API group "" in
    the namespace "ns": <reason>``;  non-resource: ``forbidden: User "u" cannot get path "/x"``."""
    msg = _forbidden_core(attrs)
    if reason:
        msg = f"{msg}: {reason}"
    if not attrs.is_resource_request:
        return f"forbidden: {msg}"
    resource = attrs.resource
    if not resource and not attrs.api_group:
        return f"forbidden: {msg}"
    qualified = f"{resource}.{attrs.api_group}" if attrs.api_group else resource
    if attrs.name:
        return f"{qualified} {go_quote(attrs.name)} is forbidden: {msg}"
    return f"{qualified} is forbidden: {msg}"


def forbidden_status(attrs: Attributes, reason: str = "") -> dict:
    """The whole meta/v1 Status of the 403 (details as upstream: group, kind = resource, name)."""
    details: dict = {}
    if attrs.is_resource_request:
        if attrs.name:
            details["name"] = attrs.name
        if attrs.api_group:
            details["group"] = attrs.api_group
        if attrs.resource:
            details["kind"] = attrs.resource
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": forbidden_message(attrs, reason),
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


# ---------------------------------------------------------------------------
# SubjectAccessReview family helpers (authorization.k8s.io/v1)


def attributes_from_subject_access_review(spec: Mapping[str, Any], user: Any = None) -> Attributes:
    """Attributes of a (Local|Self)SubjectAccessReview spec.  For SelfSubjectAccessReview
    pass the requesting ``user``; otherwise the user comes from spec.user/groups/uid/extra.
    An empty resourceAttributes.version means every version ("*"), as upstream."""
    if user is None:
        extra = {k: list(v or []) for k, v in (spec.get("extra") or {}).items()}
        user = UserInfo(
            spec.get("user") or "",
            tuple(spec.get("groups") or ()),
            spec.get("uid") or "",
            extra,
        )
    ra = spec.get("resourceAttributes")
    if ra is not None:
        fields, field_err = _review_field_selector(ra.get("fieldSelector"))
        labels, label_err = _review_label_selector(ra.get("labelSelector"))
        return Attributes(
            user=user,
            verb=ra.get("verb") or "",
            namespace=ra.get("namespace") or "",
            api_group=ra.get("group") or "",
            api_version=ra.get("version") or "*",
            resource=ra.get("resource") or "",
            subresource=ra.get("subresource") or "",
            name=ra.get("name") or "",
            is_resource_request=True,
            field_selector=fields,
            field_selector_error=field_err,
            label_selector=labels,
            label_selector_error=label_err,
        )
    nra = spec.get("nonResourceAttributes") or {}
    return Attributes(
        user=user,
        verb=nra.get("verb") or "",
        path=nra.get("path") or "",
        is_resource_request=False,
    )


def _review_field_selector(fs: Any) -> tuple[tuple, str]:
    """resourceAttributes.fieldSelector (rawSelector or requirements) as requirements, as
    upstream's ResourceAttributesFrom: requirements it cannot use are dropped with an
    error, which only widens the check (requirements are ANDed)."""
    if not isinstance(fs, Mapping):
        return (), ""
    out: tuple = ()
    err = ""
    if fs.get("rawSelector"):
        out, err = _parse_selector(fs["rawSelector"], label=False)
    reqs = fs.get("requirements") or []
    if reqs:
        from kybernetes.api.selectors import EQUALS, NOT_EQUALS, FieldRequirement

        kept: list = []
        errs: list[str] = []
        for r in reqs:
            values = list(r.get("values") or [])
            op = r.get("operator") or ""
            if len(values) > 1:
                errs.append("fieldSelectors do not yet support multiple values")
            elif op in ("In", "NotIn"):
                if len(values) != 1:
                    errs.append(f"fieldSelectors {'in' if op == 'In' else 'not in'} must have one value")
                else:
                    kept.append(FieldRequirement(r.get("key") or "", EQUALS if op == "In" else NOT_EQUALS, values[0]))
            elif op in ("Exists", "DoesNotExist"):
                errs.append(f"fieldSelectors do not yet support {op}")
            else:
                errs.append(f"{go_quote(op)} is not a valid field selector operator")
        out, err = tuple(kept), aggregate_errors(errs)
    return out, err


def _review_label_selector(ls: Any) -> tuple[tuple, str]:
    """resourceAttributes.labelSelector (rawSelector or requirements) as requirements."""
    if not isinstance(ls, Mapping):
        return (), ""
    out: tuple = ()
    err = ""
    if ls.get("rawSelector"):
        out, err = _parse_selector(ls["rawSelector"], label=True)
    reqs = ls.get("requirements") or []
    if reqs:
        from kybernetes.api.selectors import DOES_NOT_EXIST, EXISTS, IN, NOT_IN, SelectorError, _new_requirement

        ops = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}
        kept: list = []
        errs: list[str] = []
        for r in reqs:
            op = r.get("operator") or ""
            if op not in ops:
                errs.append(f"{go_quote(op)} is not a valid label selector operator")
                continue
            try:
                kept.append(_new_requirement(r.get("key") or "", ops[op], list(r.get("values") or []) or None, ""))
            except SelectorError as e:
                errs.append(str(e))
        out, err = tuple(kept), aggregate_errors(errs)
    return out, err


def validate_subject_access_review(
    spec: Mapping[str, Any], kind: str = "SubjectAccessReview", metadata_namespace: str = ""
) -> list[tuple[str, Any, str]]:
    """Static validation as upstream: a list of (field path, bad value, detail); each
    becomes a ``field.Invalid`` cause of a 422 ``<Kind>.authorization.k8s.io "" is invalid``."""
    errs: list[tuple[str, Any, str]] = []
    ra = spec.get("resourceAttributes")
    nra = spec.get("nonResourceAttributes")
    if ra is not None and nra is not None:
        errs.append(
            ("spec.nonResourceAttributes", nra, "cannot be specified in combination with resourceAttributes")
        )
    if ra is None and nra is None:
        errs.append(
            ("spec.resourceAttributes", nra, "exactly one of nonResourceAttributes or resourceAttributes must be specified")
        )
    if kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
        if not spec.get("user") and not spec.get("groups"):
            errs.append(("spec.user", spec.get("user") or "", "at least one of user or group must be specified"))
    if kind == "LocalSubjectAccessReview":
        if ra is not None and (ra.get("namespace") or "") != metadata_namespace:
            errs.append(("spec.resourceAttributes.namespace", ra.get("namespace") or "", "must match metadata.namespace"))
        if nra is not None:
            errs.append(("spec.nonResourceAttributes", nra, "disallowed on this kind of request"))
    return errs


def rules_review_status(result: RulesResult) -> dict:
    """SubjectRulesReviewStatus of a SelfSubjectRulesReview."""
    status: dict = {
        "resourceRules": [_resource_rule_out(r) for r in result.resource_rules],
        "nonResourceRules": [
            {"verbs": list(r.get("verbs") or []), "nonResourceURLs": list(r.get("nonResourceURLs") or [])}
            for r in result.non_resource_rules
        ],
        "incomplete": bool(result.incomplete),
    }
    if result.evaluation_error:
        status["evaluationError"] = result.evaluation_error
    return status


def _resource_rule_out(r: Mapping[str, Any]) -> dict:
    out: dict = {"verbs": list(r.get("verbs") or [])}
    if r.get("apiGroups"):
        out["apiGroups"] = list(r["apiGroups"])
    if r.get("resources"):
        out["resources"] = list(r["resources"])
    if r.get("resourceNames"):
        out["resourceNames"] = list(r["resourceNames"])
    return out


# ---------------------------------------------------------------------------
# adapters to the API server's hooks (kybernetes.apiserver: app.authorizer, Reviews)


def attributes_from_dict(user: Any, attrs: Mapping[str, Any]) -> Attributes:
    """Attributes from the API server's dict shape: resource_request, verb, namespace,
    group, version, resource, subresource, name — or path for non-resource requests."""
    if attrs.get("resource_request"):
        fields, field_err = _parse_selector(attrs.get("field_selector"), label=False)
        labels, label_err = _parse_selector(attrs.get("label_selector"), label=True)
        return Attributes(
            user=user,
            verb=attrs.get("verb") or "",
            namespace=attrs.get("namespace") or "",
            api_group=attrs.get("group") or "",
            api_version=attrs.get("version") or "*",
            resource=attrs.get("resource") or "",
            subresource=attrs.get("subresource") or "",
            name=attrs.get("name") or "",
            is_resource_request=True,
            path=attrs.get("path") or "",
            field_selector=fields,
            field_selector_error=field_err,
            label_selector=labels,
            label_selector_error=label_err,
        )
    return Attributes(user=user, verb=attrs.get("verb") or "", path=attrs.get("path") or "", is_resource_request=False)


def _parse_selector(raw: Any, *, label: bool) -> tuple[tuple, str]:
    """(requirements, parse error) of a raw selector string, as upstream's
    GetAuthorizerAttributes records them (a bad selector leaves no requirements)."""
    if not raw:
        return (), ""
    from kybernetes.api.selectors import SelectorError, parse_field_selector, parse_label_selector

    try:
        if label:
            return tuple(parse_label_selector(raw).requirements), ""
        return tuple(parse_field_selector(raw).requirements), ""
    except SelectorError as e:
        return (), str(e)


def as_access_check(authorizer: Any):
    """``authorizer`` as the API server's hook ``(user, attrs dict) -> (allowed, denied, reason)``."""

    async def check(user: Any, attrs: Mapping[str, Any]) -> tuple[bool, bool, str]:
        decision, reason = await authorizer.authorize(attributes_from_dict(user, attrs))
        return decision is Decision.ALLOW, decision is Decision.DENY, reason

    return check


def as_rules_check(resolver: Any):
    """``resolver.rules_for`` as the SelfSubjectRulesReview hook
    ``(user, namespace) -> (resourceRules, nonResourceRules, incomplete, evaluationError)``."""

    async def check(user: Any, namespace: str) -> tuple[list, list, bool, str]:
        st = rules_review_status(await resolver.rules_for(user, namespace))
        return st["resourceRules"], st["nonResourceRules"], st["incomplete"], st.get("evaluationError", "")

    return check
