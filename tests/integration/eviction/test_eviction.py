"""The pods/eviction subresource and the disruption controller against a real `kyb server`.

There is no kubelet: tests create pods already on a (simulated) node and play the
kubelet by writing Running + Ready through pods/status.  Evictions ask for
gracePeriodSeconds 0 so the pod goes at once (otherwise it would stay terminating,
waiting for a kubelet that does not exist)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException


@pytest.fixture(scope="module")
def api(k8s):
    return k8s


@pytest.fixture
def ns(api):
    name = f"ev-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def wait_for(fn, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def running_pod(api, ns, name, labels, ready=True, phase="Running"):
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, {"metadata": {"name": name, "labels": labels},
                                    "spec": {"nodeName": "sim-node-1", "containers": [{"name": "c", "image": "busybox"}]}})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core.patch_namespaced_pod_status(name, ns, {"status": {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}],
        "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": ready, "restartCount": 0,
                               "started": True, "state": {"running": {"startedAt": now}}}]}})


def make_pdb(api, ns, name, labels, **spec):
    return client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(ns, {
        "metadata": {"name": name}, "spec": {"selector": {"matchLabels": labels}, **spec}})


def pdb_status(api, ns, name):
    st = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget_status(name, ns).status
    return st or client.V1PodDisruptionBudgetStatus(current_healthy=0, desired_healthy=0, disruptions_allowed=0,
                                                    expected_pods=0)


def evict(api, ns, name, grace=0):
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=ns),
                             delete_options=client.V1DeleteOptions(grace_period_seconds=grace))
    return client.CoreV1Api(api).create_namespaced_pod_eviction(name, ns, body)


def pod_names(api, ns):
    return sorted(p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod(ns).items)


def test_min_available_equal_to_healthy_blocks(api, ns):
    for i in range(2):
        running_pod(api, ns, f"p{i}", {"app": "web"})
    make_pdb(api, ns, "web", {"app": "web"}, minAvailable=2)
    st = wait_for(lambda: (s := pdb_status(api, ns, "web")) and s.current_healthy == 2 and s.observed_generation == 1 and s,
                  what="pdb status")
    assert (st.desired_healthy, st.expected_pods, st.disruptions_allowed) == (2, 2, 0)
    cond = {c.type: c for c in st.conditions}["DisruptionAllowed"]
    assert (cond.status, cond.reason) == ("False", "InsufficientPods")
    with pytest.raises(ApiException) as e:
        evict(api, ns, "p0")
    assert e.value.status == 429
    body = json.loads(e.value.body)
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget",
                                          "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]
    assert pod_names(api, ns) == ["p0", "p1"]


def test_one_eviction_allowed_then_429(api, ns):
    for i in range(3):
        running_pod(api, ns, f"p{i}", {"app": "web"})
    make_pdb(api, ns, "web", {"app": "web"}, minAvailable=2)
    wait_for(lambda: pdb_status(api, ns, "web").disruptions_allowed == 1, what="one disruption allowed")
    evict(api, ns, "p0")
    assert pod_names(api, ns) == ["p1", "p2"]
    with pytest.raises(ApiException) as e:
        evict(api, ns, "p1")
    assert e.value.status == 429
    assert pod_names(api, ns) == ["p1", "p2"]
    # the controller settles: the evicted pod is gone, so disruptedPods is pruned
    st = wait_for(lambda: (s := pdb_status(api, ns, "web")) and s.current_healthy == 2 and not s.disrupted_pods and s,
                  what="settled status")
    assert st.disruptions_allowed == 0 and st.expected_pods == 2


def test_max_unavailable_with_unmanaged_pods_allows_nothing(api, ns):
    # upstream counts only the pods' controllers' scale for maxUnavailable: bare pods
    # give expectedPods 0, so no disruption is allowed
    for i in range(3):
        running_pod(api, ns, f"p{i}", {"app": "db"})
    make_pdb(api, ns, "db", {"app": "db"}, maxUnavailable=1)
    st = wait_for(lambda: (s := pdb_status(api, ns, "db")) and s.observed_generation == 1 and s, what="status")
    assert (st.current_healthy, st.expected_pods, st.disruptions_allowed) == (3, 0, 0)
    with pytest.raises(ApiException) as e:
        evict(api, ns, "p0")
    assert e.value.status == 429


def test_not_running_pods_ignore_budgets(api, ns):
    running_pod(api, ns, "pending", {"app": "x"}, ready=False, phase="Pending")
    running_pod(api, ns, "done", {"app": "x"}, ready=False, phase="Succeeded")
    make_pdb(api, ns, "x", {"app": "x"}, minAvailable=5)
    wait_for(lambda: pdb_status(api, ns, "x").observed_generation == 1, what="status")
    evict(api, ns, "pending")
    evict(api, ns, "done")
    assert pod_names(api, ns) == []


def test_multiple_budgets_is_500_and_no_budget_just_deletes(api, ns):
    running_pod(api, ns, "a", {"app": "m"})
    running_pod(api, ns, "free", {"app": "free"})
    make_pdb(api, ns, "one", {"app": "m"}, minAvailable=0)
    make_pdb(api, ns, "two", {"app": "m"}, minAvailable=0)
    with pytest.raises(ApiException) as e:
        evict(api, ns, "a")
    assert e.value.status == 500
    assert json.loads(e.value.body)["message"] == ("Internal error occurred: This pod has more than one "
                                                   "PodDisruptionBudget, which the eviction subresource does not support.")
    evict(api, ns, "free")
    assert pod_names(api, ns) == ["a"]


def test_graceful_eviction_keeps_pod_terminating_and_recorded(api, ns):
    for i in range(3):
        running_pod(api, ns, f"p{i}", {"app": "g"})
    make_pdb(api, ns, "g", {"app": "g"}, minAvailable=1)
    wait_for(lambda: pdb_status(api, ns, "g").disruptions_allowed == 2, what="allowed")
    evict(api, ns, "p0", grace=30)
    pod = client.CoreV1Api(api).read_namespaced_pod("p0", ns)
    assert pod.metadata.deletion_timestamp is not None
    st = pdb_status(api, ns, "g")
    assert "p0" in (st.disrupted_pods or {}) or st.current_healthy == 2
    st = wait_for(lambda: (s := pdb_status(api, ns, "g")) and s.current_healthy == 2 and s, what="terminating not healthy")
    assert st.disruptions_allowed == 1
    # evicting a terminating pod again needs no budget
    evict(api, ns, "p0", grace=0)


def test_percent_budget_uses_controller_scale(api, ns):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_replica_set(ns, {
        "metadata": {"name": "rs"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "rs"}},
                 "template": {"metadata": {"labels": {"app": "rs"}},
                              "spec": {"nodeName": "sim-node-1", "containers": [{"name": "c", "image": "busybox"}]}}}})
    make_pdb(api, ns, "rs", {"app": "rs"}, minAvailable="50%")
    st = wait_for(lambda: (s := pdb_status(api, ns, "rs")) and s.expected_pods == 4 and s, what="expected pods")
    assert st.desired_healthy == 2 and st.current_healthy == 0 and st.disruptions_allowed == 0
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core = client.CoreV1Api(api)
    for p in core.list_namespaced_pod(ns).items:
        core.patch_namespaced_pod_status(p.metadata.name, ns, {"status": {
            "phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}})
    st = wait_for(lambda: (s := pdb_status(api, ns, "rs")) and s.current_healthy == 4 and s, what="healthy")
    assert st.disruptions_allowed == 2
    client.PolicyV1Api(api).patch_namespaced_pod_disruption_budget("rs", ns, {"spec": {"minAvailable": None, "maxUnavailable": "25%"}})
    st = wait_for(lambda: (s := pdb_status(api, ns, "rs")) and s.observed_generation == 2 and s, what="new generation")
    assert (st.desired_healthy, st.disruptions_allowed) == (3, 1)


def test_v1beta1_eviction_body_accepted(api, ns):
    running_pod(api, ns, "b", {"app": "b"})
    body = {"apiVersion": "policy/v1beta1", "kind": "Eviction", "metadata": {"name": "b", "namespace": ns},
            "deleteOptions": {"gracePeriodSeconds": 0}}
    client.CoreV1Api(api).create_namespaced_pod_eviction("b", ns, body)  # a dict body is sent as is
    assert pod_names(api, ns) == []


def test_kubectl_drain_respects_budget(api, ns, kyb):
    """kubectl drain evicts (protobuf bodies) pods on the node, retrying while a budget
    blocks; with --grace-period 0 the pods go at once (no kubelet to finish them)."""
    core = client.CoreV1Api(api)
    core.create_node({"metadata": {"name": f"sim-{ns}"}})
    for i in range(2):
        core.create_namespaced_pod(ns, {"metadata": {"name": f"d{i}", "labels": {"app": "d"}},
                                        "spec": {"nodeName": f"sim-{ns}", "containers": [{"name": "c", "image": "busybox"}]}})
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        core.patch_namespaced_pod_status(f"d{i}", ns, {"status": {
            "phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}})
    make_pdb(api, ns, "d", {"app": "d"}, minAvailable=2)
    wait_for(lambda: pdb_status(api, ns, "d").current_healthy == 2, what="pdb status")
    p = kyb.kubectl("drain", f"sim-{ns}", "--force", "--grace-period=0", "--timeout=2s", check=False)
    assert p.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in p.stderr
    assert pod_names(api, ns) == ["d0", "d1"]
    assert core.read_node(f"sim-{ns}").spec.unschedulable is True
    client.PolicyV1Api(api).patch_namespaced_pod_disruption_budget("d", ns, {"spec": {"minAvailable": 0}})
    wait_for(lambda: pdb_status(api, ns, "d").disruptions_allowed == 2, what="budget relaxed")
    p = kyb.kubectl("drain", f"sim-{ns}", "--force", "--grace-period=0", "--timeout=20s")
    assert "evicted" in p.stdout
    assert pod_names(api, ns) == []
