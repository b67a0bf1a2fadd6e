"""LimitRanges: per-namespace resource defaults and bounds. No printer upstream, so the
default table (NAME, CREATED AT)."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.base import (
    CREATED_AT_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    created_at_row,
    dig,
    invalid,
    not_supported,
    parse_quantity,
)

LIMIT_TYPES = ("Container", "Pod", "PersistentVolumeClaim")


class LimitRangeStrategy(Strategy):
    """core/v1 LimitRange."""

    group = ""
    version = "v1"
    kind = "LimitRange"
    resource = "limitranges"
    singular = "limitrange"
    short_names = ("limits",)
    tracks_generation = False

    columns = (NAME_COLUMN, CREATED_AT_COLUMN)

    def default(self, obj: Obj) -> None:
        """For Container limits: default from max, defaultRequest from default then min."""
        for item in dig(obj, "spec", "limits", default=[]) or []:
            if item.get("type") != "Container":
                continue
            default = item.get("default") or {}
            request = item.get("defaultRequest") or {}
            for k, v in (item.get("max") or {}).items():
                default.setdefault(k, v)
            for k, v in default.items():
                request.setdefault(k, v)
            for k, v in (item.get("min") or {}).items():
                request.setdefault(k, v)
            if default:
                item["default"] = default
            if request:
                item["defaultRequest"] = request

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for i, item in enumerate(dig(obj, "spec", "limits", default=[]) or []):
            path = f"spec.limits[{i}]"
            t = item.get("type")
            if t and t not in LIMIT_TYPES:
                causes.append(not_supported(f"{path}.type", t, LIMIT_TYPES))
            mins, maxs = item.get("min") or {}, item.get("max") or {}
            for k, v in mins.items():
                lo, hi = parse_quantity(v), parse_quantity(maxs.get(k))
                if lo is not None and hi is not None and lo > hi:
                    causes.append(invalid(f"{path}.min[{k}]", str(v),
                                          f"min value {v} is greater than max value {maxs[k]}"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return created_at_row(obj)
