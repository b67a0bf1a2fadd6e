"""The scheduler's fast paths give the same answers as the plain per-node ones."""

from __future__ import annotations

import random

from simcluster import SimCluster, node, pod

from kybernetes.scheduler.framework import CycleState, Diagnosis

ZONE = "topology.kubernetes.io/zone"


def random_cluster(rng):
    nodes = [node(f"n{i:02d}", cpu=str(rng.choice([1, 2, 4])), pods=str(rng.choice([3, 110])),
                  labels={ZONE: f"z{i % 3}"} if i % 7 else {}) for i in range(30)]
    c = SimCluster(*nodes)
    for i in range(60):
        labels = {"app": rng.choice(["a", "b", "c"])}
        spec = {}
        if rng.random() < 0.3:
            spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": rng.choice(["a", "b"])}},
                 "topologyKey": rng.choice(["kubernetes.io/hostname", ZONE])}]}}
        c.place(pod(f"e{i}", labels=labels, cpu=rng.choice([None, "250m", "500m"]), **spec), rng.choice(nodes)["metadata"]["name"])
    return c


def incoming(rng, i):
    labels = {"app": rng.choice(["a", "b", "c"])}
    kind = i % 3
    if kind == 0:
        return pod(f"x{i}", labels=labels, cpu="500m")
    if kind == 1:
        return pod(f"x{i}", labels=labels, affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}]}})
    return pod(f"x{i}", labels=labels, topologySpreadConstraints=[
        {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": labels}}])


def test_filter_batch_matches_filter():
    rng = random.Random(7)
    for _ in range(5):
        c = random_cluster(rng)
        nodes = c.cache.node_infos()
        for i in range(12):
            p = incoming(rng, i)
            state = CycleState(c.cache)
            assert c.fwk.run_pre_filter(state, p).is_success()
            for name, f, batch in c.fwk.filters(state):
                if batch is None:
                    continue
                one = [f(state, p, ni) for ni in nodes]
                many = batch(state, p, nodes)
                assert [getattr(r, "reasons", None) for r in one] == [getattr(r, "reasons", None) for r in many], name


def test_chunked_search_finds_the_same_feasible_set():
    rng = random.Random(3)
    c = random_cluster(rng)
    for i in range(9):
        p = incoming(rng, i)
        want, _ = c.feasible(p)  # per node, run_filter
        state = CycleState(c.cache)
        c.fwk.run_pre_filter(state, p)
        got = c.s._find_feasible(c.fwk, state, p, c.cache.node_infos(), Diagnosis())
        assert sorted(ni.name for ni in got) == want


def test_confirming_an_assumed_pod_keeps_counts_and_relabelled_node_reindexes():
    c = SimCluster(node("n0", labels={ZONE: "a"}), node("n1", labels={ZONE: "b"}))
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "w"}}, "topologyKey": ZONE}]}}
    p = pod("w0", labels={"app": "w"}, cpu="1", affinity=anti)
    placed = c.place(p, "n0")
    bound = dict(placed, status={"phase": "Running"})
    c.cache.add_pod(bound)  # the watch's copy: same scheduling facts
    assert c.cache.nodes["n0"].requested.milli_cpu == 1000
    assert c.feasible(pod("w1", labels={"app": "w"}))[0] == ["n1"]
    # n1 moves into zone a: the placed pod's anti-affinity now covers it too
    c.cache.update_node(node("n1", labels={ZONE: "a"}))
    assert c.feasible(pod("w1", labels={"app": "w"}))[0] == []
