"""A Service gets Endpoints and an EndpointSlice listing its pods: ready pods as ready
addresses, unready ones as notReadyAddresses / ready=false, named ports resolved.  Pods
are bound to a Node the test registers and made Running by a fake kubelet (a status
patch from the test); no containers run."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Callable

from kybernetes.client import NotFound

Obj = dict[str, Any]


async def fake_kubelet_run(pods, name: str, ns: str, ip: str, *, ready: bool) -> None:
    """What a kubelet would report for a started pod (a simulated one: only status)."""
    st = "True" if ready else "False"
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
              "conditions": [{"type": "Ready", "status": st}, {"type": "ContainersReady", "status": st},
                             {"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"}]}
    await pods.patch(name, {"status": status}, "strategic", namespace=ns, subresource="status")


async def wait_until(fetch: Callable, pred: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    """Poll-free enough for a test: re-read on a short cadence until pred holds or the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await fetch()
        if pred(last):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s; last: {last}")


def pod(name: str, node: str, labels: dict) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox",
                                                        "ports": [{"name": "http", "containerPort": 8080}]}]}}


async def test_service_endpoints_and_slices(client, namespace):
    nodes = client.resource("", "v1", "nodes")
    pods = client.resource("", "v1", "pods")
    svcs = client.resource("", "v1", "services")
    eps = client.resource("", "v1", "endpoints")
    slices = client.resource("discovery.k8s.io", "v1", "endpointslices")
    node = f"ep-node-{secrets.token_hex(3)}"
    await nodes.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
    try:
        labels = {"app": "web"}
        await pods.create(pod("ready-1", node, labels), namespace)
        await pods.create(pod("unready-1", node, labels), namespace)
        await pods.create(pod("other", node, {"app": "other"}), namespace)
        await fake_kubelet_run(pods, "ready-1", namespace, "10.9.0.1", ready=True)
        await fake_kubelet_run(pods, "unready-1", namespace, "10.9.0.2", ready=False)
        await fake_kubelet_run(pods, "other", namespace, "10.9.0.3", ready=True)
        await svcs.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                           "spec": {"selector": labels, "ports": [
                               {"name": "web", "port": 80, "targetPort": "http"},
                               {"name": "metrics", "port": 9090, "targetPort": 9100}]}}, namespace)

        async def get_ep():
            try:
                return await eps.get("web", namespace)
            except NotFound:
                return None

        def ep_ok(ep):
            if not ep or not ep.get("subsets"):
                return False
            s = ep["subsets"][0]
            return [a["ip"] for a in s.get("addresses") or []] == ["10.9.0.1"] and \
                [a["ip"] for a in s.get("notReadyAddresses") or []] == ["10.9.0.2"]

        ep = await wait_until(get_ep, ep_ok)
        s = ep["subsets"][0]
        assert sorted((p["name"], p["port"]) for p in s["ports"]) == [("metrics", 9100), ("web", 8080)]
        addr = s["addresses"][0]
        assert addr["nodeName"] == node
        assert addr["targetRef"]["kind"] == "Pod" and addr["targetRef"]["name"] == "ready-1"

        async def get_slices():
            return (await slices.list(namespace, label_selector="kubernetes.io/service-name=web"))["items"]

        def slices_ok(items):
            if len(items) != 1:
                return False
            conds = {e["targetRef"]["name"]: e["conditions"] for e in items[0].get("endpoints") or []}
            return conds.get("ready-1", {}).get("ready") is True and conds.get("unready-1", {}).get("ready") is False

        items = await wait_until(get_slices, slices_ok)
        sl = items[0]
        assert sl["metadata"]["name"].startswith("web-")
        assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        assert sl["addressType"] == "IPv4"
        assert sl["metadata"]["ownerReferences"][0]["kind"] == "Service"
        assert sorted((p["name"], p["port"]) for p in sl["ports"]) == [("metrics", 9100), ("web", 8080)]
        by = {e["targetRef"]["name"]: e for e in sl["endpoints"]}
        assert by["ready-1"]["addresses"] == ["10.9.0.1"] and by["ready-1"]["nodeName"] == node
        assert by["ready-1"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
        assert "other" not in by

        # the unready pod becomes ready: both objects follow
        await fake_kubelet_run(pods, "unready-1", namespace, "10.9.0.2", ready=True)
        await wait_until(get_ep, lambda ep: ep and sorted(a["ip"] for a in ep["subsets"][0].get("addresses") or [])
                         == ["10.9.0.1", "10.9.0.2"] and not ep["subsets"][0].get("notReadyAddresses"))
        await wait_until(get_slices, lambda items: len(items) == 1 and all(
            e["conditions"]["ready"] for e in items[0].get("endpoints") or []) and len(items[0]["endpoints"]) == 2)

        # the default/kubernetes endpoints stay the API server's
        try:
            k = await eps.get("kubernetes", "default")
        except NotFound:
            k = {}
        assert all("targetRef" not in a for s in k.get("subsets") or [] for a in s.get("addresses") or [])

        # deleting the service removes its endpoints
        await svcs.delete("web", namespace)
        await wait_until(get_ep, lambda ep: ep is None)
        await wait_until(get_slices, lambda items: items == [])
    finally:
        for name in ("ready-1", "unready-1", "other"):
            try:
                await pods.delete(name, namespace, grace_period_seconds=0)
            except NotFound:
                pass
        await nodes.delete(node)
