"""Core/v1 kinds other than pods: printer cells, defaults, validation."""

from __future__ import annotations

import base64

from registry_helpers import ago

from kybernetes.registry.core.configmaps import ConfigMapStrategy
from kybernetes.registry.core.endpoints import EndpointsStrategy
from kybernetes.registry.core.events import EventStrategy
from kybernetes.registry.core.limitranges import LimitRangeStrategy
from kybernetes.registry.core.namespaces import NamespaceStrategy
from kybernetes.registry.core.nodes import NodeStrategy
from kybernetes.registry.core.persistentvolumeclaims import PersistentVolumeClaimStrategy
from kybernetes.registry.core.persistentvolumes import PersistentVolumeStrategy
from kybernetes.registry.core.replicationcontrollers import ReplicationControllerStrategy
from kybernetes.registry.core.resourcequotas import ResourceQuotaStrategy
from kybernetes.registry.core.secrets import SecretStrategy
from kybernetes.registry.core.services import ServiceStrategy


def meta(name: str, age: float = 14400, **extra: object) -> dict:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(age), **extra}


def causes(strategy, obj, old=None) -> list[tuple[str, str, str]]:
    got = strategy.validate(obj) if old is None else strategy.validate_update(obj, old)
    return [(c.field, c.reason, c.message) for c in got]


# ------------------------------------------------------------------ services
SVC = ServiceStrategy()


def test_service_row_with_ports() -> None:
    svc = {"metadata": meta("web"), "spec": {
        "type": "NodePort", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"], "selector": {"app": "web"},
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]}}
    assert [c.name for c in SVC.columns] == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    assert SVC.row(svc) == ["web", "NodePort", "10.43.0.10", "<none>", "80:30080/TCP,443/TCP", "4h", "app=web"]


def test_service_external_ip_cells() -> None:
    lb = {"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}}
    assert SVC.row(lb)[2:4] == ["<none>", "<pending>"]
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}}
    lb["spec"]["externalIPs"] = ["198.51.100.1"]
    assert SVC.row(lb)[3] == "192.0.2.9,198.51.100.1"
    ext = {"metadata": meta("db"), "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    assert SVC.row(ext)[1:5] == ["ExternalName", "<none>", "db.example.com", "<none>"]


def test_service_defaults() -> None:
    svc = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    SVC.default(svc)
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["ipFamilyPolicy"] == "SingleStack" and spec["ipFamilies"] == ["IPv4"]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "clusterIP" not in spec  # allocation is the API server's job


def test_service_validation() -> None:
    svc = {"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "ports": []}}
    assert causes(SVC, svc) == [("spec.ports", "FieldValueRequired", "Required value")]
    svc["spec"]["ports"] = [{"port": 0, "protocol": "TCP"}, {"name": "b", "port": 80, "protocol": "TCP",
                                                             "nodePort": 30000}]
    got = causes(SVC, svc)
    assert ("spec.ports[0].name", "FieldValueRequired", "Required value") in got
    assert ("spec.ports[0].port", "FieldValueInvalid",
            "Invalid value: 0: must be between 1 and 65535, inclusive") in got
    assert ("spec.ports[1].nodePort", "FieldValueForbidden",
            "Forbidden: may not be used when `type` is 'ClusterIP'") in got
    headless = {"metadata": {"name": "h"}, "spec": {"type": "ClusterIP", "clusterIP": "None"}}
    assert causes(SVC, headless) == []


def test_service_update_keeps_allocated_ip() -> None:
    old = {"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.5",
                                                 "clusterIPs": ["10.43.0.5"], "ports": [{"port": 80, "protocol": "TCP"}]}}
    new = {"metadata": {"name": "web"}, "spec": {"type": "ClusterIP", "ports": [{"port": 81, "protocol": "TCP"}]}}
    SVC.prepare_for_update(new, old)
    assert new["spec"]["clusterIPs"] == ["10.43.0.5"]
    new["spec"]["clusterIPs"] = ["10.43.0.6"]
    assert ("spec.clusterIPs[0]", "FieldValueInvalid",
            'Invalid value: []string{"10.43.0.6"}: may not change once set') in causes(SVC, new, old)


# ------------------------------------------------------------------ nodes
def test_node_row() -> None:
    node = {"metadata": meta("node-1", 86400 * 3, labels={"node-role.kubernetes.io/control-plane": ""}),
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                                     {"type": "Hostname", "address": "node-1"}],
                       "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Debian GNU/Linux 13 (trixie)",
                                    "kernelVersion": "6.12.0", "containerRuntimeVersion": "containerd://2.1.0"}}}
    assert NodeStrategy().row(node) == [
        "node-1", "Ready,SchedulingDisabled", "control-plane", "3d", "v1.37.0", "192.168.1.10", "<none>",
        "Debian GNU/Linux 13 (trixie)", "6.12.0", "containerd://2.1.0"]
    bare = {"metadata": meta("n2")}
    assert NodeStrategy().row(bare)[1:3] == ["Unknown", "<none>"]
    assert NodeStrategy().field_values(node)["spec.unschedulable"] == "true"


# ------------------------------------------------------------------ namespaces
def test_namespace_create_and_row() -> None:
    s = NamespaceStrategy()
    ns = {"metadata": {"name": "team-a", "creationTimestamp": ago(30)}}
    s.default(ns)
    s.prepare_for_create(ns)
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    assert s.row(ns) == ["team-a", "Active", "30s"]
    assert [c.name for c in s.columns] == ["Name", "Status", "Age"]
    new = {"metadata": {"name": "team-a"}, "spec": {"finalizers": []}}
    s.prepare_for_update(new, ns)
    assert new["spec"]["finalizers"] == ["kubernetes"] and new["status"] == {"phase": "Active"}


# ------------------------------------------------------------------ configmaps / secrets
def test_configmap_keys_size_and_immutability() -> None:
    s = ConfigMapStrategy()
    cm = {"metadata": meta("c"), "data": {"good.key": "1", "bad key": "2"}}
    (cause,) = causes(s, cm)
    assert cause[0] == "data[bad key]" and cause[1] == "FieldValueInvalid"
    assert cause[2].startswith('Invalid value: "bad key": a valid config key must consist of alphanumeric')
    big = {"metadata": meta("c"), "data": {"a": "x" * (1024 * 1024 + 1)}}
    assert causes(s, big) == [("", "FieldValueTooLong", "Too long: may not be more than 1048576 bytes")]
    old = {"metadata": meta("c"), "immutable": True, "data": {"a": "1"}}
    new = {"metadata": meta("c"), "immutable": True, "data": {"a": "2"}}
    assert causes(s, new, old) == [("data", "FieldValueForbidden",
                                    "Forbidden: field is immutable when `immutable` is set")]
    assert s.row({"metadata": meta("c"), "data": {"a": "1"}, "binaryData": {"b": "AA=="}}) == ["c", 2, "4h"]


def test_secret_defaults_and_validation() -> None:
    s = SecretStrategy()
    sec = {"metadata": meta("s"), "stringData": {"password": "hunter2"}}
    s.default(sec)
    assert sec["type"] == "Opaque" and "stringData" not in sec
    assert base64.b64decode(sec["data"]["password"]) == b"hunter2"
    assert s.row(sec) == ["s", "Opaque", 1, "4h"]
    tls = {"metadata": meta("t"), "type": "kubernetes.io/tls", "data": {"tls.crt": "AA=="}}
    assert causes(s, tls) == [("data[tls.key]", "FieldValueRequired", "Required value")]
    assert s.field_values(sec)["type"] == "Opaque"


# ------------------------------------------------------------------ events
def test_event_row() -> None:
    ev = {"metadata": meta("web.17a"), "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
          "reason": "Pulled", "type": "Normal", "message": "Container image pulled\n",
          "source": {"component": "kubelet", "host": "node-1"},
          "firstTimestamp": ago(600), "lastTimestamp": ago(60), "count": 3}
    s = EventStrategy()
    assert [c.name for c in s.columns] == ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source",
                                           "Message", "First Seen", "Count", "Name"]
    assert s.row(ev) == ["60s", "Normal", "Pulled", "pod/web", "spec.containers{a}", "kubelet, node-1",
                         "Container image pulled", "10m", 3, "web.17a"]
    assert s.field_values(ev)["involvedObject.name"] == "web" and s.field_values(ev)["source"] == "kubelet"


# ------------------------------------------------------------------ storage
def test_pv_and_pvc_rows() -> None:
    pv = {"metadata": meta("pv1"), "spec": {"capacity": {"storage": "10Gi"},
                                            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                                            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
                                            "claimRef": {"namespace": "default", "name": "data"},
                                            "volumeMode": "Filesystem", "hostPath": {"path": "/x"}},
          "status": {"phase": "Bound"}}
    assert PersistentVolumeStrategy().row(pv) == [
        "pv1", "10Gi", "RWO,RWX", "Retain", "Bound", "default/data", "local", "<unset>", "", "4h", "Filesystem"]
    pvc = {"metadata": meta("data"), "spec": {"volumeName": "pv1", "storageClassName": "local",
                                              "accessModes": ["ReadWriteOnce"],
                                              "resources": {"requests": {"storage": "5Gi"}}},
           "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}}
    assert PersistentVolumeClaimStrategy().row(pvc) == [
        "data", "Bound", "pv1", "10Gi", "RWO", "local", "<unset>", "4h", "<unset>"]


def test_pvc_validation_and_defaults() -> None:
    s = PersistentVolumeClaimStrategy()
    pvc = {"metadata": meta("d"), "spec": {}}
    s.default(pvc)
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert causes(s, pvc) == [("spec.accessModes", "FieldValueRequired", "Required value"),
                              ("spec.resources[storage]", "FieldValueRequired", "Required value")]


def test_pv_defaults() -> None:
    pv = {"metadata": meta("p"), "spec": {"hostPath": {"path": "/d"}}}
    PersistentVolumeStrategy().default(pv)
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["volumeMode"] == "Filesystem" and pv["spec"]["hostPath"]["type"] == ""


# ------------------------------------------------------------------ misc
def test_quota_limitrange_endpoints_rc() -> None:
    q = {"metadata": meta("q"), "status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
                                           "used": {"pods": "3", "limits.cpu": "500m"}}}
    assert ResourceQuotaStrategy().row(q) == ["q", "pods: 3/10, requests.cpu: 0/1", "limits.cpu: 500m/2", "4h"]
    lr = {"metadata": meta("lr"), "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}}]}}
    LimitRangeStrategy().default(lr)
    assert lr["spec"]["limits"][0]["default"] == {"cpu": "2"} and lr["spec"]["limits"][0]["defaultRequest"] == {"cpu": "2"}
    assert [c.name for c in LimitRangeStrategy().columns] == ["Name", "Created At"]
    ep = {"metadata": meta("web"), "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)],
                                                "ports": [{"port": 80}]}]}
    assert EndpointsStrategy().row(ep)[1] == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."
    rc = {"metadata": meta("rc"), "spec": {"template": {"metadata": {"labels": {"app": "x"}},
                                                        "spec": {"containers": [{"name": "a", "image": "i"}]}}}}
    s = ReplicationControllerStrategy()
    s.default(rc)
    assert rc["spec"]["selector"] == {"app": "x"} and rc["spec"]["replicas"] == 1
    assert rc["metadata"]["labels"] == {"app": "x"}
    assert s.validate(rc) == []
    assert s.row(rc) == ["rc", 1, 0, 0, "4h", "a", "i", "app=x"]
