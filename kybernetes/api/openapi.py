"""The OpenAPI documents kubectl reads: /openapi/v2 and /openapi/v3.

Documents are built for a given set of served resources, lazily (on the first
request for them, never at start-up) and cached as serialized bytes together
with their content hash, so the HTTP layer can answer with ETags and serve
`/openapi/v3/<path>?hash=<HASH>` as immutable.

What kubectl relies on:
- `kubectl explain` (OpenAPI v3): finds the kind through the
  `x-kubernetes-group-version-kind` of an operation on the resource's list or
  item path, then the schema in components.schemas carrying the same GVK.
- `kubectl create/apply -f` with --validate=strict: if the PATCH operation of the
  kind lists a `fieldValidation` query parameter, kubectl leaves validation to the
  server (it sends fieldValidation=Strict); otherwise it validates client-side.
- `kubectl apply`: computes a strategic merge patch from the v3 schema when the
  kind's PATCH operation accepts application/strategic-merge-patch+json.
- client-go fetches /openapi/v2 only as protobuf (`openapi_v2_protobuf`; Accept
  `V2_PROTOBUF_MEDIA_TYPE`, answer with Content-Type `V2_PROTOBUF_CONTENT_TYPE`);
  kubectl uses it for `explain --output=plaintext-openapiv2` and when v3 is missing.

Serving: /openapi/v3 -> `openapi_v3_index`; /openapi/v3/<path> ->
`openapi_v3_document(...)` (404 when None; when the request's `hash` query equals
`doc.hash`, the answer may be cached as immutable); /openapi/v2 -> JSON or protobuf.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import orjson

from kybernetes.api import schema as _schema

Obj = dict[str, Any]

TITLE = "Kubernetes"
VERSION = _schema.KUBERNETES_VERSION

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
PATCH = META + "Patch"
WATCH_EVENT = META + "WatchEvent"
API_RESOURCE_LIST = META + "APIResourceList"
API_GROUP = META + "APIGroup"
API_GROUP_LIST = META + "APIGroupList"
API_VERSIONS = META + "APIVersions"
VERSION_INFO = "io.k8s.apimachinery.pkg.version.Info"
# Always present in a group-version document (responses and bodies of every resource).
_COMMON_DEFS = (STATUS, DELETE_OPTIONS, PATCH, WATCH_EVENT, API_RESOURCE_LIST)

DEFAULT_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ServedResource:
    """One resource the API server serves, as the OpenAPI documents describe it."""

    group: str
    version: str
    kind: str
    resource: str  # plural, e.g. "deployments"
    namespaced: bool = True
    verbs: tuple[str, ...] = DEFAULT_VERBS
    subresources: tuple[str, ...] = ()  # "status", "scale", "log", "exec", ...
    # Schema definition name, when it is not found by GVK (e.g. served under another name).
    definition: Optional[str] = None
    strategic_merge_patch: bool = True  # False for custom resources

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def v3_path(self) -> str:
        """The /openapi/v3 discovery key of this resource's group-version."""
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"

    @property
    def url_prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


ResourceLike = Union[ServedResource, Mapping[str, Any]]


@dataclass(frozen=True)
class OpenAPIDocument:
    """A serialized document and its content hash (SHA-512, upper-case hex, as upstream)."""

    body: bytes
    hash: str

    @property
    def etag(self) -> str:
        return f'"{self.hash}"'


# ---------------------------------------------------------------- public API
def openapi_v2(resources: Iterable[ResourceLike]) -> bytes:
    """The Swagger 2.0 document (/openapi/v2, JSON) for the served resources."""
    return openapi_v2_document(resources).body


def openapi_v2_document(resources: Iterable[ResourceLike]) -> OpenAPIDocument:
    """Like `openapi_v2`, with the hash for the ETag."""
    return _v2_doc(_key(resources))


def openapi_v3_index(resources: Iterable[ResourceLike]) -> bytes:
    """The /openapi/v3 discovery document: every path with its hashed URL."""
    return openapi_v3_index_document(resources).body


def openapi_v3_index_document(resources: Iterable[ResourceLike]) -> OpenAPIDocument:
    return _v3_index(_key(resources))


def openapi_v3_paths(resources: Iterable[ResourceLike]) -> list[str]:
    """The paths /openapi/v3 lists ("api", "api/v1", "apis", "apis/apps", "apis/apps/v1", ...)."""
    return list(_v3_path_table(_key(resources)))


def openapi_v3_group_version(resources: Iterable[ResourceLike], path: str) -> bytes:
    """The OpenAPI 3.0 document of one /openapi/v3 path, e.g. "apis/apps/v1" or "api/v1".

    Raises KeyError for a path that is not served (the HTTP layer answers 404)."""
    doc = openapi_v3_document(resources, path)
    if doc is None:
        raise KeyError(path)
    return doc.body


def openapi_v3_document(resources: Iterable[ResourceLike], path: str) -> Optional[OpenAPIDocument]:
    """Like `openapi_v3_group_version`, with the hash; None for an unknown path."""
    key = _key(resources)
    if path.strip("/") not in _v3_path_table(key):
        return None
    return _v3_doc(key, path.strip("/"))


def clear_cache() -> None:
    """Forget built documents (e.g. after CRDs change the served set)."""
    for fn in (_v2_doc, _v2_proto, _v3_index, _v3_path_table, _v3_doc):
        fn.cache_clear()


# ---------------------------------------------------------------- helpers
def _key(resources: Iterable[ResourceLike]) -> tuple[ServedResource, ...]:
    out = set()
    for r in resources:
        if not isinstance(r, ServedResource):
            d = dict(r)
            for k in ("verbs", "subresources"):
                if k in d:
                    d[k] = tuple(d[k])
            r = ServedResource(**d)
        out.add(r)
    return tuple(sorted(out, key=lambda r: (r.group, r.version, r.resource, r.kind, repr(r))))


def _finish(doc: Obj) -> OpenAPIDocument:
    body = orjson.dumps(doc)
    return OpenAPIDocument(body, hashlib.sha512(body).hexdigest().upper())


def _kind_def(r: ServedResource) -> Optional[str]:
    if r.definition:
        return r.definition if r.definition in _schema.raw_definitions() else None
    return _schema.definition_for(r.group, r.version, r.kind)


def _camel_group(group: str) -> str:
    """Upstream's operation-id spelling of a group: "" -> Core, rbac.authorization.k8s.io -> RbacAuthorization."""
    if not group:
        return "Core"
    g = group[: -len(".k8s.io")] if group.endswith(".k8s.io") else group
    return "".join(p[:1].upper() + p[1:] for p in g.replace("-", ".").split(".") if p)


def _tag(group: str, version: str) -> str:
    c = _camel_group(group)
    return f"{c[:1].lower()}{c[1:]}_{version}"


def _op_prefix(r: ServedResource) -> str:
    return _camel_group(r.group) + r.version[:1].upper() + r.version[1:]


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


# ---------------------------------------------------------------- parameters
@dataclass(frozen=True)
class _Param:
    name: str
    where: str  # query, path
    type: str
    description: str
    required: bool = False


_P = {
    "pretty": _Param("pretty", "query", "string", "If 'true', the output is pretty printed."),
    "name": _Param("name", "path", "string", "name of the object", True),
    "namespace": _Param("namespace", "path", "string", "object name and auth scope, such as for teams and projects", True),
    "path": _Param("path", "path", "string", "path to the resource", True),
    "allowWatchBookmarks": _Param("allowWatchBookmarks", "query", "boolean", "Ask for BOOKMARK watch events; the server may send them at its discretion."),
    "continue": _Param("continue", "query", "string", "Continue token from a previous limited list, to fetch the next chunk."),
    "fieldSelector": _Param("fieldSelector", "query", "string", "Restrict the returned objects by their fields. Defaults to everything."),
    "labelSelector": _Param("labelSelector", "query", "string", "Restrict the returned objects by their labels. Defaults to everything."),
    "limit": _Param("limit", "query", "integer", "Maximum number of objects to return; more are announced by a continue token."),
    "resourceVersion": _Param("resourceVersion", "query", "string", "Constrains which resource versions the request may be served from. Defaults to unset."),
    "resourceVersionMatch": _Param("resourceVersionMatch", "query", "string", "How resourceVersion applies to list calls (Exact or NotOlderThan). Defaults to unset."),
    "sendInitialEvents": _Param("sendInitialEvents", "query", "boolean", "With watch=true, start the stream with synthetic ADDED events for the current state, ended by a BOOKMARK."),
    "timeoutSeconds": _Param("timeoutSeconds", "query", "integer", "Timeout for the list/watch call."),
    "watch": _Param("watch", "query", "boolean", "Watch for changes to the described resources and stream them as add, update and remove notifications."),
    "dryRun": _Param("dryRun", "query", "string", "When present, modifications are not persisted. Valid value: All (run every stage)."),
    "fieldManager": _Param("fieldManager", "query", "string", "Name of the actor making these changes, recorded in managedFields (at most 128 printable characters)."),
    "fieldValidation": _Param("fieldValidation", "query", "string", "How to treat unknown or duplicate fields in the request object: Ignore (drop silently), Warn (drop with a warning header per field; the default) or Strict (fail with BadRequest)."),
    "force": _Param("force", "query", "boolean", "Force an apply request: re-acquire fields owned by other managers. Must be unset for other patches."),
    "gracePeriodSeconds": _Param("gracePeriodSeconds", "query", "integer", "Seconds before the object is deleted; zero deletes immediately. Defaults to the per-kind value."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": _Param("ignoreStoreReadErrorWithClusterBreakingPotential", "query", "boolean", "Delete an object that cannot be read from storage (unsafe; skips finalizers and preconditions)."),
    "orphanDependents": _Param("orphanDependents", "query", "boolean", "Deprecated: use propagationPolicy. Whether dependents should be orphaned."),
    "propagationPolicy": _Param("propagationPolicy", "query", "string", "Whether and how garbage collection is performed: Orphan, Background or Foreground."),
    # pods/log
    "container": _Param("container", "query", "string", "The container for which to stream logs or run the command."),
    "follow": _Param("follow", "query", "boolean", "Follow the log stream of the pod."),
    "insecureSkipTLSVerifyBackend": _Param("insecureSkipTLSVerifyBackend", "query", "boolean", "Do not verify the serving certificate of the backend the log is read from."),
    "limitBytes": _Param("limitBytes", "query", "integer", "Number of bytes to read from the server before terminating the log output."),
    "previous": _Param("previous", "query", "boolean", "Return the logs of the previously terminated container."),
    "sinceSeconds": _Param("sinceSeconds", "query", "integer", "Relative time in seconds before now from which to show logs."),
    "sinceTime": _Param("sinceTime", "query", "string", "RFC 3339 timestamp from which to show logs."),
    "stream": _Param("stream", "query", "string", "Which log stream to return: All, Stdout or Stderr."),
    "tailLines": _Param("tailLines", "query", "integer", "Number of lines from the end of the logs to show."),
    "timestamps": _Param("timestamps", "query", "boolean", "Prefix every log line with its RFC 3339 timestamp."),
    # exec / attach / portforward
    "command": _Param("command", "query", "string", "The command to execute; repeat the parameter for each argument."),
    "stdin": _Param("stdin", "query", "boolean", "Redirect the standard input stream of the container."),
    "stdout": _Param("stdout", "query", "boolean", "Redirect the standard output stream of the container."),
    "stderr": _Param("stderr", "query", "boolean", "Redirect the standard error stream of the container."),
    "tty": _Param("tty", "query", "boolean", "Allocate a terminal for the call."),
    "ports": _Param("ports", "query", "integer", "List of ports to forward."),
    "proxyPath": _Param("path", "query", "string", "Path is the URL path to use for the current proxy request."),
}

_LIST_Q = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
           "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE_Q = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_Q = _WRITE_Q + ("force",)
_DELETE_Q = ("dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential",
             "orphanDependents", "propagationPolicy")
_DELETECOLLECTION_Q = ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds",
                       "ignoreStoreReadErrorWithClusterBreakingPotential", "labelSelector", "limit",
                       "orphanDependents", "propagationPolicy", "resourceVersion",
                       "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds")
_LOG_Q = ("container", "follow", "insecureSkipTLSVerifyBackend", "limitBytes", "previous",
          "sinceSeconds", "sinceTime", "stream", "tailLines", "timestamps")
_EXEC_Q = ("command", "container", "stderr", "stdin", "stdout", "tty")
_ATTACH_Q = ("container", "stderr", "stdin", "stdout", "tty")

_OBJ_MEDIA = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_LIST_MEDIA = _OBJ_MEDIA + ("application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")
_PATCH_MEDIA = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")
_STRING = "<string>"  # response / body marker for a plain string schema


# ---------------------------------------------------------------- operations (shared shape)
@dataclass
class _Op:
    method: str
    op_id: str
    description: str
    action: Optional[str]
    gvk: Optional[dict[str, str]]
    tag: str
    query: Sequence[str] = ()
    body: Optional[str] = None  # definition name, or _STRING
    consumes: Sequence[str] = ("*/*",)
    responses: Sequence[tuple[str, str, Optional[str]]] = ()  # (code, description, definition)
    produces: Sequence[str] = _OBJ_MEDIA


@dataclass
class _PathItem:
    path: str
    params: Sequence[str]
    ops: list[_Op]


_SUBRESOURCE_SUFFIX = {
    "status": "Status", "scale": "Scale", "binding": "Binding", "eviction": "Eviction",
    "ephemeralcontainers": "Ephemeralcontainers", "resize": "Resize", "log": "Log",
    "exec": "Exec", "attach": "Attach", "portforward": "Portforward", "proxy": "Proxy",
    "token": "Token", "finalize": "Finalize", "approval": "Approval",
}
_SUBRESOURCE_KIND = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}
_CONNECT_KIND = {
    "exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions",
}
_PROXY_KIND = {"Pod": "PodProxyOptions", "Service": "ServiceProxyOptions", "Node": "NodeProxyOptions"}


def _resource_paths(r: ServedResource, kind_def: str) -> tuple[list[_PathItem], set[str]]:
    """Path items for one resource, and the definitions they reference."""
    refs: set[str] = {kind_def}
    if r.definition:
        list_def = r.definition + "List" if r.definition + "List" in _schema.raw_definitions() else None
    else:
        list_def = _schema.definition_for(r.group, r.version, r.kind + "List")
    if list_def:
        refs.add(list_def)
    verbs = set(r.verbs)
    gvk = _gvk(r.group, r.version, r.kind)
    tag = _tag(r.group, r.version)
    op = _op_prefix(r)
    ns = "Namespaced" if r.namespaced else ""
    base = r.url_prefix + ("/namespaces/{namespace}" if r.namespaced else "")
    coll_params = ("namespace", "pretty") if r.namespaced else ("pretty",)
    item_params = ("name",) + coll_params
    items: list[_PathItem] = []

    ok = (("200", "OK", kind_def),)
    written = (("200", "OK", kind_def), ("201", "Created", kind_def))
    deleted = (("200", "OK", STATUS), ("202", "Accepted", STATUS))

    coll_ops: list[_Op] = []
    if "list" in verbs and list_def:
        coll_ops.append(_Op("get", f"list{op}{ns}{r.kind}", f"list or watch objects of kind {r.kind}",
                            "list", gvk, tag, _LIST_Q, responses=(("200", "OK", list_def),), produces=_LIST_MEDIA))
    if "create" in verbs:
        coll_ops.append(_Op("post", f"create{op}{ns}{r.kind}", f"create a {r.kind}", "post", gvk, tag,
                            _WRITE_Q, body=kind_def,
                            responses=written + (("202", "Accepted", kind_def),)))
    if "deletecollection" in verbs:
        coll_ops.append(_Op("delete", f"delete{op}Collection{ns}{r.kind}", f"delete collection of {r.kind}",
                            "deletecollection", gvk, tag, _DELETECOLLECTION_Q, body=DELETE_OPTIONS,
                            responses=(("200", "OK", STATUS),)))
    if coll_ops:
        items.append(_PathItem(f"{base}/{r.resource}", coll_params, coll_ops))

    item_ops: list[_Op] = []
    if "get" in verbs:
        item_ops.append(_Op("get", f"read{op}{ns}{r.kind}", f"read the specified {r.kind}", "get", gvk, tag,
                            responses=ok))
    if "update" in verbs:
        item_ops.append(_Op("put", f"replace{op}{ns}{r.kind}", f"replace the specified {r.kind}", "put", gvk,
                            tag, _WRITE_Q, body=kind_def, responses=written))
    if "patch" in verbs:
        item_ops.append(_Op("patch", f"patch{op}{ns}{r.kind}", f"partially update the specified {r.kind}",
                            "patch", gvk, tag, _PATCH_Q, body=PATCH, consumes=_patch_media(r),
                            responses=written))
    if "delete" in verbs:
        item_ops.append(_Op("delete", f"delete{op}{ns}{r.kind}", f"delete a {r.kind}", "delete", gvk, tag,
                            _DELETE_Q, body=DELETE_OPTIONS, responses=deleted))
    if item_ops:
        items.append(_PathItem(f"{base}/{r.resource}/{{name}}", item_params, item_ops))

    if r.namespaced and "list" in verbs and list_def:
        items.append(_PathItem(f"{r.url_prefix}/{r.resource}", ("pretty",), [
            _Op("get", f"list{op}{r.kind}ForAllNamespaces", f"list or watch objects of kind {r.kind}", "list",
                gvk, tag, _LIST_Q, responses=(("200", "OK", list_def),), produces=_LIST_MEDIA)]))

    for sub in r.subresources:
        items.extend(_subresource_paths(r, sub, kind_def, base, item_params, refs))
    return items, refs


def _patch_media(r: ServedResource) -> tuple[str, ...]:
    if r.strategic_merge_patch:
        return _PATCH_MEDIA
    return tuple(m for m in _PATCH_MEDIA if "strategic" not in m)


def _subresource_paths(r: ServedResource, sub: str, kind_def: str, base: str,
                       item_params: Sequence[str], refs: set[str]) -> list[_PathItem]:
    tag = _tag(r.group, r.version)
    ns = "Namespaced" if r.namespaced else ""
    name = f"{_op_prefix(r)}{ns}{r.kind}{_SUBRESOURCE_SUFFIX.get(sub, sub[:1].upper() + sub[1:])}"
    path = f"{base}/{r.resource}/{{name}}/{sub}"
    what = f"{sub} of the specified {r.kind}"

    if sub in ("exec", "attach", "portforward", "proxy"):
        opt_kind = _PROXY_KIND.get(r.kind, "PodProxyOptions") if sub == "proxy" else _CONNECT_KIND[sub]
        gvk = _gvk("", "v1", opt_kind)
        query = {"exec": _EXEC_Q, "attach": _ATTACH_Q, "portforward": ("ports",), "proxy": ("proxyPath",)}[sub]
        methods = ("get", "post") if sub != "proxy" else ("delete", "get", "head", "options", "patch", "post", "put")
        out = []
        for p, q in ((path, query),) + (((path + "/{path}", ()),) if sub == "proxy" else ()):
            ops = [_Op(m, f"connect{_op_prefix(r)}{m.capitalize()}{name[len(_op_prefix(r)):]}"
                          + ("WithPath" if p.endswith("{path}") else ""),
                       f"connect {m.upper()} requests to {sub} of {r.kind}", "connect", gvk, tag, q,
                       consumes=("*/*",), responses=(("200", "OK", _STRING),), produces=("*/*",))
                   for m in methods]
            params = ("name",) + (("path",) if p.endswith("{path}") else ()) + tuple(x for x in item_params if x != "name" and x != "pretty")
            out.append(_PathItem(p, params, ops))
        return out

    if sub == "log":
        return [_PathItem(path, item_params, [
            _Op("get", f"read{name}", f"read log of the specified {r.kind}", "get",
                _gvk(r.group, r.version, r.kind), tag, _LOG_Q, responses=(("200", "OK", _STRING),),
                produces=("text/plain", "application/json", "application/yaml", "application/vnd.kubernetes.protobuf"))])]

    if sub in _SUBRESOURCE_KIND:
        g, v, k = _SUBRESOURCE_KIND[sub]
        sub_def = _schema.definition_for(g, v, k)
        if sub_def is None:
            return []
        refs.add(sub_def)
        gvk = _gvk(g, v, k)
    else:
        sub_def, gvk = kind_def, _gvk(r.group, r.version, r.kind)

    if sub in ("binding", "eviction", "token"):
        return [_PathItem(path, item_params, [
            _Op("post", f"create{name}", f"create {sub} of a {r.kind}", "post", gvk, tag, _WRITE_Q, body=sub_def,
                responses=(("200", "OK", sub_def), ("201", "Created", sub_def), ("202", "Accepted", sub_def)))])]

    written = (("200", "OK", sub_def), ("201", "Created", sub_def))
    ops = []
    if sub != "finalize":
        ops.append(_Op("get", f"read{name}", f"read {what}", "get", gvk, tag, responses=(("200", "OK", sub_def),)))
    ops.append(_Op("put", f"replace{name}", f"replace {what}", "put", gvk, tag, _WRITE_Q, body=sub_def,
                   responses=written))
    if sub != "finalize":
        ops.append(_Op("patch", f"patch{name}", f"partially update {what}", "patch", gvk, tag, _PATCH_Q,
                       body=PATCH, consumes=_patch_media(r), responses=written))
    return [_PathItem(path, item_params, ops)]


def _discovery_paths(key: tuple[ServedResource, ...]) -> dict[str, _PathItem]:
    """The non-resource paths, keyed by their /openapi/v3 name: api, apis, apis/<g>, version."""
    out = {
        "api": _PathItem("/api/", (), [_Op("get", "getCoreAPIVersions", "get available API versions", None, None,
                                           "core", responses=(("200", "OK", API_VERSIONS),))]),
        "apis": _PathItem("/apis/", (), [_Op("get", "getAPIVersions", "get available API versions", None, None,
                                             "apis", responses=(("200", "OK", API_GROUP_LIST),))]),
        "version": _PathItem("/version/", (), [_Op("get", "getCodeVersion", "get the version information for this server",
                                                   None, None, "version", responses=(("200", "OK", VERSION_INFO),),
                                                   produces=("application/json",))]),
    }
    for group in sorted({r.group for r in key if r.group}):
        c = _camel_group(group)
        out[f"apis/{group}"] = _PathItem(f"/apis/{group}/", (), [
            _Op("get", f"get{c}APIGroup", "get information of a group", None, None, c[:1].lower() + c[1:],
                responses=(("200", "OK", API_GROUP),))])
    return out


def _gv_root(group: str, version: str) -> _PathItem:
    c = _camel_group(group) + version[:1].upper() + version[1:]
    prefix = f"/apis/{group}/{version}/" if group else f"/api/{version}/"
    return _PathItem(prefix, (), [_Op("get", f"get{c}APIResources", "get available resources", None, None,
                                      _tag(group, version), responses=(("200", "OK", API_RESOURCE_LIST),))])


def _group_versions(key: tuple[ServedResource, ...]) -> dict[str, list[tuple[ServedResource, str]]]:
    """Served resources with a known schema, grouped by their /openapi/v3 path."""
    out: dict[str, list[tuple[ServedResource, str]]] = {}
    for r in key:
        d = _kind_def(r)
        if d is None:
            continue  # no schema to describe it with (e.g. a custom resource)
        out.setdefault(r.v3_path, []).append((r, d))
    return out


def _gv_items(group: str, version: str, served: list[tuple[ServedResource, str]]) -> tuple[list[_PathItem], set[str]]:
    items = [_gv_root(group, version)]
    refs: set[str] = set(_COMMON_DEFS)
    for r, d in served:
        its, rf = _resource_paths(r, d)
        items.extend(its)
        refs |= rf
    return items, refs


# ---------------------------------------------------------------- rendering: v2
def _param_v2(p: _Param) -> Obj:
    out: Obj = {"uniqueItems": True, "type": p.type, "name": p.name, "in": p.where, "description": p.description}
    if p.required:
        out["required"] = True
    return out


@functools.cache
def _param_v2_cached(name: str) -> Obj:
    return _param_v2(_P[name])


def _op_v2(o: _Op) -> Obj:
    ref = _schema.REF_PREFIX["v2"]
    params = [_param_v2_cached(q) for q in o.query]
    if o.body is not None:
        params.insert(0, {"name": "body", "in": "body", "required": True, "schema": {"$ref": ref + o.body}})
    responses: Obj = {}
    for code, desc, d in o.responses:
        resp: Obj = {"description": desc}
        if d == _STRING:
            resp["schema"] = {"type": "string"}
        elif d is not None:
            resp["schema"] = {"$ref": ref + d}
        responses[code] = resp
    responses["401"] = {"description": "Unauthorized"}
    out: Obj = {
        "description": o.description,
        "consumes": list(o.consumes),
        "produces": list(o.produces),
        "schemes": ["https"],
        "tags": [o.tag],
        "operationId": o.op_id,
        "responses": responses,
    }
    if params:
        out["parameters"] = params
    if o.action:
        out["x-kubernetes-action"] = o.action
    if o.gvk:
        out["x-kubernetes-group-version-kind"] = o.gvk
    return out


def _path_v2(item: _PathItem) -> Obj:
    out: Obj = {o.method: _op_v2(o) for o in item.ops}
    if item.params:
        out["parameters"] = [_param_v2_cached(p) for p in item.params]
    return out


@functools.lru_cache(maxsize=4)
def _v2_doc(key: tuple[ServedResource, ...]) -> OpenAPIDocument:
    paths: Obj = {}
    refs: set[str] = set(_COMMON_DEFS)
    for item in _discovery_paths(key).values():
        paths[item.path] = _path_v2(item)
        refs |= {d for o in item.ops for _, _, d in o.responses if d and d != _STRING}
    for gvpath, served in sorted(_group_versions(key).items()):
        r0 = served[0][0]
        items, rf = _gv_items(r0.group, r0.version, served)
        refs |= rf
        for item in items:
            paths[item.path] = _path_v2(item)
    defs = _schema.definitions("v2")
    doc = {
        "swagger": "2.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": paths,
        "definitions": {name: defs[name] for name in _schema.refs_closure(refs)},
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey",
                                                "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }
    return _finish(doc)


# ---------------------------------------------------------------- rendering: v3
@functools.cache
def _param_v3_cached(name: str) -> Obj:
    p = _P[name]
    out: Obj = {"name": p.name, "in": p.where, "description": p.description,
                "schema": {"type": p.type, "uniqueItems": True}}
    if p.required:
        out["required"] = True
    return out


def _content(media: Sequence[str], d: str) -> Obj:
    schema = {"type": "string"} if d == _STRING else {"$ref": _schema.REF_PREFIX["v3"] + d}
    return {m: {"schema": schema} for m in media}


def _op_v3(o: _Op) -> Obj:
    out: Obj = {"description": o.description, "operationId": o.op_id}
    if o.query:
        out["parameters"] = [_param_v3_cached(q) for q in o.query]
    if o.body is not None:
        out["requestBody"] = {"content": _content(o.consumes, o.body), "required": True}
    responses: Obj = {}
    for code, desc, d in o.responses:
        resp: Obj = {"description": desc}
        if d is not None:
            resp["content"] = _content(o.produces, d)
        responses[code] = resp
    responses["401"] = {"description": "Unauthorized"}
    out["responses"] = responses
    out["tags"] = [o.tag]
    if o.action:
        out["x-kubernetes-action"] = o.action
    if o.gvk:
        out["x-kubernetes-group-version-kind"] = o.gvk
    return out


def _path_v3(item: _PathItem) -> Obj:
    out: Obj = {o.method: _op_v3(o) for o in item.ops}
    if item.params:
        out["parameters"] = [_param_v3_cached(p) for p in item.params]
    return out


def _v3_render(items: list[_PathItem], refs: set[str]) -> OpenAPIDocument:
    for item in items:
        for o in item.ops:
            refs |= {d for _, _, d in o.responses if d and d != _STRING}
    defs = _schema.definitions("v3")
    doc = {
        "openapi": "3.0.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": {item.path: _path_v3(item) for item in items},
        "components": {
            "schemas": {name: defs[name] for name in _schema.refs_closure(refs)},
            "securitySchemes": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey",
                                                "name": "authorization", "in": "header"}},
        },
    }
    return _finish(doc)


@functools.lru_cache(maxsize=4)
def _v3_path_table(key: tuple[ServedResource, ...]) -> dict[str, Any]:
    """Every /openapi/v3 path -> what it is built from (sorted, as upstream lists them)."""
    table: dict[str, Any] = dict(_discovery_paths(key))
    for gvpath, served in _group_versions(key).items():
        table[gvpath] = served
    return dict(sorted(table.items()))


@functools.lru_cache(maxsize=256)
def _v3_doc(key: tuple[ServedResource, ...], path: str) -> OpenAPIDocument:
    source = _v3_path_table(key)[path]
    if isinstance(source, _PathItem):
        return _v3_render([source], set())
    r0 = source[0][0]
    items, refs = _gv_items(r0.group, r0.version, source)
    return _v3_render(items, refs)


@functools.lru_cache(maxsize=4)
def _v3_index(key: tuple[ServedResource, ...]) -> OpenAPIDocument:
    paths = {
        path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={_v3_doc(key, path).hash}"}
        for path in _v3_path_table(key)
    }
    return _finish({"paths": paths})


# ---------------------------------------------------------------- v2 as protobuf
# client-go asks for /openapi/v2 only in this encoding (gnostic's openapi_v2.Document);
# a JSON answer makes kubectl fail with "proto: cannot parse invalid wire-format data".
# kubectl falls back to v2 for `explain --output=plaintext-openapiv2` and when the v3
# documents are unavailable (client-side validation, apply patch computation).
V2_PROTOBUF_MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # as clients Accept it
# What to answer with: '@' is not valid in a Content-Type, and Go's mime parser rejects it.
V2_PROTOBUF_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def openapi_v2_protobuf(resources: Iterable[ResourceLike]) -> bytes:
    """The /openapi/v2 document in the protobuf encoding client-go requests."""
    return openapi_v2_protobuf_document(resources).body


def openapi_v2_protobuf_document(resources: Iterable[ResourceLike]) -> OpenAPIDocument:
    return _v2_proto(_key(resources))


@functools.lru_cache(maxsize=4)
def _v2_proto(key: tuple[ServedResource, ...]) -> OpenAPIDocument:
    body = _pb_document(orjson.loads(_v2_doc(key).body))
    return OpenAPIDocument(body, hashlib.sha512(body).hexdigest().upper())


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, embedded messages)."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _s(field: int, value: Optional[str]) -> bytes:
    return _ld(field, value.encode()) if value else b""


def _b(field: int, value: Any) -> bytes:
    return _varint(field << 3) + b"\x01" if value else b""


def _named(field: int, name: str, value: bytes) -> bytes:
    """A Named* pair message: name = 1, value = 2."""
    return _ld(field, _s(1, name) + _ld(2, value))


def _pb_extensions(field: int, obj: Obj) -> bytes:
    # Vendor extensions travel as YAML text; JSON is valid YAML.
    return b"".join(_named(field, k, _s(2, orjson.dumps(v).decode()))
                    for k, v in obj.items() if k.startswith("x-"))


def _pb_schema(s: Obj) -> bytes:
    out = [_s(1, s.get("$ref")), _s(2, s.get("format")), _s(4, s.get("description"))]
    out += [_s(19, r) for r in s.get("required") or ()]
    addl = s.get("additionalProperties")
    if isinstance(addl, dict):
        out.append(_ld(21, _ld(1, _pb_schema(addl))))
    elif isinstance(addl, bool):
        out.append(_ld(21, _varint(2 << 3) + (b"\x01" if addl else b"\x00")))
    if s.get("type"):
        out.append(_ld(22, _s(1, s["type"])))
    if isinstance(s.get("items"), dict):
        out.append(_ld(23, _ld(1, _pb_schema(s["items"]))))
    out += [_ld(24, _pb_schema(x)) for x in s.get("allOf") or ()]
    props = s.get("properties")
    if props:
        out.append(_ld(25, b"".join(_named(1, k, _pb_schema(v)) for k, v in props.items())))
    out.append(_pb_extensions(31, s))
    return b"".join(out)


def _pb_param(p: Obj) -> bytes:
    if p.get("in") == "body":
        body = (_s(1, p.get("description")) + _s(2, p["name"]) + _s(3, "body") + _b(4, p.get("required"))
                + _ld(5, _pb_schema(p["schema"])))
        return _ld(1, _ld(1, body))
    if p.get("in") == "path":
        sub = (_b(1, p.get("required")) + _s(2, "path") + _s(3, p.get("description")) + _s(4, p["name"])
               + _s(5, p.get("type")) + _b(19, p.get("uniqueItems")))
        return _ld(1, _ld(2, _ld(4, sub)))
    sub = (_b(1, p.get("required")) + _s(2, "query") + _s(3, p.get("description")) + _s(4, p["name"])
           + _s(6, p.get("type")) + _b(20, p.get("uniqueItems")))
    return _ld(1, _ld(2, _ld(3, sub)))


def _pb_operation(o: Obj) -> bytes:
    out = [_s(1, t) for t in o.get("tags") or ()]
    out += [_s(3, o.get("description")), _s(5, o.get("operationId"))]
    out += [_s(6, m) for m in o.get("produces") or ()]
    out += [_s(7, m) for m in o.get("consumes") or ()]
    out += [_ld(8, _pb_param(p)) for p in o.get("parameters") or ()]
    responses = b""
    for code, r in (o.get("responses") or {}).items():
        resp = _s(1, r.get("description"))
        if "schema" in r:
            resp += _ld(2, _ld(1, _pb_schema(r["schema"])))
        responses += _named(1, code, _ld(1, resp))
    out.append(_ld(9, responses))
    out += [_s(10, x) for x in o.get("schemes") or ()]
    out.append(_pb_extensions(13, o))
    return b"".join(out)


_PB_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _pb_document(doc: Obj) -> bytes:
    paths = b""
    for path, item in doc["paths"].items():
        pi = b"".join(_ld(_PB_METHODS[m], _pb_operation(item[m])) for m in _PB_METHODS if m in item)
        pi += b"".join(_ld(9, _pb_param(p)) for p in item.get("parameters") or ())
        paths += _named(2, path, pi)
    defs = b"".join(_named(1, name, _pb_schema(s)) for name, s in doc["definitions"].items())
    sec_defs = b""
    for name, d in doc.get("securityDefinitions", {}).items():
        api_key = _s(1, d.get("type")) + _s(2, d.get("name")) + _s(3, d.get("in")) + _s(4, d.get("description"))
        sec_defs += _named(1, name, _ld(2, api_key))
    security = b"".join(
        _ld(12, b"".join(_named(1, k, b"".join(_s(1, x) for x in v)) for k, v in req.items()))
        for req in doc.get("security") or ())
    info = doc["info"]
    return (_s(1, doc["swagger"]) + _ld(2, _s(1, info["title"]) + _s(2, info["version"]))
            + _ld(8, paths) + _ld(9, defs) + security + _ld(13, sec_defs))
