"""Stats from CRI on containerd: a pod that burns CPU and holds memory shows up in the
Summary API and /metrics/resource with its own usage, next to node totals."""

from __future__ import annotations

import os

import pytest

from fixtures.images import BUSYBOX_REF
from kybernetes.client import Client
from kybernetes.kubelet import stats
from kybernetes.kubelet.kubelet import Kubelet
from kl_helpers import wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]


async def test_summary_and_resource_metrics(env):
    srv, rt = env["srv"], env["rt"]
    async with Client.from_kubeconfig(srv.kubeconfig) as c:
        kl = Kubelet(c, rt.endpoint, node_name="node-st", data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"])
        await kl.start()
        pods = c.resource("", "v1", "pods", namespaced=True)
        try:
            # a busy loop capped at 0.2 CPU, and ~16 MiB held in a tmpfs-less shell variable
            script = ("trap 'exit 0' TERM; echo logline; x=$(head -c 16777216 /dev/zero | tr '\\0' a); "
                      "while :; do :; done")
            await pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burner"},
                               "spec": {"nodeName": "node-st", "terminationGracePeriodSeconds": 2,
                                        "containers": [{"name": "burn", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                                        "command": ["sh", "-c", script],
                                                        "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}}}]}},
                              "default")
            uid = (await pods.get("burner", "default"))["metadata"]["uid"]

            async def busy():
                s = await stats.summary()  # the kubelet registered its provider
                pod = next((p for p in s["pods"] if p["podRef"]["uid"] == uid), None)
                if not pod or not pod["containers"]:
                    return None
                ctr = pod["containers"][0]
                if (ctr.get("cpu") or {}).get("usageNanoCores", 0) > 50_000_000 and \
                        (ctr.get("memory") or {}).get("workingSetBytes", 0) > 16 << 20:
                    return s, pod, ctr
                return None
            s, pod, ctr = await wait_for(busy, 60, interval=0.5)
            assert pod["podRef"] == {"name": "burner", "namespace": "default", "uid": uid}
            assert ctr["name"] == "burn"
            # the CFS quota holds it near 0.2 cores (generous bounds: the machine is shared)
            assert ctr["cpu"]["usageNanoCores"] < 400_000_000
            assert ctr["cpu"]["usageCoreNanoSeconds"] > 0
            assert ctr["memory"]["usageBytes"] >= ctr["memory"]["workingSetBytes"]
            assert ctr["logs"]["usedBytes"] > 0
            assert pod["cpu"]["usageCoreNanoSeconds"] >= ctr["cpu"]["usageCoreNanoSeconds"] * 0.9
            assert pod["memory"]["workingSetBytes"] >= ctr["memory"]["workingSetBytes"]
            net = pod["network"]
            assert net["name"] == "eth0" and net["txBytes"] >= 0 and [i["name"] for i in net["interfaces"]] == ["eth0"]
            assert pod["process_stats"]["process_count"] >= 1
            node = s["node"]
            assert node["nodeName"] == "node-st"
            assert node["cpu"]["usageCoreNanoSeconds"] > pod["cpu"]["usageCoreNanoSeconds"]
            assert node["memory"]["workingSetBytes"] > pod["memory"]["workingSetBytes"]
            assert node["fs"]["capacityBytes"] > node["fs"]["availableBytes"] > 0
            assert node["runtime"]["imageFs"]["capacityBytes"] > 0  # containerd counts usedBytes lazily

            text = await stats.resource_metrics()
            assert 'container_cpu_usage_seconds_total{container="burn",namespace="default",pod="burner"} ' in text
            assert 'pod_memory_working_set_bytes{namespace="default",pod="burner"} ' in text
            assert "\nnode_cpu_usage_seconds_total " in text
            assert text.endswith("resource_scrape_error 0\n")

            await pods.delete("burner", "default")

            async def gone():
                return not (await pods.list("default"))["items"] and not (env["data_dir"] / "pods" / uid).exists()
            await wait_for(gone)
            s = await stats.summary()
            assert all(p["podRef"]["uid"] != uid for p in s["pods"])
        finally:
            await kl.stop()
            await c.resource("", "v1", "nodes", namespaced=False).delete("node-st")
