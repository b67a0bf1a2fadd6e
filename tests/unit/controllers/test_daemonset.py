"""DaemonSet controller decisions without a server: node eligibility, daemon pod
templates, revisions, status counting and the rolling-update choices."""

from __future__ import annotations

from typing import Any

from kybernetes.controllers import daemonset as d

Obj = dict[str, Any]


def node(name: str, labels: dict | None = None, taints: list | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or []}}


def ds(**tspec: Any) -> Obj:
    spec = {"selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}},
                         "spec": {"containers": [{"name": "c", "image": "i"}], **tspec}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}
    return {"metadata": {"name": "x", "namespace": "ns", "uid": "u1", "generation": 2}, "spec": spec}


READY = [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]


def pod(name: str, node_name: str, hash_: str, ready: bool = True, created: str = "2020-01-01T00:00:00Z",
        deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": name, "creationTimestamp": created,
                 "labels": {"app": "x", d.HASH_LABEL: hash_}}
    if deleting:
        meta["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node_name},
            "status": {"phase": "Running", "conditions": READY if ready else []}}


# ---------------------------------------------------------------------- eligibility
def test_node_selector_and_required_affinity():
    assert d.node_should_run_daemon_pod(node("a", {"disk": "ssd"}), ds(nodeSelector={"disk": "ssd"})) == (True, True)
    assert d.node_should_run_daemon_pod(node("a"), ds(nodeSelector={"disk": "ssd"})) == (False, False)
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]}}}
    assert d.node_should_run_daemon_pod(node("a", {"zone": "z1"}), ds(affinity=aff)) == (True, True)
    assert d.node_should_run_daemon_pod(node("a", {"zone": "z2"}), ds(affinity=aff)) == (False, False)
    assert d.node_should_run_daemon_pod(node("a"), ds(nodeName="b")) == (False, False)


def test_taints_and_automatic_tolerations():
    no_sched = [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
    no_exec = [{"key": "dedicated", "value": "x", "effect": "NoExecute"}]
    # an untolerated NoSchedule taint: no new pod, but an existing one may stay
    assert d.node_should_run_daemon_pod(node("a", taints=no_sched), ds()) == (False, True)
    assert d.node_should_run_daemon_pod(node("a", taints=no_exec), ds()) == (False, False)
    tol = [{"key": "dedicated", "operator": "Exists"}]
    assert d.node_should_run_daemon_pod(node("a", taints=no_exec), ds(tolerations=tol)) == (True, True)
    # the automatic ones
    for key, eff in (("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
                     ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                     ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                     ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                     ("node.kubernetes.io/unschedulable", "NoSchedule")):
        assert d.node_should_run_daemon_pod(node("a", taints=[{"key": key, "effect": eff}]), ds()) == (True, True)
    net = [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]
    assert d.node_should_run_daemon_pod(node("a", taints=net), ds())[0] is False
    assert d.node_should_run_daemon_pod(node("a", taints=net), ds(hostNetwork=True))[0] is True


def test_add_daemon_tolerations_is_idempotent_and_replaces_matching():
    spec: Obj = {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                                  "tolerationSeconds": 5}]}
    d.add_daemon_tolerations(spec)
    once = list(spec["tolerations"])
    d.add_daemon_tolerations(spec)
    assert spec["tolerations"] == once
    assert len(once) == 6
    nr = [t for t in once if t["key"] == "node.kubernetes.io/not-ready"]
    assert nr == [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]


def test_node_name_affinity_replaces_required_terms_only():
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]}}
    out = d.node_name_affinity(aff, "n1")
    req = out["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert req == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]
    assert out["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert aff["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0].get(
        "matchExpressions")  # input untouched
    p = {"spec": {"affinity": d.node_name_affinity(None, "n2")}}
    assert d.target_node_name(p) == "n2"
    assert d.target_node_name({"spec": {"nodeName": "n3", "affinity": p["spec"]["affinity"]}}) == "n3"


def test_pod_template_labels_and_revision_patch():
    x = ds()
    t = d.create_pod_template(x, "abc")
    assert t["metadata"]["labels"] == {"app": "x", d.HASH_LABEL: "abc", d.TEMPLATE_GENERATION_LABEL: "2"}
    assert "tolerations" not in x["spec"]["template"]["spec"]
    patch = d.revision_patch(x)
    assert patch["spec"]["template"]["$patch"] == "replace"
    assert d.revision_matches(x, {"data": patch})
    assert not d.revision_matches(ds(hostNetwork=True), {"data": patch})


def test_surge_and_unavailable_resolution():
    x = ds()
    assert d.surge_and_unavailable(x, 10) == (0, 1)
    x["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": "25%", "maxSurge": "10%"}
    assert d.surge_and_unavailable(x, 10) == (1, 3)  # both round up
    x["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 0}
    assert d.surge_and_unavailable(x, 3) == (0, 1)
    x["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert not d.allows_surge(x)


def test_find_updated_pods_on_node():
    assert d.find_updated_pods_on_node([pod("a", "n", "h1"), pod("b", "n", "h2")], "h1")[2] is True
    assert d.find_updated_pods_on_node([pod("a", "n", "h1"), pod("b", "n", "h1")], "h1") == (None, None, False)
    new, old, ok = d.find_updated_pods_on_node([pod("a", "n", "h0", deleting=True), pod("b", "n", "h0")], "h1")
    assert (new, old["metadata"]["name"], ok) == (None, "b", True)


def test_status_counts():
    nodes = [node("a"), node("b"), node("c", taints=[{"key": "k", "effect": "NoSchedule"}]), node("d")]
    by_node = {"a": [pod("p1", "a", "h1")], "b": [pod("p2", "b", "h0", ready=False)], "c": [pod("p3", "c", "h1")]}
    st = d.calculate_status(ds(), nodes, by_node, "h1")
    assert st == {"desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberMisscheduled": 1,
                  "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1, "numberUnavailable": 2}


# ---------------------------------------------------------------------- controller decisions
class Recorder(d.DaemonSetController):
    """The controller's decision methods over canned pods; syncNodes only records."""

    def __init__(self, node_to_pods):  # noqa: D107 - no client, no informers
        self.node_to_pods = node_to_pods
        self.synced: list[tuple[list[str], list[str]]] = []

    async def _nodes_to_daemon_pods(self, ds, include_deleted_terminal=False):
        return self.node_to_pods

    async def _sync_nodes(self, key, ds, delete, create_on, hash_):
        self.synced.append((sorted(p["metadata"]["name"] for p in delete), sorted(create_on)))


async def test_rolling_update_without_surge_deletes_within_max_unavailable():
    nodes = [node(n) for n in "abcd"]
    r = Recorder({n: [pod(f"old-{n}", n, "h0")] for n in "abcd"})
    x = ds()
    x["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 2, "maxSurge": 0}
    await r._rolling_update("ns/x", x, nodes, "h1")
    assert len(r.synced[0][0]) == 2 and r.synced[0][1] == []
    # one new pod not yet available counts against the budget; an unavailable old pod is always replaced
    r = Recorder({"a": [pod("new-a", "a", "h1", ready=False)], "b": [pod("old-b", "b", "h0", ready=False)],
                  "c": [pod("old-c", "c", "h0")], "d": [pod("old-d", "d", "h0")]})
    await r._rolling_update("ns/x", x, nodes, "h1")
    dels = r.synced[0][0]
    assert "old-b" in dels and len(dels) == 2


async def test_rolling_update_with_surge_creates_then_deletes():
    nodes = [node(n) for n in "abc"]
    x = ds()
    x["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 1}
    r = Recorder({n: [pod(f"old-{n}", n, "h0")] for n in "abc"})
    await r._rolling_update("ns/x", x, nodes, "h1")
    assert r.synced == [([], ["a"])]  # one surge pod, no deletions
    r = Recorder({"a": [pod("old-a", "a", "h0"), pod("new-a", "a", "h1")],
                  "b": [pod("old-b", "b", "h0")], "c": [pod("old-c", "c", "h0")]})
    await r._rolling_update("ns/x", x, nodes, "h1")
    assert r.synced == [(["old-a"], ["b"])]  # replacement available: old goes, next node surges


def test_pods_should_be_on_node():
    r = Recorder({})
    x = ds()
    need, dele = r._pods_should_be_on_node(node("a"), {}, x, "h1")
    assert need == ["a"] and dele == []
    two = {"a": [pod("p1", "a", "h1", created="2020-01-01T00:00:00Z"), pod("p2", "a", "h1", created="2021-01-01T00:00:00Z")]}
    need, dele = r._pods_should_be_on_node(node("a"), two, x, "h1")
    assert [p["metadata"]["name"] for p in dele] == ["p2"]  # keep the oldest
    failed = pod("f", "a", "h1")
    failed["status"]["phase"] = "Failed"
    need, dele = r._pods_should_be_on_node(node("a"), {"a": [failed]}, x, "h1")
    assert [p["metadata"]["name"] for p in dele] == ["f"]
    tainted = node("a", taints=[{"key": "k", "effect": "NoExecute"}])
    need, dele = r._pods_should_be_on_node(tainted, {"a": [pod("p", "a", "h1")]}, x, "h1")
    assert need == [] and [p["metadata"]["name"] for p in dele] == ["p"]
    # surging: a ready new pod next to an old one -> the old one goes
    x["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 1}
    both = {"a": [pod("old", "a", "h0"), pod("new", "a", "h1", created="2021-01-01T00:00:00Z")]}
    need, dele = r._pods_should_be_on_node(node("a"), both, x, "h1")
    assert [p["metadata"]["name"] for p in dele] == ["old"]
