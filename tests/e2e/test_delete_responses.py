"""The official Python client deserializes every DELETE answer: the deleted object for Service,
ServiceAccount, StorageClass, CSIDriver and Pod (the client's declared return types), a Status for
the others, the terminating object while a deletion is pending (client 37 declares `object`, a
dict, for the kinds whose answer varies)."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

NS = "delresp"
pytestmark = pytest.mark.usefixtures("module_namespace")


def gone(read, *args) -> bool:
    try:
        read(*args)
    except ApiException as e:
        return e.status == 404
    return False


def test_kinds_returning_the_deleted_object(api):
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    svc = core.create_namespaced_service(NS, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    out = core.delete_namespaced_service("web", NS)
    assert isinstance(out, client.V1Service)
    assert out.metadata.uid == svc.metadata.uid and out.spec.cluster_ip == svc.spec.cluster_ip
    assert gone(core.read_namespaced_service, "web", NS)

    core.create_namespaced_service_account(NS, {"metadata": {"name": "robot"}})
    out = core.delete_namespaced_service_account("robot", NS)
    assert isinstance(out, client.V1ServiceAccount) and out.metadata.name == "robot"

    storage.create_storage_class({"metadata": {"name": "delresp-sc"}, "provisioner": "example.com/p"})
    out = storage.delete_storage_class("delresp-sc")
    assert isinstance(out, client.V1StorageClass) and out.provisioner == "example.com/p"
    assert gone(storage.read_storage_class, "delresp-sc")

    storage.create_csi_driver({"metadata": {"name": "delresp.example.com"}, "spec": {}})
    out = storage.delete_csi_driver("delresp.example.com")
    assert isinstance(out, client.V1CSIDriver) and out.metadata.name == "delresp.example.com"


def test_other_kinds_answer_a_status(api):
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    st = core.delete_namespaced_config_map("cm", NS)  # declared `object`: the Status as a dict
    assert (st["kind"], st["status"]) == ("Status", "Success")
    assert st["details"] == {"name": "cm", "kind": "configmaps", "uid": cm.metadata.uid}

    for name in ("a", "b"):
        core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": {"set": "ab"}}})
    lst = core.delete_collection_namespaced_config_map(NS, label_selector="set=ab")
    assert lst.kind == "ConfigMapList"  # declared V1Status; upstream answers the list too
    assert core.list_namespaced_config_map(NS, label_selector="set=ab").items == []


def test_pod_graceful_delete_returns_the_terminating_pod(api):
    core = client.CoreV1Api(api)
    # bound to a node that never runs it: the deletion stays pending until forced
    core.create_namespaced_pod(NS, {"metadata": {"name": "p"}, "spec": {
        "nodeName": "delresp-nowhere", "containers": [{"name": "c", "image": "busybox"}]}})
    try:
        out = core.delete_namespaced_pod("p", NS)
        assert isinstance(out, client.V1Pod)
        assert out.metadata.deletion_timestamp is not None and out.metadata.deletion_grace_period_seconds == 30
        assert core.read_namespaced_pod("p", NS).metadata.deletion_timestamp is not None
    finally:
        out = core.delete_namespaced_pod("p", NS, grace_period_seconds=0)
    assert isinstance(out, client.V1Pod)
    assert gone(core.read_namespaced_pod, "p", NS)


def deployment(name: str) -> dict:
    labels = {"app": name}
    return {"metadata": {"name": name}, "spec": {
        "replicas": 0, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def test_deployment_delete_with_propagation_policies(api):
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(NS, deployment("fg"))
    # foreground: the deployment stays, terminating, until the garbage collector has removed its
    # dependents; the answer is that object
    out = apps.delete_namespaced_deployment("fg", NS, propagation_policy="Foreground")
    assert (out["kind"], out["apiVersion"]) == ("Deployment", "apps/v1")
    assert out["metadata"]["deletionTimestamp"] and "foregroundDeletion" in out["metadata"]["finalizers"]

    apps.create_namespaced_deployment(NS, deployment("bg"))
    st = apps.delete_namespaced_deployment("bg", NS, propagation_policy="Background")
    assert (st["kind"], st["status"]) == ("Status", "Success")
    assert (st["details"]["group"], st["details"]["kind"], st["details"]["name"]) == ("apps", "deployments", "bg")
    assert gone(apps.read_namespaced_deployment, "bg", NS)


def test_namespace_delete_returns_the_terminating_namespace(api):
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="delresp-ns")))
    out = core.delete_namespace("delresp-ns")  # the namespace controller finishes it
    assert (out["kind"], out["apiVersion"]) == ("Namespace", "v1")
    assert out["status"]["phase"] == "Terminating" and out["metadata"]["deletionTimestamp"]
