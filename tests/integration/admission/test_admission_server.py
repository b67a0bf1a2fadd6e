"""Built-in admission plugins against a real `kyb server`, driven by the real kubectl."""

from __future__ import annotations

import json
import time

import pytest

NS = "adm"


def _wait_default_sa(kyb, ns: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kyb.kubectl("get", "sa", "default", "-n", ns, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"no default service account in {ns}")


@pytest.fixture(scope="module")
def ns(kyb):
    kyb.kubectl("create", "namespace", NS)
    _wait_default_sa(kyb, NS)
    return NS


def get_json(kyb, *args):
    return json.loads(kyb.kubectl("get", *args, "-o", "json").stdout)


def test_run_pod_gets_token_volume_and_mount(kyb, ns):
    kyb.kubectl("run", "web", "--image=nginx", "-n", ns)
    pod = get_json(kyb, "pod", "web", "-n", ns)
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    [vol] = [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    assert vol["projected"]["defaultMode"] == 420
    assert vol["projected"]["sources"][0]["serviceAccountToken"] == {"path": "token", "expirationSeconds": 3607}
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": vol["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
    # DefaultTolerationSeconds and Priority
    tol = {t["key"]: t for t in spec["tolerations"]}
    assert tol["node.kubernetes.io/not-ready"] == {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                                   "effect": "NoExecute", "tolerationSeconds": 300}
    assert tol["node.kubernetes.io/unreachable"]["tolerationSeconds"] == 300
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    y = kyb.kubectl("get", "pod", "web", "-n", ns, "-o", "yaml").stdout
    assert "mountPath: /var/run/secrets/kubernetes.io/serviceaccount" in y and "kube-api-access-" in y


def test_automount_false_skips_token(kyb, ns):
    kyb.kubectl("run", "quiet", "--image=nginx", "-n", ns,
                "--overrides", json.dumps({"spec": {"automountServiceAccountToken": False}}))
    spec = get_json(kyb, "pod", "quiet", "-n", ns)["spec"]
    assert not spec.get("volumes") and not spec["containers"][0].get("volumeMounts")


def test_unknown_service_account_forbidden(kyb, ns):
    p = kyb.kubectl("run", "nosa", "--image=nginx", "-n", ns, "--overrides",
                    json.dumps({"spec": {"serviceAccountName": "robot"}}), check=False)
    assert p.returncode != 0
    assert (f'pods "nosa" is forbidden: error looking up service account {ns}/robot: '
            'serviceaccount "robot" not found') in p.stderr


def test_limitrange_defaults_and_max(kyb, ns):
    kyb.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"},
                             "default": {"cpu": "500m", "memory": "128Mi"},
                             "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}]}}))
    try:
        kyb.kubectl("run", "limited", "--image=nginx", "-n", ns)
        pod = get_json(kyb, "pod", "limited", "-n", ns)
        res = pod["spec"]["containers"][0]["resources"]
        assert res == {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}}
        assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
            "LimitRanger plugin set: cpu, memory request for container limited; "
            "cpu, memory limit for container limited")
        p = kyb.kubectl("run", "big", "--image=nginx", "-n", ns, "--overrides", json.dumps({"spec": {"containers": [
            {"name": "big", "image": "nginx", "resources": {"limits": {"cpu": "2"}}}]}}), check=False)
        assert p.returncode != 0
        assert 'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2' in p.stderr
        assert kyb.kubectl("get", "pod", "big", "-n", ns, check=False).returncode != 0  # nothing written
    finally:
        kyb.kubectl("delete", "limitrange", "lr", "-n", ns)


def test_priority_classes(kyb, ns):
    names = kyb.kubectl("get", "priorityclasses", "-o", "name").stdout.split()
    assert "priorityclass.scheduling.k8s.io/system-node-critical" in names
    assert "priorityclass.scheduling.k8s.io/system-cluster-critical" in names
    kyb.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
        "value": 1000, "preemptionPolicy": "Never"}))
    kyb.kubectl("run", "prio", "--image=nginx", "-n", ns, "--overrides",
                json.dumps({"spec": {"priorityClassName": "high"}}))
    spec = get_json(kyb, "pod", "prio", "-n", ns)["spec"]
    assert spec["priority"] == 1000 and spec["preemptionPolicy"] == "Never"
    crit = kyb.kubectl("run", "crit", "--image=nginx", "-n", ns, "--overrides",
                       json.dumps({"spec": {"priorityClassName": "system-cluster-critical"}}))
    assert crit.returncode == 0
    assert get_json(kyb, "pod", "crit", "-n", ns)["spec"]["priority"] == 2000000000
    p = kyb.kubectl("run", "nopc", "--image=nginx", "-n", ns, "--overrides",
                    json.dumps({"spec": {"priorityClassName": "missing"}}), check=False)
    assert p.returncode != 0
    assert 'pods "nopc" is forbidden: no PriorityClass with name missing was found' in p.stderr
    # a global default applies to pods without a class; only one default may exist
    kyb.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "dflt"},
        "value": 7, "globalDefault": True}))
    try:
        p = kyb.kubectl("apply", "-f", "-", check=False, input=json.dumps({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "dflt2"},
            "value": 8, "globalDefault": True}))
        assert p.returncode != 0
        assert "PriorityClass dflt is already marked as default. Only one default can exist" in p.stderr
        kyb.kubectl("run", "defprio", "--image=nginx", "-n", ns)
        spec = get_json(kyb, "pod", "defprio", "-n", ns)["spec"]
        assert spec["priorityClassName"] == "dflt" and spec["priority"] == 7
    finally:
        kyb.kubectl("delete", "priorityclass", "dflt", "high")


def test_default_storage_class(kyb, ns):
    kyb.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "example.com/fast"}))
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    kyb.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(claim))
    assert get_json(kyb, "pvc", "data", "-n", ns)["spec"]["storageClassName"] == "fast"
    explicit = dict(claim, metadata={"name": "none"}, spec=dict(claim["spec"], storageClassName=""))
    kyb.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(explicit))
    assert get_json(kyb, "pvc", "none", "-n", ns)["spec"]["storageClassName"] == ""
