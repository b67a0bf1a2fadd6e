"""ResourceQuota admission: evaluators, scopes, messages, the CAS charge; the controller's recount."""

from __future__ import annotations

import asyncio

import pytest

import admission_helpers as helpers
from kybernetes.admission import lookup
from kybernetes.admission.resourcequota import (
    Q,
    QuotaExceeded,
    ResourceQuota,
    charge,
    evaluator_for,
    format_list,
    pod_constraints,
    pod_matches_scope,
    pod_usage,
    pvc_usage,
    service_usage,
)
from kybernetes.apiserver.errors import APIError
from kybernetes.controllers.resourcequota import _evaluators_for, calculate_usage


def pod(name="p", requests=None, limits=None, init=None, **spec):
    res = {}
    if requests is not None:
        res["requests"] = requests
    if limits is not None:
        res["limits"] = limits
    out = {"metadata": {"name": name, "namespace": "ns1"},
           "spec": {"containers": [{"name": "c", "image": "nginx", "resources": res}], **spec}}
    if init:
        out["spec"]["initContainers"] = init
    return out


def rq(name, hard, used=None, scopes=None, selector=None):
    spec = {"hard": hard}
    if scopes:
        spec["scopes"] = scopes
    if selector:
        spec["scopeSelector"] = {"matchExpressions": selector}
    status = {"hard": hard, "used": used if used is not None else {k: "0" for k in hard}}
    return {"metadata": {"name": name, "namespace": "ns1"}, "spec": spec, "status": status}


# ---------------------------------------------------------------- quantities
@pytest.mark.parametrize("a,b,want", [("1536Mi", "512Mi", "2Gi"), ("0", "1Gi", "1Gi"), ("500m", "500m", "1"),
                                      ("100m", "50m", "150m"), ("1k", "24", "1024"), ("1.5", "0", "1500m")])
def test_quantity_sum_format(a, b, want):
    assert str(Q.parse(a) + Q.parse(b)) == want


# ---------------------------------------------------------------- evaluators
def test_pod_usage_sums_containers_init_max_and_extended():
    p = pod(requests={"cpu": "500m", "memory": "1Gi", "example.com/gpu": "1", "hugepages-2Mi": "4Mi"},
            limits={"cpu": "1", "memory": "1Gi"},
            init=[{"name": "i", "resources": {"requests": {"cpu": "2"}}}])
    p["spec"]["containers"].append({"name": "d", "resources": {"requests": {"cpu": "250m", "ephemeral-storage": "1Gi"}}})
    assert format_list(pod_usage(p)) == {
        "count/pods": "1", "pods": "1", "cpu": "2", "requests.cpu": "2", "limits.cpu": "1", "memory": "1Gi",
        "requests.memory": "1Gi", "limits.memory": "1Gi", "ephemeral-storage": "1Gi",
        "requests.ephemeral-storage": "1Gi", "requests.example.com/gpu": "1", "hugepages-2Mi": "4Mi",
        "requests.hugepages-2Mi": "4Mi"}


def test_finished_pod_counts_only_object_count():
    p = pod(requests={"cpu": "1"})
    p["status"] = {"phase": "Succeeded"}
    assert format_list(pod_usage(p)) == {"count/pods": "1"}


def test_service_and_claim_usage():
    assert format_list(service_usage({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}})) == {
        "count/services": "1", "services": "1", "services.loadbalancers": "0", "services.nodeports": "0"}
    lb = service_usage({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}})
    assert str(lb["services.nodeports"]) == "2" and str(lb["services.loadbalancers"]) == "1"
    lb = service_usage({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False,
                                 "ports": [{"port": 80, "nodePort": 30001}, {"port": 443}]}})
    assert str(lb["services.nodeports"]) == "1"
    claim = {"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "5Gi"}}}}
    assert format_list(pvc_usage(claim)) == {
        "count/persistentvolumeclaims": "1", "persistentvolumeclaims": "1", "requests.storage": "5Gi",
        "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "1",
        "gold.storageclass.storage.k8s.io/requests.storage": "5Gi"}


def test_generic_object_count_names():
    e = evaluator_for("apps", "deployments")
    assert e.matching_resources(["count/deployments.apps", "pods"]) == ["count/deployments.apps"]
    assert format_list(e.usage({})) == {"count/deployments.apps": "1"}
    cm = evaluator_for("", "configmaps")
    assert sorted(cm.matching_resources(["configmaps", "count/configmaps", "secrets"])) == [
        "configmaps", "count/configmaps"]
    assert not e.handles("UPDATE") and evaluator_for("", "pods").handles("UPDATE")


def test_must_specify_message():
    p = pod(requests={"cpu": "1"})
    p["spec"]["containers"].append({"name": "b", "resources": {}})
    assert pod_constraints(["requests.cpu", "limits.memory", "pods"], p) == (
        "must specify limits.memory for: b,c; requests.cpu for: b")
    assert pod_constraints(["pods", "requests.storage"], p) is None


@pytest.mark.parametrize("sel,spec,want", [
    ({"scopeName": "Terminating", "operator": "Exists"}, {"activeDeadlineSeconds": 10}, True),
    ({"scopeName": "Terminating", "operator": "Exists"}, {}, False),
    ({"scopeName": "NotTerminating", "operator": "Exists"}, {}, True),
    ({"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}, {"priorityClassName": "high"}, True),
    ({"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}, {}, False),
    ({"scopeName": "PriorityClass", "operator": "NotIn", "values": ["high"]}, {}, True),
    ({"scopeName": "PriorityClass", "operator": "Exists"}, {"priorityClassName": "low"}, True),
    ({"scopeName": "PriorityClass", "operator": "DoesNotExist"}, {"priorityClassName": "low"}, False),
])
def test_scopes(sel, spec, want):
    assert pod_matches_scope(sel, pod(**spec)) is want


def test_best_effort_scopes():
    be, burst = pod(), pod(requests={"cpu": "1"})
    sel = {"scopeName": "BestEffort", "operator": "Exists"}
    assert pod_matches_scope(sel, be) and not pod_matches_scope(sel, burst)
    assert pod_matches_scope({"scopeName": "NotBestEffort", "operator": "Exists"}, burst)


# ---------------------------------------------------------------- charge / messages
def test_exceeded_message_and_charge():
    ev = evaluator_for("", "pods")
    quotas = [rq("pods", {"pods": "2"}, {"pods": "2"})]
    with pytest.raises(QuotaExceeded) as e:
        charge(quotas, ev, "CREATE", pod(), None)
    assert str(e.value) == "exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2"
    quotas = [rq("compute", {"requests.cpu": "1", "pods": "10"}, {"requests.cpu": "600m", "pods": "1"})]
    with pytest.raises(QuotaExceeded) as e:
        charge(quotas, ev, "CREATE", pod(requests={"cpu": "500m"}), None)
    assert str(e.value) == ("exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=600m, "
                            "limited: requests.cpu=1")
    got = charge(quotas, ev, "CREATE", pod(requests={"cpu": "400m"}), None)
    assert format_list(got[0]) == {"pods": "2", "requests.cpu": "1"}


def test_scoped_quota_skips_non_matching_and_other_kinds():
    quotas = [rq("be", {"pods": "0"}, scopes=["BestEffort"])]
    assert charge(quotas, evaluator_for("", "pods"), "CREATE", pod(requests={"cpu": "1"}), None) == {}
    with pytest.raises(QuotaExceeded):
        charge(quotas, evaluator_for("", "pods"), "CREATE", pod(), None)
    # scoped quotas never match other kinds
    scoped = [rq("s", {"count/services": "0"}, scopes=["BestEffort"])]
    assert charge(scoped, evaluator_for("", "services"), "CREATE", {"spec": {}}, None) == {}


def test_status_unknown_and_update_delta():
    q = rq("q", {"services.nodeports": "1"})
    q["status"]["used"] = {}
    with pytest.raises(QuotaExceeded) as e:
        charge([q], evaluator_for("", "services"), "CREATE", {"spec": {}}, None)
    assert str(e.value) == "status unknown for quota: q, resources: services.nodeports"
    # an update charges only what it adds
    quotas = [rq("np", {"services.nodeports": "1"}, {"services.nodeports": "0"})]
    old = {"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}
    new = {"spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    assert format_list(charge(quotas, evaluator_for("", "services"), "UPDATE", new, old)[0]) == {
        "services.nodeports": "1"}
    assert charge(quotas, evaluator_for("", "services"), "UPDATE", old, new) == {}


# ---------------------------------------------------------------- the plugin against a store
async def put(objects, obj):
    await helpers.put(objects, "", "v1", "resourcequotas", obj, namespace="ns1")


async def stored_used(objects, name):
    return (await lookup.get_object(objects, "", "v1", "resourcequotas", "ns1", name))["status"]["used"]


def req(resource="pods", dry_run=False):
    return helpers.req(resource, dry_run=dry_run)


async def test_plugin_charges_with_cas_and_refuses(objects):
    await put(objects, rq("pods", {"pods": "2", "requests.cpu": "2"}))
    plugin = ResourceQuota(objects)
    await plugin.validate("CREATE", req(dry_run=True), pod("a", requests={"cpu": "1"}), None)
    assert await stored_used(objects, "pods") == {"pods": "0", "requests.cpu": "0"}
    # concurrent creates: the CAS retry makes each see the other's charge
    await asyncio.gather(*(plugin.validate("CREATE", req(), pod(n, requests={"cpu": "500m"}), None) for n in "ab"))
    assert await stored_used(objects, "pods") == {"pods": "2", "requests.cpu": "1"}
    with pytest.raises(APIError) as e:
        await plugin.validate("CREATE", req(), pod("c", requests={"cpu": "1"}), None)
    assert e.value.code == 403
    assert e.value.message == ('pods "c" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, '
                               'limited: pods=2')
    with pytest.raises(APIError) as e:
        await plugin.validate("CREATE", req(), pod("d"), None)
    assert e.value.message == 'pods "d" is forbidden: failed quota: pods: must specify requests.cpu for: c'
    # objects the quota does not cover pass untouched
    await plugin.validate("CREATE", req("configmaps"), {"metadata": {"name": "x", "namespace": "ns1"}}, None)


# ---------------------------------------------------------------- controller recount
def test_calculate_usage_zero_fills_and_scopes():
    q = {"spec": {"hard": {"pods": "5", "requests.memory": "1Gi", "count/secrets": "3", "count/jobs.batch": "2"},
                  "scopes": ["NotTerminating"]}}
    evs = _evaluators_for(q["spec"]["hard"])
    assert sorted((e.group, e.resource) for e in evs) == [("", "pods"), ("", "secrets"), ("batch", "jobs")]
    pods = [pod("a", requests={"memory": "256Mi"}), pod("b", activeDeadlineSeconds=5, requests={"memory": "1Gi"})]
    listed = [(e, pods if e.resource == "pods" else []) for e in evs]
    # as upstream, scoped quotas report zero for the kinds scopes never match
    assert format_list(calculate_usage(q, listed)) == {"pods": "1", "requests.memory": "256Mi",
                                                       "count/secrets": "0", "count/jobs.batch": "0"}
    q["spec"].pop("scopes")
    listed = [(e, pods if e.resource == "pods" else [{}] if e.resource == "secrets" else []) for e in evs]
    assert format_list(calculate_usage(q, listed)) == {"pods": "2", "requests.memory": "1280Mi",
                                                       "count/secrets": "1", "count/jobs.batch": "0"}
