"""Helpers over decoded JSON values (dict / list / str / int / float / bool / None)."""

from __future__ import annotations

from typing import Any, Hashable


def deep_copy(value: Any) -> Any:
    """Copy a JSON value; much faster than copy.deepcopy for plain JSON trees."""
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value


def kind(value: Any) -> str:
    """The Go dynamic type a decoded JSON value would have (int and float differ, like int64 and
    float64 do in an apiserver-decoded map; bool is never an int)."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "slice"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def strict_equal(a: Any, b: Any) -> bool:
    """Go interface equality: same dynamic type and same value (1 != 1.0, True != 1).

    Containers compare structurally (Go would panic on them; that never helps anyone).
    """
    ka, kb = kind(a), kind(b)
    if ka != kb:
        return False
    if ka == "map":
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if ka == "slice":
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return a == b


def json_equal(a: Any, b: Any) -> bool:
    """RFC 6902 "test" equality: numbers compare by value, but booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def scalar_key(value: Any) -> Hashable | None:
    """A hashable key with strict_equal semantics for scalars; None for containers."""
    if isinstance(value, (dict, list)):
        return None
    return (kind(value), value)


def go_type(value: Any) -> str:
    """The Go type name of a decoded JSON value, as reflect.TypeOf prints it."""
    return {
        "null": "<nil>",
        "map": "map[string]interface {}",
        "slice": "[]interface {}",
        "bool": "bool",
        "int": "int64",
        "float": "float64",
        "string": "string",
    }.get(kind(value), type(value).__name__)


def go_format(value: Any) -> str:
    """Format a value the way Go's %v does, so error texts read like upstream's."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)
