"""Turn any unhandled exception into a 500 Status instead of a dropped connection."""

from __future__ import annotations

import logging

from aiohttp import web

from kybernetes.apiserver import errors
from kybernetes.storage.interface import UnavailableError

log = logging.getLogger("kybernetes.apiserver")


def status_response(err: errors.APIError) -> web.Response:
    import orjson

    from kybernetes.apiserver.headertext import text

    try:
        body = orjson.dumps(err.status())
    except TypeError:  # a message quoting undecodable request bytes: show them as U+FFFD
        status = err.status()
        status["message"] = text(str(status.get("message", "")))
        body = orjson.dumps(status, default=str)
    resp = web.Response(body=body, status=err.code, content_type="application/json")
    for k, v in err.headers.items():
        resp.headers[k] = text(v)
    return resp


@web.middleware
async def recover(request: web.Request, handler):
    try:
        return await handler(request)
    except errors.APIError as e:
        return status_response(e)
    except web.HTTPException:
        raise
    except UnavailableError as e:  # raised before dispatch (authn/authz reads): still retryable
        info = request.get("info")
        log.warning("datastore unavailable serving %s %s: %s", request.method, request.path, e)
        return status_response(errors.storage_unavailable(
            getattr(info, "verb", "") or request.method.lower(), getattr(info, "resource", ""),
            getattr(info, "api_group", ""), maybe_applied=e.maybe_applied))
    except Exception as e:  # noqa: BLE001 - the last line of defence
        log.exception("panic serving %s %s", request.method, request.path)
        return status_response(errors.internal(f"{type(e).__name__}: {e}"))
