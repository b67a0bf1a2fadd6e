"""The other API groups, plus checks every strategy must pass."""

from __future__ import annotations

import base64
import copy

import pytest
from registry_helpers import ago

from kybernetes.registry import all_strategies
from kybernetes.registry.autoscaling.horizontalpodautoscalers import HorizontalPodAutoscalerStrategy
from kybernetes.registry.base import Strategy
from kybernetes.registry.certificates.certificatesigningrequests import CertificateSigningRequestStrategy
from kybernetes.registry.coordination.leases import LeaseStrategy
from kybernetes.registry.discovery.endpointslices import EndpointSliceStrategy
from kybernetes.registry.events.events import EventStrategy as NewEventStrategy
from kybernetes.registry.networking.ingressclasses import IngressClassStrategy
from kybernetes.registry.networking.ingresses import IngressStrategy
from kybernetes.registry.networking.ipaddresses import IPAddressStrategy
from kybernetes.registry.networking.networkpolicies import NetworkPolicyStrategy
from kybernetes.registry.networking.servicecidrs import ServiceCIDRStrategy
from kybernetes.registry.policy.poddisruptionbudgets import PodDisruptionBudgetStrategy
from kybernetes.registry.rbac.clusterrolebindings import ClusterRoleBindingStrategy
from kybernetes.registry.rbac.rolebindings import RoleBindingStrategy
from kybernetes.registry.rbac.roles import RoleStrategy
from kybernetes.registry.scheduling.priorityclasses import PriorityClassStrategy
from kybernetes.registry.storage.csidrivers import CSIDriverStrategy
from kybernetes.registry.storage.csistoragecapacities import CSIStorageCapacityStrategy
from kybernetes.registry.storage.storageclasses import StorageClassStrategy
from kybernetes.registry.storage.volumeattachments import VolumeAttachmentStrategy

STRATEGIES = all_strategies()


def meta(name: str, **extra: object) -> dict:
    return {"name": name, "creationTimestamp": ago(86400), **extra}


def fields(causes) -> list[tuple[str, str]]:
    return [(c.field, c.reason) for c in causes]


# ------------------------------------------------------------------ every strategy
@pytest.mark.parametrize("s", STRATEGIES, ids=lambda s: f"{s.group or 'core'}/{s.resource}")
def test_row_has_a_cell_per_column(s: Strategy) -> None:
    obj = {"apiVersion": s.api_version, "kind": s.kind, "metadata": meta("x")}
    assert len(s.row(obj)) == len(s.columns)
    assert [c.format for c in s.columns].count("name") >= 1 or s.kind == "Binding"
    assert all(c.type in ("string", "integer", "number", "boolean", "date") for c in s.columns)
    assert all(c.priority in (0, 1) for c in s.columns)


@pytest.mark.parametrize("s", STRATEGIES, ids=lambda s: f"{s.group or 'core'}/{s.resource}")
def test_hooks_tolerate_a_bare_object(s: Strategy) -> None:
    obj = {"apiVersion": s.api_version, "kind": s.kind, "metadata": {"name": "x", "uid": "u"}}
    s.default(obj)
    s.prepare_for_create(obj)
    s.validate(obj)
    new = copy.deepcopy(obj)
    s.prepare_for_update(new, obj)
    s.validate_update(new, obj)
    assert s.generation_changes(new, obj) is False
    s.field_values(obj)


# ------------------------------------------------------------------ autoscaling / coordination
def test_hpa_defaults_and_row() -> None:
    s = HorizontalPodAutoscalerStrategy()
    hpa = {"metadata": meta("web"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                                             "maxReplicas": 5, "behavior": {"scaleDown": {"selectPolicy": "Min"}}}}
    s.default(hpa)
    spec = hpa["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    assert spec["behavior"]["scaleDown"] == {"selectPolicy": "Min", "stabilizationWindowSeconds": 300,
                                             "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert spec["behavior"]["scaleUp"]["policies"][0] == {"type": "Pods", "value": 4, "periodSeconds": 15}
    assert s.validate(hpa) == []
    hpa["status"] = {"currentReplicas": 2, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}]}
    assert s.row(hpa) == ["web", "Deployment/web", "cpu: 45%/80%", "1", 5, 2, "24h"]
    hpa["spec"]["maxReplicas"] = 0
    assert fields(s.validate(hpa)) == [("spec.maxReplicas", "FieldValueInvalid")] * 2


def test_lease_row() -> None:
    lease = {"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "node-1_abc"}}
    assert LeaseStrategy().row(lease) == ["kube-scheduler", "node-1_abc", "24h"]


# ------------------------------------------------------------------ events.k8s.io
def test_new_events_api() -> None:
    s = NewEventStrategy()
    ev = {"metadata": meta("e1", namespace="default"), "regarding": {"kind": "Node", "name": "n1"}, "reason": "Starting",
          "type": "Normal", "note": "Starting kubelet.", "reportingController": "kubelet",
          "reportingInstance": "n1", "action": "Start", "eventTime": "2026-05-01T11:59:00.000000Z"}
    assert s.validate(ev) == []
    assert s.row(ev) == ["60s", "Normal", "Starting", "node/n1", "", "kubelet, n1", "Starting kubelet.", "60s",
                         1, "e1"]
    assert s.field_values(ev)["regarding.kind"] == "Node"
    # without eventTime only the old-style rules apply, then the new API asks for it
    assert fields(s.validate({"metadata": meta("e", namespace="default"), "type": "Normal"})) == [
        ("eventTime", "FieldValueRequired")]
    bare = {"metadata": meta("e", namespace="default"), "type": "Normal", "eventTime": "2026-05-01T11:59:00.000000Z"}
    assert fields(s.validate(bare)) == [
        ("reportingController", "FieldValueRequired"), ("reportingController", "FieldValueInvalid"),
        ("reportingController", "FieldValueInvalid"), ("reportingInstance", "FieldValueRequired"),
        ("action", "FieldValueRequired"), ("reason", "FieldValueRequired")]


# ------------------------------------------------------------------ rbac
def test_rbac() -> None:
    role = {"metadata": meta("reader"), "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}
    assert [(c.field, c.message) for c in RoleStrategy().validate(role)] == [
        ("rules[0].verbs", "Required value: verbs must contain at least one value")]
    assert RoleStrategy().row(role) == ["reader", ago(86400)]
    rb = {"metadata": meta("read"), "roleRef": {"kind": "Role", "name": "reader"},
          "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "app", "namespace": "ns"},
                       {"kind": "Group", "name": "devs"}]}
    s = RoleBindingStrategy()
    s.default(rb)
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert rb["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io" and rb["subjects"][1]["apiGroup"] == ""
    assert s.validate(rb) == []
    assert s.row(rb) == ["read", "Role/reader", "24h", "jane", "devs", "ns:app"]
    changed = copy.deepcopy(rb)
    changed["roleRef"]["name"] = "writer"
    (c,) = s.validate_update(changed, rb)
    assert c.message == ('Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", '
                         'Name:"writer"}: cannot change roleRef')
    crb = {"metadata": meta("x"), "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
           "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}
    assert fields(ClusterRoleBindingStrategy().validate(crb)) == [
        ("roleRef.kind", "FieldValueNotSupported"), ("subjects[0].namespace", "FieldValueRequired")]


# ------------------------------------------------------------------ networking
def test_networkpolicy() -> None:
    s = NetworkPolicyStrategy()
    np = {"metadata": meta("deny"), "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                                             "egress": [{"ports": [{"port": 53}]}]}}
    s.default(np)
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert np["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"
    assert s.validate(np) == []
    assert s.row(np) == ["deny", "app=db", "24h"]
    assert s.row({"metadata": meta("all"), "spec": {"podSelector": {}}})[1] == "<none>"


def test_ingress_and_class() -> None:
    ing = {"metadata": meta("web"), "spec": {
        "ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
        "rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
            {"host": "b.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}}
    s = IngressStrategy()
    assert s.validate(ing) == []
    assert s.row(ing) == ["web", "nginx", "a.example.com,b.example.com", "192.0.2.1", "80, 443", "24h"]
    ing["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = None
    assert fields(s.validate(ing)) == [("spec.rules[0].http.paths[0].pathType", "FieldValueRequired")]
    ic = {"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx",
                                              "parameters": {"kind": "Cfg", "apiGroup": "x.io", "name": "p"}}}
    assert IngressClassStrategy().validate(ic) == []
    assert IngressClassStrategy().row(ic) == ["nginx", "k8s.io/ingress-nginx", "Cfg.x.io/p", "24h"]


def test_ipaddress_and_servicecidr() -> None:
    ip = {"metadata": meta("10.43.0.10"), "spec": {"parentRef": {"group": "", "resource": "services",
                                                                 "namespace": "default", "name": "web"}}}
    assert IPAddressStrategy().validate(ip) == []
    assert IPAddressStrategy().row(ip) == ["10.43.0.10", "services/default/web"]
    bad = {**ip, "metadata": meta("10.043.0.1")}
    assert fields(IPAddressStrategy().validate(bad)) == [("metadata.name", "FieldValueInvalid")]
    cidr = {"metadata": meta("kubernetes"), "spec": {"cidrs": ["10.43.0.0/16"]}}
    s = ServiceCIDRStrategy()
    assert s.validate(cidr) == [] and s.row(cidr) == ["kubernetes", "10.43.0.0/16", "24h"]
    bad_cidr = {"metadata": meta("x"), "spec": {"cidrs": ["10.43.0.1/16"]}}
    assert fields(s.validate(bad_cidr)) == [("spec.cidrs[0]", "FieldValueInvalid")]


# ------------------------------------------------------------------ storage
def test_storage_kinds() -> None:
    sc = {"metadata": meta("local-path", annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
          "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}
    s = StorageClassStrategy()
    s.default(sc)
    assert sc["reclaimPolicy"] == "Delete"
    assert s.row(sc) == ["local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", False,
                         "24h"]
    changed = {**sc, "parameters": {"a": "b"}}
    assert fields(s.validate_update(changed, sc)) == [("parameters", "FieldValueForbidden")]

    va = {"metadata": meta("csi-1"), "spec": {"attacher": "x.csi", "nodeName": "n1",
                                              "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": True}}
    assert VolumeAttachmentStrategy().validate(va) == []
    assert VolumeAttachmentStrategy().row(va) == ["csi-1", "x.csi", "pv1", "n1", True, "24h"]

    drv = {"metadata": meta("x.csi"), "spec": {}}
    CSIDriverStrategy().default(drv)
    assert drv["spec"]["attachRequired"] is True and drv["spec"]["volumeLifecycleModes"] == ["Persistent"]
    assert CSIDriverStrategy().row(drv) == ["x.csi", True, False, False, "<unset>", False, "Persistent", "24h"]

    cap = {"metadata": meta("c1"), "storageClassName": "local", "capacity": "10Gi"}
    assert CSIStorageCapacityStrategy().row(cap) == ["c1", "local", "10Gi"]


# ------------------------------------------------------------------ discovery / policy / scheduling
def test_endpointslice() -> None:
    es = {"metadata": meta("web-abc"), "addressType": "IPv4",
          "ports": [{"port": 80}, {"name": "metrics", "port": 9090}],
          "endpoints": [{"addresses": [f"10.42.0.{i}"]} for i in range(1, 6)]}
    s = EndpointSliceStrategy()
    s.default(es)
    assert es["ports"][0] == {"port": 80, "name": "", "protocol": "TCP"}
    assert s.validate(es) == []
    assert s.row(es) == ["web-abc", "IPv4", "80,9090", "10.42.0.1,10.42.0.2,10.42.0.3 + 2 more...", "24h"]
    assert s.row({"metadata": meta("e"), "addressType": "IPv4"})[2:4] == ["<unset>", "<unset>"]
    es["endpoints"][0]["addresses"] = ["fe80::1"]
    assert fields(s.validate(es)) == [("endpoints[0].addresses[0]", "FieldValueInvalid")]


def test_pdb_and_priorityclass() -> None:
    pdb = {"metadata": meta("web"), "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}},
           "status": {"disruptionsAllowed": 1}}
    s = PodDisruptionBudgetStrategy()
    assert s.validate(pdb) == []
    assert s.row(pdb) == ["web", "50%", "N/A", 1, "24h"]
    pdb["spec"]["maxUnavailable"] = 1
    assert fields(s.validate(pdb)) == [("spec", "FieldValueInvalid")]

    pc = {"metadata": meta("high"), "value": 1000}
    p = PriorityClassStrategy()
    p.default(pc)
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    assert p.row(pc) == ["high", 1000, False, "24h", "PreemptLowerPriority"]
    assert fields(p.validate({"metadata": meta("too-high"), "value": 2_000_000_000})) == [("value", "FieldValueForbidden")]
    assert fields(p.validate_update({**pc, "value": 5}, pc)) == [("value", "FieldValueForbidden")]


# ------------------------------------------------------------------ certificates
def test_csr() -> None:
    pem = b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
    csr = {"metadata": meta("node-csr"), "spec": {
        "request": base64.b64encode(pem).decode(), "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
        "usages": ["digital signature", "client auth"], "username": "system:node:n1", "expirationSeconds": 86400}}
    s = CertificateSigningRequestStrategy()
    assert s.validate(csr) == []
    assert s.row(csr) == ["node-csr", "24h", "kubernetes.io/kube-apiserver-client-kubelet", "system:node:n1",
                          "24h", "Pending"]
    csr["status"] = {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "AA=="}
    assert s.row(csr)[5] == "Approved,Issued"
    assert s.field_values(csr)["spec.signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    edited = copy.deepcopy(csr)
    edited["spec"]["usages"] = ["server auth"]
    s.prepare_for_update(edited, csr)
    assert edited["spec"] == csr["spec"]
