"""kubectl apply (client-side and --server-side) across a sequence of edits, and kubectl diff."""

from __future__ import annotations

import json

import yaml

BASE = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "app", "namespace": "default", "labels": {"tier": "web"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "app"}},
        "template": {
            "metadata": {"labels": {"app": "app"}},
            "spec": {
                "containers": [{
                    "name": "c",
                    "image": "busybox:1",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }],
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        },
    },
}


def get(k, name="app"):
    return json.loads(k.kubectl("get", "deploy", name, "-o", "json", "--show-managed-fields").stdout)


def container(d):
    return d["spec"]["template"]["spec"]["containers"][0]


def apply(k, doc, *extra):
    return k.kubectl("apply", *extra, "-f", "-", input=yaml.safe_dump(doc))


def test_client_side_apply_across_edits(kyb):
    doc = json.loads(json.dumps(BASE))
    apply(kyb, doc)
    # add an env var and a port, change replicas, add a label
    c = doc["spec"]["template"]["spec"]["containers"][0]
    c["env"].append({"name": "C", "value": "3"})
    c["ports"].append({"containerPort": 443})
    doc["spec"]["replicas"] = 3
    doc["metadata"]["labels"]["track"] = "stable"
    apply(kyb, doc)
    d = get(kyb)
    assert [e["name"] for e in container(d)["env"]] == ["A", "B", "C"]
    assert sorted(p["containerPort"] for p in container(d)["ports"]) == [80, 443]
    assert d["spec"]["replicas"] == 3 and d["metadata"]["labels"]["track"] == "stable"
    # remove an env var, a port, the volume (and its mount) and a label
    c["env"] = [e for e in c["env"] if e["name"] != "B"]
    c["ports"] = [{"containerPort": 443}]
    del c["volumeMounts"]
    del doc["spec"]["template"]["spec"]["volumes"]
    del doc["metadata"]["labels"]["track"]
    apply(kyb, doc)
    d = get(kyb)
    assert [e["name"] for e in container(d)["env"]] == ["A", "C"]
    assert [p["containerPort"] for p in container(d)["ports"]] == [443]
    assert "volumes" not in d["spec"]["template"]["spec"] and "volumeMounts" not in container(d)
    assert "track" not in d["metadata"]["labels"]
    # removing a field entirely from the manifest removes it from the object
    del doc["spec"]["replicas"]
    apply(kyb, doc)
    assert get(kyb)["spec"]["replicas"] == 1  # back to the default
    # a field someone else set and the manifest never mentioned survives re-apply
    kyb.kubectl("annotate", "deploy", "app", "owner=ops")
    apply(kyb, doc)
    assert get(kyb)["metadata"]["annotations"]["owner"] == "ops"


def test_diff_shows_changes_without_writing(kyb):
    doc = json.loads(json.dumps(BASE))
    doc["metadata"]["name"] = "diffed"
    apply(kyb, doc)
    before = get(kyb, "diffed")
    doc["spec"]["replicas"] = 5
    p = kyb.kubectl("diff", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert p.returncode == 1, p.stderr  # 1 = differences found
    assert "-  replicas: 1" in p.stdout and "+  replicas: 5" in p.stdout
    after = get(kyb, "diffed")
    # the deployment controller may still be writing status, so the resourceVersion can move;
    # the spec (and with it the generation) must not
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"] and after["spec"]["replicas"] == 1


def test_server_side_apply_ownership_and_conflicts(kyb):
    doc = json.loads(json.dumps(BASE))
    doc["metadata"]["name"] = "ssa"
    doc["spec"]["replicas"] = 2
    apply(kyb, doc, "--server-side")
    d = get(kyb, "ssa")
    entries = {(m["manager"], m["operation"]) for m in d["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in entries
    # another manager changes replicas: re-applying a different value conflicts
    kyb.kubectl("patch", "deploy", "ssa", "--field-manager=autoscaler", "-p", '{"spec":{"replicas":4}}')
    doc["spec"]["replicas"] = 3
    p = kyb.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert p.returncode != 0
    assert 'conflict with "autoscaler"' in p.stderr and ".spec.replicas" in p.stderr
    assert get(kyb, "ssa")["spec"]["replicas"] == 4  # nothing written
    # --force-conflicts takes ownership
    apply(kyb, doc, "--server-side", "--force-conflicts")
    d = get(kyb, "ssa")
    assert d["spec"]["replicas"] == 3
    owners = [m for m in d["metadata"]["managedFields"] if m["manager"] == "autoscaler"]
    assert all("f:replicas" not in json.dumps(m.get("fieldsV1", {})) for m in owners)
    # a field dropped from the applied config is removed when nobody else owns it
    del doc["metadata"]["labels"]
    apply(kyb, doc, "--server-side")
    assert "tier" not in (get(kyb, "ssa")["metadata"].get("labels") or {})
