"""PersistentVolume and claim rules every component shares (upstream
component-helpers/storage/volume and storage/ephemeral): storage classes, sizes, access and
volume modes, which volume fits a claim, binding a volume to a claim, node affinity, and
which claims a pod uses.

Pure functions over dict objects, no I/O: the PV controller, the scheduler's volume
plugins, PVC protection, the Node authorizer, the kubelet, the storage admission plugins
and the PV/PVC/StorageClass printers all call these, so each rule is written once."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping, Optional

from kybernetes.api.nodeselector import match_node_selector_terms
from kybernetes.api.selectors import SelectorError, from_label_selector
from kybernetes.registry.base import parse_quantity

Obj = dict[str, Any]

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
ANN_MIGRATED_TO = "pv.kubernetes.io/migrated-to"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
NOT_SUPPORTED_PROVISIONER = "kubernetes.io/no-provisioner"
# the order upstream's GetAccessModesAsString writes them in
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"


class MatchError(Exception):
    """A claim cannot be matched at all (a malformed selector, a class without a binding
    mode): an error for the caller, not a misfit."""


# ------------------------------------------------------------------ small accessors
def meta(obj: Mapping[str, Any]) -> Obj:
    return obj.get("metadata") or {}


def annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def has_annotation(obj: Mapping[str, Any], key: str) -> bool:
    return key in annotations(obj)


def spec(obj: Mapping[str, Any]) -> Obj:
    return obj.get("spec") or {}


def phase(obj: Mapping[str, Any]) -> str:
    return (obj.get("status") or {}).get("phase") or ""


def claim_key(claim: Mapping[str, Any]) -> str:
    """`namespace/name` of a claim (upstream claimToClaimKey)."""
    return f"{meta(claim).get('namespace', '')}/{meta(claim).get('name', '')}"


def claim_ref_key(ref: Mapping[str, Any]) -> str:
    """`namespace/name` of the claim a volume's claimRef names."""
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}"


# ------------------------------------------------------------------ classes and sizes
def storage_quantity(resources: Optional[Mapping[str, Any]]) -> Fraction:
    """The value of a `storage` entry (0 when missing or unreadable)."""
    return parse_quantity((resources or {}).get("storage")) or Fraction(0)


def requested_storage(claim: Mapping[str, Any]) -> Fraction:
    """What the claim asks for: spec.resources.requests.storage."""
    return storage_quantity((spec(claim).get("resources") or {}).get("requests"))


def volume_capacity(volume: Mapping[str, Any]) -> Fraction:
    """What the volume offers: spec.capacity.storage."""
    return storage_quantity(spec(volume).get("capacity"))


def _class_of(obj: Mapping[str, Any]) -> str:
    # claims and volumes name their class alike: the beta annotation wins over the field
    ann = annotations(obj)
    if BETA_CLASS_ANNOTATION in ann:
        return ann[BETA_CLASS_ANNOTATION]
    return spec(obj).get("storageClassName") or ""


def claim_class(claim: Mapping[str, Any]) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over spec.storageClassName."""
    return _class_of(claim)


def claim_has_class(claim: Mapping[str, Any]) -> bool:
    """PersistentVolumeClaimHasClass: a class was asked for, even the empty one."""
    return BETA_CLASS_ANNOTATION in annotations(claim) or spec(claim).get("storageClassName") is not None


def volume_class(volume: Mapping[str, Any]) -> str:
    """GetPersistentVolumeClass: the beta annotation wins over spec.storageClassName."""
    return _class_of(volume)


def is_default_class(storage_class: Mapping[str, Any]) -> bool:
    """IsDefaultAnnotation: the class is marked default (GA or beta annotation "true")."""
    ann = annotations(storage_class)
    return any(ann.get(a) == "true" for a in DEFAULT_CLASS_ANNOTATIONS)


def default_class(classes: Iterable[Mapping[str, Any]]) -> Optional[Obj]:
    """GetDefaultClass: of the classes marked default, the newest (then by name)."""
    defaults = [c for c in classes if is_default_class(c)]
    if not defaults:
        return None
    # RFC 3339 UTC timestamps sort by time; two stable sorts give "newest, then name"
    defaults.sort(key=lambda c: meta(c).get("name", ""))
    defaults.sort(key=lambda c: meta(c).get("creationTimestamp", ""), reverse=True)
    return defaults[0]  # type: ignore[return-value]


def is_delay_binding_mode(claim: Mapping[str, Any], storage_class: Callable[[str], Optional[Obj]]) -> bool:
    """IsDelayBindingMode: the claim's class exists (`storage_class` looks one up by name)
    and binds at the first consumer.  MatchError when the class has no binding mode."""
    name = claim_class(claim)
    if not name:
        return False
    sc = storage_class(name)
    if sc is None:
        return False
    mode = sc.get("volumeBindingMode")
    if mode is None:
        raise MatchError(f'VolumeBindingMode not set for StorageClass "{name}"')
    return mode == WAIT_FOR_FIRST_CONSUMER


# ------------------------------------------------------------------ modes
def volume_mode_mismatch(claim: Mapping[str, Any], volume: Mapping[str, Any]) -> bool:
    """CheckVolumeModeMismatches (an unset mode is Filesystem on both sides)."""
    return (spec(claim).get("volumeMode") or "Filesystem") != (spec(volume).get("volumeMode") or "Filesystem")


def access_modes_satisfied(claim: Mapping[str, Any], volume: Mapping[str, Any]) -> bool:
    """CheckAccessModes: the volume offers every mode the claim asks for."""
    offered = set(spec(volume).get("accessModes") or ())
    return all(m in offered for m in spec(claim).get("accessModes") or ())


# ------------------------------------------------------------------ node affinity
def check_node_affinity(volume: Mapping[str, Any], node_labels: Mapping[str, str]) -> bool:
    """CheckNodeAffinity: a volume without spec.nodeAffinity.required fits every node;
    otherwise its node selector terms must match the node's labels."""
    required = (spec(volume).get("nodeAffinity") or {}).get("required")
    if required is None:
        return True
    # as upstream, only labels take part: a node made of the labels alone, without a name,
    # so a matchFields term on metadata.name never matches here
    node = {"metadata": {"labels": dict(node_labels), "name": ""}}
    return match_node_selector_terms(required.get("nodeSelectorTerms") or [], node)


# ------------------------------------------------------------------ binding relations
def is_volume_bound_to_claim(volume: Mapping[str, Any], claim: Mapping[str, Any]) -> bool:
    """IsVolumeBoundToClaim: the volume's claimRef names this claim (and, when it has a
    uid, this very claim)."""
    ref = spec(volume).get("claimRef")
    if not ref:
        return False
    m = meta(claim)
    if ref.get("name") != m.get("name") or ref.get("namespace") != m.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == m.get("uid")


def claim_reference(claim: Mapping[str, Any]) -> Obj:
    """The ObjectReference a bound volume's spec.claimRef holds (reference.GetReference)."""
    m = meta(claim)
    ref = {"kind": "PersistentVolumeClaim", "namespace": m.get("namespace", ""), "name": m.get("name", ""),
           "uid": m.get("uid", ""), "apiVersion": "v1", "resourceVersion": m.get("resourceVersion", "")}
    return {k: v for k, v in ref.items() if v}


def bind_volume_to_claim(volume: Mapping[str, Any], claim: Mapping[str, Any]) -> tuple[Obj, bool]:
    """GetBindVolumeToClaim: a copy of `volume` pointing at `claim`, and whether anything
    changed.  The bound-by-controller annotation marks a binding the user did not pre-set."""
    set_by_controller = not is_volume_bound_to_claim(volume, claim)
    clone = copy.deepcopy(dict(volume))
    ref = spec(volume).get("claimRef") or {}
    m = meta(claim)
    dirty = False
    if (not ref or ref.get("name") != m.get("name") or ref.get("namespace") != m.get("namespace")
            or ref.get("uid", "") != m.get("uid", "")):
        clone.setdefault("spec", {})["claimRef"] = claim_reference(claim)
        dirty = True
    if set_by_controller and not has_annotation(clone, ANN_BOUND_BY_CONTROLLER):
        clone.setdefault("metadata", {}).setdefault("annotations", {})[ANN_BOUND_BY_CONTROLLER] = "yes"
        dirty = True
    return clone, dirty


# ------------------------------------------------------------------ matching
def find_matching_volume(claim: Mapping[str, Any], volumes: Iterable[Mapping[str, Any]],
                         node: Optional[Mapping[str, Any]] = None, excluded: Optional[Iterable[str]] = None,
                         delay_binding: bool = False) -> Optional[Obj]:
    """FindMatchingVolume: a volume pre-bound to the claim if one fits, else the smallest
    Available one of the claim's class, size, volume mode, attributes class and selector.

    The PV controller passes no `node`; with `delay_binding` (a WaitForFirstConsumer
    class) it then gets only a pre-bound volume, as the scheduler binds the others.  The
    scheduler passes the `node`, whose labels the volume's node affinity must admit (a
    pre-bound volume on another node means no match at all), and the access modes must fit
    too; `excluded` names volumes already chosen for the pod's other claims."""
    requested = requested_storage(claim)
    requested_class = claim_class(claim)
    selector = None
    if spec(claim).get("selector") is not None:
        try:
            selector = from_label_selector(spec(claim)["selector"])
        except SelectorError as e:
            raise MatchError(f"error creating internal label selector for claim: {claim_key(claim)}: {e}") from None
    claim_vac = spec(claim).get("volumeAttributesClassName") or ""
    node_labels = (meta(node).get("labels") or {}) if node is not None else {}
    skip = excluded or ()
    smallest: Optional[Obj] = None
    smallest_qty = Fraction(0)
    for volume in volumes:
        if meta(volume).get("name") in skip:
            continue
        if spec(volume).get("claimRef") and not is_volume_bound_to_claim(volume, claim):
            continue
        qty = volume_capacity(volume)
        if qty < requested:
            continue
        if volume_mode_mismatch(claim, volume):
            continue
        if (spec(volume).get("volumeAttributesClassName") or "") != claim_vac:
            continue
        if meta(volume).get("deletionTimestamp"):
            continue
        affinity_ok = node is None or check_node_affinity(volume, node_labels)
        if is_volume_bound_to_claim(volume, claim):
            # a pre-bound volume is the answer, or (wrong node) there is none
            return volume if affinity_ok else None  # type: ignore[return-value]
        if node is None and delay_binding:
            continue  # the scheduler binds unbound volumes of delayed claims
        if phase(volume) != "Available":
            continue  # binding a volume in another phase would mostly meet conflicts
        if selector is not None and not selector.matches(meta(volume).get("labels") or {}):
            continue
        if volume_class(volume) != requested_class:
            continue
        if not affinity_ok:
            continue
        if node is not None and not access_modes_satisfied(claim, volume):
            continue
        if smallest is None or qty < smallest_qty:
            smallest, smallest_qty = volume, qty  # type: ignore[assignment]
    return smallest


# ------------------------------------------------------------------ pods and their claims
def ephemeral_claim_name(pod: Mapping[str, Any], volume: Mapping[str, Any]) -> str:
    """VolumeClaimName: the claim of a generic ephemeral volume is `<pod name>-<volume name>`."""
    return f"{meta(pod).get('name', '')}-{volume.get('name', '')}"


def pod_claims(pod: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(claim name, is ephemeral) for each pod volume backed by a claim: persistentVolumeClaim
    volumes (the name as given, even empty) and generic ephemeral volumes."""
    out = []
    for vol in spec(pod).get("volumes") or ():
        src = vol.get("persistentVolumeClaim")
        if src is not None:
            out.append((src.get("claimName") or "", False))
        elif vol.get("ephemeral") is not None:
            out.append((ephemeral_claim_name(pod, vol), True))
    return out


def pod_claim_names(pod: Mapping[str, Any]) -> list[str]:
    """The names of the claims a pod's volumes use (empty names left out)."""
    return [name for name, _ in pod_claims(pod) if name]


def pod_claim_keys(pod: Mapping[str, Any]) -> list[str]:
    """`namespace/claim` of every claim a pod uses (upstream's PodPVCIndex)."""
    ns = meta(pod).get("namespace", "")
    return [f"{ns}/{name}" for name in pod_claim_names(pod)]


def pod_uses_claim(pod: Mapping[str, Any], namespace: str, name: str) -> bool:
    """Does a pod in `namespace` name this claim among its volumes?"""
    return meta(pod).get("namespace") == namespace and name in pod_claim_names(pod)


def volume_is_for_pod(pod: Mapping[str, Any], claim: Mapping[str, Any]) -> Optional[str]:
    """ephemeral.VolumeIsForPod: a generic ephemeral volume's claim must be controlled by
    the pod.  None when it is, else the error text."""
    controller = next((r for r in meta(claim).get("ownerReferences") or () if r.get("controller")), None)
    if controller is not None and controller.get("uid") == meta(pod).get("uid"):
        return None
    pm, cm = meta(pod), meta(claim)
    return (f"PVC {cm.get('namespace')}/{cm.get('name')} was not created for pod "
            f"{pm.get('namespace')}/{pm.get('name')} (pod is not owner)")


def _not_running(statuses: Optional[list[Obj]]) -> bool:
    for s in statuses or ():
        state = s.get("state") or {}
        if "terminated" not in state and "waiting" not in state:
            return False
    return True


def is_pod_terminated(pod: Mapping[str, Any]) -> bool:
    """volumeutil.IsPodTerminated: terminal phase, or deleted with nothing left running."""
    st = pod.get("status") or {}
    if st.get("phase") in ("Failed", "Succeeded"):
        return True
    return bool(meta(pod).get("deletionTimestamp")) and _not_running(st.get("initContainerStatuses")) \
        and _not_running(st.get("containerStatuses")) and _not_running(st.get("ephemeralContainerStatuses"))
