"""Node IPAM in a real `kyb server`: every node gets a podCIDR of the cluster CIDR given by
--cluster-cidr/--node-cidr-mask-size, never one another node holds (also after a server
restart), and a deleted node's subnet goes to a node that was waiting for one."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from fixtures.server import start_server
from kybernetes.client import Client

pytestmark = pytest.mark.slow

# two /30 node subnets only, so exhaustion and release are visible
FLAGS = ("--disable-scheduler", "--cluster-cidr", "10.99.0.0/29", "--node-cidr-mask-size", "30")


def node(name):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


async def cidr_of(nodes, name, timeout=20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        spec = (await nodes.get(name)).get("spec") or {}
        if spec.get("podCIDRs"):
            assert spec["podCIDR"] == spec["podCIDRs"][0]
            return spec["podCIDR"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"node {name} got no podCIDR in {timeout}s")


async def test_pod_cidrs_unique_across_restart_and_released(tmp_path):
    data = tmp_path / "srv"
    srv = start_server(data, extra=FLAGS)
    try:
        async with Client.from_kubeconfig(srv.kubeconfig) as c:
            nodes = c.resource("", "v1", "nodes", namespaced=False)
            await nodes.create(node("ipam-a"))
            await nodes.create(node("ipam-b"))
            a, b = await cidr_of(nodes, "ipam-a"), await cidr_of(nodes, "ipam-b")
            assert a != b
            assert {a, b} == {"10.99.0.0/30", "10.99.0.4/30"}
            assert ipaddress.ip_network(a).subnet_of(ipaddress.ip_network("10.99.0.0/29"))
        out = srv.kubectl("get", "node", "ipam-a", "-o", "jsonpath={.spec.podCIDR} {.spec.podCIDRs[0]}").stdout
        assert out == f"{a} {a}"
        # podCIDR is immutable once set
        p = srv.kubectl("patch", "node", "ipam-a", "--type=merge", "-p",
                        '{"spec":{"podCIDR":"10.99.0.4/30","podCIDRs":["10.99.0.4/30"]}}', check=False)
        assert p.returncode != 0 and "may not change podCIDR" in p.stderr
    finally:
        srv.stop()

    srv = start_server(data, extra=FLAGS)  # same datastore: the allocations live in the nodes
    try:
        async with Client.from_kubeconfig(srv.kubeconfig) as c:
            nodes = c.resource("", "v1", "nodes", namespaced=False)
            await nodes.create(node("ipam-c"))
            # the cluster CIDR is full: c waits (a restarted allocator must not hand out a or b again)
            with pytest.raises(AssertionError, match="got no podCIDR"):
                await cidr_of(nodes, "ipam-c", timeout=3.0)
            assert (await cidr_of(nodes, "ipam-a"), await cidr_of(nodes, "ipam-b")) == (a, b)
            await nodes.delete("ipam-a")
            assert await cidr_of(nodes, "ipam-c") == a  # a's subnet is released to c
            for n in ("ipam-b", "ipam-c"):
                await nodes.delete(n)
    finally:
        srv.stop()
