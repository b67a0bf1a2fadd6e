"""PodSecurity admission with real kubectl and the official Python client: namespace
labels enforce / warn / audit the Pod Security Standards."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from fixtures.server import start_server

L = "pod-security.kubernetes.io"
POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    resources: [{group: ""}, {group: "apps"}]
    omitStages: ["RequestReceived"]
"""
ADMISSION = """\
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults: {enforce: privileged, audit: baseline, warn: privileged}
    exemptions: {namespaces: [exempt-ns]}
"""

COMPLIANT = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good"},
    "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
             "containers": [{"name": "c", "image": "busybox", "securityContext": {
                 "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]},
}
RESTRICTED_MSG = ('pods "bad" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
                  '(container "bad" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
                  '(container "bad" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
                  'container "bad" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "bad" '
                  'must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("psa")
    (d / "policy.yaml").write_text(POLICY)
    (d / "admission.yaml").write_text(ADMISSION)
    s = start_server(d / "data", extra=("--audit-policy-file", str(d / "policy.yaml"),
                                        "--audit-log-path", str(d / "audit.log"),
                                        "--admission-control-config-file", str(d / "admission.yaml")))
    s.audit_log = d / "audit.log"
    yield s
    s.stop()


@pytest.fixture
def namespace(srv):
    name = f"psa-{time.monotonic_ns() % 10**9}"
    srv.kubectl("create", "namespace", name)
    yield name
    srv.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_enforce_restricted_with_kubectl(srv, namespace):
    srv.kubectl("label", "namespace", namespace, f"{L}/enforce=restricted")
    p = srv.kubectl("run", "bad", "--image=busybox", "-n", namespace, check=False)
    assert p.returncode != 0
    assert f"Error from server (Forbidden): {RESTRICTED_MSG}" in p.stderr
    assert srv.kubectl("get", "pod", "bad", "-n", namespace, check=False).returncode != 0  # nothing written
    srv.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(COMPLIANT))
    assert srv.kubectl("get", "pod", "good", "-n", namespace, "-o", "name").stdout.strip() == "pod/good"


def test_warn_mode_and_workloads(srv, namespace):
    srv.kubectl("label", "namespace", namespace, f"{L}/warn=baseline", f"{L}/warn-version=v1.30")
    p = srv.kubectl("run", "priv", "--image=busybox", "-n", namespace, "--privileged")
    assert ('Warning: would violate PodSecurity "baseline:v1.30": privileged (container "priv" must not set '
            'securityContext.privileged=true)') in p.stderr
    # workloads are never refused, even under enforce; they carry the warning
    srv.kubectl("label", "namespace", namespace, f"{L}/enforce=baseline")
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
               "metadata": {"labels": {"a": "b"}},
               "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "busybox"}]}}}}
    p = srv.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(dep))
    assert 'Warning: would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)' not in p.stderr
    assert 'Warning: would violate PodSecurity "baseline:v1.30": host namespaces (hostNetwork)' in p.stderr
    assert srv.kubectl("get", "deployment", "d", "-n", namespace, "-o", "name").stdout.strip() == "deployment.apps/d"


def test_namespace_label_changes(srv, namespace):
    p = srv.kubectl("label", "namespace", namespace, f"{L}/enforce=strict", check=False)
    assert p.returncode != 0
    assert (f'Namespace "{namespace}" is invalid: metadata.labels[{L}/enforce]: Invalid value: "strict": must be '
            'one of privileged, baseline, restricted') in p.stderr
    srv.kubectl("run", "root", "--image=busybox", "-n", namespace, "--privileged")
    srv.kubectl("run", "root2", "--image=busybox", "-n", namespace, "--privileged")
    p = srv.kubectl("label", "namespace", namespace, f"{L}/enforce=baseline")
    assert (f'Warning: existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
            '"baseline:latest"') in p.stderr
    assert "Warning: root (and 1 other pod): privileged" in p.stderr
    labels = json.loads(srv.kubectl("get", "ns", namespace, "-o", "json").stdout)["metadata"]["labels"]
    assert labels[f"{L}/enforce"] == "baseline"  # the label change itself is allowed


def test_python_client_and_audit_annotations(srv, namespace):
    srv.kubectl("label", "namespace", namespace, f"{L}/enforce=restricted")
    api = client.CoreV1Api(config.new_client_from_config(str(srv.kubeconfig)))
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
           "spec": {"containers": [{"name": "bad", "image": "busybox"}]}}
    with pytest.raises(ApiException) as e:
        api.create_namespaced_pod(namespace, bad)
    assert e.value.status == 403
    status = json.loads(e.value.body)
    assert status["reason"] == "Forbidden" and status["message"] == RESTRICTED_MSG
    assert status["details"] == {"name": "bad", "kind": "pods"}
    created = api.create_namespaced_pod(namespace, COMPLIANT)
    assert created.metadata.name == "good"

    def events():
        if not srv.audit_log.exists():
            return []
        return [ev for ev in map(json.loads, srv.audit_log.read_text().splitlines())
                if ev.get("verb") == "create" and ev.get("objectRef", {}).get("resource") == "pods"
                and ev.get("objectRef", {}).get("namespace") == namespace]

    deadline = time.monotonic() + 10
    while len(events()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    denied, allowed = events()[:2]
    assert denied["responseStatus"]["code"] == 403 and allowed["responseStatus"]["code"] == 201
    assert denied["annotations"][f"{L}/enforce-policy"] == "restricted:latest"
    assert allowed["annotations"][f"{L}/enforce-policy"] == "restricted:latest"
    assert "pod-security.kubernetes.io/audit-violations" not in allowed["annotations"]


def test_default_audit_level_and_exempt_namespace(srv):
    srv.kubectl("create", "namespace", "exempt-ns")
    srv.kubectl("label", "namespace", "exempt-ns", f"{L}/enforce=restricted")
    try:
        srv.kubectl("run", "free", "--image=busybox", "-n", "exempt-ns", "--privileged")  # exempt: allowed
        srv.kubectl("run", "priv", "--image=busybox", "-n", "default", "--privileged")
        deadline = time.monotonic() + 10
        found = {}
        while len(found) < 2 and time.monotonic() < deadline:
            for ev in map(json.loads, srv.audit_log.read_text().splitlines()):
                ref = ev.get("objectRef", {})
                if ev.get("verb") == "create" and ref.get("resource") == "pods" and ref.get("name") in ("free", "priv"):
                    found[ref["name"]] = ev["annotations"]
            time.sleep(0.05)
        assert found["free"][f"{L}/exempt"] == "namespace"
        assert found["priv"][f"{L}/audit-violations"] == (
            'would violate PodSecurity "baseline:latest": privileged (container "priv" must not set '
            'securityContext.privileged=true)')
    finally:
        srv.kubectl("delete", "pod", "priv", "-n", "default", "--wait=false", check=False)
        srv.kubectl("delete", "namespace", "exempt-ns", "--wait=false", check=False)
