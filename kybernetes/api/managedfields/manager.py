"""metadata.managedFields: who owns which fields, kept up to date on every write.

This follows the layers of upstream's field manager (apimachinery's managedfields):

- an entry per manager identity: (manager, "Update", apiVersion, subresource) for
  ordinary writes, (manager, "Apply", subresource) for server-side apply, whatever the
  apiVersion of the last apply;
- an ordinary write (create, update, non-apply patch) gives its manager the fields it
  added or changed and takes them from everybody else; removed fields leave every set;
- an apply merges the configuration into the live object, makes the applier own
  exactly the fields of its configuration, removes fields it owned before and no longer
  sets (unless someone else owns them too), and refuses to change a value another
  manager owns unless forced;
- fields nobody may own are stripped (apiVersion, kind, metadata name, namespace, uid,
  resourceVersion, generation, creationTimestamp, selfLink, managedFields);
- at most 10 Update entries: the oldest are folded into "ancient-changes";
- objects that stopped tracking (managedFields reset) are not tracked again until the
  next apply, which first records the existing fields as "before-first-apply";
- `kubectl` server-side apply may take over fields that client-side apply set (per the
  last-applied-configuration annotation) without conflicts, and keeps that annotation
  current.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional, Sequence

from kybernetes.api.managedfields import typed as _typed
from kybernetes.api.meta import now_rfc3339 as _meta_now
from kybernetes.api.managedfields.fieldpath import (
    FieldSet,
    FieldsV1Error,
    Path,
    go_json,
    go_json_string,
    go_quote,
    make_path,
    path_string,
)
from kybernetes.api.managedfields.typed import TypeInfo, TypedError

Obj = dict[str, Any]

APPLY, UPDATE = "Apply", "Update"
FIELDS_V1 = "FieldsV1"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"
FIELD_MANAGER_MAX_LENGTH = 128
_ANNOTATIONS_SIZE_LIMIT = 256 * 1024
_CURRENT = "current-operation"  # the identity a write's own fields are collected under

# Fields no manager owns (upstream's stripMeta set; exact paths, not subtrees).
STRIPPED = FieldSet.from_paths(
    ("apiVersion",), ("kind",), ("metadata",), ("metadata", "name"), ("metadata", "namespace"),
    ("metadata", "creationTimestamp"), ("metadata", "selfLink"), ("metadata", "uid"),
    ("metadata", "clusterName"), ("metadata", "generation"), ("metadata", "managedFields"),
    ("metadata", "resourceVersion"),
)


# ---------------------------------------------------------------- errors
class ManagedFieldsError(Exception):
    """A request the field manager refuses, with the HTTP answer upstream gives:
    `code` (400 or 500), `reason` ("BadRequest", or "" for an internal error) and
    `message` (the Status message)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


class Conflict(NamedTuple):
    """One field another manager owns and an apply would change."""

    manager: str  # the manager's name, e.g. "kubectl-edit"
    path: str  # the field, as upstream prints it: .spec.template.spec.containers[name="c"].image
    identifier: str = ""  # the full manager identity (JSON) the message is written from
    elements: Path = ()  # the path as path elements


class ApplyConflict(Exception):
    """An apply would change fields other managers own (HTTP 409)."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(conflict_message(conflicts))

    @property
    def message(self) -> str:
        return conflict_message(self.conflicts)

    @property
    def causes(self) -> list[dict[str, str]]:
        return conflict_causes(self.conflicts)

    def status(self) -> Obj:
        return conflict_status(self.conflicts)


# ---------------------------------------------------------------- manager identities
@functools.lru_cache(maxsize=1024)  # the same few managers write over and over
def manager_identifier(manager: str, operation: str, api_version: str = "", subresource: str = "") -> str:
    """The key upstream files an entry under: the entry's JSON without fieldsType,
    fieldsV1 and time, and without apiVersion for appliers."""
    parts = []
    if manager:
        parts.append('"manager":' + go_json_string(manager))
    if operation:
        parts.append('"operation":' + go_json_string(operation))
    if api_version and operation != APPLY:
        parts.append('"apiVersion":' + go_json_string(api_version))
    if subresource:
        parts.append('"subresource":' + go_json_string(subresource))
    return "{" + ",".join(parts) + "}"


@functools.lru_cache(maxsize=1024)  # read-only for its callers; every write re-encodes its entries
def _parse_identifier(ident: str) -> dict[str, str]:
    try:
        d = json.loads(ident)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def print_manager(ident: str) -> str:
    """How conflict messages name a manager: `"kubectl"`, `"kubectl-edit" using v1`,
    `"kube-controller-manager" with subresource "status" using apps/v1`."""
    d = _parse_identifier(ident)
    if not d:
        return go_quote(ident)
    out = go_quote(str(d.get("manager", "")))
    if d.get("subresource"):
        out += f" with subresource {go_quote(str(d['subresource']))}"
    if d.get("operation") == UPDATE:
        out += f" using {d.get('apiVersion', '')}"
    return out


# ---------------------------------------------------------------- decoded managed fields
@dataclass
class VersionedSet:
    fields: FieldSet
    api_version: str
    applied: bool


Managed = dict[str, VersionedSet]
Times = dict[str, Optional[str]]


def decode_managed_fields(entries: Any) -> tuple[Managed, Times]:
    """Read metadata.managedFields; raises ValueError with upstream's wording."""
    managed: Managed = {}
    times: Times = {}
    if entries is None:
        return managed, times
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ValueError("operation must be `Apply` or `Update`")
        op = e.get("operation")
        if op not in (APPLY, UPDATE):
            raise ValueError("operation must be `Apply` or `Update`")
        if not e.get("apiVersion"):
            raise ValueError("apiVersion must not be empty")
        ft = e.get("fieldsType") or ""
        if ft == "":
            raise ValueError(f"missing fieldsType in managed fields entry {i}")
        if ft != FIELDS_V1:
            raise ValueError(f"invalid fieldsType {go_quote(str(ft))} in managed fields entry {i}")
        ident = manager_identifier(str(e.get("manager") or ""), op, str(e["apiVersion"]), str(e.get("subresource") or ""))
        try:
            fs = FieldSet.from_fields_v1(e.get("fieldsV1"))
        except FieldsV1Error as err:
            raise ValueError(f"error decoding versioned set: error decoding set: {err}") from None
        managed[ident] = VersionedSet(fs, str(e["apiVersion"]), op == APPLY)
        times[ident] = e.get("time")
    return managed, times


def _unix(t: Optional[str]) -> int:
    if not t:
        return 0
    try:
        d = _dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return int(d.timestamp())


def encode_managed_fields(managed: Managed, times: Times) -> list[Obj]:
    """metadata.managedFields for decoded sets, in upstream's order (Apply entries
    first, then by time, manager, apiVersion, subresource)."""
    out = []
    for ident, vs in managed.items():
        d = _parse_identifier(ident)
        e: Obj = {}
        if d.get("manager"):
            e["manager"] = d["manager"]
        op = APPLY if vs.applied else d.get("operation", "")
        if op:
            e["operation"] = op
        if vs.api_version:
            e["apiVersion"] = vs.api_version
        t = times.get(ident)
        if t:
            e["time"] = t
        e["fieldsType"] = FIELDS_V1
        e["fieldsV1"] = vs.fields.to_fields_v1()
        if d.get("subresource"):
            e["subresource"] = d["subresource"]
        out.append(e)
    out.sort(key=lambda e: (e.get("operation", ""), _unix(e.get("time")), e.get("manager", ""),
                            e.get("apiVersion", ""), e.get("subresource", "")))
    return out


def validate_managed_fields(entries: Any) -> Optional[str]:
    """The error upstream reports for unreadable managedFields, or None when fine (a
    mutating admission step that breaks them gets them restored, with a warning)."""
    try:
        decode_managed_fields(entries)
    except ValueError as e:
        return str(e)
    return None


def _is_reset(entries: Any) -> bool:
    # `[]` or `[{}]` sent by a client clears the managed fields; absent or null keeps them
    if not isinstance(entries, list):
        return False
    if not entries:
        return True
    return len(entries) == 1 and entries[0] == {}


def _copy_managed(m: Managed) -> Managed:
    return {k: VersionedSet(v.fields, v.api_version, v.applied) for k, v in m.items()}


def _meta(obj: Optional[Obj]) -> Obj:
    if not isinstance(obj, dict):
        return {}
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _without_managed_fields(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return obj


def set_managed_fields(obj: Obj, entries: Optional[list[Obj]]) -> None:
    """Store entries in obj.metadata.managedFields (removing the field when empty)."""
    meta = obj.setdefault("metadata", {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def now_rfc3339() -> str:
    """The current time as metav1.Time writes it (UTC, seconds)."""
    return _meta_now()  # formatted once a second, not once a write


# ---------------------------------------------------------------- the core of Update / Apply
def _update_core(live: Obj, new: Obj, managed: Managed, workflow: str, force: bool, types: TypeInfo,
                 ignored: Optional[FieldSet]) -> tuple[Managed, _typed.Comparison]:
    """Take changed fields from every manager but `workflow`; with force False, fail
    instead when one of them owns a changed field (upstream's Updater.update)."""
    cmp = _typed.compare(live, new, types).exclude(ignored)
    changed = cmp.modified.union(cmp.added)
    conflicts: dict[str, FieldSet] = {}
    for ident, vs in managed.items():
        if ident == workflow:
            continue
        c = vs.fields.intersection(changed)
        if not c.empty():
            conflicts[ident] = c
    if conflicts and not force:
        raise ApplyConflict(_conflicts_from(conflicts))
    removed = cmp.removed
    for ident, vs in list(managed.items()):
        if ident == workflow:
            continue
        fs = vs.fields
        if ident in conflicts:
            fs = fs.difference(conflicts[ident])
        if not removed.empty():
            fs = fs.difference(removed)
        managed[ident] = VersionedSet(fs, vs.api_version, vs.applied)
    for ident in [k for k, v in managed.items() if v.fields.empty()]:
        del managed[ident]
    return managed, cmp


def _conflicts_from(sets: dict[str, FieldSet]) -> list[Conflict]:
    out = []
    for ident in sorted(sets):
        name = str(_parse_identifier(ident).get("manager", ident))
        for p in sets[ident]:
            out.append(Conflict(name, path_string(p), ident, p))
    return out


def _strip(managed: Managed, ident: str) -> None:
    vs = managed.get(ident)
    if vs is None:
        return
    fs = vs.fields.difference(STRIPPED)
    if fs.empty():
        del managed[ident]
    else:
        managed[ident] = VersionedSet(fs, vs.api_version, vs.applied)


def _update_flow(live: Obj, new: Obj, managed: Managed, times: Times, manager: str, subresource: str,
                 types: TypeInfo, ignored: Optional[FieldSet], now: str) -> None:
    """One ordinary write (upstream's cap -> manager info -> timestamps -> strip meta ->
    structured merge layers); updates `managed` and `times` in place."""
    ident = manager_identifier(manager or "unknown", UPDATE, types.api_version, subresource)
    live = _without_managed_fields(live)
    new = _without_managed_fields(new)
    _, cmp = _update_core(live, new, managed, _CURRENT, True, types, ignored)
    own = cmp.modified.union(cmp.added)
    if ignored is not None and not ignored.empty():
        own = own.recursive_difference(ignored)
    if not own.empty():
        managed[_CURRENT] = VersionedSet(own, types.api_version, False)
    _strip(managed, _CURRENT)
    vs = managed.pop(_CURRENT, None)
    if vs is not None:
        prev = managed.get(ident)
        fields = vs.fields.union(prev.fields) if prev is not None else vs.fields
        managed[ident] = VersionedSet(fields, vs.api_version, vs.applied)
        times[ident] = now
    _cap_update_managers(managed, times)


def _cap_update_managers(managed: Managed, times: Times) -> None:
    """Fold the oldest Update entries into "ancient-changes" (one per apiVersion) until
    at most MAX_UPDATE_MANAGERS remain."""
    updaters = [k for k, v in managed.items() if not v.applied]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda k: (_unix(times.get(k)), k))
    first_of_version: dict[str, str] = {}
    length = len(updaters)
    for ident in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        vs = managed[ident]
        bucket = manager_identifier(ANCIENT_CHANGES, UPDATE, vs.api_version)
        first = first_of_version.get(vs.api_version)
        if first is None:
            first_of_version[vs.api_version] = ident
            continue
        if bucket not in managed:
            managed[bucket] = managed.pop(first)
        b = managed[bucket]
        managed[bucket] = VersionedSet(vs.fields.union(b.fields), vs.api_version, vs.applied)
        del managed[ident]
        length -= 1
        times[bucket] = times.get(ident)


# ---------------------------------------------------------------- Update
def update_managed_fields(old: Optional[Obj], new: Obj, manager: str, operation: str = UPDATE, *,
                          types: TypeInfo, subresource: str = "", time: Optional[str] = None,
                          ignored: Optional[FieldSet] = None) -> list[Obj]:
    """Record an ordinary write (create, update, non-apply patch) of `new` over `old`
    (None for a create) by `manager`; sets new.metadata.managedFields and returns it.

    - `manager`: the fieldManager parameter, or `default_manager(User-Agent)`;
    - `subresource`: "status", "scale", ... for subresource writes (their entries are
      separate, and the request's managedFields are ignored);
    - `ignored`: fields the endpoint resets and nobody may own through it (upstream's
      reset fields: `status` for the main resource, `spec` for status writes);
    - `time`: the timestamp for changed entries (default: now).

    managedFields sent by the client are used when they decode and are non-empty
    (that is how a client edits them); `[]` or `[{}]` clears them, after which the
    object is not tracked until its next apply. Never raises for bad managed fields:
    like upstream, a failure keeps the old object's managedFields.
    """
    if operation != UPDATE:
        raise ValueError("update_managed_fields records Update operations; use apply() for Apply")
    now = time or now_rfc3339()
    old_entries = _meta(old).get("managedFields")
    new_meta = new.setdefault("metadata", {})
    try:
        if subresource:
            managed, times = _decode_or_empty(old_entries)
        elif _is_reset(new_meta.get("managedFields")):
            managed, times = {}, {}
        else:
            try:
                managed, times = decode_managed_fields(new_meta.get("managedFields"))
            except ValueError:
                managed, times = {}, {}
            if not managed:
                managed, times = _decode_or_empty(old_entries)
        new_meta.pop("managedFields", None)
        creating = old is None or not _meta(old).get("uid")
        if not managed and not creating:
            return []  # not tracked (cleared earlier); the next apply starts again
        live = old if old is not None else types.zero_object()
        _update_flow(live, new, managed, times, manager, subresource, types, ignored, now)
        entries = encode_managed_fields(managed, times)
    except (TypedError, RecursionError, ValueError, TypeError):
        entries = json.loads(json.dumps(old_entries)) if isinstance(old_entries, list) else []
    set_managed_fields(new, entries)
    return entries


def _decode_or_empty(entries: Any) -> tuple[Managed, Times]:
    try:
        return decode_managed_fields(entries)
    except ValueError:
        return {}, {}


# ---------------------------------------------------------------- Apply
def _gvk_string(api_version: Any, kind: Any) -> str:
    av = api_version if isinstance(api_version, str) else ""
    k = kind if isinstance(kind, str) else ""
    if av.count("/") > 1:
        return "/, Kind="
    group, _, version = av.rpartition("/")
    return f"{group}/{version}, Kind={k}"


def apply(live: Optional[Obj], config: Obj, manager: str, *, types: TypeInfo, force: bool = False,
          subresource: str = "", ignored: Optional[FieldSet] = None, time: Optional[str] = None,
          default: Optional[Callable[[Obj], None]] = None) -> tuple[Obj, list[Obj]]:
    """Server-side apply of `config` (the decoded apply-patch body) by `manager` onto
    `live` (None when the object does not exist yet).

    Returns (object, managedFields): the merged object, defaulted with `default` when
    given, with metadata.managedFields set; when nothing but ownership changed, it is a
    copy of `live` with the new managedFields. Raises `ApplyConflict` (409) or
    `ManagedFieldsError` (400 for a wrong apiVersion/kind or managedFields in the
    config, 500 for a configuration that does not fit the schema, as upstream).
    """
    if not isinstance(config, dict):
        raise ManagedFieldsError(400, "BadRequest", "error decoding patch: the apply configuration is not an object")
    config = _json_only(config)
    if (config.get("apiVersion"), config.get("kind")) != (types.api_version, types.kind):
        raise ManagedFieldsError(400, "BadRequest",
                                 f"invalid object type: {_gvk_string(config.get('apiVersion'), config.get('kind'))}")
    if _meta(config).get("managedFields") is not None:
        raise ManagedFieldsError(400, "BadRequest", "metadata.managedFields must be nil")
    now = time or now_rfc3339()
    try:
        managed, times = decode_managed_fields(_meta(live).get("managedFields"))
    except ValueError as e:
        raise ManagedFieldsError(500, "", f"failed to decode managed fields: {e}") from None
    base = live if live is not None else types.zero_object()

    def run(force: bool) -> tuple[Obj, Managed, Times]:
        m, t = _copy_managed(managed), dict(times)
        obj = base
        if not m:
            # Existing fields nobody tracked yet become "before-first-apply"'s.
            _update_flow(types.zero_object(), obj, m, t, BEFORE_FIRST_APPLY, subresource, types, ignored, now)
        out = _apply_core(obj, config, m, t, manager, force, types, subresource, ignored, now, default)
        return out, m, t

    try:
        obj, m, t = run(force)
    except ApplyConflict as e:
        if manager != "kubectl":
            raise
        allowed = _allowed_by_last_applied(live, types)
        if allowed is None:
            raise
        rest = [c for c in e.conflicts if not allowed.has(c.elements)]
        if rest:
            raise ApplyConflict(rest) from None
        obj, m, t = run(True)
    if live is None:
        _drop_zero_nulls(obj, types.zero_object(), config)
    # the order Go writes an object in: type meta, metadata, then the rest
    obj = {**{k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}, **obj}
    entries = encode_managed_fields(m, t)
    set_managed_fields(obj, entries)
    if manager == "kubectl" and (_meta(obj).get("annotations") or {}).get(LAST_APPLIED):
        _set_last_applied(obj, build_last_applied(config))
    return obj, entries


def _json_only(v: Any) -> Any:
    # YAML loaders turn unquoted timestamps into datetimes; upstream's YAML->JSON step
    # keeps them as text. Anything else that is not JSON is a bad request.
    if isinstance(v, dict):
        return {str(k) if not isinstance(k, str) else k: _json_only(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_only(x) for x in v]
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, _dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return v.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, _dt.date):
        return v.isoformat()
    raise ManagedFieldsError(400, "BadRequest", f"error decoding patch: unsupported value {v!r}")


def _drop_zero_nulls(obj: Any, zero: Any, config: Any) -> None:
    # A create by apply merges into the Go zero object, whose nil slices and pointers
    # (containers, selector, creationTimestamp) come out as null; Go drops them again
    # when it decodes the result, so do the same unless the config itself sent null.
    if not isinstance(obj, dict) or not isinstance(zero, dict):
        return
    cfg = config if isinstance(config, dict) else {}
    for k, zv in zero.items():
        if zv is None:
            if k in obj and obj[k] is None and k not in cfg:
                del obj[k]
        elif isinstance(zv, dict):
            _drop_zero_nulls(obj.get(k), zv, cfg.get(k))


def _apply_core(live: Obj, config: Obj, managed: Managed, times: Times, manager: str, force: bool,
                types: TypeInfo, subresource: str, ignored: Optional[FieldSet], now: str,
                default: Optional[Callable[[Obj], None]]) -> Obj:
    ident = manager_identifier(manager or "unknown", APPLY, subresource=subresource)
    try:
        _typed.validate(config, types)
    except TypedError as e:
        meta = _meta(config)
        where = f"{meta.get('namespace', '')}/{meta.get('name', '')}; " \
                f"{_gvk_string(config.get('apiVersion'), config.get('kind'))}"
        # upstream answers a bare 500 here (kubernetes#139253); the fault is the client's
        # patch, so this answers 400 as the pending upstream fix (kubernetes#139255) does
        raise ManagedFieldsError(400, "BadRequest", f"failed to create typed patch object ({where}): {e.text()}") from None
    live = _without_managed_fields(live)
    try:
        merged = _typed.merge(live, config, types)
    except TypedError as e:
        raise ManagedFieldsError(500, "", f"failed to merge config: {e.text()}") from None
    last = managed.get(ident)
    own = _typed.to_field_set(config, types)
    if ignored is not None and not ignored.empty():
        own = own.recursive_difference(ignored)
    managed[ident] = VersionedSet(own, types.api_version, True)
    if last is not None and not last.fields.empty():
        merged = _prune(merged, managed, last.fields, types)
    _update_core(live, merged, managed, ident, force, types, ignored)
    _strip(managed, ident)
    if _typed.values_equal(live, merged):
        return _typed.copy_value(live)  # nothing changed: no new timestamp
    if default is not None:
        default(merged)
    times[ident] = now
    return merged


def _prune(merged: Obj, managed: Managed, last: FieldSet, types: TypeInfo) -> Obj:
    """Remove what the applier owned last time and does not set now, unless another
    manager (or its own new configuration) owns it."""
    ens = _typed.ensure_named_fields_are_members
    last_e = ens(last, types)
    pruned = _typed.remove_items(merged, last_e, types)
    owned = FieldSet()
    for vs in managed.values():
        owned = owned.union(vs.fields)
    merged_set = ens(_typed.to_field_set(merged, types), types)
    pruned_set = ens(_typed.to_field_set(pruned, types), types)
    pruned = _typed.remove_items(merged, merged_set.difference(pruned_set.union(ens(owned, types))), types)
    pruned_set = ens(_typed.to_field_set(pruned, types), types)
    return _typed.remove_items(merged, merged_set.difference(pruned_set).intersection(last_e), types)


# ---------------------------------------------------------------- client-side apply interplay
def _allowed_by_last_applied(live: Optional[Obj], types: TypeInfo) -> Optional[FieldSet]:
    """Fields that client-side apply set and that still hold the values it set: kubectl
    may take them over without conflicts."""
    text = (_meta(live).get("annotations") or {}).get(LAST_APPLIED)
    if not text or live is None:
        return None
    try:
        last = json.loads(text)
    except ValueError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != types.api_version:
        return None
    try:
        _typed.validate(last, types)
        fields = _typed.to_field_set(last, types)
        cmp = _typed.compare(last, _without_managed_fields(live), types)
    except TypedError:
        return None
    return fields.difference(cmp.modified).difference(cmp.added).difference(cmp.removed)


def build_last_applied(config: Obj) -> str:
    """The last-applied-configuration kubectl's server-side apply leaves: the config
    without that annotation, as Go encodes it (sorted keys, trailing newline)."""
    c = dict(config)
    meta = c.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        ann = {k: v for k, v in meta["annotations"].items() if k != LAST_APPLIED}
        c["metadata"] = {**meta, "annotations": ann}
    return go_json(c) + "\n"


def _set_last_applied(obj: Obj, value: str) -> None:
    ann = obj.setdefault("metadata", {}).setdefault("annotations", {})
    ann[LAST_APPLIED] = value
    if sum(len(k.encode()) + len(str(v).encode()) for k, v in ann.items()) > _ANNOTATIONS_SIZE_LIMIT:
        del ann[LAST_APPLIED]


# ---------------------------------------------------------------- conflicts as a Status
def conflict_message(conflicts: Sequence[Conflict]) -> str:
    """The 409 Status message, worded as upstream:

    `Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.key`, or
    `Apply failed with 2 conflicts: conflicts with "m" using apps/v1:\\n- .a\\n- .b`
    (managers sorted by identity, one block each).
    """
    def ident(c: Conflict) -> str:
        return c.identifier or manager_identifier(c.manager, APPLY)

    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {print_manager(ident(c))}: {c.path}"
    by: dict[str, list[str]] = {}
    for c in conflicts:
        by.setdefault(ident(c), []).append(c.path)
    lines = []
    for m in sorted(by):
        lines.append(f"conflicts with {print_manager(m)}:")
        lines.extend(f"- {p}" for p in by[m])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def conflict_causes(conflicts: Sequence[Conflict]) -> list[dict[str, str]]:
    """Status details causes: one FieldManagerConflict per field."""
    return [{"reason": "FieldManagerConflict",
             "message": f"conflict with {print_manager(c.identifier or manager_identifier(c.manager, APPLY))}",
             "field": c.path} for c in conflicts]


def conflict_status(conflicts: Sequence[Conflict]) -> Obj:
    """The whole 409 Status object upstream answers an apply conflict with."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": conflict_message(conflicts),
        "reason": "Conflict",
        "details": {"causes": conflict_causes(conflicts)},
        "code": 409,
    }


# ---------------------------------------------------------------- request parameters
def default_manager(user_agent: Optional[str]) -> str:
    """The manager name of a write without fieldManager: the User-Agent up to its first
    '/', without unprintable characters, at most 128 bytes ("kubectl/v1.37.0 (...)" ->
    "kubectl", "OpenAPI-Generator/33.1.0/python" -> "OpenAPI-Generator")."""
    head = (user_agent or "").split("/", 1)[0]
    out = []
    size = 0
    for ch in head:
        if not (ch.isprintable() or ch == " "):
            continue
        n = len(ch.encode("utf-8"))
        if size + n > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
        size += n
    return "".join(out)


def validate_write_options(field_manager: str, *, apply: bool = False, force: Optional[bool] = None,
                           patch: bool = False) -> list[tuple[str, str, str]]:
    """Upstream's checks of fieldManager / force, as (reason, field, message) causes of a
    422 on "PatchOptions" (patch) / "CreateOptions" / "UpdateOptions" in meta.k8s.io:
    fieldManager required for apply, force only for apply, at most 128 bytes, printable."""
    errs: list[tuple[str, str, str]] = []
    if apply and not field_manager:
        errs.append(("FieldValueRequired", "fieldManager", "Required value: is required for apply patch"))
    if patch and not apply and force is not None:
        errs.append(("FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch"))
    if len(field_manager.encode("utf-8")) > FIELD_MANAGER_MAX_LENGTH:
        errs.append(("FieldValueTooLong", "fieldManager",
                     f"Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"))
    for i, ch in enumerate(field_manager):
        if not (ch.isprintable() or ch == " "):
            errs.append(("FieldValueInvalid", "fieldManager",
                         f"Invalid value: {go_quote(field_manager)}: invalid character U+{ord(ch):04X} (at position {i})"))
    return errs


# ---------------------------------------------------------------- no-op writes
def revert_timestamp_only_changes(new: Obj, old: Obj) -> bool:
    """When a write changed nothing but managedFields timestamps, put the old timestamps
    back so the write is a no-op (upstream does this right before storing an update).
    Returns whether it did."""
    nm, om = _meta(new).get("managedFields"), _meta(old).get("managedFields")
    if not isinstance(nm, list) or not isinstance(om, list) or len(nm) != len(om) or not nm:
        return False
    if all(a.get("time") == b.get("time") for a, b in zip(nm, om)):
        return False

    def no_time(e: Obj) -> Obj:
        return {k: v for k, v in e.items() if k != "time"}

    if any(no_time(a) != no_time(b) for a, b in zip(nm, om)):
        return False
    if _without_managed_fields(new) != _without_managed_fields(old):
        return False
    for a, b in zip(nm, om):
        if "time" in b:
            a["time"] = b["time"]
        else:
            a.pop("time", None)
    return True


# ---------------------------------------------------------------- the scale subresource
SCALE_API_VERSION = "autoscaling/v1"
REPLICAS_IN_SCALE: Path = make_path("spec", "replicas")
DEFAULT_REPLICAS_PATHS: dict[str, Path] = {
    "apps/v1": make_path("spec", "replicas"),
    "v1": make_path("spec", "replicas"),
}


def scale_entries_to_subresource(parent_entries: Any, replicas_paths: Optional[dict[str, Path]] = None) -> list[Obj]:
    """The managedFields a Scale object shows: the parent's entries that own the
    replicas field, as owners of the Scale's spec.replicas."""
    paths = replicas_paths or DEFAULT_REPLICAS_PATHS
    managed, times = decode_managed_fields(parent_entries)
    out: Managed = {}
    out_t: Times = {}
    for ident, vs in managed.items():
        p = paths.get(vs.api_version)
        if p and vs.fields.has(p):
            out[ident] = VersionedSet(FieldSet.from_paths(REPLICAS_IN_SCALE), SCALE_API_VERSION, vs.applied)
            out_t[ident] = times.get(ident)
    return encode_managed_fields(out, out_t)


def scale_entries_to_parent(parent_entries: Any, scale_entries: Any, api_version: str,
                            replicas_paths: Optional[dict[str, Path]] = None) -> list[Obj]:
    """The parent's managedFields after a write through /scale: who now owns replicas
    (per the Scale's entries) moves back onto the parent's replicas path."""
    paths = replicas_paths or DEFAULT_REPLICAS_PATHS
    parent, ptimes = decode_managed_fields(parent_entries)
    scale, _ = decode_managed_fields(scale_entries)
    out: Managed = {}
    out_t: Times = {}
    for ident, vs in parent.items():
        if vs.api_version not in paths:
            continue
        p = paths[vs.api_version]
        if p is None or not vs.fields.has(p):
            out[ident], out_t[ident] = vs, ptimes.get(ident)
            continue
        if ident not in scale:
            rest = vs.fields.difference(FieldSet.from_paths(p))
            if not rest.empty():
                out[ident], out_t[ident] = VersionedSet(rest, vs.api_version, vs.applied), ptimes.get(ident)
        else:
            out[ident], out_t[ident] = vs, ptimes.get(ident)
            del scale[ident]
    for ident, vs in scale.items():
        if not vs.fields.has(REPLICAS_IN_SCALE):
            continue
        out[ident] = VersionedSet(FieldSet.from_paths(paths[api_version]), api_version, vs.applied)
        out_t[ident] = ptimes.get(ident)
    return encode_managed_fields(out, out_t)
