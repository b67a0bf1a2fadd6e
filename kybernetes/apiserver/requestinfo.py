"""Turn a request path and method into Kubernetes request attributes (verb, group,
version, resource, namespace, name, subresource), as upstream's RequestInfoFactory does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import unquote

_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass
class RequestInfo:
    is_resource_request: bool
    path: str
    verb: str
    api_prefix: str = ""  # "api" or "apis"
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)


def parse(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """Parse `path` the way upstream does: /api/v1/..., /apis/<group>/<version>/...,
    with optional namespaces/<ns>/ and watch verbs from ?watch=true."""
    method = method.upper()
    segs = [unquote(s) for s in path.strip("/").split("/") if s != ""]
    info = RequestInfo(False, path, method.lower())
    if not segs or segs[0] not in ("api", "apis"):
        return info
    info.api_prefix = segs[0]
    rest = segs[1:]
    if info.api_prefix == "api":
        if not rest:
            return info
        info.api_version = rest[0]
        rest = rest[1:]
    else:
        if len(rest) < 2:
            if rest:
                info.api_group = rest[0]
            return info
        info.api_group, info.api_version = rest[0], rest[1]
        rest = rest[2:]
    if not rest:
        return info
    info.is_resource_request = True
    verb = _METHOD_VERBS.get(method, "get" if method in ("GET", "HEAD") else method.lower())
    # deprecated /watch/ prefix
    if rest[0] == "watch":
        verb = "watch"
        rest = rest[1:]
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            info.namespace = rest[1]
            rest = rest[2:]
        # else: the namespace object itself (or its status/finalize)
    info.parts = rest
    if rest:
        info.resource = rest[0]
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) >= 3:
        info.subresource = rest[2]
    if method in ("GET", "HEAD") and not info.name and verb == "get":
        verb = "list"
    if verb in ("get", "list") and _truthy(query.get("watch")):
        verb = "watch"
    if verb == "delete" and not info.name:
        verb = "deletecollection"
    info.verb = verb
    return info


def _truthy(v: Optional[str]) -> bool:
    """Upstream's query boolean: present and not "0"/"false" (even empty) is true."""
    from kybernetes.apiserver.queryparams import as_bool

    return as_bool(v)
