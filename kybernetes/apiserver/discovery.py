"""Discovery documents: legacy (/api, /apis, /apis/<g>/<v>) and aggregated (apidiscovery v2)."""

from __future__ import annotations

import hashlib
from typing import Any

from kybernetes.api.catalog import Catalog
from kybernetes.registry.base import Strategy

# subresource -> (verbs, responseKind (group, version, kind) or None = the parent kind)
_SUBRESOURCES: dict[str, tuple[tuple[str, ...], tuple[str, str, str] | None]] = {
    "status": (("get", "patch", "update"), None),
    "scale": (("get", "patch", "update"), ("autoscaling", "v1", "Scale")),
    "binding": (("create",), ("", "v1", "Binding")),
    "eviction": (("create",), ("policy", "v1", "Eviction")),
    "token": (("create",), ("authentication.k8s.io", "v1", "TokenRequest")),
    "approval": (("get", "patch", "update"), None),
    "finalize": (("update",), None),
    "log": (("get",), ("", "v1", "Pod")),
    "exec": (("create", "get"), ("", "v1", "PodExecOptions")),
    "attach": (("create", "get"), ("", "v1", "PodAttachOptions")),
    "portforward": (("create", "get"), ("", "v1", "PodPortForwardOptions")),
    "proxy": (("create", "delete", "get", "patch", "update"), ("", "v1", "PodProxyOptions")),
    "ephemeralcontainers": (("get", "patch", "update"), None),
    "resize": (("get", "patch", "update"), None),
}


def _storage_version_hash(s: Strategy) -> str:
    # a view's objects are stored as its stored resource's (same hash, as upstream)
    group, version, kind = s.group, s.version, s.kind
    if s.stored_as:
        from kybernetes.api.catalog import default_catalog

        stored = default_catalog().lookup(*s.stored_as)
        group, version, kind = stored.group, stored.version, stored.kind
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    import base64

    return base64.b64encode(digest[:8]).decode()


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(catalog: Catalog) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, vs) for g, vs in catalog.groups.items() if g],
    }


def api_group(catalog: Catalog, group: str) -> dict[str, Any] | None:
    versions = catalog.groups.get(group)
    if not versions or not group:
        return None
    entry = _group_entry(group, versions)
    return {"kind": "APIGroup", "apiVersion": "v1", **entry}


def api_resource_list(catalog: Catalog, group: str, version: str) -> dict[str, Any] | None:
    strategies = catalog.resources_in(group, version)
    if not strategies:
        return None
    resources: list[dict[str, Any]] = []
    for s in sorted(strategies, key=lambda s: s.resource):
        r: dict[str, Any] = {
            "name": s.resource,
            "singularName": s.singular,
            "namespaced": s.namespaced,
            "kind": s.kind,
            "verbs": list(s.verbs),
        }
        if s.short_names:
            r["shortNames"] = list(s.short_names)
        if s.categories:
            r["categories"] = list(s.categories)
        r["storageVersionHash"] = _storage_version_hash(s)
        resources.append(r)
        for sub in s.subresources:
            verbs, rk = _SUBRESOURCES.get(sub, (("get",), None))
            e: dict[str, Any] = {
                "name": f"{s.resource}/{sub}",
                "singularName": "",
                "namespaced": s.namespaced,
                "kind": rk[2] if rk else s.kind,
                "verbs": list(verbs),
            }
            if rk and (rk[0], rk[1]) != (s.group, s.version):
                e["group"], e["version"] = rk[0], rk[1]
            resources.append(e)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _aggregated_resource(s: Strategy) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resource": s.resource,
        "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
        "scope": "Namespaced" if s.namespaced else "Cluster",
        "singularResource": s.singular,
        "verbs": list(s.verbs),
    }
    if s.short_names:
        r["shortNames"] = list(s.short_names)
    if s.categories:
        r["categories"] = list(s.categories)
    subs = []
    for sub in s.subresources:
        verbs, rk = _SUBRESOURCES.get(sub, (("get",), None))
        g, v, k = rk if rk else (s.group, s.version, s.kind)
        subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": list(verbs)})
    if subs:
        r["subresources"] = subs
    return r


def aggregated(catalog: Catalog, *, legacy: bool, api_version: str = "apidiscovery.k8s.io/v2") -> dict[str, Any]:
    """APIGroupDiscoveryList for /api (legacy=True, the core group) or /apis."""
    items = []
    for group, versions in catalog.groups.items():
        if (group == "") != legacy:
            continue
        vs = []
        for v in versions:
            vs.append({
                "version": v,
                "resources": [_aggregated_resource(s) for s in sorted(catalog.resources_in(group, v), key=lambda s: s.resource)],
                "freshness": "Current",
            })
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": vs})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}
