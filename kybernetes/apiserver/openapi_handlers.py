"""/openapi/v2 and /openapi/v3 endpoints (documents built lazily off the event loop,
cached by the openapi module, with ETags from their content hashes)."""

from __future__ import annotations

import asyncio

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


def _not_found() -> errors.APIError:
    return errors.APIError(404, "NotFound", "the server could not find the requested resource")


async def serve(api, request: web.Request) -> web.StreamResponse:
    path = request.path.rstrip("/")
    served = _served(api)
    if path == "/openapi/v2":
        # kubectl asks for the protobuf form of v2 only
        if openapi.V2_PROTOBUF_MEDIA_TYPE in request.headers.get("Accept", ""):
            doc = await asyncio.to_thread(openapi.openapi_v2_protobuf_document, served)
            return _doc(request, doc, openapi.V2_PROTOBUF_CONTENT_TYPE)
        doc = await asyncio.to_thread(openapi.openapi_v2_document, served)
        return _doc(request, doc, "application/json")
    if path == "/openapi/v3":
        body = await asyncio.to_thread(openapi.openapi_v3_index, served)
        return web.Response(body=body, content_type="application/json")
    if path.startswith("/openapi/v3/"):
        doc = await asyncio.to_thread(openapi.openapi_v3_document, served, path[len("/openapi/v3/"):])
        if doc is None:
            raise _not_found()
        resp = _doc(request, doc, "application/json")
        if "hash" in request.query:
            resp.headers["Cache-Control"] = "public, immutable"
            resp.headers["Expires"] = "Fri, 01 Jan 2100 00:00:00 GMT"
        return resp
    raise _not_found()


def _doc(request: web.Request, doc, content_type: str) -> web.Response:
    etag = doc.etag
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    resp = web.Response(body=doc.body, headers={"ETag": etag})
    resp.headers["Content-Type"] = content_type
    return resp
