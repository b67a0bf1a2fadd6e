"""The Kubernetes 1.37 type schemas, from the `kubernetes-validate` package.

The package ships the upstream OpenAPI definitions rendered as JSON Schema
(`$defs`, refs `#/$defs/<name>`, nullable types such as ["string", "null"]).
This module loads them once, lazily, and offers:

- `raw_definitions()`: the JSON-Schema form, as shipped (what validation walks);
- `definitions("v2" | "v3")`: the same definitions in the OpenAPI form upstream's
  /openapi/v2 and /openapi/v3 serve (refs, scalar types, int-or-string, Quantity);
- `definition_for(group, version, kind)`: the definition name of a kind;
- `patch_meta(def_name, path)`: strategic-merge / apply metadata of a field.

Every returned dict is shared and cached: callers must not mutate it.
"""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Optional, Sequence, Union

import orjson

Schema = dict[str, Any]

SCHEMA_PACKAGE = "kubernetes_validate"
SCHEMA_DIR = ("kubernetes-json-schema", "v1.37.0-local", "_definitions.json")
KUBERNETES_VERSION = "v1.37.1"

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
# Definitions whose JSON is kept verbatim by the Go types (any JSON value decodes).
RAW_JSON_DEFS = frozenset({
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
})

_JSONSCHEMA_REF = "#/$defs/"
REF_PREFIX = {"v2": "#/definitions/", "v3": "#/components/schemas/"}

# The JSON-Schema rendering flattens these two to oneOf; upstream's OpenAPI shapes
# differ per version (v2 cannot say oneOf). Descriptions are our own wording.
_INT_OR_STRING_DESC = (
    "IntOrString holds either an int32 or a string; in JSON and YAML it is written as "
    "whichever of the two it holds, so a field of this type accepts a number or a name."
)
_QUANTITY_DESC = (
    "Quantity is a fixed-point number with an optional unit suffix, written as a string: "
    "binary SI (Ki, Mi, Gi, Ti, Pi, Ei), decimal SI (m, k, M, G, T, P, E) or a decimal "
    "exponent (e.g. 1e3). Examples: \"100m\", \"128Mi\", \"2\"."
)
_SPECIAL = {
    "v2": {
        INT_OR_STRING: {"description": _INT_OR_STRING_DESC, "type": "string", "format": "int-or-string"},
        QUANTITY: {"description": _QUANTITY_DESC, "type": "string"},
    },
    "v3": {
        INT_OR_STRING: {
            "description": _INT_OR_STRING_DESC,
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        },
        QUANTITY: {"description": _QUANTITY_DESC, "oneOf": [{"type": "string"}, {"type": "number"}]},
    },
}


# ---------------------------------------------------------------- loading
def definitions_path() -> str:
    """The shipped definitions file, found without importing kubernetes_validate
    (importing it pulls in jsonschema, which costs start-up time for nothing)."""
    spec = importlib.util.find_spec(SCHEMA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {SCHEMA_PACKAGE} package is not installed")
    return os.path.join(list(spec.submodule_search_locations)[0], *SCHEMA_DIR)


@functools.cache
def raw_definitions() -> dict[str, Schema]:
    """All 1.37 definitions in the package's JSON-Schema form, keyed by name (loaded once
    and shared by validation, OpenAPI, patch and printer-column code)."""
    with open(definitions_path(), "rb") as f:
        return orjson.loads(f.read())["$defs"]


def ref_name(ref: str) -> str:
    """The definition name a `$ref` points at, whatever its prefix."""
    return ref.rsplit("/", 1)[-1]


def scalar_type(schema: Schema) -> Optional[str]:
    """The schema's type without the JSON-Schema null alternative ("string", "object", ...)."""
    t = schema.get("type")
    if isinstance(t, list):
        for x in t:
            if x != "null":
                return x
        return None
    return t


# ---------------------------------------------------------------- OpenAPI form
def _convert(node: Schema, prefix: str, v3: bool) -> Schema:
    out: Schema = {}
    ref = None
    for k, v in node.items():
        if k == "$ref":
            ref = prefix + ref_name(v)
        elif k == "type":
            t = scalar_type(node)
            if t is not None:
                out["type"] = t
        elif k == "properties":
            out["properties"] = {name: _convert(p, prefix, v3) for name, p in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, dict):
            out[k] = _convert(v, prefix, v3)
        elif k == "enum":
            # The only enums in the rendering pin apiVersion/kind to one kind's values
            # (a kubernetes-validate addition); upstream's documents have none there.
            continue
        elif k == "oneOf":
            out[k] = [_convert(x, prefix, v3) for x in v]
        else:
            out[k] = v
    if ref is None:
        return out
    if not out:
        return {"$ref": ref}
    if v3:
        # OpenAPI 3.0 ignores siblings of $ref, so upstream wraps the ref in allOf.
        return {"allOf": [{"$ref": ref}], **out}
    return {"$ref": ref, **out}


@functools.cache
def _openapi_definitions(flavor: str) -> dict[str, Schema]:
    prefix = REF_PREFIX[flavor]
    v3 = flavor == "v3"
    special = _SPECIAL[flavor]
    out = {}
    for name, node in raw_definitions().items():
        out[name] = special[name] if name in special else _convert(node, prefix, v3)
    return out


def definitions(flavor: Literal["v2", "v3"] = "v2") -> dict[str, Schema]:
    """Every definition in upstream's OpenAPI form: v2 (`#/definitions/...`) or v3
    (`#/components/schemas/...`, `$ref` siblings wrapped in allOf)."""
    if flavor not in REF_PREFIX:
        raise ValueError(f"unknown OpenAPI flavor {flavor!r}")
    return _openapi_definitions(flavor)


def refs_closure(roots: Iterable[str]) -> list[str]:
    """The given definitions and every definition reachable from them, sorted."""
    raw = raw_definitions()
    seen: set[str] = set()
    stack = [r for r in roots if r in raw]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for dep in _direct_refs(name):
            if dep not in seen:
                stack.append(dep)
    return sorted(seen)


@functools.cache
def _direct_refs(name: str) -> tuple[str, ...]:
    found: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            r = x.get("$ref")
            if isinstance(r, str):
                found.append(ref_name(r))
            for k, v in x.items():
                if k not in ("description", "x-kubernetes-group-version-kind", "required", "enum"):
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(raw_definitions()[name])
    return tuple(dict.fromkeys(found))


# ---------------------------------------------------------------- kinds
@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, node in raw_definitions().items():
        for gvk in node.get("x-kubernetes-group-version-kind") or ():
            key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
            # Several packages may claim a GVK in theory; the first (sorted) wins.
            index.setdefault(key, name)
    return index


def definition_for(group: str, version: str, kind: str) -> Optional[str]:
    """The definition name carrying x-kubernetes-group-version-kind (group, version, kind)."""
    return _gvk_index().get((group, version, kind))


def gvks_of(def_name: str) -> list[dict[str, str]]:
    """The x-kubernetes-group-version-kind entries of a definition ([] for non-kinds)."""
    return list(raw_definitions().get(def_name, {}).get("x-kubernetes-group-version-kind") or ())


# ---------------------------------------------------------------- patch metadata
@dataclass(frozen=True)
class PatchMeta:
    """What strategic merge patch and server-side apply need to know about one field.

    `shape` is "struct" (an object with known fields; `ref` is its definition), "list"
    or "map" (`ref` is the definition of the items / values when they are structs,
    `elem_shape` their own shape), "scalar" or "any" (free-form JSON).
    """

    field: str
    shape: str
    ref: Optional[str] = None
    elem_shape: Optional[str] = None
    strategies: tuple[str, ...] = ()  # x-kubernetes-patch-strategy split on ","
    merge_key: Optional[str] = None  # x-kubernetes-patch-merge-key
    list_type: Optional[str] = None  # x-kubernetes-list-type: atomic, set, map
    list_map_keys: tuple[str, ...] = ()  # x-kubernetes-list-map-keys
    map_type: Optional[str] = None  # x-kubernetes-map-type: atomic, granular
    schema: Optional[Schema] = None  # the field's raw JSON-Schema node

    @property
    def strategy(self) -> str:
        """The raw x-kubernetes-patch-strategy value ("" when unset)."""
        return ",".join(self.strategies)


def _shape_of(node: Schema) -> tuple[str, Optional[str]]:
    """(shape, definition name) of a schema node, following one $ref."""
    ref = node.get("$ref")
    if ref is not None:
        name = ref_name(ref)
        target = raw_definitions().get(name, {})
        if name in RAW_JSON_DEFS:
            return "any", name
        if "oneOf" in target:
            return "scalar", name
        t = scalar_type(target)
        if t == "object":
            return ("map" if "additionalProperties" in target and "properties" not in target else "struct"), name
        if t is None:
            return "any", name
        return ("list" if t == "array" else "scalar"), name
    t = scalar_type(node)
    if t == "array":
        return "list", None
    if t == "object":
        if "properties" in node:
            return "struct", None
        return ("map" if "additionalProperties" in node else "any"), None
    if t is None:
        return "any", None
    return "scalar", None


def _field_meta(field: str, node: Schema) -> PatchMeta:
    shape, ref = _shape_of(node)
    strategy = node.get("x-kubernetes-patch-strategy") or ""
    map_type = node.get("x-kubernetes-map-type")
    elem_shape = None
    elem_ref = ref
    if shape == "struct" and ref is not None and map_type is None:
        map_type = raw_definitions()[ref].get("x-kubernetes-map-type")
    if shape in ("list", "map"):
        target = raw_definitions()[ref] if ref is not None else node
        elem = target.get("items" if shape == "list" else "additionalProperties")
        if isinstance(elem, dict):
            elem_shape, elem_ref = _shape_of(elem)
        else:
            elem_shape, elem_ref = "any", None
    return PatchMeta(
        field=field,
        shape=shape,
        ref=elem_ref,
        elem_shape=elem_shape,
        strategies=tuple(s for s in strategy.split(",") if s),
        merge_key=node.get("x-kubernetes-patch-merge-key"),
        list_type=node.get("x-kubernetes-list-type"),
        list_map_keys=tuple(node.get("x-kubernetes-list-map-keys") or ()),
        map_type=map_type,
        schema=node,
    )


def patch_meta(def_name: str, path: Union[str, Sequence[str]]) -> Optional[PatchMeta]:
    """Patch metadata of a field of `def_name`.

    `path` is a field name, or a dotted / sequence path of field names that descends
    through structs and through list items and map values (no indexes or keys needed):
    `patch_meta("io.k8s.api.core.v1.PodSpec", "containers.ports")`. Returns None when
    the field is unknown (or the path runs into free-form JSON).
    """
    parts = path.split(".") if isinstance(path, str) else list(path)
    raw = raw_definitions()
    current: Optional[str] = def_name
    meta: Optional[PatchMeta] = None
    for i, part in enumerate(parts):
        if current is None:
            return None
        node = raw.get(current)
        if node is None:
            return None
        prop = (node.get("properties") or {}).get(part)
        if prop is None:
            return None
        meta = _field_meta(part, prop)
        if i == len(parts) - 1:
            break
        if meta.shape == "struct" or (meta.shape in ("list", "map") and meta.elem_shape == "struct"):
            current = meta.ref
        else:
            return None
    return meta


def field_schema(def_name: str, field: str) -> Optional[Schema]:
    """The raw JSON-Schema node of one field of a definition."""
    return (raw_definitions().get(def_name, {}).get("properties") or {}).get(field)
