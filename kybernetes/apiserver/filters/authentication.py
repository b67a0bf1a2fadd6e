"""Authentication: who is asking.  x509 client certificates signed by the cluster CA
(CN = user, O = groups) first, then bearer tokens (token file, bootstrap tokens,
service-account JWTs); no credentials at all is system:anonymous unless anonymous
requests are turned off.  A bad token is 401, never anonymous."""

from __future__ import annotations

import time

from aiohttp import web

from kybernetes.apiserver import errors, latency
from kybernetes.auth.authorizer import ANONYMOUS, UserInfo
from kybernetes.auth.tokens import bearer_token, websocket_bearer_token, with_authenticated_group

__all__ = ["ANONYMOUS", "UserInfo", "authenticate", "user_from_peercert"]


def user_from_peercert(cert: dict) -> UserInfo | None:
    """Read CN and O from the verified peer certificate (ssl's decoded form)."""
    cn = ""
    orgs: list[str] = []
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
            elif k == "organizationName":
                orgs.append(v)
    if not cn:
        return None
    return UserInfo(cn, tuple(orgs))


def unauthorized() -> errors.APIError:
    return errors.APIError(401, "Unauthorized", "Unauthorized")


@web.middleware
async def authenticate(request: web.Request, handler):
    t0 = time.perf_counter()
    user = None
    transport = request.transport
    if transport is not None:
        cert = transport.get_extra_info("peercert")
        if cert:
            user = user_from_peercert(cert)
    security = request.app.get("security")
    if user is None:
        token, _ = bearer_token(request.headers.get("Authorization"))
        if token is None and request.headers.get("Upgrade", "").lower() == "websocket":
            token, _ = websocket_bearer_token(request.headers.get("Sec-WebSocket-Protocol"))
        if token:
            if security is None:
                raise unauthorized()
            result = await security.tokens.authenticate_token(token)
            if result.user is None:
                raise unauthorized()
            user = result.user
    if user is not None:
        request["user"] = with_authenticated_group(user)
    elif security is not None and not security.anonymous:
        raise unauthorized()
    else:
        request["user"] = ANONYMOUS
    latency.add(latency.AUTHENTICATION, time.perf_counter() - t0)
    return await handler(request)
