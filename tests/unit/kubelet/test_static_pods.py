"""Static pod manifests: upstream's file-source defaults, the UID hash, mirror pods."""

from __future__ import annotations

import pytest

from kybernetes.kubelet.static_pods import (
    CONFIG_HASH,
    CONFIG_MIRROR,
    CONFIG_SOURCE,
    ManifestError,
    is_mirror_pod,
    mirror_pod,
    read_manifests,
    static_pod_from_manifest,
)

MANIFEST = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: c
    image: busybox
"""


def test_defaults_and_hash():
    p = static_pod_from_manifest(MANIFEST, "/etc/m/web.yaml", "Node-A")
    m = p["metadata"]
    assert m["name"] == "web-node-a" and m["namespace"] == "default"
    assert p["spec"]["nodeName"] == "Node-A"
    assert len(m["uid"]) == 32 and m["annotations"] == {CONFIG_HASH: m["uid"], CONFIG_SOURCE: "file"}
    again = static_pod_from_manifest(MANIFEST, "/etc/m/web.yaml", "Node-A")
    assert again["metadata"]["uid"] == m["uid"]  # stable across reads
    assert static_pod_from_manifest(MANIFEST, "/etc/m/other.yaml", "Node-A")["metadata"]["uid"] != m["uid"]
    assert static_pod_from_manifest(MANIFEST, "/etc/m/web.yaml", "node-b")["metadata"]["uid"] != m["uid"]
    edited = static_pod_from_manifest(MANIFEST.replace("app: web", "app: web2"), "/etc/m/web.yaml", "Node-A")
    assert edited["metadata"]["uid"] != m["uid"]  # an edit is a new pod
    ns = static_pod_from_manifest('{"metadata": {"name": "x", "namespace": "kube-system"}, "spec": {}}', "f", "n")
    assert ns["metadata"]["namespace"] == "kube-system" and ns["kind"] == "Pod"


@pytest.mark.parametrize("text", ["", "a: [", "kind: Service\nmetadata: {name: s}", "metadata: {}",
                                  "metadata: {name: a}\n---\nmetadata: {name: b}", "- 1"])
def test_bad_manifests(text):
    with pytest.raises(ManifestError):
        static_pod_from_manifest(text, "f", "n")


def test_read_manifests_skips_dot_files_and_reports_errors(tmp_path):
    (tmp_path / "web.yaml").write_text(MANIFEST)
    (tmp_path / ".web.yaml.swp").write_text("junk")
    (tmp_path / "bad.yaml").write_text("kind: Service")
    pods, errors = read_manifests(tmp_path, "n")
    assert [p["metadata"]["name"] for p in pods.values()] == ["web-n"]
    assert len(errors) == 1 and "bad.yaml" in errors[0]
    assert read_manifests(tmp_path / "missing", "n") == ({}, [])


def test_mirror_pod():
    p = static_pod_from_manifest(MANIFEST, "f", "n")
    m = mirror_pod(p, "n", "node-uid")
    assert "uid" not in m["metadata"] and is_mirror_pod(m) and not is_mirror_pod(p)
    assert m["metadata"]["annotations"][CONFIG_MIRROR] == p["metadata"]["uid"]
    assert m["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "node-uid",
                                                 "controller": True}]
    assert "uid" in p["metadata"]  # the static pod itself is untouched
