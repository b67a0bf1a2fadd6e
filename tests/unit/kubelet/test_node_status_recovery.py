"""The kubelet re-posts its node status when the API's copy no longer shows its
conditions (the node lifecycle controller set Ready=Unknown after missed heartbeats),
even if what it would write equals its own last write."""

from __future__ import annotations

import copy

from kybernetes.kubelet.node_status import NodeStatusManager

STATUS = {"capacity": {"cpu": "2"}, "conditions": [
    {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "ok",
     "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"},
    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
     "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}


class FakeNodes:
    def __init__(self):
        self.node = {"metadata": {"name": "n1", "uid": "u1"}, "status": {}}
        self.patches: list[dict] = []

    async def get(self, name):
        return copy.deepcopy(self.node)

    async def patch(self, name, body, type, subresource=None):
        self.patches.append(body)
        self.node["status"] = copy.deepcopy(body["status"])
        return copy.deepcopy(self.node)


class FakeClient:
    def __init__(self):
        self.nodes = FakeNodes()

    def resource(self, group, version, plural, namespaced=False):
        return self.nodes if plural == "nodes" else None


async def test_node_condition_changed_by_controller_is_rewritten(tmp_path):
    c = FakeClient()
    m = NodeStatusManager(c, "n1", cri=None, data_dir=tmp_path, node_ip="10.0.0.5")

    async def build(old=None):
        return copy.deepcopy(STATUS)
    m.build_status = build
    await m.update_status()
    await m.update_status()
    assert len(c.nodes.patches) == 1  # nothing changed: no write
    for cond in c.nodes.node["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
    await m.update_status()
    assert len(c.nodes.patches) == 2
    ready = next(x for x in c.nodes.node["status"]["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
