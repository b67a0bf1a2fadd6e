"""Checks and printer pieces shared by the controllers' kinds (ReplicationController,
ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob)."""

from __future__ import annotations

import re
from typing import Any, Optional

from kybernetes.registry import _checks
from kybernetes.registry.base import (
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    NAME_COLUMN,
    Cause,
    Column,
    Obj,
    age_of,
    column,
    container_cells,
    go_quote,
    dig,
    forbidden,
    invalid,
    nonnegative,
    not_supported,
    required,
    selector_matches,
)
from kybernetes.registry.core import podspec

_PERCENT = r"[0-9]+%"
MISMATCH = "`selector` does not match template `labels`"


def go_label_selector(sel: Optional[Obj]) -> str:
    """A LabelSelector as upstream prints it in field errors (Go's %#v)."""
    if sel is None:
        return "null"
    ml = sel.get("matchLabels")
    ml_s = ("map[string]string{" + ", ".join(f"{go_quote(k)}:{go_quote(v)}" for k, v in sorted(ml.items()))
            + "}") if ml is not None else "map[string]string(nil)"
    exprs = sel.get("matchExpressions")
    if exprs is None:
        ex_s = "[]v1.LabelSelectorRequirement(nil)"
    else:
        items = []
        for e in exprs:
            vals = e.get("values")
            vals_s = ("[]string{" + ", ".join(go_quote(v) for v in vals) + "}") if vals is not None \
                else "[]string(nil)"
            items.append(f"v1.LabelSelectorRequirement{{Key:{go_quote(e.get('key', ''))}, "
                         f"Operator:{go_quote(e.get('operator', ''))}, Values:{vals_s}}}")
        ex_s = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    return f"v1.LabelSelector{{MatchLabels:{ml_s}, MatchExpressions:{ex_s}}}"


def _invalid_raw(path: str, rendered: str, detail: str) -> Cause:
    return Cause("FieldValueInvalid", path, f"Invalid value: {rendered}: {detail}")


def validate_label_selector(sel: Obj, path: str) -> list[Cause]:
    """upstream ValidateLabelSelector."""
    causes: list[Cause] = []
    for i, e in enumerate(sel.get("matchExpressions") or []):
        ep = f"{path}.matchExpressions[{i}]"
        op = e.get("operator")
        values = e.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                causes.append(required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(forbidden(f"{ep}.values",
                                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(invalid(f"{ep}.operator", op, "not a valid selector operator"))
        causes += [invalid(f"{ep}.key", e.get("key", ""), m) for m in _checks.is_qualified_name(e.get("key", ""))]
    for k, v in (sel.get("matchLabels") or {}).items():
        causes += [invalid(f"{path}.matchLabels", k, m) for m in _checks.is_qualified_name(k)]
        causes += [invalid(f"{path}.matchLabels", v, m) for m in _checks.is_valid_label_value(str(v))]
    return causes


def validate_selector(spec: Obj, path: str, what: str) -> list[Cause]:
    """Selector present, well-formed and not empty ("empty selector is invalid for <what>")."""
    sel = spec.get("selector")
    if sel is None:
        return [required(f"{path}.selector")]
    causes = validate_label_selector(sel, f"{path}.selector")
    if not (sel.get("matchLabels") or sel.get("matchExpressions")):
        causes.append(_invalid_raw(f"{path}.selector", "&" + go_label_selector(sel),
                                   f"empty selector is invalid for {what}"))
    return causes


def validate_template(spec: Obj, path: str, *, selector: Optional[Obj], restart_policies: tuple[str, ...],
                      kind_name: Optional[str] = "ReplicaSet") -> list[Cause]:
    """The pod template: required, selected by the selector, valid, with an allowed restartPolicy.

    `kind_name` names the kind in the activeDeadlineSeconds message (None: allowed)."""
    template = spec.get("template")
    tpath = f"{path}.template"
    if not isinstance(template, dict):
        return [required(tpath)]
    causes: list[Cause] = []
    labels = dig(template, "metadata", "labels") or {}
    if selector and (selector.get("matchLabels") or selector.get("matchExpressions")):
        if not selector_matches(selector, labels):
            causes.append(invalid(f"{tpath}.metadata.labels", labels, MISMATCH))
    causes += podspec.validate_template_labels(template, tpath)
    tspec = template.get("spec") or {}
    causes += podspec.validate_pod_spec(tspec, f"{tpath}.spec")
    rp = tspec.get("restartPolicy")
    if rp in podspec.RESTART_POLICIES and rp not in restart_policies:
        causes.append(not_supported(f"{tpath}.spec.restartPolicy", rp, restart_policies))
    if kind_name and tspec.get("activeDeadlineSeconds") is not None:
        causes.append(forbidden(f"{tpath}.spec.activeDeadlineSeconds",
                                f"activeDeadlineSeconds in {kind_name} is not Supported"))
    return causes


def selector_immutable(new: Obj, old: Obj, path: str = "spec.selector") -> list[Cause]:
    """apps/v1 and batch/v1: a selector never changes after create."""
    ns, os_ = dig(new, "spec", "selector"), dig(old, "spec", "selector")
    if (ns or {}) != (os_ or {}):
        return [_invalid_raw(path, go_label_selector(ns), "field is immutable")]
    return []


def validate_int_or_percent(value: Any, path: str) -> list[Cause]:
    """upstream ValidatePositiveIntOrPercent."""
    if isinstance(value, str):
        if not re.fullmatch(_PERCENT, value):
            return [invalid(path, value, _checks.regex_error(
                "a valid percent string must be a numeric string followed by an ending '%'", _PERCENT,
                "1%", "93%"))]
        return []
    return nonnegative(path, value)


def is_zero(value: Any) -> bool:
    return value in (0, "0%", None) or (isinstance(value, str) and value.rstrip("%") == "0")


def not_more_than_100_percent(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str) and re.fullmatch(_PERCENT, value) and int(value[:-1]) > 100:
        return [invalid(path, value, "must not be greater than 100%")]
    return []


def replica_set_columns(spec_def: str, status_def: str) -> tuple[Column, ...]:
    """Upstream's ReplicaSet and ReplicationController printer columns (the same table), with the
    descriptions taken from `spec_def` / `status_def`."""
    return (
        NAME_COLUMN,
        column("Desired", "integer", (spec_def, "replicas")),
        column("Current", "integer", (status_def, "replicas")),
        column("Ready", "integer", (status_def, "readyReplicas")),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        column("Selector", doc=(spec_def, "selector"), priority=1),
    )


def replica_set_row(obj: Obj, selector: str) -> list[Any]:
    """The cells of those columns; `selector` is the selector as the kind prints it."""
    names, images = container_cells(dig(obj, "spec", "template", "spec", "containers"))
    return [obj["metadata"]["name"],
            int(dig(obj, "spec", "replicas", default=0) or 0),
            int(dig(obj, "status", "replicas", default=0) or 0),
            int(dig(obj, "status", "readyReplicas", default=0) or 0),
            age_of(obj), names, images, selector]


# both kinds select on status.replicas besides the name and namespace
REPLICAS_FIELD_SELECTORS = {"status.replicas": lambda o: str(dig(o, "status", "replicas", default=0) or 0)}


def copy_template_labels(obj: Obj, template: Optional[Obj]) -> None:
    """Objects without labels take their template's (RC, Job defaulting)."""
    labels = dig(template, "metadata", "labels") if template else None
    if labels and not dig(obj, "metadata", "labels"):
        obj.setdefault("metadata", {})["labels"] = dict(labels)


__all__ = [
    "MISMATCH", "copy_template_labels", "go_label_selector", "is_zero", "not_more_than_100_percent",
    "REPLICAS_FIELD_SELECTORS", "replica_set_columns", "replica_set_row", "selector_immutable", "validate_int_or_percent", "validate_label_selector",
    "validate_selector", "validate_template",
]
