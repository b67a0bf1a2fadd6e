"""Image pulls by the kubelet, against a real `kyb server` and containerd pulling from two
local registries (one htpasswd-protected) inside the test's network namespace: pull
secrets (read by the kubelet as its node identity), ErrImagePull then ImagePullBackOff
with upstream's events and kubectl's STATUS, and back-off retries that start the pod
once the image exists."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import uuid

import pytest

from fixtures.images import BUSYBOX_REF, LocalRegistry, busybox_image, write_busybox_archive
from fixtures.server import start_server
from kl_helpers import drain_and_stop, pod_events, wait_for
from kybernetes.auth import pki
from kybernetes.client import Client
from kybernetes.client.kubeconfig import KubeConfig, ssl_context
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.containerd import ContainerdProcess
from kybernetes.kubelet.kubelet import Kubelet
from kybernetes.kubelet.runtime_netns import bridge_conflist, create_netns, delete_netns, write_conflist

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

SUBNET = "10.88.79.0/24"
NODE = "node-pull"
USER = ("kyb", "s3cret-pass")


@pytest.fixture(scope="module")
def penv(tmp_path_factory):
    """A server, and containerd with both registries in a network namespace of its own."""
    name = f"kyb-pl-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    srv = start_server(tmp_path_factory.mktemp("plsrv"), extra=("--disable-scheduler",))
    data_dir = tmp_path_factory.mktemp("pl")
    netns = rt = None
    regs: list[LocalRegistry] = []
    try:
        netns = create_netns(name)
        regs.append(LocalRegistry(data_dir / "registry", port=5000, netns=str(netns)).start())
        regs.append(LocalRegistry(data_dir / "registry-auth", port=5001, netns=str(netns),
                                  users={USER[0]: USER[1]}).start())
        rt = ContainerdProcess(data_dir / "node", netns=netns, offline=True,
                               insecure_registries=[r.host for r in regs])
        write_conflist(rt.cni_conf_dir, bridge_conflist("kyb-pl", "kybpl0", SUBNET,
                                                        ipam_dir=rt.data_dir / "cni" / "ipam"))
        write_busybox_archive(rt.import_dir / "busybox.oci.tar", BUSYBOX_REF)
        asyncio.run(rt.start())
        yield {"srv": srv, "rt": rt, "name": name, "data_dir": data_dir, "registry": regs[0], "auth_registry": regs[1]}
    finally:
        if rt is not None:
            asyncio.run(rt.stop(remove_pods=True))
            rt.cleanup_leftovers()
        cleanup.remove_cgroup(name)
        for r in regs:
            r.stop()
        if netns is not None:
            delete_netns(name)
        srv.stop()
        leaked = cleanup.mounts_under(data_dir)
        cleanup.unmount_under(data_dir)
    assert not cleanup.cgroup_dirs(name)
    assert not leaked


@contextlib.asynccontextmanager
async def node_kubelet(penv):
    """A kubelet acting as system:node:<NODE> (so the Node authorizer decides which
    secrets it may read), with a 1 s image pull back-off; yields (admin client, kubelet)."""
    srv, rt = penv["srv"], penv["rt"]
    ca = pki.load_ca(srv.data_dir)
    cert_pem, key_pem = pki.issue_client_cert(ca, pki.node_user(NODE), [pki.NODES_GROUP], 1)
    node_cfg = KubeConfig(server=srv.url, ca_pem=ca.cert_pem, cert_pem=cert_pem, key_pem=key_pem)
    async with Client.from_kubeconfig(srv.kubeconfig) as admin, Client(srv.url, ssl_context(node_cfg)) as nc:
        kl = Kubelet(nc, rt.endpoint, node_name=NODE, data_dir=penv["data_dir"], node_ip="10.88.79.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=penv["name"], image_pull_backoff=1.0)
        await kl.start()
        pods = admin.resource("", "v1", "pods", namespaced=True)
        try:
            yield admin, kl
        finally:
            for p in (await pods.list("default"))["items"]:
                await pods.delete(p["metadata"]["name"], "default", grace_period_seconds=0)

            await drain_and_stop(kl)


def pod(name, image, secrets=()):
    spec = {"nodeName": NODE, "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": ["sleep", "3600"]}]}
    if secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in secrets]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


class Waiting:
    """Every waiting (reason, message) of a pod's container as a watch delivers it."""

    def __init__(self, pods, name):
        self.seen: list[tuple[str, str]] = []
        self.last: dict = {}
        self.task = asyncio.ensure_future(self._run(pods, name))

    async def _run(self, pods, name):
        while True:
            try:
                async with pods.watch("default", name=name, timeout_seconds=60) as w:
                    async for _, p in w:
                        self.last = p
                        for cs in (p.get("status") or {}).get("containerStatuses") or []:
                            wt = (cs.get("state") or {}).get("waiting")
                            if wt and (not self.seen or self.seen[-1] != (wt.get("reason"), wt.get("message", ""))):
                                self.seen.append((wt.get("reason"), wt.get("message", "")))
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)

    def reasons(self) -> list[str]:
        return [r for r, _ in self.seen]

    async def close(self):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def running(pods, name):
    p = await pods.get(name, "default")
    st = p.get("status") or {}
    cs = (st.get("containerStatuses") or [{}])[0]
    return p if st.get("phase") == "Running" and "running" in (cs.get("state") or {}) else None


async def kubectl_status(srv, name) -> str:
    out = (await asyncio.to_thread(srv.kubectl, "get", "pod", name, "--no-headers")).stdout.split()
    return out[2] if len(out) > 2 else ""


async def test_pull_secrets_and_pull_backoff(penv):
    srv, reg = penv["srv"], penv["auth_registry"]
    ok_ref = await asyncio.to_thread(reg.push, "kyb/private", "v1", busybox_image(marker="private-v1"))
    denied_ref = await asyncio.to_thread(reg.push, "kyb/private", "v2", busybox_image(marker="private-v2"))
    async with node_kubelet(penv) as (admin, kl):
        pods = admin.resource("", "v1", "pods", namespaced=True)
        secrets = admin.resource("", "v1", "secrets", namespaced=True)
        auths = {reg.host: {"username": USER[0], "password": USER[1],
                            "auth": base64.b64encode(f"{USER[0]}:{USER[1]}".encode()).decode()},
                 # a wrong credential for a more specific path of the same registry is tried first
                 f"{reg.host}/kyb/private": {"username": USER[0], "password": "wrong"}}
        await secrets.create({"metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson",
                              "data": {".dockerconfigjson": base64.b64encode(
                                  json.dumps({"auths": auths}).encode()).decode()}}, "default")

        # with the pull secret: pulled (second credential) and running
        await pods.create(pod("private-ok", ok_ref, secrets=["regcred"]), "default")
        await wait_for(lambda: running(pods, "private-ok"), 60)

        # the service account's imagePullSecrets, merged into the pod by admission (policy
        # Always: the image is already here, and must be pulled again with them)
        sas = admin.resource("", "v1", "serviceaccounts", namespaced=True)
        await sas.create({"metadata": {"name": "puller"}, "imagePullSecrets": [{"name": "regcred"}]}, "default")
        via_sa = pod("via-sa", ok_ref)
        via_sa["spec"]["serviceAccountName"] = "puller"
        via_sa["spec"]["containers"][0]["imagePullPolicy"] = "Always"
        created = await pods.create(via_sa, "default")
        assert created["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
        await wait_for(lambda: running(pods, "via-sa"), 60)

        # without a usable secret (the one named does not exist): 401 from the registry
        watch = Waiting(pods, "denied")
        await pods.create(pod("denied", denied_ref, secrets=["nope"]), "default")
        try:
            async def backing_off():
                return "ErrImagePull" in watch.reasons() and "ImagePullBackOff" in watch.reasons()
            await wait_for(backing_off, 60)
            pulls = [r for r in watch.reasons() if r in ("ErrImagePull", "ImagePullBackOff")]
            assert pulls[0] == "ErrImagePull"  # the first failure, then the back-off
            first = next(m for r, m in watch.seen if r == "ErrImagePull")
            assert first.startswith("rpc error: code = ") and ("401" in first or "nauthorized" in first)
            backoff = next(m for r, m in watch.seen if r == "ImagePullBackOff")
            assert backoff.startswith(f'Back-off pulling image "{denied_ref}": ErrImagePull: rpc error: code = ')
            assert (watch.last.get("status") or {}).get("phase") == "Pending"
            assert await wait_for(lambda: _status_is(srv, "denied", "ImagePullBackOff"), 30)
        finally:
            await watch.close()

        want = {("Warning", "FailedToRetrieveImagePullSecret",
                 "Unable to retrieve some image pull secrets (nope); attempting to pull the image may not succeed."),
                ("Normal", "Pulling", f'Pulling image "{denied_ref}"'),
                ("Warning", "Failed", "Error: ErrImagePull"),
                ("Normal", "BackOff", f'Back-off pulling image "{denied_ref}"'),
                ("Warning", "Failed", "Error: ImagePullBackOff")}

        async def denied_events():
            evs = await pod_events(admin, "denied")
            have = {(t, r, m) for t, r, m, _, _ in evs}
            failed = [m for t, r, m, _, _ in evs if r == "Failed" and m.startswith(f'Failed to pull image "{denied_ref}": ')]
            return evs if want <= have and failed else None
        evs = await wait_for(denied_events, 30)
        assert all(f == "spec.containers{main}" for t, r, m, f, _ in evs if r in ("Pulling", "Failed", "BackOff"))

        for name in ("private-ok", "via-sa"):
            async def ok_events():
                evs = await pod_events(admin, name)
                return [m for t, r, m, _, _ in evs if r == "Pulled"] or None
            pulled = (await wait_for(ok_events, 30))[0]
            assert pulled.startswith(f'Successfully pulled image "{ok_ref}" in ')
            assert "including waiting). Image size: " in pulled
            assert int(pulled.rsplit("Image size: ", 1)[1].split()[0]) > 0

        # the node may read a secret only while one of its pods names it
        node_secrets = kl.client.resource("", "v1", "secrets", namespaced=True)
        assert (await node_secrets.get("regcred", "default"))["metadata"]["name"] == "regcred"
        await secrets.create({"metadata": {"name": "unrelated"}, "type": "Opaque", "data": {}}, "default")
        from kybernetes.client import Forbidden
        with pytest.raises(Forbidden):
            await node_secrets.get("unrelated", "default")
        await secrets.delete("unrelated", "default")
        await secrets.delete("regcred", "default")
        await sas.delete("puller", "default")


async def _status_is(srv, name, want):
    return await kubectl_status(srv, name) == want


async def test_pull_backoff_retries_until_the_image_exists(penv):
    reg = penv["registry"]
    ref = f"{reg.host}/kyb/late:v1"
    async with node_kubelet(penv) as (admin, kl):
        pods = admin.resource("", "v1", "pods", namespaced=True)
        watch = Waiting(pods, "late")
        await pods.create(pod("late", ref), "default")
        try:
            async def backing_off():
                return "ImagePullBackOff" in watch.reasons()
            await wait_for(backing_off, 60)
            first = next(m for r, m in watch.seen if r == "ErrImagePull")
            assert "not found" in first
            await asyncio.to_thread(reg.push, "kyb/late", "v1", busybox_image(marker="late"))
            p = await wait_for(lambda: running(pods, "late"), 60)
        finally:
            await watch.close()
        cs = p["status"]["containerStatuses"][0]
        assert cs["restartCount"] == 0 and cs["imageID"].startswith(f"{reg.host}/kyb/late@sha256:")
        evs = await pod_events(admin, "late")
        assert sum(c for t, r, m, _, c in evs if r == "Pulling") >= 2  # retried after the back-off


async def test_restart_whose_image_is_gone_waits_with_err_image_pull(penv):
    """A container restart that must pull (policy Always) and cannot: the status shows the
    image reason as waiting, with the exited instance as lastState."""
    reg = penv["registry"]
    img = busybox_image(marker="gone")
    ref = await asyncio.to_thread(reg.push, "kyb/gone", "v1", img)
    async with node_kubelet(penv) as (admin, kl):
        pods = admin.resource("", "v1", "pods", namespaced=True)
        p = pod("gone", ref)
        c = p["spec"]["containers"][0]
        c["imagePullPolicy"] = "Always"
        c["command"] = ["sh", "-c", "while [ ! -e /tmp/stop ]; do sleep 0.1; done; exit 3"]
        await pods.create(p, "default")
        await wait_for(lambda: running(pods, "gone"), 60)
        st, _, _ = await asyncio.to_thread(reg._call, reg._request, "DELETE",
                                           f"/v2/kyb/gone/manifests/{img.manifest.digest}")
        assert st == 202
        cid = (await pods.get("gone", "default"))["status"]["containerStatuses"][0]["containerID"]
        await kl.cri.exec_sync(cid.split("://")[1], ["touch", "/tmp/stop"], timeout=10)

        async def waiting_on_image():
            cs = (await pods.get("gone", "default"))["status"]["containerStatuses"][0]
            w = (cs.get("state") or {}).get("waiting") or {}
            return cs if w.get("reason") in ("ErrImagePull", "ImagePullBackOff") else None
        cs = await wait_for(waiting_on_image, 60)
        assert cs["lastState"]["terminated"]["exitCode"] == 3
        assert cs["lastState"]["terminated"]["containerID"] == cid
        assert "not found" in cs["state"]["waiting"]["message"]
