"""node.k8s.io/v1 RuntimeClass end to end, with real kubectl and the official Python client:
the API verbs and printer columns, pods naming a missing or deleted class rejected, and
pods with a class scheduled (onto simulated nodes) with the class's overhead applied and
counted by the scheduler (the upstream RuntimeClass conformance tests)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from fixtures.simcluster import SimNodeGroup

RC = """\
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: {name}
  labels: {{suite: rtc}}
handler: {handler}
"""


def wait_until(fn, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s; last={last!r}")


def pod(name: str, rc: str | None, cpu: str = "100m", **spec: object) -> dict:
    s: dict = {"containers": [{"name": "c", "image": "registry.local/app:1", "resources": {"requests": {"cpu": cpu}}}],
               **spec}
    if rc is not None:
        s["runtimeClassName"] = rc
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": s}


def test_api_verbs_and_columns(kyb, api):
    node = client.NodeV1Api(api)
    kyb.kubectl("apply", "-f", "-", input=RC.format(name="rc-a", handler="runc") + "---\n"
                + RC.format(name="rc-b", handler="kata"))
    out = kyb.kubectl("get", "runtimeclasses").stdout.splitlines()
    assert out[0].split() == ["NAME", "HANDLER", "AGE"]
    rows = {line.split()[0]: line.split()[1] for line in out[1:]}
    assert rows == {"rc-a": "runc", "rc-b": "kata"}
    assert kyb.kubectl("get", "runtimeclass", "rc-a", "-o", "jsonpath={.handler}").stdout == "runc"

    # a watch sees the patch
    seen: list[tuple[str, dict]] = []

    def watcher() -> None:
        w = watch.Watch()
        for ev in w.stream(node.list_runtime_class, label_selector="suite=rtc", timeout_seconds=20):
            seen.append((ev["type"], ev["raw_object"]))
            if ev["type"] == "MODIFIED":
                w.stop()
    t = threading.Thread(target=watcher)
    t.start()
    wait_until(lambda: len(seen) >= 2)  # the two ADDED events of the existing classes
    kyb.kubectl("patch", "runtimeclass", "rc-a", "--type=merge", "-p",
                json.dumps({"overhead": {"podFixed": {"cpu": "250m"}}}))
    t.join(25)
    assert seen[-1][0] == "MODIFIED" and seen[-1][1]["overhead"] == {"podFixed": {"cpu": "250m"}}

    # update: the handler is immutable and required
    rc = node.read_runtime_class("rc-a")
    rc.handler = "other"
    with pytest.raises(ApiException) as e:
        node.replace_runtime_class("rc-a", rc)
    assert e.value.status == 422
    body = json.loads(e.value.body)
    assert body["message"] == ('RuntimeClass.node.k8s.io "rc-a" is invalid: handler: Invalid value: "other": '
                               "field is immutable")
    p = kyb.kubectl("apply", "-f", "-", input=RC.format(name="rc-bad", handler="Not_A_Label"), check=False)
    assert p.returncode != 0 and 'handler: Invalid value: "Not_A_Label"' in p.stderr
    rc = node.read_runtime_class("rc-b")
    rc.metadata.labels["touched"] = "yes"
    assert node.replace_runtime_class("rc-b", rc).metadata.labels["touched"] == "yes"

    # delete, deletecollection
    kyb.kubectl("delete", "runtimeclass", "rc-a")
    with pytest.raises(ApiException) as e:
        node.read_runtime_class("rc-a")
    assert e.value.status == 404
    node.delete_collection_runtime_class(label_selector="suite=rtc")
    assert node.list_runtime_class(label_selector="suite=rtc").items == []


def test_pod_naming_a_missing_or_deleted_class_is_rejected(kyb):
    p = kyb.kubectl("create", "-f", "-", input=json.dumps(pod("orphan", "missing")), check=False)
    assert p.returncode != 0
    assert 'pods "orphan" is forbidden: pod rejected: RuntimeClass "missing" not found' in p.stderr
    kyb.kubectl("apply", "-f", "-", input=RC.format(name="short-lived", handler="runc"))
    kyb.kubectl("delete", "runtimeclass", "short-lived")
    p = kyb.kubectl("create", "-f", "-", input=json.dumps(pod("late", "short-lived")), check=False)
    assert p.returncode != 0
    assert 'pod rejected: RuntimeClass "short-lived" not found' in p.stderr


@pytest.fixture(scope="module")
def sim_nodes(kyb, tmp_path_factory):
    g = SimNodeGroup(kyb.kubeconfig, "rtc-node-", 1, "sandbox=yes", log_dir=tmp_path_factory.mktemp("sim"))
    yield g
    g.stop()


def test_pods_scheduled_with_overhead(kyb, api, sim_nodes):
    core = client.CoreV1Api(api)
    node = client.NodeV1Api(api)
    node.create_runtime_class({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                               "metadata": {"name": "with-overhead"}, "handler": "runc",
                               "overhead": {"podFixed": {"cpu": "1", "memory": "100Mi"}},
                               "scheduling": {"nodeSelector": {"sandbox": "yes"}}})
    node.create_runtime_class({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                               "metadata": {"name": "plain"}, "handler": "runc"})
    ns = "default"
    try:
        core.create_namespaced_pod(ns, pod("oh", "with-overhead"))
        core.create_namespaced_pod(ns, pod("no-oh", "plain"))
        for name in ("oh", "no-oh"):
            bound = wait_until(lambda: core.read_namespaced_pod(name, ns).spec.node_name)
            assert bound == sim_nodes.names[0]
        oh = core.read_namespaced_pod("oh", ns)
        assert oh.spec.overhead == {"cpu": "1", "memory": "100Mi"}
        assert oh.spec.node_selector == {"sandbox": "yes"}
        assert core.read_namespaced_pod("no-oh", ns).spec.overhead is None

        # the node has 4 CPUs, 1.2 are requested: 2.5 more fit, but not with 1 CPU of overhead
        core.create_namespaced_pod(ns, pod("too-big", "with-overhead", cpu="2500m"))

        def failed_scheduling():
            evs = core.list_namespaced_event(ns, field_selector="involvedObject.name=too-big").items
            return [e for e in evs if e.reason == "FailedScheduling"]
        ev = wait_until(failed_scheduling)[0]
        assert "Insufficient cpu" in ev.message
        assert core.read_namespaced_pod("too-big", ns).spec.node_name is None
        # a pod may not bring its own overhead
        with pytest.raises(ApiException) as e:
            core.create_namespaced_pod(ns, pod("own", None, overhead={"cpu": "1"}))
        assert e.value.status == 403
        assert "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead" in e.value.body
    finally:
        for name in ("oh", "no-oh", "too-big"):
            try:
                core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
            except ApiException:
                pass
        for name in ("with-overhead", "plain"):
            node.delete_runtime_class(name)
