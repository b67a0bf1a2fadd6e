"""Pure helpers of the StatefulSet controller: identity, storage, versioned pods,
retention-policy owner refs, maxUnavailable and status counting."""

from __future__ import annotations

from kybernetes.controllers import statefulset as s


def sts(**spec):
    base = {"replicas": 3, "serviceName": "svc", "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "img:1"}],
                                  "volumes": [{"name": "cfg", "emptyDir": {}}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "db"}},
                                      "spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Pending"}}],
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}}}
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 1},
            "spec": base, "status": {}}


def test_ordinals_and_names():
    assert s.parent_and_ordinal({"metadata": {"name": "my-app-12"}}) == ("my-app", 12)
    assert s.get_ordinal({"metadata": {"name": "web"}}) == -1
    x = sts(ordinals={"start": 5}, replicas=2)
    assert (s.start_ordinal(x), s.end_ordinal(x)) == (5, 6)
    assert s.in_ordinal_range({"metadata": {"name": "web-6"}}, x)
    assert not s.in_ordinal_range({"metadata": {"name": "web-4"}}, x)


def test_new_pod_identity_and_storage():
    p = s.new_pod(sts(), 2)
    m = p["metadata"]
    assert m["name"] == "web-2" and "generateName" not in m
    assert m["labels"] == {"app": "web", s.POD_NAME_LABEL: "web-2", s.POD_INDEX_LABEL: "2"}
    assert m["ownerReferences"][0] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                       "uid": "set-uid", "controller": True, "blockOwnerDeletion": True}
    assert p["spec"]["hostname"] == "web-2" and p["spec"]["subdomain"] == "svc"
    assert p["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}},
                                    {"name": "cfg", "emptyDir": {}}]
    p["metadata"]["namespace"] = "ns"
    assert s.identity_matches(sts(), p) and s.storage_matches(sts(), p)
    (claim,) = s.claims_for(sts(), 2)
    assert claim["metadata"]["name"] == "data-web-2"
    assert claim["metadata"]["labels"] == {"tier": "db", "app": "web"}
    assert "status" not in claim


def test_versioned_pod_partition():
    cur, upd = sts(), sts()
    upd["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    cur["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 2
    low = s.new_versioned_pod(cur, upd, "web-a", "web-b", 1)
    high = s.new_versioned_pod(cur, upd, "web-a", "web-b", 2)
    assert low["metadata"]["labels"][s.REVISION_LABEL] == "web-a"
    assert low["spec"]["containers"][0]["image"] == "img:1"
    assert high["metadata"]["labels"][s.REVISION_LABEL] == "web-b"
    assert high["spec"]["containers"][0]["image"] == "img:2"
    ondelete = sts(updateStrategy={"type": "OnDelete"})
    assert s.new_versioned_pod(ondelete, upd, "web-a", "web-b", 0)["metadata"]["labels"][s.REVISION_LABEL] == "web-b"


def test_revision_patch_round_trip():
    x = sts()
    patch = s.revision_patch(x)
    assert patch["spec"]["template"]["$patch"] == "replace"
    y = sts()
    y["spec"]["template"] = {"metadata": {}, "spec": {}}
    assert s.apply_revision(y, {"data": patch})["spec"]["template"] == x["spec"]["template"]


def test_max_unavailable():
    assert s.max_unavailable(sts()) == 1
    x = sts(replicas=10)
    x["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "25%"
    assert s.max_unavailable(x) == 2
    x["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "5%"
    assert s.max_unavailable(x) == 1


def _pod(name, uid="pod-uid"):
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid}}


def test_retention_owner_refs():
    claim = {"metadata": {"name": "data-web-1", "ownerReferences": []}}
    x = sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"})
    assert not s.claim_owner_matches(claim, x, _pod("web-1"))
    assert s.update_claim_owner_refs(claim, x, _pod("web-1"))
    assert claim["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                                     "name": "web", "uid": "set-uid"}]
    assert s.claim_owner_matches(claim, x, _pod("web-1"))
    # whenScaled=Delete: a scaled-down pod owns its claim, the set lets go
    y = sts(replicas=1, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"})
    assert s.update_claim_owner_refs(claim, y, _pod("web-1"))
    assert claim["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Pod", "name": "web-1",
                                                     "uid": "pod-uid"}]
    assert s.claim_owner_matches(claim, y, _pod("web-1"))
    # Retain/Retain: no owner refs at all
    z = sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Retain"})
    assert s.update_claim_owner_refs(claim, z, _pod("web-1")) and claim["metadata"]["ownerReferences"] == []
    # a claim owned by an earlier pod of the same name is stale
    stale = {"metadata": {"ownerReferences": [{"kind": "Pod", "name": "web-1", "uid": "old"}]}}
    assert s.has_stale_owner_ref(stale, _pod("web-1", uid="new"))
    assert s.has_stale_owner_ref(stale, {"metadata": {"name": "web-1"}})


def test_replica_status():
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    pods = [
        {"metadata": {"name": "web-0", "uid": "1", "labels": {s.REVISION_LABEL: "a"}}, "status": ready},
        {"metadata": {"name": "web-1", "uid": "2", "labels": {s.REVISION_LABEL: "b"}}, "status": {"phase": "Pending"}},
        {"metadata": {"name": "web-2", "labels": {s.REVISION_LABEL: "b"}}},  # not created yet
        {"metadata": {"name": "web-3", "uid": "4", "deletionTimestamp": "x", "labels": {s.REVISION_LABEL: "a"}},
         "status": ready},
    ]
    assert s.replica_status(pods, 0, "a", "b") == {"replicas": 3, "readyReplicas": 2, "availableReplicas": 2,
                                                    "currentReplicas": 1, "updatedReplicas": 1}
