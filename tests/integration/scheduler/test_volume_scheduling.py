"""Local persistent volumes end to end on the scheduler side: the scheduler inside a real
`kyb server` (as system:kube-scheduler, through RBAC) places pods on simulated nodes where
their PersistentVolumes are, and pre-binds WaitForFirstConsumer claims' PVs; the server's
persistent-volume controller then completes each binding."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from kybernetes.client import Conflict, NotFound
from kybernetes.scheduler.simnodes import SimNodes

CLASS = "local-wffc"


async def wait_for(fn, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def local_pv(name, node_name, size="10Gi", claim_ref=None):
    spec = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": CLASS,
            "persistentVolumeReclaimPolicy": "Retain", "local": {"path": f"/mnt/disks/{name}"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}]}]}}}
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}


def claim(name, size="5Gi"):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": CLASS,
                     "resources": {"requests": {"storage": size}}}}


def claim_pod(name, *claims):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}],
                     "volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                 for i, c in enumerate(claims)]}}


@pytest.fixture
async def storage(client):
    """The WaitForFirstConsumer class for local disks, and removal of every PV the test
    registers in the returned list."""
    scs = client.resource("storage.k8s.io", "v1", "storageclasses")
    pvs = client.resource("", "v1", "persistentvolumes")
    with contextlib.suppress(Conflict):
        await scs.create({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": CLASS},
                          "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"})
    created: list[str] = []
    try:
        yield created
    finally:
        for name in created:
            with contextlib.suppress(NotFound):
                await pvs.delete(name)
        with contextlib.suppress(NotFound):
            await scs.delete(CLASS)


@pytest.fixture
async def nodes(client):
    sim = SimNodes(client, 2, prefix="vb-", cpu="4", memory="8Gi")
    await sim.start()
    try:
        yield sim.names
    finally:
        await sim.stop(delete=True)


async def _cleanup_pods(client, namespace):
    with contextlib.suppress(NotFound):
        await client.resource("", "v1", "pods").delete_collection(namespace, grace_period_seconds=0)


async def node_of(client, namespace, name):
    p = await client.resource("", "v1", "pods").get(name, namespace=namespace)
    return p["spec"].get("nodeName")


async def scheduling_failure(client, namespace, name):
    p = await client.resource("", "v1", "pods").get(name, namespace=namespace)
    for c in (p.get("status") or {}).get("conditions") or []:
        if c["type"] == "PodScheduled" and c["status"] == "False":
            return c
    return None


async def failed_scheduling_events(client, namespace, name, needle):
    evs = (await client.resource("", "v1", "events").list(namespace))["items"]
    return [e for e in evs if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"
            and needle in e["message"]]


async def test_wait_for_first_consumer_claim_follows_its_local_pv(client, namespace, nodes, storage):
    """Two nodes, a local PV on the second: the pod goes there and the PV is pre-bound to
    its claim (claimRef, bound-by-controller); the claim ends Bound to that PV."""
    node_a, node_b = nodes
    pvs = client.resource("", "v1", "persistentvolumes")
    pvcs = client.resource("", "v1", "persistentvolumeclaims")
    pods = client.resource("", "v1", "pods")
    try:
        await pvs.create(local_pv("vb-local-b", node_b))
        storage.append("vb-local-b")
        await pvs.create(local_pv("vb-local-b-big", node_b, size="100Gi"))
        storage.append("vb-local-b-big")
        c = await pvcs.create(claim("data"), namespace)
        assert (await pvcs.get("data", namespace=namespace))["status"]["phase"] == "Pending"
        await pods.create(claim_pod("db", "data"), namespace)
        assert await wait_for(lambda: node_of(client, namespace, "db"), what="pod bound") == node_b
        pv = await pvs.get("vb-local-b")  # the smaller of the two fitting PVs
        ref = pv["spec"]["claimRef"]
        assert {k: ref.get(k) for k in ("kind", "apiVersion", "namespace", "name", "uid")} == {
            "kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": namespace, "name": "data",
            "uid": c["metadata"]["uid"]}
        assert ref.get("resourceVersion")
        assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        bound = await pvcs.get("data", namespace=namespace)
        assert bound["spec"]["volumeName"] == "vb-local-b" and bound["status"]["phase"] == "Bound"
        assert "claimRef" not in (await pvs.get("vb-local-b-big"))["spec"]
    finally:
        await _cleanup_pods(client, namespace)


async def test_bound_claim_pins_the_pod_to_its_volume_node(client, namespace, nodes, storage):
    node_a, _ = nodes
    pvs = client.resource("", "v1", "persistentvolumes")
    pvcs = client.resource("", "v1", "persistentvolumeclaims")
    pods = client.resource("", "v1", "pods")
    try:
        c = await pvcs.create(claim("logs"), namespace)
        ref = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": namespace, "name": "logs",
               "uid": c["metadata"]["uid"]}
        await pvs.create(local_pv("vb-local-a", node_a, claim_ref=ref))
        storage.append("vb-local-a")

        async def claim_bound():
            got = await pvcs.get("logs", namespace=namespace)
            return (got.get("status") or {}).get("phase") == "Bound"

        await wait_for(claim_bound, what="claim bound")
        for i in range(3):
            await pods.create(claim_pod(f"reader-{i}", "logs"), namespace)
        for i in range(3):
            assert await wait_for(lambda i=i: node_of(client, namespace, f"reader-{i}"), what="pod bound") == node_a
    finally:
        await _cleanup_pods(client, namespace)


async def test_no_fitting_pv_keeps_the_pod_pending_until_one_appears(client, namespace, nodes, storage):
    _, node_b = nodes
    pvs = client.resource("", "v1", "persistentvolumes")
    pvcs = client.resource("", "v1", "persistentvolumeclaims")
    pods = client.resource("", "v1", "pods")
    try:
        await pvs.create(local_pv("vb-too-small", node_b, size="1Gi"))
        storage.append("vb-too-small")
        await pvcs.create(claim("big", size="50Gi"), namespace)
        await pods.create(claim_pod("waits", "big"), namespace)
        cond = await wait_for(lambda: scheduling_failure(client, namespace, "waits"), what="PodScheduled=False")
        assert cond["reason"] == "Unschedulable"
        assert cond["message"].startswith(
            "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."), cond
        await wait_for(lambda: failed_scheduling_events(client, namespace, "waits",
                                                        "node(s) didn't find available persistent volumes to bind"),
                       what="FailedScheduling event")
        assert not await node_of(client, namespace, "waits")
        # a PV that fits arrives: the PV event sends the pod round again
        await pvs.create(local_pv("vb-fits", node_b, size="64Gi"))
        storage.append("vb-fits")
        assert await wait_for(lambda: node_of(client, namespace, "waits"), what="pod bound") == node_b
        assert (await pvs.get("vb-fits"))["spec"]["claimRef"]["name"] == "big"
    finally:
        await _cleanup_pods(client, namespace)


async def test_missing_claim_is_reported_then_resolved(client, namespace, nodes, storage):
    _, node_b = nodes
    pvs = client.resource("", "v1", "persistentvolumes")
    pvcs = client.resource("", "v1", "persistentvolumeclaims")
    pods = client.resource("", "v1", "pods")
    try:
        await pods.create(claim_pod("orphan", "nope"), namespace)
        cond = await wait_for(lambda: scheduling_failure(client, namespace, "orphan"), what="PodScheduled=False")
        assert cond["message"].startswith('0/2 nodes are available: persistentvolumeclaim "nope" not found.'), cond
        await wait_for(lambda: failed_scheduling_events(client, namespace, "orphan",
                                                        'persistentvolumeclaim "nope" not found'),
                       what="FailedScheduling event")
        await pvs.create(local_pv("vb-for-nope", node_b))
        storage.append("vb-for-nope")
        await pvcs.create(claim("nope"), namespace)  # the claim event requeues the pod
        assert await wait_for(lambda: node_of(client, namespace, "orphan"), what="pod bound") == node_b
    finally:
        await _cleanup_pods(client, namespace)


async def test_provisioning_class_gets_the_selected_node_annotation(client, namespace, nodes, storage):
    """A WaitForFirstConsumer class with a real provisioner: no PV is matched; the scheduler
    marks the claim with volume.kubernetes.io/selected-node and waits.  A provisioner
    stand-in (this test: no external provisioner runs here) then creates a PV on that node
    pre-bound to the claim, the PV controller binds it, and the pod is bound to the selected
    node."""
    _, node_b = nodes
    scs = client.resource("storage.k8s.io", "v1", "storageclasses")
    pvs = client.resource("", "v1", "persistentvolumes")
    pvcs = client.resource("", "v1", "persistentvolumeclaims")
    pods = client.resource("", "v1", "pods")
    dyn = "vb-dynamic"
    topo = [{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": [node_b]}]}]
    await scs.create({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": dyn},
                      "provisioner": "example.com/stand-in", "volumeBindingMode": "WaitForFirstConsumer",
                      "allowedTopologies": topo})
    try:
        c = await pvcs.create({**claim("scratch"), "spec": {**claim("scratch")["spec"], "storageClassName": dyn}},
                              namespace)
        await pods.create(claim_pod("worker", "scratch"), namespace)

        async def selected():
            got = await pvcs.get("scratch", namespace=namespace)
            return (got["metadata"].get("annotations") or {}).get("volume.kubernetes.io/selected-node")

        assert await wait_for(selected, what="selected-node annotation") == node_b
        assert not await node_of(client, namespace, "worker")  # PreBind waits for the claim
        pv = local_pv("vb-provisioned", node_b)
        pv["spec"]["storageClassName"] = dyn
        pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": namespace,
                                  "name": "scratch", "uid": c["metadata"]["uid"]}
        await pvs.create(pv)
        storage.append("vb-provisioned")
        assert await wait_for(lambda: node_of(client, namespace, "worker"), what="pod bound") == node_b
    finally:
        await _cleanup_pods(client, namespace)
        with contextlib.suppress(NotFound):
            await scs.delete(dyn)


async def test_zone_labelled_volume_keeps_its_pods_in_the_zone(client, namespace, nodes, storage):
    """VolumeZone: a bound PV labelled topology.kubernetes.io/zone takes its pods to the
    node of that zone."""
    node_a, node_b = nodes
    nodes_api = client.resource("", "v1", "nodes")
    pvs = client.resource("", "v1", "persistentvolumes")
    pvcs = client.resource("", "v1", "persistentvolumeclaims")
    pods = client.resource("", "v1", "pods")
    try:
        await nodes_api.patch(node_a, {"metadata": {"labels": {"topology.kubernetes.io/zone": "z1"}}})
        await nodes_api.patch(node_b, {"metadata": {"labels": {"topology.kubernetes.io/zone": "z2"}}})
        c = await pvcs.create(claim("zonal"), namespace)
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": "vb-zonal", "labels": {"topology.kubernetes.io/zone": "z2"}},
              "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": CLASS,
                       "hostPath": {"path": "/mnt/zonal"},
                       "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": namespace,
                                    "name": "zonal", "uid": c["metadata"]["uid"]}}}
        await pvs.create(pv)
        storage.append("vb-zonal")

        async def claim_bound():
            got = await pvcs.get("zonal", namespace=namespace)
            return (got.get("status") or {}).get("phase") == "Bound"

        # bound first: an unbound WaitForFirstConsumer claim is VolumeBinding's, not VolumeZone's
        await wait_for(claim_bound, what="claim bound")
        for i in range(3):
            await pods.create(claim_pod(f"zoned-{i}", "zonal"), namespace)
        for i in range(3):
            assert await wait_for(lambda i=i: node_of(client, namespace, f"zoned-{i}"), what="pod bound") == node_b
    finally:
        await _cleanup_pods(client, namespace)


async def test_one_local_pv_two_claims_only_one_pod_gets_it(client, namespace, nodes, storage):
    """Two pods created together, each with its own claim, one fitting PV: the scheduler's
    assumed binding keeps the second pod from taking the same PV; it stays Pending."""
    _, node_b = nodes
    pvs = client.resource("", "v1", "persistentvolumes")
    pvcs = client.resource("", "v1", "persistentvolumeclaims")
    pods = client.resource("", "v1", "pods")
    try:
        await pvs.create(local_pv("vb-single", node_b))
        storage.append("vb-single")

        async def available():
            return ((await pvs.get("vb-single")).get("status") or {}).get("phase") == "Available"

        await wait_for(available, what="PV Available")
        for n in ("one", "two"):
            await pvcs.create(claim(f"claim-{n}"), namespace)
        await asyncio.gather(*(pods.create(claim_pod(f"pod-{n}", f"claim-{n}"), namespace) for n in ("one", "two")))

        async def outcome():
            placed = {n: await node_of(client, namespace, f"pod-{n}") for n in ("one", "two")}
            waiting = [n for n in ("one", "two") if not placed[n] and await scheduling_failure(client, namespace, f"pod-{n}")]
            return (placed, waiting) if len([p for p in placed.values() if p]) == 1 and waiting else None

        placed, (waiting,) = await wait_for(outcome, what="one pod bound, the other unschedulable")
        winner = next(n for n, p in placed.items() if p)
        assert placed[winner] == node_b
        assert (await pvs.get("vb-single"))["spec"]["claimRef"]["name"] == f"claim-{winner}"
        cond = await scheduling_failure(client, namespace, f"pod-{waiting}")
        assert "2 node(s) didn't find available persistent volumes to bind" in cond["message"], cond
    finally:
        await _cleanup_pods(client, namespace)
