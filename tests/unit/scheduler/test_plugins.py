"""Unit tests of the scheduler plugins, the framework runner, the cache and the queue."""

from __future__ import annotations

import asyncio

import pytest

from kybernetes.scheduler.cache import Cache
from kybernetes.scheduler.framework import Code, CycleState, Diagnosis, Framework, NodeInfo, PodInfo, Status
from kybernetes.scheduler.plugins.nodeaffinity import NodeAffinity
from kybernetes.scheduler.plugins.nodename import NodeName
from kybernetes.scheduler.plugins.nodeports import NodePorts
from kybernetes.scheduler.plugins.noderesources import NodeResourcesFit
from kybernetes.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from kybernetes.scheduler.plugins.tainttoleration import TaintToleration
from kybernetes.scheduler.profile import DEFAULT_WEIGHTS
from kybernetes.scheduler.queue import NODE_ADD, SchedulingQueue
from kybernetes.scheduler.resources import pod_requests
from kybernetes.scheduler.scheduler import num_feasible_nodes_to_find


def node(name, cpu="4", memory="8Gi", pods="110", labels=None, taints=None, unschedulable=False, **extra):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **extra}}}


def pod(name="p", cpu=None, memory=None, init=(), **spec):
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"metadata": {"name": name, "namespace": "d"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": req}}],
                     "initContainers": list(init), **spec}}


def run_filter(plugin, p, ni):
    st = CycleState()
    if hasattr(plugin, "pre_filter"):
        pre = plugin.pre_filter(st, p)
        if pre is not None and pre.code == Code.SKIP:
            return None
    return plugin.filter(st, p, ni)


def test_requests_init_container_max_rule_and_sidecars():
    p = pod(cpu="500m", memory="1Gi", init=[{"name": "i", "resources": {"requests": {"cpu": "2"}}}])
    r = pod_requests(p)
    assert r.milli_cpu == 2000 and r.memory == 1024 ** 3
    side = pod(cpu="500m", init=[{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "250m"}}}])
    assert pod_requests(side).milli_cpu == 750
    assert pod_requests(pod()).milli_cpu == 0
    assert pod_requests(pod(), non_zero=True).milli_cpu == 100


def test_node_resources_fit_reasons():
    ni = NodeInfo(node("n", cpu="1", memory="1Gi", pods="1", **{"nvidia.com/gpu": "1"}))
    big = pod(cpu="2", memory="2Gi")
    st = run_filter(NodeResourcesFit(), big, ni)
    assert st.code == Code.UNSCHEDULABLE and st.reasons == ["Insufficient cpu", "Insufficient memory"]
    ni.add_pod(PodInfo(pod("other")))
    st = run_filter(NodeResourcesFit(), pod("x"), ni)
    assert st.reasons == ["Too many pods"]
    gpu = pod("g")
    gpu["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "2"
    ni2 = NodeInfo(node("n2", **{"nvidia.com/gpu": "1"}))
    assert run_filter(NodeResourcesFit(), gpu, ni2).reasons == ["Insufficient nvidia.com/gpu"]
    assert run_filter(NodeResourcesFit(), pod(cpu="1"), NodeInfo(node("n3"))) is None


def test_least_allocated_prefers_emptier_node():
    f = NodeResourcesFit()
    empty, busy = NodeInfo(node("a")), NodeInfo(node("b"))
    busy.add_pod(PodInfo(pod("x", cpu="3", memory="6Gi")))
    st = CycleState()
    p = pod(cpu="500m", memory="1Gi")
    assert f.score(st, p, empty) > f.score(st, p, busy)


def test_node_affinity_selector_and_required_and_preferred():
    a = NodeAffinity()
    ssd = NodeInfo(node("s", labels={"disk": "ssd", "zone": "z1"}))
    hdd = NodeInfo(node("h", labels={"disk": "hdd", "zone": "z2"}))
    p = pod(nodeSelector={"disk": "ssd"})
    assert run_filter(a, p, ssd) is None
    st = run_filter(a, p, hdd)
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE and st.reasons == ["node(s) didn't match Pod's node affinity/selector"]
    req = pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z1"]}]}]}}})
    assert run_filter(a, req, ssd) is not None and run_filter(a, req, hdd) is None
    pref = pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]}}]}})
    st = CycleState()
    assert a.pre_score(st, pref, [ssd, hdd]) is None
    scores = {n.name: a.score(st, pref, n) for n in (ssd, hdd)}
    a.normalize_score(st, pref, scores)
    assert scores == {"s": 0, "h": 100}


def test_taints_and_tolerations():
    t = TaintToleration()
    tainted = NodeInfo(node("t", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    st = run_filter(t, pod(), tainted)
    assert st.reasons == ["node(s) had untolerated taint {k: v}"]
    assert run_filter(t, pod(tolerations=[{"key": "k", "operator": "Exists"}]), tainted) is None
    assert run_filter(t, pod(tolerations=[{"key": "k", "value": "w", "effect": "NoSchedule"}]), tainted) is not None
    prefer = NodeInfo(node("p", taints=[{"key": "x", "effect": "PreferNoSchedule"}]))
    clean = NodeInfo(node("c"))
    st = CycleState()
    t.pre_score(st, pod(), [prefer, clean])
    scores = {n.name: t.score(st, pod(), n) for n in (prefer, clean)}
    t.normalize_score(st, pod(), scores)
    assert scores == {"p": 0, "c": 100}


def test_unschedulable_nodename_ports():
    cordoned = NodeInfo(node("c", unschedulable=True))
    assert run_filter(NodeUnschedulable(), pod(), cordoned).reasons == ["node(s) were unschedulable"]
    assert run_filter(NodeUnschedulable(), pod(tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                                             "operator": "Exists", "effect": "NoSchedule"}]), cordoned) is None
    assert run_filter(NodeName(), pod(nodeName="x"), cordoned).reasons == ["node(s) didn't match the requested node name"]
    hp = pod("h")
    hp["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    ni = NodeInfo(node("n"))
    assert run_filter(NodePorts(), hp, ni) is None
    ni.add_pod(PodInfo(hp))
    assert run_filter(NodePorts(), pod("h2", **{}) | {"spec": hp["spec"]}, ni).reasons == [
        "node(s) didn't have free ports for the requested pod ports"]


def test_fit_error_message_format():
    d = Diagnosis(num_all_nodes=3, node_statuses={
        "a": Status.unresolvable("node(s) had untolerated taint {k: v}"),
        "b": Status.unschedulable("Insufficient cpu"), "c": Status.unschedulable("Insufficient cpu")})
    assert d.message() == "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu."
    inner = Diagnosis(num_all_nodes=3, node_statuses={n: Status.unresolvable("Preemption is not helpful for scheduling") for n in "abc"})
    d.post_filter_msg = "preemption: " + inner.message()
    assert d.message() == ("0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu. "
                           "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


def test_framework_weights_and_order():
    fw = Framework("default-scheduler", [TaintToleration(), NodeAffinity(), NodeResourcesFit()], DEFAULT_WEIGHTS)
    assert [p.name for p in fw.filter_plugins] == ["TaintToleration", "NodeAffinity", "NodeResourcesFit"]
    assert {r.plugin.name: r.weight for r in fw.score_plugins} == {"TaintToleration": 3, "NodeAffinity": 2, "NodeResourcesFit": 1}
    st = CycleState()
    p = pod(cpu="1")
    assert fw.run_pre_filter(st, p).is_success()
    bad = NodeInfo(node("bad", taints=[{"key": "k", "effect": "NoExecute"}]))
    s = fw.run_filter(st, p, bad)
    assert s.plugin == "TaintToleration"
    nodes = [NodeInfo(node("a")), NodeInfo(node("b", cpu="2"))]
    fw.run_pre_score(st, p, nodes)
    totals = fw.run_score(st, p, nodes)
    assert totals["a"] > totals["b"]


def test_cache_assume_confirm_forget():
    c = Cache()
    c.add_node(node("n", cpu="2"))
    p = pod("a", cpu="1")
    p["spec"]["nodeName"] = "n"
    c.assume_pod(p)
    assert c.nodes["n"].requested.milli_cpu == 1000 and c.is_assumed(p)
    c.add_pod(p)  # seen bound: confirmed, not double-counted
    assert c.nodes["n"].requested.milli_cpu == 1000 and not c.is_assumed(p)
    q = pod("b", cpu="1")
    q["spec"]["nodeName"] = "n"
    c.assume_pod(q)
    c.forget_pod(q)
    assert c.nodes["n"].requested.milli_cpu == 1000
    c.remove_pod(p)
    assert c.nodes["n"].requested.milli_cpu == 0


def test_num_feasible_nodes():
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(1000) == 420
    assert num_feasible_nodes_to_find(5000) == 500


async def test_queue_priority_backoff_and_moves():
    now = [100.0]
    q = SchedulingQueue(clock=lambda: now[0])
    lo, hi = pod("lo"), pod("hi", priority=10)
    q.add(lo)
    q.add(hi)
    first = await q.pop()
    assert first.key == "d/hi"
    second = await q.pop()
    # failed with no move request since: unschedulable
    q.requeue_unschedulable(second, {"NodeResourcesFit"}, second.cycle)
    assert q.where("d/lo") == "unschedulable"
    assert q.backoff_duration(second) == 1.0
    second.attempts = 5
    assert q.backoff_duration(second) == 10.0
    second.attempts = 1
    now[0] += 2  # backoff expired: a node add moves it straight to active
    assert q.move_all(NODE_ADD) == 1
    assert q.where("d/lo") == "active"
    again = await q.pop()
    assert again.attempts == 2
    # a move request during the attempt sends the failure to backoff, not unschedulable
    q.move_all(NODE_ADD)
    q.requeue_unschedulable(again, {"NodeResourcesFit"}, again.cycle)
    assert q.where("d/lo") == "backoff"
    q.delete(lo)
    assert q.where("d/lo") is None
    q.close()
