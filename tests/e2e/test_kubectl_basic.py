"""Real kubectl 1.37 against a real `kyb server`: the everyday commands."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest

MANIFEST = """
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {app: shop, tier: config}
data:
  color: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shop
stringData:
  password: hunter2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: shop}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.local/web:1.0
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {app: shop}
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
"""


def wait_for(pred, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def applied(kyb):
    out = kyb.kubectl("apply", "-f", "-", input=MANIFEST).stdout
    assert "namespace/shop created" in out
    assert "deployment.apps/web created" in out
    return kyb


def test_version_and_discovery(kyb):
    v = json.loads(kyb.kubectl("version", "-o", "json").stdout)
    assert v["serverVersion"]["major"] == "1" and v["serverVersion"]["minor"] == "37"
    versions = kyb.kubectl("api-versions").stdout.split()
    for gv in ("v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1",
               "coordination.k8s.io/v1", "certificates.k8s.io/v1", "autoscaling/v2", "policy/v1"):
        assert gv in versions
    res = kyb.kubectl("api-resources", "--no-headers").stdout
    lines = {l.split()[0]: l for l in res.splitlines()}
    assert "deploy" in lines["deployments"] and "apps/v1" in lines["deployments"]
    assert "false" in lines["namespaces"].split()  # cluster scoped
    assert "po" in lines["pods"].split()


def test_system_namespaces_exist(kyb):
    names = kyb.kubectl("get", "ns", "-o", "name").stdout.split()
    for n in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"namespace/{n}" in names


def test_get_formats(applied):
    k = applied
    out = k.kubectl("get", "deploy,cm", "-n", "shop").stdout
    assert "deployment.apps/web" in out and "configmap/settings" in out
    y = k.kubectl("get", "cm", "settings", "-n", "shop", "-o", "yaml").stdout
    assert "color: blue" in y and "resourceVersion:" in y and "uid:" in y
    j = json.loads(k.kubectl("get", "secret", "creds", "-n", "shop", "-o", "json").stdout)
    assert j["type"] == "Opaque"
    assert j["data"]["password"] == "aHVudGVyMg=="  # stringData folded into data
    assert "stringData" not in j
    dep = json.loads(k.kubectl("get", "deploy", "web", "-n", "shop", "-o", "json").stdout)
    assert dep["metadata"]["generation"] == 1
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted
    wide = k.kubectl("get", "deploy", "-n", "shop", "-o", "wide").stdout
    header = wide.splitlines()[0].split()
    assert header[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert "IMAGES" in header and "registry.local/web:1.0" in wide


def test_label_and_field_selectors(applied):
    k = applied
    out = k.kubectl("get", "cm,svc,deploy", "-n", "shop", "-l", "app=shop", "-o", "name").stdout.split()
    assert sorted(out) == ["configmap/settings", "deployment.apps/web", "service/web"]
    out = k.kubectl("get", "cm", "-n", "shop", "-l", "tier notin (config)", "-o", "name").stdout.split()
    assert "configmap/settings" not in out
    out = k.kubectl("get", "cm", "-n", "shop", "-l", "tier in (config,other),app", "-o", "name").stdout.split()
    assert out == ["configmap/settings"]
    out = k.kubectl("get", "ns", "--field-selector", "metadata.name=shop", "-o", "name").stdout.split()
    assert out == ["namespace/shop"]
    bad = k.kubectl("get", "pods", "--field-selector", "spec.bogus=1", check=False)
    assert bad.returncode != 0 and "field label not supported: spec.bogus" in bad.stderr


def test_all_namespaces_and_chunking(applied):
    k = applied
    for i in range(7):
        k.kubectl("create", "configmap", f"chunk-{i}", "-n", "default", "--from-literal=i=%d" % i)
    out = k.kubectl("get", "cm", "-A", "--chunk-size=2", "--no-headers").stdout
    names = [l.split()[1] for l in out.splitlines()]
    assert [n for n in names if n.startswith("chunk-")] == [f"chunk-{i}" for i in range(7)]
    assert "settings" in names


def test_watch_sees_later_changes(applied):
    k = applied
    env = dict(os.environ, KUBECONFIG=str(k.kubeconfig))
    from fixtures.server import KUBECTL

    # --request-timeout bounds the watch, so a missing event cannot hang the test
    p = subprocess.Popen([KUBECTL, "get", "cm", "-n", "shop", "-w", "--output-watch-events", "--request-timeout=20s",
                          "--field-selector=metadata.name!=kube-root-ca.crt"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # the initial listing arrives first; then a later create must show up
        header = p.stdout.readline().split()
        assert header[:2] == ["EVENT", "NAME"] and "DATA" in header, header
        first = p.stdout.readline()
        assert first.split()[:2] == ["ADDED", "settings"], first
        k.kubectl("create", "configmap", "watched", "-n", "shop", "--from-literal=a=b")
        seen = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "watched" in line:
                break
        assert any(l.split()[:2] == ["ADDED", "watched"] for l in seen), seen
    finally:
        p.kill()
        p.wait()


def test_describe(applied):
    out = applied.kubectl("describe", "deploy", "web", "-n", "shop").stdout
    assert "Name:" in out and "web" in out and "Replicas:" in out


def test_explain(kyb):
    out = kyb.kubectl("explain", "deployment.spec.replicas").stdout
    assert "replicas" in out and "integer" in out
    out = kyb.kubectl("explain", "pods.spec.containers").stdout
    assert "image" in out


def test_edit_with_kube_editor(applied, tmp_path):
    k = applied
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/color: blue/color: green/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    out = k.kubectl("edit", "cm", "settings", "-n", "shop", env={"KUBE_EDITOR": str(editor)}).stdout
    assert "edited" in out
    cm = json.loads(k.kubectl("get", "cm", "settings", "-n", "shop", "-o", "json").stdout)
    assert cm["data"]["color"] == "green"


def test_replace_and_stale_conflict(applied):
    k = applied
    cm = json.loads(k.kubectl("get", "cm", "settings", "-n", "shop", "-o", "json").stdout)
    stale = json.loads(json.dumps(cm))
    cm["data"]["size"] = "xl"
    k.kubectl("replace", "-f", "-", input=json.dumps(cm))
    stale["data"]["size"] = "s"
    p = k.kubectl("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert p.returncode != 0
    assert "the object has been modified" in p.stderr
    now = json.loads(k.kubectl("get", "cm", "settings", "-n", "shop", "-o", "json").stdout)
    assert now["data"]["size"] == "xl"


def test_bad_manifests(kyb):
    p = kyb.kubectl("apply", "-f", "-", check=False, input="""
apiVersion: v1
kind: ConfigMap
metadata:
  name: Bad_Name
data: {a: b}
""")
    assert p.returncode != 0
    assert 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' in p.stderr
    p = kyb.kubectl("apply", "-f", "-", check=False, input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: nosel}
spec:
  replicas: 1
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: c, image: busybox}]
""")
    assert p.returncode != 0 and "spec.selector: Required value" in p.stderr
    p = kyb.kubectl("create", "-f", "-", check=False, input="""
apiVersion: v1
kind: ConfigMap
metadata: {name: cm-unknown, namespace: nonexistent}
data: {a: b}
""")
    assert p.returncode != 0 and 'namespaces "nonexistent" not found' in p.stderr


def test_delete_single_label_all(applied):
    k = applied
    for n in ("d1", "d2", "d3"):
        k.kubectl("create", "configmap", n, "-n", "default", "--from-literal=a=b")
    k.kubectl("label", "cm", "d1", "d2", "-n", "default", "grp=del")
    out = k.kubectl("delete", "cm", "d3", "-n", "default").stdout
    assert 'configmap "d3" deleted' in out
    out = k.kubectl("delete", "cm", "-l", "grp=del", "-n", "default").stdout
    assert "d1" in out and "d2" in out
    left = k.kubectl("get", "cm", "-n", "default", "-o", "name").stdout.split()
    assert not any(n in left for n in ("configmap/d1", "configmap/d2", "configmap/d3"))
    k.kubectl("delete", "cm", "--all", "-n", "default")
    left = k.kubectl("get", "cm", "-n", "default", "-o", "name").stdout.split()
    assert all(n == "configmap/kube-root-ca.crt" for n in left)


def test_typed_create_uses_protobuf(kyb):
    """`kubectl create namespace|configmap|deployment` send protobuf bodies."""
    kyb.kubectl("create", "namespace", "pbns")
    kyb.kubectl("create", "configmap", "pbcm", "-n", "pbns", "--from-literal=k=v")
    kyb.kubectl("create", "deployment", "pbdep", "-n", "pbns", "--image=busybox", "--replicas=0")
    kyb.kubectl("create", "secret", "generic", "pbsec", "-n", "pbns", "--from-literal=k=v")
    kyb.kubectl("create", "service", "clusterip", "pbsvc", "-n", "pbns", "--tcp=80:8080")
    dep = json.loads(kyb.kubectl("get", "deploy", "pbdep", "-n", "pbns", "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 0
    cm = json.loads(kyb.kubectl("get", "cm", "pbcm", "-n", "pbns", "-o", "json").stdout)
    assert cm["data"] == {"k": "v"}
    sec = json.loads(kyb.kubectl("get", "secret", "pbsec", "-n", "pbns", "-o", "json").stdout)
    assert sec["data"] == {"k": "dg=="}
    svc = json.loads(kyb.kubectl("get", "svc", "pbsvc", "-n", "pbns", "-o", "json").stdout)
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8080


def test_delete_namespace_removes_its_content(kyb):
    """`kubectl delete ns` waits until the namespace controller has emptied and finalized it."""
    kyb.kubectl("create", "namespace", "doomed")
    kyb.kubectl("create", "configmap", "c1", "-n", "doomed", "--from-literal=a=b")
    kyb.kubectl("create", "deployment", "d1", "-n", "doomed", "--image=busybox")
    out = kyb.kubectl("delete", "namespace", "doomed", "--timeout=30s").stdout
    assert 'namespace "doomed" deleted' in out
    p = kyb.kubectl("get", "namespace", "doomed", check=False)
    assert p.returncode != 0 and "NotFound" in p.stderr
    # a namespace of the same name starts empty
    kyb.kubectl("create", "namespace", "doomed")
    assert kyb.kubectl("get", "cm,deploy", "-n", "doomed", "-o", "name").stdout.split() in (
        [], ["configmap/kube-root-ca.crt"])


def test_system_namespace_cannot_be_deleted(kyb):
    p = kyb.kubectl("delete", "namespace", "kube-system", check=False)
    assert p.returncode != 0 and "this namespace may not be deleted" in p.stderr
