"""The garbage collector's graph and decisions against an in-memory cluster (gc_fakes):
background, orphan and foreground deletion, dangling and invalid references, virtual
nodes and their verification, retries.  No server, no sleeps."""

from __future__ import annotations

import asyncio

import pytest

from gc_fakes import FakeCluster, NeverRateLimiter, conflict, delayed, drain, fire_delayed, owner_ref
from kybernetes.client import Client
from kybernetes.controllers.garbagecollector import (
    ADD,
    DELETE,
    GarbageCollector,
    GraphBuilder,
    ObjectRef,
    RESTMappingError,
)


@pytest.fixture
async def env():
    cluster = FakeCluster()
    client = Client("https://127.0.0.1:9")  # never dialled: the fake cluster answers
    gc = GarbageCollector(client, access=cluster, rate_limiter=NeverRateLimiter())
    cluster.attach(gc)
    yield gc, cluster
    gc.queue.shutdown()
    gc.sync_queue.shutdown()
    await asyncio.gather(*list(gc._side_tasks), return_exceptions=True)
    await client.close()


async def settle(gc: GarbageCollector) -> None:
    await asyncio.gather(*list(gc._side_tasks))


# ---------------------------------------------------------------------- background
async def test_background_collects_dependent_when_owner_goes(env):
    gc, c = env
    owner = c.create("owner")
    dep = c.create("dep", owners=[owner_ref(owner)])
    assert not await drain(gc)
    assert gc.graph_has_uid(dep["metadata"]["uid"])
    assert dep["metadata"]["uid"] in {d.identity.uid for d in gc.graph.node(owner["metadata"]["uid"]).dependents}

    c.user_delete(owner)  # default policy: background
    assert not await drain(gc)
    assert not c.exists(dep)
    assert ("delete", ObjectRef("v1", "ConfigMap", "dep", dep["metadata"]["uid"], "default"), "Background") in c.calls
    assert not gc.graph_has_uid(owner["metadata"]["uid"]) and not gc.graph_has_uid(dep["metadata"]["uid"])


async def test_dependent_with_another_live_owner_only_loses_the_reference(env):
    gc, c = env
    a, b = c.create("a"), c.create("b")
    dep = c.create("dep", owners=[owner_ref(a), owner_ref(b)])
    await drain(gc)
    c.user_delete(a)
    assert not await drain(gc)
    assert c.exists(dep)
    assert [o["uid"] for o in c.meta(dep)["ownerReferences"]] == [b["metadata"]["uid"]]
    assert not c.ops("delete")
    # the graph followed: dep now hangs under b only
    assert gc.graph.node(dep["metadata"]["uid"]).owners == c.meta(dep)["ownerReferences"]
    c.user_delete(b)
    await drain(gc)
    assert not c.exists(dep)


async def test_chain_is_collected_level_by_level(env):
    gc, c = env
    top = c.create("top")
    mid = c.create("mid", owners=[owner_ref(top)])
    leaf = c.create("leaf", owners=[owner_ref(mid)])
    await drain(gc)
    c.user_delete(top)
    await drain(gc)
    assert not c.exists(mid) and not c.exists(leaf)


async def test_object_without_owners_is_left_alone(env):
    gc, c = env
    lone = c.create("lone")
    gc._enqueue_delete(lone["metadata"]["uid"])
    await drain(gc)
    assert c.exists(lone) and not c.ops("delete")


async def test_being_deleted_dependent_is_not_deleted_again(env):
    gc, c = env
    owner = c.create("owner")
    dep = c.create("dep", owners=[owner_ref(owner)], finalizers=["example.com/hold"])
    c.user_delete(dep)
    await drain(gc)
    c.user_delete(owner)
    await drain(gc)
    assert c.exists(dep) and not c.ops("delete")


async def test_dependent_keeps_its_own_orphan_policy_when_collected(env):
    gc, c = env
    owner = c.create("owner")
    dep = c.create("dep", owners=[owner_ref(owner)], finalizers=["orphan"])
    grandchild = c.create("gc", owners=[owner_ref(dep)])
    await drain(gc)
    c.user_delete(owner)
    await drain(gc)
    assert ("delete", ObjectRef("v1", "ConfigMap", "dep", dep["metadata"]["uid"], "default"), "Orphan") in c.calls
    # the orphan finalizer did its work: the grandchild survives without the reference
    assert not c.exists(dep)
    assert c.exists(grandchild) and "ownerReferences" not in c.meta(grandchild)


# ---------------------------------------------------------------------- dangling references
async def test_dangling_reference_to_uid_that_never_existed(env):
    gc, c = env
    dep = c.create("dep", owners=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "no-such-uid"}])
    ghost = gc.graph.node("no-such-uid")
    assert ghost is not None and ghost.virtual
    assert not await drain(gc)
    assert not c.exists(dep)
    assert not gc.graph_has_uid("no-such-uid")
    # verified absent once, by a live GET of the owner
    assert c.ops("get")[0] == ("get", ObjectRef("v1", "ConfigMap", "ghost", "no-such-uid", "default"))
    assert gc.graph.absent_owner_cache.has(ObjectRef("v1", "ConfigMap", "ghost", "no-such-uid", "default"))


async def test_dangling_reference_whose_name_holds_another_uid(env):
    gc, c = env
    real = c.create("real")
    dep = c.create("dep", owners=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "real", "uid": "old-uid"}])
    await drain(gc)
    assert not c.exists(dep)
    assert c.exists(real)  # only the reference was wrong


async def test_dangling_reference_removed_when_another_owner_lives(env):
    gc, c = env
    live = c.create("live")
    dep = c.create("dep", owners=[owner_ref(live), {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "gone"}])
    await drain(gc)
    assert c.exists(dep)
    assert [o["uid"] for o in c.meta(dep)["ownerReferences"]] == [live["metadata"]["uid"]]
    assert ("remove_owner_references", ObjectRef("v1", "ConfigMap", "dep", dep["metadata"]["uid"], "default"),
            ("gone",)) in c.calls


async def test_virtual_owner_that_exists_is_kept_and_rechecked_until_observed(env):
    gc, c = env
    owner = c.create("owner", hidden=True)  # exists, but no informer event yet
    dep = c.create("dep", owners=[owner_ref(owner)])
    ouid = owner["metadata"]["uid"]
    await drain(gc)
    assert c.exists(dep)
    assert gc.graph.node(ouid).virtual
    assert f"delete:{ouid}" in delayed(gc)  # looked at again later, with backoff
    c.show(ouid)
    assert not gc.graph.node(ouid).virtual
    fire_delayed(gc)
    await drain(gc)
    assert not delayed(gc)
    assert c.exists(dep)
    c.user_delete(owner)
    await drain(gc)
    assert not c.exists(dep)


async def test_dependents_naming_one_uid_differently_are_each_verified(env):
    gc, c = env
    # two dependents name uid X differently; X exists nowhere
    d1 = c.create("d1", owners=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "X"}])
    d2 = c.create("d2", owners=[{"apiVersion": "v1", "kind": "Secret", "name": "x", "uid": "X"}])
    await drain(gc)
    assert not c.exists(d1) and not c.exists(d2)
    assert ("get", ObjectRef("v1", "Secret", "x", "X", "default")) in c.calls
    # the virtual node is checked under its other identity too, then leaves the graph
    fire_delayed(gc)
    await drain(gc)
    assert not gc.graph_has_uid("X")


def test_virtual_delete_moves_on_to_the_alternate_identity():
    calls: list[tuple[str, bool]] = []
    g = GraphBuilder(lambda uid, rl: calls.append((uid, rl)), lambda uid: None)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "X"}
    secret = {**cm, "kind": "Secret"}
    g.process(ADD, {"name": "d1", "namespace": "ns", "uid": "D1", "ownerReferences": [cm]}, api_version="v1", kind="ConfigMap")
    g.process(ADD, {"name": "d2", "namespace": "ns", "uid": "D2", "ownerReferences": [secret]}, api_version="v1", kind="ConfigMap")
    calls.clear()
    # the collector verified the ConfigMap identity absent
    g.process(DELETE, {"name": "x", "namespace": "ns", "uid": "X"}, api_version="v1", kind="ConfigMap", virtual=True)
    node = g.node("X")
    assert node is not None and node.virtual
    assert node.identity == ObjectRef("v1", "Secret", "x", "X", "ns")
    assert calls == [("D1", False), ("X", True)]  # d1 collected; the next identity checked after a backoff
    assert g.absent_owner_cache.has(ObjectRef("v1", "ConfigMap", "x", "X", "ns"))
    # d1 was collected; the Secret identity is absent too: the node goes, d2 is collected
    g.process(DELETE, {"name": "d1", "namespace": "ns", "uid": "D1", "ownerReferences": [cm]}, api_version="v1",
              kind="ConfigMap")
    calls.clear()
    g.process(DELETE, {"name": "x", "namespace": "ns", "uid": "X"}, api_version="v1", kind="Secret", virtual=True)
    assert g.node("X") is None
    assert calls == [("D2", False)]


def test_virtual_delete_for_other_coordinates_keeps_an_observed_node():
    calls: list[tuple[str, bool]] = []
    g = GraphBuilder(lambda uid, rl: calls.append((uid, rl)), lambda uid: None)
    g.process(ADD, {"name": "real", "namespace": "ns", "uid": "R"}, api_version="v1", kind="ConfigMap")
    wrong = {"apiVersion": "v1", "kind": "Secret", "name": "real", "uid": "R"}
    g.process(ADD, {"name": "dep", "namespace": "ns", "uid": "D", "ownerReferences": [wrong]}, api_version="v1", kind="ConfigMap")
    assert calls == [("D", False)]  # coordinates disagree with the observed owner: verify the dependent
    calls.clear()
    g.process(DELETE, {"name": "real", "namespace": "ns", "uid": "R"}, api_version="v1", kind="Secret", virtual=True)
    assert g.node("R") is not None and not g.node("R").virtual
    assert calls == [("D", False)]


async def test_observing_the_real_owner_replaces_the_virtual_identity(env):
    gc, c = env
    owner = c.create("owner", hidden=True)
    good = c.create("good", owners=[owner_ref(owner)])
    bad = c.create("bad", owners=[owner_ref(owner, name="wrong-name")])
    c.show(owner["metadata"]["uid"])
    node = gc.graph.node(owner["metadata"]["uid"])
    assert not node.virtual and node.identity.name == "owner"
    await drain(gc)
    # the one naming it wrongly has a dangling reference (its name resolves to nothing)
    assert c.exists(good) and not c.exists(bad)


# ---------------------------------------------------------------------- namespaces and scope
async def test_cross_namespace_owner_counts_as_absent_and_is_reported(env):
    gc, c = env
    owner = c.create("owner", namespace="a")
    dep = c.create("dep", namespace="b", owners=[owner_ref(owner)])
    await drain(gc)
    await settle(gc)
    assert not c.exists(dep)
    assert c.exists(owner)
    [(involved, etype, reason, message)] = c.events
    assert (involved.name, involved.namespace, etype, reason) == ("dep", "b", "Warning", "OwnerRefInvalidNamespace")
    assert message == (f'ownerRef [v1/ConfigMap, namespace: b, name: owner, uid: {owner["metadata"]["uid"]}] '
                       'does not exist in namespace "b"')


async def test_cross_namespace_bad_child_seen_before_its_owner(env):
    gc, c = env
    owner = c.create("owner", namespace="a", hidden=True)
    dep = c.create("dep", namespace="b", owners=[owner_ref(owner)])
    c.show(owner["metadata"]["uid"])  # the owner turns up, in another namespace
    await drain(gc)
    await settle(gc)
    assert not c.exists(dep) and c.exists(owner)
    assert [e[2] for e in c.events] == ["OwnerRefInvalidNamespace"]


async def test_cluster_scoped_owner_of_namespaced_dependent(env):
    gc, c = env
    node = c.create("node-1", kind="Node", namespace=None)
    dep = c.create("dep", namespace="x", owners=[owner_ref(node)])
    await drain(gc)
    assert c.exists(dep)
    c.user_delete(node)
    await drain(gc)
    assert not c.exists(dep)


async def test_cluster_scoped_dependent_of_namespaced_owner_is_never_collected(env):
    gc, c = env
    owner = c.create("owner", namespace="a")
    role = c.create("role", kind="ClusterRole", api_version="rbac.authorization.k8s.io/v1", namespace=None,
                    owners=[owner_ref(owner)])
    await drain(gc)
    await settle(gc)
    assert [(e[0].name, e[2]) for e in c.events] == [("role", "OwnerRefInvalidNamespace")]
    c.user_delete(owner)
    errors = await drain(gc)
    assert not errors and not delayed(gc)  # not retried: it cannot resolve
    assert c.exists(role) and not c.ops("delete")


async def test_cluster_scoped_dependent_of_missing_namespaced_kind(env):
    gc, c = env
    role = c.create("role", kind="ClusterRole", api_version="rbac.authorization.k8s.io/v1", namespace=None,
                    owners=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "cm-uid"}])
    errors = await drain(gc)
    assert not errors and not delayed(gc)
    assert c.exists(role)


# ---------------------------------------------------------------------- orphan
async def test_orphan_strips_references_then_releases_owner(env):
    gc, c = env
    owner = c.create("owner")
    other = c.create("other")
    d1 = c.create("d1", owners=[owner_ref(owner, controller=True, block=True)])
    d2 = c.create("d2", owners=[owner_ref(owner), owner_ref(other)])
    await drain(gc)
    c.user_delete(owner, "Orphan")
    assert c.meta(owner)["finalizers"] == ["orphan"]
    assert f"orphan:{owner['metadata']['uid']}" in gc.queue._dirty
    await drain(gc)
    assert not c.exists(owner)
    assert c.exists(d1) and "ownerReferences" not in c.meta(d1)
    assert [o["uid"] for o in c.meta(d2)["ownerReferences"]] == [other["metadata"]["uid"]]
    assert c.ops("remove_finalizer") == [("remove_finalizer", ObjectRef("v1", "ConfigMap", "owner", owner["metadata"]["uid"],
                                                                        "default"), "orphan")]


async def test_orphan_keeps_other_finalizers(env):
    gc, c = env
    owner = c.create("owner", finalizers=["example.com/keep"])
    dep = c.create("dep", owners=[owner_ref(owner)])
    await drain(gc)
    c.user_delete(owner, "Orphan")
    await drain(gc)
    assert c.exists(owner) and c.meta(owner)["finalizers"] == ["example.com/keep"]
    assert c.exists(dep) and "ownerReferences" not in c.meta(dep)


async def test_orphan_failure_is_retried_and_finalizer_kept(env):
    gc, c = env
    owner = c.create("owner")
    dep = c.create("dep", owners=[owner_ref(owner)])
    await drain(gc)
    c.fail_next["remove_owner_references"] = [conflict("try again")]
    c.user_delete(owner, "Orphan")
    errors = await drain(gc)
    assert [k for k, _ in errors] == [f"orphan:{owner['metadata']['uid']}"]
    assert c.meta(owner)["finalizers"] == ["orphan"]  # not released before the dependents are done
    fire_delayed(gc)
    assert not await drain(gc)
    assert not c.exists(owner) and c.exists(dep) and "ownerReferences" not in c.meta(dep)


async def test_orphan_without_dependents_releases_at_once(env):
    gc, c = env
    owner = c.create("owner")
    await drain(gc)
    c.user_delete(owner, "Orphan")
    await drain(gc)
    assert not c.exists(owner)


# ---------------------------------------------------------------------- foreground
async def test_foreground_waits_for_blocking_dependents(env):
    gc, c = env
    owner = c.create("owner")
    blocking = c.create("blocking", owners=[owner_ref(owner, block=True)], finalizers=["example.com/hold"])
    plain = c.create("plain", owners=[owner_ref(owner)])
    await drain(gc)
    c.user_delete(owner, "Foreground")
    await drain(gc)
    # both dependents were deleted; the blocking one is held by its own finalizer
    assert not c.exists(plain)
    assert c.meta(blocking).get("deletionTimestamp")
    assert c.exists(owner) and c.meta(owner)["finalizers"] == ["foregroundDeletion"]
    assert gc.graph.node(owner["metadata"]["uid"]).deleting_dependents
    # the last blocking dependent goes: the owner is released
    c.user_update(blocking, finalizers=None)
    await drain(gc)
    assert not c.exists(blocking) and not c.exists(owner)


async def test_foreground_does_not_wait_for_non_blocking_dependents(env):
    gc, c = env
    owner = c.create("owner")
    held = c.create("held", owners=[owner_ref(owner, block=False)], finalizers=["example.com/hold"])
    await drain(gc)
    c.user_delete(owner, "Foreground")
    await drain(gc)
    assert not c.exists(owner)
    assert c.meta(held).get("deletionTimestamp")  # deleted all the same


async def test_foreground_chain_deletes_dependents_in_foreground(env):
    gc, c = env
    top = c.create("top")
    mid = c.create("mid", owners=[owner_ref(top, block=True)])
    leaf = c.create("leaf", owners=[owner_ref(mid, block=True)], finalizers=["example.com/hold"])
    await drain(gc)
    c.user_delete(top, "Foreground")
    await drain(gc)
    # mid has a dependent of its own: deleted in the foreground, waiting for leaf
    assert ("delete", ObjectRef("v1", "ConfigMap", "mid", mid["metadata"]["uid"], "default"), "Foreground") in c.calls
    assert c.exists(top) and c.exists(mid) and c.meta(mid)["finalizers"] == ["foregroundDeletion"]
    assert c.meta(leaf).get("deletionTimestamp")
    c.user_update(leaf, finalizers=None)
    await drain(gc)
    assert not c.exists(leaf) and not c.exists(mid) and not c.exists(top)


async def test_foreground_dependent_with_a_solid_owner_only_drops_the_reference(env):
    gc, c = env
    owner, keeper = c.create("owner"), c.create("keeper")
    dep = c.create("dep", owners=[owner_ref(owner, block=True), owner_ref(keeper)])
    await drain(gc)
    c.user_delete(owner, "Foreground")
    await drain(gc)
    assert c.exists(dep) and [o["uid"] for o in c.meta(dep)["ownerReferences"]] == [keeper["metadata"]["uid"]]
    assert not c.exists(owner)  # unblocked by the reference going away


async def test_foreground_cycle_is_broken(env):
    gc, c = env
    a = c.create("a")
    b = c.create("b", owners=[owner_ref(a, block=True)])
    c.user_update(a, ownerReferences=[owner_ref(b, block=True)])
    await drain(gc)
    c.user_delete(a, "Foreground")
    await drain(gc)
    # b waits for a and a for b: b's reference is unblocked, b goes in the foreground
    assert ("unblock_owner_references", ObjectRef("v1", "ConfigMap", "b", b["metadata"]["uid"], "default")) in c.calls
    assert not c.exists(a) and not c.exists(b)


async def test_background_after_foreground_switch_is_followed(env):
    gc, c = env
    owner = c.create("owner")
    c.create("dep", owners=[owner_ref(owner, block=True)], finalizers=["example.com/hold"])
    await drain(gc)
    c.user_delete(owner, "Foreground")
    await drain(gc)
    assert c.exists(owner)
    c.user_delete(owner, "Background")  # the server drops foregroundDeletion: it goes now
    await drain(gc)
    assert not c.exists(owner)


# ---------------------------------------------------------------------- retries and mapping
async def test_failed_delete_is_retried_with_backoff(env):
    gc, c = env
    owner = c.create("owner")
    dep = c.create("dep", owners=[owner_ref(owner)])
    await drain(gc)
    c.fail_next["delete"] = [conflict("the object has been modified")]
    c.user_delete(owner)
    errors = await drain(gc)
    assert [k for k, _ in errors] == [f"delete:{dep['metadata']['uid']}"]
    assert c.exists(dep)
    fire_delayed(gc)
    assert not await drain(gc)
    assert not c.exists(dep)


async def test_unknown_owner_kind_is_a_mapping_error_that_asks_for_rediscovery(env):
    gc, c = env
    dep = c.create("dep", owners=[{"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "W"}])
    errors = await drain(gc)
    assert errors and all(isinstance(e, RESTMappingError) for _, e in errors)
    assert c.exists(dep)
    assert "delete:W" in delayed(gc)
    assert gc.sync_queue.waiting == 1  # discovery runs again soon


async def test_graph_follows_owner_reference_edits(env):
    gc, c = env
    a, b = c.create("a"), c.create("b")
    dep = c.create("dep", owners=[owner_ref(a)])
    await drain(gc)
    c.user_update(dep, ownerReferences=[owner_ref(b)])
    assert {d.identity.name for d in gc.graph.node(a["metadata"]["uid"]).dependents} == set()
    assert {d.identity.name for d in gc.graph.node(b["metadata"]["uid"]).dependents} == {"dep"}
    c.user_delete(a)
    await drain(gc)
    assert c.exists(dep)
    c.user_delete(b)
    await drain(gc)
    assert not c.exists(dep)


async def test_removing_a_blocking_reference_wakes_a_waiting_owner(env):
    gc, c = env
    owner = c.create("owner")
    dep = c.create("dep", owners=[owner_ref(owner, block=True)], finalizers=["example.com/hold"])
    await drain(gc)
    c.user_delete(owner, "Foreground")
    await drain(gc)
    assert c.exists(owner)
    c.user_update(dep, ownerReferences=None)  # someone else drops the reference
    await drain(gc)
    assert not c.exists(owner) and c.exists(dep)
