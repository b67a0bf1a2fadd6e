"""managedFields entries recorded through another view of the same stored resource.

One stored object can be written through several APIs (core/v1 and events.k8s.io/v1
Events), so its managedFields mix entries of both versions. Upstream's field manager
compares each manager's fields in that manager's own version; ours works in one version,
so `to_request_version` translates foreign entries into the request's version before the
field manager runs and `restore` turns the untouched owners back afterwards, leaving
what clients read as upstream shows it: every entry in the version it was made in.

A fieldsV1 tree is translated through the views' own object conversion applied to its
top-level fields, which is exact for conversions that rename top-level fields (all that
views do today).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from kybernetes.registry.base import Strategy

Obj = dict[str, Any]
Convert = Callable[[Obj], Obj]
# (manager, operation, subresource) -> the apiVersion the entry was recorded in
Restorable = dict[tuple[str, str, str], str]


def _storage_of(s: Strategy) -> tuple[str, str, str]:
    return s.stored_as or (s.group, s.version, s.resource)


def _converter(src: Strategy, dst: Strategy) -> Convert:
    def convert(obj: Obj) -> Obj:
        if src.stored_as:
            obj = src.to_storage(obj)
        if dst.stored_as:
            obj = dst.from_storage(obj)
        return obj
    return convert


def _sibling(s: Strategy, api_version: str) -> Optional[Strategy]:
    """The strategy of `api_version` when it serves the same stored objects as `s`."""
    if api_version == s.api_version:
        return None
    from kybernetes.api.catalog import default_catalog

    other = default_catalog().by_api_version_kind(api_version, s.kind)
    return other if other is not None and _storage_of(other) == _storage_of(s) else None


def _convert_fields(fields: Any, convert: Convert) -> Any:
    if not isinstance(fields, dict):
        return fields
    top = {k[2:]: v for k, v in fields.items() if k.startswith("f:")}
    out = convert(dict(top))
    converted = {f"f:{k}": v for k, v in out.items() if k in top or k not in ("apiVersion", "kind")}
    return {**{k: v for k, v in fields.items() if not k.startswith("f:")}, **converted}


def _ident(e: Obj) -> tuple[str, str, str]:
    return (str(e.get("manager") or ""), str(e.get("operation") or ""), str(e.get("subresource") or ""))


def to_request_version(s: Strategy, obj: Optional[Obj]) -> tuple[Optional[Obj], Restorable]:
    """`obj` (a shallow copy when anything changes) with its foreign managedFields entries
    in `s`'s version, and what `restore` needs to turn them back."""
    entries = ((obj or {}).get("metadata") or {}).get("managedFields")
    if not isinstance(entries, list) or not entries:
        return obj, {}
    own = {_ident(e) for e in entries if isinstance(e, dict) and e.get("apiVersion") == s.api_version}
    out, restorable = [], {}
    for e in entries:
        other = _sibling(s, e.get("apiVersion") or "") if isinstance(e, dict) else None
        # an Update entry of the same identity in this version would collide: keep it foreign
        if other is None or _ident(e) in own:
            out.append(e)
            continue
        restorable[_ident(e)] = e["apiVersion"]
        out.append({**e, "apiVersion": s.api_version, "fieldsV1": _convert_fields(e.get("fieldsV1"), _converter(other, s))})
    if not restorable:
        return obj, {}
    assert obj is not None
    return {**obj, "metadata": {**obj["metadata"], "managedFields": out}}, restorable


def restore(s: Strategy, obj: Obj, restorable: Restorable, writer: tuple[str, str, str]) -> None:
    """Put the entries `to_request_version` translated back into their own version, except
    the `writer`'s (manager, operation, subresource), which this request recorded anew."""
    entries = (obj.get("metadata") or {}).get("managedFields")
    if not restorable or not isinstance(entries, list):
        return
    for i, e in enumerate(entries):
        ident = _ident(e)
        if ident == writer or ident not in restorable or e.get("apiVersion") != s.api_version:
            continue
        other = _sibling(s, restorable[ident])
        if other is not None:
            entries[i] = {**e, "apiVersion": restorable[ident],
                          "fieldsV1": _convert_fields(e.get("fieldsV1"), _converter(s, other))}


def restore_conflicts(s: Strategy, conflicts: list[Any], restorable: Restorable) -> list[Any]:
    """Conflicts with translated owners, told in the owner's own version (field path and,
    for Update owners, apiVersion) as upstream reports them."""
    import json
    import re

    from kybernetes.api import managedfields as mf

    out = []
    for c in conflicts:
        try:
            d = json.loads(c.identifier) if c.identifier else {}
        except ValueError:
            d = {}
        key = (str(d.get("manager") or ""), str(d.get("operation") or ""), str(d.get("subresource") or ""))
        other = _sibling(s, restorable[key]) if isinstance(d, dict) and key in restorable else None
        if other is None:
            out.append(c)
            continue
        path = c.path
        m = re.match(r"\.([^.\[]+)(.*)", path, re.S)
        if m:
            renamed = [k for k in _converter(s, other)({m.group(1): None}) if k not in ("apiVersion", "kind")]
            path = f".{renamed[0]}{m.group(2)}" if renamed else path
        ident = c.identifier
        if key[1] == "Update":
            ident = mf.manager_identifier(key[0], key[1], restorable[key], key[2])
        out.append(c._replace(path=path, identifier=ident))
    return out
