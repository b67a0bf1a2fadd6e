"""Request-side glue for metadata.managedFields and server-side apply: which manager a
request acts as, the field types of the target, which fields a subresource ignores,
and the option checks upstream applies to fieldManager / force."""

from __future__ import annotations

import functools
from typing import Any, Optional

from kybernetes.api import managedfields as mf
from kybernetes.apiserver import errors, fieldversions
from kybernetes.registry.base import Cause, Strategy

Obj = dict[str, Any]


def manager(r: Any) -> str:
    """The field manager: ?fieldManager=, else derived from the User-Agent (upstream)."""
    return r.query.get("fieldManager") or _agent_manager(r.http.headers.get("User-Agent", ""))


@functools.lru_cache(maxsize=256)
def _agent_manager(user_agent: str) -> str:
    # clients send the same few User-Agents on every request
    return mf.default_manager(user_agent)


def force(r: Any) -> Optional[bool]:
    v = r.query.get("force")
    if v is None:
        return None
    return v.lower() in ("1", "true", "t")


def types(s: Strategy, subresource: str = "") -> Any:
    if subresource == "scale":
        return mf.type_info("autoscaling", "v1", "Scale")
    return mf.type_info(s.group, s.version, s.kind)


def ignored(s: Strategy, subresource: str) -> Optional[Any]:
    if subresource == "status":
        return mf.FieldSet.from_paths("spec", *(f"metadata.{k}" for k in s.status_reset_meta))
    if s.has_status_split and not subresource:
        return mf.FieldSet.from_paths("status")
    return None


def check_options(r: Any, *, apply: bool, patch: bool, options_kind: str) -> None:
    """422 on {Create,Update,Patch}Options for a bad fieldManager / force."""
    errs = mf.validate_write_options(r.query.get("fieldManager") or "", apply=apply, force=force(r), patch=patch)
    bad = dry_run_error(r.http.query.getall("dryRun", []))
    if bad:
        errs.append(bad)
    if errs:
        raise errors.invalid(options_kind, "meta.k8s.io", "", [Cause(*e) for e in errs])


def dry_run_error(values: list) -> Optional[tuple[str, str, str]]:
    """Upstream ValidateDryRun: every dryRun value must be "All"."""
    if all(v == "All" for v in values):
        return None
    from kybernetes.api.goformat import go_quote

    shown = "[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}"
    return ("FieldValueNotSupported", "dryRun", f'Unsupported value: {shown}: supported values: "All"')


def track(r: Any, old: Optional[Obj], new: Obj) -> None:
    """Record a create/update/non-apply patch in new.metadata.managedFields."""
    s = r.strategy
    old, foreign = fieldversions.to_request_version(s, old)
    new_meta = new.get("metadata")
    sent, foreign_sent = fieldversions.to_request_version(s, new)
    if foreign_sent and isinstance(new_meta, dict):
        new_meta["managedFields"] = sent["metadata"]["managedFields"]
    who = manager(r)
    mf.update_managed_fields(old, new, who, "Update", types=types(s), subresource=r.info.subresource,
                             ignored=ignored(s, r.info.subresource))
    fieldversions.restore(s, new, {**foreign_sent, **foreign}, (who, "Update", r.info.subresource))


def apply(r: Any, live: Optional[Obj], config: Obj) -> Obj:
    """Server-side apply of `config` onto `live` (None = create); conflicts are 409."""
    s = r.strategy
    live, foreign = fieldversions.to_request_version(s, live)
    try:
        obj, _ = mf.apply(live, config, manager(r), types=types(s), force=bool(force(r)),
                          subresource=r.info.subresource, ignored=ignored(s, r.info.subresource))
    except mf.ApplyConflict as e:
        conflicts = fieldversions.restore_conflicts(s, e.conflicts, foreign)
        raise errors.APIError(409, "Conflict", mf.conflict_message(conflicts),
                              details={"causes": mf.conflict_causes(conflicts)}) from None
    except mf.ManagedFieldsError as e:
        raise errors.APIError(e.code, e.reason, e.message) from None
    fieldversions.restore(s, obj, foreign, (manager(r), "Apply", r.info.subresource))
    return obj


def track_scale(r: Any, old_scale: Obj, new_scale: Obj) -> None:
    """Record an update or patch through /scale on the Scale view (its managedFields are the
    parent's, converted); the caller maps them back onto the parent."""
    mf.update_managed_fields(old_scale, new_scale, manager(r), "Update", types=types(r.strategy, "scale"),
                             subresource="scale")


def apply_scale(r: Any, old_scale: Obj, config: Obj) -> Obj:
    """Server-side apply of a Scale configuration onto the Scale view; conflicts are 409."""
    try:
        obj, _ = mf.apply(old_scale, config, manager(r), types=types(r.strategy, "scale"), force=bool(force(r)),
                          subresource="scale")
    except mf.ApplyConflict as e:
        raise errors.APIError(409, "Conflict", e.message, details={"causes": e.causes}) from None
    except mf.ManagedFieldsError as e:
        raise errors.APIError(e.code, e.reason, e.message) from None
    return obj
