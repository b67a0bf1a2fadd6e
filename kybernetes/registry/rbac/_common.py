"""Rules, subjects and role references, shared by the four RBAC kinds."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.registry import _checks
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    age_of,
    column,
    go_quote,
    invalid,
    not_supported,
    required,
)

GROUP = "rbac.authorization.k8s.io"
_RB = "io.k8s.api.rbac.v1.RoleBinding"


def validate_rules(rules: Optional[list[Obj]], path: str, *, namespaced: bool) -> list[Cause]:
    """upstream ValidatePolicyRule for each rule."""
    causes: list[Cause] = []
    for i, rule in enumerate(rules or []):
        rp = f"{path}[{i}]"
        if not rule.get("verbs"):
            causes.append(required(f"{rp}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            if namespaced:
                causes.append(invalid(f"{rp}.nonResourceURLs", urls,
                                      "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                causes.append(invalid(f"{rp}.nonResourceURLs", urls,
                                      "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not rule.get("apiGroups"):
            causes.append(required(f"{rp}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            causes.append(required(f"{rp}.resources", "resource rules must supply at least one resource"))
    return causes


def default_binding(obj: Obj) -> None:
    """Users and groups, and the role reference, live in the RBAC API group."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for s in obj.get("subjects") or []:
        if not s.get("apiGroup") and s.get("kind") in ("User", "Group"):
            s["apiGroup"] = GROUP
        elif s.get("kind") == "ServiceAccount":
            s.setdefault("apiGroup", "")


def validate_binding(obj: Obj, *, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != GROUP:
        causes.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kinds = ("ClusterRole", "Role") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        causes.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    name = ref.get("name") or ""
    if not name:
        causes.append(required("roleRef.name"))
    else:
        causes += [invalid("roleRef.name", name, m) for m in _checks.is_valid_path_segment(name)]
    for i, s in enumerate(obj.get("subjects") or []):
        sp = f"subjects[{i}]"
        sname = s.get("name") or ""
        if not sname:
            causes.append(required(f"{sp}.name"))
        kind = s.get("kind")
        if kind == "ServiceAccount":
            if s.get("apiGroup"):
                causes.append(not_supported(f"{sp}.apiGroup", s["apiGroup"], [""]))
            if sname:
                causes += [invalid(f"{sp}.name", sname, m) for m in _checks.is_dns1123_subdomain(sname)]
            if not namespaced and not s.get("namespace"):
                causes.append(required(f"{sp}.namespace"))
        elif kind in ("User", "Group"):
            if s.get("apiGroup") != GROUP:
                causes.append(not_supported(f"{sp}.apiGroup", s.get("apiGroup") or "", [GROUP]))
        else:
            causes.append(not_supported(f"{sp}.kind", kind or "", ["ServiceAccount", "User", "Group"]))
    return causes


def role_ref_unchanged(new: Obj, old: Obj) -> list[Cause]:
    """A binding's roleRef is fixed once created."""
    nr, or_ = new.get("roleRef") or {}, old.get("roleRef") or {}
    if nr == or_:
        return []
    shown = (f"rbac.RoleRef{{APIGroup:{go_quote(nr.get('apiGroup', ''))}, Kind:{go_quote(nr.get('kind', ''))}, "
             f"Name:{go_quote(nr.get('name', ''))}}}")
    return [Cause("FieldValueInvalid", "roleRef", f"Invalid value: {shown}: cannot change roleRef")]


def binding_columns(what: str) -> tuple:
    return (
        NAME_COLUMN,
        column("Role", doc=(_RB, "roleRef")),
        AGE_COLUMN,
        column("Users", doc=f"Users in the {what}", priority=1),
        column("Groups", doc=f"Groups in the {what}", priority=1),
        column("ServiceAccounts", doc=f"ServiceAccounts in the {what}", priority=1),
    )


def binding_cells(obj: Obj) -> list[Any]:
    """Role as Kind/name, then users, groups and namespace:name service accounts (wide)."""
    ref = obj.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in obj.get("subjects") or []:
        kind = s.get("kind")
        if kind == "User":
            users.append(s.get("name", ""))
        elif kind == "Group":
            groups.append(s.get("name", ""))
        elif kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}:{s.get('name', '')}")
    return [obj["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", age_of(obj),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]
