"""The garbage collector's pieces around the graph: what it sends the API server
(ClusterAccess over a scripted transport), discovery into monitors and REST mappings,
and the small pure helpers."""

from __future__ import annotations

from typing import Any, Optional

import orjson
import pytest

from kybernetes.client import Client
from kybernetes.client.discovery import APIResource, DiscoveryError
from kybernetes.client.errors import Conflict
from kybernetes.client.transport import HTTPRequest
from kybernetes.controllers.garbagecollector import (
    METADATA_ACCEPT,
    METADATA_LIST_ACCEPT,
    ClusterAccess,
    GarbageCollector,
    MetadataResourceHandle,
    Node,
    ObjectRef,
    ReferenceCache,
    RESTMapper,
    RESTMappingError,
    NamespacedOwnerOfClusterScopedObject,
    alternate_owner_identity,
    deletable_resources,
    partition_dependents,
    references_diffs,
)

VERBS = frozenset({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"})


class Resp:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self._body = orjson.dumps(body)

    def header(self, name: str) -> Optional[str]:
        return "application/json" if name.lower() == "content-type" else None

    async def read(self) -> bytes:
        return self._body

    async def read_chunk(self) -> bytes:
        body, self._body = self._body, b""
        return body

    async def close(self) -> None:
        pass


def status(code: int, reason: str, message: str = "") -> Resp:
    return Resp(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
                       "message": message or reason})


class Script:
    """Answers (method, path) with queued responses in order; records every request."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], list[Resp]] = {}
        self.requests: list[HTTPRequest] = []

    def on(self, method: str, path: str, *responses: Resp) -> None:
        self.answers.setdefault((method, path), []).extend(responses)

    async def send(self, req: HTTPRequest, *, stream: bool = False) -> Resp:
        self.requests.append(req)
        queue = self.answers.get((req.method, req.path))
        if not queue:
            return status(500, "InternalError", f"unscripted {req.method} {req.path}")
        return queue.pop(0)

    async def close(self) -> None:
        pass

    def sent(self) -> list[tuple[str, str, Any]]:
        return [(r.method, r.path, orjson.loads(r.body) if r.body else None) for r in self.requests]


CM_PATH = "/api/v1/namespaces/ns/configmaps/dep"


def cm_meta(uid: str = "U", rv: str = "5", **extra: Any) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": "dep", "namespace": "ns", "uid": uid, "resourceVersion": rv, **extra}}


@pytest.fixture
async def access():
    script = Script()
    client = Client("https://127.0.0.1:9", transport=script)
    mapper = RESTMapper()
    mapper.reset([
        APIResource("", "v1", "configmaps", "ConfigMap", True, VERBS),
        APIResource("", "v1", "nodes", "Node", False, VERBS),
        APIResource("example.com", "v1", "widgets", "Widget", True, VERBS),
    ])
    yield ClusterAccess(client, mapper), script
    await client.close()


REF = ObjectRef("v1", "ConfigMap", "dep", "U", "ns")


# ---------------------------------------------------------------------- ClusterAccess
async def test_get_asks_for_partial_object_metadata(access):
    acc, script = access
    script.on("GET", CM_PATH, Resp(200, cm_meta()))
    got = await acc.get(REF)
    assert got["metadata"]["uid"] == "U"
    assert script.requests[0].headers["Accept"] == METADATA_ACCEPT


async def test_cluster_scoped_kind_is_addressed_without_namespace(access):
    acc, script = access
    script.on("GET", "/api/v1/nodes/n1", Resp(200, {"metadata": {"name": "n1", "uid": "N"}}))
    await acc.get(ObjectRef("v1", "Node", "n1", "N", "some-dependents-namespace"))
    assert script.requests[0].path == "/api/v1/nodes/n1"


async def test_namespaced_kind_without_namespace_is_invalid(access):
    acc, _ = access
    with pytest.raises(NamespacedOwnerOfClusterScopedObject):
        await acc.get(ObjectRef("v1", "ConfigMap", "cm", "C", ""))


async def test_unknown_kind_is_a_mapping_error(access):
    acc, _ = access
    with pytest.raises(RESTMappingError, match="unable to get REST mapping for Gadget/example.com/v1"):
        await acc.get(ObjectRef("example.com/v1", "Gadget", "g", "G", "ns"))


async def test_delete_sends_uid_and_resource_version_preconditions(access):
    acc, script = access
    script.on("DELETE", CM_PATH, Resp(200, {"kind": "Status", "status": "Success"}))
    await acc.delete(REF, "5", [], "Background")
    [(_, _, body)] = script.sent()
    assert body["preconditions"] == {"uid": "U", "resourceVersion": "5"}
    assert body["propagationPolicy"] == "Background"


async def test_delete_retries_without_resource_version_when_only_it_moved(access):
    acc, script = access
    owners = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "O"}]
    script.on("DELETE", CM_PATH, status(409, "Conflict"), Resp(200, {"kind": "Status", "status": "Success"}))
    script.on("GET", CM_PATH, Resp(200, cm_meta(rv="6", ownerReferences=owners)))
    await acc.delete(REF, "5", owners, "Foreground")
    bodies = [b for m, _, b in script.sent() if m == "DELETE"]
    assert [b["preconditions"] for b in bodies] == [{"uid": "U", "resourceVersion": "5"}, {"uid": "U"}]


async def test_delete_conflict_stands_when_owners_changed(access):
    acc, script = access
    script.on("DELETE", CM_PATH, status(409, "Conflict"))
    script.on("GET", CM_PATH, Resp(200, cm_meta(rv="6", ownerReferences=[{"uid": "NEW"}])))
    with pytest.raises(Conflict):
        await acc.delete(REF, "5", [{"uid": "OLD"}], "Background")
    assert [m for m, _, _ in script.sent()] == ["DELETE", "GET"]


async def test_remove_owner_references_strategic_patch_carries_uid(access):
    acc, script = access
    script.on("PATCH", CM_PATH, Resp(200, cm_meta()))
    await acc.remove_owner_references(REF, ["A", "B"])
    req = script.requests[0]
    assert req.headers["Content-Type"] == "application/strategic-merge-patch+json"
    assert orjson.loads(req.body) == {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "A"},
                                                                       {"$patch": "delete", "uid": "B"}], "uid": "U"}}


async def test_remove_owner_references_falls_back_to_merge_patch(access):
    acc, script = access
    path = "/apis/example.com/v1/namespaces/ns/widgets/w"
    refs = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "A"},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "B"}]
    script.on("PATCH", path, status(415, "UnsupportedMediaType"), Resp(200, {}))
    script.on("GET", path, Resp(200, {"metadata": {"name": "w", "namespace": "ns", "uid": "W", "resourceVersion": "9",
                                                   "ownerReferences": refs}}))
    await acc.remove_owner_references(ObjectRef("example.com/v1", "Widget", "w", "W", "ns"), ["A"])
    merge = script.requests[-1]
    assert merge.headers["Content-Type"] == "application/merge-patch+json"
    assert orjson.loads(merge.body) == {"metadata": {"uid": "W", "resourceVersion": "9", "ownerReferences": [refs[1]]}}


async def test_remove_owner_references_merge_fallback_removing_the_last(access):
    acc, script = access
    path = "/apis/example.com/v1/namespaces/ns/widgets/w"
    script.on("PATCH", path, status(415, "UnsupportedMediaType"), Resp(200, {}))
    script.on("GET", path, Resp(200, {"metadata": {"name": "w", "namespace": "ns", "uid": "W", "resourceVersion": "9",
                                                   "ownerReferences": [{"uid": "A"}]}}))
    await acc.remove_owner_references(ObjectRef("example.com/v1", "Widget", "w", "W", "ns"), ["A"])
    assert orjson.loads(script.requests[-1].body)["metadata"]["ownerReferences"] is None


async def test_unblock_owner_references(access):
    acc, script = access
    script.on("PATCH", CM_PATH, Resp(200, cm_meta()))
    owners = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "A", "blockOwnerDeletion": True},
              {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "B"}]
    await acc.unblock_owner_references(REF, owners)
    assert orjson.loads(script.requests[0].body) == {"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "A", "blockOwnerDeletion": False}], "uid": "U"}}


async def test_remove_finalizer_retries_conflicts(access):
    acc, script = access
    script.on("GET", CM_PATH, Resp(200, cm_meta(rv="5", finalizers=["orphan", "x/y"])),
              Resp(200, cm_meta(rv="6", finalizers=["orphan", "x/y"])))
    script.on("PATCH", CM_PATH, status(409, "Conflict"), Resp(200, cm_meta()))
    await acc.remove_finalizer(REF, "orphan")
    patches = [b for m, _, b in script.sent() if m == "PATCH"]
    assert patches == [{"metadata": {"resourceVersion": "5", "finalizers": ["x/y"]}},
                       {"metadata": {"resourceVersion": "6", "finalizers": ["x/y"]}}]
    assert script.requests[-1].headers["Content-Type"] == "application/merge-patch+json"


async def test_remove_finalizer_last_one_and_nothing_to_do_cases(access):
    acc, script = access
    script.on("GET", CM_PATH, Resp(200, cm_meta(finalizers=["orphan"])), Resp(200, cm_meta(finalizers=["x/y"])),
              Resp(200, cm_meta(uid="OTHER", finalizers=["orphan"])), status(404, "NotFound"))
    script.on("PATCH", CM_PATH, Resp(200, cm_meta()))
    await acc.remove_finalizer(REF, "orphan")
    assert orjson.loads(script.requests[-1].body) == {"metadata": {"resourceVersion": "5", "finalizers": None}}
    for _ in range(3):  # finalizer gone / another object / no object: no patch
        await acc.remove_finalizer(REF, "orphan")
    assert [m for m, _, _ in script.sent()].count("PATCH") == 1


async def test_remove_finalizer_gives_up_after_repeated_conflicts(access):
    acc, script = access
    for _ in range(5):
        script.on("GET", CM_PATH, Resp(200, cm_meta(finalizers=["orphan"])))
        script.on("PATCH", CM_PATH, status(409, "Conflict"))
    with pytest.raises(Exception, match="updateMaxRetries"):
        await acc.remove_finalizer(REF, "orphan")


async def test_record_event(access):
    from kybernetes.client.events import EventBroadcaster

    acc, script = access
    broadcaster = EventBroadcaster(acc.client)
    acc.recorder = broadcaster.recorder("garbage-collector-controller", "gc-1")
    script.on("POST", "/apis/events.k8s.io/v1/namespaces/default/events", Resp(201, {}))
    await acc.record_event(ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", "r", "R"), "Warning",
                           "OwnerRefInvalidNamespace", "msg")
    await broadcaster.shutdown()
    [(_, _, ev)] = script.sent()
    assert ev["regarding"] == {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "name": "r",
                               "uid": "R"}
    assert (ev["reason"], ev["type"], ev["note"], ev["reportingController"], ev["reportingInstance"]) == (
        "OwnerRefInvalidNamespace", "Warning", "msg", "garbage-collector-controller", "gc-1")
    assert ev["metadata"]["name"].startswith("r.")


async def test_metadata_handle_lists_and_watches_metadata(access):
    acc, script = access
    h = MetadataResourceHandle(acc.client, "", "v1", "configmaps")
    script.on("GET", "/api/v1/configmaps", Resp(200, {"kind": "PartialObjectMetadataList", "metadata": {"resourceVersion": "3"},
                                                      "items": []}))
    await h.list(limit=10)
    assert script.requests[0].headers["Accept"] == METADATA_LIST_ACCEPT
    script.on("GET", "/api/v1/namespaces/ns/configmaps", Resp(200, {"type": "ADDED", "object": cm_meta()}))
    async with h.watch("ns", resource_version="3", allow_watch_bookmarks=True, timeout_seconds=5) as w:
        events = [e async for e in w]
    req = script.requests[1]
    assert req.headers["Accept"] == METADATA_ACCEPT
    assert dict(req.params) == {"watch": "true", "resourceVersion": "3", "allowWatchBookmarks": "true",
                                "timeoutSeconds": "5"}
    assert events[0][0] == "ADDED"


# ---------------------------------------------------------------------- discovery
def res(group: str, version: str, resource: str, kind: str, *, namespaced: bool = True, verbs=VERBS,
        preferred: bool = True) -> APIResource:
    return APIResource(group, version, resource, kind, namespaced, frozenset(verbs), preferred=preferred)


def test_deletable_resources_picks_preferred_versions_and_skips_the_rest():
    resources = [
        res("", "v1", "configmaps", "ConfigMap"),
        res("", "v1", "events", "Event"),
        res("events.k8s.io", "v1", "events", "Event"),
        res("", "v1", "bindings", "Binding", verbs={"create"}),
        res("example.com", "v2", "widgets", "Widget"),
        res("example.com", "v1", "widgets", "Widget", preferred=False),
        res("example.com", "v1", "gizmos", "Gizmo", preferred=False),  # only in the older version
        res("", "v1", "nodes", "Node", namespaced=False, verbs={"get", "list", "watch"}),  # no delete
    ]
    got = deletable_resources(resources)
    assert sorted(got) == [("", "v1", "configmaps"), ("example.com", "v1", "gizmos"), ("example.com", "v2", "widgets")]


def test_rest_mapper_knows_every_version_and_keeps_failed_groups():
    m = RESTMapper()
    m.reset([res("example.com", "v1", "widgets", "Widget", preferred=False), res("example.com", "v2", "widgets", "Widget"),
             res("other.io", "v1", "things", "Thing")])
    assert m.resource_for("example.com/v1", "Widget").version == "v1"
    assert m.resource_for("example.com/v2", "Widget").resource == "widgets"
    with pytest.raises(RESTMappingError):
        m.resource_for("example.com/v3", "Widget")
    m.reset([res("example.com", "v2", "widgets", "Widget")], keep_group_versions=["other.io/v1"])
    assert m.resource_for("other.io/v1", "Thing").resource == "things"
    with pytest.raises(RESTMappingError):
        m.resource_for("example.com/v1", "Widget")


async def test_sync_resources_starts_and_stops_monitors():
    client = Client("https://127.0.0.1:9")
    gc = GarbageCollector(client)
    answers: list[Any] = [
        [res("", "v1", "configmaps", "ConfigMap"), res("example.com", "v1", "widgets", "Widget"),
         res("", "v1", "events", "Event")],
        DiscoveryError({"example.com/v1": RuntimeError("503")}, [res("", "v1", "configmaps", "ConfigMap"),
                                                                res("", "v1", "secrets", "Secret")]),
        [res("", "v1", "configmaps", "ConfigMap")],
    ]

    async def server_resources(**_: Any) -> list[APIResource]:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a

    client.server_resources = server_resources  # type: ignore[method-assign]
    try:
        await gc.sync_resources()
        assert gc.monitored == [("", "v1", "configmaps"), ("example.com", "v1", "widgets")]
        assert gc.mapper.resource_for("v1", "Event").resource == "events"  # mapped, though not monitored
        # partial discovery: the failed group's monitor and mappings stay, and it is retried
        with pytest.raises(Exception, match="failed to discover some groups: example.com/v1"):
            await gc.sync_resources()
        assert gc.monitored == [("", "v1", "configmaps"), ("", "v1", "secrets"), ("example.com", "v1", "widgets")]
        assert gc.mapper.resource_for("example.com/v1", "Widget").resource == "widgets"
        await gc.sync_resources()
        assert gc.monitored == [("", "v1", "configmaps")]
    finally:
        gc.queue.shutdown()
        gc.sync_queue.shutdown()
        await gc.on_stop()
        await client.close()


# ---------------------------------------------------------------------- helpers
def test_references_diffs():
    a = {"uid": "A", "name": "a"}
    b = {"uid": "B", "name": "b"}
    b2 = {"uid": "B", "name": "b", "blockOwnerDeletion": True}
    c = {"uid": "C", "name": "c"}
    added, removed, changed = references_diffs([a, b], [b2, c])
    assert added == [c] and removed == [a] and changed == [(b, b2)]


def test_partition_dependents():
    owner = ObjectRef("v1", "ConfigMap", "o", "O", "ns")
    good = Node(ObjectRef("v1", "ConfigMap", "g", "G", "ns"), [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "O"}])
    wrong_name = Node(ObjectRef("v1", "ConfigMap", "w", "W", "ns"), [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "O"}])
    elsewhere = Node(ObjectRef("v1", "ConfigMap", "e", "E", "other"), [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "O"}])
    matching, nonmatching = partition_dependents([good, wrong_name, elsewhere], owner)
    assert matching == [good] and set(nonmatching) == {wrong_name, elsewhere}
    # a cluster-scoped owner matches dependents in any namespace
    matching, _ = partition_dependents([good, elsewhere], replace_ns(owner, ""))
    assert set(matching) == {good, elsewhere}


def replace_ns(ref: ObjectRef, ns: str) -> ObjectRef:
    return ObjectRef(ref.api_version, ref.kind, ref.name, ref.uid, ns)


def test_alternate_owner_identity_order():
    absent = ObjectRef("v1", "ConfigMap", "b", "X", "ns")

    def dep(name: str, kind: str) -> Node:
        return Node(ObjectRef("v1", "ConfigMap", f"d-{name}-{kind}", f"D{name}{kind}", "ns"),
                    [{"apiVersion": "v1", "kind": kind, "name": name, "uid": "X"}])

    deps = [dep("a", "ConfigMap"), dep("c", "ConfigMap"), dep("b", "ConfigMap")]
    # the first identity after the absent one, in (kind, apiVersion, namespace, name) order
    assert alternate_owner_identity(deps, absent) == ObjectRef("v1", "ConfigMap", "c", "X", "ns")
    # none after it: wrap around to the first
    assert alternate_owner_identity(deps[:1], absent) == ObjectRef("v1", "ConfigMap", "a", "X", "ns")
    assert alternate_owner_identity([deps[2]], absent) is None


def test_reference_cache_is_lru():
    cache = ReferenceCache(2)
    a, b, c = (ObjectRef("v1", "ConfigMap", n, n) for n in "abc")
    cache.add(a)
    cache.add(b)
    assert cache.has(a)  # touch a: b is now the oldest
    cache.add(c)
    assert cache.has(a) and cache.has(c) and not cache.has(b)


def test_node_blocking_dependents():
    owner = Node(ObjectRef("v1", "ConfigMap", "o", "O", "ns"))
    blocker = Node(ObjectRef("v1", "ConfigMap", "b", "B", "ns"), [{"uid": "O", "blockOwnerDeletion": True}])
    loose = Node(ObjectRef("v1", "ConfigMap", "l", "L", "ns"), [{"uid": "O", "blockOwnerDeletion": False}])
    owner.dependents |= {blocker, loose}
    assert owner.blocking_dependents() == [blocker]
