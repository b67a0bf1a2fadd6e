"""The eviction manager against a fake Summary: threshold parsing, signals, pressure
conditions with the transition period, ranking and upstream's eviction message."""

from __future__ import annotations

import re

import pytest

from kybernetes.kubelet import eviction as ev

MI = 1 << 20


def summary(mem_avail=4096 * MI, ws=1024 * MI, fs=(100, 50), inodes=(1000, 500), imagefs=(100, 50), pods=()):
    return {"node": {"nodeName": "n", "memory": {"availableBytes": mem_avail, "workingSetBytes": ws},
                     "fs": {"capacityBytes": fs[0] * MI, "availableBytes": fs[1] * MI,
                            "inodes": inodes[0], "inodesFree": inodes[1]},
                     "runtime": {"imageFs": {"capacityBytes": imagefs[0] * MI, "availableBytes": imagefs[1] * MI,
                                             "inodes": 1000, "inodesFree": 900}}},
            "pods": list(pods)}


def pstats(uid, **containers):
    return {"podRef": {"name": uid, "namespace": "default", "uid": uid},
            "containers": [{"name": n, "memory": {"workingSetBytes": v * MI},
                            "rootfs": {"usedBytes": v * MI}, "logs": {"usedBytes": 0}} for n, v in containers.items()],
            "ephemeral-storage": {"usedBytes": sum(containers.values()) * MI, "inodesUsed": 1}}


def pod(uid, req_mi=None, priority=None, **meta):
    c = {"name": "c", "resources": {"requests": {"memory": f"{req_mi}Mi"}} if req_mi is not None else {}}
    spec = {"containers": [c]}
    if priority is not None:
        spec["priority"] = priority
    return {"metadata": {"name": uid, "namespace": "default", "uid": uid, **meta}, "spec": spec}


def test_parse_thresholds():
    ts = ev.parse_thresholds(ev.DEFAULT_EVICTION_HARD)
    assert [str(t) for t in ts] == ["memory.available<100Mi", "nodefs.available<10%", "nodefs.inodesFree<5%",
                                    "imagefs.available<15%", "imagefs.inodesFree<5%"]
    assert ts[0].value(10**12) == 100 * MI and ts[1].value(1000) == 100
    for bad, msg in [("memory.available>1Gi", "malformed pair, expect string<string"),
                     ("cpu.available<1", "unsupported eviction signal cpu.available"),
                     ("nodefs.available<150%", "eviction percentage threshold nodefs.available must be <= 100%: 150%"),
                     ("nodefs.available<-5%", "eviction percentage threshold nodefs.available must be >= 0%: -5%"),
                     ("nodefs.available<x%", 'parsing "x": invalid syntax'),
                     ("memory.available<0", "eviction threshold memory.available must be positive: 0"),
                     ("memory.available<lots", "quantities must match the regular expression")]:
        with pytest.raises(ValueError, match=re.escape(msg)):
            ev.parse_thresholds(bad)
    # as upstream's map flag: a later statement for a signal wins; 0% and 100% are ignored
    assert [str(t) for t in ev.parse_thresholds("memory.available<1Gi, memory.available < 2Gi")] == \
        ["memory.available<2Gi"]
    assert ev.parse_thresholds("nodefs.available<0%,imagefs.available<100%") == []
    assert ev.parse_thresholds("") == []


def test_binary_si():
    assert [ev.binary_si(n) for n in (100 * MI, 2048, 1536, 1000, 3 << 30, 0)] == \
        ["100Mi", "2Ki", "1536", "1000", "3Gi", "0"]


def test_observe_and_met():
    obs = ev.observe(summary(mem_avail=50 * MI, ws=950 * MI, fs=(100, 5), imagefs=(100, 20)))
    assert obs["memory.available"] == ev.Observation(50 * MI, 1000 * MI)
    assert obs["nodefs.available"] == ev.Observation(5 * MI, 100 * MI)
    met = ev.thresholds_met(ev.parse_thresholds(ev.DEFAULT_EVICTION_HARD), obs)
    assert [t.signal for t in met] == ["memory.available", "nodefs.available"]


def test_rank_memory():
    stats = {"a": pstats("a", c=50), "b": pstats("b", c=200), "c": pstats("c", c=300), "d": pstats("d", c=10)}
    pods = [pod("a"),                   # BestEffort, 50Mi over its (zero) request
            pod("b", req_mi=100),       # Burstable, 100Mi over
            pod("c", req_mi=400),       # within its request: last, however big
            pod("d", priority=-5)]      # over, but lower priority first
    assert [p["metadata"]["uid"] for p in ev.rank(pods, stats, "memory.available")] == ["d", "b", "a", "c"]


def test_eviction_message():
    t = ev.parse_thresholds("memory.available<100Mi")[0]
    msg, ann = ev.eviction_message(pod("b", req_mi=100), pstats("b", c=200), t, ev.Observation(60 * MI, 1 << 30))
    assert msg == ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 60Mi. "
                   "Container c was using 200Mi, request is 100Mi, has larger consumption of memory. ")
    assert ann == {"offending_containers": "c", "offending_containers_usage": "200Mi", "starved_resource": "memory"}
    # a container within its request is not named
    msg, _ = ev.eviction_message(pod("c", req_mi=400), pstats("c", c=300), t, ev.Observation(60 * MI, 1 << 30))
    assert msg == "The node was low on resource: memory. Threshold quantity: 100Mi, available: 60Mi. "
    t = ev.parse_thresholds("nodefs.available<10%")[0]
    msg, _ = ev.eviction_message(pod("a"), pstats("a", c=3), t, ev.Observation(5 * MI, 100 * MI))
    assert msg == ("The node was low on resource: ephemeral-storage. Threshold quantity: 10Mi, available: 5Mi. "
                   "Container c was using 3Mi, request is 0, has larger consumption of ephemeral-storage. ")


class Fake:
    def __init__(self, s):
        self.s, self.evicted, self.changes, self.reclaims, self.now = s, [], 0, 0, 1000.0
        self.graces = []

    async def summary(self):
        return self.s

    async def evict(self, p, msg, ann, grace=None, disruption_condition=True):
        self.evicted.append((p["metadata"]["uid"], msg))
        self.graces.append((grace, disruption_condition))
        return True

    async def reclaim(self):
        self.reclaims += 1


def manager(f, pods, text=ev.DEFAULT_EVICTION_HARD, transition=300.0):
    return ev.EvictionManager(f.summary, ev.parse_thresholds(text), active_pods=lambda: pods, evict=f.evict,
                              reclaim_disk=f.reclaim, on_pressure_change=lambda: setattr(f, "changes", f.changes + 1),
                              transition_period=transition, clock=lambda: f.now)


async def test_manager_memory_pressure_and_transition():
    pods = [pod("a"), pod("b", req_mi=100), pod("s", annotations={"kubernetes.io/config.source": "file"})]
    f = Fake(summary(mem_avail=60 * MI, pods=[pstats("a", c=50), pstats("b", c=200), pstats("s", c=900)]))
    m = manager(f, pods)
    got = await m.synchronize()
    assert got["metadata"]["uid"] == "b"  # the static pod uses most but is never evicted
    assert f.evicted[0][1].startswith("The node was low on resource: memory. Threshold quantity: 100Mi, "
                                      "available: 60Mi. ")
    assert m.pressure == {"MemoryPressure"} and f.changes == 1
    assert f.reclaims == 0  # memory has no node-level reclaim
    # recovered: the condition stays for the transition period, nobody else is evicted
    f.s = summary(pods=[pstats("a", c=50)])
    f.now += 10
    assert await m.synchronize() is None and m.pressure == {"MemoryPressure"}
    f.now += 300
    assert await m.synchronize() is None and m.pressure == set() and f.changes == 2
    assert len(f.evicted) == 1


async def test_manager_disk_reclaims_first():
    pods = [pod("a"), pod("b")]
    f = Fake(summary(fs=(100, 5), pods=[pstats("a", c=1), pstats("b", c=4)]))
    m = manager(f, pods)
    got = await m.synchronize()
    assert f.reclaims == 1 and got["metadata"]["uid"] == "b" and m.pressure == {"DiskPressure"}
    assert "ephemeral-storage" in f.evicted[0][1]

    # reclaim (image GC) freeing enough: no pod goes
    class Reclaiming(Fake):
        async def reclaim(self):
            self.s = summary(fs=(100, 50))
    f2 = Reclaiming(summary(fs=(100, 5), pods=[pstats("a", c=1)]))
    m2 = manager(f2, [pod("a")])
    assert await m2.synchronize() is None and f2.evicted == [] and m2.pressure == {"DiskPressure"}


async def test_manager_no_thresholds_and_custom():
    f = Fake(summary(mem_avail=60 * MI, pods=[pstats("a", c=50)]))
    assert await manager(f, [pod("a")], text="").synchronize() is None
    # a threshold set above the free memory: pressure right away
    m = manager(f, [pod("a")], text="memory.available<1Gi")
    assert (await m.synchronize())["metadata"]["uid"] == "a"


def test_admit_under_pressure():
    m = ev.EvictionManager(None, [], active_pods=list, evict=None)
    best, burst = pod("a"), pod("b", req_mi=10)
    assert m.admit(best) is None
    m.pressure = {"MemoryPressure"}
    assert m.admit(best) == ("Evicted", "The node had condition: [MemoryPressure]. ")
    assert m.admit(burst) is None
    tolerant = dict(best, spec=dict(best["spec"], tolerations=[
        {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}]))
    assert m.admit(tolerant) is None
    wrong = dict(best, spec=dict(best["spec"], tolerations=[{"key": "other", "operator": "Exists"}]))
    assert m.admit(wrong) is not None
    static = pod("s", annotations={"kubernetes.io/config.source": "file"})
    assert m.admit(static) is None
    m.pressure = {"MemoryPressure", "DiskPressure"}
    assert m.admit(burst) == ("Evicted", "The node had condition: [MemoryPressure DiskPressure]. ")
    assert m.admit(tolerant) is not None
