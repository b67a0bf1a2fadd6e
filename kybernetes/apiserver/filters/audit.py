"""Audit: record the request in the audit log (upstream WithAuditInit, WithAudit,
WithFailedAuthenticationAudit).

Runs right after authentication: the policy is evaluated once the user is known, and
RequestReceived is logged before anything else happens.  The filter sees every error
the inner filters and the handler raise, so ResponseComplete carries the real status,
and an unexpected exception is logged as stage Panic (the panics filter outside turns
it into the 500)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional

from aiohttp import web

from kybernetes.api.goformat import go_quote
from kybernetes.apiserver import errors, latency
from kybernetes.apiserver.audit import events as ev_mod
from kybernetes.apiserver.headertext import text
from kybernetes.apiserver.audit.policy import (LEVEL_METADATA, LEVEL_NONE, LEVEL_REQUEST_RESPONSE,
                                               STAGE_PANIC, STAGE_REQUEST_RECEIVED, STAGE_RESPONSE_COMPLETE,
                                               STAGE_RESPONSE_STARTED, RequestAuditConfig, attributes,
                                               level_at_least)

HEADER = ev_mod.HEADER_AUDIT_ID
LONG_RUNNING_VERBS = {"watch", "proxy"}
LONG_RUNNING_SUBRESOURCES = {"attach", "exec", "proxy", "log", "portforward"}
_BODY_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def audit_id(request: web.Request) -> str:
    """The request's audit ID: the client's Audit-ID header if given, else a new UUID."""
    aid = request.get("audit_id")
    if aid is None:
        aid = text(request.headers.get("Audit-ID", "").strip()) or ev_mod.new_audit_id()
        request["audit_id"] = aid
    return aid


def is_long_running(info: Any) -> bool:
    return info.verb in LONG_RUNNING_VERBS or (info.is_resource_request and info.subresource in LONG_RUNNING_SUBRESOURCES)


class AuditContext:
    """One request's event and what the policy decided for it."""

    def __init__(self, cfg: RequestAuditConfig, event: dict, auditor: Any, long_running: bool) -> None:
        self.cfg = cfg
        self.event = event
        self.auditor = auditor
        self.backend = auditor.backend
        self.long_running = long_running
        self.started = False
        self.done = False
        self.received = time.monotonic()
        # the request's annotations (authorization decision, admission plugins): the same
        # dict the filters write to, so every stage after RequestReceived carries them
        self.annotations: dict[str, str] = {}

    async def emit(self, stage: str) -> bool:
        """Hand a copy of the event at `stage` to the backends; False only when a
        blocking-strict backend could not take it."""
        if stage in self.cfg.omit_stages:
            self.event["stage"] = stage
            return True
        self.auditor.event_total += 1
        if stage != STAGE_REQUEST_RECEIVED:
            ev_mod.add_annotations(self.event, self.annotations)
        try:
            return await self.backend.process_async(ev_mod.snapshot(self.event, stage))
        except Exception:  # noqa: BLE001 - audit never fails the request
            logging.getLogger("kybernetes.audit").exception("audit backend failed")
            return True


def add_annotation(request: web.Request, key: str, value: str) -> None:
    """Add an annotation to the request's audit event (upstream audit.AddAuditAnnotation;
    every stage after RequestReceived carries it, at level Metadata and above).
    As upstream, a key that is already set keeps its first value."""
    request.setdefault("audit_annotations", {}).setdefault(key, value)


def add_admission_annotation(request: web.Request, key: str, value: str) -> None:
    """What an admission plugin calls (upstream admission.Attributes.AddAnnotation):
    the key must be ``<DNS subdomain>/<name>``, and a plugin may not change a value
    another already set (ValueError with upstream's wording)."""
    from kybernetes.api.names import is_qualified_name

    if key.count("/") != 1:
        raise ValueError("annotation key has invalid format, the right format is a DNS subdomain prefix and '/' "
                         "and key name. (e.g. 'podsecuritypolicy.admission.k8s.io/admit-policy')")
    msgs = is_qualified_name(key)
    if msgs:
        raise ValueError(f"annotation key has invalid format {','.join(msgs)}. A qualified name like "
                         "'podsecuritypolicy.admission.k8s.io/admit-policy' is required.")
    current = request.setdefault("audit_annotations", {})
    if key in current and current[key] != value:
        raise ValueError(f"admission annotations are not allowd to be overwritten, key:{go_quote(key)}, "
                         f"old value: {go_quote(current[key])}, new value:{go_quote(value)}")
    current[key] = value


def impersonated(request: web.Request, user: Any) -> None:
    """Hook for the impersonation filter (between audit and authorization)."""
    ctx: Optional[AuditContext] = request.get("audit")
    if ctx is not None:
        ev_mod.set_impersonated_user(ctx.event, user)


def _internal_error(request: web.Request, err: str) -> web.Response:
    """upstream responsewriters.InternalError: a plain-text 500 naming the request."""
    text = f"Internal Server Error: {go_quote(request.raw_path)}: {err}"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return web.Response(status=500, text=text + "\n", content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"})


@web.middleware
async def audit(request: web.Request, handler):
    aid = audit_id(request)
    auditor = request.app.get("audit")
    info = request["info"]
    cfg = auditor.policy.evaluate(attributes(request.get("user"), info)) if auditor is not None else None
    if cfg is not None:
        auditor.level_total[cfg.level] = auditor.level_total.get(cfg.level, 0) + 1
    if cfg is None or cfg.level == LEVEL_NONE:
        try:
            resp = await handler(request)
        except errors.APIError as e:
            e.headers[HEADER] = aid
            raise
        if not resp.prepared:
            resp.headers[HEADER] = aid
        return resp

    event = ev_mod.new_event(level=cfg.level, audit_id=aid, request_uri=request.raw_path, verb=info.verb,
                             user=request.get("user"), ips=ev_mod.source_ips(request.headers, request.remote),
                             user_agent=text(request.headers.get("User-Agent", "")), info=info)
    ctx = AuditContext(cfg, event, auditor, is_long_running(info))
    ctx.annotations = request.setdefault("audit_annotations", {})
    if latency.current() is None:
        latency.start()
    if not await ctx.emit(STAGE_REQUEST_RECEIVED):
        # blocking-strict: a request whose audit record cannot be stored is not served
        auditor.requests_rejected_total += 1
        return _internal_error(request, "failed to store audit event")
    request["audit"] = ctx
    try:
        resp = await handler(request)
    except errors.APIError as e:
        e.headers[HEADER] = aid
        _log_request_body(request, ctx)
        ev_mod.set_code(event, e.code)
        ev_mod.log_response_object(event, cfg, e.status())
        await _complete(request, ctx)
        raise
    except web.HTTPException as e:
        ev_mod.set_code(event, e.status)
        await _complete(request, ctx)
        raise
    except asyncio.CancelledError:  # the client went away (a watch ends this way)
        await asyncio.shield(_complete(request, ctx))
        raise
    except Exception as e:  # noqa: BLE001 - logged as Panic, re-raised for the panics filter
        event["responseStatus"] = {"metadata": {}, "status": "Failure",
                                   "message": f"APIServer panic'd: {type(e).__name__}: {e}",
                                   "reason": "InternalError", "code": 500}
        ev_mod.add_annotations(event, request.get("audit_annotations"))
        ctx.done = True
        await ctx.emit(STAGE_PANIC)
        raise
    if not resp.prepared:
        resp.headers[HEADER] = aid
    _log_request_body(request, ctx)
    if not ctx.started:
        ev_mod.set_code(event, resp.status)
    if isinstance(resp, web.Response) and not resp.prepared:
        _log_response_body(resp, ctx, info.verb)
    await _complete(request, ctx)
    return resp


async def _complete(request: web.Request, ctx: AuditContext) -> None:
    if ctx.done:
        return
    ctx.done = True
    ev = ctx.event
    if ev.get("responseStatus") is None:
        ev["responseStatus"] = {"metadata": {}, "status": "Success", "message": "Connection closed early", "code": 200}
        if ctx.long_running:
            ctx.started = True
            await ctx.emit(STAGE_RESPONSE_STARTED)
    elif ctx.long_running and not ctx.started:
        ctx.started = True
        await ctx.emit(STAGE_RESPONSE_STARTED)
    ev_mod.add_annotations(ev, request.get("audit_annotations"))
    if STAGE_RESPONSE_COMPLETE not in ctx.cfg.omit_stages:
        # upstream writeLatencyToAnnotation: per-layer latencies of a slow request
        ev_mod.add_annotations(ev, latency.slow_request_annotations(latency.current(),
                                                                    time.monotonic() - ctx.received))
    await ctx.emit(STAGE_RESPONSE_COMPLETE)


def _decode(body: bytes, content_type: str) -> Any:
    from kybernetes.apiserver import negotiation

    ct = negotiation.content_type_of(content_type)
    try:
        if ct == negotiation.PROTOBUF:
            from kybernetes.api import protobuf

            return protobuf.decode(body)
        if ct.endswith("json") or ct.endswith("+json"):
            import orjson

            return orjson.loads(body)
        if ct.endswith("yaml"):
            return negotiation.decode_body(body, content_type)
    except Exception:  # noqa: BLE001 - not every body is an object
        return None
    return None


def _log_request_body(request: web.Request, ctx: AuditContext) -> None:
    if not level_at_least(ctx.cfg.level, LEVEL_METADATA) or "requestObject" in ctx.event:
        return
    if request["info"].verb not in _BODY_VERBS:
        return
    raw = getattr(request, "_read_bytes", None)  # what the handler read (aiohttp caches it)
    if not raw:
        return
    obj = _decode(raw, request.headers.get("Content-Type", "application/json"))
    if obj is None:
        return
    if request["info"].verb == "patch":  # upstream LogRequestPatch: the patch as sent, no objectRef fill
        if level_at_least(ctx.cfg.level, "Request"):
            ctx.event["requestObject"] = obj
        return
    ev_mod.log_request_object(ctx.event, ctx.cfg, obj)


def _log_response_body(resp: web.Response, ctx: AuditContext, verb: str) -> None:
    level = ctx.cfg.level
    if not (level_at_least(level, LEVEL_REQUEST_RESPONSE) or resp.status >= 300
            or verb in ("delete", "deletecollection")):
        return
    body = resp.body
    if not isinstance(body, (bytes, bytearray)) or not body:
        return
    obj = _decode(bytes(body), resp.headers.get("Content-Type", ""))
    if obj is not None:
        ev_mod.log_response_object(ctx.event, ctx.cfg, obj)


def _auth_methods(request: web.Request) -> str:
    """upstream getAuthMethods, for a request that failed authentication."""
    methods = []
    auth = request.headers.get("Authorization", "").strip()
    parts = auth.split(" ")
    if parts and parts[0].lower() == "basic":
        methods.append("basic")
    if len(parts) > 1 and parts[0].lower() == "bearer":
        methods.append("bearer")
    if request.query.get("access_token", "").strip():
        methods.append("access_token")
    transport = request.transport
    if transport is not None and transport.get_extra_info("peercert"):
        methods.append("x509")
    if methods:
        return "Authentication failed, attempted: " + ", ".join(methods)
    return "Authentication failed, no credentials provided"


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Every response carries Audit-Id; a long-running request logs ResponseStarted when
    its headers go out; a request that failed authentication is audited here (it never
    reached the audit filter)."""
    aid = audit_id(request)
    response.headers[HEADER] = aid
    ctx: Optional[AuditContext] = request.get("audit")
    if ctx is not None:
        if ctx.long_running and not ctx.started and not ctx.done:
            ctx.started = True
            ev_mod.set_code(ctx.event, response.status)
            await ctx.emit(STAGE_RESPONSE_STARTED)
        return
    auditor = request.app.get("audit")
    info = request.get("info")
    if auditor is None or info is None or response.status != 401 or "user" in request:
        return
    cfg = auditor.policy.evaluate(attributes(None, info))
    if cfg.level == LEVEL_NONE:
        return
    event = ev_mod.new_event(level=cfg.level, audit_id=aid, request_uri=request.raw_path, verb=info.verb,
                             user=None, ips=ev_mod.source_ips(request.headers, request.remote),
                             user_agent=text(request.headers.get("User-Agent", "")), info=info)
    event["responseStatus"] = {"metadata": {}, "message": _auth_methods(request), "code": response.status}
    actx = AuditContext(cfg, event, auditor, False)
    actx.done = True
    request["audit"] = actx
    auditor.level_total[cfg.level] = auditor.level_total.get(cfg.level, 0) + 1
    await actx.emit(STAGE_RESPONSE_STARTED)
