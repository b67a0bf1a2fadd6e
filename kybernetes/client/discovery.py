"""Discovery: which resources the server serves, from aggregated discovery
(apidiscovery.k8s.io/v2) when offered, else the legacy per-group-version documents."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from kybernetes.client.errors import ClientError, status_error
from kybernetes.client.rest import decode_body

if TYPE_CHECKING:
    from kybernetes.client.rest import Client, ResourceHandle

__all__ = ["APIResource", "DiscoveryError", "StaleGroupVersionError", "server_resources", "AGGREGATED_ACCEPT"]

log = logging.getLogger("kybernetes.client.discovery")

AGGREGATED_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


@dataclass(frozen=True)
class APIResource:
    """One served resource (subresources listed by name, not as entries of their own)."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    verbs: frozenset[str]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    preferred: bool = True  # the version is its group's preferred one

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvr(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.resource)

    def handle(self, client: "Client") -> "ResourceHandle":
        return client.resource(self.group, self.version, self.resource, namespaced=self.namespaced)


class DiscoveryError(ClientError):
    """Some group versions could not be discovered.  `failed` maps "group/version" to the
    error; `resources` holds everything that was discovered."""

    def __init__(self, failed: dict[str, BaseException], resources: list[APIResource]) -> None:
        self.failed = failed
        self.resources = resources
        detail = ", ".join(f"{gv}: {e}" for gv, e in sorted(failed.items()))
        super().__init__(f"unable to retrieve the complete list of server APIs: {detail}")


class StaleGroupVersionError(ClientError):
    """Aggregated discovery marked a group version Stale (its backing server is not answering)."""


def _from_aggregated(doc: dict[str, Any], failed: dict[str, BaseException]) -> list[APIResource]:
    """Resources of an APIGroupDiscoveryList; stale group versions go to `failed`."""
    out: list[APIResource] = []
    for group_doc in doc.get("items") or []:
        group = (group_doc.get("metadata") or {}).get("name") or ""
        # versions are listed most preferred first
        for i, vdoc in enumerate(group_doc.get("versions") or []):
            version = vdoc.get("version") or ""
            if vdoc.get("freshness") == "Stale":
                gv = f"{group}/{version}" if group else version
                failed[gv] = StaleGroupVersionError(f"stale GroupVersion discovery: {gv}")
                continue
            for r in vdoc.get("resources") or []:
                rk = r.get("responseKind") or {}
                out.append(APIResource(
                    group=group,
                    version=version,
                    resource=r.get("resource") or "",
                    kind=rk.get("kind") or "",
                    namespaced=r.get("scope") == "Namespaced",
                    verbs=frozenset(r.get("verbs") or ()),
                    short_names=tuple(r.get("shortNames") or ()),
                    categories=tuple(r.get("categories") or ()),
                    subresources=tuple(s.get("subresource", "") for s in r.get("subresources") or ()),
                    preferred=(i == 0),
                ))
    return out


def _from_resource_list(group: str, version: str, doc: dict[str, Any], preferred: bool) -> list[APIResource]:
    entries = doc.get("resources") or []
    subs: dict[str, list[str]] = {}
    for r in entries:
        name = r.get("name") or ""
        if "/" in name:
            parent, sub = name.split("/", 1)
            subs.setdefault(parent, []).append(sub)
    out = []
    for r in entries:
        name = r.get("name") or ""
        if "/" in name:
            continue
        out.append(APIResource(
            group=group,
            version=version,
            resource=name,
            kind=r.get("kind") or "",
            namespaced=bool(r.get("namespaced")),
            verbs=frozenset(r.get("verbs") or ()),
            short_names=tuple(r.get("shortNames") or ()),
            categories=tuple(r.get("categories") or ()),
            subresources=tuple(subs.get(name, ())),
            preferred=preferred,
        ))
    return out


async def _fetch_root(client: "Client", path: str) -> tuple[bool, Any]:
    """GET /api or /apis asking for aggregated discovery first: (aggregated?, document)."""
    resp = await client.request("GET", path, accept=AGGREGATED_ACCEPT, raw=True)
    body = await resp.read()
    ctype = resp.header("Content-Type") or ""
    doc = decode_body(body, ctype)
    if resp.status >= 400:
        raise status_error(doc, resp.status)
    return "as=APIGroupDiscoveryList" in ctype.replace(" ", ""), doc


async def _legacy(client: "Client", core: Optional[dict[str, Any]], groups: Optional[dict[str, Any]]
                  ) -> tuple[list[APIResource], dict[str, BaseException]]:
    """Resources from the per-group-version documents listed by the legacy /api
    (`core`) and /apis (`groups`) documents; a None document is skipped."""
    targets: list[tuple[str, str, bool]] = []  # group, version, preferred
    if core is not None:
        targets += [("", v, i == 0) for i, v in enumerate(core.get("versions") or [])]
    if groups is not None:
        for g in groups.get("groups") or []:
            preferred = (g.get("preferredVersion") or {}).get("version")
            for v in g.get("versions") or []:
                targets.append((g["name"], v["version"], v["version"] == preferred))

    async def one(group: str, version: str, preferred: bool) -> list[APIResource]:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        return _from_resource_list(group, version, await client.request("GET", path), preferred)

    results = await asyncio.gather(*(one(*t) for t in targets), return_exceptions=True)
    out: list[APIResource] = []
    failed: dict[str, BaseException] = {}
    for (group, version, _), res in zip(targets, results):
        if isinstance(res, BaseException):
            if not isinstance(res, Exception):
                raise res
            failed[f"{group}/{version}" if group else version] = res
        else:
            out += res
    return out, failed


def _preferred(resources: list[APIResource]) -> list[APIResource]:
    """One entry per (group, resource): from the most preferred version serving it."""
    ranked = sorted(enumerate(resources), key=lambda ir: (not ir[1].preferred, ir[0]))
    seen: set[tuple[str, str]] = set()
    keep: set[int] = set()
    for i, r in ranked:
        if (r.group, r.resource) not in seen:
            seen.add((r.group, r.resource))
            keep.add(i)
    return [r for i, r in enumerate(resources) if i in keep]


async def server_resources(client: "Client", *, preferred_only: bool = False) -> list[APIResource]:
    """Every resource the server serves.  Raises DiscoveryError (carrying the partial
    result) when some group versions failed; other failures propagate."""
    (core_agg, core), (groups_agg, groups) = await asyncio.gather(
        _fetch_root(client, "/api"), _fetch_root(client, "/apis"))
    resources: list[APIResource] = []
    failed: dict[str, BaseException] = {}
    if core_agg:
        resources += _from_aggregated(core, failed)
    if groups_agg:
        resources += _from_aggregated(groups, failed)
    if not (core_agg and groups_agg):
        legacy, legacy_failed = await _legacy(client, None if core_agg else core, None if groups_agg else groups)
        resources += legacy
        failed.update(legacy_failed)
    if preferred_only:
        resources = _preferred(resources)
    if failed:
        raise DiscoveryError(failed, resources)
    return resources
