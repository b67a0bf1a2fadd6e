"""Lifecycle on a real kubelet + containerd: postStart and preStop hooks (exec and httpGet),
graceful termination (SIGTERM reaches the container before SIGKILL), termination messages
from the file and from the logs (FallbackToLogsOnError), and a failing postStart hook
killing its container."""

from __future__ import annotations

import os

import pytest

from fixtures.images import BUSYBOX_REF
from kl_helpers import drain_and_stop, wait_for
from kybernetes.client import Client
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

CGI = "#!/bin/sh\necho hit > /host/httpget-prestop\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'\n"


def c(name, script, **kw):
    return {"name": name, "image": BUSYBOX_REF, "imagePullPolicy": "Never", "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "host", "mountPath": "/host"}], **kw}


def hooks_pod(host_dir):
    trap = c("trap", "trap 'echo term > /host/sigterm; exit 0' TERM; while true; do sleep 0.2; done",
             lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo post > /host/poststart"]}},
                        "preStop": {"exec": {"command": ["sh", "-c", "echo pre > /host/prestop"]}}})
    web = c("web", "mkdir -p /www/cgi-bin && printf '%s' \"$CGI\" > /www/cgi-bin/hook && "
                   "chmod +x /www/cgi-bin/hook && exec httpd -f -p 8080 -h /www",
            env=[{"name": "CGI", "value": CGI}],
            lifecycle={"preStop": {"httpGet": {"path": "/cgi-bin/hook", "port": 8080}}})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hooks", "namespace": "default"},
            "spec": {"nodeName": "node-l", "terminationGracePeriodSeconds": 20, "containers": [trap, web],
                     "volumes": [{"name": "host", "hostPath": {"path": str(host_dir), "type": "Directory"}}]}}


def ended_pod(host_dir):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ended", "namespace": "default"},
            "spec": {"nodeName": "node-l", "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [
                         c("file", "echo bye > /dev/termination-log; exit 1"),
                         c("custom", "echo custom > /tmp/why; echo noise; exit 0", terminationMessagePath="/tmp/why"),
                         c("logs", "seq 1 100; exit 2", terminationMessagePolicy="FallbackToLogsOnError"),
                         c("badhook", "exec sleep 3600",
                           lifecycle={"postStart": {"exec": {"command": ["false"]}}})],
                     "volumes": [{"name": "host", "hostPath": {"path": str(host_dir), "type": "Directory"}}]}}


async def test_lifecycle(env, tmp_path):
    srv, rt = env["srv"], env["rt"]
    host_dir = tmp_path / "h"
    host_dir.mkdir()
    async with Client.from_kubeconfig(srv.kubeconfig) as cl:
        kl = Kubelet(cl, rt.endpoint, node_name="node-l", data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"])
        await kl.start()
        pods = cl.resource("", "v1", "pods", namespaced=True)
        try:
            await pods.create(hooks_pod(host_dir))
            await pods.create(ended_pod(host_dir))

            async def phase(name, want):
                p = await pods.get(name, "default")
                return p if (p.get("status") or {}).get("phase") == want else None
            await wait_for(lambda: phase("hooks", "Running"))
            assert (host_dir / "poststart").read_text() == "post\n"
            assert not (host_dir / "prestop").exists() and not (host_dir / "sigterm").exists()

            # termination messages and the failed postStart hook
            p = await wait_for(lambda: phase("ended", "Failed"), 60)
            term = {s["name"]: s["state"]["terminated"] for s in p["status"]["containerStatuses"]}
            assert (term["file"]["exitCode"], term["file"]["message"]) == (1, "bye\n")
            assert term["custom"]["message"] == "custom\n" and term["custom"]["reason"] == "Completed"
            # the log tail: the last 80 lines
            assert term["logs"]["exitCode"] == 2
            assert term["logs"]["message"] == "".join(f"{i}\n" for i in range(21, 101))
            # a terminated pod's volumes (the token tmpfs) are released; its messages stay readable
            ended_dir = env["data_dir"] / "pods" / p["metadata"]["uid"]

            async def released():
                return not cleanup.mounts_under(ended_dir) and not (ended_dir / "volumes").exists()
            await wait_for(released, 30)
            assert (ended_dir / "containers" / "file").is_dir()
            # `sleep` is PID 1 of its own process namespace (SIGTERM ignored): killed at the grace period's end
            assert term["badhook"]["exitCode"] == 137 and term["badhook"]["reason"] == "Error"

            # graceful deletion: preStop hooks run first, then SIGTERM (the trap exits 0)
            await pods.delete("hooks", "default")

            async def gone():
                return not await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.name": "hooks"})
            await wait_for(gone, 60)
            assert (host_dir / "prestop").read_text() == "pre\n"
            assert (host_dir / "httpget-prestop").read_text() == "hit\n"
            assert (host_dir / "sigterm").read_text() == "term\n"
        finally:
            for n in ("hooks", "ended"):
                try:
                    await pods.delete(n, "default", grace_period_seconds=0)
                except Exception:
                    pass

            await drain_and_stop(kl)
