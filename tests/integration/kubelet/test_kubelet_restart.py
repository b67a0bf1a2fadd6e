"""Kubelet and containerd restarts against a real `kyb server` and containerd: a new
kubelet adopts the pods the runtime still runs (same sandboxes and containers, restart
counts unchanged, completed init containers not run again, Running and Ready), kills
the pods deleted from the API while it was down, and a kubelet whose containerd
restarts keeps its pods running with the same containers."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from fixtures.images import BUSYBOX_REF
from kl_helpers import drain_and_stop, wait_for
from kybernetes.client import Client
from kybernetes.cri import pb
from kybernetes.kubelet import qos_cgroups
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-restart"
L_UID = "io.kubernetes.pod.uid"


def pod(name, init=False, burstable=False):
    c = {"name": "main", "image": BUSYBOX_REF, "imagePullPolicy": "Never", "command": ["sleep", "3600"],
         # a readiness probe the new kubelet must run again before the pod is Ready
         "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}
    if burstable:
        c["resources"] = {"requests": {"cpu": "10m"}}
    spec = {"nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": [c]}
    if init:
        spec["initContainers"] = [{"name": "setup", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                   "command": ["sh", "-c", "echo done"]}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


STATIC = f"""apiVersion: v1
kind: Pod
metadata: {{name: static-web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: "{BUSYBOX_REF}", imagePullPolicy: Never, command: [sleep, "3600"]}}
"""


def new_kubelet(env, cl, static_dir=None):
    rt = env["rt"]
    return Kubelet(cl, rt.endpoint, node_name=NODE, data_dir=env["data_dir"], node_ip="10.88.78.1",
                   pod_log_root=rt.pod_log_root, cgroup_root=env["name"], pleg_period=0.5,
                   static_pod_path=static_dir, file_check_frequency=0.3)


@contextlib.asynccontextmanager
async def admin(env):
    async with Client.from_kubeconfig(env["srv"].kubeconfig) as cl:
        yield cl, cl.resource("", "v1", "pods", namespaced=True)


async def running_ready(pods, name):
    p = await pods.get(name, "default")
    st = p.get("status") or {}
    conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
    cs = st.get("containerStatuses") or []
    ok = st.get("phase") == "Running" and conds.get("Ready") == "True" and cs and \
        all("running" in (c.get("state") or {}) and c.get("ready") for c in cs)
    return p if ok else None


async def runtime_view(cri, uid):
    """(sandbox ids, {container name: [(id, attempt, state)]}) of one pod in the runtime."""
    sandboxes = sorted(s.id for s in await cri.list_pod_sandbox(labels={L_UID: uid}))
    containers: dict[str, list] = {}
    for c in await cri.list_containers(labels={L_UID: uid}):
        containers.setdefault(c.metadata.name, []).append((c.id, c.metadata.attempt, c.state))
    return sandboxes, {k: sorted(v) for k, v in containers.items()}


async def delete_all(pods, kl, names):
    for n in names:
        try:
            await pods.delete(n, "default", grace_period_seconds=0)
        except Exception:
            pass

    await drain_and_stop(kl, stop=False)


async def test_new_kubelet_adopts_running_pods_and_kills_deleted_ones(env, tmp_path):
    static_dir = tmp_path / "manifests"
    static_dir.mkdir()
    (static_dir / "web.yaml").write_text(STATIC)
    async with admin(env) as (cl, pods):
        kl = await new_kubelet(env, cl, static_dir).start()
        stopped = False
        try:
            for p in (pod("steady"), pod("inited", init=True), pod("doomed", burstable=True)):
                await pods.create(p, "default")
            before = {}
            for n in ("steady", "inited", "doomed", f"static-web-{NODE}"):
                p = await wait_for(lambda n=n: running_ready(pods, n), 60)
                # a static pod runs under its own uid, not its mirror's
                uid = (p["metadata"].get("annotations") or {}).get("kubernetes.io/config.mirror") or p["metadata"]["uid"]
                before[n] = (p, await runtime_view(kl.cri, uid))
            await kl.stop()
            stopped = True

            # the pods keep running without a kubelet; one is deleted meanwhile
            doomed_uid = before["doomed"][0]["metadata"]["uid"]
            await pods.delete("doomed", "default", grace_period_seconds=0)

            watches = {n: PodStates(pods, n) for n in ("steady", "inited")}
            try:
                kl = await new_kubelet(env, cl, static_dir).start()
                stopped = False

                async def doomed_gone():
                    return not (await kl.cri.list_pod_sandbox(labels={L_UID: doomed_uid}))
                await wait_for(doomed_gone, 30)
                assert not await kl.cri.list_containers(labels={L_UID: doomed_uid})
                doomed_cgroup = qos_cgroups.pod_cgroup(env["name"], doomed_uid, qos_cgroups.BURSTABLE)
                assert not cleanup.cgroup_dirs(doomed_cgroup.lstrip("/"))

                # wait until the new kubelet has relisted and synced the adopted pods a few times
                relists = kl.pleg.relists
                await wait_for(lambda: _true(kl.pleg.relists >= relists + 3), 30)
                for n in ("steady", "inited"):
                    await wait_for(lambda n=n: running_ready(pods, n), 30)
            finally:
                for w in watches.values():
                    await w.close()
            for n, w in watches.items():
                # adopted as they were: never anything but Running with a running container
                assert w.seen and all(ph == "Running" and states == ["running"] for ph, states in w.seen), (n, w.seen)

            static_view = before[f"static-web-{NODE}"][1]
            assert await runtime_view(kl.cri, before[f"static-web-{NODE}"][0]["metadata"]["annotations"][
                "kubernetes.io/config.mirror"]) == static_view
            for n in ("steady", "inited"):
                old, view = before[n]
                p = await pods.get(n, "default")
                assert await runtime_view(kl.cri, p["metadata"]["uid"]) == view  # nothing new, nothing re-run
                assert len(view[0]) == 1
                assert [c["containerID"] for c in p["status"]["containerStatuses"]] == \
                    [c["containerID"] for c in old["status"]["containerStatuses"]]
                assert [c["restartCount"] for c in p["status"]["containerStatuses"]] == [0]
                assert p["status"]["startTime"] == old["status"]["startTime"]
                assert p["status"]["podIP"] == old["status"]["podIP"]
            inited = (await pods.get("inited", "default"))["status"]
            [init] = inited["initContainerStatuses"]
            assert init["state"]["terminated"]["reason"] == "Completed" and init["restartCount"] == 0
            assert init["containerID"] == before["inited"][0]["status"]["initContainerStatuses"][0]["containerID"]
            assert len(before["inited"][1][1]["setup"]) == 1
        finally:
            (static_dir / "web.yaml").unlink()
            if not stopped:
                try:
                    async def mirror_gone():
                        return not [p for p in (await pods.list("default"))["items"]
                                    if p["metadata"]["name"] == f"static-web-{NODE}"]
                    await wait_for(mirror_gone, 30)
                    await delete_all(pods, kl, ["steady", "inited", "doomed"])
                finally:
                    await kl.stop()


async def _true(v):
    return v


class PodStates:
    """(phase, [container state kinds]) of a pod as every watch event shows it."""

    def __init__(self, pods, name):
        self.seen: list[tuple[str, list[str]]] = []
        self.task = asyncio.ensure_future(self._run(pods, name))

    async def _run(self, pods, name):
        while True:
            try:
                async with pods.watch("default", name=name, timeout_seconds=60) as w:
                    async for _, p in w:
                        st = p.get("status") or {}
                        self.seen.append((st.get("phase"), [next(iter(c.get("state") or {"none": 0}))
                                                            for c in st.get("containerStatuses") or []]))
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)

    async def close(self):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_containerd_restart_under_a_running_kubelet(env):
    rt = env["rt"]
    async with admin(env) as (cl, pods):
        kl = await new_kubelet(env, cl).start()
        try:
            await pods.create(pod("survivor"), "default")
            p = await wait_for(lambda: running_ready(pods, "survivor"), 60)
            uid = p["metadata"]["uid"]
            view = await runtime_view(kl.cri, uid)

            states = PodStates(pods, "survivor")
            try:
                await rt.stop(remove_pods=False)
                failures = kl.pleg.relists
                await rt.start()

                # the kubelet's CRI client reconnects; the PLEG relists again
                await wait_for(lambda: _true(kl.pleg.relists >= failures + 3), 30)
                await wait_for(lambda: running_ready(pods, "survivor"), 30)
            finally:
                await states.close()
            assert states.seen and all(ph == "Running" and st == ["running"] for ph, st in states.seen), states.seen
            assert await runtime_view(kl.cri, uid) == view
            [s] = await kl.cri.list_pod_sandbox(labels={L_UID: uid})
            assert s.state == pb.SANDBOX_READY
            p = await wait_for(lambda: running_ready(pods, "survivor"), 30)
            assert p["status"]["containerStatuses"][0]["restartCount"] == 0
            assert p["status"]["containerStatuses"][0]["containerID"] == f"containerd://{view[1]['main'][0][0]}"
            r = await kl.cri.exec_sync(view[1]["main"][0][0], ["echo", "still here"], timeout=10)
            assert r.stdout == b"still here\n"
        finally:
            try:
                await delete_all(pods, kl, ["survivor"])
            finally:
                await kl.stop()
