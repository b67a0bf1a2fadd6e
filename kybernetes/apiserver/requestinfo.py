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
    # the raw selectors of a list/watch/deletecollection, for selector-aware authorization
    field_selector: str = ""
    label_selector: str = ""


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
        verb = "watch" if _truthy(query.get("watch")) else "list"
        # a list or watch of one object by field selector names it (so authorizers and
        # audit see the name), as upstream's RequestInfoFactory does
        name = _exact_name(query.get("fieldSelector"))
        if name:
            info.name = name
    if verb in ("get", "list") and _truthy(query.get("watch")):
        verb = "watch"
    if verb == "delete" and not info.name:
        verb = "deletecollection"
    info.verb = verb
    if verb in ("list", "watch", "deletecollection"):
        info.field_selector = query.get("fieldSelector") or ""
        info.label_selector = query.get("labelSelector") or ""
    return info


def _exact_name(selector: Optional[str]) -> str:
    """The metadata.name a field selector requires, if it is a valid path segment."""
    if not selector:
        return ""
    from kybernetes.api.names import is_path_segment_name
    from kybernetes.api.selectors import SelectorError, parse_field_selector

    try:
        name = parse_field_selector(selector).exact_value("metadata.name")
    except SelectorError:
        return ""
    if not name or is_path_segment_name(name):
        return ""
    return name


def _truthy(v: Optional[str]) -> bool:
    """Upstream's query boolean: present and not "0"/"false" (even empty) is true."""
    from kybernetes.apiserver.queryparams import as_bool

    return as_bool(v)
