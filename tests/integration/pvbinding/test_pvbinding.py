"""PersistentVolume binding, reclaim and in-use protection against a real `kyb server`
(its controller manager runs the persistent-volume binder and the PV/PVC protection
controllers; the StorageObjectInUseProtection admission plugin is in its chain).

Each test uses its own storage class names, so the cluster-scoped volumes of one test are
never candidates for another's claims.  Waits are watch-driven (no sleeps)."""

from __future__ import annotations

import re
from typing import Any, Optional

import pytest

from fixtures.waits import wait_until
from kybernetes.client import NotFound
from kybernetes.client.errors import Invalid

Obj = dict[str, Any]
PVS = ("", "v1", "persistentvolumes")
PVCS = ("", "v1", "persistentvolumeclaims")
EVENTS = ("", "v1", "events")
PODS = ("", "v1", "pods")


def pv(name: str, size: str, *, cls: str = "", modes=("ReadWriteOnce",), mode: str = "Filesystem",
       policy: str = "Retain", labels: Optional[dict] = None, claim_ref: Optional[Obj] = None,
       local: bool = False) -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": list(modes), "volumeMode": mode,
                 "persistentVolumeReclaimPolicy": policy, "storageClassName": cls}
    if local:
        spec["local"] = {"path": "/mnt/disks/" + name}
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}]}}
    else:
        spec["hostPath"] = {"path": "/data/" + name}
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec}


def pvc(name: str, size: str, *, cls: Optional[str] = "", modes=("ReadWriteOnce",), mode: str = "Filesystem",
        selector: Optional[Obj] = None, volume_name: str = "") -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, "volumeMode": mode}
    if cls is not None:
        spec["storageClassName"] = cls
    if selector is not None:
        spec["selector"] = selector
    if volume_name:
        spec["volumeName"] = volume_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


class Api:
    def __init__(self, client: Any, ns: str) -> None:
        self.client, self.ns = client, ns
        self.pvs = client.resource(*PVS)
        self.pvcs = client.resource(*PVCS)
        self.events = client.resource(*EVENTS)
        self.pods = client.resource(*PODS)
        self.created_pvs: list[str] = []

    async def wait(self, fn, what: str, timeout: float = 20.0) -> Any:
        watched = [(PVS, None), (PVCS, self.ns), (EVENTS, self.ns), (EVENTS, "default"), (PODS, self.ns)]
        return await wait_until(self.client, watched, fn, timeout, what)

    async def create_pv(self, obj: Obj, *, available: bool = True) -> Obj:
        out = await self.pvs.create(obj)
        self.created_pvs.append(obj["metadata"]["name"])
        if available:  # a claim only binds an Available volume (or one pre-bound to it)
            out = await self.pv_phase(obj["metadata"]["name"], "Available")
        return out

    async def pv_phase(self, name: str, phase: str) -> Obj:
        async def check():
            try:
                v = await self.pvs.get(name)
            except NotFound:
                return None
            return v if (v.get("status") or {}).get("phase") == phase else None
        return await self.wait(check, f"volume {name} {phase}")

    async def pvc_phase(self, name: str, phase: str) -> Obj:
        async def check():
            c = await self.pvcs.get(name, self.ns)
            return c if (c.get("status") or {}).get("phase") == phase else None
        return await self.wait(check, f"claim {name} {phase}")

    async def event(self, name: str, reason: str, namespace: Optional[str] = None) -> Obj:
        ns = namespace or self.ns

        async def check():
            for e in (await self.events.list(ns))["items"]:
                if e["involvedObject"].get("name") == name and e["reason"] == reason:
                    return e
            return None
        return await self.wait(check, f"event {reason} on {name}")

    async def gone(self, handle: Any, name: str, namespace: Optional[str] = None) -> None:
        async def check():
            try:
                await handle.get(name, namespace)
            except NotFound:
                return True
            return None
        await self.wait(check, f"{name} gone")

    async def cleanup(self) -> None:
        for name in self.created_pvs:
            try:  # deleted first, so the protection controller does not put the finalizer back
                await self.pvs.delete(name)
                await self.pvs.patch(name, {"metadata": {"finalizers": None}})
            except NotFound:
                pass


@pytest.fixture
async def api(client, namespace):
    a = Api(client, namespace)
    yield a
    await a.cleanup()


def assert_bound(volume: Obj, claim: Obj, *, by_controller: bool, claim_by_controller: bool = True) -> None:
    ref = volume["spec"]["claimRef"]
    cm = claim["metadata"]
    assert ref["kind"] == "PersistentVolumeClaim" and ref["apiVersion"] == "v1"
    assert (ref["namespace"], ref["name"], ref["uid"]) == (cm["namespace"], cm["name"], cm["uid"])
    assert ref["resourceVersion"]
    assert volume["status"]["phase"] == "Bound"
    vanns = volume["metadata"].get("annotations") or {}
    assert (vanns.get("pv.kubernetes.io/bound-by-controller") == "yes") is by_controller
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    canns = cm.get("annotations") or {}
    assert canns["pv.kubernetes.io/bind-completed"] == "yes"
    assert (canns.get("pv.kubernetes.io/bound-by-controller") == "yes") is claim_by_controller
    assert claim["status"]["phase"] == "Bound"
    assert claim["status"]["accessModes"] == volume["spec"]["accessModes"]
    assert claim["status"]["capacity"] == volume["spec"]["capacity"]


async def test_static_binding_by_capacity_class_selector_modes(api, namespace):
    ns = namespace
    c1, c2 = f"a-{ns}", f"b-{ns}"
    for v in (pv(f"{ns}-small", "1Gi", cls=c1), pv(f"{ns}-mid", "3Gi", cls=c1), pv(f"{ns}-big", "10Gi", cls=c1),
              pv(f"{ns}-other", "2Gi", cls=c2), pv(f"{ns}-block", "2Gi", cls=c1, mode="Block"),
              pv(f"{ns}-rox", "2Gi", cls=c1, modes=("ReadOnlyMany",)),
              pv(f"{ns}-gold", "20Gi", cls=c1, labels={"tier": "gold"}),
              pv(f"{ns}-multi", "2500Mi", cls=c1, modes=("ReadWriteOnce", "ReadOnlyMany"))):
        await api.create_pv(v)
    # admission put the protection finalizer on the volume
    assert (await api.pvs.get(f"{ns}-mid"))["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]

    await api.pvcs.create(pvc("fit", "2Gi", cls=c1), ns)
    claim = await api.pvc_phase("fit", "Bound")
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    # the smallest fitting volume among those with the fewest extra access modes
    assert claim["spec"]["volumeName"] == f"{ns}-mid"
    assert_bound(await api.pv_phase(f"{ns}-mid", "Bound"), claim, by_controller=True)
    lpt = (await api.pvs.get(f"{ns}-mid"))["status"]["lastPhaseTransitionTime"]
    assert lpt.endswith("Z")

    await api.pvcs.create(pvc("sel", "1Gi", cls=c1, selector={"matchLabels": {"tier": "gold"}}), ns)
    assert (await api.pvc_phase("sel", "Bound"))["spec"]["volumeName"] == f"{ns}-gold"
    await api.pvcs.create(pvc("cls", "1Gi", cls=c2), ns)
    assert (await api.pvc_phase("cls", "Bound"))["spec"]["volumeName"] == f"{ns}-other"
    await api.pvcs.create(pvc("blk", "1Gi", cls=c1, mode="Block"), ns)
    assert (await api.pvc_phase("blk", "Bound"))["spec"]["volumeName"] == f"{ns}-block"
    await api.pvcs.create(pvc("ro", "1Gi", cls=c1, modes=("ReadOnlyMany",)), ns)
    # ROX alone is the closest set of modes; the RWO+ROX volume is a later choice
    assert (await api.pvc_phase("ro", "Bound"))["spec"]["volumeName"] == f"{ns}-rox"
    await api.pvcs.create(pvc("ro2", "1Gi", cls=c1, modes=("ReadOnlyMany",)), ns)
    assert (await api.pvc_phase("ro2", "Bound"))["spec"]["volumeName"] == f"{ns}-multi"
    await api.pvcs.create(pvc("huge", "50Gi", cls=c1), ns)
    await api.event("huge", "ProvisioningFailed")  # a class is set, but no volume is that big
    await api.pvcs.create(pvc("noclass", "50Ti"), ns)
    ev = await api.event("noclass", "FailedBinding")
    assert ev["type"] == "Normal" and ev["reportingComponent"] == "persistentvolume-controller"
    assert ev["message"] == "no persistent volumes available for this claim and no storage class is set"
    assert (await api.pvcs.get("noclass", ns))["status"]["phase"] == "Pending"


async def test_prebound_volume_and_prebound_claim(api, namespace):
    ns = namespace
    cls = f"p-{ns}"
    await api.create_pv(pv(f"{ns}-small", "1Gi", cls=cls))
    # reserved for claim "want": stays Available until that claim exists, then wins over a smaller fit
    await api.create_pv(pv(f"{ns}-reserved", "8Gi", cls=cls, claim_ref={"namespace": ns, "name": "want"}))
    await api.pvcs.create(pvc("want", "1Gi", cls=cls), ns)
    claim = await api.pvc_phase("want", "Bound")
    assert_bound(await api.pv_phase(f"{ns}-reserved", "Bound"), claim, by_controller=False)
    assert (await api.pvs.get(f"{ns}-small"))["status"]["phase"] == "Available"

    # a claim naming its volume: bound to it, and the claim carries no bound-by-controller
    await api.create_pv(pv(f"{ns}-named", "1Gi", cls=cls))
    await api.pvcs.create(pvc("named", "1Gi", cls=cls, volume_name=f"{ns}-named"), ns)
    claim = await api.pvc_phase("named", "Bound")
    assert_bound(await api.pv_phase(f"{ns}-named", "Bound"), claim, by_controller=True, claim_by_controller=False)

    # naming a volume that does not fit, or one bound to another claim: Pending with a Warning
    await api.pvcs.create(pvc("toobig", "2Gi", cls=cls, volume_name=f"{ns}-small"), ns)
    ev = await api.event("toobig", "VolumeMismatch")
    assert ev["type"] == "Warning"
    assert ev["message"] == f'Cannot bind to requested volume "{ns}-small": requested PV is too small'
    await api.pvcs.create(pvc("taken", "1Gi", cls=cls, volume_name=f"{ns}-named"), ns)
    ev = await api.event("taken", "FailedBinding")
    assert ev["type"] == "Warning" and ev["message"] == f'volume "{ns}-named" already bound to a different claim.'
    for name in ("toobig", "taken"):
        assert (await api.pvcs.get(name, ns))["status"]["phase"] == "Pending"


async def test_wait_for_first_consumer_binds_what_the_scheduler_chose(api, client, namespace):
    ns = namespace
    cls = f"local-{ns}"
    sc = client.resource("storage.k8s.io", "v1", "storageclasses")
    await sc.create({"metadata": {"name": cls}, "provisioner": "kubernetes.io/no-provisioner",
                     "volumeBindingMode": "WaitForFirstConsumer"})
    try:
        # a local volume must say which node holds it
        bad = pv(f"{ns}-nolocal", "1Gi", cls=cls, local=True)
        del bad["spec"]["nodeAffinity"]
        with pytest.raises(Invalid) as e:
            await api.pvs.create(bad)
        assert "spec.nodeAffinity: Required value: Local volume requires node affinity" in str(e.value)

        await api.create_pv(pv(f"{ns}-local", "5Gi", cls=cls, local=True))
        claim = await api.pvcs.create(pvc("data", "1Gi", cls=cls), ns)
        ev = await api.event("data", "WaitForFirstConsumer")
        assert ev["type"] == "Normal" and ev["message"] == "waiting for first consumer to be created before binding"
        assert (await api.pvcs.get("data", ns))["status"]["phase"] == "Pending"
        assert (await api.pvs.get(f"{ns}-local"))["status"]["phase"] == "Available"

        # the scheduler's VolumeBinding plugin binds the volume it chose for the pod's node
        vol = await api.pvs.get(f"{ns}-local")
        vol["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns,
                                   "name": "data", "uid": claim["metadata"]["uid"],
                                   "resourceVersion": claim["metadata"]["resourceVersion"]}
        vol["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bound-by-controller"] = "yes"
        await api.pvs.update(vol)
        claim = await api.pvc_phase("data", "Bound")
        assert_bound(await api.pv_phase(f"{ns}-local", "Bound"), claim, by_controller=True)
    finally:
        await sc.delete(cls)


async def test_released_volumes_follow_their_reclaim_policy(api, kyb, namespace, tmp_path):
    ns = namespace
    cls = f"r-{ns}"
    vol_dir = tmp_path / "vol"
    (vol_dir / "sub").mkdir(parents=True)
    (vol_dir / "sub" / "data").write_text("x")
    for name, size, policy in (("keep", "1Gi", "Retain"), ("drop", "2Gi", "Delete"), ("scrub", "3Gi", "Recycle"),
                               ("host", "4Gi", "Delete"), ("tmp", "5Gi", "Delete")):
        vol = pv(f"{ns}-{name}", size, cls=cls, policy=policy, local=name == "drop")
        if name == "tmp":
            vol["spec"]["hostPath"]["path"] = str(vol_dir)
        await api.create_pv(vol)
        await api.pvcs.create(pvc(name, size, cls=cls), ns)
        await api.pvc_phase(name, "Bound")
    before = (await api.pvs.get(f"{ns}-keep"))["status"]["lastPhaseTransitionTime"]

    for name in ("keep", "drop", "scrub", "host", "tmp"):
        await api.pvcs.delete(name, ns)  # unused: the protection controller lets it go
        await api.gone(api.pvcs, name, ns)

    kept = await api.pv_phase(f"{ns}-keep", "Released")
    assert kept["spec"]["claimRef"]["name"] == "keep"  # Retain: the data and the pointer stay
    assert kept["status"]["lastPhaseTransitionTime"] >= before

    failed = await api.pv_phase(f"{ns}-drop", "Failed")
    msg = f'error getting deleter volume plugin for volume "{ns}-drop": no deletable volume plugin matched'
    assert failed["status"]["message"] == msg
    ev = await api.event(f"{ns}-drop", "VolumeFailedDelete", "default")
    assert ev["type"] == "Warning" and ev["message"] == msg and ev["involvedObject"]["kind"] == "PersistentVolume"

    described = kyb.kubectl("describe", "pv", f"{ns}-drop").stdout
    assert re.search(r"^Status:\s+Failed$", described, re.M) and "VolumeFailedDelete" in described
    assert "persistentvolume-controller" in described

    failed = await api.pv_phase(f"{ns}-scrub", "Failed")
    ev = await api.event(f"{ns}-scrub", "VolumeFailedRecycle", "default")
    assert ev["type"] == "Warning" and ev["message"] == "No recycler plugin found for the volume!"

    # hostPath's deleter (for single-node test clusters) only removes directories under /tmp
    ev = await api.event(f"{ns}-host", "VolumeFailedDelete", "default")
    assert ev["message"] == f"host_path deleter only supports /tmp/.+ but received provided /data/{ns}-host"
    await api.gone(api.pvs, f"{ns}-tmp")
    assert not vol_dir.exists()

    # a Released volume is not Bound: deleting it is not held up
    await api.pvs.delete(f"{ns}-keep")
    await api.gone(api.pvs, f"{ns}-keep")


async def test_claim_whose_volume_vanished_is_lost(api, namespace):
    ns = namespace
    cls = f"l-{ns}"
    await api.create_pv(pv(f"{ns}-v", "1Gi", cls=cls))
    await api.pvcs.create(pvc("c", "1Gi", cls=cls), ns)
    await api.pvc_phase("c", "Bound")
    # a Bound volume is protected: take its finalizer away (once it is being deleted, so
    # the protection controller does not put it back) to lose it for real
    await api.pvs.delete(f"{ns}-v")
    await api.pvs.patch(f"{ns}-v", {"metadata": {"finalizers": None}})
    claim = await api.pvc_phase("c", "Lost")
    assert claim["spec"]["volumeName"] == f"{ns}-v"
    ev = await api.event("c", "ClaimLost")
    assert ev["type"] == "Warning"
    assert ev["message"] == "Bound claim has lost its PersistentVolume. Data on the volume is lost!"


async def test_in_use_claims_and_bound_volumes_are_protected(api, kyb, namespace):
    ns = namespace
    cls = f"u-{ns}"
    await api.create_pv(pv(f"{ns}-used", "1Gi", cls=cls))
    await api.pvcs.create(pvc("used", "1Gi", cls=cls), ns)
    await api.pvc_phase("used", "Bound")
    # a scheduled pod naming the claim (no kubelet here: the node is only a name)
    await api.pods.create({"metadata": {"name": "user"}, "spec": {
        "nodeName": "node-x", "containers": [{"name": "c", "image": "busybox:1"}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "used"}}]}}, ns)

    out = kyb.kubectl("get", "pv,pvc", "-n", ns).stdout
    [pv_row] = [ln for ln in out.splitlines() if ln.startswith(f"persistentvolume/{ns}-used")]
    assert "Bound" in pv_row.split() and f"{ns}/used" in pv_row.split()
    [pvc_row] = [ln for ln in out.splitlines() if ln.startswith("persistentvolumeclaim/used")]
    assert pvc_row.split()[1:5] == ["Bound", f"{ns}-used", "1Gi", "RWO"]

    # a bound volume being deleted waits; so does a claim in use
    await api.pvs.delete(f"{ns}-used")
    await api.pvcs.delete("used", ns)
    # the controllers work their queues in order: once later unused objects are gone,
    # the protected ones have been looked at and kept
    await api.create_pv(pv(f"{ns}-spare", "1Gi", cls=f"none-{ns}"))
    await api.pvcs.create(pvc("spare", "1Gi", cls=f"nothing-{ns}"), ns)
    await api.pvs.delete(f"{ns}-spare")
    await api.pvcs.delete("spare", ns)
    await api.gone(api.pvs, f"{ns}-spare")
    await api.gone(api.pvcs, "spare", ns)
    claim = await api.pvcs.get("used", ns)
    assert claim["metadata"]["deletionTimestamp"] and claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    vol = await api.pvs.get(f"{ns}-used")
    assert vol["metadata"]["deletionTimestamp"] and vol["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    out = kyb.kubectl("get", "pvc", "used", "-n", ns).stdout
    assert "Terminating" in out

    # the pod goes: the claim goes, its volume is released and then goes too
    await api.pods.delete("user", ns, grace_period_seconds=0)
    await api.gone(api.pvcs, "used", ns)
    await api.gone(api.pvs, f"{ns}-used")


async def test_default_class_is_assigned_to_classless_claims(api, client, namespace):
    """A claim made with no class before a default StorageClass existed gets it later
    (retroactive default class assignment), then an external provisioner is awaited."""
    ns = namespace
    sc = client.resource("storage.k8s.io", "v1", "storageclasses")
    await api.pvcs.create(pvc("late", "1Gi", cls=None), ns)
    await api.event("late", "FailedBinding")
    name = f"dflt-{ns}"
    await sc.create({"metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                     "provisioner": "example.com/nfs"})
    try:
        # the next periodic sync (15 s) assigns the class; an update of the claim sooner
        await api.pvcs.patch("late", {"metadata": {"labels": {"poke": "1"}}}, namespace=ns)

        async def classed():
            c = await api.pvcs.get("late", ns)
            return c if c["spec"].get("storageClassName") == name else None
        claim = await api.wait(classed, "default class assigned")
        ev = await api.event("late", "ExternalProvisioning")
        assert "external provisioner 'example.com/nfs'" in ev["message"]
        claim = await api.pvcs.get("late", ns)
        anns = claim["metadata"]["annotations"]
        assert anns["volume.kubernetes.io/storage-provisioner"] == "example.com/nfs"
        assert anns["volume.beta.kubernetes.io/storage-provisioner"] == "example.com/nfs"
        assert claim["status"]["phase"] == "Pending"
    finally:
        await sc.delete(name)
