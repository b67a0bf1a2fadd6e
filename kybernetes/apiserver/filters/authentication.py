"""Authentication: who is asking.  x509 client certificates signed by the cluster CA
(CN = user, O = groups); everything else is system:anonymous."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict = field(default_factory=dict)


ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


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
    return UserInfo(cn, tuple(orgs) + ("system:authenticated",))


@web.middleware
async def authenticate(request: web.Request, handler):
    user = None
    transport = request.transport
    if transport is not None:
        cert = transport.get_extra_info("peercert")
        if cert:
            user = user_from_peercert(cert)
    request["user"] = user or ANONYMOUS
    return await handler(request)
