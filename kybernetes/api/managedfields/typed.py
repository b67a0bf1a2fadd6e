"""Types for field management, and the walks over objects that use them.

A type is an `Atom` with up to three facets: a scalar kind, a list shape and a map
shape (an untyped value has all three and is read by what the value turns out to be).
Lists are atomic (replaced whole), sets (associative, no keys) or list-maps
(associative, keyed by `keys`); maps and structs are granular unless marked atomic.
This is upstream's structured-merge-diff model, converted from OpenAPI the way
kube-openapi's schemaconv does it:

- `x-kubernetes-list-type` decides a list; without it, `x-kubernetes-patch-strategy`
  merge makes a list-map keyed by the patch merge key (or a set without one);
  otherwise the list is atomic;
- `x-kubernetes-map-type: atomic` makes a map/struct a leaf (on a definition, or on a
  field that references one);
- objects without properties or additionalProperties, and unknown fields under
  `x-kubernetes-preserve-unknown-fields`, are *deduced*: maps granular, lists atomic;
- Quantity, IntOrString and formatted strings are untyped scalars; RawExtension is
  atomic all the way down.

The walks (`to_field_set`, `compare`, `merge`, `remove_items`, `validate`) treat an
absent value (`MISSING`) differently from JSON null, as upstream does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from kybernetes.api import schema as _schema
from kybernetes.api.managedfields.fieldpath import (
    FIELD,
    FieldSet,
    KEY,
    PE,
    Path,
    VALUE,
    freeze,
    go_quote,
    path_string,
    pe_string,
)

Obj = dict[str, Any]
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()

NUMERIC, STRING, BOOLEAN, UNTYPED = "numeric", "string", "boolean", "untyped"

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
_UNTYPED_SCALAR_DEFS = {_schema.QUANTITY, _schema.INT_OR_STRING}

# Defaults of list-map key fields. Upstream's OpenAPI carries `default` for these (and
# structured-merge-diff fills a missing key field from it: a port without a protocol is
# the TCP port); the definitions we load do not, so they are listed here.
_KEY_DEFAULTS = {
    ("io.k8s.api.core.v1.ContainerPort", "protocol"): "TCP",
    ("io.k8s.api.core.v1.ServicePort", "protocol"): "TCP",
}


# ---------------------------------------------------------------- the type model
class Ref:
    """A lazily built type (definitions may be recursive)."""

    __slots__ = ("_atom", "_build")

    def __init__(self, build: Callable[[], "Atom"]) -> None:
        self._atom: Optional[Atom] = None
        self._build = build

    @classmethod
    def of(cls, atom: "Atom") -> "Ref":
        r = cls(lambda: atom)
        r._atom = atom
        return r

    @property
    def atom(self) -> "Atom":
        if self._atom is None:
            self._atom = self._build()
        return self._atom


class ListType:
    __slots__ = ("elem", "atomic", "keys")

    def __init__(self, elem: Ref, atomic: bool, keys: tuple[str, ...] = ()) -> None:
        self.elem = elem
        self.atomic = atomic
        self.keys = keys


class MapType:
    __slots__ = ("fields", "elem", "atomic", "defaults")

    def __init__(self, fields: dict[str, Ref], elem: Optional[Ref], atomic: bool,
                 defaults: Optional[dict[str, Any]] = None) -> None:
        self.fields = fields
        self.elem = elem  # None: fields other than `fields` are not allowed
        self.atomic = atomic
        self.defaults = defaults or {}

    def with_atomic(self, atomic: bool) -> "MapType":
        return MapType(self.fields, self.elem, atomic, self.defaults)


class Atom:
    __slots__ = ("scalar", "list", "map")

    def __init__(self, scalar: Optional[str] = None, list: Optional[ListType] = None,
                 map: Optional[MapType] = None) -> None:
        self.scalar = scalar
        self.list = list
        self.map = map


# the two shared untyped types
UNTYPED_ATOMIC_REF: Ref = Ref(lambda: _UNTYPED_ATOMIC)
DEDUCED_REF: Ref = Ref(lambda: _DEDUCED)
_UNTYPED_ATOMIC = Atom(UNTYPED, ListType(UNTYPED_ATOMIC_REF, True), MapType({}, UNTYPED_ATOMIC_REF, True))
_DEDUCED = Atom(UNTYPED, ListType(UNTYPED_ATOMIC_REF, True), MapType({}, DEDUCED_REF, False))


# ---------------------------------------------------------------- OpenAPI -> types
def _list_relationship(node: dict) -> tuple[bool, tuple[str, ...]]:
    """(atomic, keys) of a list schema, as upstream's schemaconv decides them."""
    lt = node.get("x-kubernetes-list-type")
    if lt is not None:
        if lt == "set":
            return False, ()
        if lt == "map":
            return False, tuple(node.get("x-kubernetes-list-map-keys") or ())
        return True, ()
    strategy = node.get("x-kubernetes-patch-strategy")
    if strategy in ("merge", "merge,retainKeys"):
        key = node.get("x-kubernetes-patch-merge-key")
        return False, ((key,) if isinstance(key, str) else ())
    return True, ()


class _Converter:
    """Builds atoms from JSON-Schema nodes whose `$ref`s name entries of `defs`."""

    def __init__(self, defs: dict[str, dict]) -> None:
        self.defs = defs
        self._named: dict[tuple[str, Optional[bool]], Ref] = {}

    def named(self, name: str, atomic_override: Optional[bool] = None) -> Ref:
        key = (name, atomic_override)
        ref = self._named.get(key)
        if ref is None:
            if atomic_override is None:
                ref = Ref(lambda: self._named_atom(name))
            else:
                base = self.named(name)

                def build() -> Atom:
                    a = base.atom
                    return Atom(a.scalar, a.list, a.map.with_atomic(atomic_override) if a.map else None)

                ref = Ref(build)
            self._named[key] = ref
        return ref

    def _named_atom(self, name: str) -> Atom:
        if name == _RAW_EXTENSION:
            return _UNTYPED_ATOMIC
        if name in _UNTYPED_SCALAR_DEFS:
            return Atom(UNTYPED)
        node = self.defs.get(name)
        if node is None:
            return _DEDUCED
        return self.atom(node, False, def_name=name)

    def ref(self, node: Any, preserve: bool) -> Ref:
        """The type of a property / items / additionalProperties schema."""
        if not isinstance(node, dict):
            return DEDUCED_REF
        r = node.get("$ref")
        if r is None:
            all_of = node.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
                r = all_of[0].get("$ref")
        if isinstance(r, str):
            mt = node.get("x-kubernetes-map-type")
            override = None if mt is None else (mt == "atomic")
            return self.named(_schema.ref_name(r), override)
        return Ref(lambda: self.atom(node, preserve))

    def atom(self, node: dict, preserve: bool, def_name: Optional[str] = None) -> Atom:
        if node.get("x-kubernetes-preserve-unknown-fields") is True:
            preserve = True
        if node.get("x-kubernetes-int-or-string") is True:
            return Atom(UNTYPED)
        t = _schema.scalar_type(node)
        if t is None:
            if "oneOf" in node or "anyOf" in node:
                return Atom(UNTYPED)
            return Atom(UNTYPED, self._list(node, preserve), self._map(node, preserve, def_name))
        if t == "object":
            return Atom(map=self._map(node, preserve, def_name))
        if t == "array":
            return Atom(list=self._list(node, preserve))
        if t in ("integer", "number"):
            return Atom(NUMERIC)
        if t == "boolean":
            return Atom(BOOLEAN)
        if t == "string":
            return Atom(STRING if node.get("format") in (None, "", "byte") else UNTYPED)
        return Atom(UNTYPED)

    def _map(self, node: dict, preserve: bool, def_name: Optional[str]) -> MapType:
        props = node.get("properties") or {}
        fields = {name: self.ref(p, preserve) for name, p in props.items()}
        defaults = {name: p["default"] for name, p in props.items() if isinstance(p, dict) and "default" in p}
        if def_name is not None:
            for (d, f), v in _KEY_DEFAULTS.items():
                if d == def_name:
                    defaults.setdefault(f, v)
        if node.get("x-kubernetes-embedded-resource") is True:
            fields.setdefault("apiVersion", Ref.of(Atom(STRING)))
            fields.setdefault("kind", Ref.of(Atom(STRING)))
            fields["metadata"] = self.named(OBJECT_META)
        ap = node.get("additionalProperties")
        if ap is None:
            elem = DEDUCED_REF if (preserve or not props) else None
        elif isinstance(ap, dict):
            elem = self.ref(ap, preserve)
        elif ap is True:
            elem = DEDUCED_REF
        else:
            elem = None
        return MapType(fields, elem, node.get("x-kubernetes-map-type") == "atomic", defaults)

    def _list(self, node: dict, preserve: bool) -> ListType:
        atomic, keys = _list_relationship(node)
        items = node.get("items")
        elem = self.ref(items, preserve) if isinstance(items, dict) else UNTYPED_ATOMIC_REF
        return ListType(elem, atomic, keys)


@functools.cache
def _builtin_converter() -> _Converter:
    return _Converter(_schema.raw_definitions())


# ---------------------------------------------------------------- TypeInfo
@dataclass(frozen=True)
class TypeInfo:
    """Everything field management needs to know about one group/version/kind."""

    group: str
    version: str
    kind: str
    root: Ref = field(repr=False, compare=False)
    zero: Callable[[], Obj] = field(repr=False, compare=False, default=dict)
    deduced: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def zero_object(self) -> Obj:
        """What upstream's `New()` of the kind serializes to: the object a create is
        compared against (non-pointer structs present as {}, some nil slices as null)."""
        return self.zero()


@functools.lru_cache(maxsize=512)
def type_info(group: str, version: str, kind: str) -> TypeInfo:
    """The types of a built-in kind (1.37 schemas); deduced types for unknown kinds."""
    name = _schema.definition_for(group, version, kind)
    if name is None:
        return deduced_type_info(group, version, kind)
    conv = _builtin_converter()
    return TypeInfo(group, version, kind, conv.named(name), functools.partial(_builtin_zero, name))


def deduced_type_info(group: str, version: str, kind: str) -> TypeInfo:
    """Types deduced from the values themselves: maps granular, lists atomic (what
    upstream does for objects it has no schema for)."""
    return TypeInfo(group, version, kind, DEDUCED_REF, dict, deduced=True)


def crd_type_info(group: str, version: str, kind: str, schema: Optional[dict],
                  preserve_unknown_fields: bool = False) -> TypeInfo:
    """Types of a custom resource from its version's `openAPIV3Schema` (structural
    schema). As upstream publishes CRD schemas, `metadata` is ObjectMeta and
    `apiVersion`/`kind` are strings. Without a schema, everything is deduced. Build it
    once per CRD generation; it is cheap but not free."""
    if not isinstance(schema, dict):
        return deduced_type_info(group, version, kind)
    conv = _Converter(_schema.raw_definitions())
    builtin = _builtin_converter()

    def build() -> Atom:
        a = conv.atom(schema, preserve_unknown_fields)
        if a.map is None:
            return a
        fields = dict(a.map.fields)
        fields["apiVersion"] = Ref.of(Atom(STRING))
        fields["kind"] = Ref.of(Atom(STRING))
        fields["metadata"] = builtin.named(OBJECT_META)
        return Atom(a.scalar, a.list, MapType(fields, a.map.elem, a.map.atomic, a.map.defaults))

    return TypeInfo(group, version, kind, Ref(build), dict)


# Fields that are non-pointer structs (serialized as {} even when unset) or nil slices
# without omitempty (serialized as null) in the Go types, by definition. Upstream
# compares a create against the Go zero object, so whether a granular field gets its
# own "." entry on create depends on these; scalars never matter (they are leaves).
_STRUCT, _NULL = "struct", "null"
_ZERO_FIELDS: dict[str, dict[str, str]] = {
    OBJECT_META: {"creationTimestamp": _NULL},
    "io.k8s.api.core.v1.PodTemplateSpec": {"metadata": _STRUCT, "spec": _STRUCT},
    "io.k8s.api.core.v1.PodSpec": {"containers": _NULL},
    "io.k8s.api.core.v1.PodTemplate": {"template": _STRUCT},
    "io.k8s.api.apps.v1.DeploymentSpec": {"selector": _NULL, "template": _STRUCT, "strategy": _STRUCT},
    "io.k8s.api.apps.v1.ReplicaSetSpec": {"selector": _NULL, "template": _STRUCT},
    "io.k8s.api.apps.v1.StatefulSetSpec": {"selector": _NULL, "template": _STRUCT, "updateStrategy": _STRUCT},
    "io.k8s.api.apps.v1.DaemonSetSpec": {"selector": _NULL, "template": _STRUCT, "updateStrategy": _STRUCT},
    "io.k8s.api.batch.v1.JobSpec": {"template": _STRUCT},
    "io.k8s.api.batch.v1.CronJobSpec": {"jobTemplate": _STRUCT},
    "io.k8s.api.batch.v1.JobTemplateSpec": {"metadata": _STRUCT, "spec": _STRUCT},
    "io.k8s.api.core.v1.ServiceStatus": {"loadBalancer": _STRUCT},
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": {"resources": _STRUCT},
    "io.k8s.api.rbac.v1.ClusterRole": {"rules": _NULL},
    "io.k8s.api.rbac.v1.Role": {"rules": _NULL},
    "io.k8s.api.rbac.v1.RoleBinding": {"roleRef": _STRUCT},
    "io.k8s.api.rbac.v1.ClusterRoleBinding": {"roleRef": _STRUCT},
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec": {"scaleTargetRef": _STRUCT},
    "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec": {"scaleTargetRef": _STRUCT},
}


def _builtin_zero(def_name: str) -> Obj:
    return copy_value(_builtin_zero_template(def_name))


@functools.lru_cache(maxsize=1024)
def _builtin_zero_template(def_name: str) -> Obj:
    raw = _schema.raw_definitions()
    node = raw.get(def_name) or {}
    props = node.get("properties") or {}
    spec: dict[str, str] = dict(_ZERO_FIELDS.get(def_name, {}))
    if node.get("x-kubernetes-group-version-kind"):
        for f in ("metadata", "spec", "status"):
            p = props.get(f)
            if isinstance(p, dict) and "$ref" in p:
                spec.setdefault(f, _STRUCT)
    out: Obj = {}
    for f, how in spec.items():
        if how == _NULL:
            out[f] = None
        else:
            p = props.get(f)
            ref = _schema.ref_name(p["$ref"]) if isinstance(p, dict) and "$ref" in p else None
            out[f] = _builtin_zero_template(ref) if ref else {}
    return out


# ---------------------------------------------------------------- errors
class TypedError(Exception):
    """A value that does not fit its type (upstream's ValidationErrors)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors  # (path, message)
        super().__init__(self.text())

    def text(self) -> str:
        def one(p: str, m: str) -> str:
            return f"{p}: {m}" if p else m

        if len(self.errors) == 1:
            return one(*self.errors[0])
        return "\n".join(["errors:"] + ["  " + one(p, m) for p, m in self.errors])


# ---------------------------------------------------------------- helpers
def _facets(atom: Atom, v: Any) -> tuple[bool, bool, bool]:
    """Which facets of `atom` apply to `v` (upstream's deduceAtom): (map, scalar, list)."""
    if v is MISSING or v is None:
        pass
    elif isinstance(v, dict):
        if atom.map is not None:
            return (True, False, False)
    elif isinstance(v, list):
        if atom.list is not None:
            return (False, False, True)
    elif atom.scalar is not None:
        return (False, True, False)
    return (atom.map is not None, atom.scalar is not None, atom.list is not None)


def _handler(f: tuple[bool, bool, bool]) -> str:
    # upstream handles the map facet first, then scalar, then list
    if f[0]:
        return "map"
    if f[1]:
        return "scalar"
    if f[2]:
        return "list"
    raise TypedError([("", "schema error: invalid atom: inlined")])


def _field_ref(m: MapType, key: str) -> Ref:
    r = m.fields.get(key)
    if r is not None:
        return r
    # Lenient for undeclared fields: upstream rejects them when it converts an object
    # (which `validate` reproduces for apply configurations); elsewhere treat as deduced.
    return m.elem if m.elem is not None else DEDUCED_REF


def item_pe(lt: ListType, item: Any) -> PE:
    """The path element of one item of an associative list."""
    if lt.keys:
        if item is None:
            raise ValueError("associative list with keys may not have a null element")
        if not isinstance(item, dict):
            raise ValueError("associative list with keys may not have non-map elements")
        keys = []
        defaults = None
        for k in lt.keys:
            if k in item:
                keys.append((k, freeze(item[k])))
                continue
            if defaults is None:
                a = lt.elem.atom
                if a.map is None:
                    raise ValueError(f"couldn't find default value for {k}: associative list may not have non-map types")
                defaults = a.map.defaults
            if defaults.get(k) is not None:
                keys.append((k, freeze(defaults[k])))
        if not keys:
            quoted = "[" + " ".join(go_quote(k) for k in lt.keys) + "]"
            raise ValueError(f"associative list with keys has an element that omits all key fields {quoted} "
                             "(and doesn't have default values for any key fields)")
        keys.sort()
        return (KEY, tuple(keys))
    if isinstance(item, dict):
        raise ValueError("associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise ValueError("not supported: associative list with lists as elements")
    if item is None:
        raise ValueError("associative list without keys has an element that's an explicit null")
    return (VALUE, freeze(item))


def values_equal(a: Any, b: Any) -> bool:
    """Upstream's value equality: numbers by value (1 == 1.0), booleans are not numbers."""
    if a is b:
        return True
    if isinstance(a, dict):
        return isinstance(b, dict) and len(a) == len(b) and all(k in b and values_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)):
        return isinstance(b, (int, float)) and a == b
    return type(a) is type(b) and a == b


def copy_value(v: Any) -> Any:
    """A deep copy of a JSON value."""
    if isinstance(v, dict):
        return {k: copy_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copy_value(x) for x in v]
    return v


def _root(types: Any) -> Ref:
    if isinstance(types, TypeInfo):
        return types.root
    if isinstance(types, Ref):
        return types
    raise TypeError(f"expected a TypeInfo, got {type(types).__name__}")


# ---------------------------------------------------------------- to_field_set
def to_field_set(obj: Any, types: Any) -> FieldSet:
    """The set of fields `obj` sets (upstream's TypedValue.ToFieldSet)."""
    out = FieldSet()
    _tofs(obj, _root(types), (), out)
    return out


def _tofs(v: Any, ref: Ref, path: Path, out: FieldSet) -> None:
    atom = ref.atom
    how = _handler(_facets(atom, v))
    if how == "scalar":
        out.insert(path)
    elif how == "map":
        m = atom.map
        if m.atomic:
            out.insert(path)
            return
        if not isinstance(v, dict):
            return
        for k, val in v.items():
            p = path + ((FIELD, k),)
            declared = k in m.fields
            _tofs(val, _field_ref(m, k), p, out)
            if val is None or (isinstance(val, dict) and not val) or not declared:
                out.insert(p)
    else:
        lt = atom.list
        if lt.atomic:
            out.insert(path)
            return
        if not isinstance(v, list):
            return
        pes = []
        for item in v:
            try:
                pes.append(item_pe(lt, item))
            except ValueError:
                pes.append(None)
        seen: set = set()
        dups: set = set()
        for pe in pes:
            if pe is None:
                continue
            if pe in seen:
                if pe not in dups:
                    out.insert(path + (pe,))
                    dups.add(pe)
            else:
                seen.add(pe)
        for pe, item in zip(pes, v):
            if pe is None or pe in dups:
                continue
            p = path + (pe,)
            _tofs(item, lt.elem, p, out)
            out.insert(p)


# ---------------------------------------------------------------- compare
@dataclass
class Comparison:
    """Fields `rhs` added, modified and removed relative to `lhs`."""

    added: FieldSet = field(default_factory=FieldSet)
    modified: FieldSet = field(default_factory=FieldSet)
    removed: FieldSet = field(default_factory=FieldSet)

    def is_same(self) -> bool:
        return self.added.empty() and self.modified.empty() and self.removed.empty()

    def exclude(self, fields: Optional[FieldSet]) -> "Comparison":
        """Drop `fields` and everything below them (upstream's reset-field filter)."""
        if fields is None or fields.empty():
            return self
        return Comparison(self.added.recursive_difference(fields),
                          self.modified.recursive_difference(fields),
                          self.removed.recursive_difference(fields))


def compare(lhs: Any, rhs: Any, types: Any) -> Comparison:
    """What changed from `lhs` to `rhs` (upstream's TypedValue.Compare)."""
    c = Comparison()
    _cmp(lhs, rhs, _root(types), (), c)
    return c


def _cmp(l: Any, r: Any, ref: Ref, path: Path, c: Comparison) -> None:
    atom = ref.atom
    if r is MISSING:
        leaf = _cmp_handle(_handler(_facets(atom, l)), atom, l, r, path, c)
    elif l is MISSING:
        _cmp_added(r, ref, path, c)
        return
    else:
        fl, fr = _facets(atom, l), _facets(atom, r)
        if fl == fr:
            leaf = _cmp_handle(_handler(fr), atom, l, r, path, c)
        else:
            _cmp_handle(_handler(fl), atom, l, r, path, c)
            leaf = _cmp_handle(_handler(fr), atom, l, r, path, c)
    if not leaf:
        if l is MISSING:
            c.added.insert(path)
        elif r is MISSING:
            c.removed.insert(path)


def _cmp_added(r: Any, ref: Ref, path: Path, c: Comparison) -> None:
    """_cmp(MISSING, r, ...) for a present `r`: everything in it is added, found by the
    same walk without the checks a missing left side makes moot (a create compares
    every field of the new object against nothing)."""
    atom = ref.atom
    how = _handler(_facets(atom, r))
    if how == "map":
        m = atom.map
        if m.atomic or not isinstance(r, dict) or not r:
            c.added.insert(path)
            return
        for k, v in r.items():
            _cmp_added(v, _field_ref(m, k), path + ((FIELD, k),), c)
    elif how == "list":
        lt = atom.list
        if lt.atomic or not isinstance(r, list) or not r:
            c.added.insert(path)
            return
        items: dict = {}
        for item in r:
            try:
                pe = item_pe(lt, item)
            except ValueError as e:
                raise TypedError([(path_string(path), f"element: {e}")]) from None
            items.setdefault(pe, []).append(item)
        for pe, vs in items.items():
            if len(vs) == 1:
                _cmp_added(vs[0], lt.elem, path + (pe,), c)
            else:  # duplicates: the item as a whole
                c.added.insert(path + (pe,))
    c.added.insert(path)


def _cmp_leaf(l: Any, r: Any, path: Path, c: Comparison) -> bool:
    if l is MISSING:
        c.added.insert(path)
    elif r is MISSING:
        c.removed.insert(path)
    elif not values_equal(l, r):
        c.modified.insert(path)
    return True


def _cmp_handle(how: str, atom: Atom, l: Any, r: Any, path: Path, c: Comparison) -> bool:
    """Compare one node; returns whether it was a leaf."""
    if how == "scalar":
        return _cmp_leaf(l, r, path, c)
    if how == "map":
        m = atom.map
        lm = l if isinstance(l, dict) else None
        rm = r if isinstance(r, dict) else None
        if m.atomic or (not lm and not rm):
            return _cmp_leaf(l, r, path, c)
        keys = list(lm or ())
        if rm:
            keys.extend(k for k in rm if lm is None or k not in lm)
        for k in keys:
            _cmp(lm.get(k, MISSING) if lm is not None else MISSING,
                 rm.get(k, MISSING) if rm is not None else MISSING,
                 _field_ref(m, k), path + ((FIELD, k),), c)
        return False
    lt = atom.list
    ll = l if isinstance(l, list) else None
    rl = r if isinstance(r, list) else None
    if lt.atomic or (not ll and not rl):
        return _cmp_leaf(l, r, path, c)
    lvals: dict = {}
    rvals: dict = {}
    order: list = []
    for src, dst, other in ((ll or (), lvals, None), (rl or (), rvals, lvals)):
        for item in src:
            try:
                pe = item_pe(lt, item)
            except ValueError as e:
                raise TypedError([(path_string(path), f"element: {e}")]) from None
            if pe in dst:
                dst[pe].append(item)
            else:
                dst[pe] = [item]
                if other is None or pe not in other:
                    order.append(pe)
    for pe in order:
        lv, rv = lvals.get(pe, ()), rvals.get(pe, ())
        p = path + (pe,)
        if len(lv) <= 1 and len(rv) <= 1:
            _cmp(lv[0] if lv else MISSING, rv[0] if rv else MISSING, lt.elem, p, c)
        elif len(lv) >= 2 and len(rv) >= 2:
            if len(lv) != len(rv) or not all(values_equal(a, b) for a, b in zip(lv, rv)):
                c.modified.insert(p)
        elif len(lv) >= 2:
            if rv:
                _cmp(MISSING, rv[0], lt.elem, p, c)
            c.removed.insert(p)
        else:
            if lv:
                _cmp(lv[0], MISSING, lt.elem, p, c)
            c.added.insert(p)
    return False


# ---------------------------------------------------------------- merge
def merge(lhs: Any, rhs: Any, types: Any) -> Any:
    """`rhs` merged into `lhs` by type, `rhs` winning at the leaves (upstream's
    TypedValue.Merge): granular maps union their keys, list-maps and sets merge their
    items (config order first where items are shared), atomic values are replaced."""
    out = _merge(lhs, rhs, _root(types), ())
    return {} if out is MISSING else out


def _merge(l: Any, r: Any, ref: Ref, path: Path) -> Any:
    atom = ref.atom
    fl, fr = _facets(atom, l), _facets(atom, r)
    how = _handler(fl if r is MISSING else fr)
    if how == "scalar":
        return copy_value(r if r is not MISSING else l)
    if how == "map":
        m = atom.map
        lm = l if isinstance(l, dict) else None
        rm = r if isinstance(r, dict) else None
        if m.atomic or (not lm and not rm):
            return copy_value(r if r is not MISSING else l)
        out = {}
        for k in (lm or ()):
            v = _merge(lm[k], rm.get(k, MISSING) if rm is not None else MISSING, _field_ref(m, k), path + ((FIELD, k),))
            if v is not MISSING:
                out[k] = v
        for k in (rm or ()):
            if lm is not None and k in lm:
                continue
            v = _merge(MISSING, rm[k], _field_ref(m, k), path + ((FIELD, k),))
            if v is not MISSING:
                out[k] = v
        return out if out else MISSING
    lt = atom.list
    ll = l if isinstance(l, list) else None
    rl = r if isinstance(r, list) else None
    if lt.atomic or (not ll and not rl):
        return copy_value(r if r is not MISSING else l)
    out_list = _merge_list(lt, ll or [], rl or [], path)
    return out_list if out_list else MISSING


def _merge_list(lt: ListType, ll: list, rl: list, path: Path) -> list:
    def pe_of(item: Any, i: int) -> PE:
        try:
            return item_pe(lt, item)
        except ValueError as e:
            raise TypedError([(path_string(path), f"element {i}: {e}")]) from None

    rpes = []
    robs: dict = {}
    for i, item in enumerate(rl):
        pe = pe_of(item, i)
        if pe in robs:
            raise TypedError([(path_string(path), f"duplicate entries for key {pe_string(pe)}")])
        robs[pe] = item
        rpes.append(pe)
    lpes = []
    lobs: dict = {}
    for i, item in enumerate(ll):
        pe = pe_of(item, i)
        # a duplicated live item merges as null, as upstream's index of the live list has it
        lobs[pe] = None if pe in lobs else item
        lpes.append(pe)

    shared = [pe for pe in rpes if pe in lobs]
    si = 0
    next_shared = None
    if shared:
        next_shared, si = shared[0], 1

    def advance() -> None:
        nonlocal next_shared, si
        if si < len(shared):
            next_shared = shared[si]
            si += 1
        else:
            next_shared = None

    out: list = []

    def emit(lv: Any, rv: Any, pe: PE) -> None:
        v = _merge(lv, rv, lt.elem, path + (pe,))
        if v is not MISSING:
            out.append(v)

    merged: set = set()
    li = ri = 0
    nl, nr = len(lpes), len(rpes)
    # Walk both lists at once: live items the config does not mention keep their place;
    # items the config mentions come out in the config's order.
    while li < nl or ri < nr:
        if li < nl and ri < nr:
            pe = lpes[li]
            if pe == rpes[ri]:
                merged.add(pe)
                emit(lobs[pe], robs[pe], pe)
                li += 1
                ri += 1
                advance()
                continue
            if pe in robs and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < nl:
            pe = lpes[li]
            if pe not in robs:
                emit(ll[li], MISSING, pe)
                li += 1
                continue
            if pe in merged:
                li += 1
        if ri < nr:
            pe = rpes[ri]
            merged.add(pe)
            emit(lobs.get(pe, MISSING), robs[pe], pe)
            ri += 1
            if next_shared is not None and next_shared == pe:
                advance()
    return out


# ---------------------------------------------------------------- remove_items
def remove_items(obj: Any, items: FieldSet, types: Any) -> Any:
    """`obj` without the given fields / list items / map entries (upstream's
    RemoveItems). Containers left empty by the removal are dropped."""
    out = _remove(obj, items, _root(types))
    return {} if out is MISSING else out


def _remove(v: Any, rm: FieldSet, ref: Ref) -> Any:
    atom = ref.atom
    how = _handler(_facets(atom, v))
    if how == "scalar":
        return v
    if how == "map":
        m = atom.map
        if not isinstance(v, dict) or not v or m.atomic:
            return MISSING
        out = {}
        for k, val in v.items():
            pe = (FIELD, k)
            if pe in rm.members:
                continue
            sub = rm.children.get(pe)
            if sub is not None and not sub.empty():
                val = _remove(val, sub, _field_ref(m, k))
                if val is MISSING:
                    continue
            out[k] = val
        return out if out else MISSING
    lt = atom.list
    if not isinstance(v, list) or not v or lt.atomic:
        return MISSING
    out_list = []
    for item in v:
        try:
            pe = item_pe(lt, item)
        except ValueError:
            out_list.append(item)
            continue
        if pe in rm.members:
            continue
        sub = rm.children.get(pe)
        if sub is not None and not sub.empty():
            new = _remove(item, sub, lt.elem)
            item = new if new is not MISSING else ({} if isinstance(item, dict) else item)
        out_list.append(item)
    return out_list if out_list else MISSING


# ---------------------------------------------------------------- named fields
def ensure_named_fields_are_members(s: FieldSet, types: Any) -> FieldSet:
    """`s` where every struct field that has children is also a member (upstream uses
    this when pruning, so that a whole struct can be removed)."""
    return _ensure(s, _root(types))


def _ensure(s: FieldSet, ref: Optional[Ref]) -> FieldSet:
    atom = ref.atom if ref is not None else None
    m = atom.map if atom is not None else None
    out = FieldSet(set(s.members))
    for pe, child in s.children.items():
        cref: Optional[Ref] = None
        if pe[0] == FIELD and m is not None:
            if pe[1] in m.fields:
                out.members.add(pe)
                cref = m.fields[pe[1]]
            else:
                cref = m.elem
        elif pe[0] == KEY and atom is not None and atom.list is not None:
            cref = atom.list.elem
        out.children[pe] = _ensure(child, cref)
    return out


# ---------------------------------------------------------------- validate
def validate(obj: Any, types: Any, *, allow_duplicates: bool = False) -> None:
    """Check `obj` against its types as upstream's typed conversion does; raises
    `TypedError` (paths and messages as upstream words them)."""
    errs: list[tuple[str, str]] = []
    _validate(obj, _root(types), "", errs, allow_duplicates)
    if errs:
        raise TypedError(errs)


def _go_type(v: Any) -> str:
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    return "<nil>"


def _go_sharp(v: Any) -> str:
    # Go's %#v of a decoded JSON value (close enough for error messages)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(_go_sharp(x) for x in v) + "}"
    return "map[string]interface {}{" + ", ".join(f"{go_quote(k)}:{_go_sharp(x)}" for k, x in v.items()) + "}"


def _scalar_error(kind: str, v: Any) -> Optional[str]:
    if v is None or v is MISSING:
        return None
    is_num = isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == NUMERIC:
        if not is_num:
            return f"expected numeric (int or float), got {_go_type(v)}"
    elif kind == STRING:
        if not isinstance(v, str):
            return f"expected string, got &value.valueUnstructured{{Value:{_go_sharp(v)}}}"
    elif kind == BOOLEAN:
        if not isinstance(v, bool):
            return f"expected boolean, got &{{{_go_sharp(v)}}}"
    elif isinstance(v, (dict, list)):
        return f"expected any scalar, got &{{{_go_sharp(v)}}}"
    return None


def _validate(v: Any, ref: Ref, path: str, errs: list, allow_dups: bool) -> None:
    atom = ref.atom
    how = _handler(_facets(atom, v))
    if how == "scalar":
        msg = _scalar_error(atom.scalar, v)
        if msg:
            errs.append((path, msg))
        return
    if how == "map":
        if v is None:
            return
        if not isinstance(v, dict):
            errs.append((path, f"expected map, got &{{{_go_sharp(v)}}}"))
            return
        m = atom.map
        for k, val in v.items():
            r = m.fields.get(k)
            if r is None:
                if m.elem is None:
                    errs.append((f"{path}.{k}", "field not declared in schema"))
                    return  # upstream stops at the first undeclared field of a map
                r = m.elem
            _validate(val, r, f"{path}.{k}", errs, allow_dups)
        return
    if v is None:
        return
    if not isinstance(v, list):
        errs.append((path, f"expected list, got &{{{_go_sharp(v)}}}"))
        return
    lt = atom.list
    seen: set = set()
    for i, item in enumerate(v):
        if lt.atomic:
            pe: PE = (3, i)
        else:
            try:
                pe = item_pe(lt, item)
            except ValueError as e:
                errs.append((path, f"element {i}: {e}"))
                return
            if pe in seen and not allow_dups:
                errs.append((path, f"duplicate entries for key {pe_string(pe)}"))
            seen.add(pe)
        _validate(item, lt.elem, path + pe_string(pe), errs, allow_dups)
