"""The kubelet against a real `kyb server`, with containerd in a test-created network
namespace that has no uplink (network safety rule), acting as its node identity:
node registration, a running busybox
pod with an IP, a failing pod, deletion through kubectl."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from fixtures.images import BUSYBOX_REF
from kybernetes.auth import pki
from kybernetes.client import Client, NotFound
from kybernetes.client.kubeconfig import KubeConfig, ssl_context
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.kubelet import Kubelet
from kl_helpers import wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]


def pod(name, script, policy="Always", node="node-a"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "restartPolicy": policy, "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "main", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", script],
                                     "env": [{"name": "WHO", "value": "kyb"}, {"name": "MSG", "value": "hi $(WHO)"}],
                                     "resources": {"limits": {"memory": "64Mi", "cpu": "200m"}}}]}}


async def test_kubelet_runs_pods(env):
    srv, rt = env["srv"], env["rt"]
    # the kubelet runs as the node (system:node:node-a in system:nodes), so the Node
    # authorizer and NodeRestriction govern every call it makes; the test reads as admin
    ca = pki.load_ca(srv.data_dir)
    cert_pem, key_pem = pki.issue_client_cert(ca, pki.node_user("node-a"), [pki.NODES_GROUP], 1)
    node_cfg = KubeConfig(server=srv.url, ca_pem=ca.cert_pem, cert_pem=cert_pem, key_pem=key_pem)
    async with Client.from_kubeconfig(srv.kubeconfig) as c, \
            Client(srv.url, ssl_context(node_cfg)) as node_client:
        kl = Kubelet(node_client, rt.endpoint, node_name="node-a", data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"])
        await kl.start()
        try:
            pods = c.resource("", "v1", "pods", namespaced=True)
            nodes = c.resource("", "v1", "nodes", namespaced=False)

            # node registration
            async def node_ready():
                n = await nodes.get("node-a")
                conds = {x["type"]: x["status"] for x in n["status"].get("conditions") or []}
                return n if conds.get("Ready") == "True" else None
            n = await wait_for(node_ready)
            info = n["status"]["nodeInfo"]
            assert info["kubeletVersion"] == "v1.37.1-kyb"
            assert info["containerRuntimeVersion"] == f"containerd://{rt.version}"
            assert n["status"]["capacity"]["pods"] == "110"
            assert int(n["status"]["capacity"]["cpu"]) >= 1
            leases = c.resource("coordination.k8s.io", "v1", "leases")

            async def lease_held():
                try:
                    return await leases.get("node-a", "kube-node-lease")
                except NotFound:
                    return None
            lease = await wait_for(lease_held, 30)  # the heartbeat may land after the first Ready status
            assert lease["spec"]["holderIdentity"] == "node-a"

            # a running pod
            await pods.create(pod("sleeper", 'echo "$MSG"; sleep 3600'))

            async def running():
                p = await pods.get("sleeper", "default")
                st = p.get("status") or {}
                conds = {x["type"]: x["status"] for x in st.get("conditions") or []}
                return p if st.get("phase") == "Running" and conds.get("Ready") == "True" and st.get("podIP") else None
            p = await wait_for(running)
            assert p["status"]["podIP"].startswith("10.88.78.")
            cs = p["status"]["containerStatuses"][0]
            assert "running" in cs["state"] and cs["restartCount"] == 0 and cs["imageID"]
            assert p["status"]["hostIP"] == "10.88.78.1"
            uid = p["metadata"]["uid"]
            logdir = rt.pod_log_root / f"default_sleeper_{uid}" / "main"

            async def logged():
                f = logdir / "0.log"
                return f.exists() and "hi kyb" in f.read_text()
            await wait_for(logged, 20)

            # a failing pod with restartPolicy Never
            await pods.create(pod("failer", "exit 3", policy="Never"))

            async def failed():
                p = await pods.get("failer", "default")
                return p if (p.get("status") or {}).get("phase") == "Failed" else None
            p = await wait_for(failed)
            term = p["status"]["containerStatuses"][0]["state"]["terminated"]
            assert term["exitCode"] == 3 and term["reason"] == "Error"

            # kubectl delete finishes through the kubelet and the sandbox is gone
            r = await asyncio.to_thread(srv.kubectl, "delete", "pod", "sleeper", "--timeout=60s", timeout=90)
            assert "deleted" in r.stdout
            out = await asyncio.to_thread(srv.kubectl, "get", "pods", "-o", "json")
            assert "sleeper" not in [i["metadata"]["name"] for i in json.loads(out.stdout)["items"]]
            sandboxes = await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.uid": uid})
            assert sandboxes == []
            assert not cleanup.cgroup_dirs(f"{env['name']}/pod{uid}")

            failer_uid = (await pods.get("failer", "default"))["metadata"]["uid"]
            await asyncio.to_thread(srv.kubectl, "delete", "pod", "failer", "--timeout=60s", timeout=90)

            async def failer_cleaned():
                return not (env["data_dir"] / "pods" / failer_uid).exists()
            await wait_for(failer_cleaned, 30)
            r = await asyncio.to_thread(srv.kubectl, "get", "node", "node-a", "-o", "wide")
            assert "Ready" in r.stdout and "containerd://" in r.stdout
        finally:
            await kl.stop()
