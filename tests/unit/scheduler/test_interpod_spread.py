"""InterPodAffinity and PodTopologySpread on an in-memory cluster (real cache and profile)."""

from __future__ import annotations

from simcluster import SimCluster, node, pod

from kybernetes.scheduler.plugins.interpodaffinity import (ERR_AFFINITY, ERR_ANTI_AFFINITY,
                                                           ERR_EXISTING_ANTI_AFFINITY)
from kybernetes.scheduler.plugins.podtopologyspread import ERR_CONSTRAINTS, ERR_MISSING_LABEL

ZONE = "topology.kubernetes.io/zone"


def zoned(*zones):
    return [node(f"n{i}", labels={ZONE: z}) for i, z in enumerate(zones)]


def term(labels, key="kubernetes.io/hostname", **extra):
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def anti(*terms):
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def aff(*terms):
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def test_required_anti_affinity_by_zone():
    c = SimCluster(*zoned("a", "a", "b"))
    c.place(pod("web-1", labels={"app": "web"}), "n0")
    ok, bad = c.feasible(pod("web-2", labels={"app": "web"}, affinity=anti(term({"app": "web"}, ZONE))))
    assert ok == ["n2"]
    assert bad["n0"].reasons == [ERR_ANTI_AFFINITY] and bad["n1"].reasons == [ERR_ANTI_AFFINITY]
    # other namespaces are not looked at unless the term says so
    ok, _ = c.feasible(pod("x", ns="other", affinity=anti(term({"app": "web"}, ZONE))))
    assert ok == ["n0", "n1", "n2"]
    ok, _ = c.feasible(pod("x", ns="other", affinity=anti(term({"app": "web"}, ZONE, namespaces=["d"]))))
    assert ok == ["n2"]


def test_existing_pods_anti_affinity_is_symmetric():
    c = SimCluster(*zoned("a", "b"))
    c.place(pod("db", labels={"app": "db"}, affinity=anti(term({"app": "web"}))), "n0")
    ok, bad = c.feasible(pod("web", labels={"app": "web"}))
    assert ok == ["n1"] and bad["n0"].reasons == [ERR_EXISTING_ANTI_AFFINITY]
    # a pod the term does not select is unaffected, and removing the pod lifts the rule
    assert c.feasible(pod("api", labels={"app": "api"}))[0] == ["n0", "n1"]
    c.cache.remove_pod(pod("db", labels={"app": "db"}))
    assert c.feasible(pod("web", labels={"app": "web"}))[0] == ["n0", "n1"]


def test_required_affinity_and_first_pod_of_a_group():
    c = SimCluster(*zoned("a", "b", "b"))
    # nobody matches yet, and the pod matches its own term: anywhere
    first = pod("cache-1", labels={"app": "cache"}, affinity=aff(term({"app": "cache"}, ZONE)))
    assert c.feasible(first)[0] == ["n0", "n1", "n2"]
    # a pod that does not match its own term cannot go anywhere
    ok, bad = c.feasible(pod("client", affinity=aff(term({"app": "cache"}, ZONE))))
    assert ok == [] and bad["n0"].reasons == [ERR_AFFINITY]
    c.place(pod("cache-1", labels={"app": "cache"}), "n1")
    assert c.feasible(pod("client", affinity=aff(term({"app": "cache"}, ZONE))))[0] == ["n1", "n2"]
    # the topology key must be on the node
    assert c.feasible(pod("client", affinity=aff(term({"app": "cache"}, "rack"))))[0] == []


def test_namespace_selector_and_match_label_keys():
    c = SimCluster(*zoned("a", "b"))
    c.cache.set_namespace({"metadata": {"name": "prod", "labels": {"env": "prod"}}})
    c.place(pod("w", ns="prod", labels={"app": "web"}), "n0")
    t = term({"app": "web"}, namespaceSelector={"matchLabels": {"env": "prod"}})
    assert c.feasible(pod("x", affinity=anti(t)))[0] == ["n1"]
    assert c.feasible(pod("x", affinity=anti(term({"app": "web"}, namespaceSelector={}))))[0] == ["n1"]
    # matchLabelKeys: only pods of the same revision repel each other
    c.place(pod("v1", labels={"app": "api", "rev": "1"}), "n1")
    mk = term({"app": "api"}, matchLabelKeys=["rev"])
    assert c.feasible(pod("v2", labels={"app": "api", "rev": "2"}, affinity=anti(mk)))[0] == ["n0", "n1"]
    assert c.feasible(pod("v1b", labels={"app": "api", "rev": "1"}, affinity=anti(mk)))[0] == ["n0"]


def test_preferred_affinity_scores():
    c = SimCluster(*zoned("a", "b", "c"))
    c.place(pod("cache", labels={"app": "cache"}), "n1")
    c.place(pod("noisy", labels={"app": "noisy"}), "n2")
    p = pod("app", affinity={
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": term({"app": "cache"}, ZONE)}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": term({"app": "noisy"}, ZONE)}]}})
    assert c.scores(p, "InterPodAffinity") == {"n0": 50, "n1": 100, "n2": 0}
    assert c.schedule(p) == "n1"
    # existing pods' preferred terms count for the incoming pod too (symmetry)
    c2 = SimCluster(*zoned("a", "b"))
    c2.place(pod("x", affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "podAffinityTerm": term({"app": "y"})}]}}), "n0")
    assert c2.scores(pod("y", labels={"app": "y"}), "InterPodAffinity") == {"n0": 0, "n1": 100}
    assert c2.scores(pod("z"), "InterPodAffinity") is None  # nothing relevant: skipped


def test_anti_affinity_deployment_spreads_one_per_node():
    c = SimCluster(*(node(f"n{i}") for i in range(4)))
    spec = dict(labels={"app": "r"}, affinity=anti(term({"app": "r"})))
    got = []
    for i in range(5):
        r = c.schedule(pod(f"r{i}", **spec))
        if isinstance(r, str):
            c.place(pod(f"r{i}", **spec), r)
        got.append(r)
    assert sorted(got[:4]) == ["n0", "n1", "n2", "n3"]
    assert str(got[4]) == "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules."


def spread(max_skew=1, key=ZONE, when="DoNotSchedule", **extra):
    return {"topologySpreadConstraints": [{"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
                                           "labelSelector": {"matchLabels": {"app": "s"}}, **extra}]}


def test_spread_max_skew_filter():
    c = SimCluster(*zoned("a", "a", "b"))
    c.place(pod("s1", labels={"app": "s"}), "n0")
    ok, bad = c.feasible(pod("s2", labels={"app": "s"}, **spread()))
    assert ok == ["n2"] and bad["n0"].reasons == [ERR_CONSTRAINTS]
    assert c.feasible(pod("s2", labels={"app": "s"}, **spread(max_skew=2)))[0] == ["n0", "n1", "n2"]
    # a node without the topology key is out, with the upstream reason
    c.s.cache.add_node(node("bare"))
    _, bad = c.feasible(pod("s2", labels={"app": "s"}, **spread()))
    assert bad["bare"].reasons == [ERR_MISSING_LABEL]


def test_spread_min_domains_and_node_affinity_policy():
    c = SimCluster(*zoned("a", "b"))
    c.place(pod("s1", labels={"app": "s"}), "n0")
    c.place(pod("s2", labels={"app": "s"}), "n1")
    # two domains exist but minDomains 3: the global minimum counts as 0, so skew 2 > 1
    assert c.feasible(pod("s3", labels={"app": "s"}, **spread(minDomains=3)))[0] == []
    assert c.feasible(pod("s3", labels={"app": "s"}, **spread()))[0] == ["n0", "n1"]
    # nodeAffinityPolicy Honor (default): zone b is out of the pod's reach, so it does not
    # count as the emptiest domain
    c.place(pod("s4", labels={"app": "s"}), "n0")
    sel = {"nodeSelector": {ZONE: "a"}}
    assert c.feasible(pod("s5", labels={"app": "s"}, **spread(), **sel))[0] == ["n0"]
    ok, _ = c.feasible(pod("s5", labels={"app": "s"}, **spread(nodeAffinityPolicy="Ignore"), **sel))
    assert ok == []


def test_spread_schedule_anyway_scores():
    c = SimCluster(*zoned("a", "b", "c"))
    for i in range(2):
        c.place(pod(f"a{i}", labels={"app": "s"}), "n0")
    c.place(pod("b0", labels={"app": "s"}), "n1")
    sc = c.scores(pod("new", labels={"app": "s"}, **spread(when="ScheduleAnyway")), "PodTopologySpread")
    assert sc["n2"] == 100 and sc["n2"] > sc["n1"] > sc["n0"]


def test_spread_even_placement_end_to_end():
    c = SimCluster(*zoned("a", "b", "c", "a", "b", "c"))
    per_zone = {"a": 0, "b": 0, "c": 0}
    zone_of = {f"n{i}": z for i, z in enumerate("abcabc")}
    for i in range(9):
        p = pod(f"s{i}", labels={"app": "s"}, **spread())
        n = c.schedule(p)
        assert isinstance(n, str), n
        c.place(p, n)
        per_zone[zone_of[n]] += 1
        assert max(per_zone.values()) - min(per_zone.values()) <= 1
