"""The API server's Prometheus metrics: request counts and latencies (upstream's
apiserver_request_total and apiserver_request_duration_seconds, same labels), and the
`/metrics` endpoint, which serves the whole process's default registry (in `kyb server`
the controllers' and scheduler's work queues live in the same process).

`/metrics` is a non-resource URL: authorization decides who reads it (upstream's
bootstrap policy grants it to the system:monitoring group).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from prometheus_client import REGISTRY, CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from kybernetes.apiserver.requestinfo import RequestInfo

__all__ = ["instrument", "serve"]

_LABELS = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"]
REQUESTS = Counter("apiserver_request",
                   "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, "
                   "scope, component, and HTTP response code.", _LABELS + ["code"])
DURATION = Histogram("apiserver_request_duration_seconds",
                     "Response latency distribution in seconds for each verb, dry run value, group, version, "
                     "resource, subresource, scope and component.", _LABELS,
                     buckets=(0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15,
                              20, 30, 45, 60))
COMPONENT = "apiserver"
_CHILDREN: dict[tuple, tuple] = {}  # (labels, code) -> (counter, histogram) children; bounded by the label space


def clean_verb(method: str, info: RequestInfo | None, content_type: str) -> str:
    """Upstream CleanVerb: LIST and WATCH for collection reads, APPLY for server-side
    apply, otherwise the HTTP method."""
    method = method.upper()
    if method == "HEAD":
        method = "GET"
    if info is not None and info.is_resource_request:
        if info.verb == "list":
            return "LIST"
        if info.verb == "watch":
            return "WATCH"
    if method == "PATCH" and content_type.split(";")[0].strip() == "application/apply-patch+yaml":
        return "APPLY"
    return method


def clean_scope(info: RequestInfo | None, method: str) -> str:
    """Upstream CleanScope."""
    if info is None:
        return ""
    if info.name or method.upper() == "POST" and info.is_resource_request and info.verb == "create":
        return "resource"
    if info.namespace:
        return "namespace"
    if info.is_resource_request:
        return "cluster"
    return ""


def _dry_run(request: web.Request) -> str:
    """Upstream cleanDryRun: "All" or nothing (any other value is refused before storage)."""
    return "All" if "All" in request.query.getall("dryRun", []) else ""


def record(request: web.Request, code: int, elapsed: float) -> None:
    info = request.get("info")
    group = version = resource = subresource = ""
    if info is not None and info.is_resource_request:
        api = request.app.get("api")
        # only served resources get their own series: paths are client input, and labels
        # taken from them unchecked would grow without bound
        s = api.catalog.lookup(info.api_group, info.api_version, info.resource) if api is not None else None
        if s is not None:
            group, version, resource = info.api_group, info.api_version, info.resource
            sub = info.subresource
            if sub and (sub in s.subresources or sub in getattr(s, "future_subresources", ())):
                subresource = sub
    labels = (clean_verb(request.method, info, request.headers.get("Content-Type", "")), _dry_run(request),
              group, version, resource, subresource, clean_scope(info, request.method), COMPONENT)
    key = (labels, code)
    children = _CHILDREN.get(key)
    if children is None:  # label lookups cost more than the update; keep the children
        children = _CHILDREN[key] = (REQUESTS.labels(*labels, str(code)), DURATION.labels(*labels))
    children[0].inc()
    children[1].observe(elapsed)


@web.middleware
async def instrument(request: web.Request, handler):
    """Outermost filter: counts every answer, whatever filter produced it."""
    start = time.monotonic()
    try:
        resp = await handler(request)
        code = resp.status
    except web.HTTPException as e:
        record(request, e.status, time.monotonic() - start)
        raise
    except asyncio.CancelledError:
        # the client went away: a watch it ended was an answered (200) stream; other
        # requests never got an answer and are not counted
        info = request.get("info")
        if info is not None and info.verb == "watch":
            record(request, 200, time.monotonic() - start)
        raise
    except BaseException:
        record(request, 500, time.monotonic() - start)
        raise
    record(request, code, time.monotonic() - start)
    return resp


async def serve(request: web.Request) -> web.Response:
    """GET /metrics: the Prometheus text exposition of this process's registry."""
    body = generate_latest(REGISTRY)
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
