"""Rules of ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding (upstream
pkg/apis/admissionregistration: v1 defaults and validation.go)."""

from __future__ import annotations

import re
from typing import Any, Optional

from kybernetes.admission import cel
from kybernetes.api import validation as v
from kybernetes.api.goformat import go_quote
from kybernetes.registry._workloads import validate_label_selector
from kybernetes.registry.admissionregistration import _webhooks
from kybernetes.registry.base import Cause, Obj, duplicate, invalid, not_supported, required

REASONS = ("Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized")
ACTIONS = ("Audit", "Deny", "Warn")
NOT_FOUND_ACTIONS = ("Allow", "Deny")
POLICY_CEL_VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "authorizer", "variables")
_CEL_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


# ------------------------------------------------------------------ defaults
def default_match_resources(mr: Optional[Obj]) -> None:
    if not isinstance(mr, dict):
        return
    mr.setdefault("matchPolicy", "Equivalent")
    if mr.get("namespaceSelector") is None:
        mr["namespaceSelector"] = {}
    if mr.get("objectSelector") is None:
        mr["objectSelector"] = {}
    for key in ("resourceRules", "excludeResourceRules"):
        for rule in mr.get(key) or []:
            if isinstance(rule, dict) and rule.get("scope") is None:
                rule["scope"] = "*"


def default_policy(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("failurePolicy", "Fail")
    default_match_resources(spec.get("matchConstraints"))


def default_binding(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    default_match_resources(spec.get("matchResources"))
    ref = spec.get("paramRef")
    if isinstance(ref, dict) and ref.get("parameterNotFoundAction") is None:
        ref["parameterNotFoundAction"] = "Deny"


# ------------------------------------------------------------------ validation
def _expression(expr: Any, path: str, variables: tuple[str, ...] = POLICY_CEL_VARIABLES) -> list[Cause]:
    if not isinstance(expr, str) or not expr.strip():
        return [required(path)]
    err = cel.compile_error(expr, variables)
    return [invalid(path, expr, err)] if err else []


def validate_named_rule(rule: Obj, path: str) -> list[Cause]:
    causes = _webhooks.validate_rule(rule, path)
    seen: set[str] = set()
    for i, name in enumerate(rule.get("resourceNames") or []):
        p = f"{path}.resourceNames[{i}]"
        causes += [invalid(p, name, e) for e in v.is_path_segment_name(name)]
        if name in seen:
            causes.append(duplicate(p, name))
        seen.add(name)
    return causes


def validate_match_resources(mr: Obj, path: str, *, require_rules: bool) -> list[Cause]:
    causes: list[Cause] = []
    mp = mr.get("matchPolicy")
    if mp is not None and mp not in _webhooks.MATCH_POLICIES:
        causes.append(not_supported(f"{path}.matchPolicy", mp, _webhooks.MATCH_POLICIES))
    for sel in ("namespaceSelector", "objectSelector"):
        if mr.get(sel) is not None:
            causes += validate_label_selector(mr[sel], f"{path}.{sel}")
    if require_rules and not mr.get("resourceRules"):
        causes.append(required(f"{path}.resourceRules"))
    for key in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(mr.get(key) or []):
            causes += validate_named_rule(rule, f"{path}.{key}[{i}]")
    return causes


def validate_policy(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    pk = spec.get("paramKind")
    if pk is not None:
        if not pk.get("apiVersion"):
            causes.append(required("spec.paramKind.apiVersion"))
        elif pk["apiVersion"].count("/") > 1:
            causes.append(invalid("spec.paramKind.apiVersion", pk["apiVersion"],
                                  f"unexpected GroupVersion string: {pk['apiVersion']}"))
        if not pk.get("kind"):
            causes.append(required("spec.paramKind.kind"))
    mc = spec.get("matchConstraints")
    if mc is None:
        causes.append(required("spec.matchConstraints"))
    else:
        causes += validate_match_resources(mc, "spec.matchConstraints", require_rules=True)
    validations, audits = spec.get("validations") or [], spec.get("auditAnnotations") or []
    if not validations and not audits:
        causes.append(required("spec.validations", "validations or auditAnnotations must contain at least one item"))
    fp = spec.get("failurePolicy")
    if fp is not None and fp not in _webhooks.FAILURE_POLICIES:
        causes.append(not_supported("spec.failurePolicy", fp, _webhooks.FAILURE_POLICIES))
    if spec.get("matchConditions"):
        causes += _webhooks.validate_match_conditions(spec["matchConditions"], "spec.matchConditions",
                                                      POLICY_CEL_VARIABLES)
    names: set[str] = set()
    for i, var in enumerate(spec.get("variables") or []):
        p = f"spec.variables[{i}]"
        name = var.get("name") or ""
        if not name:
            causes.append(required(f"{p}.name"))
        elif not _CEL_IDENT.fullmatch(name):
            causes.append(invalid(f"{p}.name", name, "name is not a valid CEL identifier"))
        elif name in names:
            causes.append(duplicate(f"{p}.name", name))
        names.add(name)
        causes += _expression(var.get("expression"), f"{p}.expression")
    for i, val in enumerate(validations):
        p = f"spec.validations[{i}]"
        causes += _expression(val.get("expression"), f"{p}.expression")
        msg = val.get("message")
        if isinstance(msg, str) and msg:
            if "\n" in msg:
                causes.append(invalid(f"{p}.message", msg, "message must not contain line breaks"))
            elif not msg.strip():
                causes.append(invalid(f"{p}.message", msg, "message must be non-empty if specified"))
        if val.get("messageExpression"):
            causes += _expression(val["messageExpression"], f"{p}.messageExpression")
        reason = val.get("reason")
        if reason is not None and reason not in REASONS:
            causes.append(not_supported(f"{p}.reason", reason, REASONS))
    keys: set[str] = set()
    for i, ann in enumerate(audits):
        p = f"spec.auditAnnotations[{i}]"
        key = ann.get("key") or ""
        if not key:
            causes.append(required(f"{p}.key"))
        else:
            qualified = f"{obj.get('metadata', {}).get('name', '')}/{key}"
            causes += [invalid(f"{p}.key", key, e) for e in v.is_qualified_name(qualified)]
            if key in keys:
                causes.append(duplicate(f"{p}.key", key))
            keys.add(key)
        causes += _expression(ann.get("valueExpression"), f"{p}.valueExpression")
    return causes


def validate_binding(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    if not spec.get("policyName"):
        causes.append(required("spec.policyName"))
    else:
        causes += [invalid("spec.policyName", spec["policyName"], e) for e in v.is_dns1123_subdomain(spec["policyName"])]
    ref = spec.get("paramRef")
    if ref is not None:
        has_name, has_sel = bool(ref.get("name")), ref.get("selector") is not None
        if has_name and has_sel:
            causes.append(Cause("FieldValueForbidden", "spec.paramRef.name",
                                "Forbidden: name and selector are mutually exclusive"))
        elif not has_name and not has_sel:
            causes.append(required("spec.paramRef", "one of name or selector must be specified"))
        if has_sel:
            causes += validate_label_selector(ref["selector"], "spec.paramRef.selector")
        if ref.get("namespace"):
            causes += [invalid("spec.paramRef.namespace", ref["namespace"], e)
                       for e in v.is_dns1123_label(ref["namespace"])]
        action = ref.get("parameterNotFoundAction")
        if action is None:
            causes.append(required("spec.paramRef.parameterNotFoundAction"))
        elif action not in NOT_FOUND_ACTIONS:
            causes.append(not_supported("spec.paramRef.parameterNotFoundAction", action, NOT_FOUND_ACTIONS))
    actions = spec.get("validationActions") or []
    if not actions:
        causes.append(required("spec.validationActions", "at least one validation action is required"))
    seen: set[str] = set()
    for i, a in enumerate(actions):
        if a in seen:
            causes.append(duplicate(f"spec.validationActions[{i}]", a))
        elif a not in ACTIONS:
            causes.append(not_supported(f"spec.validationActions[{i}]", a, ACTIONS))
        seen.add(a)
    if "Deny" in seen and "Warn" in seen:
        rendered = "[]admissionregistration.ValidationAction{" + ", ".join(go_quote(a) for a in actions) + "}"
        causes.append(Cause("FieldValueInvalid", "spec.validationActions",
                            f"Invalid value: {rendered}: must not contain both Deny and Warn (repeating the same "
                            "validation failure information in the API response and headers serves no purpose)"))
    mr = spec.get("matchResources")
    if mr is not None:
        causes += validate_match_resources(mr, "spec.matchResources", require_rules=False)
    return causes
