"""Computing a two-way strategic merge patch, as kubectl edit / set / annotate do.

The patch produced for (original, modified) yields modified when applied to original with
:func:`apply_strategic_merge_patch`, in the same shape kubectl sends: changed and added
members, null for removed members, ``$patch: delete`` elements and ``$setElementOrder`` lists
for merging lists of objects, ``$deleteFromPrimitiveList`` and ``$setElementOrder`` for merging
lists of scalars, and ``$retainKeys`` for fields with the retainKeys strategy.
"""

from __future__ import annotations

from typing import Any, Optional

from ._json import deep_copy, go_format, kind, strict_equal
from .errors import PatchError
from .patchmeta import PatchSchema
from .strategic import (
    DELETE,
    DELETE_FROM_PRIMITIVE_LIST,
    DIRECTIVE,
    MERGE,
    REPLACE,
    RETAIN_KEYS_DIRECTIVE,
    SET_ELEMENT_ORDER,
    _bad_arg_type,
    _element_kind,
    _field,
    _items,
    _merge_key,
    _no_merge_key,
    _sort_by,
    _strategy,
)

__all__ = ["create_two_way_merge_patch"]


def _retain_keys(schema: Optional[PatchSchema]) -> bool:
    return schema is not None and "retainKeys" in schema.strategies


def _sorted_scalars(values: list) -> list:
    # Upstream orders scalars by their %v text.
    return sorted(values, key=go_format)


def _dedupe(values: list) -> list:
    out: list = []
    for v in values:
        if not any(strict_equal(v, o) for o in out):
            out.append(v)
    return out


def _merge_key_of(item: Any, merge_key: str) -> Any:
    if not isinstance(item, dict):
        raise _bad_arg_type({}, item)
    if merge_key not in item:
        raise _no_merge_key(item, merge_key)
    return item[merge_key]


def _diff_scalar_lists(original: list, modified: list) -> tuple[list, list]:
    """(added values, deleted values), walking both lists sorted by their text."""
    orig = _sorted_scalars(original)
    mod = _sorted_scalars(modified)
    added: list = []
    deleted: list = []
    i = j = 0
    while i < len(orig) or j < len(mod):
        if i < len(orig) and j < len(mod) and go_format(orig[i]) == go_format(mod[j]):
            i += 1
            j += 1
        elif i >= len(orig) or (j < len(mod) and go_format(orig[i]) > go_format(mod[j])):
            added.append(mod[j])
            j += 1
        else:
            deleted.append(orig[i])
            i += 1
    return added, _dedupe(deleted)


def _diff_map_lists(
    original: list, modified: list, elem: Optional[PatchSchema], merge_key: str, retain: bool
) -> tuple[list, list]:
    """(changed and added elements, deletion directives), walking both lists sorted by key."""
    def by_key(items: list) -> list:
        return sorted(items, key=lambda v: go_format(_merge_key_of(v, merge_key)))

    orig, mod = by_key(original), by_key(modified)
    patch: list = []
    deletions: list = []
    i = j = 0
    while i < len(orig) or j < len(mod):
        ok = go_format(orig[i][merge_key]) if i < len(orig) else None
        mk = go_format(mod[j][merge_key]) if j < len(mod) else None
        if ok is not None and mk is not None and ok == mk:
            change = _diff_maps(orig[i], mod[j], elem, retain)
            if change:
                change[merge_key] = mod[j][merge_key]
                patch.append(change)
            i += 1
            j += 1
        elif ok is None or (mk is not None and ok > mk):
            patch.append(mod[j])
            j += 1
        else:
            deletions.append({merge_key: orig[i][merge_key], DIRECTIVE: DELETE})
            i += 1
    return patch, deletions


def _diff_lists(
    key: str, original: list, modified: list, field: Optional[PatchSchema], patch: dict
) -> None:
    """Record the difference of a merging list under ``key`` (and its directive keys)."""
    if not original:
        if modified:
            patch[key] = modified
        return
    merge_key = _merge_key(field)
    kind_ = _element_kind(original, modified)
    if kind_ == "map":
        changes, deletions = _diff_map_lists(original, modified, _items(field), merge_key, _retain_keys(field))
        changes = _sort_by(changes, modified, merge_key, kind_)
        same_order = len(original) == len(modified) and all(
            strict_equal(_merge_key_of(a, merge_key), _merge_key_of(b, merge_key))
            for a, b in zip(original, modified)
        )
        changes += deletions
        if changes:
            patch[key] = changes
        if modified and (changes or not same_order):
            patch[f"{SET_ELEMENT_ORDER}/{key}"] = [{merge_key: v[merge_key]} for v in modified]
        return
    added, deleted = _diff_scalar_lists(original, modified)
    added = _sort_by(added, modified, merge_key, kind_)
    if added:
        patch[key] = added
    if deleted:
        patch[f"{DELETE_FROM_PRIMITIVE_LIST}/{key}"] = deleted
    if modified and (deleted or not strict_equal(original, modified)):
        patch[f"{SET_ELEMENT_ORDER}/{key}"] = modified


def _diff_maps(original: dict, modified: dict, schema: Optional[PatchSchema], retain: bool) -> dict:
    patch: dict = {}
    for key, new in modified.items():
        if key not in original:
            patch[key] = new
            continue
        old = original[key]
        if key == DIRECTIVE:
            if not isinstance(old, str) or not isinstance(new, str):
                raise PatchError(f"invalid value for special key: {DIRECTIVE}", 500)
            if old != new:
                patch[key] = new
            continue
        if kind(old) != kind(new):
            patch[key] = new
            continue
        if isinstance(new, dict):
            field = _field(schema, key)
            if _strategy(field) == REPLACE:
                patch[key] = new
            else:
                change = _diff_maps(old, new, field, _retain_keys(field))
                if change:
                    patch[key] = change
        elif isinstance(new, list):
            field = _field(schema, key)
            if _strategy(field) == MERGE:
                _diff_lists(key, old, new, field, patch)
            elif not strict_equal(old, new):
                patch[key] = new
        elif not strict_equal(old, new):
            patch[key] = new
    for key in original:
        if key not in modified:
            patch[key] = None
    if retain:
        kept = [k for k, v in modified.items() if v is not None]
        cleared = any(v is not None and k not in modified for k, v in original.items())
        if kept and (patch or cleared):
            patch[RETAIN_KEYS_DIRECTIVE] = _sorted_scalars(kept)
    return patch


def create_two_way_merge_patch(original: Any, modified: Any, schema: Optional[PatchSchema]) -> dict:
    """The strategic merge patch turning ``original`` into ``modified`` (objects).

    Neither argument is mutated; ``{}`` means no change. Raises :class:`PatchError` on lists
    whose elements lack the merge key or mix types.
    """
    original = {} if original is None else original
    modified = {} if modified is None else modified
    if not isinstance(original, dict) or not isinstance(modified, dict):
        raise PatchError("invalid JSON document", 400)
    return deep_copy(_diff_maps(original, modified, schema, False))
