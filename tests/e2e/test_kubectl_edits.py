"""The everyday field-editing commands of kubectl: label, annotate, scale, set image/env,
patch of each type, rollout pause/resume, and dry runs."""

from __future__ import annotations

import json


def dep(k, name="ed"):
    return json.loads(k.kubectl("get", "deploy", name, "-o", "json").stdout)


def test_field_editing_commands(kyb):
    k = kyb
    k.kubectl("create", "deployment", "ed", "--image=busybox:1", "--replicas=1")
    k.kubectl("label", "deploy", "ed", "team=a")
    k.kubectl("annotate", "deploy", "ed", "note=hello")
    d = dep(k)
    assert d["metadata"]["labels"]["team"] == "a" and d["metadata"]["annotations"]["note"] == "hello"
    k.kubectl("label", "deploy", "ed", "team-")
    assert "team" not in dep(k)["metadata"]["labels"]
    k.kubectl("scale", "deploy", "ed", "--replicas=4")
    assert dep(k)["spec"]["replicas"] == 4
    k.kubectl("set", "image", "deploy/ed", "busybox=busybox:2")
    assert dep(k)["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"
    k.kubectl("set", "env", "deploy/ed", "A=1", "B=2")
    k.kubectl("set", "env", "deploy/ed", "A-")
    env = dep(k)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "B", "value": "2"}]
    k.kubectl("patch", "deploy", "ed", "--type=strategic", "-p",
              '{"spec":{"template":{"spec":{"containers":[{"name":"busybox","args":["sleep","1"]}]}}}}')
    c = dep(k)["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["sleep", "1"] and c["image"] == "busybox:2"  # merged by name
    k.kubectl("patch", "deploy", "ed", "--type=merge", "-p", '{"spec":{"minReadySeconds":5}}')
    assert dep(k)["spec"]["minReadySeconds"] == 5
    k.kubectl("patch", "deploy", "ed", "--type=json", "-p",
              '[{"op":"replace","path":"/spec/minReadySeconds","value":7},'
              '{"op":"test","path":"/spec/replicas","value":4}]')
    assert dep(k)["spec"]["minReadySeconds"] == 7
    bad = k.kubectl("patch", "deploy", "ed", "--type=json", "-p",
                    '[{"op":"test","path":"/spec/replicas","value":99},'
                    '{"op":"replace","path":"/spec/minReadySeconds","value":9}]', check=False)
    assert bad.returncode != 0
    assert dep(k)["spec"]["minReadySeconds"] == 7  # a failed test op writes nothing
    k.kubectl("rollout", "pause", "deploy/ed")
    assert dep(k)["spec"]["paused"] is True
    k.kubectl("rollout", "resume", "deploy/ed")
    assert not dep(k)["spec"].get("paused")


def test_server_dry_run_writes_nothing(kyb):
    k = kyb
    out = k.kubectl("create", "configmap", "dry", "--from-literal=a=b", "--dry-run=server", "-o", "json").stdout
    assert json.loads(out)["metadata"]["name"] == "dry"
    assert k.kubectl("get", "cm", "dry", check=False).returncode != 0
    k.kubectl("create", "configmap", "wet", "--from-literal=a=b")
    before = json.loads(k.kubectl("get", "cm", "wet", "-o", "json").stdout)
    k.kubectl("label", "cm", "wet", "x=y", "--dry-run=server")
    k.kubectl("delete", "cm", "wet", "--dry-run=server")
    after = json.loads(k.kubectl("get", "cm", "wet", "-o", "json").stdout)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "x" not in (after["metadata"].get("labels") or {})
