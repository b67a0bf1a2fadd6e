"""Authorization: may this user do this?  The filter asks the server's authorizer (one
callable, so SubjectAccessReviews get the very same answer as real requests).

Until RBAC lands the default authorizer lets authenticated users do everything and
anonymous users only read the public health and version endpoints (upstream's
system:public-info-viewer)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kybernetes.apiserver import errors, latency
from kybernetes.apiserver.filters.authentication import UserInfo

PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version"}

Attrs = dict[str, Any]


def request_attributes(request: web.Request) -> Attrs:
    """Authorization attributes of a request, in the shape access reviews use too."""
    info = request["info"]
    if info.is_resource_request:
        return {"resource_request": True, "verb": info.verb, "namespace": info.namespace,
                "group": info.api_group, "version": info.api_version, "resource": info.resource,
                "subresource": info.subresource, "name": info.name,
                "field_selector": info.field_selector, "label_selector": info.label_selector}
    return {"resource_request": False, "verb": info.verb, "path": request.path}


async def authenticated_allow(user: UserInfo, attrs: Attrs) -> tuple[bool, bool, str]:
    """The interim policy: (allowed, denied, reason)."""
    if "system:authenticated" in user.groups:
        return True, False, ""
    if not attrs["resource_request"] and attrs["verb"] == "get":
        path = attrs["path"].rstrip("/") or "/"
        if path in PUBLIC_PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return True, False, ""
    return False, False, ""


@web.middleware
async def authorize(request: web.Request, handler):
    user = request["user"]
    check = request.app["authorizer"]
    attrs = request_attributes(request)
    with latency.track(latency.AUTHORIZATION):
        allowed, _, reason = await check(user, attrs)
    request.setdefault("audit_annotations", {}).update(
        {"authorization.k8s.io/decision": "allow" if allowed else "forbid", "authorization.k8s.io/reason": reason})
    if allowed:
        return await handler(request)
    security = request.app.get("security")
    if security is not None:
        from kybernetes.auth.authorizer import attributes_from_dict, forbidden_message, forbidden_status

        a = attributes_from_dict(user, attrs)
        raise errors.APIError(403, "Forbidden", forbidden_message(a, reason),
                              details=forbidden_status(a, reason).get("details"))
    raise forbidden(user.name, attrs, reason)


def forbidden(user: str, attrs: Attrs, reason: str = "") -> errors.APIError:
    """Upstream's 403 wording for a denied request."""
    suffix = f": {reason}" if reason else ""
    if not attrs["resource_request"]:
        return errors.APIError(403, "Forbidden",
                               f'forbidden: User "{user}" cannot {attrs["verb"]} path "{attrs["path"]}"{suffix}',
                               details={})
    group, resource, sub, name = attrs["group"], attrs["resource"], attrs["subresource"], attrs["name"]
    full = f"{resource}/{sub}" if sub else resource
    target = f"{full}.{group}" if group else full
    if name:
        target += f' "{name}"'
    where = f' in the namespace "{attrs["namespace"]}"' if attrs["namespace"] else " at the cluster scope"
    msg = (f'{target} is forbidden: User "{user}" cannot {attrs["verb"]} resource "{full}" '
           f'in API group "{group}"{where}{suffix}')
    details = {"kind": resource, **({"group": group} if group else {}), **({"name": name} if name else {})}
    return errors.APIError(403, "Forbidden", msg, details=details)
