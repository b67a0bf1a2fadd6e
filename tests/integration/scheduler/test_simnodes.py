"""The simulated nodes' fake kubelet against a real server: running, failing on the
annotation, finishing deletions after the grace period, leaving terminal pods alone,
and keeping extended resources an admin patched into the node status."""

from __future__ import annotations

import ipaddress

import pytest
from fixtures.waits import wait_until

from kybernetes.client import NotFound
from kybernetes.scheduler.simnodes import FAIL_ANNOTATION, SimNodes

PODS = ("", "v1", "pods")


def pod(name, node, **meta):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **meta},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox"}]}}


@pytest.fixture
async def sim(client):
    s = SimNodes(client, 1, prefix="simk-", run_pods=True)
    await s.start()
    yield s
    await s.stop(delete=True)


async def test_pod_runs_then_deletion_finishes_after_grace(client, namespace, sim):
    pods = client.resource(*PODS)
    await pods.create(pod("a", "simk-0000"), namespace=namespace)

    async def running():
        p = await pods.get("a", namespace=namespace)
        return p if (p.get("status") or {}).get("phase") == "Running" else None

    p = await wait_until(client, [(PODS, namespace)], running, what="pod Running")
    node = await client.resource("", "v1", "nodes").get("simk-0000")
    assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert all(cs["ready"] for cs in p["status"]["containerStatuses"])
    await pods.delete("a", namespace=namespace)
    # graceful: still there, terminating, right after the delete
    assert (await pods.get("a", namespace=namespace))["metadata"].get("deletionTimestamp")

    async def gone():
        try:
            await pods.get("a", namespace=namespace)
        except NotFound:
            return True
        return False

    await wait_until(client, [(PODS, namespace)], gone, timeout=15, what="pod removed after its grace period")


async def test_fail_annotation_and_terminal_pods_untouched(client, namespace, sim):
    pods = client.resource(*PODS)
    await pods.create(pod("f", "simk-0000", annotations={FAIL_ANNOTATION: "boom"}), namespace=namespace)

    async def failed():
        p = await pods.get("f", namespace=namespace)
        return p if (p.get("status") or {}).get("phase") == "Failed" else None

    p = await wait_until(client, [(PODS, namespace)], failed, what="pod Failed")
    term = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 1 and term["message"] == "boom"
    # a pod someone else finished stays finished, even when it changes afterwards
    await pods.create(pod("s", "simk-0000"), namespace=namespace)
    await wait_until(client, [(PODS, namespace)],
                     lambda: _phase_is(pods, namespace, "s", "Running"), what="s Running")
    await pods.patch("s", {"status": {"phase": "Succeeded"}}, "merge", namespace=namespace, subresource="status")
    await pods.patch("s", {"metadata": {"labels": {"touched": "yes"}}}, "merge", namespace=namespace)
    await pods.patch("f", {"metadata": {"labels": {"touched": "yes"}}}, "merge", namespace=namespace)
    # a marker pod created after those writes: once it runs, the simulator has seen them all
    await pods.create(pod("marker", "simk-0000"), namespace=namespace)
    await wait_until(client, [(PODS, namespace)],
                     lambda: _phase_is(pods, namespace, "marker", "Running"), what="marker Running")
    assert (await pods.get("s", namespace=namespace))["status"]["phase"] == "Succeeded"
    assert (await pods.get("f", namespace=namespace))["status"]["phase"] == "Failed"


async def _phase_is(pods, ns, name, phase):
    p = await pods.get(name, namespace=ns)
    return (p.get("status") or {}).get("phase") == phase


async def test_admin_patched_extended_resources_survive(client):
    nodes = client.resource("", "v1", "nodes")
    s = SimNodes(client, 1, prefix="simx-")
    await s.start()
    try:
        await nodes.patch("simx-0000", {"status": {"capacity": {"example.com/dongle": "4"},
                                                   "allocatable": {"example.com/dongle": "4"}}},
                          "merge", subresource="status")
        await s.heartbeat("simx-0000")
        # a restarted simulator registers the same node again
        s2 = SimNodes(client, 1, prefix="simx-")
        await s2.register()
        n = await nodes.get("simx-0000")
        assert n["status"]["capacity"]["example.com/dongle"] == "4"
        assert n["status"]["allocatable"]["example.com/dongle"] == "4"
        assert n["status"]["capacity"]["cpu"] == "4"
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
    finally:
        await s.stop(delete=True)


def _cond(obj, ctype):
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


async def test_pod_marked_not_ready_is_made_ready_again(client, namespace, sim):
    # the node lifecycle controller marks pods NotReady when a lease is late (a loaded
    # machine); the kubelet's status sync restores what it knows, or readyReplicas of
    # their ReplicaSets would stay short for good
    pods = client.resource(*PODS)
    await pods.create(pod("r", "simk-0000"), namespace=namespace)
    await wait_until(client, [(PODS, namespace)],
                     lambda: _phase_is(pods, namespace, "r", "Running"), what="r Running")
    await pods.patch("r", {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "NodeNotReady",
                                                      "message": ""}]}},
                     "strategic", namespace=namespace, subresource="status")

    async def ready_again():
        p = await pods.get("r", namespace=namespace)
        return p if _cond(p, "Ready").get("status") == "True" else None

    p = await wait_until(client, [(PODS, namespace)], ready_again, timeout=15, what="pod Ready again")
    assert p["status"]["phase"] == "Running" and _cond(p, "ContainersReady")["status"] == "True"
    assert not _cond(p, "Ready").get("reason")


async def test_node_marked_unknown_reports_ready_again(client, sim):
    nodes = client.resource("", "v1", "nodes")
    await nodes.patch("simk-0000", {"status": {"conditions": [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
         "message": "Kubelet stopped posting node status."}]}}, "strategic", subresource="status")

    async def ready_again():
        n = await nodes.get("simk-0000")
        return n if _cond(n, "Ready").get("status") == "True" else None

    n = await wait_until(client, [(("", "v1", "nodes"), None)], ready_again, timeout=15, what="node Ready again")
    assert _cond(n, "Ready")["reason"] == "KubeletReady"
    assert _cond(n, "MemoryPressure")["status"] == "False"
