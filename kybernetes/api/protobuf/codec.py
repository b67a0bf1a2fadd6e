"""Kubernetes protobuf wire format <-> JSON-form dicts, driven by fields.json.

The objects handled here are the same plain dicts the JSON API carries.  The
table (built by tools/gen_proto_table.py) gives, per message, each field's JSON
name, number, type and a few flags; everything else -- the wire format, the
``k8s\\x00`` + ``runtime.Unknown`` envelope and the types whose JSON form is not
a plain object (Time, Quantity, IntOrString, RawExtension, ...) -- lives here.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as _dt
import re
import struct
import threading
from importlib import resources
from typing import Any, Iterator

import orjson

MAGIC = b"k8s\x00"

META = "k8s.io.apimachinery.pkg.apis.meta.v1"
RUNTIME = "k8s.io.apimachinery.pkg.runtime"
UNKNOWN = f"{RUNTIME}.Unknown"
WATCH_EVENT = f"{META}.WatchEvent"
_APIEXT = ("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1",
           "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1")

_FLAG_REPEATED = 1
_FLAG_OMIT_ZERO = 2
_FLAG_INLINE = 4


class ProtobufError(ValueError):
    """Malformed protobuf input, or an object that cannot be put on the wire."""


# ---------------------------------------------------------------------------
# Table loading and per-message compilation

_lock = threading.Lock()
_table: dict[str, Any] | None = None
_specs: dict[str, "_Msg"] = {}


def _load() -> dict[str, Any]:
    """Read fields.json once (it is a few hundred KB, so only on first use)."""
    global _table
    if _table is None:
        with _lock:
            if _table is None:
                data = resources.files(__package__).joinpath("fields.json").read_bytes()
                table = orjson.loads(data)
                table["wrappers"] = frozenset(table["wrappers"])
                _table = table
    return _table


# Value kinds.  Wire type follows from the kind.
(_K_INT32, _K_INT64, _K_UINT32, _K_UINT64, _K_BOOL, _K_SINT32, _K_SINT64,
 _K_FIXED32, _K_FIXED64, _K_SFIXED32, _K_SFIXED64, _K_DOUBLE, _K_FLOAT,
 _K_STRING, _K_BYTES, _K_MSG) = range(16)

_SCALAR_KINDS = {
    "int32": _K_INT32, "int64": _K_INT64, "uint32": _K_UINT32, "uint64": _K_UINT64,
    "bool": _K_BOOL, "sint32": _K_SINT32, "sint64": _K_SINT64,
    "fixed32": _K_FIXED32, "fixed64": _K_FIXED64, "sfixed32": _K_SFIXED32,
    "sfixed64": _K_SFIXED64, "double": _K_DOUBLE, "float": _K_FLOAT,
    "string": _K_STRING, "bytes": _K_BYTES,
}
_WIRE = {k: 0 for k in (_K_INT32, _K_INT64, _K_UINT32, _K_UINT64, _K_BOOL, _K_SINT32, _K_SINT64)}
_WIRE.update({_K_FIXED64: 1, _K_SFIXED64: 1, _K_DOUBLE: 1,
              _K_FIXED32: 5, _K_SFIXED32: 5, _K_FLOAT: 5,
              _K_STRING: 2, _K_BYTES: 2, _K_MSG: 2})
_ZERO = {k: 0 for k in _WIRE}
_ZERO.update({_K_BOOL: False, _K_DOUBLE: 0.0, _K_FLOAT: 0.0, _K_STRING: "", _K_BYTES: ""})


class _Field:
    __slots__ = ("key", "num", "kind", "type", "repeated", "omit_zero", "inline",
                 "is_map", "map_key", "map_val", "tag")

    def __init__(self, row: list) -> None:
        self.key: str = row[0]
        self.num: int = row[1]
        typ = row[2]
        flags: int = row[3]
        self.repeated = bool(flags & _FLAG_REPEATED)
        self.omit_zero = bool(flags & _FLAG_OMIT_ZERO)
        self.inline = bool(flags & _FLAG_INLINE)
        self.is_map = isinstance(typ, list)
        self.map_key: _Field | None = None
        self.map_val: _Field | None = None
        if self.is_map:
            # A map is a repeated message of {1: key, 2: value}.
            self.kind = _K_MSG
            self.type = None
            self.map_key = _Field(["key", 1, typ[0], 0])
            self.map_val = _Field(["value", 2, typ[1], 0])
        else:
            self.kind = _SCALAR_KINDS.get(typ, _K_MSG)
            self.type = None if self.kind != _K_MSG else typ
        self.tag = _varint_bytes((self.num << 3) | _WIRE[self.kind])


class _Msg:
    __slots__ = ("name", "fields", "by_num", "special", "keys", "inline_keys")

    def __init__(self, name: str, rows: list, special: str | None) -> None:
        self.name = name
        self.fields = [_Field(r) for r in rows]
        self.by_num = {f.num: f for f in self.fields}
        self.special = special
        # JSON keys this message accepts, including those of inlined members.
        self.keys: frozenset[str] | None = None
        # Per inlined field number: the keys of the parent's JSON object it takes.
        self.inline_keys: dict[int, frozenset[str]] = {}


def _special_of(name: str, table: dict[str, Any]) -> str | None:
    """Name the custom JSON mapping of a message, if it has one."""
    short = name.rsplit(".", 1)[-1]
    pkg = name[: -len(short) - 1]
    if pkg == META and short in ("Time", "MicroTime", "Duration", "FieldsV1"):
        return short
    if name in ("k8s.io.apimachinery.pkg.api.resource.Quantity",
                "k8s.io.apimachinery.pkg.api.resource.QuantityValue"):
        return "Quantity"
    if name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        return "IntOrString"
    if name == f"{RUNTIME}.RawExtension":
        return "RawExtension"
    if pkg in _APIEXT and short in ("JSON", "JSONSchemaPropsOrArray", "JSONSchemaPropsOrBool",
                                    "JSONSchemaPropsOrStringArray"):
        return short
    if name in table["wrappers"]:
        return "List"
    return None


def _spec(name: str) -> _Msg:
    """Compiled form of one message (built on first use, then cached)."""
    spec = _specs.get(name)
    if spec is not None:
        return spec
    table = _load()
    rows = table["messages"].get(name)
    if rows is None:
        raise ProtobufError(f"unknown protobuf message {name}")
    spec = _Msg(name, rows, _special_of(name, table))
    _specs[name] = spec
    return spec


def _keys_of(spec: _Msg) -> frozenset[str]:
    if spec.keys is None:
        keys: set[str] = set()
        for f in spec.fields:
            if f.inline:
                keys |= _keys_of(_spec(f.type))
            else:
                keys.add(f.key)
        spec.keys = frozenset(keys)
    return spec.keys


# ---------------------------------------------------------------------------
# Type lookup

def message_type(api_version: str, kind: str) -> str | None:
    """Full protobuf message name for an apiVersion/kind, or None."""
    table = _load()
    full = table["kinds"].get(api_version, {}).get(kind)
    if full:
        return full
    # Options, Status, WatchEvent & co. are registered into every group version.
    return table["common"].get(kind)


def supports(api_version: str, kind: str) -> bool:
    """True if objects of this apiVersion/kind have a protobuf form."""
    return message_type(api_version, kind) is not None


# ---------------------------------------------------------------------------
# Wire primitives

_U64 = (1 << 64) - 1


def _varint_bytes(value: int) -> bytes:
    value &= _U64  # negative ints go out as 10-byte two's complement
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise ProtobufError("truncated varint")
    b = buf[pos]
    pos += 1
    if b < 0x80:
        return b, pos
    result = b & 0x7F
    shift = 7
    while True:
        if pos >= end:
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint too long")


def _skip(buf: bytes, pos: int, end: int, wire: int) -> int:
    """Position after an unknown field's value."""
    if wire == 0:
        return _read_varint(buf, pos, end)[1]
    if wire == 1:
        pos += 8
    elif wire == 2:
        n, pos = _read_varint(buf, pos, end)
        pos += n
    elif wire == 5:
        pos += 4
    else:
        raise ProtobufError(f"unsupported wire type {wire}")
    if pos > end:
        raise ProtobufError("truncated field")
    return pos


def _raw_fields(buf: bytes, pos: int, end: int) -> dict[int, list[Any]]:
    """Field number -> raw values (ints, or bytes for length-delimited)."""
    out: dict[int, list[Any]] = {}
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            val, pos = _read_varint(buf, pos, end)
        elif wire == 2:
            n, pos = _read_varint(buf, pos, end)
            if pos + n > end:
                raise ProtobufError("truncated length-delimited field")
            val = bytes(buf[pos:pos + n])
            pos += n
        elif wire == 1:
            if pos + 8 > end:
                raise ProtobufError("truncated fixed64")
            val = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                raise ProtobufError("truncated fixed32")
            val = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.setdefault(num, []).append(val)
    if pos != end:
        raise ProtobufError("message overruns its length")
    return out


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _last_int(raw: dict[int, list[Any]], num: int) -> int:
    vals = raw.get(num)
    if not vals:
        return 0
    if not isinstance(vals[-1], int):
        raise ProtobufError(f"field {num}: wrong wire type")
    return vals[-1]


def _last_bytes(raw: dict[int, list[Any]], num: int) -> bytes | None:
    vals = raw.get(num)
    if not vals:
        return None
    if not isinstance(vals[-1], bytes):
        raise ProtobufError(f"field {num}: wrong wire type")
    return vals[-1]


# ---------------------------------------------------------------------------
# Time, duration

_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})\Z")
_EPOCH = _dt.datetime(1970, 1, 1)


def parse_rfc3339(text: str) -> tuple[int, int]:
    """RFC 3339 timestamp -> (unix seconds, nanoseconds)."""
    m = _RFC3339_RE.match(text)
    if not m:
        raise ProtobufError(f"invalid RFC 3339 time {text!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        _dt.datetime(y, mo, d, h, mi, min(s, 59))
    except ValueError as exc:
        raise ProtobufError(f"invalid RFC 3339 time {text!r}") from exc
    seconds = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    zone = m.group(8)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    frac = m.group(7) or ""
    nanos = int((frac + "000000000")[:9])
    return seconds, nanos


def format_rfc3339(seconds: int, nanos: int = 0, micro: bool = False) -> str:
    """Unix seconds (+ nanos) -> UTC RFC 3339, with 6 fraction digits if micro."""
    t = _EPOCH + _dt.timedelta(seconds=seconds)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if micro:
        return f"{base}.{nanos // 1000:06d}Z"
    return base + "Z"


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART_RE = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Go duration string ("1h2m3.5s") -> nanoseconds."""
    s = text
    neg = False
    if s[:1] in ("+", "-"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ProtobufError(f"invalid duration {text!r}")
    total = 0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART_RE.match(s, pos)
        if not m or (not m.group(1) and not m.group(2)):
            raise ProtobufError(f"invalid duration {text!r}")
        unit = _DURATION_UNITS[m.group(3)]
        total += int(m.group(1) or 0) * unit
        frac = m.group(2) or ""
        if frac:
            total += int(frac) * unit // 10 ** len(frac)
        pos = m.end()
    return -total if neg else total


def _frac(value: int, digits: int) -> str:
    whole, rest = divmod(value, 10 ** digits)
    if not rest:
        return str(whole)
    return f"{whole}.{str(rest).rjust(digits, '0').rstrip('0')}"


def format_duration(ns: int) -> str:
    """Nanoseconds -> Go's time.Duration.String() form."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_frac(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_frac(u, 6)}ms"
    minutes, rest = divmod(u, 60_000_000_000)
    out = _frac(rest, 9) + "s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        out = f"{minutes}m{out}"
        if hours:
            out = f"{hours}h{out}"
    return sign + out


# ---------------------------------------------------------------------------
# Decoding

_OMIT = object()  # a value whose JSON form is null, so the key is left out


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtobufError(f"embedded JSON is invalid: {exc}") from exc


def _decode_special(spec: _Msg, buf: bytes, pos: int, end: int) -> Any:
    special = spec.special
    raw = _raw_fields(buf, pos, end)
    if special == "Time" or special == "MicroTime":
        seconds = _signed64(_last_int(raw, 1))
        nanos = _signed32(_last_int(raw, 2))
        if seconds == 0 and nanos == 0:
            return _OMIT
        try:
            # Time drops the fraction, as upstream's JSON does.
            return format_rfc3339(seconds, nanos, special == "MicroTime")
        except (OverflowError, ValueError) as exc:
            raise ProtobufError(f"time out of range: {seconds}") from exc
    if special == "Quantity":
        s = _last_bytes(raw, 1)
        return s.decode("utf-8", "replace") if s else "0"
    if special == "IntOrString":
        if _last_int(raw, 1) == 1:
            s = _last_bytes(raw, 3)
            return s.decode("utf-8", "replace") if s else ""
        return _signed32(_last_int(raw, 2))
    if special == "Duration":
        return format_duration(_signed64(_last_int(raw, 1)))
    if special in ("RawExtension", "FieldsV1", "JSON"):
        data = _last_bytes(raw, 1)
        if not data:
            return _OMIT
        if special == "RawExtension" and data.startswith(MAGIC):
            return decode(data)
        return _parse_json(data)
    if special == "List":
        return [v.decode("utf-8", "replace") for v in raw.get(1, ()) if isinstance(v, bytes)]
    # apiextensions' either-or types.
    schema_name = spec.name.rsplit(".", 1)[0] + ".JSONSchemaProps"
    if special == "JSONSchemaPropsOrBool":
        schema = _last_bytes(raw, 2)
        if schema is not None:
            return decode_message(schema_name, schema)
        return bool(_last_int(raw, 1))
    if special == "JSONSchemaPropsOrArray":
        items = raw.get(2)
        if items:
            return [decode_message(schema_name, v) for v in items]
        schema = _last_bytes(raw, 1)
        return decode_message(schema_name, schema) if schema is not None else _OMIT
    if special == "JSONSchemaPropsOrStringArray":
        items = raw.get(2)
        if items:
            return [v.decode("utf-8", "replace") for v in items]
        schema = _last_bytes(raw, 1)
        return decode_message(schema_name, schema) if schema is not None else _OMIT
    raise AssertionError(special)


def _decode_value(f: _Field, buf: bytes, pos: int, end: int, wire: int) -> tuple[Any, int]:
    """Decode one occurrence of field f; return (JSON value, new position)."""
    kind = f.kind
    expected = _WIRE[kind]
    if wire != expected:
        raise ProtobufError(f"field {f.key}: wire type {wire}, expected {expected}")
    if expected == 2:
        n, pos = _read_varint(buf, pos, end)
        stop = pos + n
        if stop > end:
            raise ProtobufError(f"field {f.key}: truncated")
        if kind == _K_STRING:
            return buf[pos:stop].decode("utf-8", "replace"), stop
        if kind == _K_BYTES:
            return base64.b64encode(buf[pos:stop]).decode("ascii"), stop
        if f.is_map:
            return _decode_map_entry(f, buf, pos, stop), stop
        return _decode_msg(_spec(f.type), buf, pos, stop), stop
    if expected == 0:
        v, pos = _read_varint(buf, pos, end)
        return _convert_varint(kind, v), pos
    size = 8 if expected == 1 else 4
    if pos + size > end:
        raise ProtobufError(f"field {f.key}: truncated")
    return _convert_fixed(kind, buf[pos:pos + size]), pos + size


def _convert_varint(kind: int, v: int) -> Any:
    if kind == _K_INT32:
        return _signed32(v)
    if kind == _K_INT64:
        return _signed64(v)
    if kind == _K_BOOL:
        return v != 0
    if kind == _K_UINT32:
        return v & 0xFFFFFFFF
    if kind == _K_SINT32 or kind == _K_SINT64:
        return (v >> 1) ^ -(v & 1)
    return v


def _convert_fixed(kind: int, data: bytes) -> Any:
    if kind == _K_DOUBLE:
        return struct.unpack("<d", data)[0]
    if kind == _K_FLOAT:
        return struct.unpack("<f", data)[0]
    return int.from_bytes(data, "little", signed=kind in (_K_SFIXED32, _K_SFIXED64))


def _decode_packed(f: _Field, buf: bytes, pos: int, end: int, out: list) -> int:
    n, pos = _read_varint(buf, pos, end)
    stop = pos + n
    if stop > end:
        raise ProtobufError(f"field {f.key}: truncated")
    wire = _WIRE[f.kind]
    while pos < stop:
        if wire == 0:
            v, pos = _read_varint(buf, pos, stop)
            out.append(_convert_varint(f.kind, v))
        else:
            size = 8 if wire == 1 else 4
            if pos + size > stop:
                raise ProtobufError(f"field {f.key}: truncated")
            out.append(_convert_fixed(f.kind, buf[pos:pos + size]))
            pos += size
    return stop


def _decode_map_entry(f: _Field, buf: bytes, pos: int, end: int) -> tuple[str, Any]:
    kf, vf = f.map_key, f.map_val
    key: Any = _ZERO[kf.kind]
    val: Any = _OMIT
    while pos < end:
        tag, pos = _read_varint(buf, pos, end)
        num, wire = tag >> 3, tag & 7
        if num == 1:
            key, pos = _decode_value(kf, buf, pos, end, wire)
        elif num == 2:
            val, pos = _decode_value(vf, buf, pos, end, wire)
        else:
            pos = _skip(buf, pos, end, wire)
    if val is _OMIT:
        if vf.kind == _K_MSG:
            val = _decode_msg(_spec(vf.type), b"", 0, 0)
            if val is _OMIT:
                val = None
        else:
            val = _ZERO[vf.kind]
    return str(key) if not isinstance(key, str) else key, val


def _decode_msg(spec: _Msg, buf: bytes, pos: int, end: int) -> Any:
    """Decode buf[pos:end] as message spec into its JSON form."""
    if spec.special is not None:
        return _decode_special(spec, buf, pos, end)
    out: dict[str, Any] = {}
    by_num = spec.by_num
    while pos < end:
        tag, pos = _read_varint(buf, pos, end)
        num, wire = tag >> 3, tag & 7
        f = by_num.get(num)
        if f is None:
            if num == 0:
                raise ProtobufError("field number 0")
            pos = _skip(buf, pos, end, wire)  # a newer field we don't know
            continue
        if f.is_map:
            (k, v), pos = _decode_value(f, buf, pos, end, wire)
            m = out.get(f.key)
            if m is None:
                m = out[f.key] = {}
            m[k] = v
            continue
        if f.repeated:
            lst = out.get(f.key)
            if lst is None:
                lst = out[f.key] = []
            if wire == 2 and f.kind not in (_K_STRING, _K_BYTES, _K_MSG):
                pos = _decode_packed(f, buf, pos, end, lst)
                continue
            v, pos = _decode_value(f, buf, pos, end, wire)
            lst.append(None if v is _OMIT else v)
            continue
        v, pos = _decode_value(f, buf, pos, end, wire)
        out[f.key] = v  # an inlined member is merged below, once all is read
    if pos != end:
        raise ProtobufError("message overruns its length")
    # Go's JSON leaves out what gogo-protobuf still writes: zero values of
    # non-pointer omitempty fields, empty strings, null Times.
    for f in spec.fields:
        if f.key not in out or f.repeated or f.is_map:
            continue
        v = out[f.key]
        if v is _OMIT or (f.kind == _K_STRING and v == "") or (f.omit_zero and not v):
            del out[f.key]
        elif f.inline:
            del out[f.key]
            if isinstance(v, dict):
                for k, iv in v.items():
                    out.setdefault(k, iv)
    return out


def decode_message(type_name: str, data: bytes) -> Any:
    """Decode a bare message (no envelope) of the given full type name."""
    data = bytes(data)
    try:
        v = _decode_msg(_spec(type_name), data, 0, len(data))
    except RecursionError as exc:
        raise ProtobufError("message nested too deeply") from exc
    return None if v is _OMIT else v


def decode(body: bytes) -> dict[str, Any]:
    """Decode a ``k8s\\x00`` + runtime.Unknown body into a JSON-form object."""
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise ProtobufError("missing k8s protobuf magic prefix")
    raw = _raw_fields(body, len(MAGIC), len(body))
    type_meta = _last_bytes(raw, 1)
    if type_meta is None:
        raise ProtobufError("envelope has no typeMeta")
    tm = _raw_fields(type_meta, 0, len(type_meta))
    api_version = (_last_bytes(tm, 1) or b"").decode("utf-8", "replace")
    kind = (_last_bytes(tm, 2) or b"").decode("utf-8", "replace")
    if not kind:
        raise ProtobufError("envelope has no kind")
    encoding = _last_bytes(raw, 3)
    if encoding:
        raise ProtobufError(f"unsupported content encoding {encoding!r}")
    type_name = message_type(api_version, kind)
    if type_name is None:
        raise ProtobufError(f"no protobuf type for {api_version}, Kind={kind}")
    inner = _last_bytes(raw, 2) or b""
    try:
        obj = _decode_msg(_spec(type_name), inner, 0, len(inner))
    except RecursionError as exc:
        raise ProtobufError("message nested too deeply") from exc
    if not isinstance(obj, dict):
        raise ProtobufError(f"{kind} is not an object type")
    return {"apiVersion": api_version, "kind": kind, **obj}


# ---------------------------------------------------------------------------
# Encoding

def _len_prefixed(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint_bytes(len(payload)) + payload


def _encode_scalar(f: _Field, v: Any, where: str) -> bytes:
    """Payload of one scalar value (without its tag)."""
    kind = f.kind
    try:
        if kind == _K_STRING:
            if not isinstance(v, str):
                raise ProtobufError(f"{where}: expected a string, got {type(v).__name__}")
            data = v.encode("utf-8")
            return _varint_bytes(len(data)) + data
        if kind == _K_BYTES:
            if isinstance(v, (bytes, bytearray)):
                data = bytes(v)
            elif isinstance(v, str):
                try:
                    data = base64.b64decode(v, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise ProtobufError(f"{where}: invalid base64") from exc
            else:
                raise ProtobufError(f"{where}: expected base64 string")
            return _varint_bytes(len(data)) + data
        if kind == _K_BOOL:
            if not isinstance(v, bool):
                raise ProtobufError(f"{where}: expected a boolean")
            return b"\x01" if v else b"\x00"
        if kind in (_K_DOUBLE, _K_FLOAT):
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ProtobufError(f"{where}: expected a number")
            return struct.pack("<d" if kind == _K_DOUBLE else "<f", float(v))
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # JSON numbers may arrive as 3.0
        if not isinstance(v, int) or isinstance(v, bool):
            raise ProtobufError(f"{where}: expected an integer, got {type(v).__name__}")
        if kind in (_K_SINT32, _K_SINT64):
            return _varint_bytes((v << 1) ^ (v >> 63))
        if kind in (_K_FIXED32, _K_SFIXED32):
            return struct.pack("<I", v & 0xFFFFFFFF)
        if kind in (_K_FIXED64, _K_SFIXED64):
            return struct.pack("<Q", v & _U64)
        return _varint_bytes(v)
    except struct.error as exc:
        raise ProtobufError(f"{where}: {exc}") from exc


def _encode_value(f: _Field, v: Any, where: str) -> bytes:
    """One occurrence of field f, tag included."""
    if f.kind == _K_MSG:
        return _len_prefixed(f.tag, _encode_msg(_spec(f.type), v, where))
    return f.tag + _encode_scalar(f, v, where)


def _varint_field(num: int, v: int) -> bytes:
    return _varint_bytes(num << 3) + _varint_bytes(v)


def _bytes_field(num: int, data: bytes) -> bytes:
    return _varint_bytes((num << 3) | 2) + _varint_bytes(len(data)) + data


def _encode_special(spec: _Msg, v: Any, where: str) -> bytes:
    special = spec.special
    if special == "Time" or special == "MicroTime":
        if isinstance(v, _dt.datetime):
            if v.tzinfo is None:
                v = v.replace(tzinfo=_dt.timezone.utc)
            seconds = calendar.timegm(v.utctimetuple())
            nanos = v.microsecond * 1000
        elif isinstance(v, str):
            seconds, nanos = parse_rfc3339(v)
        else:
            raise ProtobufError(f"{where}: expected an RFC 3339 time string")
        return _varint_field(1, seconds) + _varint_field(2, nanos)
    if special == "Quantity":
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ProtobufError(f"{where}: expected a quantity string")
        if isinstance(v, float):
            v = str(int(v)) if v.is_integer() else repr(v)
        return _bytes_field(1, str(v).encode("utf-8"))
    if special == "IntOrString":
        if isinstance(v, str):
            return _varint_field(1, 1) + _varint_field(2, 0) + _bytes_field(3, v.encode("utf-8"))
        if isinstance(v, int) and not isinstance(v, bool):
            return _varint_field(1, 0) + _varint_field(2, v) + _bytes_field(3, b"")
        raise ProtobufError(f"{where}: expected an int or a string")
    if special == "Duration":
        if not isinstance(v, str):
            raise ProtobufError(f"{where}: expected a duration string")
        return _varint_field(1, parse_duration(v))
    if special in ("RawExtension", "FieldsV1", "JSON"):
        if isinstance(v, (bytes, bytearray)):
            return _bytes_field(1, bytes(v))
        return _bytes_field(1, orjson.dumps(v))
    if special == "List":
        if not isinstance(v, list):
            raise ProtobufError(f"{where}: expected a list")
        return b"".join(_bytes_field(1, _str_bytes(s, where)) for s in v)
    schema_name = spec.name.rsplit(".", 1)[0] + ".JSONSchemaProps"
    schema = _spec(schema_name)
    if special == "JSONSchemaPropsOrBool":
        if isinstance(v, bool):
            return _varint_field(1, int(v))
        return _varint_field(1, 1) + _bytes_field(2, _encode_msg(schema, v, where))
    if special == "JSONSchemaPropsOrArray":
        if isinstance(v, list):
            return b"".join(_bytes_field(2, _encode_msg(schema, s, where)) for s in v)
        return _bytes_field(1, _encode_msg(schema, v, where))
    if special == "JSONSchemaPropsOrStringArray":
        if isinstance(v, list):
            return b"".join(_bytes_field(2, _str_bytes(s, where)) for s in v)
        return _bytes_field(1, _encode_msg(schema, v, where))
    raise AssertionError(special)


def _str_bytes(v: Any, where: str) -> bytes:
    if not isinstance(v, str):
        raise ProtobufError(f"{where}: expected a string")
    return v.encode("utf-8")


def _encode_msg(spec: _Msg, obj: Any, where: str) -> bytes:
    """Payload (no tag, no length) of message spec from its JSON form."""
    if spec.special is not None:
        return _encode_special(spec, obj, where)
    if not isinstance(obj, dict):
        raise ProtobufError(f"{where}: expected an object, got {type(obj).__name__}")
    parts: list[bytes] = []
    for f in spec.fields:  # field-number order, as gogo-protobuf writes them
        if f.inline:
            sub_spec = _spec(f.type)
            keys = spec.inline_keys.get(f.num)
            if keys is None:
                # A key the parent has itself is the parent's, as in Go's JSON.
                own = {g.key for g in spec.fields if not g.inline}
                keys = spec.inline_keys[f.num] = _keys_of(sub_spec) - own
            sub = {k: v for k, v in obj.items() if k in keys}
            if sub:
                parts.append(_len_prefixed(f.tag, _encode_msg(sub_spec, sub, where)))
            continue
        v = obj.get(f.key)
        if v is None:
            continue
        here = f"{where}.{f.key}"
        if f.is_map:
            if not isinstance(v, dict):
                raise ProtobufError(f"{here}: expected an object")
            kf, vf = f.map_key, f.map_val
            for k in sorted(v):
                entry = kf.tag + _encode_scalar(kf, k, here)
                val = v[k]
                if val is not None:
                    entry += _encode_value(vf, val, f"{here}[{k}]")
                parts.append(_len_prefixed(f.tag, entry))
        elif f.repeated:
            if not isinstance(v, list):
                raise ProtobufError(f"{here}: expected a list")
            for item in v:
                if item is None:
                    if f.kind == _K_MSG:
                        parts.append(f.tag + b"\x00")
                    continue
                parts.append(_encode_value(f, item, here))
        else:
            parts.append(_encode_value(f, v, here))
    return b"".join(parts)


def encode_message(type_name: str, obj: Any) -> bytes:
    """Encode a JSON-form value as a bare message (no envelope)."""
    spec = _spec(type_name)
    return _encode_msg(spec, obj, spec.name.rsplit(".", 1)[-1])


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _bytes_field(1, api_version.encode("utf-8")) + _bytes_field(2, kind.encode("utf-8"))
    # contentEncoding and contentType are written empty, as upstream does.
    return (MAGIC + _bytes_field(1, type_meta) + _bytes_field(2, raw)
            + _bytes_field(3, b"") + _bytes_field(4, b""))


def encode(obj: dict[str, Any]) -> bytes:
    """Encode a JSON-form object (with apiVersion and kind) as ``k8s\\x00`` + Unknown."""
    if not isinstance(obj, dict):
        raise ProtobufError("expected an object")
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        raise ProtobufError("object needs string apiVersion and kind")
    type_name = message_type(api_version, kind)
    if type_name is None:
        raise ProtobufError(f"no protobuf type for {api_version}, Kind={kind}")
    try:
        raw = _encode_msg(_spec(type_name), obj, kind)
    except RecursionError as exc:
        raise ProtobufError("object nested too deeply") from exc
    return _envelope(api_version, kind, raw)


# ---------------------------------------------------------------------------
# Watch streams

def encode_watch_event(type: str, obj: dict[str, Any]) -> bytes:
    """One watch frame: 4-byte big-endian length + WatchEvent{type, object.raw=encode(obj)}."""
    event = _bytes_field(1, type.encode("utf-8")) + _bytes_field(2, _bytes_field(1, encode(obj)))
    return len(event).to_bytes(4, "big") + event


def _decode_event_message(data: bytes) -> tuple[str, dict[str, Any]]:
    raw = _raw_fields(data, 0, len(data))
    etype = (_last_bytes(raw, 1) or b"").decode("utf-8", "replace")
    ext = _last_bytes(raw, 2) or b""
    inner = _last_bytes(_raw_fields(ext, 0, len(ext)), 1) or b""
    if inner.startswith(MAGIC):
        obj = decode(inner)
    elif inner:
        obj = _parse_json(inner)  # tolerated: some writers embed JSON
    else:
        raise ProtobufError("watch event has no object")
    return etype, obj


def iter_watch_events(stream: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    """Split a byte stream of length-prefixed WatchEvent frames into (type, object)."""
    stream = bytes(stream)
    pos = 0
    while pos < len(stream):
        if pos + 4 > len(stream):
            raise ProtobufError("truncated watch frame header")
        n = int.from_bytes(stream[pos:pos + 4], "big")
        pos += 4
        if pos + n > len(stream):
            raise ProtobufError("truncated watch frame")
        yield _decode_event_message(stream[pos:pos + n])
        pos += n


def decode_watch_event(frame: bytes) -> tuple[str, dict[str, Any]]:
    """Inverse of encode_watch_event for exactly one frame."""
    events = list(iter_watch_events(frame))
    if len(events) != 1:
        raise ProtobufError(f"expected one watch frame, got {len(events)}")
    return events[0]
