"""Pure helpers of the persistent volume binder (upstream component-helpers/storage/volume
pv_helpers.go and pkg/controller/volume/persistentvolume/index.go): which volume suits a
claim, whether two objects point at each other, the claim reference a volume carries.

No I/O here: the controller (controllers/persistentvolume.py) feeds these its caches, and
the scheduler's VolumeBinding plugin may use the same matching with a node.
"""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any, Callable, Iterable, Optional

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
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")

# the order upstream's GetAccessModesAsString writes them in
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


class MatchError(Exception):
    """The claim cannot be matched at all (e.g. its selector is malformed)."""


# ------------------------------------------------------------------ small accessors
def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def annotations(obj: Obj) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def has_annotation(obj: Obj, key: str) -> bool:
    return key in annotations(obj)


def spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def phase(obj: Obj) -> str:
    return (obj.get("status") or {}).get("phase") or ""


def claim_key(claim: Obj) -> str:
    return f"{meta(claim).get('namespace', '')}/{meta(claim).get('name', '')}"


def claim_ref_key(ref: Obj) -> str:
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}"


def storage_quantity(resources: Optional[Obj]) -> Fraction:
    """The value of a `storage` entry (0 when missing or unreadable)."""
    return parse_quantity((resources or {}).get("storage")) or Fraction(0)


def claim_class(claim: Obj) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over spec.storageClassName."""
    ann = annotations(claim)
    if BETA_CLASS_ANNOTATION in ann:
        return ann[BETA_CLASS_ANNOTATION]
    return spec(claim).get("storageClassName") or ""


def claim_has_class(claim: Obj) -> bool:
    """PersistentVolumeClaimHasClass: a class was asked for, even the empty one."""
    return BETA_CLASS_ANNOTATION in annotations(claim) or spec(claim).get("storageClassName") is not None


def volume_class(volume: Obj) -> str:
    """GetPersistentVolumeClass."""
    ann = annotations(volume)
    if BETA_CLASS_ANNOTATION in ann:
        return ann[BETA_CLASS_ANNOTATION]
    return spec(volume).get("storageClassName") or ""


def access_modes_key(modes: Optional[Iterable[str]]) -> tuple[str, ...]:
    """A volume's access modes as upstream's index keys them: known modes, fixed order, once."""
    have = set(modes or ())
    return tuple(m for m in ACCESS_MODES if m in have)


# ------------------------------------------------------------------ binding relations
def is_volume_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """IsVolumeBoundToClaim: the volume's claimRef names this claim (and, when it has a
    uid, this very claim)."""
    ref = spec(volume).get("claimRef")
    if not ref:
        return False
    m = meta(claim)
    if ref.get("name") != m.get("name") or ref.get("namespace") != m.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == m.get("uid")


def volume_mode_mismatch(claim: Obj, volume: Obj) -> bool:
    """CheckVolumeModeMismatches (an unset mode is Filesystem on both sides)."""
    return (spec(claim).get("volumeMode") or "Filesystem") != (spec(volume).get("volumeMode") or "Filesystem")


def access_modes_satisfied(claim: Obj, volume: Obj) -> bool:
    """CheckAccessModes: the volume offers every mode the claim asks for."""
    offered = set(spec(volume).get("accessModes") or ())
    return all(m in offered for m in spec(claim).get("accessModes") or ())


def claim_reference(claim: Obj) -> Obj:
    """The ObjectReference a bound volume's spec.claimRef holds (reference.GetReference)."""
    m = meta(claim)
    ref = {"kind": "PersistentVolumeClaim", "namespace": m.get("namespace", ""), "name": m.get("name", ""),
           "uid": m.get("uid", ""), "apiVersion": "v1", "resourceVersion": m.get("resourceVersion", "")}
    return {k: v for k, v in ref.items() if v}


def bind_volume_to_claim(volume: Obj, claim: Obj) -> tuple[Obj, bool]:
    """GetBindVolumeToClaim: a copy of `volume` pointing at `claim`, and whether anything
    changed.  The bound-by-controller annotation marks a binding the user did not pre-set."""
    set_by_controller = not is_volume_bound_to_claim(volume, claim)
    clone = copy.deepcopy(volume)
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


def check_volume_satisfies_claim(volume: Obj, claim: Obj) -> Optional[str]:
    """checkVolumeSatisfyClaim: why a volume the claim asked for by name does not fit it
    (None when it fits)."""
    if meta(volume).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{meta(volume).get("name", "")}"'
    if storage_quantity(spec(volume).get("capacity")) < storage_quantity(
            (spec(claim).get("resources") or {}).get("requests")):
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode_mismatch(claim, volume):
        return "incompatible volumeMode"
    if not access_modes_satisfied(claim, volume):
        return "incompatible accessMode"
    return None


# ------------------------------------------------------------------ matching
def find_matching_volume(claim: Obj, volumes: Iterable[Obj], *, delay_binding: bool = False,
                         node: Optional[Obj] = None, excluded: Optional[set[str]] = None,
                         node_affinity_ok: Optional[Callable[[Obj, Obj], bool]] = None) -> Optional[Obj]:
    """FindMatchingVolume: a volume pre-bound to the claim if one fits, else the smallest
    Available one of the claim's class, size, volume mode and selector.

    With `delay_binding` (the controller's path for WaitForFirstConsumer classes) only a
    pre-bound volume is returned: the scheduler binds the others.  `node` (the scheduler's
    path) also requires the volume's node affinity to admit that node (`node_affinity_ok`)
    and the access modes to fit."""
    requested = storage_quantity((spec(claim).get("resources") or {}).get("requests"))
    requested_class = claim_class(claim)
    selector = None
    if spec(claim).get("selector") is not None:
        try:
            selector = from_label_selector(spec(claim)["selector"])
        except SelectorError as e:
            raise MatchError(f"error creating internal label selector for claim: {claim_key(claim)}: {e}") from None
    claim_vac = spec(claim).get("volumeAttributesClassName") or ""
    smallest: Optional[Obj] = None
    smallest_qty = Fraction(0)
    for volume in volumes:
        if excluded and meta(volume).get("name") in excluded:
            continue
        if spec(volume).get("claimRef") and not is_volume_bound_to_claim(volume, claim):
            continue
        qty = storage_quantity(spec(volume).get("capacity"))
        if qty < requested:
            continue
        if volume_mode_mismatch(claim, volume):
            continue
        if (spec(volume).get("volumeAttributesClassName") or "") != claim_vac:
            continue
        if meta(volume).get("deletionTimestamp"):
            continue
        affinity_ok = True
        if node is not None and node_affinity_ok is not None:
            affinity_ok = node_affinity_ok(volume, node)
        if is_volume_bound_to_claim(volume, claim):
            # a pre-bound volume is the answer, or (wrong node) there is none
            return volume if affinity_ok else None
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
            smallest, smallest_qty = volume, qty
    return smallest


def find_best_match_for_claim(claim: Obj, volumes: Iterable[Obj], *, delay_binding: bool = False) -> Optional[Obj]:
    """findBestMatchForClaim: try the volumes grouped by their access-mode sets that hold
    every mode the claim asks for, fewest modes first, so a claim gets the closest fit."""
    groups: dict[tuple[str, ...], list[Obj]] = {}
    for v in volumes:
        groups.setdefault(access_modes_key(spec(v).get("accessModes")), []).append(v)
    wanted = set(spec(claim).get("accessModes") or ())
    candidates = [k for k in groups if wanted <= set(k)]
    candidates.sort(key=len)  # stable: equal-size sets keep their first-seen order
    for modes in candidates:
        # a name order inside a group makes equal-size picks deterministic
        best = find_matching_volume(claim, sorted(groups[modes], key=lambda v: meta(v).get("name", "")),
                                    delay_binding=delay_binding)
        if best is not None:
            return best
    return None


# ------------------------------------------------------------------ pods
def _not_running(statuses: Optional[list[Obj]]) -> bool:
    for s in statuses or ():
        state = s.get("state") or {}
        if "terminated" not in state and "waiting" not in state:
            return False
    return True


def is_pod_terminated(pod: Obj) -> bool:
    """volumeutil.IsPodTerminated: terminal phase, or deleted with nothing left running."""
    st = pod.get("status") or {}
    if st.get("phase") in ("Failed", "Succeeded"):
        return True
    return bool(meta(pod).get("deletionTimestamp")) and _not_running(st.get("initContainerStatuses")) \
        and _not_running(st.get("containerStatuses")) and _not_running(st.get("ephemeralContainerStatuses"))


def pod_claim_keys(pod: Obj) -> list[str]:
    """`namespace/claim` of every claim a pod's volumes name (upstream's PodPVCIndex):
    persistentVolumeClaim volumes and the claims of generic ephemeral volumes."""
    ns = meta(pod).get("namespace", "")
    out = []
    for vol in spec(pod).get("volumes") or ():
        if (vol.get("persistentVolumeClaim") or {}).get("claimName"):
            out.append(f"{ns}/{vol['persistentVolumeClaim']['claimName']}")
        elif vol.get("ephemeral") is not None:
            out.append(f"{ns}/{meta(pod).get('name', '')}-{vol.get('name', '')}")
    return out


def default_class(classes: Iterable[Obj]) -> Optional[Obj]:
    """GetDefaultClass: of the classes marked default, the newest (then by name)."""
    defaults = [c for c in classes if any((annotations(c).get(a) == "true") for a in DEFAULT_CLASS_ANNOTATIONS)]
    if not defaults:
        return None
    defaults.sort(key=lambda c: meta(c).get("name", ""))
    defaults.sort(key=lambda c: meta(c).get("creationTimestamp", ""), reverse=True)
    return defaults[0]
