"""The binder's pure matching (controllers/persistentvolume_match.py): which volume a claim
gets, and the binding relations between the two objects."""

from __future__ import annotations

from typing import Any, Optional

import pytest

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
    with pytest.raises(m.MatchError, match="error creating internal label selector for claim: ns/c"):
        m.find_matching_volume(pvc(selector={"matchExpressions": [{"key": "t", "operator": "Bogus"}]}), vols)


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


def test_scheduler_path_checks_node_affinity_and_access_modes():
    ok = lambda v, node: v["metadata"]["name"] != "elsewhere"  # noqa: E731
    vols = [pv("elsewhere", "1Gi"), pv("rox", "1Gi", modes=("ReadOnlyMany",)), pv("here", "2Gi")]
    got = m.find_matching_volume(pvc(), vols, node={"metadata": {"name": "n1"}}, node_affinity_ok=ok)
    assert got["metadata"]["name"] == "here"
    got = m.find_matching_volume(pvc(), vols, node={"metadata": {"name": "n1"}}, node_affinity_ok=ok,
                                 excluded={"here"})
    assert got is None
    # a pre-bound volume on the wrong node means no match at all
    pre = pv("elsewhere", "1Gi", ref={"namespace": "ns", "name": "c"})
    assert m.find_matching_volume(pvc(), [pre, pv("here", "2Gi")], node={}, node_affinity_ok=ok) is None


def test_classes_annotation_wins_over_field():
    claim = pvc(cls="field", annotations={m.BETA_CLASS_ANNOTATION: "beta"})
    assert m.claim_class(claim) == "beta" and m.claim_has_class(claim)
    assert m.claim_class(pvc(cls=None)) == "" and not m.claim_has_class(pvc(cls=None))
    assert m.claim_has_class(pvc(cls=""))  # the empty class is a choice: no default is assigned
    vol = pv("v", "1Gi", cls="field")
    vol["metadata"]["annotations"] = {m.BETA_CLASS_ANNOTATION: ""}
    assert m.volume_class(vol) == ""


def test_bind_volume_to_claim_sets_reference_and_marks_controller_bindings():
    claim = pvc()
    clone, dirty = m.bind_volume_to_claim(pv("v", "1Gi"), claim)
    assert dirty
    assert clone["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "namespace": "ns", "name": "c",
                                         "uid": "u1", "apiVersion": "v1", "resourceVersion": "7"}
    assert clone["metadata"]["annotations"] == {m.ANN_BOUND_BY_CONTROLLER: "yes"}
    # already bound: nothing to write
    _, dirty = m.bind_volume_to_claim(clone, claim)
    assert not dirty
    # a user's pre-binding (no uid) is completed with the uid but not marked as the controller's
    clone, dirty = m.bind_volume_to_claim(pv("v", "1Gi", ref={"namespace": "ns", "name": "c"}), claim)
    assert dirty and clone["spec"]["claimRef"]["uid"] == "u1"
    assert m.ANN_BOUND_BY_CONTROLLER not in (clone["metadata"].get("annotations") or {})


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
    assert m.pod_claim_keys(pod) == ["ns/data", "ns/p-scratch"]
    assert not m.is_pod_terminated(pod)
    assert m.is_pod_terminated({**pod, "status": {"phase": "Succeeded"}})
    deleted = {"metadata": {"name": "p", "deletionTimestamp": "t"},
               "status": {"containerStatuses": [{"state": {"terminated": {}}}]}}
    assert m.is_pod_terminated(deleted)
    deleted["status"]["containerStatuses"].append({"state": {"running": {}}})
    assert not m.is_pod_terminated(deleted)


def test_default_class_is_the_newest_marked_one():
    def sc(name: str, created: str, default: bool) -> Obj:
        ann = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "annotations": ann}}
    assert m.default_class([sc("a", "2020", False)]) is None
    got = m.default_class([sc("old", "2020-01-01T00:00:00Z", True), sc("b", "2021-01-01T00:00:00Z", True),
                           sc("a", "2021-01-01T00:00:00Z", True), sc("x", "2022", False)])
    assert got["metadata"]["name"] == "a"
