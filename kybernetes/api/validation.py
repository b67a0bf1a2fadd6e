"""Structural validation against the 1.37 schemas, and ObjectMeta validation.

`validate_schema` reproduces what upstream's JSON decoding into the Go types
rejects or reports:
- a value of the wrong JSON type (upstream: HTTP 400, "<Kind> in version "v1"
  cannot be handled as a <Kind>: json: cannot unmarshal string into Go struct
  field DeploymentSpec.spec.replicas of type int32"); the Cause carries that
  `json: ...` text, and `cannot_handle_message` builds the whole sentence;
- unknown fields (`unknown field "spec.foo"`), which the caller turns into a
  400 "strict decoding error: ..." (fieldValidation=Strict) or Warning headers
  (Warn, the default);
- required fields that are absent (upstream's hand-written validation rejects
  most of these with "Required value"; see `_required_applies` for which).

Nulls are accepted everywhere: Go decodes JSON null to the zero value.
`drop_nulls` rewrites an object the way that decoding sees it.

`validate_object_meta` and the `is_*` string checks reproduce upstream's
messages (k8s.io/apimachinery validation) because kubectl shows them verbatim.
Cause messages are upstream's `field.Error.ErrorBody()`; a Status message is
`f"{cause.field}: {cause.message}"`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any, Iterable, Optional

from kybernetes.api.goformat import go_quote
from kybernetes.api import names as _names
from kybernetes.api.names import _blen, is_dns1123_label, is_qualified_name, is_valid_label_value, name_errors
from kybernetes.api import schema as _schema
from kybernetes.registry.base import Cause

Obj = dict[str, Any]

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"

# Causes whose message is a JSON decoding error (upstream answers 400 BadRequest,
# not 422 Invalid). validate_schema uses FieldValueInvalid only for these.
DECODE_ERROR_REASON = INVALID


def __getattr__(name: str) -> Any:
    # The name and label syntax checks moved to api/names.py; callers may still import them from here.
    if not name.startswith("_") and callable(getattr(_names, name, None)):
        return getattr(_names, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ================================================================ field errors
def _go_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
    return repr(value)


def invalid(field: str, value: Any, detail: str) -> Cause:
    """field.Invalid: `Invalid value: <value>: <detail>`."""
    return Cause(INVALID, field, f"Invalid value: {_go_value(value)}" + (f": {detail}" if detail else ""))


def required(field: str, detail: str = "") -> Cause:
    """field.Required: `Required value[: detail]`."""
    return Cause(REQUIRED, field, "Required value" + (f": {detail}" if detail else ""))


def forbidden(field: str, detail: str) -> Cause:
    """field.Forbidden: `Forbidden: detail`."""
    return Cause(FORBIDDEN, field, f"Forbidden: {detail}")


def too_long(field: str, max_bytes: int) -> Cause:
    """field.TooLong: `Too long: must have at most N bytes`."""
    return Cause(TOO_LONG, field, f"Too long: must have at most {max_bytes} bytes")


def not_supported(field: str, value: Any, supported: Iterable[str]) -> Cause:
    """field.NotSupported: `Unsupported value: v: supported values: "a", "b"`."""
    vals = ", ".join(go_quote(v) for v in supported)
    detail = f": supported values: {vals}" if vals else ""
    return Cause(NOT_SUPPORTED, field, f"Unsupported value: {_go_value(value)}{detail}")


# ================================================================ ObjectMeta
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
_FINALIZER_ORPHAN = "orphan"
_FINALIZER_FOREGROUND = "foregroundDeletion"


def validate_object_meta(obj: Obj, *, namespaced: bool, name_format: str = "dns1123-subdomain") -> list[Cause]:
    """Upstream ValidateObjectMeta (create) for `obj["metadata"]`, in upstream's order:
    generateName, name, namespace, generation, labels, annotations, ownerReferences, finalizers.

    A missing name is fine when generateName is set (the name is generated later)."""
    meta = obj.get("metadata") or {}
    errs: list[Cause] = []
    generate_name = meta.get("generateName") or ""
    name = meta.get("name") or ""
    if generate_name:
        for msg in name_errors(generate_name, name_format, prefix=True):
            errs.append(invalid("metadata.generateName", generate_name, msg))
    if not name:
        if not generate_name:
            errs.append(required("metadata.name", "name or generateName is required"))
    else:
        for msg in name_errors(name, name_format):
            errs.append(invalid("metadata.name", name, msg))

    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errs.append(required("metadata.namespace"))
        else:
            for msg in is_dns1123_label(namespace):
                errs.append(invalid("metadata.namespace", namespace, msg))
    elif namespace:
        errs.append(forbidden("metadata.namespace", "not allowed on this type"))

    generation = meta.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool) and generation < 0:
        errs.append(invalid("metadata.generation", generation, "must be greater than or equal to 0"))

    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"))
    errs.extend(validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences"))
    errs.extend(validate_finalizers(meta.get("finalizers"), "metadata.finalizers"))
    return errs


def validate_labels(labels: Optional[dict[str, Any]], field: str = "metadata.labels") -> list[Cause]:
    """Label keys must be qualified names, values valid label values (errors name the map, not the key)."""
    errs: list[Cause] = []
    for k, v in (labels or {}).items():
        for msg in is_qualified_name(k):
            errs.append(invalid(field, k, msg))
        if isinstance(v, str):
            for msg in is_valid_label_value(v):
                errs.append(invalid(field, v, msg))
    return errs


def validate_annotations(annotations: Optional[dict[str, Any]], field: str = "metadata.annotations") -> list[Cause]:
    """Annotation keys are qualified names, case-insensitively; all keys and values <= 256 KiB."""
    errs: list[Cause] = []
    total = 0
    for k, v in (annotations or {}).items():
        for msg in is_qualified_name(k.lower()):
            errs.append(invalid(field, k, msg))
        total += _blen(k) + (_blen(v) if isinstance(v, str) else 0)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def validate_owner_references(refs: Optional[list[Any]], field: str = "metadata.ownerReferences") -> list[Cause]:
    """Each owner reference needs apiVersion, kind, name and uid; at most one controller."""
    errs: list[Cause] = []
    controller = ""
    for i, ref in enumerate(refs or ()):
        if not isinstance(ref, dict):
            continue
        p = f"{field}[{i}]"
        api_version = ref.get("apiVersion") or ""
        if not api_version:
            errs.append(required(f"{p}.apiVersion", "must not be empty"))
        elif api_version.count("/") > 1 or api_version.endswith("/") or api_version.startswith("/"):
            errs.append(invalid(f"{p}.apiVersion", api_version, "must be <group>/<version> or <version>"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errs.append(required(f"{p}.{key}", "must not be empty"))
        if api_version == "v1" and ref.get("kind") == "Event":
            errs.append(Cause(INVALID, p, f"Invalid value: {_go_value(ref)}: /v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if controller:
                errs.append(Cause(INVALID, field, "Invalid value: " + _go_value(refs) + ": Only one reference can "
                                  f"have Controller set to true. Found \"true\" in references for {controller} and {current}"))
            else:
                controller = current
    return errs


def validate_finalizers(finalizers: Optional[list[Any]], field: str = "metadata.finalizers") -> list[Cause]:
    """Finalizer names are qualified names; orphan and foregroundDeletion exclude each other."""
    errs: list[Cause] = []
    names = [f for f in (finalizers or ()) if isinstance(f, str)]
    for f in names:
        for msg in is_qualified_name(f):
            errs.append(invalid(field, f, msg))
    if _FINALIZER_ORPHAN in names and _FINALIZER_FOREGROUND in names:
        errs.append(invalid(field, names, f"finalizer {_FINALIZER_ORPHAN} and {_FINALIZER_FOREGROUND} cannot be both set"))
    return errs


# ================================================================ schema walk
# Node kinds of the compiled schema.
_STRUCT, _MAP, _ARRAY, _STRING, _BYTES, _INTEGER, _NUMBER, _BOOLEAN, _INTORSTR, _QUANTITY, _TIME, _ANY = range(12)

# Required fields whose absence upstream accepts (the zero value is valid there).
_REQUIRED_EXEMPT = {
    "io.k8s.api.core.v1.HTTPHeader": {"value"},
    "io.k8s.api.core.v1.Sysctl": {"value"},
    "io.k8s.api.core.v1.LimitRangeSpec": {"limits"},
    "io.k8s.apimachinery.pkg.apis.meta.v1.Condition": {"message"},
    # old-style events (read from core/v1) have none; only a create needs one (registry rule)
    "io.k8s.api.events.v1.Event": {"eventTime"},
}


class _Node:
    """A compiled schema node. Struct fields and list/map elements that are $refs are
    kept as definition names and resolved on use (schemas are recursive)."""

    __slots__ = ("kind", "go", "short", "props", "required", "elem", "bits", "def_name")

    def __init__(self, kind: int, go: str, short: str = "", def_name: str = "") -> None:
        self.kind = kind
        self.go = go  # Go type as Go's json errors name it: int32, []v1.Container, ...
        self.short = short  # Go struct name (for "Go struct field X.path")
        self.props: dict[str, Any] = {}
        self.required: tuple[str, ...] = ()
        self.elem: Any = None
        self.bits = 0  # integer width
        self.def_name = def_name


def _go_def_type(name: str) -> str:
    parts = name.split(".")
    return f"{parts[-2]}.{parts[-1]}"


@functools.cache
def _def_node(name: str) -> _Node:
    raw = _schema.raw_definitions()[name]
    go = _go_def_type(name)
    if name in _schema.RAW_JSON_DEFS:
        return _Node(_ANY, go, def_name=name)
    if name == _schema.INT_OR_STRING:
        return _Node(_INTORSTR, "int32", def_name=name)
    if name == _schema.QUANTITY:
        return _Node(_QUANTITY, go, def_name=name)
    if raw.get("format") == "date-time":
        return _Node(_TIME, go, def_name=name)
    node = _compile(raw, name)
    node.def_name = name
    if node.kind == _STRUCT:
        node.go = go
        node.short = name.rsplit(".", 1)[-1]
    return node


def _compile(raw: dict[str, Any], owner: str) -> _Node:
    t = _schema.scalar_type(raw)
    if t == "object":
        if "properties" in raw or "additionalProperties" not in raw:
            node = _Node(_STRUCT, "struct")
            node.props = {k: _child(v, owner) for k, v in (raw.get("properties") or {}).items()}
            exempt = _REQUIRED_EXEMPT.get(owner, ())
            node.required = tuple(r for r in raw.get("required") or () if r not in exempt)
            return node
        elem = _child(raw["additionalProperties"], owner)
        node = _Node(_MAP, "map[string]" + _go_of(elem))
        node.elem = elem
        return node
    if t == "array":
        elem = _child(raw.get("items") or {}, owner)
        node = _Node(_ARRAY, "[]" + _go_of(elem))
        node.elem = elem
        return node
    if t == "string":
        if raw.get("format") == "byte":
            return _Node(_BYTES, "[]uint8")
        if raw.get("format") == "date-time":
            return _Node(_TIME, "v1.Time")
        return _Node(_STRING, "string")
    if t == "integer":
        fmt = raw.get("format")
        node = _Node(_INTEGER, fmt if fmt in ("int32", "int64") else "int")
        node.bits = 32 if fmt == "int32" else 64
        return node
    if t == "number":
        return _Node(_NUMBER, "float64")
    if t == "boolean":
        return _Node(_BOOLEAN, "bool")
    return _Node(_ANY, "interface {}")


def _child(raw: dict[str, Any], owner: str) -> Any:
    ref = raw.get("$ref")
    if ref is not None:
        return _schema.ref_name(ref)
    return _compile(raw, owner)


def _go_of(child: Any) -> str:
    return _go_def_type(child) if isinstance(child, str) else child.go


def _resolve(child: Any) -> _Node:
    return _def_node(child) if isinstance(child, str) else child


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _required_applies(node: _Node) -> bool:
    # Go decodes an absent field to its zero value; for numbers and booleans that
    # zero is usually valid upstream, so only strings, structs, lists and maps
    # (which upstream's validation then rejects as empty) count as missing.
    return node.kind not in (_INTEGER, _NUMBER, _BOOLEAN, _ANY)


_QUANTITY_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|[EPTGMk]|[EPTGMK]i|[mun])?")
_QUANTITY_MSG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")


class _Walk:
    __slots__ = ("errors", "unknown", "collect_unknown")

    def __init__(self, collect_unknown: bool) -> None:
        self.errors: list[Cause] = []
        self.unknown: list[str] = []
        self.collect_unknown = collect_unknown

    def type_error(self, path: str, value: Any, gopath: str, struct: str, go_type: str) -> None:
        jv = _json_kind(value)
        if jv == "number":
            jv = f"number {value}"
        where = f"Go struct field {struct}.{gopath}" if struct else "Go value"
        self.errors.append(Cause(DECODE_ERROR_REASON, path, f"json: cannot unmarshal {jv} into {where} of type {go_type}"))

    def walk(self, value: Any, child: Any, path: str, gopath: str, struct: str, in_status: bool) -> None:
        if value is None:
            return  # null decodes to the zero value
        node = _def_node(child) if isinstance(child, str) else child
        kind = node.kind
        if kind == _STRUCT:
            if not isinstance(value, dict):
                self.type_error(path, value, gopath, struct, node.go)
                return
            props = node.props
            short = node.short or struct
            prefix = path + "." if path else ""
            gprefix = gopath + "." if gopath else ""
            for key, v in value.items():
                sub = props.get(key)
                if sub is None:
                    if self.collect_unknown:
                        self.unknown.append(f'unknown field "{prefix}{key}"')
                    continue
                self.walk(v, sub, prefix + key, gprefix + key, short, in_status or (not path and key == "status"))
            if node.required and not in_status:
                for key in node.required:
                    sub = props.get(key)
                    if value.get(key) is None and sub is not None and _required_applies(_resolve(sub)):
                        self.errors.append(required(prefix + key))
        elif kind == _ARRAY:
            if not isinstance(value, list):
                self.type_error(path, value, gopath, struct, node.go)
                return
            elem = node.elem
            for i, v in enumerate(value):
                self.walk(v, elem, f"{path}[{i}]", gopath, struct, in_status)
        elif kind == _MAP:
            if not isinstance(value, dict):
                self.type_error(path, value, gopath, struct, node.go)
                return
            elem = node.elem
            for k, v in value.items():
                self.walk(v, elem, f"{path}[{k}]", gopath, struct, in_status)
        elif kind == _STRING:
            if not isinstance(value, str):
                self.type_error(path, value, gopath, struct, "string")
        elif kind == _INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                self.type_error(path, value, gopath, struct, node.go)
            elif not -(1 << (node.bits - 1)) <= value < (1 << (node.bits - 1)):
                self.type_error(path, value, gopath, struct, node.go)
        elif kind == _BOOLEAN:
            if not isinstance(value, bool):
                self.type_error(path, value, gopath, struct, "bool")
        elif kind == _NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.type_error(path, value, gopath, struct, "float64")
        elif kind == _INTORSTR:
            if isinstance(value, str):
                return
            if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 31) <= value < (1 << 31):
                self.type_error(path, value, gopath, struct, "int32")
        elif kind == _QUANTITY:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.errors.append(Cause(DECODE_ERROR_REASON, path, _QUANTITY_MSG))
            elif isinstance(value, str) and not _QUANTITY_RE.fullmatch(value.strip()):
                self.errors.append(Cause(DECODE_ERROR_REASON, path, _QUANTITY_MSG))
        elif kind == _TIME:
            if not isinstance(value, str):
                self.type_error(path, value, gopath, struct, "string")
            elif not _TIME_RE.fullmatch(value):
                self.errors.append(Cause(DECODE_ERROR_REASON, path,
                                         f'parsing time {go_quote(value)} as "2006-01-02T15:04:05Z07:00": '
                                         f'cannot parse {go_quote(value)} as "2006"'))
        elif kind == _BYTES:
            if not isinstance(value, str):
                self.type_error(path, value, gopath, struct, "[]uint8")
            else:
                bad = _base64_error(value)
                if bad is not None:
                    self.errors.append(Cause(DECODE_ERROR_REASON, path, f"illegal base64 data at input byte {bad}"))
        # _ANY: anything goes


def _base64_error(value: str) -> Optional[int]:
    """Offset of the first byte Go's base64.StdEncoding rejects, or None if valid."""
    m = _B64_RE.match(value)
    end = m.end() if m else 0
    if end != len(value):
        return end
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return max(0, len(value) - len(value) % 4)
    return None


def validate_schema(obj: Obj, def_name: str, *, strict_unknown: bool = True) -> tuple[list[Cause], list[str]]:
    """Check `obj` against definition `def_name`.

    Returns (errors, unknown): errors are Causes (FieldValueInvalid for values Go
    could not decode, with Go's message; FieldValueRequired for absent required
    fields); unknown lists `unknown field "<path>"` strings in document order. Set
    strict_unknown=False (fieldValidation=Ignore) to skip collecting unknown fields.
    Required fields are not checked under the top-level `status` (controllers own it
    and upstream never schema-checks it). Enums are not checked: the 1.37 schemas
    carry none that upstream enforces at decoding.
    """
    w = _Walk(strict_unknown)
    root = _def_node(def_name)
    if not isinstance(obj, dict):
        w.type_error("", obj, "", "", root.go)
        return w.errors, w.unknown
    w.walk(obj, root, "", "", root.short, False)
    return w.errors, w.unknown


def validate_schema_for(obj: Obj, group: str, version: str, kind: str, *,
                        strict_unknown: bool = True) -> tuple[list[Cause], list[str]]:
    """`validate_schema` for a kind named by group/version/kind; ([], []) for kinds without
    a built-in schema (custom resources)."""
    def_name = _schema.definition_for(group, version, kind)
    if def_name is None:
        return [], []
    return validate_schema(obj, def_name, strict_unknown=strict_unknown)


def prune_unknown(obj: Obj, group: str, version: str, kind: str) -> list[str]:
    """Remove, in place, the fields the kind's schema does not know (what upstream's
    decoding silently drops under fieldValidation Ignore/Warn). Returns their paths."""
    def_name = _schema.definition_for(group, version, kind)
    removed: list[str] = []
    if def_name is not None and isinstance(obj, dict):
        _prune(obj, _def_node(def_name), "", removed)
    return removed


def _prune(value: Any, node: _Node, path: str, removed: list[str]) -> None:
    if node.kind == _STRUCT and isinstance(value, dict):
        prefix = path + "." if path else ""
        for key in [k for k in value if k not in node.props]:
            del value[key]
            removed.append(prefix + key)
        for key, v in value.items():
            if isinstance(v, (dict, list)):
                _prune(v, _resolve(node.props[key]), prefix + key, removed)
    elif node.kind == _ARRAY and isinstance(value, list):
        elem = _resolve(node.elem)
        if elem.kind in (_STRUCT, _ARRAY, _MAP):
            for i, v in enumerate(value):
                _prune(v, elem, f"{path}[{i}]", removed)
    elif node.kind == _MAP and isinstance(value, dict):
        elem = _resolve(node.elem)
        if elem.kind in (_STRUCT, _ARRAY, _MAP):
            for k, v in value.items():
                _prune(v, elem, f"{path}[{k}]", removed)


def decode_errors(errors: Iterable[Cause]) -> list[Cause]:
    """The causes that are JSON decoding errors (upstream: 400 BadRequest)."""
    return [e for e in errors if e.reason == DECODE_ERROR_REASON]


def cannot_handle_message(kind: str, version: str, detail: str) -> str:
    """Upstream's 400 message for an undecodable body:
    `Deployment in version "v1" cannot be handled as a Deployment: <detail>`."""
    return f'{kind} in version "{version}" cannot be handled as a {kind}: {detail}'


def strict_decoding_message(unknown: Iterable[str]) -> str:
    """`strict decoding error: unknown field "a", unknown field "b"` (fieldValidation=Strict)."""
    return "strict decoding error: " + ", ".join(unknown)


def drop_nulls(obj: Any, def_name: str) -> Any:
    """Rewrite `obj` in place as Go's decoding sees it: null struct fields vanish, null list
    items and map values become the element's zero value. Returns obj."""
    _drop(obj, _def_node(def_name))
    return obj


def drop_nulls_for(obj: Any, group: str, version: str, kind: str) -> Any:
    """drop_nulls for a built-in kind (a kind without a schema is left alone)."""
    def_name = _schema.definition_for(group, version, kind)
    if def_name is not None and isinstance(obj, dict):
        drop_nulls(obj, def_name)
    return obj


def _zero(node: _Node) -> Any:
    return {
        _STRUCT: {}, _MAP: {}, _ARRAY: [], _STRING: "", _BYTES: "", _INTEGER: 0, _NUMBER: 0,
        _BOOLEAN: False, _INTORSTR: 0, _QUANTITY: "0",
    }.get(node.kind)


def _drop(value: Any, node: _Node) -> None:
    if node.kind == _STRUCT and isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None and k in node.props]:
            del value[key]
        for key, v in value.items():
            sub = node.props.get(key)
            if sub is not None and isinstance(v, (dict, list)):
                _drop(v, _resolve(sub))
    elif node.kind in (_ARRAY, _MAP) and isinstance(value, (list, dict)):
        elem = _resolve(node.elem)
        pairs = enumerate(value) if isinstance(value, list) else list(value.items())
        for k, v in pairs:
            if v is None:
                z = _zero(elem)
                if z is not None:
                    value[k] = z
            elif isinstance(v, (dict, list)):
                _drop(v, elem)
