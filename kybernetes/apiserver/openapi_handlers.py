"""/openapi/v2 and /openapi/v3 endpoints (documents built lazily, cached with ETags)."""

from __future__ import annotations

from aiohttp import web

from kybernetes.api import openapi
from kybernetes.apiserver import errors


def _served(api) -> list:
    cached = getattr(api, "_openapi_served", None)
    if cached is None:
        cached = [
            openapi.ServedResource(group=s.group, version=s.version, kind=s.kind, resource=s.resource,
                                   namespaced=s.namespaced, verbs=tuple(s.verbs), subresources=tuple(s.subresources))
            for s in api.catalog.strategies
        ]
        api._openapi_served = cached
    return cached


async def serve(api, request: web.Request) -> web.StreamResponse:
    import asyncio

    path = request.path.rstrip("/")
    served = _served(api)
    if path == "/openapi/v2":
        body = await asyncio.to_thread(openapi.openapi_v2, served)
        return _bytes(request, body)
    if path == "/openapi/v3":
        body = await asyncio.to_thread(openapi.openapi_v3_index, served)
        return _bytes(request, body)
    if path.startswith("/openapi/v3/"):
        gv = path[len("/openapi/v3/"):]
        try:
            body = await asyncio.to_thread(openapi.openapi_v3_group_version, served, gv)
        except KeyError:
            body = None
        if body is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        resp = _bytes(request, body)
        if "hash" in request.query:
            resp.headers["Cache-Control"] = "public, immutable"
            resp.headers["Expires"] = "Fri, 01 Jan 2100 00:00:00 GMT"
        return resp
    raise errors.APIError(404, "NotFound", "the server could not find the requested resource")


def _bytes(request: web.Request, body: bytes) -> web.StreamResponse:
    import hashlib

    etag = '"' + hashlib.sha256(body).hexdigest()[:32].upper() + '"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=body, content_type="application/json", headers={"ETag": etag})
