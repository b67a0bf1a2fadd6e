"""PersistentVolumeClaim volumes and fsGroup on a real kubelet + containerd: a `local` PV
bind-mounted into two pods (one read-only) and unmounted when they go, a hostPath PV, a pod
waiting on an unbound claim until the test binds it (no PV controller runs here), a local
PV whose path is missing, and a non-root pod whose volumes take its fsGroup.

One kubelet serves the whole module (a module-scoped event loop)."""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_asyncio

from fixtures.images import BUSYBOX_REF
from kl_helpers import drain_and_stop, pod_events, wait_for
from kybernetes.auth import pki
from kybernetes.client import Client
from kybernetes.client.kubeconfig import KubeConfig, ssl_context
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, mounts)")]

NODE = "node-pvc"


def pod_spec(name, volumes, mounts, *, command="sleep 3600", security=None):
    spec = {"nodeName": NODE, "terminationGracePeriodSeconds": 0, "volumes": volumes,
            "containers": [{"name": "main", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                            "command": ["sh", "-c", command], "volumeMounts": mounts}]}
    if security:
        spec["securityContext"] = security
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def claim_volume(claim, read_only=False):
    return {"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}


DATA_MOUNT = [{"name": "data", "mountPath": "/data"}]


class Cluster:
    """The module's API handles and kubelet, plus what the tests created (for clean-up)."""

    def __init__(self, client, kubelet, data_dir):
        self.c = client
        self.kl = kubelet
        self.data_dir = data_dir
        self.pods = client.resource("", "v1", "pods", namespaced=True)
        self.pvcs = client.resource("", "v1", "persistentvolumeclaims", namespaced=True)
        self.pvs = client.resource("", "v1", "persistentvolumes", namespaced=False)
        self.cms = client.resource("", "v1", "configmaps", namespaced=True)
        self.made: list[tuple] = []

    async def claim(self, name):
        obj = await self.pvcs.create({"metadata": {"name": name},
                                      "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                                               "resources": {"requests": {"storage": "1Gi"}}}}, "default")
        self.made.append((self.pvcs, name, "default"))
        return obj

    async def volume(self, name, source):
        obj = await self.pvs.create({"metadata": {"name": name},
                                     "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                              "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                                              **source}})
        self.made.append((self.pvs, name, None))
        return obj

    async def bind(self, pvc, pv):
        """What the PV controller would do: claimRef on the PV, volumeName and the
        bind-completed annotation on the claim, both phases Bound."""
        pvc_name, pv_name = pvc["metadata"]["name"], pv["metadata"]["name"]
        await self.pvs.patch(pv_name, {"spec": {"claimRef": {
            "kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "default", "name": pvc_name,
            "uid": pvc["metadata"]["uid"], "resourceVersion": pvc["metadata"]["resourceVersion"]}}}, "merge")
        await self.pvs.patch(pv_name, {"status": {"phase": "Bound"}}, "merge", subresource="status")
        await self.pvcs.patch(pvc_name, {"metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
                                         "spec": {"volumeName": pv_name}}, "merge", "default")
        await self.pvcs.patch(pvc_name, {"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                                                    "capacity": {"storage": "1Gi"}}}, "merge", "default",
                              subresource="status")

    async def bound_pair(self, name, source):
        pvc = await self.claim(name)
        pv = await self.volume(f"pv-{name}", source)
        await self.bind(pvc, pv)
        return pvc, pv

    async def create_pod(self, obj):
        await self.pods.create(obj)
        self.made.append((self.pods, obj["metadata"]["name"], "default"))

    async def run_pod(self, obj):
        await self.create_pod(obj)
        return await self.running(obj["metadata"]["name"])

    async def running(self, name):
        """(pod, container id) once the pod runs."""
        async def running():
            p = await self.pods.get(name, "default")
            return p if (p.get("status") or {}).get("phase") == "Running" else None
        p = await wait_for(running, 60)
        [ctr] = await self.kl.cri.list_containers(labels={"io.kubernetes.pod.uid": p["metadata"]["uid"]})
        return p, ctr.id

    async def sh(self, cid, script):
        r = await self.kl.cri.exec_sync(cid, ["sh", "-c", script], timeout=10)
        return r.exit_code, r.stdout.decode().strip(), r.stderr.decode()

    async def delete_pod(self, p):
        uid = p["metadata"]["uid"]
        await self.pods.delete(p["metadata"]["name"], "default", grace_period_seconds=0)
        pod_dir = self.data_dir / "pods" / uid

        async def gone():
            return not pod_dir.exists() and not await self.kl.cri.list_pod_sandbox(
                labels={"io.kubernetes.pod.uid": uid})
        await wait_for(gone, 60)

    async def failed_mount(self, pod_name, text):
        async def seen():
            return [e for e in await pod_events(self.c, pod_name) if e[1] == "FailedMount" and text in e[2]]
        return (await wait_for(seen, 30))[0]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(env):
    srv, rt = env["srv"], env["rt"]
    # the kubelet runs as system:node:node-pvc: the Node authorizer must let it read the
    # claims of its pods, their volumes and its own Node; the test itself acts as admin
    ca = pki.load_ca(srv.data_dir)
    cert_pem, key_pem = pki.issue_client_cert(ca, pki.node_user(NODE), [pki.NODES_GROUP], 1)
    node_cfg = KubeConfig(server=srv.url, ca_pem=ca.cert_pem, cert_pem=cert_pem, key_pem=key_pem)
    async with Client.from_kubeconfig(srv.kubeconfig) as c, Client(srv.url, ssl_context(node_cfg)) as node_client:
        kl = Kubelet(node_client, rt.endpoint, node_name=NODE, data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"], sync_frequency=2.0)
        await kl.start()
        cl = Cluster(c, kl, env["data_dir"])
        try:
            yield cl
        finally:
            for h, n, ns in reversed(cl.made):
                try:
                    await (h.delete(n, ns, grace_period_seconds=0) if h is cl.pods else
                           h.delete(n, ns) if ns else h.delete(n))
                except Exception:
                    pass

            await drain_and_stop(kl)


def local_source(path):
    return {"local": {"path": str(path)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}]}]}}}


def mounted_at(path) -> bool:
    return str(path) in cleanup.mounts_under(path)


async def test_local_volume_shared_read_only_and_unmounted(cluster, tmp_path):
    host = tmp_path / "disk"
    host.mkdir()
    await cluster.bound_pair("local-a", local_source(host))
    writer, wid = await cluster.run_pod(pod_spec("writer", [claim_volume("local-a")], DATA_MOUNT))
    assert await cluster.sh(wid, "echo from-writer > /data/f") == (0, "", "")
    assert (host / "f").read_text() == "from-writer\n"
    bind = (cluster.data_dir / "pods" / writer["metadata"]["uid"] / "volumes" /
            "kubernetes.io~local-volume" / "pv-local-a")
    assert mounted_at(bind)

    # a second pod on the same claim, read-only: sees the data, cannot write
    reader, rid = await cluster.run_pod(pod_spec("reader", [claim_volume("local-a", read_only=True)], DATA_MOUNT))
    assert await cluster.sh(rid, "cat /data/f") == (0, "from-writer", "")
    code, _, err = await cluster.sh(rid, "touch /data/nope")
    assert code != 0 and "Read-only file system" in err
    assert not (host / "nope").exists()

    await cluster.delete_pod(writer)
    assert not mounted_at(bind)  # the bind mount went with the pod, the data stays
    assert (host / "f").read_text() == "from-writer\n"
    await cluster.delete_pod(reader)
    assert sorted(os.listdir(host)) == ["f"]


async def test_hostpath_volume(cluster, tmp_path):
    host = tmp_path / "hp"
    await cluster.bound_pair("hp", {"hostPath": {"path": str(host), "type": "DirectoryOrCreate"}})
    p, cid = await cluster.run_pod(pod_spec("hp-writer", [claim_volume("hp")], DATA_MOUNT))
    assert await cluster.sh(cid, "echo hp > /data/g") == (0, "", "")
    assert (host / "g").read_text() == "hp\n"
    r, rid = await cluster.run_pod(pod_spec("hp-reader", [claim_volume("hp", read_only=True)], DATA_MOUNT))
    assert await cluster.sh(rid, "cat /data/g") == (0, "hp", "")
    assert (await cluster.sh(rid, "touch /data/x"))[0] != 0
    await asyncio.gather(cluster.delete_pod(p), cluster.delete_pod(r))
    assert (host / "g").exists()


async def test_unbound_claim_waits_then_starts(cluster, tmp_path):
    host = tmp_path / "late"
    host.mkdir()
    pvc = await cluster.claim("late")
    await cluster.create_pod(pod_spec("waiter", [claim_volume("late")], DATA_MOUNT))
    ev = await cluster.failed_mount("waiter", "Unable to attach or mount volumes")
    assert ev[:3] == ("Warning", "FailedMount",
                      "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], "
                      "failed to process volumes=[data]: error processing PVC default/late: PVC is not bound")
    # the status is written after the event: wait for it
    async def creating():
        p = await cluster.pods.get("waiter", "default")
        cs = (p.get("status") or {}).get("containerStatuses") or []
        return p if cs and cs[0]["state"].get("waiting", {}).get("reason") == "ContainerCreating" else None
    p = await wait_for(creating, 30)
    assert p["status"]["phase"] == "Pending"
    assert await cluster.kl.cri.list_containers(labels={"io.kubernetes.pod.uid": p["metadata"]["uid"]}) == []

    # bound to a PV over a missing local path: the mount itself fails
    pv = await cluster.volume("pv-late", local_source(host / "missing"))
    await cluster.bind(pvc, pv)
    ev = await cluster.failed_mount("waiter", "NewMounter")
    assert ev[2] == (f'MountVolume.NewMounter initialization failed for volume "pv-late" : '
                     f'path "{host / "missing"}" does not exist')

    # the path appears: the retried mount succeeds and the pod starts
    (host / "missing").mkdir()
    p, cid = await cluster.running("waiter")
    assert await cluster.sh(cid, "echo late > /data/h") == (0, "", "")
    assert (host / "missing" / "h").read_text() == "late\n"
    await cluster.delete_pod(p)


async def test_fs_group_for_a_non_root_pod(cluster, tmp_path):
    host = tmp_path / "owned"
    host.mkdir(mode=0o755)
    (host / "old").write_text("root's")
    await cluster.bound_pair("owned", local_source(host))
    cm = await cluster.cms.create({"metadata": {"name": "fsg"}, "data": {"key": "v"}}, "default")
    cluster.made.append((cluster.cms, cm["metadata"]["name"], "default"))
    obj = pod_spec("fsg", [{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "fsg"}},
                           claim_volume("owned")],
                   [{"name": "scratch", "mountPath": "/scratch"}, {"name": "cfg", "mountPath": "/cfg"},
                    {"name": "data", "mountPath": "/data"}],
                   security={"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000]})
    p, cid = await cluster.run_pod(obj)
    code, out, _ = await cluster.sh(cid, "id -u; id -g; id -G")
    uid, gid, groups = out.split("\n")
    assert (code, uid, gid) == (0, "1000", "3000") and {"2000", "4000"} <= set(groups.split())
    # emptyDir: group 2000 with the setgid bit, so what the pod creates is group 2000 too
    assert await cluster.sh(cid, "stat -c '%g %a' /scratch") == (0, "2000 2777", "")
    code, out, _ = await cluster.sh(cid, "mkdir /scratch/d && touch /scratch/d/f && "
                                         "stat -c '%u %g %A' /scratch/d /scratch/d/f")
    d, f = out.split("\n")
    assert code == 0 and d.startswith("1000 2000 d") and d[-4] == "s" and f.startswith("1000 2000 -")
    # configMap files: group 2000, group-readable
    code, out, _ = await cluster.sh(cid, "stat -L -c '%g %a' /cfg/key && cat /cfg/key")
    assert (code, out) == (0, "2000 644\nv")
    # the local PV took the fsGroup on its first mount: the non-root pod may write into it
    assert await cluster.sh(cid, "echo mine > /data/new && cat /data/old") == (0, "root's", "")
    st = os.stat(host / "new")
    assert (st.st_uid, st.st_gid) == (1000, 2000)
    assert os.stat(host).st_gid == 2000 and os.stat(host).st_mode & 0o2070 == 0o2070
    assert os.stat(host / "old").st_gid == 2000
    # an update of the ConfigMap keeps the group
    await cluster.cms.patch("fsg", {"data": {"key": "v2"}}, "merge", "default")

    async def updated():
        return (await cluster.sh(cid, "cat /cfg/key; stat -L -c ' %g' /cfg/key"))[1] == "v2 2000"
    await wait_for(updated, 30)
    await cluster.delete_pod(p)
