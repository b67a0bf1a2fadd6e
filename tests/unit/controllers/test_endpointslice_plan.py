"""Pure helpers of the Endpoints/EndpointSlice/node lifecycle controllers."""

from kybernetes.controllers.endpoints import build_subsets, find_port
from kybernetes.controllers.endpointslice import desired_endpoints, plan
from kybernetes.controllers.nodelifecycle import desired_taints, eviction_time

SVC = {"metadata": {"name": "s", "namespace": "n", "uid": "u"}, "spec": {"selector": {"a": "b"},
       "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}


def pod(i, ready=True):
    return {"metadata": {"name": f"p{i}", "namespace": "n", "uid": f"u{i}", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": f"10.0.{i // 250}.{i % 250 + 1}",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_find_port_by_name_and_number():
    assert find_port(pod(0), {"targetPort": "http", "port": 80}) == 8080
    assert find_port(pod(0), {"targetPort": 9000, "port": 80}) == 9000
    assert find_port(pod(0), {"targetPort": "nope", "port": 80}) is None


def test_subsets_split_ready_and_not_ready():
    subsets, total = build_subsets(SVC, [pod(0), pod(1, ready=False)])
    assert total == 2 and subsets[0]["ports"] == [{"port": 8080, "protocol": "TCP", "name": "web"}]
    assert [a["ip"] for a in subsets[0]["addresses"]] == ["10.0.0.1"]
    assert [a["ip"] for a in subsets[0]["notReadyAddresses"]] == ["10.0.0.2"]


def test_plan_at_most_100_per_slice_and_placeholder():
    wanted = desired_endpoints(SVC, [pod(i) for i in range(250)])
    creates, updates, deletes = plan(SVC, [], wanted)
    assert [len(s["endpoints"]) for s in creates] == [100, 100, 50] and not updates and not deletes
    creates, _, _ = plan(SVC, [], {})
    assert creates[0]["endpoints"] == [] and "ports" not in creates[0]


def test_taints_and_eviction_time():
    node = {"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    taints = desired_taints(node, now="2020-01-01T00:00:00Z")
    assert {(t["key"], t["effect"]) for t in taints} == {("node.kubernetes.io/unreachable", "NoSchedule"),
                                                         ("node.kubernetes.io/unreachable", "NoExecute")}
    p = {"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                   "effect": "NoExecute", "tolerationSeconds": 300}]}}
    assert eviction_time(p, taints) == 1577836800 + 300
    assert eviction_time({"spec": {}}, taints) == 0.0
    forever = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    assert eviction_time(forever, taints) is None
    node["status"]["conditions"][0]["status"] = "True"
    assert desired_taints({**node, "spec": {"taints": taints}}) == []
