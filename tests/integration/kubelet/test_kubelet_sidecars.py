"""Sidecar init containers (restartPolicy Always) on a real kubelet + containerd: later init
containers and the app wait until the sidecar has started (startup probe), a crashed
sidecar restarts even under restartPolicy Never, the pod completes when its app
containers do, and the sidecar is then stopped gracefully (SIGTERM)."""

from __future__ import annotations

import os

import pytest

from fixtures.images import BUSYBOX_REF
from kl_helpers import wait_for
from kybernetes.client import Client
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

SIDE = ("if [ ! -f /host/crashed ]; then touch /host/crashed; exit 1; fi; "
        "trap 'echo stopped > /host/side-term; exit 0' TERM; sleep 1; touch /tmp/up /host/side-up; "
        "while true; do sleep 0.2; done")


def c(name, script, **kw):
    return {"name": name, "image": BUSYBOX_REF, "imagePullPolicy": "Never", "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "host", "mountPath": "/host"}], **kw}


async def test_sidecar(env, tmp_path):
    srv, rt = env["srv"], env["rt"]
    host = tmp_path / "h"
    host.mkdir()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "side", "namespace": "default"},
           "spec": {"nodeName": "node-c", "restartPolicy": "Never", "terminationGracePeriodSeconds": 10,
                    "initContainers": [
                        c("proxy", SIDE, restartPolicy="Always",
                          startupProbe={"exec": {"command": ["cat", "/tmp/up"]}, "periodSeconds": 1,
                                        "failureThreshold": 30}),
                        c("after", "test -f /host/side-up")],
                    "containers": [c("app", "test -f /host/side-up && echo done > /host/app")],
                    "volumes": [{"name": "host", "hostPath": {"path": str(host), "type": "Directory"}}]}}
    async with Client.from_kubeconfig(srv.kubeconfig) as cl:
        kl = Kubelet(cl, rt.endpoint, node_name="node-c", data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"])
        await kl.start()
        pods = cl.resource("", "v1", "pods", namespaced=True)
        try:
            await pods.create(pod)

            async def finished():
                p = await pods.get("side", "default")
                return p if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None
            p = await wait_for(finished, 90)
            st = p["status"]
            assert st["phase"] == "Succeeded", st
            inits = {s["name"]: s for s in st["initContainerStatuses"]}
            assert inits["after"]["state"]["terminated"]["exitCode"] == 0
            assert inits["proxy"]["restartCount"] == 1  # restarted despite restartPolicy Never
            assert inits["proxy"]["lastState"]["terminated"]["exitCode"] == 1
            assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
            assert (host / "app").read_text() == "done\n"

            async def sidecar_stopped():
                p = await pods.get("side", "default")
                s = {x["name"]: x for x in p["status"]["initContainerStatuses"]}["proxy"]
                return s if "terminated" in s["state"] else None
            s = await wait_for(sidecar_stopped, 30)
            assert s["state"]["terminated"]["exitCode"] == 0  # its TERM trap ran
            assert (host / "side-term").read_text() == "stopped\n"
            conds = {x["type"]: x for x in (await pods.get("side", "default"))["status"]["conditions"]}
            assert conds["Ready"]["status"] == "False" and conds["Ready"].get("reason") == "PodCompleted"
        finally:
            try:
                await pods.delete("side", "default", grace_period_seconds=0)
            except Exception:
                pass

            async def gone():
                return not await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.name": "side"})
            try:
                await wait_for(gone, 60)
            finally:
                await kl.stop()
