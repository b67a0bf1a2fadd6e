"""The scheduler inside `kyb server`, placing pods on simulated nodes."""

from __future__ import annotations

import asyncio
import time

import pytest

from kybernetes.client import Client
from kybernetes.scheduler.simnodes import SimNodes

NS = "default"


async def wait_for(fn, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def pod(name, *, cpu=None, memory=None, **spec):
    res = {}
    if cpu or memory:
        res = {"requests": {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": res}], **spec}}


@pytest.fixture
async def client(kyb):
    async with Client.from_kubeconfig(kyb.kubeconfig) as c:
        yield c


async def bound_node(pods, name):
    p = await pods.get(name, namespace=NS)
    return p["spec"].get("nodeName")


async def test_binds_honouring_resources_selector_affinity_taints(client):
    pods = client.resource("", "v1", "pods")
    sim = SimNodes(client, 3, prefix="t1-", cpu="2", memory="4Gi")
    await sim.start()
    nodes = client.resource("", "v1", "nodes")
    try:
        # label one node, taint another
        await nodes.patch("t1-0001", {"metadata": {"labels": {"disk": "ssd"}}})
        await nodes.patch("t1-0002", {"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}})

        await pods.create(pod("sel", nodeSelector={"disk": "ssd"}))
        await pods.create(pod("aff", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                                         "values": ["t1-0000"]}]}]}}}))
        await pods.create(pod("tol", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                                   "effect": "NoSchedule"}],
                              affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                                  "nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname",
                                                                               "operator": "In", "values": ["t1-0002"]}]}]}}}))
        await pods.create(pod("other-sched", schedulerName="someone-else"))
        assert await wait_for(lambda: bound_node(pods, "sel")) == "t1-0001"
        assert await wait_for(lambda: bound_node(pods, "aff")) == "t1-0000"
        assert await wait_for(lambda: bound_node(pods, "tol")) == "t1-0002"
        # resources: 2 cpus per node; 1500m pods fit one per node, the untainted two only
        for i in range(2):
            await pods.create(pod(f"big-{i}", cpu="1500m"))
        got = {await wait_for(lambda i=i: bound_node(pods, f"big-{i}")) for i in range(2)}
        assert got == {"t1-0000", "t1-0001"}
        p = await pods.get("other-sched", namespace=NS)
        assert not p["spec"].get("nodeName")
    finally:
        await sim.stop(delete=True)
        await pods.delete_collection(NS)


async def test_unschedulable_condition_then_scheduled_when_node_appears(client):
    pods = client.resource("", "v1", "pods")
    sim = SimNodes(client, 3, prefix="t2-", cpu="1", memory="1Gi")
    await sim.start()
    nodes = client.resource("", "v1", "nodes")
    late = None
    try:
        await nodes.patch("t2-0000", {"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}})
        await pods.create(pod("huge", cpu="3"))

        async def cond():
            p = await pods.get("huge", namespace=NS)
            c = [c for c in (p.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"]
            return c[0] if c and c[0]["status"] == "False" else None

        c = await wait_for(cond, what="PodScheduled=False")
        assert c["reason"] == "Unschedulable"
        assert c["message"].startswith("0/3 nodes are available: ") or c["message"].startswith("0/"), c
        assert "1 node(s) had untolerated taint {k: v}" in c["message"]
        assert "2 Insufficient cpu" in c["message"]
        ev = client.resource("", "v1", "events")

        async def event():
            items = (await ev.list(NS))["items"]
            return [e for e in items if e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == "huge"]

        e = (await wait_for(event, what="FailedScheduling event"))[0]
        assert e["type"] == "Warning" and "Insufficient cpu" in e["message"]

        late = SimNodes(client, 1, prefix="t2-big-", cpu="4", memory="4Gi")
        await late.start()
        assert await wait_for(lambda: bound_node(pods, "huge"), timeout=20) == "t2-big-0000"
    finally:
        await sim.stop(delete=True)
        if late is not None:
            await late.stop(delete=True)
        await pods.delete_collection(NS)


@pytest.mark.slow
async def test_500_pods_on_50_nodes(client):
    pods = client.resource("", "v1", "pods")
    sim = SimNodes(client, 50, prefix="t3-", cpu="32", memory="64Gi")
    await sim.start()
    try:
        sem = asyncio.Semaphore(32)

        async def mk(i):
            async with sem:
                await pods.create(pod(f"many-{i:03d}", cpu="100m", memory="64Mi"))

        t0 = time.monotonic()
        await asyncio.gather(*(mk(i) for i in range(500)))

        async def all_bound():
            items = (await pods.list(NS))["items"]
            n = sum(1 for p in items if p["metadata"]["name"].startswith("many-") and p["spec"].get("nodeName"))
            return n == 500 or None

        await wait_for(all_bound, timeout=60, what="500 pods bound")
        items = (await pods.list(NS))["items"]
        per_node = {}
        for p in items:
            if not p["metadata"]["name"].startswith("many-"):
                continue
            per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
        assert set(per_node) == {f"t3-{i:04d}" for i in range(50)}  # LeastAllocated spreads them
        print(f"500 pods on 50 nodes in {time.monotonic() - t0:.1f}s")
    finally:
        await sim.stop(delete=True)
        await pods.delete_collection(NS)


async def test_scheduler_events_are_events_k8s_io_with_series(client, kyb):
    """Scheduled and FailedScheduling come from the shared recorder: events.k8s.io/v1,
    reportingController default-scheduler, actions Binding / Scheduling, and a failure
    repeated on an unchanged pod is one Event with a series count (kubectl events: xN)."""
    pods = client.resource("", "v1", "pods")
    evs = client.resource("events.k8s.io", "v1", "events")
    nodes = client.resource("", "v1", "nodes")
    sim = SimNodes(client, 1, prefix="t4-", cpu="1", memory="1Gi")
    await sim.start()
    try:
        await pods.create(pod("fits", cpu="100m"))
        await pods.create(pod("toobig", cpu="3"))

        async def events_of(name, reason):
            return [e for e in (await evs.list(NS))["items"]
                    if e["regarding"]["name"] == name and e["reason"] == reason]

        (ok,) = await wait_for(lambda: events_of("fits", "Scheduled"), what="Scheduled event")
        assert ok["action"] == "Binding" and ok["type"] == "Normal"
        assert ok["reportingController"] == "default-scheduler"
        assert ok["note"] == f"Successfully assigned {NS}/fits to t4-0000"

        # every node change sends the unschedulable pod round again, with the same verdict
        n = 0

        async def repeated():
            nonlocal n
            n += 1
            await nodes.patch("t4-0000", {"metadata": {"labels": {"nudge": str(n)}}})
            es = await events_of("toobig", "FailedScheduling")
            return [e for e in es if (e.get("series") or {}).get("count", 1) >= 2]

        (failed,) = await wait_for(repeated, timeout=60, what="FailedScheduling series")
        assert failed["action"] == "Scheduling" and failed["type"] == "Warning"
        assert failed["reportingController"] == "default-scheduler"
        assert failed["note"].startswith("0/1 nodes are available: 1 Insufficient cpu. preemption: ")
        out = (await asyncio.to_thread(kyb.kubectl, "events", "-n", NS, "--for", "pod/toobig")).stdout
        line = next(ln for ln in out.splitlines() if "FailedScheduling" in ln)
        assert "(x" in line and "Insufficient cpu" in line, out
        # the core/v1 view (kubectl get events) carries the same count
        core = [e for e in (await client.resource("", "v1", "events").list(NS))["items"]
                if e["involvedObject"]["name"] == "toobig" and e["reason"] == "FailedScheduling"]
        assert any((e.get("series") or {}).get("count", 0) >= 2 for e in core)
    finally:
        await sim.stop(delete=True)
        await pods.delete_collection(NS)
