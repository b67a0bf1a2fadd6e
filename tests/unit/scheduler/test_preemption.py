"""DefaultPreemption on an in-memory cluster: eligibility, victim choice, PDBs, messages."""

from __future__ import annotations

from simcluster import SimCluster, node, pod

from kybernetes.scheduler.framework import CycleState


def preempt(c, p):
    """Run the scheduling cycle; on a fit failure run PostFilter like the scheduler does."""
    r = c.schedule(p)
    assert not isinstance(r, str), f"unexpectedly fit on {r}"
    nominated, st = c.fwk.run_post_filter(r.state, p, r.diagnosis.node_statuses)
    if not st.is_success():
        r.diagnosis.post_filter_msg = st.message()
    plugin = c.fwk.plugin("DefaultPreemption")
    return nominated, st, r.diagnosis.message(), plugin


def started(p, t):
    p["status"]["startTime"] = t
    return p


def test_fewest_lowest_priority_victims():
    c = SimCluster(node("n0", cpu="2"), node("n1", cpu="2"))
    # n0: one low pod using everything; n1: two pods, one of higher priority
    c.place(pod("lo-big", cpu="2", priority=1), "n0")
    c.place(pod("mid", cpu="1", priority=50), "n1")
    c.place(pod("lo-small", cpu="1", priority=1), "n1")
    nominated, st, _, pl = preempt(c, pod("hi", cpu="1", priority=100))
    assert st.is_success()
    # n1 needs one victim of priority 1 (lo-small; mid is reprieved); n0 one of priority 1
    # too, then fewer... both have a single priority-1 victim: the sum and count tie, so the
    # later-started victim wins
    cand = {n: [v.key for v in pl.select_victims(CycleState(c.cache), pod("hi", cpu="1", priority=100),
                                                  c.cache.nodes[n], [])[0]] for n in ("n0", "n1")}
    assert cand == {"n0": ["d/lo-big"], "n1": ["d/lo-small"]}
    assert nominated in ("n0", "n1")


def test_lowest_priority_victim_wins():
    c = SimCluster(node("n0", cpu="1"), node("n1", cpu="1"))
    c.place(pod("p5", cpu="1", priority=5), "n0")
    c.place(pod("p3", cpu="1", priority=3), "n1")
    nominated, st, _, _ = preempt(c, pod("hi", cpu="1", priority=100))
    assert st.is_success() and nominated == "n1"


def test_pdb_protected_pods_are_spared():
    c = SimCluster(node("n0", cpu="1"), node("n1", cpu="1"))
    c.place(pod("guarded", cpu="1", priority=1, labels={"app": "db"}), "n0")
    c.place(pod("plain", cpu="1", priority=2), "n1")
    c.cache.pdbs[("d", "db")] = {"metadata": {"name": "db", "namespace": "d"},
                                 "spec": {"selector": {"matchLabels": {"app": "db"}}},
                                 "status": {"disruptionsAllowed": 0}}
    nominated, st, _, _ = preempt(c, pod("hi", cpu="1", priority=100))
    # evicting the higher-priority unguarded pod beats violating the PDB
    assert st.is_success() and nominated == "n1"


def test_never_policy_and_messages():
    c = SimCluster(node("n0", cpu="1"), node("n1", cpu="1", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    c.place(pod("x", cpu="1", priority=1000), "n0")
    _, st, msg, _ = preempt(c, pod("never", cpu="1", priority=100, preemptionPolicy="Never"))
    assert not st.is_success()
    assert msg == ("0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}. "
                   "preemption: not eligible due to preemptionPolicy=Never.")
    _, st, msg, _ = preempt(c, pod("low", cpu="1", priority=100))
    assert msg == ("0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: v}. "
                   "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                   "1 Preemption is not helpful for scheduling.")


def test_victims_not_enough_gives_filter_reason():
    c = SimCluster(node("n0", cpu="2"))
    c.place(pod("hi-owner", cpu="1500m", priority=1000), "n0")
    c.place(pod("lo", cpu="500m", priority=1), "n0")
    _, st, msg, _ = preempt(c, pod("mid", cpu="1", priority=100))
    assert msg.endswith("preemption: 0/1 nodes are available: 1 Insufficient cpu.")


def test_terminating_victim_on_nominated_node_blocks_repeat():
    c = SimCluster(node("n0", cpu="1"))
    going = pod("lo", cpu="1", priority=1)
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    c.place(going, "n0")
    p = pod("hi", cpu="1", priority=100)
    p["status"]["nominatedNodeName"] = "n0"
    _, st, msg, _ = preempt(c, p)
    assert msg.endswith("preemption: not eligible due to a terminating pod on the nominated node.")


def test_nominated_pod_keeps_its_room_from_lower_priority_pods():
    c = SimCluster(node("n0", cpu="1"))
    hi = pod("hi", cpu="1", priority=100)
    c.cache.set_nominated(dict(hi, status={"nominatedNodeName": "n0"}), "n0")
    r = c.schedule(pod("lo", cpu="1", priority=1))
    assert str(r) == "0/1 nodes are available: 1 Insufficient cpu."
    assert str(c.schedule(pod("same", cpu="1", priority=100))) == "0/1 nodes are available: 1 Insufficient cpu."
    assert c.schedule(pod("higher", cpu="1", priority=200)) == "n0"  # only pods of lower or equal priority wait


def test_preemption_honours_anti_affinity_of_victims():
    c = SimCluster(node("n0", cpu="4"))
    c.place(pod("lo", priority=1, labels={"app": "lo"},
                affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "hi"}}, "topologyKey": "kubernetes.io/hostname"}]}}), "n0")
    nominated, st, _, pl = preempt(c, pod("hi", priority=100, labels={"app": "hi"}))
    assert st.is_success() and nominated == "n0"
