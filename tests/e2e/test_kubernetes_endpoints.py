"""The API server publishes itself behind `default/kubernetes` (Endpoints and EndpointSlice), as
upstream's endpoint reconciler does; the Endpoints and EndpointSlice controllers leave them alone."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch


def raw(fn, *args) -> dict:
    return json.loads(fn(*args, _preload_content=False).data)


def wait_for(list_fn, name: str, namespace: str, cond, timeout: int = 30) -> dict:
    """The object once `cond(obj)` holds, re-checked on every watch event (with a deadline)."""
    w = watch.Watch()
    for ev in w.stream(list_fn, namespace, field_selector=f"metadata.name={name}", timeout_seconds=timeout):
        obj = client.ApiClient().sanitize_for_serialization(ev["object"])
        if ev["type"] != "DELETED" and cond(obj):
            w.stop()
            return obj
    raise AssertionError(f"{namespace}/{name} never met the condition within {timeout}s")


def expected_endpoints(port: int) -> list:
    return [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]


def test_server_publishes_its_address(api, kyb):
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    # published once the server serves (as upstream, whose reconciler waits for its own /readyz)
    ep = wait_for(core.list_namespaced_endpoints, "kubernetes", "default", lambda o: bool(o.get("subsets")))
    wait_for(disc.list_namespaced_endpoint_slice, "kubernetes", "default", lambda o: bool(o.get("endpoints")))
    assert ep["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    assert ep["subsets"] == expected_endpoints(kyb.port)
    sl = raw(disc.read_namespaced_endpoint_slice, "kubernetes", "default")
    assert sl["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
    assert sl["addressType"] == "IPv4"
    assert sl["endpoints"] == [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]
    assert sl["ports"] == [{"name": "https", "port": kyb.port, "protocol": "TCP"}]
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.ports[0].port == 443 and svc.spec.ports[0].target_port == kyb.port


def test_controllers_leave_it_alone(api, kyb):
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    ep_rv = raw(core.read_namespaced_endpoints, "kubernetes", "default")["metadata"]["resourceVersion"]
    sl_rv = raw(disc.read_namespaced_endpoint_slice, "kubernetes", "default")["metadata"]["resourceVersion"]
    # an event on the kubernetes Service reaches both controllers; a later Service with a selector
    # shows they have worked through their queues
    core.patch_namespaced_service("kubernetes", "default", {"metadata": {"labels": {"touched": "yes"}}})
    core.create_namespaced_service("default", {"metadata": {"name": "marker"},
                                               "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}})
    try:
        wait_for(core.list_namespaced_endpoints, "marker", "default", lambda o: True)
        w = watch.Watch()
        for ev in w.stream(disc.list_namespaced_endpoint_slice, "default",
                           label_selector="kubernetes.io/service-name=marker", timeout_seconds=30):
            w.stop()
            break
        else:
            raise AssertionError("the EndpointSlice controller never handled the marker Service")
        assert raw(core.read_namespaced_endpoints, "kubernetes", "default")["metadata"]["resourceVersion"] == ep_rv
        assert raw(disc.read_namespaced_endpoint_slice, "kubernetes", "default")["metadata"]["resourceVersion"] == sl_rv
        slices = disc.list_namespaced_endpoint_slice("default", label_selector="kubernetes.io/service-name=kubernetes")
        assert [s.metadata.name for s in slices.items] == ["kubernetes"]
    finally:
        core.delete_namespaced_service("marker", "default")
        core.patch_namespaced_service("kubernetes", "default", {"metadata": {"labels": {"touched": None}}})


@pytest.mark.slow
def test_deleted_objects_come_back(api, kyb):
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    core.delete_namespaced_endpoints("kubernetes", "default")
    disc.delete_namespaced_endpoint_slice("kubernetes", "default")
    ep = wait_for(core.list_namespaced_endpoints, "kubernetes", "default", lambda o: bool(o.get("subsets")))
    assert ep["subsets"] == expected_endpoints(kyb.port)
    sl = wait_for(disc.list_namespaced_endpoint_slice, "kubernetes", "default", lambda o: bool(o.get("endpoints")))
    assert sl["endpoints"] == [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]


@pytest.mark.slow
def test_the_service_comes_back_and_keeps_its_shape(api, kyb):
    core = client.CoreV1Api(api)
    before = core.read_namespaced_service("kubernetes", "default")
    out = core.delete_namespaced_service("kubernetes", "default")
    assert out.metadata.uid == before.metadata.uid
    svc = wait_for(core.list_namespaced_service, "kubernetes", "default",
                   lambda o: o["metadata"]["uid"] != before.metadata.uid, timeout=40)
    assert svc["spec"]["clusterIP"] == before.spec.cluster_ip
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": kyb.port}]
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    # its endpoints stay (or come back) too
    ep = wait_for(core.list_namespaced_endpoints, "kubernetes", "default", lambda o: bool(o.get("subsets")))
    assert ep["subsets"] == expected_endpoints(kyb.port)

    changed = core.read_namespaced_service("kubernetes", "default")
    changed.metadata.labels["team"] = "infra"
    changed.spec.ports[0].port = 8443
    core.replace_namespaced_service("kubernetes", "default", changed)
    svc = wait_for(core.list_namespaced_service, "kubernetes", "default",
                   lambda o: [p["port"] for p in o["spec"]["ports"]] == [443], timeout=40)
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": kyb.port}]
    assert svc["metadata"]["labels"]["team"] == "infra"  # other edits stay, as upstream
    core.patch_namespaced_service("kubernetes", "default", {"metadata": {"labels": {"team": None}},
                                                            "spec": {"type": "NodePort"}})
    svc = wait_for(core.list_namespaced_service, "kubernetes", "default",
                   lambda o: o["spec"]["type"] == "ClusterIP", timeout=40)
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": kyb.port}]
