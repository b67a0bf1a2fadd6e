"""The kubelet compares its pod status with the API's current one, not only with its own
last write: when the node lifecycle controller marked the pod Ready=False (NodeNotReady)
while the node was unreachable, the kubelet writes its view back; its own write coming
back through the watch, or a condition someone else owns, causes no write."""

from __future__ import annotations

import copy

import pytest

from kybernetes.kubelet import pod_status as ps
from kybernetes.kubelet.pod_workers import PodWorker

POD = {"metadata": {"name": "p", "namespace": "d", "uid": "u", "resourceVersion": "1"},
       "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
       "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}


def _drop_nulls(v):
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v


class FakePods:
    """pods/status as the API server does it: a merge patch applied to the stored pod
    (nulls removed), a new resourceVersion, the stored object returned."""

    def __init__(self, pod):
        self.stored = copy.deepcopy(pod)
        self.patches: list[dict] = []

    async def patch(self, name, body, type, namespace, subresource):
        assert (name, type, namespace, subresource) == ("p", "merge", "d", "status")
        self.patches.append(copy.deepcopy(body))
        st = dict(self.stored.get("status") or {})
        for k, v in body["status"].items():
            if v is None:
                st.pop(k, None)
            else:
                st[k] = _drop_nulls(copy.deepcopy(v))
        self.stored["status"] = st
        self.stored["metadata"]["resourceVersion"] = str(int(self.stored["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(self.stored)


class FakeWorkers:
    cri = None
    host_ip = "10.0.0.5"
    events = None

    def __init__(self, pod):
        self.pods = FakePods(pod)


@pytest.fixture
def worker(monkeypatch):
    async def running(self, spec_c, cur, kind="app"):
        return {"name": spec_c["name"], "image": "i", "imageID": "sha256:1", "restartCount": 0, "ready": True,
                "started": True, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, "lastState": {},
                "containerID": "containerd://abc"}
    monkeypatch.setattr(PodWorker, "container_status", running)
    w = PodWorker(FakeWorkers(POD), "u", copy.deepcopy(POD))
    w.wake.clear()
    return w


def _ready(pod):
    return next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")


async def _write(w):
    await w.write_status("sid", "10.42.0.7", {}, False, True)


async def test_status_changed_by_someone_else_is_rewritten(worker):
    pods = worker.w.pods
    await _write(worker)
    assert len(pods.patches) == 1 and _ready(pods.stored)["status"] == "True"

    # before the echo arrives the informer's pod is the old one: that proves nothing
    await _write(worker)
    assert len(pods.patches) == 1

    # our own write coming back: no wake, no write
    echo = copy.deepcopy(pods.stored)
    worker.update(echo)
    assert not worker.wake.is_set()
    await _write(worker)
    assert len(pods.patches) == 1

    # the node lifecycle controller marks the pod not ready after a missed heartbeat
    marked = copy.deepcopy(echo)
    _ready(marked).update(status="False", reason="NodeNotReady", lastTransitionTime="2026-01-01T00:01:00Z")
    marked["metadata"]["resourceVersion"] = "9"
    pods.stored = copy.deepcopy(marked)
    worker.update(marked)
    assert worker.wake.is_set()
    await _write(worker)
    assert len(pods.patches) == 2
    ready = _ready(pods.stored)
    assert ready["status"] == "True" and "reason" not in ready


async def test_foreign_condition_is_no_drift(worker):
    pods = worker.w.pods
    await _write(worker)
    echo = copy.deepcopy(pods.stored)
    worker.update(echo)
    gated = copy.deepcopy(echo)
    gated["status"]["conditions"].append({"type": "example.com/gate", "status": "True"})
    gated["metadata"]["resourceVersion"] = "9"
    worker.update(gated)
    assert not worker.wake.is_set()
    await _write(worker)
    assert len(pods.patches) == 1


def test_status_drifted():
    ours = {"phase": "Running", "podIP": None,
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}]}
    stored = {"phase": "Running", "qosClass": "BestEffort",
              "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}
    assert not ps.status_drifted(ours, stored, copy.deepcopy(stored))
    other = copy.deepcopy(stored)
    other["conditions"][1]["status"] = "False"  # not a condition the kubelet wrote here
    other["qosClass"] = "Burstable"              # nor a field
    assert not ps.status_drifted(ours, stored, other)
    notready = copy.deepcopy(stored)
    notready["conditions"][0].update(status="False", reason="NodeNotReady")
    assert ps.status_drifted(ours, stored, notready)
    assert ps.status_drifted(ours, stored, dict(stored, phase="Unknown"))
    assert ps.status_drifted(ours, stored, dict(stored, podIP="10.0.0.1"))
