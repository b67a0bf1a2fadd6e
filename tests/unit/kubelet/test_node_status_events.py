"""The kubelet's node status writes and node events, against a double of the nodes API that
applies the real strategic merge patch: conditions merge by type (others' conditions stay),
lastTransitionTime moves only on a flip, and each flip, the first status and a changed boot
id are announced as upstream's kubelet announces them."""

from __future__ import annotations

import copy
import itertools
from types import SimpleNamespace

import pytest

from kybernetes.api.patch import apply_strategic_merge_patch
from kybernetes.api.patch.patchmeta import patch_schema_for
from kybernetes.kubelet import node_status
from kybernetes.kubelet.node_status import NodeStatusManager

NODE = "n1"


class FakeNodes:
    """GET and strategic-merge PATCH of one node's status, as the API server applies it."""

    def __init__(self):
        self.node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "uid": "u1"}, "spec": {},
                     "status": {}}
        self.patches: list[tuple[dict, str]] = []
        self.schema = patch_schema_for("", "v1", "Node")

    async def get(self, name):
        return copy.deepcopy(self.node)

    async def patch(self, name, body, type, subresource=None):
        assert subresource == "status"
        self.patches.append((copy.deepcopy(body), type))
        assert type == "strategic"
        self.node = apply_strategic_merge_patch(self.node, body, self.schema)
        return copy.deepcopy(self.node)


class FakeClient:
    def __init__(self):
        self.nodes = FakeNodes()

    def resource(self, group, version, plural, namespaced=False):
        return self.nodes if plural == "nodes" else None


class FakeCRI:
    def __init__(self):
        self.network_ready = True

    async def version(self):
        return SimpleNamespace(runtime_name="containerd", runtime_version="2.0")

    async def conditions(self):
        return {"RuntimeReady": True, "NetworkReady": self.network_ready}


class Recorder:
    """Double of kubelet.events.EventRecorder's node_event."""

    def __init__(self):
        self.events: list[tuple[str, str, str]] = []

    def node_event(self, etype, reason, message):
        self.events.append((etype, reason, message))

    def take(self):
        out, self.events = self.events, []
        return out


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """A second passes between two status builds, so each forced write has a new heartbeat."""
    ticks = itertools.count()

    def now():
        t = next(ticks)
        return f"2026-02-01T{t // 3600 % 24:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z"
    monkeypatch.setattr(node_status, "now", now)


def manager(tmp_path):
    client = FakeClient()
    m = NodeStatusManager(client, NODE, cri=FakeCRI(), data_dir=tmp_path, node_ip="10.0.0.5")
    m.events = Recorder()
    return client.nodes, m


def conds(nodes):
    return {c["type"]: c for c in nodes.node["status"]["conditions"]}


async def test_first_status_announces_each_condition(tmp_path):
    nodes, m = manager(tmp_path)
    await m.update_status(force=True)
    assert nodes.patches[-1][1] == "strategic"
    assert m.events.take() == [("Normal", r, f"Node {NODE} status is now: {r}") for r in (
        "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady")]
    assert conds(nodes)["Ready"]["status"] == "True"
    # nothing changed: no write, no event
    await m.update_status()
    assert len(nodes.patches) == 1 and m.events.take() == []
    # a heartbeat: the conditions by type, in the order the directive gives
    await m.update_status(force=True)
    body = nodes.patches[-1][0]["status"]
    assert body["$setElementOrder/conditions"] == [
        {"type": "MemoryPressure"}, {"type": "DiskPressure"}, {"type": "PIDPressure"}, {"type": "Ready"}]
    assert {c["type"] for c in body["conditions"]} == {"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}
    assert all(set(c) == {"type", "lastHeartbeatTime"} for c in body["conditions"])
    assert m.events.take() == []


async def test_conditions_of_others_survive_status_updates(tmp_path):
    nodes, m = manager(tmp_path)
    await m.update_status(force=True)
    m.events.take()
    # a network plugin and some other component add their own conditions
    other = [{"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated",
              "message": "routes created", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
              "lastTransitionTime": "2026-01-01T00:00:00Z"},
             {"type": "example.com/Healthy", "status": "True", "reason": "Checked", "message": "fine",
              "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    nodes.node["status"]["conditions"] = other[:1] + nodes.node["status"]["conditions"] + other[1:]
    nodes.node["status"]["capacity"]["example.com/dongle"] = "4"
    ready_since = conds(nodes)["Ready"]["lastTransitionTime"]
    mem_since = conds(nodes)["MemoryPressure"]["lastTransitionTime"]
    for _ in range(3):
        await m.update_status(force=True)
    body, _ = nodes.patches[-1]
    # the order directive names every condition, the others' included, in the node's order
    assert [c["type"] for c in body["status"]["$setElementOrder/conditions"]] == [
        "NetworkUnavailable", "MemoryPressure", "DiskPressure", "PIDPressure", "Ready", "example.com/Healthy"]
    assert not any(c["type"] in ("NetworkUnavailable", "example.com/Healthy") for c in body["status"]["conditions"])
    now = conds(nodes)
    assert now["NetworkUnavailable"] == other[0] and now["example.com/Healthy"] == other[1]
    assert now["Ready"]["lastTransitionTime"] == ready_since
    assert now["MemoryPressure"]["lastTransitionTime"] == mem_since
    assert nodes.node["status"]["capacity"]["example.com/dongle"] == "4"
    assert nodes.node["status"]["allocatable"]["example.com/dongle"] == "4"
    assert m.events.take() == []

    # a pressure flip: only that condition's transition time moves, one event
    m.pressure = lambda: {"DiskPressure"}
    await m.update_status()
    now = conds(nodes)
    assert now["DiskPressure"]["status"] == "True" and now["DiskPressure"]["reason"] == "KubeletHasDiskPressure"
    assert now["Ready"]["lastTransitionTime"] == ready_since
    assert now["example.com/Healthy"] == other[1]
    assert m.events.take() == [("Normal", "NodeHasDiskPressure", f"Node {NODE} status is now: NodeHasDiskPressure")]


async def test_ready_flips_and_controller_unknown(tmp_path):
    nodes, m = manager(tmp_path)
    await m.update_status(force=True)
    m.events.take()
    m.cri.network_ready = False
    await m.update_status()
    ready = conds(nodes)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "KubeletNotReady")
    assert m.events.take() == [("Normal", "NodeNotReady", f"Node {NODE} status is now: NodeNotReady")]
    m.cri.network_ready = True
    await m.update_status()
    assert m.events.take() == [("Normal", "NodeReady", f"Node {NODE} status is now: NodeReady")]
    # the node lifecycle controller marks every condition Unknown: all come back, announced
    for c in nodes.node["status"]["conditions"]:
        c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
    await m.update_status()
    assert {c["type"]: c["status"] for c in nodes.node["status"]["conditions"]} == {
        "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}
    assert [e[1] for e in m.events.take()] == [
        "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady"]


async def test_reboot_is_announced(tmp_path):
    nodes, m = manager(tmp_path)
    await m.update_status(force=True)
    m.events.take()
    boot = nodes.node["status"]["nodeInfo"]["bootID"]
    assert boot
    await m.update_status(force=True)
    assert m.events.take() == []
    nodes.node["status"]["nodeInfo"]["bootID"] = "00000000-0000-0000-0000-000000000000"
    await m.update_status()
    assert m.events.take() == [("Warning", "Rebooted", f"Node {NODE} has been rebooted, boot id: {boot}")]
    assert nodes.node["status"]["nodeInfo"]["bootID"] == boot


async def test_changed_addresses_replace_the_list(tmp_path):
    nodes, m = manager(tmp_path)
    await m.update_status(force=True)
    nodes.node["status"]["addresses"].insert(0, {"type": "InternalIP", "address": "10.9.9.9"})
    await m.update_status()
    body, _ = nodes.patches[-1]
    assert body["status"]["addresses"][-1] == {"$patch": "replace"}
    assert nodes.node["status"]["addresses"] == [{"type": "InternalIP", "address": "10.0.0.5"},
                                                 {"type": "Hostname", "address": NODE}]


async def test_qos_cgroup_setup_is_announced():
    from kybernetes.kubelet.kubelet import Kubelet

    class Workers:
        cgroup_root = "kubepods"
        error = None

        async def update_qos_cgroups(self):
            if self.error:
                raise self.error
    kl = Kubelet.__new__(Kubelet)  # only the parts _setup_qos_cgroups uses
    kl.workers, kl.events = Workers(), Recorder()
    await kl._setup_qos_cgroups()
    assert kl.events.take() == [("Normal", "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")]
    kl.workers.error = PermissionError(13, "Permission denied")
    await kl._setup_qos_cgroups()
    assert kl.events.take() == [("Warning", "FailedNodeAllocatableEnforcement",
                                 'Failed to update Node Allocatable Limits "kubepods": [Errno 13] Permission denied')]
