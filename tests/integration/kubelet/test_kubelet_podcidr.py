"""The kubelet waits for node IPAM (the server's controller manager) to give its node a
podCIDR and writes the CNI config with that range, so pods get IPs from it."""

from __future__ import annotations

import ipaddress
import os

import pytest

from fixtures.images import BUSYBOX_REF
from kybernetes.client import Client
from kybernetes.kubelet.kubelet import Kubelet
from kybernetes.kubelet.runtime_netns import bridge_conflist, write_conflist
from kl_helpers import wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]


async def test_pods_get_ips_from_the_node_pod_cidr(env):
    srv, rt = env["srv"], env["rt"]
    seen = []

    async def write_cni(cidrs):
        seen.append(cidrs)
        # inside the test netns (no uplink): the bridge lives there
        write_conflist(rt.cni_conf_dir, bridge_conflist("kyb-kl", "kybkl0", cidrs[0],
                                                        ipam_dir=rt.data_dir / "cni" / "ipam"))

    async with Client.from_kubeconfig(srv.kubeconfig) as c:
        kl = Kubelet(c, rt.endpoint, node_name="node-cidr", data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"], on_pod_cidr=write_cni)
        await kl.start()
        pods = c.resource("", "v1", "pods", namespaced=True)
        try:
            node = await c.resource("", "v1", "nodes", namespaced=False).get("node-cidr")
            cidr = node["spec"]["podCIDR"]
            assert seen == [[cidr]] and kl.pod_cidrs == [cidr]
            assert ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network("10.42.0.0/16"))
            assert ipaddress.ip_network(cidr).prefixlen == 24
            await pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "in-cidr"},
                               "spec": {"nodeName": "node-cidr", "terminationGracePeriodSeconds": 2,
                                        "containers": [{"name": "main", "image": BUSYBOX_REF,
                                                        "imagePullPolicy": "Never",
                                                        "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]}}, "default")

            async def pod_ip():
                return ((await pods.get("in-cidr", "default")).get("status") or {}).get("podIP")
            ip = await wait_for(pod_ip)
            uid = (await pods.get("in-cidr", "default"))["metadata"]["uid"]
            assert ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
            await pods.delete("in-cidr", "default")

            async def gone():
                return not (await pods.list("default"))["items"] and not (env["data_dir"] / "pods" / uid).exists()
            await wait_for(gone)
        finally:
            await kl.stop()
            await c.resource("", "v1", "nodes", namespaced=False).delete("node-cidr")
