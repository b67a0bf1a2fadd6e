"""audit.k8s.io/v1 Event shaping: one mutable event per request, copied at each stage
(upstream apiserver/pkg/audit: request.go, context.go)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Optional

from kybernetes.api.uids import new_uuid
from kybernetes.apiserver.audit.policy import (LEVEL_METADATA, LEVEL_REQUEST, LEVEL_REQUEST_RESPONSE,
                                               RequestAuditConfig, level_at_least)

API_VERSION = "audit.k8s.io/v1"
HEADER_AUDIT_ID = "Audit-Id"
DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"

Obj = dict[str, Any]


def new_audit_id() -> str:
    return new_uuid()


def micro_time(dt: Optional[datetime] = None) -> str:
    """metav1.MicroTime in RFC3339 with microseconds, UTC."""
    dt = dt or datetime.now(timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def user_info(user: Any) -> Obj:
    """authentication/v1 UserInfo (omitempty fields)."""
    if user is None:
        return {}
    out: Obj = {"username": user.name}
    if getattr(user, "uid", ""):
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    extra = getattr(user, "extra", None)
    if extra:
        out["extra"] = {k: list(v) for k, v in extra.items()}
    return out


def source_ips(headers: Any, remote: Optional[str]) -> list[str]:
    """upstream utilnet.SourceIPs: X-Forwarded-For, then X-Real-Ip, then the peer."""
    ips: list[str] = []
    fwd = headers.get("X-Forwarded-For", "")
    for part in fwd.split(","):
        part = part.strip()
        if part:
            ips.append(part)
    real = headers.get("X-Real-Ip", "").strip()
    if real and real not in ips:
        ips.append(real)
    if remote and (not ips or ips[-1] != remote):
        ips.append(remote)
    return ips


def object_ref(info: Any) -> Optional[Obj]:
    if not info.is_resource_request:
        return None
    ref: Obj = {"resource": info.resource}
    if info.namespace:
        ref["namespace"] = info.namespace
    if info.name:
        ref["name"] = info.name
    if info.api_group:
        ref["apiGroup"] = info.api_group
    if info.api_version:
        ref["apiVersion"] = info.api_version
    if info.subresource:
        ref["subresource"] = info.subresource
    return ref


def new_event(*, level: str, audit_id: str, request_uri: str, verb: str, user: Any, ips: list[str],
              user_agent: str, info: Any, received: Optional[datetime] = None) -> Obj:
    """The event as upstream's evaluatePolicyAndCreateAuditEvent makes it (key order as
    the Go struct)."""
    ev: Obj = {"kind": "Event", "apiVersion": API_VERSION, "level": level, "auditID": audit_id,
               "stage": "", "requestURI": request_uri, "verb": verb, "user": user_info(user)}
    if ips:
        ev["sourceIPs"] = ips
    if user_agent:
        ev["userAgent"] = user_agent
    ref = object_ref(info) if info is not None else None
    if ref is not None:
        ev["objectRef"] = ref
    ev["requestReceivedTimestamp"] = micro_time(received)
    ev["stageTimestamp"] = ev["requestReceivedTimestamp"]
    return ev


_ORDER = ("kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user", "impersonatedUser",
          "sourceIPs", "userAgent", "objectRef", "responseStatus", "requestObject", "responseObject",
          "requestReceivedTimestamp", "stageTimestamp", "annotations")


def snapshot(ev: Obj, stage: str, when: Optional[datetime] = None) -> Obj:
    """A copy of `ev` at `stage`, keys in upstream order (what a backend receives)."""
    ev["stage"] = stage
    if stage != "RequestReceived":
        ev["stageTimestamp"] = micro_time(when)
    out = {k: ev[k] for k in _ORDER if ev.get(k) is not None}
    if not out.get("annotations"):
        out.pop("annotations", None)
    return copy.deepcopy(out)


def set_impersonated_user(ev: Obj, user: Any) -> None:
    """Hook for the impersonation filter: the event's user stays the requester."""
    ev["impersonatedUser"] = user_info(user)


def remove_managed_fields(obj: Any) -> Any:
    """A copy of obj without metadata.managedFields (also inside list items)."""
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        meta = dict(meta)
        meta.pop("managedFields")
        out["metadata"] = meta
    items = out.get("items")
    if isinstance(items, list):
        out["items"] = [remove_managed_fields(i) for i in items]
    obj2 = out.get("object")  # a Table row's or watch event's object
    if isinstance(obj2, dict):
        out["object"] = remove_managed_fields(obj2)
    return out


def log_request_object(ev: Obj, cfg: RequestAuditConfig, obj: Any) -> None:
    """upstream LogRequestObject: fill objectRef from the object's metadata (Metadata
    and up), keep the object itself at Request and up."""
    if not level_at_least(cfg.level, LEVEL_METADATA):
        return
    ref = ev.get("objectRef")
    if ref is not None and isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        meta = obj["metadata"]
        for key, src in (("namespace", "namespace"), ("name", "name"), ("uid", "uid"),
                         ("resourceVersion", "resourceVersion")):
            if not ref.get(key) and meta.get(src):
                ref[key] = meta[src]
    if not level_at_least(cfg.level, LEVEL_REQUEST):
        return
    if cfg.omit_managed_fields:
        obj = remove_managed_fields(obj)
    ev["requestObject"] = obj


def log_response_object(ev: Obj, cfg: RequestAuditConfig, obj: Any) -> None:
    """upstream LogResponseObject: a Status answer goes into responseStatus (Metadata
    and up); the object itself only at RequestResponse."""
    if not level_at_least(cfg.level, LEVEL_METADATA):
        return
    if isinstance(obj, dict) and obj.get("kind") == "Status":
        st: Obj = {"metadata": {}}
        for k in ("status", "message", "reason", "details", "code"):
            if obj.get(k) not in (None, "", {}):
                st[k] = obj[k]
        if "code" not in st:
            st["code"] = ev.get("responseStatus", {}).get("code", 0)
        ev["responseStatus"] = st
    if not level_at_least(cfg.level, LEVEL_REQUEST_RESPONSE):
        return
    if cfg.omit_managed_fields:
        obj = remove_managed_fields(obj)
    ev["responseObject"] = obj


def set_code(ev: Obj, code: int) -> None:
    st = ev.get("responseStatus")
    if st is None:
        ev["responseStatus"] = {"metadata": {}, "code": code}
    else:
        st["code"] = code


def add_annotations(ev: Obj, annotations: Optional[dict[str, str]]) -> None:
    if annotations:
        ev.setdefault("annotations", {}).update(annotations)
