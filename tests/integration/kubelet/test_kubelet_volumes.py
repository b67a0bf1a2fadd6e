"""Pod volumes on a real kubelet + containerd: configMap updates reach a running container
(read with CRI ExecSync), secret items and modes, downward API, memory emptyDir with its
size limit, subPath, hostPath, the kube-api-access projected volume, a pod waiting for a
missing ConfigMap, and clean-up of every mount when the pod goes."""

from __future__ import annotations

import base64
import os

import pytest

from fixtures.images import BUSYBOX_REF
from kl_helpers import pod_events, wait_for
from kybernetes.client import Client
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def volume_pod(name, host_dir):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "vols"}},
            "spec": {"nodeName": "node-v", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                     "command": ["sleep", "3600"],
                                     "resources": {"limits": {"memory": "64Mi"}},
                                     "volumeMounts": [
                                         {"name": "cfg", "mountPath": "/cfg"},
                                         {"name": "sec", "mountPath": "/sec"},
                                         {"name": "info", "mountPath": "/info"},
                                         {"name": "mem", "mountPath": "/mem"},
                                         {"name": "scratch", "mountPath": "/sub", "subPath": "deep/dir"},
                                         {"name": "host", "mountPath": "/host"},
                                         {"name": "hostro", "mountPath": "/hostro", "readOnly": True}]}],
                     "volumes": [
                         {"name": "cfg", "configMap": {"name": "settings"}},
                         {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400,
                                                    "items": [{"key": "password", "path": "pw/file"}]}},
                         {"name": "info", "downwardAPI": {"items": [
                             {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                             {"path": "mem_limit", "resourceFieldRef": {"containerName": "main",
                                                                        "resource": "limits.memory",
                                                                        "divisor": "1Mi"}}]}},
                         {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                         {"name": "scratch", "emptyDir": {}},
                         {"name": "host", "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"}},
                         {"name": "hostro", "hostPath": {"path": str(host_dir), "type": "Directory"}}]}}


async def test_volumes(env, tmp_path):
    srv, rt = env["srv"], env["rt"]
    host_dir = tmp_path / "hostvol"
    async with Client.from_kubeconfig(srv.kubeconfig) as c:
        kl = Kubelet(c, rt.endpoint, node_name="node-v", data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"], sync_frequency=2.0)
        await kl.start()
        pods = c.resource("", "v1", "pods", namespaced=True)
        cms = c.resource("", "v1", "configmaps", namespaced=True)
        secrets = c.resource("", "v1", "secrets", namespaced=True)
        try:
            await secrets.create({"metadata": {"name": "creds"},
                                  "data": {"password": base64.b64encode(b"hunter2").decode()}}, "default")
            # the ConfigMap does not exist yet: the pod waits in ContainerCreating
            await pods.create(volume_pod("vols", host_dir))

            async def creating():
                p = await pods.get("vols", "default")
                cs = (p.get("status") or {}).get("containerStatuses") or []
                return p if cs and cs[0]["state"].get("waiting", {}).get("reason") == "ContainerCreating" else None
            p = await wait_for(creating)
            assert p["status"]["phase"] == "Pending"
            uid = p["metadata"]["uid"]

            async def failed_mount():
                return [e for e in await pod_events(c, "vols") if e[1] == "FailedMount"]
            [ev] = await wait_for(failed_mount, 30)
            assert ev[:3] == ("Warning", "FailedMount",
                              'MountVolume.SetUp failed for volume "cfg" : configmap "settings" not found')
            assert await kl.cri.list_containers(labels={"io.kubernetes.pod.uid": uid}) == []

            await cms.create({"metadata": {"name": "settings"}, "data": {"mode": "v1"}}, "default")

            async def running():
                p = await pods.get("vols", "default")
                return p if (p.get("status") or {}).get("phase") == "Running" else None
            await wait_for(running)
            [ctr] = await kl.cri.list_containers(labels={"io.kubernetes.pod.uid": uid})

            async def sh(script):
                r = await kl.cri.exec_sync(ctr.id, ["sh", "-c", script], timeout=10)
                return r.exit_code, r.stdout.decode(), r.stderr.decode()

            assert await sh("cat /cfg/mode") == (0, "v1", "")
            assert (await sh("cat /sec/pw/file"))[1] == "hunter2"
            assert (await sh("stat -L -c %a /sec/pw/file"))[1].strip() == "400"
            assert (await sh("cat /info/labels"))[1] == 'app="vols"'
            assert (await sh("cat /info/mem_limit"))[1] == "64"
            code, out, _ = await sh("grep ' /mem ' /proc/mounts")
            assert code == 0 and out.startswith("tmpfs") and "size=8192k" in out
            # API data volumes are read-only; so is a readOnly mount
            assert (await sh("echo x > /cfg/new"))[0] != 0
            assert (await sh("touch /hostro/x"))[0] != 0
            # hostPath: created on the node, writes are visible there
            assert (await sh("echo from-pod > /host/f"))[0] == 0
            assert (host_dir / "f").read_text() == "from-pod\n"
            # subPath: a directory created inside the emptyDir
            assert (await sh("echo s > /sub/x"))[0] == 0
            scratch = env["data_dir"] / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "scratch"
            assert (scratch / "deep" / "dir" / "x").read_text() == "s\n"
            # the service account volume the admission added
            code, out, _ = await sh(f"cat {SA_DIR}/namespace; echo; head -1 {SA_DIR}/ca.crt; wc -c < {SA_DIR}/token")
            ns, ca, size = out.split("\n")[:3]
            assert (ns, ca) == ("default", "-----BEGIN CERTIFICATE-----") and int(size) > 100
            token = (await sh(f"cat {SA_DIR}/token"))[1]
            review = await c.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                     {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                      "spec": {"token": token}})
            assert review["status"]["authenticated"] is True
            assert review["status"]["user"]["username"] == "system:serviceaccount:default:default"
            assert review["status"]["user"]["extra"]["authentication.kubernetes.io/pod-uid"] == [uid]

            # an update of the ConfigMap reaches the running container, atomically
            await cms.patch("settings", {"data": {"mode": "v2", "extra": "e"}}, "merge", "default")

            async def updated():
                code, out, _ = await sh("cat /cfg/mode /cfg/extra")
                return out == "v2e"
            await wait_for(updated, 30)
            code, out, _ = await sh("ls -a /cfg")
            names = out.split()
            assert "..data" in names and {"mode", "extra"} <= set(names)
            assert len([n for n in names if n.startswith("..2")]) == 1  # old generation removed

            # a secret update and a label change (downward API) propagate too
            await secrets.patch("creds", {"data": {"password": base64.b64encode(b"s3cret").decode()}}, "merge", "default")
            await pods.patch("vols", {"metadata": {"labels": {"tier": "db"}}}, "merge", "default")

            async def both():
                out = (await sh("cat /sec/pw/file; echo; cat /info/labels"))[1]
                return out == 's3cret\napp="vols"\ntier="db"'
            await wait_for(both, 30)

            pod_dir = env["data_dir"] / "pods" / uid
            assert cleanup.mounts_under(pod_dir)  # tmpfs volumes are mounted
            await pods.delete("vols", "default")

            async def gone():
                return not pod_dir.exists() and not await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.uid": uid})
            await wait_for(gone, 60)
            assert not cleanup.mounts_under(env["data_dir"] / "pods")
            assert host_dir.is_dir()  # hostPath content is the node's, never removed
        finally:
            await kl.stop()
            for h, n in ((pods, "vols"), (cms, "settings"), (secrets, "creds")):
                try:
                    await h.delete(n, "default")
                except Exception:
                    pass
