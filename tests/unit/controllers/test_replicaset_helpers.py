"""Pod-owning controller helpers: deletion ranking, expectations, slow start, status."""

from __future__ import annotations

from kybernetes.controllers import _pods
from kybernetes.controllers.replicaset import calculate_status


def pod(name, node="", phase="Pending", ready=False, since="2020-01-01T00:00:00Z", restarts=0,
        created="2020-01-01T00:00:00Z", labels=None):
    p = {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created, "labels": labels or {"a": "b"}},
         "spec": {"nodeName": node} if node else {},
         "status": {"phase": phase, "containerStatuses": [{"restartCount": restarts}]}}
    if ready:
        p["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": since}]
    return p


def test_deletion_ranking():
    pods = [
        pod("running-ready-old", "n1", "Running", True, since="2020-01-01T00:00:00Z"),
        pod("running-ready-new", "n2", "Running", True, since="2020-01-02T00:00:00Z"),
        pod("running-unready", "n3", "Running"),
        pod("pending-assigned", "n4"),
        pod("unassigned"),
        pod("unknown", "n5", "Unknown"),
    ]
    order = [p["metadata"]["name"] for p in _pods.pods_to_delete(pods, [], 6)]
    assert _pods.pods_to_delete(pods, [], 6) == pods  # all: input order kept
    order = [p["metadata"]["name"] for p in _pods.pods_to_delete(pods, [], 5)]
    assert order == ["unassigned", "pending-assigned", "unknown", "running-unready", "running-ready-new"]


def test_ranking_restarts_and_age_and_colocation():
    a = pod("few-restarts", "n1", "Running", restarts=1)
    b = pod("many-restarts", "n2", "Running", restarts=5)
    assert _pods.pods_to_delete([a, b], [], 1)[0]["metadata"]["name"] == "many-restarts"
    old = pod("old", "n1", "Running", created="2020-01-01T00:00:00Z")
    new = pod("new", "n2", "Running", created="2020-01-02T00:00:00Z")
    assert _pods.pods_to_delete([old, new], [], 1)[0]["metadata"]["name"] == "new"
    # more related pods on the same node: deleted first
    x, y = pod("x", "crowded", "Running", created="2020-01-02T00:00:00Z"), pod("y", "quiet", "Running")
    related = [pod(f"r{i}", "crowded", "Running") for i in range(3)]
    assert _pods.pods_to_delete([x, y], related, 1)[0]["metadata"]["name"] == "x"


def test_expectations():
    t = [0.0]
    e = _pods.Expectations(timeout=10, clock=lambda: t[0])
    assert e.satisfied("k")
    e.expect_creations("k", 2)
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert not e.satisfied("k")
    e.creation_observed("k")
    assert e.satisfied("k")
    e.expect_deletions("k", ["ns/a", "ns/b"])
    e.deletion_observed("k", "ns/a")
    assert not e.satisfied("k")
    t[0] = 11
    assert e.satisfied("k")  # expired
    e.delete("k")
    assert e.pending("k") == (0, 0)


async def test_slow_start_batches():
    calls = []
    batches = []

    async def ok():
        calls.append(1)

    n, err = await _pods.slow_start_batch(10, 1, ok)
    assert (n, err) == (10, None) and len(calls) == 10

    count = [0]

    async def fail_after_3():
        count[0] += 1
        if count[0] > 3:
            raise RuntimeError("quota")

    n, err = await _pods.slow_start_batch(10, 1, fail_after_3)
    # batches 1, 2 succeed; batch of 4 has one success then failures; no further batches
    assert n == 3 + 0 and isinstance(err, RuntimeError) and count[0] == 7
    del batches


def test_pod_from_template_and_status():
    owner = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}}
    ref = _pods.controller_ref(owner, "apps/v1", "ReplicaSet")
    p = _pods.pod_from_template({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}}, owner, ref)
    assert p["metadata"]["generateName"] == "web-"
    assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                                 "uid": "u1", "controller": True, "blockOwnerDeletion": True}]
    rs = {"metadata": {"generation": 3}, "spec": {"replicas": 3, "minReadySeconds": 0,
                                                  "template": {"metadata": {"labels": {"a": "b", "c": "d"}}}}}
    pods = [pod("a", labels={"a": "b", "c": "d"}, ready=True), pod("b", labels={"a": "b"})]
    st = calculate_status(rs, pods, None, -1)
    assert st == {"replicas": 2, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                  "observedGeneration": 3}
    st = calculate_status(rs, pods, RuntimeError("quota exceeded"), -1)
    assert st["conditions"][0]["type"] == "ReplicaFailure" and st["conditions"][0]["reason"] == "FailedCreate"
    rs["spec"]["minReadySeconds"] = 10**9
    assert calculate_status(rs, pods, None, 0)["availableReplicas"] == 0
