"""Garbage collection against a real `kyb server` (the collector runs inside it, in
the controller manager): background, orphan and foreground cascading deletion, through
the client and through real kubectl; dangling and invalid owner references."""

from __future__ import annotations

import orjson

from gc_helpers import owner_ref, owner_uids, wait_for, wait_gone, wait_listed
from kybernetes.client import NotFound


def cm(name: str, namespace: str, *owners: dict, finalizers: tuple[str, ...] = ()) -> dict:
    meta: dict = {"name": name, "namespace": namespace}
    if owners:
        meta["ownerReferences"] = list(owners)
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": name}}


def has_deletion(o) -> bool:
    return bool(o and o["metadata"].get("deletionTimestamp"))


async def test_background_deletion_collects_dependent(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    owner = await cms.create(cm("owner", namespace))
    await cms.create(cm("dep", namespace, owner_ref(owner)))
    await cms.create(cm("bystander", namespace))
    await cms.delete("owner", namespace)  # no policy: Background
    await wait_gone(cms, "dep", namespace)
    assert (await cms.get("bystander", namespace))["metadata"]["name"] == "bystander"


async def test_kubectl_delete_cascades_in_the_background(kyb, client, namespace):
    cms = client.resource("", "v1", "configmaps")
    owner = await cms.create(cm("owner", namespace))
    for i in range(3):
        await cms.create(cm(f"dep-{i}", namespace, owner_ref(owner, controller=True, blockOwnerDeletion=True)))
    kyb.kubectl("delete", "configmap", "owner", "-n", namespace)
    for i in range(3):
        await wait_gone(cms, f"dep-{i}", namespace)


async def test_kubectl_cascade_orphan_keeps_dependents(kyb, client, namespace):
    cms = client.resource("", "v1", "configmaps")
    owner = await cms.create(cm("owner", namespace))
    other = await cms.create(cm("other", namespace))
    await cms.create(cm("solo", namespace, owner_ref(owner, controller=True, blockOwnerDeletion=True)))
    await cms.create(cm("shared", namespace, owner_ref(owner), owner_ref(other)))
    kyb.kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=orphan")
    await wait_gone(cms, "owner", namespace)
    solo = await wait_for(cms, "solo", namespace, lambda o: o is not None and not owner_uids(o))
    assert not has_deletion(solo)
    shared = await wait_for(cms, "shared", namespace, lambda o: o is not None and owner_uids(o) == [other["metadata"]["uid"]])
    assert not has_deletion(shared)


async def test_orphan_policy_sets_the_finalizer_the_collector_removes(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    owner = await cms.create(cm("owner", namespace, finalizers=("example.com/keep",)))
    await cms.create(cm("dep", namespace, owner_ref(owner)))
    answer = await cms.delete("owner", namespace, propagation_policy="Orphan")
    assert answer["metadata"]["finalizers"] == ["example.com/keep", "orphan"]
    # the collector orphans the dependent, then releases its own finalizer only
    await wait_for(cms, "owner", namespace, lambda o: o is not None and o["metadata"].get("finalizers") == ["example.com/keep"])
    dep = await wait_for(cms, "dep", namespace, lambda o: o is not None and not owner_uids(o))
    assert not has_deletion(dep)
    await cms.patch("owner", {"metadata": {"finalizers": None}}, "merge", namespace)
    await wait_gone(cms, "owner", namespace)


async def test_orphan_without_dependents_goes_away(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    await cms.create(cm("lonely", namespace))
    await cms.delete("lonely", namespace, propagation_policy="Orphan")
    await wait_gone(cms, "lonely", namespace)


async def test_kubectl_cascade_foreground_waits_for_blocking_dependents(kyb, client, namespace):
    cms = client.resource("", "v1", "configmaps")
    owner = await cms.create(cm("owner", namespace))
    await cms.create(cm("blocking", namespace, owner_ref(owner, blockOwnerDeletion=True), finalizers=("example.com/hold",)))
    await cms.create(cm("loose", namespace, owner_ref(owner)))
    kyb.kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=foreground", "--wait=false")
    # the collector deletes the dependents; the blocking one is held by its finalizer
    await wait_gone(cms, "loose", namespace)
    await wait_for(cms, "blocking", namespace, has_deletion)
    held = await cms.get("owner", namespace)
    assert held["metadata"].get("deletionTimestamp")
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
    # the owner goes once its last blocking dependent is gone
    await cms.patch("blocking", {"metadata": {"finalizers": None}}, "merge", namespace)
    await wait_gone(cms, "blocking", namespace)
    await wait_gone(cms, "owner", namespace)


async def test_foreground_chain(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    top = await cms.create(cm("top", namespace))
    mid = await cms.create(cm("mid", namespace, owner_ref(top, blockOwnerDeletion=True)))
    await cms.create(cm("leaf", namespace, owner_ref(mid, blockOwnerDeletion=True), finalizers=("example.com/hold",)))
    await cms.delete("top", namespace, propagation_policy="Foreground")
    # mid has a dependent of its own: it is deleted in the foreground too
    await wait_for(cms, "mid", namespace, lambda o: has_deletion(o) and o["metadata"].get("finalizers") == ["foregroundDeletion"])
    await wait_for(cms, "leaf", namespace, has_deletion)
    assert has_deletion(await cms.get("top", namespace))
    await cms.patch("leaf", {"metadata": {"finalizers": None}}, "merge", namespace)
    await wait_gone(cms, "mid", namespace)
    await wait_gone(cms, "top", namespace)


async def test_dangling_references_are_collected(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    real = await cms.create(cm("real", namespace))
    never = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "00000000-0000-0000-0000-000000000001"}
    stale = {"apiVersion": "v1", "kind": "ConfigMap", "name": "real", "uid": "00000000-0000-0000-0000-000000000002"}
    await cms.create(cm("orphan-never", namespace, never))
    await cms.create(cm("orphan-stale", namespace, stale))
    await cms.create(cm("half", namespace, owner_ref(real), never))
    await wait_gone(cms, "orphan-never", namespace)
    await wait_gone(cms, "orphan-stale", namespace)
    half = await wait_for(cms, "half", namespace, lambda o: o is not None and owner_uids(o) == [real["metadata"]["uid"]])
    assert not has_deletion(half)
    assert (await cms.get("real", namespace))["metadata"]["uid"] == real["metadata"]["uid"]


async def test_dependent_with_two_owners_survives_one(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    a = await cms.create(cm("a", namespace))
    b = await cms.create(cm("b", namespace))
    await cms.create(cm("dep", namespace, owner_ref(a), owner_ref(b)))
    await cms.delete("a", namespace)
    dep = await wait_for(cms, "dep", namespace, lambda o: o is not None and owner_uids(o) == [b["metadata"]["uid"]])
    assert not has_deletion(dep)
    await cms.delete("b", namespace)
    await wait_gone(cms, "dep", namespace)


async def test_cross_namespace_owner_counts_as_absent(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    nsapi = client.resource("", "v1", "namespaces")
    other = f"{namespace}-b"
    await nsapi.create({"metadata": {"name": other}})
    try:
        owner = await cms.create(cm("owner", namespace))
        dep = await cms.create(cm("dep", other, owner_ref(owner)))
        await wait_gone(cms, "dep", other)
        assert (await cms.get("owner", namespace))["metadata"]["uid"] == owner["metadata"]["uid"]
        event = await wait_listed(client.resource("", "v1", "events"), other,
                                  lambda e: e.get("reason") == "OwnerRefInvalidNamespace")
        assert event["type"] == "Warning"
        assert event["involvedObject"]["uid"] == dep["metadata"]["uid"]
        assert event["reportingComponent"] == "garbage-collector-controller"
        assert event["message"] == (f"ownerRef [v1/ConfigMap, namespace: {other}, name: owner, uid: {owner['metadata']['uid']}]"
                                    f' does not exist in namespace "{other}"')
    finally:
        await nsapi.delete(other)


async def test_cluster_scoped_dependent_of_namespaced_owner_is_not_collected(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    roles = client.resource("rbac.authorization.k8s.io", "v1", "clusterroles")
    owner = await cms.create(cm("owner", namespace))
    name = f"{namespace}-role"
    role = await roles.create({"metadata": {"name": name, "ownerReferences": [owner_ref(owner)]}, "rules": []})
    try:
        event = await wait_listed(client.resource("", "v1", "events"), "default",
                                  lambda e: e.get("reason") == "OwnerRefInvalidNamespace"
                                  and e["involvedObject"].get("uid") == role["metadata"]["uid"])
        assert event["involvedObject"]["kind"] == "ClusterRole"
        # a control dependent in the owner's namespace shows the owner's deletion was processed
        await cms.create(cm("control", namespace, owner_ref(owner)))
        await cms.delete("owner", namespace)
        await wait_gone(cms, "control", namespace)
        kept = await roles.get(name)
        assert not has_deletion(kept) and owner_uids(kept) == [owner["metadata"]["uid"]]
    finally:
        await roles.delete(name)


async def test_cluster_scoped_owner_of_namespaced_dependent(client, namespace):
    roles = client.resource("rbac.authorization.k8s.io", "v1", "clusterroles")
    cms = client.resource("", "v1", "configmaps")
    name = f"{namespace}-owner"
    role = await roles.create({"metadata": {"name": name}, "rules": []})
    await cms.create(cm("dep", namespace, owner_ref(role)))
    await roles.delete(name)
    await wait_gone(cms, "dep", namespace)


async def test_kubectl_get_shows_owner_and_dependents_across_kinds(kyb, client, namespace):
    """A Secret owned by a ConfigMap: dependents of any monitored kind are collected."""
    cms = client.resource("", "v1", "configmaps")
    secrets = client.resource("", "v1", "secrets")
    owner = await cms.create(cm("owner", namespace))
    await secrets.create({"metadata": {"name": "s", "namespace": namespace, "ownerReferences": [owner_ref(owner)]},
                          "stringData": {"a": "b"}})
    out = orjson.loads(kyb.kubectl("get", "secret", "s", "-n", namespace, "-o", "json").stdout)
    assert owner_uids(out) == [owner["metadata"]["uid"]]
    kyb.kubectl("delete", "configmap", "owner", "-n", namespace)
    await wait_gone(secrets, "s", namespace)
    try:
        await cms.get("owner", namespace)
        raise AssertionError("owner still there")
    except NotFound:
        pass
