"""The node's pod CIDR: the kubelet waits for node IPAM to set `spec.podCIDR` and hands it
to whoever writes the CNI config (host-local ranges), as upstream's kubelet passes it to
the runtime through UpdateRuntimeConfig."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

log = logging.getLogger("kybernetes.kubelet.podcidr")


def node_pod_cidrs(node: dict[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


async def wait_pod_cidrs(client, node_name: str, timeout: float) -> Optional[list[str]]:
    """The node's podCIDRs once set (watching the node, not polling); None after `timeout`."""
    nodes = client.resource("", "v1", "nodes", namespaced=False)

    async def wait() -> list[str]:
        while True:
            lst = await nodes.list(field_selector=f"metadata.name={node_name}")
            for n in lst["items"]:
                if node_pod_cidrs(n):
                    return node_pod_cidrs(n)
            try:
                async with nodes.watch(resource_version=lst["metadata"]["resourceVersion"], name=node_name,
                                       timeout_seconds=max(1, int(timeout))) as w:
                    async for _typ, n in w:
                        if node_pod_cidrs(n):
                            return node_pod_cidrs(n)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a broken watch: list again
                log.debug("watching node %s: %s", node_name, e)
                await asyncio.sleep(0.5)
    try:
        return await asyncio.wait_for(wait(), timeout)
    except asyncio.TimeoutError:
        return None
