"""RFC 6902 JSON Patch (``application/json-patch+json``), as the Kubernetes API server applies it.

Upstream applies JSON patches with evanphx/json-patch (v4). Its behaviour is reproduced here,
including the places where it is more lenient than the RFC, because clients of a real cluster
may rely on them:

* array indices may be negative (``-1`` is the last element; for ``add``, ``-1`` appends);
* ``replace`` of a missing object member adds it;
* ``add`` / ``replace`` without a ``value`` member write ``null``; ``copy`` from a missing
  object member copies ``null``;
* ``test`` of a missing (or null) member succeeds when the expected value is absent or null;
* ``add`` at the root path ``""`` is rejected; ``replace`` at the root replaces the document
  (the value must be an object or an array).

Paths must start with ``/`` (or be ``""``); ``~1`` and ``~0`` are decoded in that order.
"""

from __future__ import annotations

import re
from typing import Any, Union

from ._json import deep_copy, json_equal
from .errors import GENERIC_422_MESSAGE, PatchError

__all__ = ["apply_json_patch", "MAX_JSON_PATCH_OPERATIONS"]

#: Upstream refuses longer patches with 413 RequestEntityTooLarge.
MAX_JSON_PATCH_OPERATIONS = 10000

# Go's strconv.Atoi: optional sign then ASCII digits, nothing else (Python int() also takes
# blanks and underscores).
_INDEX_RE = re.compile(r"[+-]?[0-9]+\Z")

Container = Union[dict, list]


def _fail(message: str) -> PatchError:
    # Every failure while applying is a 422 whose Status carries a fixed sentence.
    return PatchError(message, 422, status_message=GENERIC_422_MESSAGE)


def _json_kind_name(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def _decode_ops(ops: Any) -> list[dict]:
    """Check the patch document's shape; upstream answers 400 when it does not decode."""
    if not isinstance(ops, list):
        if ops is None:
            return []
        raise PatchError(
            f"json: cannot unmarshal {_json_kind_name(ops)} into Go value of type jsonpatch.Patch", 400
        )
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise PatchError(
                f"json: cannot unmarshal {_json_kind_name(op)} into Go value of type jsonpatch.Operation",
                400,
            )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}",
            413,
        )
    return [op or {} for op in ops]


def _tokens(pointer: str) -> list[str]:
    """Split a JSON pointer into unescaped reference tokens (RFC 6901)."""
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _index(token: str, length: int, *, for_add: bool = False) -> int:
    """Resolve an array index token against a list of ``length`` elements.

    ``for_add`` allows the one-past-the-end position (insertion point).
    """
    if not _INDEX_RE.match(token):
        raise _fail(f"value was not a proper array index: '{token}'")
    idx = int(token)
    size = length + 1 if for_add else length
    if idx >= size or idx < -size:
        raise _fail(f"Unable to access invalid index: {idx}")
    return idx + size if idx < 0 else idx


def _string_member(op: dict, name: str) -> str:
    value = op.get(name)
    if value is None:
        raise _fail(f"operation missing {name} field")
    if not isinstance(value, str):
        raise _fail(f"json: cannot unmarshal {_json_kind_name(value)} into Go value of type string")
    return value


def _parent(doc: Any, path: str, opname: str) -> tuple[Container, str]:
    """The container holding the target of ``path`` and the last (unescaped) token."""
    if not path.startswith("/"):
        raise _fail(f'{opname} operation does not apply: doc is missing path: "{path}"')
    tokens = _tokens(path)
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list):
            try:
                node = node[_index(token, len(node))]
            except PatchError:
                node = None
        else:
            node = None
        if not isinstance(node, (dict, list)):
            raise _fail(f'{opname} operation does not apply: doc is missing path: "{path}"')
    if not isinstance(node, (dict, list)):
        raise _fail(f'{opname} operation does not apply: doc is missing path: "{path}"')
    return node, tokens[-1]


def _get(container: Container, key: str) -> Any:
    """Read a member; a missing object member reads as null (as upstream's get does)."""
    if isinstance(container, dict):
        return container.get(key)
    return container[_index(key, len(container))]


def _add(container: Container, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    elif key == "-":
        container.append(value)
    else:
        container.insert(_index(key, len(container), for_add=True), value)


def _remove(container: Container, key: str) -> Any:
    if isinstance(container, dict):
        if key not in container:
            raise _fail(f"Unable to remove nonexistent key: {key}")
        return container.pop(key)
    return container.pop(_index(key, len(container)))


def _apply_one(doc: Any, op: dict) -> Any:
    """Apply one operation in place; returns the (possibly replaced) document."""
    kind = op.get("op")
    if not isinstance(kind, str):
        kind = "unknown"

    if kind == "add":
        path = _string_member(op, "path")
        if path == "":
            raise _fail('add operation does not apply: doc is missing path: ""')
        container, key = _parent(doc, path, "add")
        _add(container, key, deep_copy(op.get("value")))
    elif kind == "remove":
        path = _string_member(op, "path")
        if path == "":
            raise _fail('remove operation does not apply: doc is missing path: ""')
        container, key = _parent(doc, path, "remove")
        _remove(container, key)
    elif kind == "replace":
        path = _string_member(op, "path")
        value = deep_copy(op.get("value"))
        if path == "":
            if not isinstance(value, (dict, list)):
                raise _fail("replace operation value must be object or array")
            return value
        container, key = _parent(doc, path, "replace")
        if isinstance(container, dict):
            container[key] = value
        else:
            container[_index(key, len(container))] = value
    elif kind == "move":
        from_path = _string_member(op, "from")
        if from_path == "":
            raise _fail('move operation does not apply: doc is missing from path: ""')
        container, key = _parent(doc, from_path, "move")
        value = _remove(container, key)
        path = _string_member(op, "path")
        if path == "":
            raise _fail('move operation does not apply: doc is missing destination path: ""')
        container, key = _parent(doc, path, "move")
        _add(container, key, value)
    elif kind == "copy":
        from_path = _string_member(op, "from")
        if from_path == "":
            raise _fail('copy operation does not apply: doc is missing from path: ""')
        container, key = _parent(doc, from_path, "copy")
        value = deep_copy(_get(container, key))
        path = _string_member(op, "path")
        if path == "":
            raise _fail('copy operation does not apply: doc is missing destination path: ""')
        container, key = _parent(doc, path, "copy")
        _add(container, key, value)
    elif kind == "test":
        path = _string_member(op, "path")
        has_value = "value" in op
        expected = op.get("value")
        if path == "":
            if not (has_value and json_equal(doc, expected)):
                raise _fail(f"testing value {path} failed")
            return doc
        container, key = _parent(doc, path, "test")
        actual = _get(container, key)
        if actual is None:
            ok = expected is None
        else:
            ok = has_value and json_equal(actual, expected)
        if not ok:
            raise _fail(f"testing value {path} failed")
    else:
        raise _fail(f"Unexpected kind: {kind}")
    return doc


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch (a decoded list of operation objects) to ``doc``.

    Returns a new document; ``doc`` and ``ops`` are never mutated. The operations are applied
    all-or-nothing. Raises :class:`PatchError` with code 400 when ``ops`` is not a list of
    objects, 413 when it holds too many operations, and 422 when an operation fails.
    """
    operations = _decode_ops(ops)
    result = deep_copy(doc)
    for op in operations:
        result = _apply_one(result, op)
    return result
