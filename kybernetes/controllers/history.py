"""ControllerRevision history, shared by the StatefulSet and DaemonSet controllers (upstream
pkg/controller/history).

A revision is an immutable snapshot (`data`, for both controllers the patch that restores
the owner's pod template) with a `revision` number; it is named `<owner>-<hash>` where the
hash is FNV-32a over the data plus the owner's `status.collisionCount` (bumped when a
different revision already holds the name).  Returning to an older template does not make
a new object: the equal revision gets the next revision number (this is how
`kubectl rollout undo` shows up in `rollout history`).

    current, update = await ensure_revision(client, owner, patch_data, revisions=cached)
    update.collision_count  # what to write to owner.status.collisionCount

Everything goes through kybernetes.client; the caller may pass its informer's revisions
(`revisions=`) or let `list_revisions` ask the API.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Optional

import orjson

from kybernetes.api.selectors import from_label_selector
from kybernetes.client.errors import AlreadyExists, Conflict, NotFound
from kybernetes.controllers import _pods

Obj = dict[str, Any]

HASH_LABEL = "controller-revision-hash"  # upstream ControllerRevisionHashLabel
MAX_PREFIX = 223  # upstream: 253 - 1 - hash length budget
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

__all__ = [
    "HASH_LABEL", "Revisions", "hash_revision", "revision_name", "new_revision", "equal_revision",
    "sort_revisions", "next_revision", "list_revisions", "owned_revisions", "create_revision",
    "ensure_revision", "truncate_history",
]


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _safe_encode(s: str) -> str:
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in s.encode())


def _canonical(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def hash_revision(data: Any, probe: Optional[int] = None) -> str:
    """Upstream HashControllerRevision: FNV-32a of the data (canonical JSON here), then the
    collision count as a decimal string, rendered through the vowel-free alphabet."""
    raw = _canonical(data)
    if probe is not None:
        raw += str(int(probe)).encode()
    return _safe_encode(str(_fnv32a(raw)))


def revision_name(prefix: str, hash_: str) -> str:
    """Upstream ControllerRevisionName: `<prefix>-<hash>`, prefix cut to 223 characters."""
    return f"{prefix[:MAX_PREFIX]}-{hash_}"


def _kind_of(owner: Obj, kind: Optional[str], api_version: Optional[str]) -> tuple[str, str]:
    return (kind or owner.get("kind") or "", api_version or owner.get("apiVersion") or "apps/v1")


def new_revision(owner: Obj, data: Any, revision: int, collision_count: Optional[int] = None, *,
                 kind: Optional[str] = None, api_version: Optional[str] = None,
                 template_labels: Optional[dict[str, str]] = None,
                 annotations: Optional[dict[str, str]] = None) -> Obj:
    """Upstream NewControllerRevision: labels from the template plus the hash label, a
    controller ownerReference to `owner`, the data and the revision number."""
    kind, api_version = _kind_of(owner, kind, api_version)
    if template_labels is None:
        template_labels = ((((owner.get("spec") or {}).get("template") or {}).get("metadata") or {})
                           .get("labels") or {})
    h = hash_revision(data, collision_count)
    meta: Obj = {"name": revision_name(owner["metadata"]["name"], h),
                 "namespace": owner["metadata"].get("namespace"),
                 "labels": {**template_labels, HASH_LABEL: h},
                 "ownerReferences": [_pods.controller_ref(owner, api_version, kind)]}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
            "data": copy.deepcopy(data), "revision": int(revision)}


def equal_revision(a: Optional[Obj], b: Optional[Obj]) -> bool:
    """Upstream EqualRevision: the same data (hash labels, when both parse, must agree)."""
    if a is None or b is None:
        return a is b
    return _canonical(a.get("data")) == _canonical(b.get("data"))


def find_equal_revisions(revisions: Iterable[Obj], needle: Obj) -> list[Obj]:
    return [r for r in revisions if equal_revision(r, needle)]


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """Upstream SortControllerRevisions: by revision, then creation time, then name."""
    return sorted(revisions, key=lambda r: (int(r.get("revision") or 0),
                                            _pods.parse_time(r["metadata"].get("creationTimestamp")) or 0.0,
                                            r["metadata"].get("name", "")))


def next_revision(revisions: list[Obj]) -> int:
    """One more than the highest revision number (1 for an empty history)."""
    return max((int(r.get("revision") or 0) for r in revisions), default=0) + 1


def owned_revisions(owner: Obj, revisions: Iterable[Obj]) -> list[Obj]:
    """Upstream ListControllerRevisions' filter: the revisions matching the owner's selector
    that it controls, or that nobody controls (orphans, to adopt)."""
    uid = owner["metadata"].get("uid")
    sel = from_label_selector((owner.get("spec") or {}).get("selector"))
    out = []
    for r in revisions:
        if r["metadata"].get("namespace") != owner["metadata"].get("namespace"):
            continue
        if not sel.matches(r["metadata"].get("labels") or {}):
            continue
        ref = _pods.get_controller_of(r)
        if ref is None or ref.get("uid") == uid:
            out.append(r)
    return out


def _api(client: Any) -> Any:
    return client.resource("apps", "v1", "controllerrevisions")


async def list_revisions(client: Any, owner: Obj) -> list[Obj]:
    """The owner's revisions (and matching orphans), oldest first, read from the API."""
    items = (await _api(client).list(owner["metadata"].get("namespace")))["items"]
    return sort_revisions(owned_revisions(owner, items))


async def adopt_orphans(client: Any, owner: Obj, revisions: list[Obj], *, kind: Optional[str] = None,
                        api_version: Optional[str] = None) -> list[Obj]:
    """Give orphans among `revisions` a controller reference to `owner` (upstream
    AdoptOrphanRevisions); returns the list with the adopted copies."""
    kind, api_version = _kind_of(owner, kind, api_version)
    out = []
    for r in revisions:
        if _pods.get_controller_of(r) is None and not owner["metadata"].get("deletionTimestamp"):
            meta = r["metadata"]
            refs = list(meta.get("ownerReferences") or []) + [_pods.controller_ref(owner, api_version, kind)]
            try:
                r = await _api(client).patch(meta["name"], {"metadata": {
                    "ownerReferences": refs, "uid": meta["uid"], "resourceVersion": meta.get("resourceVersion")}},
                    namespace=meta.get("namespace"))
            except (NotFound, Conflict):
                continue
        out.append(r)
    return out


async def create_revision(client: Any, owner: Obj, revision: Obj, collision_count: int) -> tuple[Obj, int]:
    """Upstream CreateControllerRevision: create under `<owner>-<hash(data, collisions)>`;
    when another revision with different data holds the name, count a collision and try
    the next name.  Returns (the revision, the collision count used)."""
    api = _api(client)
    ns = owner["metadata"].get("namespace")
    while True:
        h = hash_revision(revision.get("data"), collision_count)
        body = copy.deepcopy(revision)
        body["metadata"]["name"] = revision_name(owner["metadata"]["name"], h)
        body["metadata"].setdefault("labels", {})[HASH_LABEL] = h
        try:
            return await api.create(body, ns), collision_count
        except AlreadyExists:
            try:
                existing = await api.get(body["metadata"]["name"], ns)
            except NotFound:
                continue
            if equal_revision(existing, body):
                return existing, collision_count
            collision_count += 1


class Revisions(tuple):
    """(current, update) with `.collision_count` (for owner.status.collisionCount) and
    `.all` (the owner's revisions after this call, oldest first)."""

    collision_count: int
    all: list[Obj]

    def __new__(cls, current: Obj, update: Obj, collision_count: int, all_: list[Obj]) -> "Revisions":
        t = super().__new__(cls, (current, update))
        t.collision_count = collision_count
        t.all = all_
        return t


async def ensure_revision(client: Any, owner: Obj, patch_data: Any, *, revisions: Optional[list[Obj]] = None,
                          kind: Optional[str] = None, api_version: Optional[str] = None,
                          current_name: Optional[str] = None, copy_annotations: bool = True) -> Revisions:
    """Upstream getStatefulSetRevisions, generic over the owner: make sure a revision
    with `patch_data` exists and is the newest (creating it, or renumbering an equal older
    one — a rollback), and find the current one (`current_name`, default
    owner.status.currentRevision; the update revision when there is none).

    `revisions` are the owner's revisions (e.g. from an informer, filtered with
    owned_revisions); without them they are listed from the API.  Orphans are adopted."""
    kind, api_version = _kind_of(owner, kind, api_version)
    if revisions is None:
        revisions = await list_revisions(client, owner)
    revisions = await adopt_orphans(client, owner, sort_revisions(revisions), kind=kind, api_version=api_version)
    revisions = sort_revisions(revisions)
    status = owner.get("status") or {}
    collision_count = int(status.get("collisionCount") or 0)
    annotations = (owner["metadata"].get("annotations") or {}) if copy_annotations else None
    candidate = new_revision(owner, patch_data, next_revision(revisions), collision_count, kind=kind,
                             api_version=api_version, annotations=annotations)
    equal = find_equal_revisions(revisions, candidate)
    if equal and equal_revision(revisions[-1], equal[-1]):
        update = revisions[-1]  # unchanged
    elif equal:
        # an older template again: renumber the equal revision (a rollback)
        update = await _renumber(client, equal[-1], candidate["revision"])
        revisions = sort_revisions([update if r["metadata"]["name"] == update["metadata"]["name"] else r
                                    for r in revisions])
    else:
        update, collision_count = await create_revision(client, owner, candidate, collision_count)
        revisions = sort_revisions([r for r in revisions if r["metadata"]["name"] != update["metadata"]["name"]]
                                   + [update])
    if current_name is None:
        current_name = status.get("currentRevision")
    current = next((r for r in revisions if r["metadata"]["name"] == current_name), None) or update
    return Revisions(current, update, collision_count, revisions)


async def _renumber(client: Any, revision: Obj, number: int) -> Obj:
    """Upstream UpdateControllerRevision: set the revision number, retrying on conflict."""
    api = _api(client)
    r = revision
    for _ in range(5):
        if int(r.get("revision") or 0) == number:
            return r
        body = copy.deepcopy(r)
        body["revision"] = number
        try:
            return await api.update(body)
        except Conflict:
            r = await api.get(r["metadata"]["name"], r["metadata"]["namespace"])
    from kybernetes.controllers.base import ReconcileError
    raise ReconcileError(f"could not renumber ControllerRevision {revision['metadata']['name']}: conflicts")


async def truncate_history(client: Any, revisions: list[Obj], limit: Optional[int], live: Iterable[str]) -> list[Obj]:
    """Delete the oldest non-live revisions beyond `limit` (upstream truncateHistory);
    `live` names the revisions in use (current, update, those pods run).  Returns the
    deleted ones."""
    if limit is None:
        limit = 10
    live = set(live)
    history = [r for r in sort_revisions(revisions) if r["metadata"]["name"] not in live]
    excess = history[:max(0, len(history) - int(limit))]
    api = _api(client)
    for r in excess:
        try:
            await api.delete(r["metadata"]["name"], r["metadata"]["namespace"])
        except NotFound:
            pass
    return excess
