"""The API server's aiohttp application: the filter chain and the dispatcher.

Filter order (outermost first) is written down here and nowhere else:
metrics -> recover panics -> request info -> authentication -> audit -> impersonation -> authorization -> handler.
"""

from __future__ import annotations

import logging
import platform
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from kybernetes import __version__
from kybernetes.api.catalog import Catalog
from kybernetes.apiserver import discovery, errors, kubelet_proxy, metrics, negotiation
from kybernetes.apiserver.filters import audit, authentication, authorization, impersonation, panics, requestinfo
from kybernetes.apiserver.objects import ObjectStore
from kybernetes.apiserver.rest import Request, ResourceHandlers, Validator
from kybernetes.storage.interface import UnavailableError

log = logging.getLogger("kybernetes.apiserver")

KUBE_VERSION = "v1.37.1"

FILTERS = [metrics.instrument, panics.recover, requestinfo.with_request_info, authentication.authenticate, audit.audit,
           impersonation.impersonate, authorization.authorize]

_READ_SUBRESOURCES = {"status", "scale", "approval", "ephemeralcontainers"}
_WRITE_SUBRESOURCES = {"status", "scale", "finalize", "approval", "ephemeralcontainers"}


@dataclass
class APIServer:
    """Everything the HTTP layer needs; built by the server command."""

    catalog: Catalog
    objects: ObjectStore
    server_address: str = "127.0.0.1:6443"
    ready_checks: dict[str, Callable[[], Awaitable[bool]]] = field(default_factory=dict)
    # (user, attributes) -> (allowed, denied, reason); requests and access reviews share it
    authorizer: Callable[..., Awaitable[tuple[bool, bool, str]]] = authorization.authenticated_allow
    handlers: ResourceHandlers = field(init=False)

    def __post_init__(self) -> None:
        from kybernetes.apiserver.reviews import Reviews

        self.handlers = ResourceHandlers(self.objects, Validator())
        self.handlers.reviews = Reviews(access=lambda user, attrs: self.authorizer(user, attrs))


def _json(obj: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type=content_type.split(";")[0],
                        headers={"Content-Type": content_type} if ";" in content_type else None)


def version_info() -> dict[str, str]:
    major, minor = KUBE_VERSION.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": str(int(minor) - 1),
        "gitVersion": f"{KUBE_VERSION}+kyb{__version__}",
        "gitCommit": "kybernetes",
        "gitTreeState": "clean",
        "buildDate": "2026-11-28T00:00:00Z",
        "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "compiler": "cpython",
        "platform": f"linux/{'amd64' if platform.machine() == 'x86_64' else platform.machine()}",
    }


def build_app(api: APIServer) -> web.Application:
    app = web.Application(middlewares=FILTERS, client_max_size=8 * 1024 * 1024)
    app["api"] = api
    app["authorizer"] = lambda user, attrs: api.authorizer(user, attrs)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


async def _dispatch(request: web.Request) -> web.StreamResponse:
    try:
        return await _route(request)
    except UnavailableError as e:  # the datastore is down: a retryable Status, not a panic
        info = request["info"]
        log.warning("datastore unavailable serving %s %s: %s", request.method, request.path, e)
        raise errors.storage_unavailable(info.verb or request.method.lower(), info.resource, info.api_group,
                                         maybe_applied=e.maybe_applied) from None


async def _route(request: web.Request) -> web.StreamResponse:
    api: APIServer = request.app["api"]
    path = request.path.rstrip("/") or "/"
    info = request["info"]
    if info.is_resource_request:
        return await _resource(api, request)
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    if path in ("/healthz", "/livez"):
        return web.Response(text="ok")
    if path == "/readyz" or path.startswith("/readyz/"):
        return await _readyz(api, request)
    if path == "/version":
        return _json(version_info())
    if path == "/metrics":
        return await metrics.serve(request)
    if path in ("/api", "/apis"):
        return _discovery_root(api, request, legacy=(path == "/api"))
    if path.startswith("/apis/"):
        parts = path.split("/")[2:]
        if len(parts) == 1:
            doc = discovery.api_group(api.catalog, parts[0])
        else:
            doc = discovery.api_resource_list(api.catalog, parts[0], parts[1])
        if doc is None:
            raise _not_found_path()
        return _json(doc)
    if path.startswith("/api/"):
        parts = path.split("/")[2:]
        doc = discovery.api_resource_list(api.catalog, "", parts[0])
        if doc is None:
            raise _not_found_path()
        return _json(doc)
    if path in ("/.well-known/openid-configuration", "/openid/v1/jwks"):
        return _oidc(request, path)
    if path.startswith("/openapi/"):
        from kybernetes.apiserver import openapi_handlers

        return await openapi_handlers.serve(api, request)
    if path == "/":
        return _json({"paths": sorted(["/api", "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/readyz", "/version",
                                       "/openapi/v2", "/openapi/v3"] +
                                      [f"/apis/{g}" for g in api.catalog.groups if g] +
                                      [f"/apis/{g}/{v}" for g, vs in api.catalog.groups.items() if g for v in vs])})
    raise _not_found_path()


def _not_found_path() -> errors.APIError:
    return errors.APIError(404, "NotFound", "the server could not find the requested resource",
                           details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def _discovery_root(api: APIServer, request: web.Request, *, legacy: bool) -> web.Response:
    accept = request.headers.get("Accept", "")
    for mt in negotiation.parse_media_types(accept):
        if mt.params.get("as") == "APIGroupDiscoveryList" and mt.params.get("g") == "apidiscovery.k8s.io":
            v = mt.params.get("v")
            if v in ("v2", "v2beta1"):
                doc = discovery.aggregated(api.catalog, legacy=legacy, api_version=f"apidiscovery.k8s.io/{v}")
                ctype = f"application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
                resp = web.Response(body=orjson.dumps(doc))
                resp.headers["Content-Type"] = ctype
                return resp
        if mt.type == "application/json" and not mt.params.get("as"):
            break
    if legacy:
        return _json(discovery.api_versions(api.server_address))
    return _json(discovery.api_group_list(api.catalog))


async def _readyz(api: APIServer, request: web.Request) -> web.Response:
    from kybernetes.apiserver import healthz

    path = request.path.rstrip("/")
    if path != "/readyz":
        answer = await healthz.single(api.ready_checks, path[len("/readyz/"):])
        if answer is None:
            raise _not_found_path()
        status, body = answer
    else:
        status, body = await healthz.root("readyz", api.ready_checks, request.query,
                                          request.query.getall("exclude", []))
    return web.Response(text=body, status=status, headers={"X-Content-Type-Options": "nosniff"})


async def _resource(api: APIServer, request: web.Request) -> web.StreamResponse:
    info = request["info"]
    s = api.catalog.lookup(info.api_group, info.api_version, info.resource)
    if s is None:
        raise _not_found_path()
    if info.namespace and not s.namespaced:
        raise _not_found_path()
    sub = info.subresource
    if sub and sub not in s.subresources and not (sub == "finalize" and s.resource == "namespaces" and not s.group):
        raise _not_found_path()
    if sub and not info.name:
        raise _not_found_path()
    query = dict(request.query)
    output = negotiation.choose_output(request.headers.get("Accept", ""), allow_protobuf=True)
    if "pretty" in query and query["pretty"].lower() in ("1", "true"):
        output.pretty = True
    r = Request(request, info, s, query, output)
    h = api.handlers
    verb = info.verb
    if verb not in s.verbs and not sub:
        raise errors.method_not_allowed()

    if sub == "binding":
        if verb != "create":
            raise errors.method_not_allowed()
        return await h.bind(r, await _body(request))
    if sub == "token" and s.resource == "serviceaccounts" and not s.group:
        if verb != "create":
            raise errors.method_not_allowed()
        return await _token_request(request, r, await _body(request))
    if sub == "eviction" and s.resource == "pods" and not s.group:
        if verb != "create":
            raise errors.method_not_allowed()
        from kybernetes.apiserver.eviction import evict
        return await evict(h, r, await _body(request), api.catalog.lookup("policy", "v1", "poddisruptionbudgets"))
    if (sub in kubelet_proxy.POD_SUBRESOURCES and s.resource == "pods" or
            sub in kubelet_proxy.NODE_SUBRESOURCES and s.resource == "nodes") and not s.group:
        return await kubelet_proxy.serve(api, request, r)
    if sub and sub not in _READ_SUBRESOURCES | _WRITE_SUBRESOURCES:
        raise _not_found_path()

    if sub == "finalize" and verb != "update" or \
            sub == "ephemeralcontainers" and verb not in ("get", "update", "patch"):
        raise errors.method_not_allowed()
    if verb == "get":
        return await h.get(r)
    if verb == "list":
        return await h.list(r)
    if verb == "watch":
        return await h.watch(r)
    if verb == "create":
        if info.name:
            raise errors.method_not_allowed()
        return await h.create(r, await _body(request))
    if verb == "update":
        return await h.update(r, await _body(request))
    if verb == "patch":
        return await h.patch(r, await request.read(), request.headers.get("Content-Type", ""))
    if verb == "delete":
        raw = await request.read()
        return await h.delete(r, negotiation.decode_body(raw, request.headers.get("Content-Type", "")) if raw else None)
    if verb == "deletecollection":
        raw = await request.read()
        return await h.delete_collection(r, negotiation.decode_body(raw, request.headers.get("Content-Type", "")) if raw else None)
    raise errors.method_not_allowed()


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        raise errors.bad_request("the request body is empty")
    return negotiation.decode_body(raw, request.headers.get("Content-Type", ""))


async def _token_request(request: web.Request, r: Request, body: Any) -> web.Response:
    """POST serviceaccounts/<name>/token: a bound service-account token (TokenRequest)."""
    from kybernetes.apiserver.rest import warning_header
    from kybernetes.auth.authorizer import StatusError
    from kybernetes.auth.serviceaccount_tokens import create_token_request

    sec = request.app.get("security")
    if sec is None:
        raise errors.method_not_allowed()
    try:
        out, warnings = await create_token_request(sec.issuer, body, namespace=r.info.namespace, name=r.info.name,
                                                   lookup=sec.lookup, api_audiences=[sec.issuer.issuer])
    except StatusError as e:
        raise errors.APIError(e.code, e.reason, e.message, details=e.details) from None
    data, ctype = negotiation.encode(out, r.output)
    resp = web.Response(body=data, status=201, content_type=ctype)
    for w in warnings:
        resp.headers.add("Warning", warning_header(w))
    return resp


def _oidc(request: web.Request, path: str) -> web.Response:
    """Service-account issuer discovery (OIDC configuration and the signing keys)."""
    from kybernetes.auth.serviceaccount_tokens import jwks, openid_configuration

    sec = request.app.get("security")
    if sec is None:
        raise _not_found_path()
    if path == "/openid/v1/jwks":
        body, ctype = orjson.dumps(jwks(sec.public_keys)), "application/jwk-set+json"
    else:
        issuer = sec.issuer.issuer
        body = orjson.dumps(openid_configuration(issuer, issuer.rstrip("/") + "/openid/v1/jwks", sec.public_keys))
        ctype = "application/json"
    resp = web.Response(body=body, headers={"Cache-Control": "public, max-age=3600"})
    resp.headers["Content-Type"] = ctype
    return resp
