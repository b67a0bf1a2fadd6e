"""Rules for matching PersistentVolumes and claims, shared by the volume scheduling
plugins (upstream component-helpers/storage/volume: FindMatchingVolume, CheckNodeAffinity,
GetBindVolumeToClaim, ...), as plain functions over dict objects.  The PV controller
applies the same rules."""

from __future__ import annotations

import copy
from typing import Any, Mapping, Optional, Sequence

from kybernetes.api.selectors import SelectorError, from_label_selector
from kybernetes.scheduler.plugins.helpers import match_node_selector_terms
from kybernetes.scheduler.resources import parse_quantity

Obj = dict[str, Any]

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
NOT_SUPPORTED_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


class VolumeBindingError(Exception):
    """Something other than a misfit: a plugin answers Error, not Unschedulable."""


# --------------------------------------------------------------------------- object helpers

def meta_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return meta_of(obj).get("annotations") or {}


def resource_version(obj: Mapping[str, Any]) -> int:
    try:
        return int(meta_of(obj).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def claim_class(pvc: Mapping[str, Any]) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over spec.storageClassName."""
    ann = annotations_of(pvc).get(ANN_STORAGE_CLASS)
    if ann is not None:
        return ann
    return (pvc.get("spec") or {}).get("storageClassName") or ""


def volume_class(pv: Mapping[str, Any]) -> str:
    """GetPersistentVolumeClass."""
    ann = annotations_of(pv).get(ANN_STORAGE_CLASS)
    if ann is not None:
        return ann
    return (pv.get("spec") or {}).get("storageClassName") or ""


def _storage(q: Any) -> Any:
    try:
        return parse_quantity(q) if q is not None else 0
    except ValueError:
        return 0


def requested_storage(pvc: Mapping[str, Any]) -> Any:
    return _storage((((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage"))


def volume_capacity(pv: Mapping[str, Any]) -> Any:
    return _storage(((pv.get("spec") or {}).get("capacity") or {}).get("storage"))


def ephemeral_claim_name(pod: Mapping[str, Any], volume: Mapping[str, Any]) -> str:
    """The claim a generic ephemeral volume gets: `<pod name>-<volume name>`."""
    return f"{meta_of(pod).get('name', '')}-{volume.get('name', '')}"


def pod_claims(pod: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(claim name, is ephemeral) for each of the pod's volumes backed by a claim."""
    out = []
    for v in (pod.get("spec") or {}).get("volumes") or []:
        src = v.get("persistentVolumeClaim")
        if src is not None:
            out.append((src.get("claimName") or "", False))
        elif v.get("ephemeral") is not None:
            out.append((ephemeral_claim_name(pod, v), True))
    return out


def pod_uses_claim(pod: Mapping[str, Any], namespace: str, name: str) -> bool:
    """Does the pod name this claim (the PVC queueing hint)?"""
    if meta_of(pod).get("namespace") != namespace:
        return False
    return any(n == name for n, _ in pod_claims(pod))


def volume_is_for_pod(pod: Mapping[str, Any], pvc: Mapping[str, Any]) -> Optional[str]:
    """An ephemeral volume's claim must be controlled by the pod; the error text otherwise."""
    uid = meta_of(pod).get("uid")
    for ref in meta_of(pvc).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("uid") == uid:
            return None
    pm, cm = meta_of(pod), meta_of(pvc)
    return (f"PVC {cm.get('namespace')}/{cm.get('name')} was not created for pod "
            f"{pm.get('namespace')}/{pm.get('name')} (pod is not owner)")


def is_pvc_fully_bound(pvc: Mapping[str, Any]) -> bool:
    """Bound, and the PV controller has finished (it sets bind-completed)."""
    return bool((pvc.get("spec") or {}).get("volumeName")) and ANN_BIND_COMPLETED in annotations_of(pvc)


def check_node_affinity(pv: Mapping[str, Any], node_labels: Mapping[str, str]) -> bool:
    """CheckNodeAffinity: a PV without spec.nodeAffinity.required fits every node; node
    selector terms are matched against the node's labels (terms OR, expressions AND)."""
    aff = (pv.get("spec") or {}).get("nodeAffinity") or {}
    req = aff.get("required")
    if req is None:
        return True
    # like upstream, only labels take part (a node built from labels alone: no name)
    return match_node_selector_terms(req.get("nodeSelectorTerms") or [], {"metadata": {"labels": node_labels, "name": ""}})


def is_volume_bound_to_claim(pv: Mapping[str, Any], pvc: Mapping[str, Any]) -> bool:
    """IsVolumeBoundToClaim: claimRef names the claim (and its uid, when it has one)."""
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:
        return False
    m = meta_of(pvc)
    if ref.get("name") != m.get("name") or ref.get("namespace") != m.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == m.get("uid")


def _volume_mode(spec: Mapping[str, Any]) -> str:
    return spec.get("volumeMode") or "Filesystem"


def access_modes_fit(pvc: Mapping[str, Any], pv: Mapping[str, Any]) -> bool:
    """CheckAccessModes: the PV offers every mode the claim asks for."""
    have = set((pv.get("spec") or {}).get("accessModes") or ())
    return all(m in have for m in (pvc.get("spec") or {}).get("accessModes") or ())


def find_matching_volume(pvc: Mapping[str, Any], volumes: Sequence[Mapping[str, Any]],
                         node: Optional[Mapping[str, Any]], excluded: Mapping[str, Any] = (),
                         delay_binding: bool = True) -> Optional[Obj]:
    """FindMatchingVolume: a PV pre-bound to the claim if there is one (None when it does
    not accept the node), else the smallest Available PV of the claim's class that is big
    enough, has the claim's volume mode, access modes and selector labels, is not being
    deleted and accepts the node.  `node` None is the PV controller's path (which leaves
    delayed-binding claims alone)."""
    spec = pvc.get("spec") or {}
    requested = requested_storage(pvc)
    cls = claim_class(pvc)
    selector = None
    if spec.get("selector") is not None:
        try:
            selector = from_label_selector(spec["selector"])
        except SelectorError as e:
            m = meta_of(pvc)
            raise VolumeBindingError(f"error creating internal label selector for claim: "
                                     f"{m.get('namespace')}/{m.get('name')}: {e}") from None
    node_labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    smallest: Optional[Obj] = None
    smallest_qty: Any = None
    for pv in volumes:
        name = meta_of(pv).get("name")
        if name in excluded:
            continue
        pvspec = pv.get("spec") or {}
        if pvspec.get("claimRef") and not is_volume_bound_to_claim(pv, pvc):
            continue
        qty = volume_capacity(pv)
        if qty < requested:
            continue
        if _volume_mode(spec) != _volume_mode(pvspec):
            continue
        if meta_of(pv).get("deletionTimestamp"):
            continue
        affinity_ok = True if node is None else check_node_affinity(pv, node_labels)
        if is_volume_bound_to_claim(pv, pvc):
            return pv if affinity_ok else None  # type: ignore[return-value]
        if node is None and delay_binding:
            continue
        if (pv.get("status") or {}).get("phase") != "Available":
            continue  # not ready for binding yet; trying now would only conflict
        if selector is not None and not selector.matches(meta_of(pv).get("labels") or {}):
            continue
        if volume_class(pv) != cls or not affinity_ok:
            continue
        if node is not None and not access_modes_fit(pvc, pv):
            continue
        if smallest is None or smallest_qty > qty:
            smallest, smallest_qty = pv, qty  # type: ignore[assignment]
    return smallest


def claim_ref(pvc: Mapping[str, Any]) -> Obj:
    """An ObjectReference to the claim, as GetReference makes it."""
    m = meta_of(pvc)
    ref = {"kind": "PersistentVolumeClaim", "namespace": m.get("namespace"), "name": m.get("name"),
           "uid": m.get("uid"), "apiVersion": "v1", "resourceVersion": m.get("resourceVersion")}
    return {k: v for k, v in ref.items() if v}


def bind_volume_to_claim(pv: Mapping[str, Any], pvc: Mapping[str, Any]) -> tuple[Obj, bool]:
    """GetBindVolumeToClaim: a copy of the PV pre-bound to the claim, and whether anything
    changed.  bound-by-controller marks a binding the user did not ask for."""
    already = is_volume_bound_to_claim(pv, pvc)
    new = copy.deepcopy(dict(pv))
    dirty = False
    ref = (new.get("spec") or {}).get("claimRef") or {}
    m = meta_of(pvc)
    if (not ref or ref.get("name") != m.get("name") or ref.get("namespace") != m.get("namespace")
            or ref.get("uid") != m.get("uid")):
        new.setdefault("spec", {})["claimRef"] = claim_ref(pvc)
        dirty = True
    if not already and ANN_BOUND_BY_CONTROLLER not in annotations_of(new):
        new.setdefault("metadata", {}).setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
        dirty = True
    return new, dirty


def match_topology_terms(terms: Any, labels: Mapping[str, str]) -> bool:
    """MatchTopologySelectorTerms (StorageClass allowedTopologies): none admits every node;
    otherwise some term whose every expression has the node's label among its values."""
    if not terms:
        return True
    for t in terms:
        exprs = (t or {}).get("matchLabelExpressions") or []
        if exprs and all(e.get("key") in labels and labels[e["key"]] in (e.get("values") or ()) for e in exprs):
            return True
    return False


def claim_key(pvc: Mapping[str, Any]) -> str:
    m = meta_of(pvc)
    return f"{m.get('namespace')}/{m.get('name')}"
