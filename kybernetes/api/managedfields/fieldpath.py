"""Field paths and field sets, and their FieldsV1 wire form.

A path element (`PE`) selects one child of a value. It is a plain tuple so that it
hashes and sorts cheaply; the first item is its kind and fixes the order between kinds
(struct/map field < list-map key < set value < index, as upstream orders them):

- `(0, name)`                      a field of a struct or a key of a map  -> `f:name`
- `(1, ((name, frozen), ...))`     a list-map item by its key fields     -> `k:{"name":"c"}`
- `(2, frozen)`                    a set item by its value               -> `v:"a"`
- `(3, index)`                     a list item by position               -> `i:0`

Values inside path elements are *frozen* (`freeze`): tagged tuples that hash, compare
in upstream's total order over JSON values (numbers, strings, booleans, lists, maps,
null) and never confuse `True` with `1`.

A `FieldSet` is a trie: at each level the path elements that are themselves in the set
(`members`) and the subtrees below some elements (`children`). FieldsV1 writes a member
with children as a child object holding `".": {}`.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

from kybernetes.api.goformat import go_quote

PE = tuple  # (kind, payload); see the module docstring
Path = tuple  # a tuple of PE

FIELD, KEY, VALUE, INDEX = 0, 1, 2, 3
_MISSING = object()


# ---------------------------------------------------------------- frozen values
def freeze(value: Any) -> tuple:
    """A hashable, totally ordered form of a JSON value (see the module docstring)."""
    if value is None:
        return (5,)
    if value is True or value is False:
        return (2, value)
    if isinstance(value, (int, float)):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(freeze(v) for v in value))
    if isinstance(value, dict):
        return (4, tuple(sorted((k, freeze(v)) for k, v in value.items())))
    raise TypeError(f"not a JSON value: {value!r}")


def thaw(frozen: tuple) -> Any:
    """The JSON value of a frozen value."""
    tag = frozen[0]
    if tag == 5:
        return None
    if tag == 3:
        return [thaw(v) for v in frozen[1]]
    if tag == 4:
        return {k: thaw(v) for k, v in frozen[1]}
    return frozen[1]


# ---------------------------------------------------------------- path elements
def field_pe(name: str) -> PE:
    """The element selecting field (or map key) `name`."""
    return (FIELD, name)


def key_pe(keys: Mapping[str, Any]) -> PE:
    """The element selecting the list-map item whose key fields have these values."""
    return (KEY, tuple(sorted((k, freeze(v)) for k, v in keys.items())))


def value_pe(value: Any) -> PE:
    """The element selecting the set item `value`."""
    return (VALUE, freeze(value))


def index_pe(index: int) -> PE:
    """The element selecting list item number `index`."""
    return (INDEX, index)


def make_path(*parts: Any) -> Path:
    """A path from readable parts: str -> field, int -> index, dict -> list-map key,
    ("v", value) -> set value; PE tuples pass through."""
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(field_pe(p))
        elif isinstance(p, bool):
            raise TypeError("a bool is not a path part")
        elif isinstance(p, int):
            out.append(index_pe(p))
        elif isinstance(p, dict):
            out.append(key_pe(p))
        elif isinstance(p, tuple) and len(p) == 2 and p[0] == "v":
            out.append(value_pe(p[1]))
        elif isinstance(p, tuple) and len(p) == 2 and p[0] in (FIELD, KEY, VALUE, INDEX):
            out.append(p)
        else:
            raise TypeError(f"cannot make a path element of {p!r}")
    return tuple(out)


# ---------------------------------------------------------------- Go-compatible text
def go_float(f: float) -> str:
    """A float64 as Go's encoding/json writes it."""
    if math.isinf(f) or math.isnan(f):
        raise ValueError(f"unsupported float value {f!r}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        s = repr(f)
        if "e" not in s:
            s = f"{f:e}"
        mant, exp = s.split("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        if len(digits) < 2 and sign == "+":
            digits = digits.rjust(2, "0")
        if "." in mant:
            mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{sign}{digits}"
    s = format(Decimal(repr(f)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json_string(s: str) -> str:
    """A string as Go's encoding/json writes it (HTML characters escaped, UTF-8 kept)."""
    out = ['"']
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json(value: Any) -> str:
    """Compact JSON as Go's encoding/json writes it (map keys sorted)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(go_json_string(k) + ":" + go_json(value[k]) for k in sorted(value)) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def _value_string(frozen: tuple) -> str:
    # upstream's value.ToString: what conflict messages and cause fields show
    tag = frozen[0]
    if tag == 5:
        return "null"
    if tag == 0:
        v = frozen[1]
        if isinstance(v, float):
            return _go_v_float(v)
        return str(v)
    if tag == 1:
        return go_quote(frozen[1])
    if tag == 2:
        return "true" if frozen[1] else "false"
    if tag == 3:
        return "[" + ",".join(_value_string(v) for v in frozen[1]) + "]"
    return "".join(f"{k}={_value_string(v)}" for k, v in frozen[1])


def _go_v_float(f: float) -> str:
    # Go's %v of a float64 is strconv 'g' with the shortest precision
    if f == int(f) and abs(f) < 1e21:
        return str(int(f))
    s = repr(f)
    if "e" in s:
        mant, exp = s.split("e")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").lstrip("0").rjust(2, "0")
        return f"{mant}e{sign}{digits}"
    return s


def pe_string(pe: PE) -> str:
    """One element as upstream prints it in paths: `.name`, `[name="c"]`, `[="a"]`, `[0]`."""
    kind, payload = pe
    if kind == FIELD:
        return "." + payload
    if kind == KEY:
        return "[" + ",".join(f"{k}={_value_string(v)}" for k, v in payload) + "]"
    if kind == VALUE:
        return f"[={_value_string(payload)}]"
    return f"[{payload}]"


def path_string(path: Sequence[PE]) -> str:
    """A path as upstream prints it, e.g. `.spec.template.spec.containers[name="c"].image`."""
    return "".join(pe_string(pe) for pe in path)


def serialize_pe(pe: PE) -> str:
    """One element in its FieldsV1 key form (`f:`, `k:`, `v:`, `i:`)."""
    kind, payload = pe
    if kind == FIELD:
        return "f:" + payload
    if kind == KEY:
        return "k:{" + ",".join(go_json_string(k) + ":" + go_json(thaw(v)) for k, v in payload) + "}"
    if kind == VALUE:
        return "v:" + go_json(thaw(payload))
    return f"i:{payload}"


class FieldsV1Error(ValueError):
    """A FieldsV1 document that cannot be read."""


_UNKNOWN = object()


def deserialize_pe(s: str) -> Any:
    """Parse one FieldsV1 key; returns `_UNKNOWN` for element kinds this version does not
    know (upstream drops those rather than failing)."""
    if len(s) < 2:
        raise FieldsV1Error("key must be 2 characters long:")
    if s[1] != ":":
        raise FieldsV1Error(f"missing colon: {s}")
    kind, rest = s[0], s[2:]
    if kind == "f":
        return (FIELD, rest)
    if kind == "v":
        try:
            return (VALUE, freeze(json.loads(rest)))
        except (ValueError, TypeError) as e:
            raise FieldsV1Error(f"parsing key as path element: {e}") from None
    if kind == "k":
        try:
            obj = json.loads(rest)
        except ValueError as e:
            raise FieldsV1Error(f"parsing key as path element: {e}") from None
        if not isinstance(obj, dict):
            raise FieldsV1Error("parsing key as path element: key must be a JSON object")
        return key_pe(obj)
    if kind == "i":
        body = rest[1:] if rest[:1] in ("+", "-") else rest
        if not body.isdigit() or not body.isascii():
            raise FieldsV1Error(f'strconv.Atoi: parsing {go_quote(rest)}: invalid syntax')
        return (INDEX, int(rest))
    return _UNKNOWN


# ---------------------------------------------------------------- field sets
class FieldSet:
    """A set of field paths (see the module docstring). Operations return new sets."""

    __slots__ = ("members", "children")

    def __init__(self, members: Optional[set] = None, children: Optional[dict] = None) -> None:
        self.members: set = members if members is not None else set()
        self.children: dict = children if children is not None else {}

    # -- construction
    @classmethod
    def from_paths(cls, *paths: Union[Path, Sequence[Any], str]) -> "FieldSet":
        """A set of the given paths; a path may be a tuple of PEs, a sequence of
        readable parts (see `make_path`) or a dotted string of field names."""
        s = cls()
        for p in paths:
            if isinstance(p, str):
                s.insert(make_path(*p.split(".")))
            elif p and all(isinstance(x, tuple) and len(x) == 2 and x[0] in (0, 1, 2, 3) for x in p):
                s.insert(tuple(p))
            else:
                s.insert(make_path(*p))
        return s

    @classmethod
    def from_object(cls, obj: Any, types: Any) -> "FieldSet":
        """The fields an object (e.g. an apply configuration) sets, by `types` (a
        `TypeInfo`): its leaves, list items and map entries, and the atomic values."""
        from kybernetes.api.managedfields.typed import to_field_set

        return to_field_set(obj, types)

    @classmethod
    def from_fields_v1(cls, doc: Any) -> "FieldSet":
        """Read a FieldsV1 document (the `fieldsV1` of a managedFields entry)."""
        if doc is None:
            return cls()
        if isinstance(doc, (bytes, str)):
            try:
                doc = json.loads(doc)
            except ValueError as e:
                raise FieldsV1Error(str(e)) from None
        if not isinstance(doc, dict):
            raise FieldsV1Error("FieldsV1 must be a JSON object")
        children, _ = _read_v1(doc)
        return children if children is not None else cls()

    def copy(self) -> "FieldSet":
        return FieldSet(set(self.members), {pe: c.copy() for pe, c in self.children.items()})

    # -- mutation (only for building a set)
    def insert(self, path: Sequence[PE]) -> None:
        """Add one path (a no-op for the empty path)."""
        if not path:
            return
        node = self
        for pe in path[:-1]:
            child = node.children.get(pe)
            if child is None:
                child = node.children[pe] = FieldSet()
            node = child
        node.members.add(path[-1])

    # -- queries
    def has(self, path: Sequence[PE]) -> bool:
        """Whether `path` itself is in the set."""
        if not path:
            return False
        node = self
        for pe in path[:-1]:
            node = node.children.get(pe)
            if node is None:
                return False
        return path[-1] in node.members

    def empty(self) -> bool:
        if self.members:
            return False
        return all(c.empty() for c in self.children.values())

    def __bool__(self) -> bool:
        return not self.empty()

    def size(self) -> int:
        return len(self.members) + sum(c.size() for c in self.children.values())

    def with_prefix(self, pe: PE) -> "FieldSet":
        """The subtree below `pe` (empty when none)."""
        return self.children.get(pe) or FieldSet()

    def __iter__(self) -> Iterator[Path]:
        """Every path, in upstream's order: this level's members (sorted), then each
        child's paths (children sorted)."""
        yield from self._iter(())

    def _iter(self, prefix: Path) -> Iterator[Path]:
        for pe in sorted(self.members):
            yield prefix + (pe,)
        for pe in sorted(self.children):
            yield from self.children[pe]._iter(prefix + (pe,))

    def paths(self) -> list[str]:
        """Every path as a string (handy in tests and logs)."""
        return [path_string(p) for p in self]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        return self.members == other.members and _children_equal(self, other)

    def __repr__(self) -> str:
        return f"FieldSet({self.paths()!r})"

    # -- set algebra (children that end up empty are dropped)
    def union(self, other: "FieldSet") -> "FieldSet":
        out = FieldSet(self.members | other.members)
        for pe in self.children.keys() | other.children.keys():
            a, b = self.children.get(pe), other.children.get(pe)
            c = a.union(b) if a is not None and b is not None else (a or b).copy()
            if not c.empty():
                out.children[pe] = c
        return out

    def intersection(self, other: "FieldSet") -> "FieldSet":
        out = FieldSet(self.members & other.members)
        for pe, a in self.children.items():
            b = other.children.get(pe)
            if b is not None:
                c = a.intersection(b)
                if not c.empty():
                    out.children[pe] = c
        return out

    def difference(self, other: "FieldSet") -> "FieldSet":
        """Paths of self not in other. Like upstream, removing a member does not remove
        the paths below it (see `recursive_difference`)."""
        out = FieldSet(self.members - other.members)
        for pe, a in self.children.items():
            b = other.children.get(pe)
            c = a.difference(b) if b is not None else a.copy()
            if not c.empty():
                out.children[pe] = c
        return out

    def recursive_difference(self, other: "FieldSet") -> "FieldSet":
        """Paths of self not in other and not below a member of other."""
        out = FieldSet(self.members - other.members)
        for pe, a in self.children.items():
            if pe in other.members:
                continue
            b = other.children.get(pe)
            c = a.recursive_difference(b) if b is not None else a.copy()
            if not c.empty():
                out.children[pe] = c
        return out

    def leaves(self) -> "FieldSet":
        """Only the members that have nothing below them."""
        out = FieldSet({pe for pe in self.members if pe not in self.children})
        for pe, c in self.children.items():
            lc = c.leaves()
            if not lc.empty():
                out.children[pe] = lc
        return out

    # -- FieldsV1
    def to_fields_v1(self) -> dict:
        """The FieldsV1 document of this set, keys in upstream's order."""
        return self._emit(False)

    def _emit(self, include_self: bool) -> dict:
        out: dict = {}
        keys = self.members | self.children.keys()
        if include_self and keys:
            out["."] = {}
        for pe in sorted(keys):
            child = self.children.get(pe)
            if child is None or child.empty():
                out[serialize_pe(pe)] = {}
            else:
                out[serialize_pe(pe)] = child._emit(pe in self.members)
        return out

    def to_json(self) -> str:
        """The FieldsV1 document as compact JSON text, as upstream stores it."""
        return _json_text(self.to_fields_v1())


def _json_text(doc: dict) -> str:
    return "{" + ",".join(go_json_string(k) + ":" + _json_text(v) for k, v in doc.items()) + "}"


def _children_equal(a: FieldSet, b: FieldSet) -> bool:
    ka = {pe for pe, c in a.children.items() if not c.empty()}
    kb = {pe for pe, c in b.children.items() if not c.empty()}
    return ka == kb and all(a.children[pe] == b.children[pe] for pe in ka)


def _read_v1(doc: dict) -> tuple[Optional[FieldSet], bool]:
    # (the set below this node or None, whether the node itself is a member)
    children: Optional[FieldSet] = None
    is_member = False
    for key, sub in doc.items():
        if key == ".":
            is_member = True
            continue
        pe = deserialize_pe(key)
        if pe is _UNKNOWN:
            continue
        if not isinstance(sub, dict):
            raise FieldsV1Error(f"value of {key!r} must be a JSON object")
        grand, child_member = _read_v1(sub)
        if children is None and (child_member or grand is not None):
            children = FieldSet()
        if child_member:
            children.members.add(pe)
        if grand is not None:
            existing = children.children.get(pe)
            children.children[pe] = grand if existing is None else existing.union(grand)
    if children is None:
        is_member = True
    return children, is_member
