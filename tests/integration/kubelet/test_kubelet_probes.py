"""Probes on a real kubelet + containerd: exec readiness gates the Ready condition both
ways, an httpGet liveness failure restarts the container (restartCount, lastState), and
tcpSocket startup/readiness probes reach the pod IP from inside the pod's network."""

from __future__ import annotations

import os

import pytest

from fixtures.images import BUSYBOX_REF
from kl_helpers import pod_events, wait_for
from kybernetes.client import Client
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]


def probe_pod():
    web = {"name": "web", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
           "command": ["sh", "-c", "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www"],
           "ports": [{"name": "http", "containerPort": 8080}],
           "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1,
                             "failureThreshold": 2, "timeoutSeconds": 1},
           "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1,
                              "failureThreshold": 1}}
    tcp = {"name": "tcp", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
           "command": ["sh", "-c", "sleep 2; exec httpd -f -p 9090 -h /tmp"],
           "startupProbe": {"tcpSocket": {"port": 9090}, "periodSeconds": 1, "failureThreshold": 30},
           "readinessProbe": {"tcpSocket": {"port": 9090}, "periodSeconds": 1}}
    slow = {"name": "slow", "image": BUSYBOX_REF, "imagePullPolicy": "Never", "command": ["sleep", "3600"],
            "readinessProbe": {"exec": {"command": ["sh", "-c", "test -f /tmp/fast || sleep 10"]},
                               "timeoutSeconds": 1, "periodSeconds": 1}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probed", "namespace": "default"},
            "spec": {"nodeName": "node-p", "terminationGracePeriodSeconds": 1, "containers": [web, tcp, slow]}}


async def test_probes(env):
    srv, rt = env["srv"], env["rt"]
    async with Client.from_kubeconfig(srv.kubeconfig) as c:
        kl = Kubelet(c, rt.endpoint, node_name="node-p", data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"])
        await kl.start()
        pods = c.resource("", "v1", "pods", namespaced=True)
        try:
            await pods.create(probe_pod())

            async def status(pred):
                p = await pods.get("probed", "default")
                st = p.get("status") or {}
                cs = {s["name"]: s for s in st.get("containerStatuses") or []}
                conds = {x["type"]: x["status"] for x in st.get("conditions") or []}
                return (p, cs, conds) if len(cs) == 3 and pred(cs, conds) else None

            # tcp: started and ready once the port opens; web: running but unready (no /tmp/ready)
            p, cs, conds = await wait_for(lambda: status(lambda cs, k: cs["tcp"]["ready"] and cs["tcp"]["started"]), 60)
            assert "running" in cs["web"]["state"] and cs["web"]["started"] is True
            assert cs["web"]["ready"] is False
            assert conds["Ready"] == "False" and conds["ContainersReady"] == "False"
            assert p["status"]["phase"] == "Running"
            uid = p["metadata"]["uid"]

            async def ctr(name):
                cs = await kl.cri.list_containers(labels={"io.kubernetes.pod.uid": uid,
                                                          "io.kubernetes.container.name": name})
                return max(cs, key=lambda x: x.metadata.attempt)

            web = await ctr("web")
            assert (await kl.cri.exec_sync(web.id, ["touch", "/tmp/ready"], timeout=5)).exit_code == 0
            await wait_for(lambda: status(lambda cs, k: cs["web"]["ready"]), 30)
            _, cs, conds = await status(lambda cs, k: True)
            assert conds["Ready"] == "False" and cs["slow"]["ready"] is False  # its probe times out

            async def timed_out():
                return [e for e in await pod_events(c, "probed") if e[1] == "Unhealthy" and e[3] == "spec.containers{slow}"]
            [ev] = await wait_for(timed_out, 30)
            assert ev[2].startswith("Readiness probe failed: ") and "timed out" in ev[2]
            slow = await ctr("slow")
            assert (await kl.cri.exec_sync(slow.id, ["touch", "/tmp/fast"], timeout=5)).exit_code == 0
            await wait_for(lambda: status(lambda cs, k: k["Ready"] == "True" and k["ContainersReady"] == "True"), 30)
            assert (await kl.cri.exec_sync(web.id, ["rm", "/tmp/ready"], timeout=5)).exit_code == 0
            await wait_for(lambda: status(lambda cs, k: k["Ready"] == "False" and not cs["web"]["ready"]), 30)

            # liveness: the health page goes away -> SIGTERM and restarted
            assert (await kl.cri.exec_sync(web.id, ["rm", "/www/healthz"], timeout=5)).exit_code == 0
            p, cs, _ = await wait_for(lambda: status(lambda cs, k: cs["web"]["restartCount"] >= 1
                                                    and "running" in cs["web"]["state"]), 60)
            last = cs["web"]["lastState"]["terminated"]
            # httpd runs as PID 1 of its own process namespace, where SIGTERM without a handler
            # does nothing: it is killed when the grace period ends, as on upstream's kubelet
            assert last["exitCode"] == 137 and last["reason"] == "Error"
            assert last["containerID"] == f"containerd://{web.id}"
            assert cs["web"]["ready"] is False  # the new instance has no /tmp/ready
            assert cs["tcp"]["restartCount"] == 0
            web2 = await ctr("web")
            assert web2.id != web.id and web2.metadata.attempt == 1
            assert (await kl.cri.exec_sync(web2.id, ["cat", "/www/healthz"], timeout=5)).stdout == b"ok\n"

            async def probe_events():
                evs = await pod_events(c, "probed")
                unhealthy = [e for e in evs if e[:2] == ("Warning", "Unhealthy")]
                killing = [e for e in evs if e[1] == "Killing"]
                return (unhealthy, killing) if unhealthy and killing and \
                    any(e[2].startswith("Liveness probe failed: ") for e in unhealthy) else None
            unhealthy, killing = await wait_for(probe_events, 30)
            assert any(e[2].startswith("Readiness probe failed: ") and e[3] == "spec.containers{web}" for e in unhealthy)
            assert ("Normal", "Killing", "Container web failed liveness probe, will be restarted",
                    "spec.containers{web}") in [e[:4] for e in killing]
        finally:
            try:
                await pods.delete("probed", "default")

                async def gone():
                    return not await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.name": "probed"})
                await wait_for(gone, 60)
            finally:
                await kl.stop()
