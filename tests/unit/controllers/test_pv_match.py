"""The binder's pure matching (controllers/persistentvolume_match.py and the shared
api/storagehelpers.py): which volume a claim gets, and the binding relations between the
two objects."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from kybernetes.api import storagehelpers as sh
from kybernetes.controllers import persistentvolume_match as m

Obj = dict[str, Any]


def pv(name: str, size: str, *, cls: str = "", modes=("ReadWriteOnce",), mode: Optional[str] = "Filesystem",
       phase: str = "Available", labels: Optional[dict] = None, ref: Optional[Obj] = None,
       deleting: bool = False) -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls}
    if mode is not None:
        spec["volumeMode"] = mode
    if ref is not None:
        spec["claimRef"] = ref
    md: Obj = {"name": name, "labels": labels or {}}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": md, "spec": spec, "status": {"phase": phase}}


def pvc(name: str = "c", size: str = "1Gi", *, ns: str = "ns", uid: str = "u1", cls: Optional[str] = "",
        modes=("ReadWriteOnce",), mode: Optional[str] = "Filesystem", selector: Optional[Obj] = None,
        annotations: Optional[dict] = None) -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    if mode is not None:
        spec["volumeMode"] = mode
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name, "namespace": ns, "uid": uid, "resourceVersion": "7",
                         "annotations": annotations or {}}, "spec": spec}


def best(claim: Obj, volumes: list[Obj], **kw: Any) -> Optional[str]:
    v = m.find_best_match_for_claim(claim, volumes, **kw)
    return v["metadata"]["name"] if v else None


def test_smallest_adequate_volume_of_the_class_wins():
    vols = [pv("tiny", "500Mi"), pv("big", "10Gi"), pv("mid", "2Gi"), pv("exact", "1Gi", cls="fast"),
            pv("odd", "1Gi", mode="Block"), pv("busy", "1Gi", ref={"namespace": "ns", "name": "other", "uid": "x"}),
            pv("pending", "1Gi", phase="Pending"), pv("going", "1Gi", deleting=True)]
    assert best(pvc(size="1Gi"), vols) == "mid"
    assert best(pvc(size="1Gi", cls="fast"), vols) == "exact"
    assert best(pvc(size="1Gi", mode="Block"), vols) == "odd"
    assert best(pvc(size="20Gi"), vols) is None
    # quantities compare by value, not by text
    assert best(pvc(size="1024Mi"), [pv("a", "1Gi"), pv("b", "1073741823")]) == "a"


def test_unset_volume_mode_is_filesystem_on_both_sides():
    assert best(pvc(mode=None), [pv("v", "1Gi", mode=None)]) == "v"
    assert best(pvc(mode="Filesystem"), [pv("v", "1Gi", mode=None)]) == "v"
    assert best(pvc(mode="Block"), [pv("v", "1Gi", mode=None)]) is None


def test_access_mode_groups_fewest_modes_first():
    vols = [pv("rwo-rox", "1Gi", modes=("ReadOnlyMany", "ReadWriteOnce")), pv("rwo-big", "5Gi"),
            pv("rwx", "1Gi", modes=("ReadWriteMany",))]
    # the exact set is tried before a superset, even when the superset's volume is smaller
    assert best(pvc(modes=("ReadWriteOnce",)), vols) == "rwo-big"
    assert best(pvc(modes=("ReadOnlyMany",)), vols) == "rwo-rox"
    assert best(pvc(modes=("ReadWriteOnce", "ReadOnlyMany")), vols) == "rwo-rox"
    assert best(pvc(modes=("ReadWriteMany", "ReadWriteOnce")), vols) is None
    assert m.access_modes_key(["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"]) == ("ReadWriteOnce", "ReadWriteMany")


def test_selector_filters_by_labels():
    vols = [pv("plain", "1Gi"), pv("gold", "9Gi", labels={"tier": "gold"})]
    assert best(pvc(selector={"matchLabels": {"tier": "gold"}}), vols) == "gold"
    assert best(pvc(selector={"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}), vols) == "plain"
    assert best(pvc(selector={"matchLabels": {"tier": "silver"}}), vols) is None
    with pytest.raises(sh.MatchError, match="error creating internal label selector for claim: ns/c"):
        sh.find_matching_volume(pvc(selector={"matchExpressions": [{"key": "t", "operator": "Bogus"}]}), vols)


def test_prebound_volume_wins_and_delay_binding_only_takes_prebound():
    reserved = pv("reserved", "8Gi", phase="Available", ref={"namespace": "ns", "name": "c"})
    vols = [pv("small", "1Gi"), reserved]
    assert best(pvc(), vols) == "reserved"
    # a uid in the reference must be this claim's
    assert best(pvc(), [pv("small", "1Gi"), pv("r", "8Gi", ref={"namespace": "ns", "name": "c", "uid": "zz"})]) == "small"
    # pre-bound wins whatever its phase, class or selector; never when it is too small
    prebound = pv("pre", "2Gi", cls="other", phase="Bound", ref={"namespace": "ns", "name": "c", "uid": "u1"})
    assert best(pvc(selector={"matchLabels": {"x": "y"}}), [prebound]) == "pre"
    assert best(pvc(size="3Gi"), [prebound]) is None
    # WaitForFirstConsumer: the controller binds only what the scheduler pre-bound
    assert best(pvc(), [pv("small", "1Gi")], delay_binding=True) is None
    assert best(pvc(), vols, delay_binding=True) == "reserved"


def _on_node(vol: Obj, node_name: str) -> Obj:
    vol["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}]}]}}
    return vol


def test_scheduler_path_checks_node_affinity_and_access_modes():
    node = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}
    vols = [_on_node(pv("elsewhere", "1Gi"), "n2"), pv("rox", "1Gi", modes=("ReadOnlyMany",)),
            _on_node(pv("here", "2Gi"), "n1")]
    got = sh.find_matching_volume(pvc(), vols, node=node)
    assert got["metadata"]["name"] == "here"
    got = sh.find_matching_volume(pvc(), vols, node=node, excluded={"here"})
    assert got is None
    # a pre-bound volume on the wrong node means no match at all
    pre = _on_node(pv("elsewhere", "1Gi", ref={"namespace": "ns", "name": "c"}), "n2")
    assert sh.find_matching_volume(pvc(), [pre, pv("here", "2Gi")], node=node) is None


def test_classes_annotation_wins_over_field():
    claim = pvc(cls="field", annotations={sh.BETA_CLASS_ANNOTATION: "beta"})
    assert sh.claim_class(claim) == "beta" and sh.claim_has_class(claim)
    assert sh.claim_class(pvc(cls=None)) == "" and not sh.claim_has_class(pvc(cls=None))
    assert sh.claim_has_class(pvc(cls=""))  # the empty class is a choice: no default is assigned
    vol = pv("v", "1Gi", cls="field")
    vol["metadata"]["annotations"] = {sh.BETA_CLASS_ANNOTATION: ""}
    assert sh.volume_class(vol) == ""


def test_bind_volume_to_claim_sets_reference_and_marks_controller_bindings():
    claim = pvc()
    clone, dirty = sh.bind_volume_to_claim(pv("v", "1Gi"), claim)
    assert dirty
    assert clone["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "namespace": "ns", "name": "c",
                                         "uid": "u1", "apiVersion": "v1", "resourceVersion": "7"}
    assert clone["metadata"]["annotations"] == {sh.ANN_BOUND_BY_CONTROLLER: "yes"}
    # already bound: nothing to write
    _, dirty = sh.bind_volume_to_claim(clone, claim)
    assert not dirty
    # a user's pre-binding (no uid) is completed with the uid but not marked as the controller's
    clone, dirty = sh.bind_volume_to_claim(pv("v", "1Gi", ref={"namespace": "ns", "name": "c"}), claim)
    assert dirty and clone["spec"]["claimRef"]["uid"] == "u1"
    assert sh.ANN_BOUND_BY_CONTROLLER not in (clone["metadata"].get("annotations") or {})


def test_requested_volume_must_satisfy_the_claim():
    assert m.check_volume_satisfies_claim(pv("v", "1Gi"), pvc()) is None
    assert m.check_volume_satisfies_claim(pv("v", "1Mi"), pvc()) == "requested PV is too small"
    assert m.check_volume_satisfies_claim(pv("v", "1Gi", cls="x"), pvc()) == "storageClassName does not match"
    assert m.check_volume_satisfies_claim(pv("v", "1Gi", mode="Block"), pvc()) == "incompatible volumeMode"
    assert m.check_volume_satisfies_claim(pv("v", "1Gi", modes=("ReadOnlyMany",)), pvc()) == "incompatible accessMode"
    assert m.check_volume_satisfies_claim(pv("v", "1Gi", deleting=True), pvc()) == 'the volume is marked for deletion "v"'


def test_pods_and_claims():
    pod = {"metadata": {"name": "p", "namespace": "ns"},
           "spec": {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "data"}},
                                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
                                {"name": "e", "emptyDir": {}}]}}
    assert sh.pod_claim_keys(pod) == ["ns/data", "ns/p-scratch"]
    assert not sh.is_pod_terminated(pod)
    assert sh.is_pod_terminated({**pod, "status": {"phase": "Succeeded"}})
    deleted = {"metadata": {"name": "p", "deletionTimestamp": "t"},
               "status": {"containerStatuses": [{"state": {"terminated": {}}}]}}
    assert sh.is_pod_terminated(deleted)
    deleted["status"]["containerStatuses"].append({"state": {"running": {}}})
    assert not sh.is_pod_terminated(deleted)


def test_default_class_is_the_newest_marked_one():
    def sc(name: str, created: str, default: bool) -> Obj:
        ann = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "annotations": ann}}
    assert sh.default_class([sc("a", "2020", False)]) is None
    got = sh.default_class([sc("old", "2020-01-01T00:00:00Z", True), sc("b", "2021-01-01T00:00:00Z", True),
                           sc("a", "2021-01-01T00:00:00Z", True), sc("x", "2022", False)])
    assert got["metadata"]["name"] == "a"


def test_volume_attributes_class_must_match_on_both_paths():
    vac = pv("vac", "1Gi")
    vac["spec"]["volumeAttributesClassName"] = "gold"
    node = {"metadata": {"name": "n1", "labels": {}}}
    assert sh.find_matching_volume(pvc(), [vac]) is None
    assert sh.find_matching_volume(pvc(), [vac], node=node) is None
    gold = pvc()
    gold["spec"]["volumeAttributesClassName"] = "gold"
    assert sh.find_matching_volume(gold, [vac, pv("plain", "1Gi")], node=node)["metadata"]["name"] == "vac"


def test_node_affinity_sees_only_the_node_labels():
    assert sh.check_node_affinity(pv("any", "1Gi"), {})
    on_n1 = _on_node(pv("v", "1Gi"), "n1")
    assert sh.check_node_affinity(on_n1, {"kubernetes.io/hostname": "n1"})
    assert not sh.check_node_affinity(on_n1, {"kubernetes.io/hostname": "n2"})
    # as upstream's CheckNodeAffinity: the node is its labels alone, so a term on the name never matches
    by_name = pv("f", "1Gi")
    by_name["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}
    assert not sh.check_node_affinity(by_name, {"kubernetes.io/hostname": "n1"})


def test_delay_binding_mode_follows_the_class():
    classes = {"wffc": {"volumeBindingMode": "WaitForFirstConsumer"}, "now": {"volumeBindingMode": "Immediate"},
               "unset": {}}
    assert not sh.is_delay_binding_mode(pvc(cls=""), classes.get)
    assert not sh.is_delay_binding_mode(pvc(cls="missing"), classes.get)
    assert not sh.is_delay_binding_mode(pvc(cls="now"), classes.get)
    assert sh.is_delay_binding_mode(pvc(cls="wffc"), classes.get)
    with pytest.raises(sh.MatchError, match='VolumeBindingMode not set for StorageClass "unset"'):
        sh.is_delay_binding_mode(pvc(cls="unset"), classes.get)


def test_claims_of_a_pod_and_ephemeral_ownership():
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "pu"},
           "spec": {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "data"}},
                                {"name": "b", "persistentVolumeClaim": {}},
                                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}]}}
    assert sh.pod_claims(pod) == [("data", False), ("", False), ("p-scratch", True)]
    assert sh.pod_claim_names(pod) == ["data", "p-scratch"]
    assert sh.pod_uses_claim(pod, "ns", "p-scratch") and not sh.pod_uses_claim(pod, "other", "data")
    claim = pvc("p-scratch")
    assert sh.volume_is_for_pod(pod, claim) == "PVC ns/p-scratch was not created for pod ns/p (pod is not owner)"
    claim["metadata"]["ownerReferences"] = [{"uid": "other", "controller": False}, {"uid": "pu", "controller": True}]
    assert sh.volume_is_for_pod(pod, claim) is None
