"""The persistent volume binder's decisions (controllers/persistentvolume.py), one sync at
a time, over an in-memory API double: informer caches are filled directly, writes go to a
fake that checks resourceVersions like the API server, events are collected."""

from __future__ import annotations

import copy
import itertools
from typing import Any, Optional

import pytest

from kybernetes.client.errors import Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.api import storagehelpers as sh
from kybernetes.controllers.persistentvolume import PersistentVolumeController, delete_host_path

Obj = dict[str, Any]


class FakeHandle:
    """A ResourceHandle double over one resource's objects."""

    def __init__(self, client: "FakeClient", group: str, version: str, resource: str) -> None:
        self.client, self.group, self.version, self.resource = client, group, version, resource

    @property
    def objects(self) -> dict[str, Obj]:
        return self.client.objects.setdefault(self.resource, {})

    async def get(self, name: str, namespace: Optional[str] = None) -> Obj:
        key = f"{namespace}/{name}" if namespace else name
        if key not in self.objects:
            raise NotFound({"code": 404, "reason": "NotFound", "message": f'"{name}" not found'})
        return copy.deepcopy(self.objects[key])

    async def list(self, namespace: Optional[str] = None, **kw: Any) -> Obj:
        return {"items": [copy.deepcopy(o) for o in self.objects.values()
                          if namespace is None or o["metadata"].get("namespace") == namespace]}

    async def update(self, obj: Obj, namespace: Optional[str] = None, *, subresource: Optional[str] = None) -> Obj:
        key = object_key(obj)
        old = self.objects.get(key)
        if old is None:
            raise NotFound({"code": 404, "reason": "NotFound", "message": "not found"})
        if obj["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
            raise Conflict({"code": 409, "reason": "Conflict", "message": "the object has been modified"})
        new = copy.deepcopy(obj)
        if subresource == "status":  # only status changes
            new = {**copy.deepcopy(old), "status": new.get("status") or {}}
        elif "status" in old:  # the main resource keeps the stored status
            new["status"] = copy.deepcopy(old["status"])
        new["metadata"]["resourceVersion"] = str(next(self.client.rv))
        self.objects[key] = new
        self.client.writes.append((self.resource, subresource or "", key))
        return copy.deepcopy(new)

    async def update_status(self, obj: Obj, namespace: Optional[str] = None) -> Obj:
        return await self.update(obj, namespace, subresource="status")


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Obj]] = {}
        self.rv = itertools.count(100)
        self.writes: list[tuple[str, str, str]] = []

    def resource(self, group: str, version: str, resource: str, *, namespaced: Optional[bool] = None) -> FakeHandle:
        return FakeHandle(self, group, version, resource)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str]] = []

    def event(self, regarding: Obj, type_: str, reason: str, note: str, **kw: Any) -> None:
        self.seen.append((regarding["metadata"]["name"], type_, reason, note))


class Cluster:
    """The controller plus its API double; `add` stores an object in both the API and
    the informer cache (as after a watch event)."""

    def __init__(self) -> None:
        self.client = FakeClient()
        self.ctl = PersistentVolumeController(self.client)
        self.events = Events()
        self.ctl.recorder = self.events  # type: ignore[assignment]
        self.informers = {"persistentvolumes": self.ctl.pv_informer, "persistentvolumeclaims": self.ctl.pvc_informer,
                          "storageclasses": self.ctl.classes, "pods": self.ctl.pods}

    def add(self, resource: str, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("resourceVersion", str(next(self.client.rv)))
        self.client.objects.setdefault(resource, {})[object_key(obj)] = obj
        self.sync_cache(resource, object_key(obj))
        return obj

    def sync_cache(self, resource: str, key: str) -> None:
        obj = self.client.objects.get(resource, {}).get(key)
        if obj is not None:
            self.informers[resource].store._put(key, copy.deepcopy(obj))
        else:
            self.informers[resource].store._remove(key)

    def pv(self, name: str) -> Obj:
        return self.client.objects["persistentvolumes"][name]

    def pvc(self, name: str, ns: str = "ns") -> Obj:
        return self.client.objects["persistentvolumeclaims"][f"{ns}/{name}"]

    def reasons(self) -> list[str]:
        return [e[2] for e in self.events.seen]


def pv(name: str, size: str = "1Gi", *, cls: str = "", policy: str = "Retain", phase: str = "Available",
       ref: Optional[Obj] = None, annotations: Optional[dict] = None, **source: Any) -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                 "storageClassName": cls, "persistentVolumeReclaimPolicy": policy, **(source or {"hostPath": {"path": "/x"}})}
    if ref:
        spec["claimRef"] = ref
    return {"metadata": {"name": name, "uid": f"pv-{name}", "annotations": annotations or {}}, "spec": spec,
            "status": {"phase": phase}}


def pvc(name: str = "c", size: str = "1Gi", *, cls: Optional[str] = "", volume: str = "", uid: str = "",
        annotations: Optional[dict] = None, phase: str = "Pending") -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
                 "volumeMode": "Filesystem"}
    if cls is not None:
        spec["storageClassName"] = cls
    if volume:
        spec["volumeName"] = volume
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}", "annotations": annotations or {}},
            "spec": spec, "status": {"phase": phase}}


def ref(claim: Obj, uid: bool = True) -> Obj:
    r = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "ns", "name": claim["metadata"]["name"]}
    if uid:
        r["uid"] = claim["metadata"]["uid"]
    return r


BOUND = {sh.ANN_BIND_COMPLETED: "yes", sh.ANN_BOUND_BY_CONTROLLER: "yes"}


@pytest.fixture
def c() -> Cluster:
    return Cluster()


async def test_bind_writes_volume_then_claim(c):
    c.add("persistentvolumes", pv("v", "2Gi"))
    claim = c.add("persistentvolumeclaims", pvc("c"))
    await c.ctl.sync_claim(claim)
    assert c.client.writes == [("persistentvolumes", "", "v"), ("persistentvolumes", "status", "v"),
                               ("persistentvolumeclaims", "", "ns/c"), ("persistentvolumeclaims", "status", "ns/c")]
    vol, got = c.pv("v"), c.pvc("c")
    assert vol["spec"]["claimRef"]["uid"] == "uid-c" and vol["status"]["phase"] == "Bound"
    assert vol["metadata"]["annotations"] == {sh.ANN_BOUND_BY_CONTROLLER: "yes"}
    assert got["spec"]["volumeName"] == "v" and got["metadata"]["annotations"] == BOUND
    assert got["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "2Gi"}}
    # the informer has not caught up: the controller reads its own writes, and a second sync writes nothing
    assert c.ctl.volumes.get("v")["status"]["phase"] == "Bound"
    c.client.writes.clear()
    await c.ctl.sync_claim(c.ctl.claims.get("ns/c"))
    await c.ctl.sync_volume(c.ctl.volumes.get("v"))
    assert c.client.writes == [] and c.events.seen == []


async def test_conflict_fails_the_sync(c):
    c.add("persistentvolumes", pv("v"))
    claim = c.add("persistentvolumeclaims", pvc("c"))
    c.client.objects["persistentvolumes"]["v"]["metadata"]["resourceVersion"] = "999"  # someone else wrote
    with pytest.raises(Conflict):
        await c.ctl.sync_claim(claim)
    assert c.pvc("c")["status"]["phase"] == "Pending"


async def test_no_volume_events(c):
    claim = c.add("persistentvolumeclaims", pvc("plain"))
    await c.ctl.sync_claim(claim)
    assert c.events.seen == [("plain", "Normal", "FailedBinding",
                              "no persistent volumes available for this claim and no storage class is set")]
    c.add("storageclasses", {"metadata": {"name": "local"}, "provisioner": sh.NOT_SUPPORTED_PROVISIONER,
                             "volumeBindingMode": "Immediate"})
    await c.ctl.sync_claim(c.add("persistentvolumeclaims", pvc("np", cls="local")))
    assert c.events.seen[-1] == ("np", "Warning", "ProvisioningFailed",
                                 "no volume plugin matched name: kubernetes.io/no-provisioner")
    await c.ctl.sync_claim(c.add("persistentvolumeclaims", pvc("nocls", cls="missing")))
    assert c.events.seen[-1] == ("nocls", "Warning", "ProvisioningFailed",
                                 'storageclass.storage.k8s.io "missing" not found')


async def test_wait_for_first_consumer(c):
    c.add("storageclasses", {"metadata": {"name": "wffc"}, "provisioner": sh.NOT_SUPPORTED_PROVISIONER,
                             "volumeBindingMode": "WaitForFirstConsumer"})
    c.add("persistentvolumes", pv("v", cls="wffc"))
    claim = c.add("persistentvolumeclaims", pvc("d", cls="wffc"))
    await c.ctl.sync_claim(claim)
    assert c.events.seen == [("d", "Normal", "WaitForFirstConsumer",
                              "waiting for first consumer to be created before binding")]
    assert c.pv("v")["spec"].get("claimRef") is None
    pod = {"metadata": {"name": "p", "namespace": "ns"},
           "spec": {"volumes": [{"name": "x", "persistentVolumeClaim": {"claimName": "d"}}]}}
    c.add("pods", pod)
    await c.ctl.sync_claim(claim)
    assert c.events.seen[-1] == ("d", "Normal", "WaitForPodScheduled", "waiting for pod p to be scheduled")
    # the scheduler pre-binds the volume: the next sync finishes the binding
    vol = copy.deepcopy(c.pv("v"))
    vol["spec"]["claimRef"] = ref(claim)
    vol["metadata"]["annotations"] = {sh.ANN_BOUND_BY_CONTROLLER: "yes"}
    c.add("persistentvolumes", vol)
    await c.ctl.sync_volume(c.ctl.volumes.get("v"))
    assert "claim/ns/d" in c.ctl.queue._dirty  # the claim sync was asked for
    await c.ctl.sync_claim(claim)
    assert c.pvc("d")["status"]["phase"] == "Bound" and c.pv("v")["status"]["phase"] == "Bound"


async def test_prebound_claim(c):
    c.add("persistentvolumes", pv("small", "1Mi"))
    await c.ctl.sync_claim(c.add("persistentvolumeclaims", pvc("want", volume="small")))
    assert c.events.seen == [("want", "Warning", "VolumeMismatch",
                              'Cannot bind to requested volume "small": requested PV is too small')]
    await c.ctl.sync_claim(c.add("persistentvolumeclaims", pvc("ghost", volume="nothere")))
    assert c.pvc("ghost")["status"]["phase"] == "Pending" and len(c.events.seen) == 1
    c.add("persistentvolumes", pv("ok"))
    await c.ctl.sync_claim(c.add("persistentvolumeclaims", pvc("named", volume="ok")))
    assert c.pvc("named")["metadata"]["annotations"] == {sh.ANN_BIND_COMPLETED: "yes"}  # the user chose it
    await c.ctl.sync_claim(c.add("persistentvolumeclaims", pvc("second", volume="ok")))
    assert c.events.seen[-1] == ("second", "Warning", "FailedBinding", 'volume "ok" already bound to a different claim.')


async def test_bound_claim_lost_and_misbound(c):
    claim = c.add("persistentvolumeclaims", pvc("c", volume="gone", annotations=BOUND, phase="Bound"))
    await c.ctl.sync_claim(claim)
    assert c.pvc("c")["status"] == {"phase": "Lost"}
    assert c.events.seen == [("c", "Warning", "ClaimLost",
                              "Bound claim has lost its PersistentVolume. Data on the volume is lost!")]
    await c.ctl.sync_claim(c.ctl.claims.get("ns/c"))
    assert len(c.events.seen) == 1  # only a phase change is told
    other = pvc("other")
    c.add("persistentvolumes", pv("v", phase="Bound", ref=ref(other)))
    await c.ctl.sync_claim(c.add("persistentvolumeclaims", pvc("mis", volume="v", annotations=BOUND, phase="Bound")))
    assert c.events.seen[-1] == ("mis", "Warning", "ClaimMisbound",
                                 "Two claims are bound to the same volume, this one is bound incorrectly")


async def test_volume_phases_and_reclaim(c):
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("new", phase="Pending")))
    assert c.pv("new")["status"]["phase"] == "Available"
    # pre-bound to a claim that does not exist yet: Available, kept for it
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("kept", phase="Pending", ref={"namespace": "ns", "name": "x"})))
    assert c.pv("kept")["status"]["phase"] == "Available" and c.pv("kept")["spec"]["claimRef"]["name"] == "x"

    gone = pvc("gone")
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("retain", phase="Bound", ref=ref(gone))))
    assert c.pv("retain")["status"]["phase"] == "Released" and c.pv("retain")["spec"]["claimRef"]["name"] == "gone"
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("del", policy="Delete", phase="Bound", ref=ref(gone),
                                                          nfs={"server": "s", "path": "/"})))
    msg = 'error getting deleter volume plugin for volume "del": no deletable volume plugin matched'
    assert c.pv("del")["status"] == {"phase": "Failed", "message": msg}
    assert c.events.seen[-1] == ("del", "Warning", "VolumeFailedDelete", msg)
    # hostPath's deleter only removes directories under /tmp
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("hp", policy="Delete", phase="Bound", ref=ref(gone),
                                                          hostPath={"path": "/data/hp"})))
    assert c.events.seen[-1] == ("hp", "Warning", "VolumeFailedDelete",
                                 "host_path deleter only supports /tmp/.+ but received provided /data/hp")
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("rec", policy="Recycle", phase="Bound", ref=ref(gone))))
    assert c.pv("rec")["status"]["phase"] == "Failed"
    assert c.events.seen[-1] == ("rec", "Warning", "VolumeFailedRecycle", "No recycler plugin found for the volume!")
    n = len(c.events.seen)
    await c.ctl.sync_volume(c.ctl.volumes.get("del"))
    assert len(c.events.seen) == n  # still Failed: no new event
    # volumes an external provisioner deletes are only Released
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("csi", policy="Delete", phase="Bound", ref=ref(gone),
                                                          csi={"driver": "x", "volumeHandle": "h"})))
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("ext", policy="Delete", phase="Bound", ref=ref(gone),
                                                          annotations={sh.ANN_DYNAMICALLY_PROVISIONED: "example.com/x"})))
    assert c.pv("csi")["status"]["phase"] == c.pv("ext")["status"]["phase"] == "Released"
    # a new claim of the same name is not the old one
    c.add("persistentvolumeclaims", pvc("gone", uid="another"))
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("again", phase="Bound", ref=ref(gone))))
    assert c.pv("again")["status"]["phase"] == "Released"


async def test_host_path_deleter_removes_tmp_directories(c, tmp_path):
    d = tmp_path / "vol"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_text("data")
    deleted: list[str] = []

    async def delete(name: str, *a: Any, **kw: Any) -> Obj:
        deleted.append(name)
        return {}
    c.ctl.pv_api.delete = delete  # type: ignore[method-assign]
    gone = pvc("gone")
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("tmp", policy="Delete", phase="Bound", ref=ref(gone),
                                                          hostPath={"path": str(d)})))
    assert not d.exists() and deleted == ["tmp"]
    assert c.pv("tmp")["status"]["phase"] == "Released" and c.events.seen == []
    assert delete_host_path("v", None) == ('failed to create deleter for volume "v": '
                                           "spec.PersistentVolumeSource.HostPath is nil")
    assert delete_host_path("v", {"path": str(d)}) is None  # already gone is fine


def test_host_path_deleter_stays_below_tmp():
    """Only paths really below /tmp are removed: not a /tmp/ inside another path (upstream's
    unanchored match would take /var/tmp/...), not a way out through .., not a symlink."""
    import os
    import shutil
    import tempfile
    keep = tempfile.mkdtemp(dir="/var/tmp", prefix="kyb-keep-")
    try:
        for path in (keep, "/tmp/../etc", "/tmp/"):
            assert delete_host_path("v", {"path": path}).startswith("host_path deleter only supports /tmp/.+"), path
        with tempfile.TemporaryDirectory(dir="/tmp") as t:
            link = os.path.join(t, "out")
            os.symlink(keep, link)
            assert delete_host_path("v", {"path": link}).startswith("host_path deleter only supports")
        assert os.path.isdir(keep)
    finally:
        shutil.rmtree(keep, ignore_errors=True)


async def test_volume_of_a_claim_bound_elsewhere_is_unbound(c):
    claim = c.add("persistentvolumeclaims", pvc("c", volume="winner", annotations=BOUND, phase="Bound"))
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("loser", phase="Bound", ref=ref(claim),
                                                          annotations={sh.ANN_BOUND_BY_CONTROLLER: "yes"})))
    got = c.pv("loser")
    assert "claimRef" not in got["spec"] and not got["metadata"].get("annotations")
    assert got["status"]["phase"] == "Available"
    # the user's pre-binding stays, without the uid
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("users", phase="Bound", ref=ref(claim))))
    got = c.pv("users")
    assert got["spec"]["claimRef"] == ref(claim, uid=False) and got["status"]["phase"] == "Available"


async def test_volume_mode_mismatch_of_a_prebound_volume_is_told(c):
    claim = pvc("c")
    claim["spec"]["volumeMode"] = "Block"
    claim = c.add("persistentvolumeclaims", claim)
    await c.ctl.sync_volume(c.add("persistentvolumes", pv("v", phase="Available", ref=ref(claim))))
    assert [e[:3] for e in c.events.seen] == [("v", "Warning", "VolumeMismatch"), ("c", "Warning", "VolumeMismatch")]
