"""Node lifecycle, taint eviction and pod GC against a real server whose own controllers
are disabled: the controllers run here with short injected durations.  Nodes are
simulated: the test writes their Node objects and Leases itself (a fake kubelet)."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Callable

import pytest

from fixtures.server import start_server
from kybernetes.client import Client, NotFound
from kybernetes.controllers.base import InformerFactory
from kybernetes.controllers.nodelifecycle import NodeLifecycleController, TaintEvictionController
from kybernetes.controllers.podgc import PodGCController


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("kyb-nl"), extra=("--disable-controllers", "--disable-scheduler"))
    yield srv
    srv.stop()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def wait_until(fetch: Callable, pred: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await fetch()
        if pred(last):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s; last: {last}")


class FakeKubelet:
    """Plays a node's kubelet for the test: registers a Ready Node, renews its Lease and
    reports pods Running/Ready.  No containers."""

    def __init__(self, client: Client, name: str) -> None:
        self.client, self.name = client, name
        self.nodes = client.resource("", "v1", "nodes")
        self.leases = client.resource("coordination.k8s.io", "v1", "leases")
        self.pods = client.resource("", "v1", "pods")

    async def register(self) -> None:
        n = await self.nodes.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name}})
        n["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": _now()[:19] + "Z", "lastTransitionTime": _now()[:19] + "Z"}]}
        await self.nodes.update_status(n)
        await self.renew()

    async def renew(self) -> None:
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": _now()}
        try:
            await self.leases.patch(self.name, {"spec": spec}, "merge", namespace="kube-node-lease")
        except NotFound:
            await self.leases.create({"metadata": {"name": self.name}, "spec": spec}, namespace="kube-node-lease")

    async def run_pod(self, name: str, ns: str, ip: str) -> None:
        status = {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}
        await self.pods.patch(name, {"status": status}, "strategic", namespace=ns, subresource="status")

    async def remove(self) -> None:
        for h, ns in ((self.leases, "kube-node-lease"), (self.nodes, None)):
            try:
                await h.delete(self.name, ns)
            except NotFound:
                pass


def taint_keys(node) -> set:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


async def test_silent_node_tainted_pods_evicted_orphans_collected(bare_server):
    async with Client.from_kubeconfig(bare_server.kubeconfig) as client:
        ns = f"nl-{secrets.token_hex(3)}"
        nsapi = client.resource("", "v1", "namespaces")
        await nsapi.create({"metadata": {"name": ns}})
        pods = client.resource("", "v1", "pods")
        nodes = client.resource("", "v1", "nodes")
        kubelet = FakeKubelet(client, f"nl-node-{secrets.token_hex(3)}")
        informers = InformerFactory(client)
        ctls = [NodeLifecycleController(client, informers, grace_period=2.0, startup_grace_period=2.0, eviction_rate=100.0),
                # a clock 301 s ahead: the admission-added 300 s tolerations have run out
                TaintEvictionController(client, informers, clock=lambda: time.time() + 301),
                PodGCController(client, informers, quarantine=0.5)]
        informers.start()
        for c in ctls:
            await c.start(sync_timeout=30)
        try:
            await kubelet.register()

            def mkpod(name, tolerations):
                return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                        "spec": {"nodeName": kubelet.name, "tolerations": tolerations,
                                 "containers": [{"name": "c", "image": "busybox"}]}}

            await pods.create(mkpod("plain", []), ns)
            await pods.create(mkpod("forever", [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                                 "effect": "NoExecute"}]), ns)
            await kubelet.run_pod("plain", ns, "10.8.0.1")
            await kubelet.run_pod("forever", ns, "10.8.0.2")

            # the kubelet goes silent: Ready Unknown and the unreachable taints
            node = await wait_until(lambda: nodes.get(kubelet.name), lambda n: any(
                c["type"] == "Ready" and c["status"] == "Unknown" for c in n["status"]["conditions"])
                and {("node.kubernetes.io/unreachable", "NoExecute"),
                     ("node.kubernetes.io/unreachable", "NoSchedule")} <= taint_keys(n), timeout=20)
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            assert ready["reason"] == "NodeStatusUnknown"

            async def get_pod(name):
                try:
                    return await pods.get(name, ns)
                except NotFound:
                    return None

            await wait_until(lambda: get_pod("plain"), lambda p: p is None or p["metadata"].get("deletionTimestamp"))
            forever = await get_pod("forever")
            assert forever is not None and not forever["metadata"].get("deletionTimestamp")

            # the kubelet comes back: the taints go
            await kubelet.renew()
            n = await nodes.get(kubelet.name)
            for c in n["status"]["conditions"]:
                if c["type"] == "Ready":
                    c.update(status="True", reason="KubeletReady", lastHeartbeatTime=_now()[:19] + "Z")
            await nodes.update_status(n)
            await wait_until(lambda: nodes.get(kubelet.name), lambda n: not taint_keys(n) & {
                ("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/unreachable", "NoSchedule")},
                timeout=10)

            # the node is deleted: its pods are orphans and are collected
            await kubelet.remove()
            await wait_until(lambda: get_pod("forever"), lambda p: p is None, timeout=20)
            await wait_until(lambda: get_pod("plain"), lambda p: p is None, timeout=20)
        finally:
            for c in ctls:
                await c.stop()
            await informers.stop()
            await kubelet.remove()
            try:
                await nsapi.delete(ns)
            except NotFound:
                pass
