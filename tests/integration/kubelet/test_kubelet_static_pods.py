"""Static pods on containerd: a manifest in the kubelet's directory runs without the API
and shows up as a mirror pod with status; a deleted mirror pod comes back, an edited
manifest replaces the pod, a removed manifest stops it and removes the mirror."""

from __future__ import annotations

import asyncio
import os

import pytest

from fixtures.images import BUSYBOX_REF
from kybernetes.client import Client, NotFound
from kybernetes.kubelet.kubelet import Kubelet
from kybernetes.kubelet.static_pods import CONFIG_HASH, CONFIG_MIRROR, CONFIG_SOURCE
from kl_helpers import wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-sp"


def manifest(msg):
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: static-web
  namespace: kube-system
  labels: {{tier: static}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: {BUSYBOX_REF}
    imagePullPolicy: Never
    command: ["sh", "-c", "trap 'exit 0' TERM; echo {msg}; sleep 3600 & wait"]
"""


async def test_static_pod_with_mirror(env, tmp_path):
    srv, rt = env["srv"], env["rt"]
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    (mdir / "web.yaml").write_text(manifest("one"))
    async with Client.from_kubeconfig(srv.kubeconfig) as c:
        kl = Kubelet(c, rt.endpoint, node_name=NODE, data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"], static_pod_path=mdir,
                     file_check_frequency=0.3)
        await kl.start()
        pods = c.resource("", "v1", "pods", namespaced=True)
        name = f"static-web-{NODE}"

        async def mirror_running(not_uid=None):
            try:
                p = await pods.get(name, "kube-system")
            except NotFound:
                return None
            if p["metadata"]["uid"] == not_uid or p["metadata"].get("deletionTimestamp"):
                return None
            return p if (p.get("status") or {}).get("phase") == "Running" else None
        try:
            m = await wait_for(mirror_running)
            ann = m["metadata"]["annotations"]
            static_uid = ann[CONFIG_HASH]
            assert ann[CONFIG_MIRROR] == static_uid and ann[CONFIG_SOURCE] == "file"
            assert m["metadata"]["uid"] != static_uid
            node = await c.resource("", "v1", "nodes", namespaced=False).get(NODE)
            assert m["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
            assert m["spec"]["nodeName"] == NODE and m["status"]["podIP"].startswith("10.88.78.")
            # the containers run under the static pod's own UID
            sandboxes = await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.uid": static_uid})
            assert len(sandboxes) == 1
            r = await asyncio.to_thread(srv.kubectl, "get", "pod", "-n", "kube-system", name)
            assert "Running" in r.stdout

            # deleting the mirror pod only gets it back; the pod keeps running
            await asyncio.to_thread(srv.kubectl, "delete", "pod", "-n", "kube-system", name, "--wait=false")
            m2 = await wait_for(lambda: mirror_running(not_uid=m["metadata"]["uid"]))
            assert m2["metadata"]["annotations"][CONFIG_MIRROR] == static_uid
            assert [s.id for s in await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.uid": static_uid})] == \
                [sandboxes[0].id]

            # an edited manifest is a new pod: the old one stops, the mirror is replaced
            (mdir / "web.yaml").write_text(manifest("two"))

            async def replaced():
                p = await mirror_running(not_uid=m2["metadata"]["uid"])
                return p if p and p["metadata"]["annotations"][CONFIG_HASH] != static_uid else None
            m3 = await wait_for(replaced)
            new_uid = m3["metadata"]["annotations"][CONFIG_HASH]

            async def old_gone():
                return not await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.uid": static_uid})
            await wait_for(old_gone)

            # a removed manifest: the pod stops and the mirror goes
            (mdir / "web.yaml").unlink()

            async def all_gone():
                try:
                    await pods.get(name, "kube-system")
                    return False
                except NotFound:
                    pass
                return not await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.uid": new_uid}) and \
                    not (env["data_dir"] / "pods" / new_uid).exists()
            await wait_for(all_gone)
        finally:
            await kl.stop()
            await c.resource("", "v1", "nodes", namespaced=False).delete(NODE)
