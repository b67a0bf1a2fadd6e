"""meta.k8s.io Table and PartialObjectMetadata renderings of objects."""

from __future__ import annotations

from typing import Any

from kybernetes.apiserver import latency
from kybernetes.registry.base import Strategy

Obj = dict[str, Any]


def partial(obj: Obj, version: str = "v1") -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version or 'v1'}",
            "metadata": obj.get("metadata", {})}


def partial_list(items: list[Obj], rv: str, cont: str, version: str = "v1") -> Obj:
    meta: Obj = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    return {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{version or 'v1'}",
            "metadata": meta,
            "items": [{"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version or 'v1'}",
                       "metadata": o.get("metadata", {})} for o in items]}


def row_object(obj: Obj, include: str) -> Any:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return partial(obj)


def table(s: Strategy, items: list[Obj], include: str = "Metadata", *, with_columns: bool = True) -> Obj:
    """A Table of `items` with the strategy's printer columns (time counted as the
    request's transform-response-object latency)."""
    with latency.track(latency.TRANSFORM):
        return _table(s, items, include, with_columns=with_columns)


def _table(s: Strategy, items: list[Obj], include: str = "Metadata", *, with_columns: bool = True) -> Obj:
    rows = []
    for obj in items:
        row: Obj = {"cells": s.row(obj)}
        o = row_object(obj, include)
        if o is not None:
            row["object"] = o
        rows.append(row)
    out: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}}
    if with_columns:
        out["columnDefinitions"] = [c.as_dict() for c in s.columns]
    out["rows"] = rows
    return out
