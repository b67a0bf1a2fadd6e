"""Authorization.  Until RBAC lands, authenticated users may do everything and
anonymous users only read the public health and version endpoints (upstream's
system:public-info-viewer)."""

from __future__ import annotations

from aiohttp import web

from kybernetes.apiserver import errors

PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}


@web.middleware
async def authorize(request: web.Request, handler):
    user = request["user"]
    if "system:authenticated" in user.groups:
        return await handler(request)
    path = request.path
    if path in PUBLIC_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/")):
        return await handler(request)
    info = request["info"]
    if info.is_resource_request:
        raise forbidden(user.name, info)
    raise errors.APIError(403, "Forbidden", f'forbidden: User "{user.name}" cannot get path "{path}"')


def forbidden(user: str, info) -> errors.APIError:
    """Upstream's 403 wording for a denied resource request."""
    target = f"{info.resource}.{info.api_group}" if info.api_group else info.resource
    if info.subresource:
        target = f"{info.resource}/{info.subresource}" + (f".{info.api_group}" if info.api_group else "")
    if info.name:
        target += f' "{info.name}"'
    resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    where = f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
    msg = (f'{target} is forbidden: User "{user}" cannot {info.verb} resource "{resource}" '
           f'in API group "{info.api_group}"{where}')
    details = {"kind": info.resource, **({"group": info.api_group} if info.api_group else {}),
               **({"name": info.name} if info.name else {})}
    return errors.APIError(403, "Forbidden", msg, details=details)
