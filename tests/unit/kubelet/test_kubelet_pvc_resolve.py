"""The kubelet's readiness checks of claim-backed volumes (upstream's desired-state
populator): a bound claim whose PV points back at it resolves; everything else fails with
upstream's words, and the volume manager reports them as one FailedMount message."""

from __future__ import annotations

import asyncio
import copy
import os

import pytest

from kybernetes.client import Forbidden, NotFound
from kybernetes.kubelet.volumes import VolumeError, VolumeManager, pvc
from kybernetes.kubelet.volumes.base import VolumeContext

POD_UID = "11111111-2222-3333-4444-555555555555"
CLAIM_UID = "aaaaaaaa-0000-0000-0000-000000000001"


class _Resource:
    def __init__(self, store, plural, calls):
        self.store, self.plural, self.calls = store, plural, calls

    async def get(self, name, namespace=None):
        self.calls.append((self.plural, namespace, name))
        obj = self.store.get((self.plural, namespace, name))
        if isinstance(obj, Exception):
            raise obj
        if obj is None:
            raise NotFound({"reason": "NotFound", "code": 404,
                            "message": f'{self.plural} "{name}" not found'})
        return copy.deepcopy(obj)


class FakeClient:
    """Just enough of kybernetes.client.Client: GET of namespaced and cluster objects."""

    def __init__(self):
        self.store = {}
        self.calls = []

    def resource(self, group, version, plural, namespaced=True):
        return _Resource(self.store, plural, self.calls)


def pod(volumes, mounts=None, devices=None):
    c = {"name": "main", "image": "x",
         "volumeMounts": [{"name": "data", "mountPath": "/data"}] if mounts is None else mounts}
    if devices:
        c["volumeDevices"] = devices
    return {"metadata": {"name": "app", "namespace": "default", "uid": POD_UID},
            "spec": {"containers": [c], "volumes": volumes}}


def claim(name="data-claim", phase="Bound", volume="pv-1", uid=CLAIM_UID, **meta):
    return {"metadata": {"name": name, "namespace": "default", "uid": uid, **meta},
            "spec": {"volumeName": volume}, "status": {"phase": phase}}


def volume(name="pv-1", claim_uid=CLAIM_UID, mode=None, **source):
    spec = {"claimRef": {"name": "data-claim", "namespace": "default", "uid": claim_uid} if claim_uid else None,
            **(source or {"local": {"path": "/mnt/x"}})}
    if mode:
        spec["volumeMode"] = mode
    return {"metadata": {"name": name}, "spec": spec}


PVC_VOL = {"name": "data", "persistentVolumeClaim": {"claimName": "data-claim"}}


def resolve(client, p, vol=PVC_VOL, tmp_path=None):
    ctx = VolumeContext(client, p, tmp_path or "/nonexistent")
    return asyncio.run(pvc.resolve(ctx, vol))


def failure(client, p, vol=PVC_VOL):
    with pytest.raises(pvc.ProcessError) as e:
        resolve(client, p, vol)
    return str(e.value)


def test_bound_claim_resolves_with_its_read_only_flag():
    c = FakeClient()
    c.store[("persistentvolumeclaims", "default", "data-claim")] = claim()
    c.store[("persistentvolumes", None, "pv-1")] = volume()
    got = resolve(c, pod([PVC_VOL]))
    assert got.pv["metadata"]["name"] == "pv-1" and not got.read_only
    ro = {"name": "data", "persistentVolumeClaim": {"claimName": "data-claim", "readOnly": True}}
    assert resolve(c, pod([ro]), ro).read_only


@pytest.mark.parametrize("obj, why", [
    (None, 'failed to fetch PVC from API server: persistentvolumeclaims "data-claim" not found'),
    (claim(phase="Pending", volume=""), "PVC is not bound"),
    (claim(phase="Bound", volume=""), "PVC has empty pvc.Spec.VolumeName"),
    (claim(deletionTimestamp="2026-01-01T00:00:00Z"), "PVC is being deleted"),
    (Forbidden({"reason": "Forbidden", "code": 403, "message": "no relationship found"}),
     "failed to fetch PVC from API server: no relationship found"),
])
def test_claim_not_ready(obj, why):
    c = FakeClient()
    c.store[("persistentvolumeclaims", "default", "data-claim")] = obj
    c.store[("persistentvolumes", None, "pv-1")] = volume()
    assert failure(c, pod([PVC_VOL])) == f"error processing PVC default/data-claim: {why}"


@pytest.mark.parametrize("pv, why", [
    (None, 'failed to fetch PV pv-1 from API server: persistentvolumes "pv-1" not found'),
    (volume(claim_uid=None),
     "found PV object pv-1 but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"),
    (volume(claim_uid="other"),
     f"found PV object pv-1 but its pv.Spec.ClaimRef.UID other does not point to claim.UID {CLAIM_UID}"),
])
def test_volume_not_bound_to_the_claim(pv, why):
    c = FakeClient()
    c.store[("persistentvolumeclaims", "default", "data-claim")] = claim()
    c.store[("persistentvolumes", None, "pv-1")] = pv
    assert failure(c, pod([PVC_VOL])) == f"error processing PVC default/data-claim: {why}"


def test_block_mode_and_unsupported_sources():
    c = FakeClient()
    c.store[("persistentvolumeclaims", "default", "data-claim")] = claim()
    c.store[("persistentvolumes", None, "pv-1")] = volume(mode="Block")
    assert failure(c, pod([PVC_VOL])) == "volume data has volumeMode Block, but is specified in volumeMounts"
    p = pod([PVC_VOL], mounts=[], devices=[{"name": "data", "devicePath": "/dev/xvda"}])
    assert "raw block volumes are not supported" in failure(c, p)
    c.store[("persistentvolumes", None, "pv-1")] = volume(nfs={"server": "x", "path": "/"})
    assert failure(c, pod([PVC_VOL])) == \
        'failed to get Plugin from volumeSpec for volume "pv-1" err=no volume plugin matched'


def test_ephemeral_claim_must_belong_to_the_pod():
    c = FakeClient()
    eph = {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}
    owned = claim(name="app-scratch", ownerReferences=[{"uid": POD_UID, "controller": True, "kind": "Pod"}])
    c.store[("persistentvolumeclaims", "default", "app-scratch")] = claim(name="app-scratch")
    c.store[("persistentvolumes", None, "pv-1")] = volume()
    p = pod([eph], mounts=[{"name": "scratch", "mountPath": "/s"}])
    assert failure(c, p, eph) == "PVC default/app-scratch was not created for pod default/app (pod is not owner)"
    c.store[("persistentvolumeclaims", "default", "app-scratch")] = owned
    assert resolve(c, p, eph).pvc["metadata"]["name"] == "app-scratch"


def test_manager_reports_unprocessed_volumes_and_resolves_once(tmp_path):
    c = FakeClient()
    c.store[("persistentvolumeclaims", "default", "data-claim")] = claim(phase="Pending", volume="")
    vols = [PVC_VOL, {"name": "other", "persistentVolumeClaim": {"claimName": "missing"}}]
    p = pod(vols)
    vm = VolumeManager(c, tmp_path / "pods")
    vm.objects.ttl = 0  # every sync reads the claim afresh (the node-wide cache lives 1 s)
    with pytest.raises(VolumeError) as e:
        asyncio.run(vm.setup(p))
    assert str(e.value) == (
        "Unable to attach or mount volumes: unmounted volumes=[data other], unattached volumes=[], "
        "failed to process volumes=[data other]: error processing PVC default/data-claim: PVC is not bound; "
        'error processing PVC default/missing: failed to fetch PVC from API server: '
        'persistentvolumeclaims "missing" not found')
    # bound now, to a hostPath PV; the second claim still fails on its own
    c.store[("persistentvolumeclaims", "default", "data-claim")] = claim()
    c.store[("persistentvolumes", None, "pv-1")] = volume(hostPath={"path": str(tmp_path)})
    with pytest.raises(VolumeError) as e:
        asyncio.run(vm.setup(p))
    assert "unmounted volumes=[other]" in str(e.value)
    # a resolved claim is not fetched again, even if the claim is deleted later
    mounted = asyncio.run(vm.setup(pod([PVC_VOL])))
    c.calls.clear()
    c.store.clear()
    mounted = asyncio.run(vm.setup(pod([PVC_VOL])))
    assert c.calls == [] and mounted["data"].path == tmp_path and not mounted["data"].read_only
    asyncio.run(vm.teardown(POD_UID))
    assert vm.claims == {}


def test_hostpath_volume_type_check_names_the_pv(tmp_path):
    c = FakeClient()
    c.store[("persistentvolumeclaims", "default", "data-claim")] = claim()
    c.store[("persistentvolumes", None, "pv-1")] = volume(hostPath={"path": str(tmp_path / "nope"), "type": "Directory"})
    vm = VolumeManager(c, tmp_path / "pods")
    with pytest.raises(VolumeError) as e:
        asyncio.run(vm.setup(pod([PVC_VOL])))
    assert str(e.value) == (f'MountVolume.SetUp failed for volume "pv-1" : hostPath type check failed: '
                            f'{tmp_path / "nope"} is not a directory')


def test_local_path_must_exist(tmp_path):
    c = FakeClient()
    c.store[("persistentvolumeclaims", "default", "data-claim")] = claim()
    c.store[("persistentvolumes", None, "pv-1")] = volume(local={"path": str(tmp_path / "gone")})
    vm = VolumeManager(c, tmp_path / "pods")
    with pytest.raises(VolumeError) as e:
        asyncio.run(vm.setup(pod([PVC_VOL])))
    assert str(e.value) == (f'MountVolume.NewMounter initialization failed for volume "pv-1" : '
                            f'path "{tmp_path / "gone"}" does not exist')


def test_node_affinity_of_the_volume_is_checked(tmp_path):
    c = FakeClient()
    c.store[("persistentvolumeclaims", "default", "data-claim")] = claim()
    pv = volume(local={"path": str(tmp_path)})
    pv["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a"]}]}]}}
    c.store[("persistentvolumes", None, "pv-1")] = pv
    c.store[("nodes", None, "node-b")] = {"metadata": {"name": "node-b", "labels": {"kubernetes.io/hostname": "node-b"}}}
    vm = VolumeManager(c, tmp_path / "pods", node_name="node-b")
    with pytest.raises(VolumeError) as e:
        asyncio.run(vm.setup(pod([PVC_VOL])))
    assert str(e.value) == 'MountVolume.NodeAffinity check failed for volume "pv-1" : no matching NodeSelectorTerms'
    assert vm.claims[POD_UID] == {}  # checked again on the next sync


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_local_bind_mount_read_only_by_mount_option_and_teardown(tmp_path):
    from kybernetes.kubelet import runtime_cleanup as cleanup
    host = tmp_path / "disk"
    host.mkdir()
    (host / "keep").write_text("k")
    c = FakeClient()
    c.store[("persistentvolumeclaims", "default", "data-claim")] = claim()
    pv = volume(local={"path": str(host)})
    pv["spec"]["mountOptions"] = ["ro"]
    c.store[("persistentvolumes", None, "pv-1")] = pv
    vm = VolumeManager(c, tmp_path / "pods")
    p = pod([PVC_VOL])
    p["spec"]["securityContext"] = {"fsGroup": 2000}
    try:
        [m] = asyncio.run(vm.setup(p)).values()
        assert m.path == tmp_path / "pods" / POD_UID / "volumes" / "kubernetes.io~local-volume" / "pv-1"
        assert str(m.path) in cleanup.mounts_under(m.path) and not m.read_only
        assert (m.path / "keep").read_text() == "k"
        with pytest.raises(OSError):
            (m.path / "new").write_text("x")
        assert os.stat(host).st_gid != 2000  # a read-only volume is not re-owned
        asyncio.run(vm.setup(p))  # a second sync leaves the mount alone
        assert cleanup.mounts_under(m.path) == [str(m.path)]
    finally:
        asyncio.run(vm.teardown(POD_UID))
    assert not cleanup.mounts_under(tmp_path) and not (tmp_path / "pods" / POD_UID).exists()
    assert (host / "keep").read_text() == "k"
