"""Pod printer cells, defaults and validation, against upstream's behaviour."""

from __future__ import annotations

from registry_helpers import ago

from kybernetes.registry.core.pods import PodStrategy, pod_summary

S = PodStrategy()


def pod(name: str = "web", **status: object) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": ago(3600)},
        "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}],
                 "nodeName": "node-1"},
        "status": dict(status),
    }


def running(name: str, restarts: int = 0, finished: str | None = None) -> dict:
    cs = {"name": name, "ready": True, "restartCount": restarts, "state": {"running": {"startedAt": ago(60)}}}
    if finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": finished}}
    return cs


def test_columns_match_upstream() -> None:
    assert [c.name for c in S.columns] == [
        "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
    assert [c.priority for c in S.columns] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert S.columns[0].format == "name"


def test_running_pod_with_restarts() -> None:
    p = pod(phase="Running", podIPs=[{"ip": "10.42.0.7"}],
            containerStatuses=[running("a", 3, ago(300)), running("b")],
            conditions=[{"type": "Ready", "status": "True"}])
    assert S.row(p) == ["web", "2/2", "Running", "3 (5m ago)", "60m", "10.42.0.7", "node-1", "<none>", "<none>"]


def test_pending_pod() -> None:
    p = pod(phase="Pending")
    p["spec"].pop("nodeName")
    assert S.row(p)[:5] == ["web", "0/2", "Pending", "0", "60m"]
    assert S.row(p)[5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_container_creating_and_crashloop() -> None:
    waiting = {"name": "a", "ready": False, "restartCount": 0,
               "state": {"waiting": {"reason": "ContainerCreating"}}}
    p = pod(phase="Pending", containerStatuses=[waiting, dict(waiting, name="b")])
    assert pod_summary(p).status == "ContainerCreating"
    crash = {"name": "a", "ready": False, "restartCount": 5,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}}
    p = pod(phase="Running", containerStatuses=[crash, running("b")])
    assert pod_summary(p) == ("1/2", "CrashLoopBackOff", "5 (30s ago)")


def test_completed_pod() -> None:
    done = {"name": "a", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    p = pod(phase="Succeeded", containerStatuses=[done, dict(done, name="b")])
    assert pod_summary(p) == ("0/2", "Completed", "0")


def test_terminating_pod() -> None:
    p = pod(phase="Running", containerStatuses=[running("a"), running("b")])
    p["metadata"]["deletionTimestamp"] = ago(5)
    assert pod_summary(p).status == "Terminating"
    p["status"]["reason"] = "NodeLost"
    assert pod_summary(p).status == "Unknown"


def test_init_containers() -> None:
    p = pod(phase="Pending", initContainerStatuses=[
        {"name": "init", "ready": False, "restartCount": 0, "state": {"running": {}}}])
    p["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    assert pod_summary(p).status == "Init:0/1"
    p["status"]["initContainerStatuses"][0]["state"] = {"waiting": {"reason": "ImagePullBackOff"}}
    assert pod_summary(p).status == "Init:ImagePullBackOff"
    p["status"]["initContainerStatuses"][0]["state"] = {"terminated": {"exitCode": 2}}
    assert pod_summary(p).status == "Init:ExitCode:2"


def test_sidecar_counts_towards_ready() -> None:
    p = pod(phase="Running", conditions=[{"type": "Initialized", "status": "True"}],
            initContainerStatuses=[{"name": "proxy", "ready": True, "started": True, "restartCount": 1,
                                    "state": {"running": {}}}],
            containerStatuses=[running("a"), running("b")])
    p["spec"]["initContainers"] = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    assert pod_summary(p).ready == "3/3"
    assert pod_summary(p).restarts == "1"


def test_scheduling_gated_and_readiness_gates() -> None:
    p = pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
                                         {"type": "example.com/ok", "status": "True"}])
    p["spec"]["readinessGates"] = [{"conditionType": "example.com/ok"}, {"conditionType": "other"}]
    assert S.row(p)[2] == "SchedulingGated"
    assert S.row(p)[8] == "1/2"


def test_defaults_and_create() -> None:
    p = {"metadata": {"name": "x"}, "spec": {"containers": [
        {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}],
         "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        {"name": "b", "image": "busybox:1.36"}]}}
    S.default(p)
    S.prepare_for_create(p)
    spec = p["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30 and spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {} and spec["enableServiceLinks"] is True
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    a, b = spec["containers"]
    assert a["imagePullPolicy"] == "Always" and b["imagePullPolicy"] == "IfNotPresent"
    assert a["terminationMessagePath"] == "/dev/termination-log" and a["terminationMessagePolicy"] == "File"
    assert a["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert a["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"} and b["resources"] == {}
    assert p["status"] == {"phase": "Pending", "qosClass": "Burstable"}


def test_validation_causes() -> None:
    p = {"metadata": {"name": "x"}, "spec": {"restartPolicy": "Always", "containers": []}}
    assert [(c.field, c.reason) for c in S.validate(p)] == [("spec.containers", "FieldValueRequired")]
    p["spec"]["containers"] = [{"name": "Web", "image": ""}, {"name": "Web", "image": "x",
                                                             "ports": [{"containerPort": 70000, "protocol": "TCP"}]}]
    got = {(c.field, c.reason) for c in S.validate(p)}
    assert ("spec.containers[0].name", "FieldValueInvalid") in got
    assert ("spec.containers[0].image", "FieldValueRequired") in got
    assert ("spec.containers[1].name", "FieldValueDuplicate") in got
    assert ("spec.containers[1].ports[0].containerPort", "FieldValueInvalid") in got
    msg = next(c.message for c in S.validate(p) if c.field == "spec.containers[1].ports[0].containerPort")
    assert msg == "Invalid value: 70000: must be between 1 and 65535, inclusive"


def test_update_may_only_change_images() -> None:
    old = {"metadata": {"name": "x"}, "spec": {"restartPolicy": "Always", "containers": [
        {"name": "a", "image": "nginx:1"}]}}
    new = {"metadata": {"name": "x"}, "spec": {"restartPolicy": "Always", "containers": [
        {"name": "a", "image": "nginx:2"}]}}
    assert S.validate_update(new, old) == []
    new["spec"]["containers"][0]["command"] = ["sh"]
    (cause,) = S.validate_update(new, old)
    assert cause.field == "spec" and cause.reason == "FieldValueForbidden"
    assert cause.message.startswith("Forbidden: pod updates may not change fields other than")


def test_field_selectors() -> None:
    p = pod(phase="Running", podIPs=[{"ip": "10.0.0.1"}])
    v = S.field_values(p)
    assert v["spec.nodeName"] == "node-1" and v["status.phase"] == "Running"
    assert v["status.podIP"] == "10.0.0.1" and v["spec.hostNetwork"] == "false"
    assert v["metadata.namespace"] == "default"
