"""Attach the parsed RequestInfo to every request."""

from __future__ import annotations

from aiohttp import web

from kybernetes.apiserver import latency, requestinfo


@web.middleware
async def with_request_info(request: web.Request, handler):
    request["info"] = requestinfo.parse(request.method, request.path, dict(request.query))
    if request.app.get("audit") is not None:
        # a fresh tracker per request (upstream WithLatencyTrackers); only audit events
        # read trackers, so without an auditor nothing needs timing
        latency.start()
    return await handler(request)
