"""Kubernetes strategic merge patch (``application/strategic-merge-patch+json``).

Applying follows the API server (apimachinery's strategicpatch with struct metadata):

* objects merge recursively; a null member deletes; a field whose strategy is ``replace``
  takes the patch value as is;
* lists whose field has strategy ``merge`` merge: lists of objects by the field's merge key,
  lists of scalars as a union; every other list is replaced by the patch's list;
* ``$patch: replace`` in an object replaces it, ``$patch: delete`` empties it; in a merging list
  an element ``{<key>: v, $patch: delete}`` deletes the elements with that key and an element
  with ``$patch: replace`` makes the rest of the patch list replace the list. ``$patch: merge``
  is rejected (400; upstream answers a bare 500) wherever it reaches the merge;
* ``$deleteFromPrimitiveList/<field>: [...]`` removes those scalars from the field's list;
* ``$setElementOrder/<field>: [...]`` fixes the order of the merged list's elements;
* ``$retainKeys: [...]`` drops every member of the target object not listed.

Element order of merged lists matches upstream exactly: the patch's elements keep the patch's
order, the other elements keep the original order, and the two are interleaved by their
original positions, so elements new to the list come *before* the original elements that
follow them in the patch (a lone new element ends up first) unless ``$setElementOrder`` says
otherwise.

Where no schema is known (``schema=None``, unknown fields, ``RawExtension``, free-form JSON,
maps) no field has a strategy: objects still merge, lists are replaced, directives still work;
that is JSON merge patch semantics plus the directives.
"""

from __future__ import annotations

from typing import Any, Optional

from ._json import deep_copy, go_format, go_type, kind, scalar_key, strict_equal
from .errors import GENERIC_422_MESSAGE, PatchError
from .patchmeta import PatchSchema

__all__ = ["apply_strategic_merge_patch"]

DIRECTIVE = "$patch"
DELETE = "delete"
REPLACE = "replace"
MERGE = "merge"
RETAIN_KEYS = "retainKeys"
RETAIN_KEYS_DIRECTIVE = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"

# Upstream's sentinel errors, with the HTTP status its patch handler maps them to.
ERR_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"


def _bad_request(message: str) -> PatchError:
    return PatchError(message, 400)


def _internal(message: str) -> PatchError:
    # Upstream hands these to the handler as plain errors, which it answers with a bare 500
    # (reason ""); every one of them is a fault in the client's patch, so this server
    # answers 400 BadRequest with the same message instead: bad input is never a 5xx.
    return PatchError(message, 400)


def _no_merge_key(item: Any, merge_key: str) -> PatchError:
    return _internal(f"map: {go_format(item)} does not contain declared merge key: {merge_key}")


def _bad_arg_type(expected: Any, actual: Any) -> PatchError:
    return _internal(f"expected a {go_type(expected)}, but received a {go_type(actual)}")


# --- schema lookups --------------------------------------------------------------------------


def _field(schema: Optional[PatchSchema], name: str) -> Optional[PatchSchema]:
    return schema.field(name) if schema is not None else None


def _items(schema: Optional[PatchSchema]) -> Optional[PatchSchema]:
    return schema.items() if schema is not None else None


def _strategy(schema: Optional[PatchSchema]) -> str:
    """The field's strategy other than retainKeys ("" when none)."""
    if schema is None or not schema.strategies:
        return ""
    rest = set(schema.strategies) - {RETAIN_KEYS}
    if len(schema.strategies) > 2 or len(rest) > 1:
        raise _internal(f"unexpected patch strategy: {go_format(sorted(schema.strategies))}")
    return rest.pop() if rest else ""


def _merge_key(schema: Optional[PatchSchema]) -> str:
    return (schema.merge_key or "") if schema is not None else ""


# --- value helpers ---------------------------------------------------------------------------


def _discard_nulls(value: Any) -> None:
    """Drop null members from objects nested anywhere in ``value`` (in place)."""
    if isinstance(value, dict):
        for k in [k for k, v in value.items() if v is None]:
            del value[k]
        for v in value.values():
            _discard_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _discard_nulls(v)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """Drop objects carrying ``$patch`` from ``value`` (in place); (value, keep)."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        for k in list(value):
            value[k], keep = _remove_directives(value[k])
            if not keep:
                del value[k]
        return value, True
    if isinstance(value, list):
        kept = []
        for v in value:
            v, keep = _remove_directives(v)
            if keep:
                kept.append(v)
        return kept, True
    return value, True


def _extract_key(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise _bad_request(error)
    return rest


def _element_kind(*lists: list) -> Optional[str]:
    """The common kind of every element; None when there are no elements."""
    found: Optional[str] = None
    for lst in lists:
        for v in lst:
            k = kind(v)
            if found is None:
                if k == "slice":
                    raise PatchError(ERR_NO_LIST_OF_LISTS, 422, status_message=GENERIC_422_MESSAGE)
                found = k
            elif k != found:
                raise _internal(f"list element types are not identical: {go_format(list(lists))}")
    return found


class _Positions:
    """First position of each element of ``order``, keyed by merge key value or by value."""

    def __init__(self, order: list, merge_key: str, kind_: Optional[str]) -> None:
        self._by_key = kind_ == "map"
        self._merge_key = merge_key
        self._index: dict[Any, int] = {}
        self._unhashable: list[tuple[Any, int]] = []
        for i, item in enumerate(order):
            val = self._value(item)
            key = scalar_key(val)
            if key is None:
                self._unhashable.append((val, i))
            elif key not in self._index:
                self._index[key] = i

    def _value(self, item: Any) -> Any:
        if self._by_key:
            return item.get(self._merge_key) if isinstance(item, dict) else None
        return item

    def of(self, item: Any) -> int:
        """Index of ``item`` in the order list, -1 when absent."""
        val = self._value(item)
        key = scalar_key(val)
        if key is not None:
            return self._index.get(key, -1)
        for other, i in self._unhashable:
            if strict_equal(val, other):
                return i
        return -1


def _find_by_key(items: list, merge_key: str, value: Any) -> int:
    """Index of the first object whose merge key equals ``value``; -1 when none."""
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _internal(f"value for key {i} is not a map.")
        if merge_key in item and strict_equal(item[merge_key], value):
            return i
    return -1


def _check_merge_keys(merge_key: str, *lists: list) -> None:
    for lst in lists:
        for item in lst:
            if not isinstance(item, dict):
                raise _bad_arg_type({}, item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)


# --- element order ---------------------------------------------------------------------------


def _sort_by(items: list, order: list, merge_key: str, kind_: Optional[str]) -> list:
    """``items`` stably sorted by their position in ``order``; deletions go last."""
    deleted: list = []
    if kind_ == "map":
        _check_merge_keys(merge_key, items, order)
        deleted = [v for v in items if v.get(DIRECTIVE) == DELETE]
        items = [v for v in items if v.get(DIRECTIVE) != DELETE]
    positions = _Positions(order, merge_key, kind_)
    # Items absent from ``order`` (only possible with hand-written patches) keep their
    # relative order after the known ones; sorted() is stable.
    ranks = [positions.of(v) for v in items]
    keyed = sorted(range(len(items)), key=lambda i: (ranks[i] < 0, ranks[i]))
    return [items[i] for i in keyed] + deleted


def _interleave(server_only: list, patched: list, server_order: list, merge_key: str, kind_: Optional[str]) -> list:
    """Merge two individually ordered lists, taking a server-only element first only when both
    elements are in the original list and it came earlier there."""
    positions = _Positions(server_order, merge_key, kind_)
    out: list = []
    i = j = 0
    while i < len(server_only) or j < len(patched):
        if i >= len(server_only):
            out.append(patched[j])
            j += 1
        elif j >= len(patched):
            out.append(server_only[i])
            i += 1
        else:
            li, ri = positions.of(server_only[i]), positions.of(patched[j])
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patched[j])
                j += 1
    return out


def _normalize_order(
    patched: list, server_only: list, patch_order: list, server_order: list, merge_key: str, kind_: Optional[str]
) -> list:
    patched = _sort_by(patched, patch_order, merge_key, kind_)
    server_only = _sort_by(server_only, server_order, merge_key, kind_)
    return _interleave(server_only, patched, server_order, merge_key, kind_)


def _partition(merged: list, present_in: list, merge_key: str) -> tuple[list, list]:
    """Split ``merged`` into (elements present in ``present_in``, the others)."""
    inside: list = []
    outside: list = []
    if not merge_key:
        keys = {scalar_key(v) for v in present_in if scalar_key(v) is not None}
        others = [v for v in present_in if scalar_key(v) is None]
        for v in merged:
            key = scalar_key(v)
            hit = key in keys if key is not None else any(strict_equal(v, o) for o in others)
            (inside if hit else outside).append(v)
        return inside, outside
    for v in merged:
        if not isinstance(v, dict):
            raise _bad_arg_type({}, v)
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        hit = _find_by_key(present_in, merge_key, v[merge_key]) >= 0
        (inside if hit else outside).append(v)
    return inside, outside


# --- lists -----------------------------------------------------------------------------------


def _dedupe(values: list) -> list:
    seen: set = set()
    out: list = []
    for v in values:
        key = scalar_key(v)
        if key is None:
            if not any(strict_equal(v, o) for o in out):
                out.append(v)
        elif key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _delete_from(current: list, to_delete: list) -> list:
    keys = {scalar_key(v) for v in to_delete if scalar_key(v) is not None}
    others = [v for v in to_delete if scalar_key(v) is None]
    out = []
    for v in current:
        key = scalar_key(v)
        gone = key in keys if key is not None else any(strict_equal(v, o) for o in others)
        if not gone:
            out.append(v)
    return out


def _apply_list_directives(original: list, patch: list, merge_key: str) -> tuple[list, list, list, bool]:
    """Handle ``$patch`` elements of a merging list of objects.

    Returns (remaining original elements, plain patch elements, the caller's view, whether a
    ``$patch: replace`` element was seen). Upstream deletes elements by shifting the caller's
    slice in place, so a caller that keeps looking at its original slice sees the survivors
    followed by stale copies of the last ones (and later appends landing in those slots); that
    view is what orders server-only elements under ``$setElementOrder``, so it is tracked here.
    """
    plain: list = []
    replace = False
    view = list(original)
    length = len(view)
    for v in patch:
        if DIRECTIVE not in v:
            plain.append(v)
            continue
        directive = v[DIRECTIVE]
        if directive == DELETE:
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
            target = v[merge_key]
            while (i := _find_by_key(view[:length], merge_key, target)) >= 0:
                view[i : length - 1] = view[i + 1 : length]
                length -= 1
        elif directive == REPLACE:
            replace = True  # keep scanning: other directive elements are dropped too
        elif directive == MERGE:
            raise _internal("merging lists cannot yet be specified in the patch")
        else:
            raise _internal(f"unknown patch type: {go_format(directive)} in map: {go_format(v)}")
    if replace:
        return plain, [], view, True
    return view[:length], plain, view, False


def _merge_list(
    original: list, patch: list, elem_schema: Optional[PatchSchema], merge_key: str, is_delete_list: bool
) -> tuple[list, list]:
    """Merge two lists of a field whose strategy is merge (or a $deleteFromPrimitiveList).

    Returns (merged list, the caller's view of ``original`` afterwards; see
    :func:`_apply_list_directives`).
    """
    if not original and not patch:
        return original, original
    kind_ = _element_kind(original, patch)
    view = original
    if kind_ != "map":
        if is_delete_list:
            return _delete_from(original, patch), original
        merged = _dedupe(original + patch)
    else:
        if not merge_key:
            name = getattr(elem_schema, "name", None) or "Struct"
            raise _internal(f"cannot merge lists without merge key for {name}")
        original, patch, view, replaced = _apply_list_directives(original, patch, merge_key)
        merged = list(original)
        for v in patch:
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
            i = _find_by_key(merged, merge_key, v[merge_key])
            if i >= 0:
                merged[i] = _merge_map(merged[i], v, elem_schema)
            else:
                merged.append(v)
        # Appends land in the slots deletions freed, which the caller's view still covers.
        if not replaced and len(original) < len(view):
            view = merged[: len(view)] + view[len(merged) :]
    patched, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(patched, server_only, patch, original, merge_key, kind_), view


def _merge_list_field(
    original: Any, patch: Any, schema: Optional[PatchSchema], strategy: str, merge_key: str, is_delete_list: bool
) -> tuple[list, list]:
    """(merged list, the caller's view of ``original`` afterwards)."""
    if not isinstance(original, list):
        raise _bad_arg_type([], original)
    if not isinstance(patch, list):
        raise _bad_arg_type([], patch)
    if strategy == MERGE or is_delete_list:
        return _merge_list(original, patch, _items(schema), merge_key, is_delete_list)
    return patch, original


# --- objects ---------------------------------------------------------------------------------


def _map_directive(directive: Any, patch: dict) -> dict:
    if directive == REPLACE:
        del patch[DIRECTIVE]
        return patch
    if directive == DELETE:
        return {}
    raise _internal(f"unknown patch type: {go_format(directive)} in map: {go_format(patch)}")


def _apply_retain_keys(original: dict, patch: dict) -> None:
    if RETAIN_KEYS_DIRECTIVE not in patch:
        return
    retain = patch.pop(RETAIN_KEYS_DIRECTIVE)
    if not isinstance(retain, list):
        raise _bad_request(ERR_BAD_RETAIN_KEYS)
    keep = {v for v in retain if isinstance(v, str)}
    for k, v in patch.items():
        if v is None or k.startswith(DELETE_FROM_PRIMITIVE_LIST) or k.startswith(SET_ELEMENT_ORDER):
            continue
        if k not in keep:
            raise _bad_request(ERR_BAD_RETAIN_KEYS)
    for k in [k for k in original if k not in keep]:
        del original[k]


def _validate_order(patch_list: list, order: list, merge_key: str) -> None:
    """The patch list's elements must appear in ``order``, in the same relative order."""
    if not order or not patch_list:
        return
    if merge_key:
        for v in patch_list:
            if not isinstance(v, dict):
                raise _bad_arg_type({}, v)
        items = [v for v in patch_list if v.get(DIRECTIVE) != DELETE]
    else:
        items = patch_list

    def same(a: Any, b: Any) -> bool:
        if not merge_key:
            return strict_equal(a, b)
        for x in (a, b):
            if not isinstance(x, dict):
                raise _bad_arg_type({}, x)
            if merge_key not in x:
                raise _no_merge_key(x, merge_key)
        return strict_equal(a[merge_key], b[merge_key])

    p = o = 0
    while p < len(items) and o < len(order):
        if isinstance(items[p], dict) and DIRECTIVE in items[p]:
            p += 1
            continue
        if same(items[p], order[o]):
            p += 1
        o += 1
    if p < len(items):
        raise _internal(
            f"The order in patch list:\n{go_format(patch_list)}\n doesn't match "
            f"{SET_ELEMENT_ORDER} list:\n{go_format(order)}\n"
        )


def _apply_element_orders(original: dict, patch: dict, schema: Optional[PatchSchema]) -> None:
    """Merge every list named by a ``$setElementOrder/<field>`` and put it in that order."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _bad_arg_type([], order)
        name = _extract_key(key, SET_ELEMENT_ORDER, ERR_BAD_SET_ELEMENT_ORDER)
        # A null list in the stored object is as good as a missing one.
        found_original = original.get(name) is not None
        found_patch = name in patch
        original_list = original.get(name) if found_original else []
        patch_list = patch.get(name) if found_patch else []
        if not isinstance(original_list, list):
            raise _bad_arg_type([], original_list)
        if not isinstance(patch_list, list):
            raise _bad_arg_type([], patch_list)
        field = _field(schema, name)
        strategy = _strategy(field)
        merge_key = _merge_key(field)
        _validate_order(patch_list, order, merge_key)

        server_order = original_list
        if found_original and found_patch:
            merged, server_order = _merge_list_field(
                original_list, patch_list, field, strategy, merge_key, False
            )
        elif found_original:
            merged = original_list
        elif found_patch:
            merged = _remove_directives(patch_list)[0]
        else:
            continue
        patched, server_only = _partition(merged, order, merge_key)
        kind_ = _element_kind(original_list, patch_list)
        if kind_ is not None:
            merged = _normalize_order(patched, server_only, order, server_order, merge_key, kind_)
        original[name] = merged
        patch.pop(name, None)


def _merge_map(original: Optional[dict], patch: dict, schema: Optional[PatchSchema]) -> dict:
    """Merge ``patch`` into ``original`` (both already private copies; mutated and returned)."""
    if DIRECTIVE in patch:
        return _map_directive(patch[DIRECTIVE], patch)
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _apply_element_orders(original, patch, schema)

    for key, value in patch.items():
        is_delete_list = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if is_delete_list:
            key = _extract_key(key, DELETE_FROM_PRIMITIVE_LIST, ERR_BAD_PRIMITIVE_LIST)

        if value is None:
            original.pop(key, None)
            continue

        if key not in original:
            if not is_delete_list:
                _discard_nulls(value)
                value, keep = _remove_directives(value)
                if keep:
                    original[key] = value
            continue

        current = original[key]
        if kind(current) != kind(value):
            if not is_delete_list:
                _discard_nulls(value)
                value, keep = _remove_directives(value)
                if keep:
                    original[key] = value
                else:
                    del original[key]
            continue

        if isinstance(value, dict):
            field = _field(schema, key)
            original[key] = value if _strategy(field) == REPLACE else _merge_map(current, value, field)
        elif isinstance(value, list):
            field = _field(schema, key)
            original[key], _ = _merge_list_field(
                current, value, field, _strategy(field), _merge_key(field), is_delete_list
            )
        else:
            original[key] = value
    return original


def apply_strategic_merge_patch(doc: Any, patch: Any, schema: Optional[PatchSchema]) -> Any:
    """Apply a strategic merge patch to the object ``doc`` and return the new object.

    ``schema`` describes ``doc`` (see :func:`patch_schema_for`); with None every list is
    replaced, as for kinds without patch metadata. Neither argument is mutated. Raises
    :class:`PatchError` (code 400, 422 or 500, as upstream answers).
    """
    if patch is None:
        return deep_copy(doc)
    if not isinstance(patch, dict):
        kinds = {"slice": "array", "string": "string", "bool": "bool", "int": "number", "float": "number"}
        raise PatchError(
            f"json: cannot unmarshal {kinds.get(kind(patch), 'value')} into Go value of type "
            "map[string]interface {}",
            400,
        )
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise _bad_request("invalid JSON document")
    return _merge_map(deep_copy(doc), deep_copy(patch), schema)
