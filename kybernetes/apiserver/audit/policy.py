"""audit.k8s.io/v1 Policy: loading, validation and rule evaluation (upstream
apiserver/pkg/audit/policy).  Rules are tried in order; the first match decides the
level; no match is level None."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import yaml

LEVEL_NONE = "None"
LEVEL_METADATA = "Metadata"
LEVEL_REQUEST = "Request"
LEVEL_REQUEST_RESPONSE = "RequestResponse"
LEVELS = (LEVEL_NONE, LEVEL_METADATA, LEVEL_REQUEST, LEVEL_REQUEST_RESPONSE)
_ORDER = {lv: i for i, lv in enumerate(LEVELS)}

STAGE_REQUEST_RECEIVED = "RequestReceived"
STAGE_RESPONSE_STARTED = "ResponseStarted"
STAGE_RESPONSE_COMPLETE = "ResponseComplete"
STAGE_PANIC = "Panic"
STAGES = (STAGE_REQUEST_RECEIVED, STAGE_RESPONSE_STARTED, STAGE_RESPONSE_COMPLETE, STAGE_PANIC)

GROUP = "audit.k8s.io"
API_VERSIONS = ("audit.k8s.io/v1",)


def level_less(a: str, b: str) -> bool:
    """upstream Level.Less"""
    return _ORDER[a] < _ORDER[b]


def level_at_least(a: str, b: str) -> bool:
    return _ORDER[a] >= _ORDER[b]


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: Optional[bool] = None


@dataclass(frozen=True)
class RequestAuditConfig:
    """What the policy decided for one request."""

    level: str = LEVEL_NONE
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False


@dataclass
class Attributes:
    """The request attributes rules match against (upstream authorizer.Attributes)."""

    user: Optional[str] = None          # None: unauthenticated (no user at all)
    groups: tuple[str, ...] = ()
    verb: str = ""
    resource_request: bool = False
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


@dataclass
class Policy:
    rules: list[PolicyRule] = field(default_factory=list)
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False

    def evaluate(self, attrs: Attributes) -> RequestAuditConfig:
        for rule in self.rules:
            if rule_matches(rule, attrs):
                stages = tuple(dict.fromkeys(self.omit_stages + rule.omit_stages))
                omf = self.omit_managed_fields if rule.omit_managed_fields is None else rule.omit_managed_fields
                return RequestAuditConfig(rule.level, stages, omf)
        return RequestAuditConfig(LEVEL_NONE, self.omit_stages, self.omit_managed_fields)


# ---------------------------------------------------------------------------- matching
def rule_matches(r: PolicyRule, a: Attributes) -> bool:
    if r.users and (a.user is None or a.user not in r.users):
        return False
    if r.user_groups:
        if a.user is None or not any(g in r.user_groups for g in a.groups):
            return False
    if r.verbs and a.verb not in r.verbs:
        return False
    if r.namespaces or r.resources:
        return _matches_resource(r, a)
    if r.non_resource_urls:
        return _matches_non_resource(r, a)
    return True


def _matches_resource(r: PolicyRule, a: Attributes) -> bool:
    if not a.resource_request:
        return False
    if r.namespaces and a.namespace not in r.namespaces:
        return False
    if not r.resources:
        return True
    combined = a.resource + ("/" + a.subresource if a.subresource else "")
    for gr in r.resources:
        if gr.group != a.api_group:
            continue
        if not gr.resources:
            return True
        for res in gr.resources:
            if gr.resource_names and a.name not in gr.resource_names:
                continue
            if res == combined or res == "*":
                return True
            if a.subresource and res.startswith("*/") and a.subresource == res.lstrip("*/"):
                return True
            if res.endswith("/*") and a.resource == res.rstrip("/*"):
                return True
    return False


def _matches_non_resource(r: PolicyRule, a: Attributes) -> bool:
    if a.resource_request:
        return False
    for spec in r.non_resource_urls:
        if spec == "*" or spec == a.path:
            return True
        if spec.endswith("*") and a.path.startswith(spec.rstrip("*")):
            return True
    return False


# ---------------------------------------------------------------------------- loading
def _strs(v: Any, where: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise PolicyError(f"{where}: must be a list of strings")
    return tuple(v)


def _stages(v: Any, where: str) -> tuple[str, ...]:
    out = _strs(v, where)
    for s in out:
        if s not in STAGES:
            raise PolicyError(f'{where}: Unsupported value: "{s}": supported values: "' + '", "'.join(STAGES) + '"')
    return out


def parse_policy(doc: Any, source: str = "policy") -> Policy:
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: not an audit policy")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if kind != "Policy" or api_version not in API_VERSIONS:
        raise PolicyError(f"{source}: unknown kind {api_version}/{kind}; expected audit.k8s.io/v1 Policy")
    rules_doc = doc.get("rules") or []
    if not isinstance(rules_doc, list):
        raise PolicyError(f"{source}: rules must be a list")
    rules: list[PolicyRule] = []
    for i, rd in enumerate(rules_doc):
        where = f"rules[{i}]"
        if not isinstance(rd, dict):
            raise PolicyError(f"{where}: must be an object")
        level = rd.get("level", "")
        if level not in LEVELS:
            raise PolicyError(f'{where}.level: Unsupported value: "{level}": supported values: "'
                              + '", "'.join(LEVELS) + '"')
        grs = []
        for j, g in enumerate(rd.get("resources") or []):
            if not isinstance(g, dict):
                raise PolicyError(f"{where}.resources[{j}]: must be an object")
            res = _strs(g.get("resources"), f"{where}.resources[{j}].resources")
            names = _strs(g.get("resourceNames"), f"{where}.resources[{j}].resourceNames")
            for r in res:
                if r == "*" and names:
                    raise PolicyError(f"{where}.resources[{j}].resourceNames: using resourceNames with wildcard resource")
                if "/" in r and r.count("/") > 1:
                    raise PolicyError(f"{where}.resources[{j}].resources: invalid resource {r!r}")
            grs.append(GroupResources(str(g.get("group") or ""), res, names))
        nrurls = _strs(rd.get("nonResourceURLs"), f"{where}.nonResourceURLs")
        if nrurls and (grs or rd.get("namespaces")):
            raise PolicyError(f"{where}.nonResourceURLs: rules cannot apply to both regular resources and "
                              "non-resource URLs")
        for u in nrurls:
            if not u.startswith("/") and u != "*":
                raise PolicyError(f"{where}.nonResourceURLs: non-resource URL rules must begin with a '/' character")
            if "*" in u[:-1]:
                raise PolicyError(f"{where}.nonResourceURLs: non-resource URL wildcards ('*') must be the final "
                                  "character of the rule")
        omf = rd.get("omitManagedFields")
        rules.append(PolicyRule(
            level=level,
            users=_strs(rd.get("users"), f"{where}.users"),
            user_groups=_strs(rd.get("userGroups"), f"{where}.userGroups"),
            verbs=_strs(rd.get("verbs"), f"{where}.verbs"),
            resources=tuple(grs),
            namespaces=_strs(rd.get("namespaces"), f"{where}.namespaces"),
            non_resource_urls=nrurls,
            omit_stages=_stages(rd.get("omitStages"), f"{where}.omitStages"),
            omit_managed_fields=None if omf is None else bool(omf),
        ))
    return Policy(rules, _stages(doc.get("omitStages"), "omitStages"), bool(doc.get("omitManagedFields", False)))


def load_policy(path: Union[str, Path]) -> Policy:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PolicyError(f"failed to read audit policy file {path}: {e}") from None
    policy = parse_policy(doc, str(path))
    if not policy.rules:
        raise PolicyError(f"loaded illegal policy with 0 rules from file {path}")
    return policy


def attributes(user: Any, info: Any) -> Attributes:
    """Attributes from a UserInfo (or None) and a RequestInfo."""
    return Attributes(
        user=None if user is None else user.name,
        groups=() if user is None else tuple(user.groups),
        verb=info.verb, resource_request=info.is_resource_request, namespace=info.namespace,
        api_group=info.api_group, resource=info.resource, subresource=info.subresource, name=info.name,
        path=info.path)


def iter_levels() -> Iterable[str]:
    return iter(LEVELS)
