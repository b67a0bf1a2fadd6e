"""Inter-pod affinity, topology spread and priority preemption through a real `kyb server`
(its scheduler) on simulated nodes."""

from __future__ import annotations

import pytest
from fixtures.waits import wait_until

from kybernetes.client import NotFound
from kybernetes.scheduler.simnodes import SimNodes

PODS = ("", "v1", "pods")
ZONE = "topology.kubernetes.io/zone"


def pod(name, labels=None, cpu=None, **spec):
    res = {"requests": {"cpu": cpu}} if cpu else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox", "resources": res}], **spec}}


@pytest.fixture
async def zoned(client):
    """Four simulated nodes, two per zone, with 2 cpus each; pods bound to them run."""
    nodes = client.resource("", "v1", "nodes")
    sim = SimNodes(client, 4, prefix="za-", cpu="2", run_pods=True)
    await sim.start()
    for i, name in enumerate(sim.names):
        await nodes.patch(name, {"metadata": {"labels": {ZONE: "z1" if i < 2 else "z2"}}})
    yield sim
    await sim.stop(delete=True)


async def placements(client, namespace, names):
    pods = client.resource(*PODS)

    async def all_bound():
        out = {}
        for n in names:
            p = await pods.get(n, namespace=namespace)
            if not p["spec"].get("nodeName"):
                return None
            out[n] = p["spec"]["nodeName"]
        return out
    return await wait_until(client, [(PODS, namespace)], all_bound, what=f"{names} bound")


async def scheduled_condition(client, namespace, name):
    pods = client.resource(*PODS)

    async def cond():
        p = await pods.get(name, namespace=namespace)
        c = [c for c in (p.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"]
        return c[0] if c and c[0]["status"] == "False" else None
    return await wait_until(client, [(PODS, namespace)], cond, what=f"{name} unschedulable")


async def test_anti_affinity_one_per_zone_then_unschedulable(client, namespace, zoned):
    pods = client.resource(*PODS)
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": ZONE}]}}
    for i in range(3):
        await pods.create(pod(f"db-{i}", {"app": "db"}, affinity=anti), namespace=namespace)
    c = await scheduled_condition(client, namespace, "db-2")
    got = await placements(client, namespace, ["db-0", "db-1"])
    zones = {int(n[-1]) < 2 for n in got.values()}
    assert zones == {True, False}  # one in each zone
    # the third: 2 nodes rejected by its own rule, 2 by the symmetric one; nothing to preempt
    assert c["reason"] == "Unschedulable"
    assert c["message"] == ("0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules. "
                            "preemption: 0/4 nodes are available: 4 No preemption victims found for incoming pod.")


async def test_topology_spread_evens_zones(client, namespace, zoned):
    pods = client.resource(*PODS)
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    names = [f"web-{i}" for i in range(6)]
    for n in names:
        await pods.create(pod(n, {"app": "web"}, topologySpreadConstraints=spread), namespace=namespace)
    got = await placements(client, namespace, names)
    z1 = sum(1 for n in got.values() if int(n[-1]) < 2)
    assert z1 == 3


async def test_preemption_evicts_lower_priority_and_nominates(client, namespace, zoned):
    pcs = client.resource("scheduling.k8s.io", "v1", "priorityclasses")
    pods = client.resource(*PODS)
    created = []
    for name, value, policy in ((f"{namespace}-low", 10, None), (f"{namespace}-high", 1000, None),
                                (f"{namespace}-never", 1000, "Never")):
        body = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value}
        if policy:
            body["preemptionPolicy"] = policy
        await pcs.create(body)
        created.append(name)
    try:
        # fill every node with low-priority pods (2 cpus each)
        fillers = [f"low-{i}" for i in range(4)]
        for n in fillers:
            await pods.create(pod(n, {"tier": "low"}, cpu="2", priorityClassName=f"{namespace}-low"), namespace=namespace)
        before = await placements(client, namespace, fillers)
        # preemptionPolicy Never waits instead of evicting
        await pods.create(pod("polite", cpu="2", priorityClassName=f"{namespace}-never"), namespace=namespace)
        c = await scheduled_condition(client, namespace, "polite")
        assert c["message"] == "0/4 nodes are available: 4 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
        await pods.delete("polite", namespace=namespace)
        # a high-priority pod evicts exactly one low pod and takes its node
        await pods.create(pod("vip", cpu="2", priorityClassName=f"{namespace}-high"), namespace=namespace)

        async def nominated_and_bound():
            p = await pods.get("vip", namespace=namespace)
            return p if p["spec"].get("nodeName") else None

        vip = await wait_until(client, [(PODS, namespace)], nominated_and_bound, timeout=30, what="vip bound")
        node = vip["spec"]["nodeName"]
        victim = next(n for n, at in before.items() if at == node)
        with pytest.raises(NotFound):
            await pods.get(victim, namespace=namespace)
        left = [n for n in fillers if n != victim]
        assert {n: before[n] for n in left} == await placements(client, namespace, left)
        ev = client.resource("", "v1", "events")

        async def preempted_event():
            items = (await ev.list(namespace))["items"]
            return [e for e in items if e["reason"] == "Preempted" and e["involvedObject"]["name"] == victim]

        pre = await wait_until(client, [(("", "v1", "events"), namespace)], preempted_event, what="Preempted event")
        assert pre[0]["message"] == f"Preempted by pod {vip['metadata']['uid']} on node {node}"
        assert pre[0]["type"] == "Normal"
    finally:
        for name in created:
            await pcs.delete(name)


async def test_extended_resources_gpu(client, namespace):
    pods = client.resource(*PODS)
    sim = SimNodes(client, 2, prefix="gpu-", extended={"nvidia.com/gpu": "1"})
    await sim.start()
    try:
        for i in range(3):
            p = pod(f"train-{i}")
            p["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
            await pods.create(p, namespace=namespace)

        async def two_bound_one_waiting():
            items = (await pods.list(namespace))["items"]
            bound = sorted(p["spec"].get("nodeName") or "" for p in items)
            waiting = [p for p in items if not p["spec"].get("nodeName") and any(
                c["type"] == "PodScheduled" and c["status"] == "False" for c in (p.get("status") or {}).get("conditions") or [])]
            return (bound, waiting[0]) if bound[1:] == ["gpu-0000", "gpu-0001"] and waiting else None

        bound, waiting = await wait_until(client, [(PODS, namespace)], two_bound_one_waiting, what="two on GPUs, one waiting")
        msg = next(c["message"] for c in waiting["status"]["conditions"] if c["type"] == "PodScheduled")
        assert msg.startswith("0/") and "2 Insufficient nvidia.com/gpu." in msg
    finally:
        await sim.stop(delete=True)
