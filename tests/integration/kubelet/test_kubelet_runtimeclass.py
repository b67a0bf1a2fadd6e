"""RuntimeClass and privileged containers on a real kubelet + containerd: a pod whose
RuntimeClass names the `runc` handler runs in a sandbox containerd reports with that
handler; a privileged container holds every capability the runtime has and may mount a
tmpfs, while its unprivileged sibling may not; a RuntimeClass naming a handler containerd
does not know fails the sandbox with upstream's FailedCreatePodSandBox event."""

from __future__ import annotations

import os

import pytest

from fixtures.images import BUSYBOX_REF
from kl_helpers import pod_events, serving_kubelet, wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-rtc"
PROBE = ("grep CapEff /proc/self/status > /dev/termination-log; "
         "mkdir -p /tmp/m; if mount -t tmpfs none /tmp/m 2>/dev/null; then echo mounted >> /dev/termination-log; "
         "umount /tmp/m; fi")


def container(name: str, privileged: bool) -> dict:
    return {"name": name, "image": BUSYBOX_REF, "imagePullPolicy": "Never", "command": ["sh", "-c", PROBE],
            "securityContext": {"privileged": privileged}}


def runtime_class(name: str, handler: str) -> dict:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}, "handler": handler}


def cap_bounding_set(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split()[1] for line in f if line.startswith("CapBnd:"))


async def test_runtime_handler_and_privileged(env, tmp_path):
    rt = env["rt"]
    async with serving_kubelet(env, tmp_path, NODE) as (cl, kl, pods, names):
        rcs = cl.resource("node.k8s.io", "v1", "runtimeclasses", namespaced=False)
        created = []
        try:
            for name, handler in (("kl-runc", "runc"), ("kl-bogus", "bogus")):
                await rcs.create(runtime_class(name, handler))
                created.append(name)
            names += ["rc-priv", "rc-bogus"]
            await pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rc-priv", "namespace": "default"},
                               "spec": {"nodeName": NODE, "restartPolicy": "Never", "runtimeClassName": "kl-runc",
                                        "containers": [container("priv", True), container("plain", False)]}})
            await pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rc-bogus", "namespace": "default"},
                               "spec": {"nodeName": NODE, "runtimeClassName": "kl-bogus",
                                        "containers": [container("c", False)]}})

            async def finished():
                p = await pods.get("rc-priv", "default")
                return p if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None
            p = await wait_for(finished, 60)
            assert p["status"]["phase"] == "Succeeded", p["status"]
            msgs = {s["name"]: s["state"]["terminated"]["message"] for s in p["status"]["containerStatuses"]}
            everything = cap_bounding_set(rt.pid)
            assert msgs["priv"].split() == ["CapEff:", everything, "mounted"]
            plain = msgs["plain"].split()
            assert plain[:1] == ["CapEff:"] and plain[1] != everything and "mounted" not in plain

            sandboxes = await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.name": "rc-priv"})
            assert sandboxes and {s.runtime_handler for s in sandboxes} == {"runc"}

            async def sandbox_failed():
                evs = await pod_events(cl, "rc-bogus")
                return [e for e in evs if e[1] == "FailedCreatePodSandBox"]
            ev = (await wait_for(sandbox_failed, 30))[0]
            assert ev[0] == "Warning"
            assert ev[2].startswith("Failed to create pod sandbox: rpc error: code = ")
            assert 'no runtime for "bogus" is configured' in ev[2]
            bogus = await pods.get("rc-bogus", "default")
            assert bogus["status"]["phase"] == "Pending"
            waiting = bogus["status"]["containerStatuses"][0]["state"]["waiting"]
            assert waiting["reason"] == "ContainerCreating"
            assert not await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.name": "rc-bogus"})
        finally:
            for name in created:
                await rcs.delete(name)


async def test_overhead_in_the_pod_cgroup(env, tmp_path):
    """A RuntimeClass's overhead (copied into spec.overhead by admission) raises the pod
    cgroup's memory limit and CPU quota above the containers' sum, as upstream."""
    from kybernetes.kubelet.qos_cgroups import pod_cgroup

    async with serving_kubelet(env, tmp_path, NODE) as (cl, kl, pods, names):
        rcs = cl.resource("node.k8s.io", "v1", "runtimeclasses", namespaced=False)
        await rcs.create({**runtime_class("kl-overhead", "runc"),
                          "overhead": {"podFixed": {"cpu": "100m", "memory": "16Mi"}}})
        try:
            names.append("rc-overhead")
            limits = {"cpu": "200m", "memory": "64Mi"}
            p = await pods.create({"apiVersion": "v1", "kind": "Pod",
                                   "metadata": {"name": "rc-overhead", "namespace": "default"},
                                   "spec": {"nodeName": NODE, "runtimeClassName": "kl-overhead",
                                            "terminationGracePeriodSeconds": 1,
                                            "containers": [{"name": "c", "image": BUSYBOX_REF,
                                                            "imagePullPolicy": "Never",
                                                            "command": ["sleep", "3600"],
                                                            "resources": {"limits": limits}}]}})
            assert p["spec"]["overhead"] == {"cpu": "100m", "memory": "16Mi"}

            async def running():
                got = await pods.get("rc-overhead", "default")
                return got if (got.get("status") or {}).get("phase") == "Running" else None
            got = await wait_for(running, 60)
            cg = pod_cgroup(env["name"], got["metadata"]["uid"], got["status"]["qosClass"]).lstrip("/")
            with open(f"/sys/fs/cgroup/memory/{cg}/memory.limit_in_bytes") as f:
                assert int(f.read()) == (64 + 16) << 20
            with open(f"/sys/fs/cgroup/cpu/{cg}/cpu.cfs_quota_us") as f:
                assert int(f.read()) == 30000  # (200m + 100m) of a 100 ms period
        finally:
            await rcs.delete("kl-overhead")
