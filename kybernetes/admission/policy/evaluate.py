"""Evaluating one ValidatingAdmissionPolicy against one request (upstream
admission/plugin/policy/validating/validator.go): variables, matchConditions, validations
with their messages and reasons, audit annotations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from kybernetes.admission import cel

Obj = dict[str, Any]


@dataclass
class Decision:
    """A validation that did not pass (or could not be evaluated under failurePolicy Fail)."""

    message: str
    reason: str = "Invalid"
    expression_index: Optional[int] = None


@dataclass
class Result:
    denials: list[Decision] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)


MAX_MESSAGE_BYTES = 5 * 1024  # longer evaluated messages are dropped, as upstream's


def _message(validation: Obj, activation: Obj) -> str:
    """The failure message: messageExpression when it yields a usable string (one line, at
    most 5 KiB), else message, else `failed expression: <expression>`."""
    expr = validation.get("messageExpression")
    if expr:
        try:
            out = cel.evaluate(expr, activation)
        except cel.EvalError:
            out = None
        if isinstance(out, str):
            out = out.strip()
            if out and "\n" not in out and len(out.encode()) <= MAX_MESSAGE_BYTES:
                return out
    if (validation.get("message") or "").strip():
        return validation["message"].strip()
    return f"failed expression: {(validation.get('expression') or '').strip()}"


def evaluate(policy: Obj, activation: Obj) -> Result:
    """Every validation of `policy` against `activation` (object, oldObject, request, params,
    namespaceObject); `variables` are composed here, in order."""
    spec = policy.get("spec") or {}
    fail_closed = (spec.get("failurePolicy") or "Fail") == "Fail"
    result = Result()
    variables: Obj = {}
    activation = {**activation, "variables": variables}
    for var in spec.get("variables") or []:
        try:
            variables[var["name"]] = cel.evaluate(var.get("expression") or "", activation)
        except cel.EvalError:
            pass  # an expression reading it then fails with "no such key", under failurePolicy
    if spec.get("matchConditions"):
        matched, errs = cel.match_conditions(spec["matchConditions"], activation)
        if errs:
            if fail_closed:
                result.denials.append(Decision(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"))
            return result
        if not matched:
            return result
    for i, validation in enumerate(spec.get("validations") or []):
        expr = validation.get("expression") or ""
        try:
            ok = cel.evaluate_bool(expr, activation)
        except cel.EvalError as e:
            if fail_closed:
                result.denials.append(Decision(f"expression '{expr}' resulted in error: {e}", "Invalid", i))
            continue
        if not ok:
            result.denials.append(Decision(_message(validation, activation), validation.get("reason") or "Invalid", i))
    name = (policy.get("metadata") or {}).get("name", "")
    for ann in spec.get("auditAnnotations") or []:
        try:
            value = cel.evaluate(ann.get("valueExpression") or "", activation)
        except cel.EvalError:
            continue
        if isinstance(value, str) and value:
            result.audit_annotations[f"{name}/{ann.get('key', '')}"] = value
    return result
