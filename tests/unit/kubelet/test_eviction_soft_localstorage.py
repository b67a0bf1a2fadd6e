"""The eviction manager's soft thresholds (grace periods, max pod grace period), minimum
reclaim, pressure transition period, pid.available and local storage isolation, with an
injected clock and injected stats (no sleeping), and its flags as upstream parses them."""

from __future__ import annotations

import argparse
import re

import pytest

from kybernetes.cli.agent import add_kubelet_arguments, kubelet_options
from kybernetes.kubelet import eviction as ev
from kybernetes.kubelet import eviction_localstorage as ls
from kybernetes.kubelet import eviction_thresholds as et

MI = 1 << 20


def summary(mem_avail=4096 * MI, ws=1024 * MI, fs=(100, 50), pids=None, pods=()):
    node = {"nodeName": "n", "memory": {"availableBytes": mem_avail, "workingSetBytes": ws},
            "fs": {"capacityBytes": fs[0] * MI, "availableBytes": fs[1] * MI, "inodes": 1000, "inodesFree": 900}}
    if pids is not None:
        node["rlimit"] = {"maxpid": pids[0], "curproc": pids[1]}
    return {"node": node, "pods": list(pods)}


def pstats(uid, mem=10, procs=None, rootfs=None, logs=0, containers=("c",)):
    cs = []
    for n in containers:
        c = {"name": n, "memory": {"workingSetBytes": mem * MI}, "logs": {"usedBytes": logs}}
        if rootfs is not None:
            c["rootfs"] = {"usedBytes": rootfs}
        cs.append(c)
    out = {"podRef": {"name": uid, "namespace": "default", "uid": uid}, "containers": cs,
           "memory": {"workingSetBytes": mem * MI * len(containers)},
           "ephemeral-storage": {"usedBytes": len(containers) * ((rootfs or 0) + logs), "inodesUsed": 1}}
    if procs is not None:
        out["process_stats"] = {"process_count": procs}
    return out


def pod(uid, priority=None, grace=None, volumes=(), limits=None, **c_extra):
    c = {"name": "c", **c_extra}
    if limits:
        c["resources"] = {"limits": limits}
    spec = {"containers": [c], "volumes": list(volumes)}
    if priority is not None:
        spec["priority"] = priority
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"metadata": {"name": uid, "namespace": "default", "uid": uid}, "spec": spec}


class Fake:
    def __init__(self, s):
        self.s, self.evicted, self.now, self.changes = s, [], 1000.0, 0

    async def summary(self):
        return self.s

    async def evict(self, p, msg, ann, grace=None, disruption_condition=True):
        self.evicted.append((p["metadata"]["uid"], msg, grace, disruption_condition))
        return True


def manager(f, pods, thresholds, **kw):
    return ev.EvictionManager(f.summary, thresholds, active_pods=lambda: pods, evict=f.evict,
                              on_pressure_change=lambda: setattr(f, "changes", f.changes + 1),
                              clock=lambda: f.now, **kw)


# ------------------------------------------------------------------ flags

def test_parse_threshold_config():
    ts = et.parse_threshold_config("memory.available<100Mi", "memory.available<1.5Gi,nodefs.available<15%",
                                   "memory.available=1m30s, nodefs.available=30s",
                                   "memory.available=0Mi,nodefs.available=5%")
    assert [(str(t), t.grace_period, t.hard, str(t.min_reclaim)) for t in ts] == [
        ("memory.available<100Mi", 0, True, "0"),
        ("memory.available<1536Mi", 90.0, False, "0"),
        ("nodefs.available<15%", 30.0, False, "5%")]
    assert ts[2].min_reclaim.resolve(1000) == 50
    assert str(et.parse_threshold_config("pid.available<10%")[0]) == "pid.available<10%"
    for args, msg in [
        (("", "memory.available<1Gi"), "grace period must be specified for the soft eviction threshold "
                                       "memory.available"),
        (("", "", "memory.available=-1s"), "invalid eviction grace period specified: -1s, must be a positive value"),
        (("", "", "memory.available=soon"), 'time: invalid duration "soon"'),
        (("", "", "cpu=1s"), "unsupported eviction signal cpu"),
        (("", "", "memory.available:1s"), "malformed pair, expect string=string"),
        (("", "", "", "memory.available=0%"), "eviction percentage minimum reclaim memory.available must be "
                                               "positive: 0%"),
        (("", "", "", "memory.available=-1Mi"), "negative eviction minimum reclaim specified for memory.available"),
    ]:
        with pytest.raises(ValueError, match=re.escape(msg)):
            et.parse_threshold_config(*args)


def parse_flags(*argv):
    p = argparse.ArgumentParser()
    add_kubelet_arguments(p)
    return kubelet_options(p.parse_args(list(argv)))


def test_agent_eviction_flags():
    opts = parse_flags("--eviction-hard", "memory.available<100Mi", "--eviction-soft", "memory.available<1Gi",
                       "--eviction-soft-grace-period", "memory.available=1m30s",
                       "--eviction-minimum-reclaim", "memory.available=64Mi",
                       "--eviction-max-pod-grace-period", "20")
    hard, soft = opts["eviction_hard"]
    assert (hard.hard, hard.min_reclaim) == (True, et.Value(quantity=64 * MI))
    assert (soft.grace_period, str(soft)) == (90.0, "memory.available<1Gi")
    assert opts["eviction_max_pod_grace_period"] == 20 and opts["local_storage_capacity_isolation"] is True
    assert parse_flags("--local-storage-capacity-isolation", "false")["local_storage_capacity_isolation"] is False
    with pytest.raises(ValueError, match="^--eviction-soft-grace-period: grace period must be specified"):
        parse_flags("--eviction-soft", "memory.available<1Gi")
    with pytest.raises(ValueError, match="^--eviction-minimum-reclaim: unsupported eviction signal x"):
        parse_flags("--eviction-minimum-reclaim", "x=1")


# ------------------------------------------------------------------ soft thresholds, reclaim, transition

async def test_soft_threshold_waits_for_its_grace_period():
    soft = et.parse_threshold_config("", "memory.available<500Mi", "memory.available=60s")
    pods = [pod("a", grace=45), pod("b", grace=5)]
    f = Fake(summary(mem_avail=300 * MI, pods=[pstats("a", mem=50), pstats("b", mem=10)]))
    m = manager(f, pods, soft, max_pod_grace_period=30, transition_period=0)
    # met: the condition shows at once, but nobody goes before the grace period
    assert await m.synchronize() is None and m.pressure == {"MemoryPressure"}
    f.now += 59
    assert await m.synchronize() is None and f.evicted == []
    # the signal recovers for one pass: the grace period starts over
    f.s = summary(pods=f.s["pods"])
    f.now += 1
    assert await m.synchronize() is None and m.pressure == set()
    f.s = summary(mem_avail=300 * MI, pods=f.s["pods"])
    f.now += 1
    assert await m.synchronize() is None
    f.now += 30
    assert await m.synchronize() is None and f.evicted == []
    f.now += 30
    got = await m.synchronize()
    # soft: the pod's own grace period, capped by --eviction-max-pod-grace-period
    assert got["metadata"]["uid"] == "a" and f.evicted[0][2:] == (30, True)
    assert f.evicted[0][1].startswith("The node was low on resource: memory. Threshold quantity: 500Mi, "
                                      "available: 300Mi. Container c was using 50Mi, request is 0")
    assert ev.soft_grace(pods[1], 30) == 5 and ev.soft_grace(pod("x"), 60) == 30 and ev.soft_grace(pod("x"), -1) == 0


async def test_hard_threshold_immediate_with_minimum_reclaim_and_transition():
    ts = et.parse_threshold_config("memory.available<100Mi", minimum_reclaim="memory.available=50Mi")
    pods = [pod("a"), pod("b"), pod("c")]
    stats = [pstats("a", mem=30), pstats("b", mem=20), pstats("c", mem=10)]
    f = Fake(summary(mem_avail=60 * MI, pods=stats))
    m = manager(f, pods, ts, transition_period=300)
    assert (await m.synchronize())["metadata"]["uid"] == "a"
    assert f.evicted[0][2:] == (ev.IMMEDIATE_GRACE_SECONDS, True) == (1, True)
    # above the threshold but not past it by the minimum reclaim: still met, next pod goes
    f.s, f.now = summary(mem_avail=120 * MI, pods=stats[1:]), f.now + 10
    pods.pop(0)
    assert (await m.synchronize())["metadata"]["uid"] == "b" and m.pressure == {"MemoryPressure"}
    # recovered past threshold + minimum reclaim: no eviction, the condition stays for the transition period
    f.s, f.now = summary(mem_avail=160 * MI, pods=stats[2:]), f.now + 10
    assert await m.synchronize() is None and m.thresholds_met == [] and m.pressure == {"MemoryPressure"}
    f.now += 289  # 299 s after the threshold was last met
    assert await m.synchronize() is None and m.pressure == {"MemoryPressure"}
    f.now += 1
    assert await m.synchronize() is None and m.pressure == set() and f.changes == 2
    assert len(f.evicted) == 2
    # without a minimum reclaim the same 120Mi would have resolved it
    f2 = Fake(summary(mem_avail=60 * MI, pods=stats))
    m2 = manager(f2, [pod("a"), pod("b")], et.parse_threshold_config("memory.available<100Mi"))
    await m2.synchronize()
    f2.s = summary(mem_avail=120 * MI, pods=stats)
    assert await m2.synchronize() is None and len(f2.evicted) == 1


async def test_pid_pressure():
    ts = et.parse_threshold_config("pid.available<100")
    pods = [pod("lots"), pod("few"), pod("vip", priority=1000), pod("low", priority=-1)]
    stats = [pstats("lots", procs=500), pstats("few", procs=3), pstats("vip", procs=900), pstats("low", procs=1)]
    f = Fake(summary(pids=(4096, 4050), pods=stats))
    node_events = []
    m = manager(f, pods, ts, node_event=lambda *e: node_events.append(e))
    assert ev.observe(f.s)["pid.available"] == ev.Observation(46, 4096)
    got = await m.synchronize()
    assert got["metadata"]["uid"] == "low" and m.pressure == {"PIDPressure"}
    assert node_events == [("Warning", "EvictionThresholdMet", "Attempting to reclaim pids")]
    assert f.evicted[0][1] == "The node was low on resource: pids. Threshold quantity: 100, available: 46. "
    # upstream's PID ranking: priority, then the most processes
    assert [p["metadata"]["uid"] for p in ev.rank(pods, {s["podRef"]["uid"]: s for s in stats}, "pid.available")] \
        == ["low", "lots", "few", "vip"]
    assert m.admit(pod("new")) == ("Evicted", "The node had condition: [PIDPressure]. ")


def test_rank_disk_counts_local_volumes():
    pods = [pod("a"), pod("b", limits=None)]
    stats = {"a": pstats("a", rootfs=2 * MI), "b": pstats("b", rootfs=1 * MI)}
    assert [p["metadata"]["uid"] for p in ev.rank(pods, stats, "nodefs.available")] == ["a", "b"]
    # b's emptyDir makes it the larger consumer
    got = ev.rank(pods, stats, "nodefs.available", {"b": 5 * MI})
    assert [p["metadata"]["uid"] for p in got] == ["b", "a"]


# ------------------------------------------------------------------ local storage isolation

def empty_dir(name, size=None, medium=None):
    src = {}
    if size:
        src["sizeLimit"] = size
    if medium:
        src["medium"] = medium
    return {"name": name, "emptyDir": src}


def test_local_storage_violations():
    p = pod("a", volumes=[empty_dir("scratch", "1Mi"), empty_dir("mem", "1Mi", "Memory"), empty_dir("free")])
    st = pstats("a", rootfs=0)
    assert ls.local_storage_violation(p, st, {"scratch": MI, "free": 100 * MI}) is None
    assert ls.local_storage_violation(p, st, {"scratch": 4 * MI}) == \
        'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    # the sizeLimit as upstream prints the quantity
    p2 = pod("b", volumes=[empty_dir("s", "2048Ki")])
    assert ls.local_storage_violation(p2, None, {"s": 3 * MI}) == \
        'Usage of EmptyDir volume "s" exceeds the limit "2Mi". '
    # a container over its limit (writable layer + logs)
    p3 = pod("c", limits={"ephemeral-storage": "3Mi"})
    p3["spec"]["containers"].append({"name": "d", "resources": {"limits": {"ephemeral-storage": "5Mi"}}})
    st3 = pstats("c", rootfs=3 * MI, logs=4096, containers=("c", "d"))
    assert ls.local_storage_violation(p3, st3, {}) == 'Container c exceeded its local ephemeral storage limit "3Mi". '
    # the pod total (containers + disk emptyDirs) over the sum of the limits comes first
    p3["spec"]["volumes"] = [empty_dir("v")]
    assert ls.local_storage_violation(p3, st3, {"v": 3 * MI}) == \
        "Pod ephemeral local storage usage exceeds the total limit of containers 8Mi. "
    assert ls.pod_limit(pod("x")) is None and ls.pod_limit(p3) == 8 * MI
    # without container stats from the runtime only the emptyDir check can fire
    assert ls.local_storage_violation(pod("y", limits={"ephemeral-storage": "1Mi"}), None, {}) is None


async def test_volume_usage_walks_disk_empty_dirs(tmp_path):
    p = pod("u1", volumes=[empty_dir("scratch", "1Mi"), empty_dir("mem", medium="Memory"), empty_dir("later")])
    d = tmp_path / "u1" / "volumes" / "kubernetes.io~empty-dir"
    (d / "scratch" / "sub").mkdir(parents=True)
    (d / "mem").mkdir()
    with open(d / "scratch" / "sub" / "f", "wb") as fh:
        fh.write(b"x" * (3 * MI))
    (d / "mem" / "big").write_bytes(b"y" * MI)
    got = await ls.volume_usage(tmp_path, p)
    assert set(got) == {"scratch"}  # memory medium not measured, "later" not set up yet
    assert 3 * MI <= got["scratch"] < 4 * MI


async def test_manager_local_storage_eviction():
    hog = pod("hog", volumes=[empty_dir("scratch", "1Mi")])
    calm = pod("calm", volumes=[empty_dir("scratch", "1Mi")])
    crit = pod("crit", volumes=[empty_dir("scratch", "1Mi")], priority=2_000_000_000)
    hog2 = pod("hog2", limits={"ephemeral-storage": "1Mi"})
    usage = {"hog": {"scratch": 4 * MI}, "calm": {"scratch": 4096}, "crit": {"scratch": 8 * MI}, "hog2": {}}

    async def volume_usage(p):
        return usage[p["metadata"]["uid"]]
    f = Fake(summary(pods=[pstats("hog"), pstats("calm"), pstats("crit"), pstats("hog2", rootfs=2 * MI)]))
    # no thresholds at all: local storage limits are still enforced, every offender in one pass
    m = manager(f, [hog, calm, crit, hog2], [], volume_usage=volume_usage)
    got = await m.synchronize()
    assert got["metadata"]["uid"] == "hog" and [p["metadata"]["uid"] for p in m.last_evicted] == ["hog", "hog2"]
    assert f.evicted == [("hog", 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ', 1, False),
                         ("hog2", "Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. ",
                          1, False)]
    assert m.pressure == set()
    # isolation off: nothing to do
    f2 = Fake(f.s)
    assert await manager(f2, [hog], []).synchronize() is None and f2.evicted == []


async def test_wait_for_cleanup_after_eviction(monkeypatch):
    monkeypatch.setattr(ev, "POD_CLEANUP_POLL", 0)
    answers = {"a": [False, True, True], "b": [False, True]}
    seen = []

    def cleaned(p):
        seen.append(p["metadata"]["uid"])
        return answers[p["metadata"]["uid"]].pop(0)
    f = Fake(summary())
    m = manager(f, [], [], pod_cleaned_up=cleaned)
    await m.wait_for_cleanup([pod("a"), pod("b")])
    # every evicted pod must be gone
    assert seen == ["a", "a", "b", "a", "b"] and answers == {"a": [], "b": []}
    await manager(f, [], []).wait_for_cleanup([pod("a")])  # nothing to ask: returns at once


def test_eviction_message_lists_init_containers_and_canonical_requests():
    t = et.parse_thresholds("memory.available<100Mi")[0]
    p = pod("a", resources={"requests": {"memory": "1024Ki"}})
    p["spec"]["initContainers"] = [{"name": "side", "restartPolicy": "Always"}]
    st = pstats("a", mem=3, containers=("c", "side"))
    msg, ann = ev.eviction_message(p, st, t, ev.Observation(60 * MI, 1 << 30))
    assert msg == ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 60Mi. "
                   "Container c was using 3Mi, request is 1Mi, has larger consumption of memory. "
                   "Container side was using 3Mi, request is 0, has larger consumption of memory. ")
    assert ann["offending_containers"] == "c,side"
    # no stats for the pod: the node part only, no annotations
    assert ev.eviction_message(p, None, t, ev.Observation(60 * MI, 1 << 30)) == \
        ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 60Mi. ", {})


def test_quantity_string_is_canonical():
    assert [ls.quantity_string(v) for v in ("1Mi", "2048Ki", "1000", "1536", "100M", "1.5Gi", "500m", "0")] == \
        ["1Mi", "2Mi", "1k", "1536", "100M", "1536Mi", "500m", "0"]
