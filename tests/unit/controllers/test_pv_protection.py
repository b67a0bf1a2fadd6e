"""Storage object in-use protection: the admission plugin that puts the finalizers on,
the PVC/PV protection controllers that take them off, and the PersistentVolume registry
rules the binder relies on (local volumes need node affinity; phase changes are stamped)."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any, Optional

from test_pv_binder import FakeClient

from kybernetes.admission.storageobjectinuse import StorageObjectInUseProtection
from kybernetes.client.informer import object_key
from kybernetes.controllers.pvcprotection import (PVC_PROTECTION_FINALIZER, PVCProtectionController,
                                                  is_deletion_candidate, needs_finalizer, pod_uses_claim)
from kybernetes.controllers.pvprotection import PV_PROTECTION_FINALIZER, PVProtectionController
from kybernetes.registry.core.persistentvolumes import PersistentVolumeStrategy

Obj = dict[str, Any]
DELETED = "2026-01-01T00:00:00Z"


def claim(name: str = "data", *, deleting: bool = False, finalizers=(PVC_PROTECTION_FINALIZER,), owner: str = "") -> Obj:
    md: Obj = {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": "1",
               "finalizers": list(finalizers)}
    if deleting:
        md["deletionTimestamp"] = DELETED
    if owner:
        md["ownerReferences"] = [{"kind": "Pod", "name": "p", "uid": owner, "controller": True}]
    return {"metadata": md, "spec": {}}


def pod(name: str = "p", *, node: str = "n1", claim_name: str = "data", ephemeral: bool = False,
        shut_down: bool = False, phase: str = "Running") -> Obj:
    vol: Obj = {"name": "v"}
    if ephemeral:
        vol["ephemeral"] = {"volumeClaimTemplate": {"spec": {}}}
    else:
        vol["persistentVolumeClaim"] = {"claimName": claim_name}
    md: Obj = {"name": name, "namespace": "ns", "uid": "pod-uid", "resourceVersion": "1"}
    if shut_down:
        md["deletionTimestamp"], md["deletionGracePeriodSeconds"] = DELETED, 0
    return {"metadata": md, "spec": {"nodeName": node, "volumes": [vol]}, "status": {"phase": phase}}


def test_finalizer_predicates():
    assert needs_finalizer(claim(finalizers=()), PVC_PROTECTION_FINALIZER)
    assert not needs_finalizer(claim(), PVC_PROTECTION_FINALIZER)
    assert not needs_finalizer(claim(finalizers=(), deleting=True), PVC_PROTECTION_FINALIZER)
    assert is_deletion_candidate(claim(deleting=True), PVC_PROTECTION_FINALIZER)
    assert not is_deletion_candidate(claim(), PVC_PROTECTION_FINALIZER)


def test_which_pods_use_a_claim():
    assert pod_uses_claim(pod(), claim())
    assert not pod_uses_claim(pod(node=""), claim())  # not scheduled: the kubelet will not start it
    assert not pod_uses_claim(pod(claim_name="other"), claim())
    assert pod_uses_claim(pod(phase="Succeeded"), claim())  # scheduled pods count until they are gone
    # a generic ephemeral volume's claim: only the pod's own, and only until the pod is shut down
    assert pod_uses_claim(pod(ephemeral=True), claim("p-v", owner="pod-uid"))
    assert not pod_uses_claim(pod(ephemeral=True), claim("p-v", owner="someone-else"))
    assert not pod_uses_claim(pod(ephemeral=True, shut_down=True), claim("p-v", owner="pod-uid"))


class Protection:
    """A protection controller over the API double, with its caches filled directly."""

    def __init__(self, cls: type) -> None:
        self.client = FakeClient()
        self.ctl = cls(self.client)

    def add(self, resource: str, informer: Any, obj: Obj) -> None:
        obj = copy.deepcopy(obj)
        self.client.objects.setdefault(resource, {})[object_key(obj)] = obj
        informer.store._put(object_key(obj), copy.deepcopy(obj))


async def test_pvc_protection_keeps_claims_in_use():
    p = Protection(PVCProtectionController)
    p.add("persistentvolumeclaims", p.ctl.claims, claim("data", deleting=True))
    p.add("pods", p.ctl.pods, pod())
    await p.ctl.reconcile("ns/data")
    assert p.client.writes == []
    # the cache misses the pod: the live list still finds it
    p.ctl.pods.store._remove("ns/p")
    await p.ctl.reconcile("ns/data")
    assert p.client.writes == []
    del p.client.objects["pods"]["ns/p"]
    await p.ctl.reconcile("ns/data")
    assert p.client.objects["persistentvolumeclaims"]["ns/data"]["metadata"]["finalizers"] == []
    # a claim made before the admission plugin gets the finalizer
    p.add("persistentvolumeclaims", p.ctl.claims, claim("old", finalizers=("example.com/x",)))
    await p.ctl.reconcile("ns/old")
    assert p.client.objects["persistentvolumeclaims"]["ns/old"]["metadata"]["finalizers"] == [
        "example.com/x", PVC_PROTECTION_FINALIZER]


async def test_pvc_protection_enqueues_claims_of_pods_that_stop_counting():
    p = Protection(PVCProtectionController)
    p.ctl._pod_changed(None, pod(), False)
    assert len(p.ctl.queue) == 0  # a running scheduled pod cannot free a claim
    p.ctl._pod_changed(None, pod(), True)
    p.ctl._pod_changed(None, pod("q", phase="Failed", claim_name="other"), False)
    assert p.ctl.queue._dirty == {"ns/data", "ns/other"}


async def test_pv_protection_releases_only_unbound_volumes():
    p = Protection(PVProtectionController)

    def volume(name: str, phase: str, *, deleting: bool = True, finalizers=(PV_PROTECTION_FINALIZER,)) -> Obj:
        md: Obj = {"name": name, "resourceVersion": "1", "finalizers": list(finalizers)}
        if deleting:
            md["deletionTimestamp"] = DELETED
        return {"metadata": md, "spec": {}, "status": {"phase": phase}}
    for name, phase in (("bound", "Bound"), ("released", "Released"), ("available", "Available")):
        p.add("persistentvolumes", p.ctl.volumes, volume(name, phase))
        await p.ctl.reconcile(name)
    fins = {k: v["metadata"]["finalizers"] for k, v in p.client.objects["persistentvolumes"].items()}
    assert fins == {"bound": [PV_PROTECTION_FINALIZER], "released": [], "available": []}
    p.add("persistentvolumes", p.ctl.volumes, volume("bare", "Available", deleting=False, finalizers=()))
    await p.ctl.reconcile("bare")
    assert p.client.objects["persistentvolumes"]["bare"]["metadata"]["finalizers"] == [PV_PROTECTION_FINALIZER]
    assert p.ctl._volume_key(volume("fine", "Bound", deleting=False)) is None


def _request(resource: str, subresource: str = "") -> Any:
    return SimpleNamespace(strategy=SimpleNamespace(group="", resource=resource),
                           info=SimpleNamespace(subresource=subresource))


async def test_admission_adds_finalizers_on_create_only():
    plugin = StorageObjectInUseProtection()
    pv: Obj = {"metadata": {"name": "v"}}
    await plugin.admit("CREATE", _request("persistentvolumes"), pv, None)
    assert pv["metadata"]["finalizers"] == [PV_PROTECTION_FINALIZER]
    await plugin.admit("CREATE", _request("persistentvolumes"), pv, None)
    assert pv["metadata"]["finalizers"] == [PV_PROTECTION_FINALIZER]  # once
    pvc: Obj = {"metadata": {"name": "c", "finalizers": ["a/b"]}}
    await plugin.admit("CREATE", _request("persistentvolumeclaims"), pvc, None)
    assert pvc["metadata"]["finalizers"] == ["a/b", PVC_PROTECTION_FINALIZER]
    for op, req in (("UPDATE", _request("persistentvolumeclaims")), ("CREATE", _request("pods")),
                    ("CREATE", _request("persistentvolumeclaims", "status"))):
        obj: Obj = {"metadata": {"name": "x"}}
        await plugin.admit(op, req, obj, None)
        assert "finalizers" not in obj["metadata"]


def _local_pv(affinity: Optional[Obj]) -> Obj:
    spec: Obj = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "local": {"path": "/mnt/d"}}
    if affinity is not None:
        spec["nodeAffinity"] = affinity
    return {"metadata": {"name": "v"}, "spec": spec}


def test_local_volume_needs_node_affinity():
    s = PersistentVolumeStrategy()

    def messages(obj: Obj) -> list[str]:
        return [f"{c.field}: {c.message}" for c in s.validate(obj)]
    assert messages(_local_pv(None)) == ["spec.nodeAffinity: Required value: Local volume requires node affinity"]
    assert messages(_local_pv({})) == ["spec.nodeAffinity.required: Required value: must specify required node constraints",
                                       "spec.nodeAffinity: Required value: Local volume requires node affinity"]
    terms = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}
    assert messages(_local_pv(terms)) == []
    bad = _local_pv(terms)
    bad["spec"]["local"]["path"] = "/mnt/../etc"
    assert messages(bad) == ["spec.local.path: Invalid value: \"/mnt/../etc\": must not contain '..'"]


def test_phase_changes_stamp_last_transition_time():
    s = PersistentVolumeStrategy()
    old = {"metadata": {"name": "v"}, "spec": {"a": 1},
           "status": {"phase": "Available", "lastPhaseTransitionTime": "2020-01-01T00:00:00Z"}}
    same = {"metadata": {"name": "v"}, "spec": {}, "status": {"phase": "Available"}}
    s.prepare_for_status_update(same, old)
    assert same["status"]["lastPhaseTransitionTime"] == "2020-01-01T00:00:00Z" and same["spec"] == {"a": 1}
    moved = {"metadata": {"name": "v"}, "status": {"phase": "Bound", "lastPhaseTransitionTime": "2020-01-01T00:00:00Z"}}
    s.prepare_for_status_update(moved, old)
    assert moved["status"]["lastPhaseTransitionTime"] > "2020-01-01T00:00:00Z"
    chosen = {"metadata": {"name": "v"}, "status": {"phase": "Bound", "lastPhaseTransitionTime": "2021-05-05T00:00:00Z"}}
    s.prepare_for_status_update(chosen, old)
    assert chosen["status"]["lastPhaseTransitionTime"] == "2021-05-05T00:00:00Z"  # the writer's own choice
