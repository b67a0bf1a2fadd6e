"""PodTopologySpread's system default constraints (hostname maxSkew 3, zone maxSkew 5,
ScheduleAnyway) for pods without constraints of their own that something selects."""

from __future__ import annotations

from kybernetes.scheduler.plugins.podtopologyspread import default_selector
from tests.unit.scheduler.simcluster import SimCluster, node, pod

ZONE = "topology.kubernetes.io/zone"


def zoned(*zones):
    return [node(f"n{i}", labels={ZONE: z}) for i, z in enumerate(zones)]


def service(name, selector, ns="d"):
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"selector": selector}}


def owned_by(kind, name, api_version="apps/v1"):
    return {"ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": name, "uid": "u", "controller": True}]}


def owned_pod(name, labels, kind="ReplicaSet", owner="web-1", api_version="apps/v1"):
    p = pod(name, labels=labels)
    p["metadata"].update(owned_by(kind, owner, api_version))
    return p


def test_nothing_selects_the_pod_no_default_spreading():
    c = SimCluster(*zoned("a", "b"))
    c.place(pod("x0", labels={"app": "s"}), "n0")
    assert c.scores(pod("new", labels={"app": "s"}), "PodTopologySpread") is None
    c.cache.set_service(service("other", {"app": "other"}))
    assert c.scores(pod("new", labels={"app": "s"}), "PodTopologySpread") is None


def test_a_service_selecting_the_pod_spreads_it_by_hostname_and_zone():
    c = SimCluster(*zoned("a", "a", "b"))
    c.cache.set_service(service("web", {"app": "s"}))
    for i in range(2):
        c.place(pod(f"s{i}", labels={"app": "s"}), "n0")
    c.place(pod("unrelated", labels={"app": "t"}), "n2")
    # raw: n0 2*ln5+2 + 2*ln4+4 -> 12, n1 0+2 + 2*ln4+4 -> 9, n2 0+2 + 0+4 -> 6
    assert c.scores(pod("new", labels={"app": "s"}), "PodTopologySpread") == {"n0": 50, "n1": 75, "n2": 100}
    c.cache.remove_service(service("web", {"app": "s"}))
    assert c.scores(pod("new", labels={"app": "s"}), "PodTopologySpread") is None


def test_nodes_without_a_zone_still_get_hostname_spreading():
    c = SimCluster(node("n0", labels={ZONE: "a"}), node("bare"))
    c.cache.set_service(service("web", {"app": "s"}))
    for i in range(2):
        c.place(pod(f"s{i}", labels={"app": "s"}), "n0")
    # with the pod's own constraints a zone-less node would be ignored (score 0);
    # under the system defaults it is scored on hostname: n0 -> 12, bare -> 2
    assert c.scores(pod("new", labels={"app": "s"}), "PodTopologySpread") == {"n0": 16, "bare": 100}


def test_the_controlling_replicaset_statefulset_or_rc_selects_the_pod():
    c = SimCluster(*zoned("a", "b"))
    c.place(owned_pod("r0", {"app": "s", "hash": "1"}), "n0")
    labels = {"app": "s", "hash": "1"}
    assert c.scores(owned_pod("new", labels), "PodTopologySpread") is None  # RS not known yet
    c.cache.set_workload("ReplicaSet", {"metadata": {"name": "web-1", "namespace": "d"},
                                        "spec": {"selector": {"matchLabels": {"app": "s", "hash": "1"}}}})
    sc = c.scores(owned_pod("new", labels), "PodTopologySpread")
    assert sc["n1"] == 100 and sc["n0"] < 100
    c.cache.set_workload("StatefulSet", {"metadata": {"name": "db", "namespace": "d"},
                                         "spec": {"selector": {"matchExpressions": [
                                             {"key": "app", "operator": "Exists"}]}}})
    assert default_selector(owned_pod("p", labels, "StatefulSet", "db"), c.cache) == {
        "matchExpressions": [{"key": "app", "operator": "Exists"}]}
    c.cache.set_workload("ReplicationController", {"metadata": {"name": "rc", "namespace": "d"},
                                                   "spec": {"selector": {"app": "s"}}})
    assert default_selector(owned_pod("p", labels, "ReplicationController", "rc", "v1"), c.cache) == {
        "matchLabels": {"app": "s"}}
    # a Deployment is no direct owner upstream looks at
    assert default_selector(owned_pod("p", labels, "Deployment", "web"), c.cache) is None


def test_service_and_owner_selectors_are_required_together():
    c = SimCluster(*zoned("a"))
    c.cache.set_service(service("web", {"app": "s"}))
    c.cache.set_service(service("all", {}, ns="d"))  # an empty selector selects every pod
    c.cache.set_service(service("elsewhere", {"app": "s"}, ns="other"))
    c.cache.set_workload("ReplicaSet", {"metadata": {"name": "web-1", "namespace": "d"},
                                        "spec": {"selector": {"matchLabels": {"hash": "1"}}}})
    assert default_selector(owned_pod("p", {"app": "s", "hash": "1"}), c.cache) == {
        "matchLabels": {"app": "s"}, "matchExpressions": [{"key": "hash", "operator": "In", "values": ["1"]}]}
    # an RS selecting everything adds no requirement: with no Service, nothing to spread by
    c2 = SimCluster(*zoned("a"))
    c2.cache.set_workload("ReplicaSet", {"metadata": {"name": "web-1", "namespace": "d"}, "spec": {"selector": {}}})
    assert default_selector(owned_pod("p", {"app": "s"}), c2.cache) is None
    # a Service without a selector selects nothing
    c2.cache.set_service({"metadata": {"name": "ext", "namespace": "d"}, "spec": {}})
    assert default_selector(pod("p", labels={"app": "s"}), c2.cache) is None


def test_own_constraints_replace_the_defaults():
    c = SimCluster(*zoned("a", "b"))
    c.cache.set_service(service("web", {"app": "s"}))
    c.place(pod("s0", labels={"app": "s"}), "n0")
    hard_only = pod("new", labels={"app": "s"}, topologySpreadConstraints=[
        {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": "s"}}}])
    assert c.scores(hard_only, "PodTopologySpread") is None


def test_defaulting_can_be_turned_off():
    c = SimCluster(*zoned("a", "b"))
    c.cache.set_service(service("web", {"app": "s"}))
    c.place(pod("s0", labels={"app": "s"}), "n0")
    c.fwk.plugin("PodTopologySpread").system_defaulting = False
    assert c.scores(pod("new", labels={"app": "s"}), "PodTopologySpread") is None
