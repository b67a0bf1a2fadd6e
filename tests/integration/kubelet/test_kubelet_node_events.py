"""Node events and node status writes of a real kubelet (on the suite's containerd, acting
as its node identity) against a real `kyb server`: Starting, the condition events of the
first status, NodeAllocatableEnforced and Rebooted as core/v1 Events about the Node that
`kubectl describe node` lists, and a condition another client adds to the node surviving
the kubelet's status updates."""

from __future__ import annotations

import asyncio
import os

import pytest

from kl_helpers import wait_for
from kybernetes.auth import pki
from kybernetes.client import Client
from kybernetes.client.kubeconfig import KubeConfig, ssl_context
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-ev"
START_EVENTS = {"Starting": "Starting kubelet.",
                "NodeHasSufficientMemory": f"Node {NODE} status is now: NodeHasSufficientMemory",
                "NodeHasNoDiskPressure": f"Node {NODE} status is now: NodeHasNoDiskPressure",
                "NodeHasSufficientPID": f"Node {NODE} status is now: NodeHasSufficientPID",
                "NodeAllocatableEnforced": "Updated Node Allocatable limit across pods",
                "NodeReady": f"Node {NODE} status is now: NodeReady"}


async def node_events(client) -> dict[str, dict]:
    evs = await client.resource("", "v1", "events", namespaced=True).list("default")
    return {e["reason"]: e for e in evs["items"]
            if e["involvedObject"].get("kind") == "Node" and e["involvedObject"].get("name") == NODE}


async def test_node_events_and_foreign_conditions(env):
    srv, rt = env["srv"], env["rt"]
    ca = pki.load_ca(srv.data_dir)
    cert_pem, key_pem = pki.issue_client_cert(ca, pki.node_user(NODE), [pki.NODES_GROUP], 1)
    node_cfg = KubeConfig(server=srv.url, ca_pem=ca.cert_pem, cert_pem=cert_pem, key_pem=key_pem)
    async with Client.from_kubeconfig(srv.kubeconfig) as admin, Client(srv.url, ssl_context(node_cfg)) as as_node:
        kl = Kubelet(as_node, rt.endpoint, node_name=NODE, data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"], status_interval=0.5)
        await kl.start()
        try:
            nodes = admin.resource("", "v1", "nodes", namespaced=False)

            async def announced():
                evs = await node_events(admin)
                return evs if set(START_EVENTS) <= set(evs) else None
            evs = await wait_for(announced, 30)
            for reason, message in START_EVENTS.items():
                e = evs[reason]
                assert (e["type"], e["message"]) == ("Normal", message)
                assert e["metadata"]["namespace"] == "default"
                assert e["involvedObject"] == {"kind": "Node", "name": NODE, "uid": NODE}
                assert e["source"] == {"component": "kubelet", "host": NODE}
            assert "NodeNotReady" not in evs and "Rebooted" not in evs
            out = (await asyncio.to_thread(srv.kubectl, "describe", "node", NODE)).stdout
            events_part = out[out.index("Events:"):]
            for reason, message in START_EVENTS.items():
                assert reason in events_part and message in events_part, out

            # another client adds its own conditions; the kubelet's updates keep them
            n = await nodes.get(NODE)
            ready_since = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
            mine = [{"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated",
                     "message": "routes are in place", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                     "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "example.com/DongleAttached", "status": "True", "reason": "Attached",
                     "message": "dongle 7", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                     "lastTransitionTime": "2026-01-01T00:00:00Z"}]
            await nodes.patch(NODE, {"status": {"conditions": mine}}, "strategic", subresource="status")
            for _ in range(3):
                await kl.node.update_status(force=True)
            # and the periodic ones: wait for a heartbeat newer than the forced writes
            beat = next(c for c in (await nodes.get(NODE))["status"]["conditions"]
                        if c["type"] == "Ready")["lastHeartbeatTime"]

            async def beat_after():
                n = await nodes.get(NODE)
                r = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
                return n if r["lastHeartbeatTime"] > beat else None
            kl.node.report_period = 0  # every periodic sync writes (a heartbeat each second)
            n = await wait_for(beat_after, 30)
            by_type = {c["type"]: c for c in n["status"]["conditions"]}
            assert by_type["NetworkUnavailable"] == mine[0] and by_type["example.com/DongleAttached"] == mine[1]
            assert by_type["Ready"]["status"] == "True" and by_type["Ready"]["lastTransitionTime"] == ready_since
            assert {"MemoryPressure", "DiskPressure", "PIDPressure"} <= set(by_type)

            # a boot id other than this machine's: the next status announces a reboot
            boot = n["status"]["nodeInfo"]["bootID"]
            await nodes.patch(NODE, {"status": {"nodeInfo": {"bootID": "0" * 8 + "-0000-0000-0000-" + "0" * 12}}},
                              "strategic", subresource="status")

            async def rebooted():
                return (await node_events(admin)).get("Rebooted")
            e = await wait_for(rebooted, 30)
            assert (e["type"], e["message"]) == ("Warning", f"Node {NODE} has been rebooted, boot id: {boot}")
            assert (await nodes.get(NODE))["status"]["nodeInfo"]["bootID"] == boot
            assert "NodeNotReady" not in await node_events(admin)
        finally:
            await kl.stop()
            await admin.resource("", "v1", "nodes", namespaced=False).delete(NODE)
