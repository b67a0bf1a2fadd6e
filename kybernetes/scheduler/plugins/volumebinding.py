"""VolumeBinding: places pods that use PersistentVolumeClaims where their volumes can be
(upstream pkg/scheduler/framework/plugins/volumebinding).

- PreFilter: every claim the pod names must exist and not be going away; claims of
  Immediate classes (or of no class) must already be bound — the PV controller binds
  those, the scheduler only waits.  Pods without claims skip the plugin.
- Filter, per node: a bound claim's PV must accept the node (spec.nodeAffinity); an unbound
  claim of a WaitForFirstConsumer class needs an Available PV that fits it and accepts the
  node (the smallest such), or, for a class with a real provisioner, a class whose
  allowedTopologies admit the node (it will be provisioned there).  Two claims of one pod
  never get the same PV.
- Reserve: the chosen PVs are assumed pre-bound in the scheduler's volume cache (and claims
  to provision assumed annotated with the selected node), so the next pods see them taken;
  Unreserve restores them.
- PreBind: writes the decisions (PV spec.claimRef; PVC volume.kubernetes.io/selected-node)
  and waits, up to the bind timeout, until the PV controller has bound every claim.

The matching rules (FindMatchingVolume, CheckNodeAffinity, GetBindVolumeToClaim) are the
PV controller's too (upstream component-helpers/storage/volume); they live here as plain
functions over dicts."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from kybernetes.api.selectors import SelectorError, from_label_selector
from kybernetes.scheduler.framework import Code, Status
from kybernetes.scheduler.plugins.helpers import match_node_selector_terms
from kybernetes.scheduler.resources import parse_quantity
from kybernetes.scheduler.volumecache import VolumeCache

log = logging.getLogger("kybernetes.scheduler.volumebinding")
Obj = dict[str, Any]

NAME = "VolumeBinding"

ERR_REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_REASON_NOT_ENOUGH_SPACE = "node(s) did not have enough free storage"
ERR_REASON_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
NOT_SUPPORTED_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"

# upstream VolumeBindingArgs.bindTimeoutSeconds default
DEFAULT_BIND_TIMEOUT = 600.0
# how often PreBind re-checks when no PV/PVC event arrives (pod deletion, node changes)
RECHECK_INTERVAL = 1.0


class VolumeBindingError(Exception):
    """Something other than a misfit: the plugin answers Error, not Unschedulable."""


# --------------------------------------------------------------------------- object helpers

def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _ann(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return _meta(obj).get("annotations") or {}


def _version(obj: Mapping[str, Any]) -> int:
    try:
        return int(_meta(obj).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def claim_class(pvc: Mapping[str, Any]) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins over spec.storageClassName."""
    ann = _ann(pvc).get(ANN_STORAGE_CLASS)
    if ann is not None:
        return ann
    return (pvc.get("spec") or {}).get("storageClassName") or ""


def volume_class(pv: Mapping[str, Any]) -> str:
    """GetPersistentVolumeClass."""
    ann = _ann(pv).get(ANN_STORAGE_CLASS)
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
    return f"{_meta(pod).get('name', '')}-{volume.get('name', '')}"


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
    if _meta(pod).get("namespace") != namespace:
        return False
    return any(n == name for n, _ in pod_claims(pod))


def volume_is_for_pod(pod: Mapping[str, Any], pvc: Mapping[str, Any]) -> Optional[str]:
    """An ephemeral volume's claim must be controlled by the pod; the error text otherwise."""
    uid = _meta(pod).get("uid")
    for ref in _meta(pvc).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("uid") == uid:
            return None
    pm, cm = _meta(pod), _meta(pvc)
    return (f"PVC {cm.get('namespace')}/{cm.get('name')} was not created for pod "
            f"{pm.get('namespace')}/{pm.get('name')} (pod is not owner)")


def is_pvc_fully_bound(pvc: Mapping[str, Any]) -> bool:
    """Bound, and the PV controller has finished (it sets bind-completed)."""
    return bool((pvc.get("spec") or {}).get("volumeName")) and ANN_BIND_COMPLETED in _ann(pvc)


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
    m = _meta(pvc)
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
            m = _meta(pvc)
            raise VolumeBindingError(f"error creating internal label selector for claim: "
                                     f"{m.get('namespace')}/{m.get('name')}: {e}") from None
    node_labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    smallest: Optional[Obj] = None
    smallest_qty: Any = None
    for pv in volumes:
        name = _meta(pv).get("name")
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
        if _meta(pv).get("deletionTimestamp"):
            continue
        affinity_ok = True if node is None else check_node_affinity(pv, node_labels)
        if is_volume_bound_to_claim(pv, pvc):
            return pv if affinity_ok else None  # type: ignore[return-value]
        if node is None and delay_binding:
            continue
        if (pv.get("status") or {}).get("phase") != "Available":
            continue  # not ready for binding yet; trying now would only conflict
        if selector is not None and not selector.matches(_meta(pv).get("labels") or {}):
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
    m = _meta(pvc)
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
    m = _meta(pvc)
    if (not ref or ref.get("name") != m.get("name") or ref.get("namespace") != m.get("namespace")
            or ref.get("uid") != m.get("uid")):
        new.setdefault("spec", {})["claimRef"] = claim_ref(pvc)
        dirty = True
    if not already and ANN_BOUND_BY_CONTROLLER not in _ann(new):
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


def _pvc_key(pvc: Mapping[str, Any]) -> str:
    m = _meta(pvc)
    return f"{m.get('namespace')}/{m.get('name')}"


# --------------------------------------------------------------------------- cycle state

@dataclass
class PodVolumes:
    """What one node needs: PVs to pre-bind to claims, claims to provision there."""

    static_bindings: list[tuple[Obj, Obj]] = field(default_factory=list)   # (pv, pvc)
    dynamic_provisions: list[Obj] = field(default_factory=list)


@dataclass
class _State:
    volumes: VolumeCache
    bound: list[Obj]
    delay: list[Obj]
    delay_pvs: dict[str, list[Obj]]           # storage class -> its PVs, listed once per cycle
    by_node: dict[str, PodVolumes] = field(default_factory=dict)
    all_bound: bool = False


def _volumes_of(state: Any) -> Optional[VolumeCache]:
    return getattr(getattr(state, "snapshot", None), "volumes", None)


# --------------------------------------------------------------------------- the plugin

class VolumeBinding:
    """The plugin.  `bind_timeout` (seconds; upstream VolumeBindingArgs.bindTimeoutSeconds,
    default 600) bounds how long PreBind waits for the claims to be bound."""

    name = NAME

    def __init__(self, client: Any, bind_timeout: float = DEFAULT_BIND_TIMEOUT) -> None:
        self.client = client
        self.bind_timeout = bind_timeout

    # -- PreFilter
    def pre_filter(self, state, pod):
        claims = pod_claims(pod)
        if not claims:
            return Status(Code.SKIP)
        vc = _volumes_of(state)
        if vc is None:
            return Status.as_error(VolumeBindingError("the scheduler has no volume cache"))
        ns = _meta(pod).get("namespace") or ""
        pvcs = []
        for name, ephemeral in claims:
            pvc = vc.pvc(ns, name)
            if pvc is None:
                if ephemeral:
                    return Status.unresolvable(
                        f'waiting for ephemeral volume controller to create the persistentvolumeclaim "{name}"')
                return Status.unresolvable(f'persistentvolumeclaim "{name}" not found')
            if (pvc.get("status") or {}).get("phase") == "Lost":
                return Status.unresolvable(f'persistentvolumeclaim "{name}" bound to non-existent persistentvolume '
                                           f'"{(pvc.get("spec") or {}).get("volumeName", "")}"')
            if _meta(pvc).get("deletionTimestamp"):
                return Status.unresolvable(f'persistentvolumeclaim "{name}" is being deleted')
            if ephemeral:
                err = volume_is_for_pod(pod, pvc)
                if err:
                    return Status.unresolvable(err)
            pvcs.append(pvc)
        bound, delay, immediate = [], [], []
        for pvc in pvcs:
            if is_pvc_fully_bound(pvc):
                bound.append(pvc)
                continue
            try:
                delayed = self._delay_binding(vc, pvc)
            except VolumeBindingError as e:
                return Status.as_error(e)
            # a claim pre-bound to a PV by its user binds as if Immediate: the PV controller's job
            if delayed and not (pvc.get("spec") or {}).get("volumeName"):
                delay.append(pvc)
            else:
                immediate.append(pvc)
        if immediate:
            return Status.unresolvable(ERR_UNBOUND_IMMEDIATE)
        delay_pvs: dict[str, list[Obj]] = {}
        if delay:
            classes = {claim_class(c) for c in delay}
            for pv in vc.pvs.list():
                c = volume_class(pv)
                if c in classes:
                    delay_pvs.setdefault(c, []).append(pv)
        state[NAME] = _State(vc, bound, delay, delay_pvs)
        return None

    @staticmethod
    def _delay_binding(vc: VolumeCache, pvc: Obj) -> bool:
        """IsDelayBindingMode: the claim's class exists and waits for the first consumer."""
        cls = claim_class(pvc)
        if not cls:
            return False
        sc = vc.storage_class(cls)
        if sc is None:
            return False
        mode = sc.get("volumeBindingMode")
        if not mode:
            raise VolumeBindingError(f'VolumeBindingMode not set for StorageClass "{cls}"')
        return mode == WAIT_FOR_FIRST_CONSUMER

    # -- Filter
    def filter(self, state, pod, ni):
        s: Optional[_State] = state.get(NAME)
        if s is None:
            return None
        node = ni.node
        try:
            pv_vols, reasons = self.find_pod_volumes(s, node)
        except VolumeBindingError as e:
            return Status.as_error(e)
        if reasons:
            return Status.unresolvable(*reasons)
        s.by_node[ni.name] = pv_vols
        return None

    def find_pod_volumes(self, s: _State, node: Obj) -> tuple[PodVolumes, list[str]]:
        """FindPodVolumes: this node's bindings and provisions, or why it cannot serve."""
        vols = PodVolumes()
        labels = _meta(node).get("labels") or {}
        node_name = _meta(node).get("name")
        bound_ok, pvs_found, unbound_ok = True, True, True
        reasons: list[str] = []
        for pvc in s.bound:
            pv = s.volumes.pv((pvc.get("spec") or {}).get("volumeName") or "")
            if pv is None:
                pvs_found = False
                break
            if not check_node_affinity(pv, labels):
                bound_ok = False
                break
        if s.delay:
            to_match, to_provision = [], []
            for pvc in s.delay:
                sel = _ann(pvc).get(ANN_SELECTED_NODE)
                if sel is not None:
                    if sel != node_name:
                        unbound_ok = False  # provisioning already started for another node
                        break
                    to_provision.append(pvc)
                else:
                    to_match.append(pvc)
            if unbound_ok:
                chosen: dict[str, Obj] = {}
                # the smallest claims choose first, so the big PVs stay for the big claims
                for pvc in sorted(to_match, key=requested_storage):
                    pv = find_matching_volume(pvc, s.delay_pvs.get(claim_class(pvc), ()), node, chosen)
                    if pv is None:
                        to_provision.append(pvc)
                        unbound_ok = False
                        continue
                    chosen[_meta(pv)["name"]] = pv
                    vols.static_bindings.append((pv, pvc))
                if to_provision:
                    unbound_ok, provisions = self._check_provisions(s.volumes, to_provision, labels)
                    vols.dynamic_provisions = provisions
        if not bound_ok:
            reasons.append(ERR_REASON_NODE_CONFLICT)
        if not unbound_ok:
            reasons.append(ERR_REASON_BIND_CONFLICT)
        if not pvs_found:
            reasons.append(ERR_REASON_PV_NOT_EXIST)
        return vols, reasons

    @staticmethod
    def _check_provisions(vc: VolumeCache, claims: list[Obj], labels: Mapping[str, str]) -> tuple[bool, list[Obj]]:
        """checkVolumeProvisions: every claim left needs a class that provisions, and whose
        allowedTopologies admit the node.  (No CSIStorageCapacity tracking here.)"""
        out = []
        for pvc in claims:
            cls = claim_class(pvc)
            if not cls:
                raise VolumeBindingError(f'no class for claim "{_pvc_key(pvc)}"')
            sc = vc.storage_class(cls)
            if sc is None:
                raise VolumeBindingError(f'failed to find storage class "{cls}"')
            prov = sc.get("provisioner") or ""
            if not prov or prov == NOT_SUPPORTED_PROVISIONER:
                return False, []
            if not match_topology_terms(sc.get("allowedTopologies"), labels):
                return False, []
            out.append(pvc)
        return True, out

    # -- Reserve / Unreserve
    def reserve(self, state, pod, node_name):
        s: Optional[_State] = state.get(NAME)
        if s is None:
            return None
        vols = s.by_node.get(node_name)
        if vols is None:
            s.all_bound = True
            return None
        if self._all_bound(s.volumes, pod):
            s.all_bound = True
            return None
        bindings: list[tuple[Obj, Obj]] = []
        provisions: list[Obj] = []
        try:
            for pv, pvc in vols.static_bindings:
                new_pv, dirty = bind_volume_to_claim(pv, pvc)
                if dirty:
                    s.volumes.pvs.assume(new_pv)
                bindings.append((new_pv, pvc))
            for pvc in vols.dynamic_provisions:
                clone = copy.deepcopy(pvc)
                clone.setdefault("metadata", {}).setdefault("annotations", {})[ANN_SELECTED_NODE] = node_name
                s.volumes.pvcs.assume(clone)
                provisions.append(clone)
        except (LookupError, ValueError) as e:
            self._revert(s.volumes, bindings, provisions)
            return Status.as_error(e)
        vols.static_bindings, vols.dynamic_provisions = bindings, provisions
        s.all_bound = False
        return None

    @staticmethod
    def _all_bound(vc: VolumeCache, pod: Obj) -> bool:
        ns = _meta(pod).get("namespace") or ""
        for name, _ in pod_claims(pod):
            pvc = vc.pvc(ns, name)
            if pvc is None or not is_pvc_fully_bound(pvc):
                return False
        return True

    @staticmethod
    def _revert(vc: VolumeCache, bindings: Sequence[tuple[Obj, Obj]], provisions: Sequence[Obj]) -> None:
        for pv, _ in bindings:
            vc.pvs.restore(_meta(pv).get("name", ""))
        for pvc in provisions:
            vc.pvcs.restore(_pvc_key(pvc))

    def unreserve(self, state, pod, node_name):
        s: Optional[_State] = state.get(NAME)
        if s is None:
            return
        vols = s.by_node.get(node_name)
        if vols is not None:
            self._revert(s.volumes, vols.static_bindings, vols.dynamic_provisions)

    # -- PreBind
    async def pre_bind(self, state, pod, node_name):
        s: Optional[_State] = state.get(NAME)
        if s is None or s.all_bound:
            return None
        vols = s.by_node.get(node_name)
        if vols is None:
            return Status.as_error(VolumeBindingError(f'no pod volumes found for node "{node_name}"'))
        try:
            await self._api_update(s.volumes, vols)
            await self._wait_bound(state, s.volumes, pod, node_name, vols)
        except Exception as e:  # noqa: BLE001 - any failure sends the pod back to the queue
            return Status.as_error(e)
        return None

    async def _api_update(self, vc: VolumeCache, vols: PodVolumes) -> None:
        """Pre-bind each PV to its claim and mark each claim to provision; the PV controller
        does the rest.  What was not written is restored in the cache; nothing written is
        rolled back (as upstream)."""
        pvs = self.client.resource("", "v1", "persistentvolumes")
        pvcs = self.client.resource("", "v1", "persistentvolumeclaims")
        done_b = done_p = 0
        try:
            for i, (pv, pvc) in enumerate(vols.static_bindings):
                log.info("scheduler: binding PV %s to claim %s", _meta(pv).get("name"), _pvc_key(pvc))
                new = await pvs.update({"apiVersion": "v1", "kind": "PersistentVolume", **pv})
                vols.static_bindings[i] = (new, pvc)
                done_b += 1
            for i, pvc in enumerate(vols.dynamic_provisions):
                new = await pvcs.update({"apiVersion": "v1", "kind": "PersistentVolumeClaim", **pvc},
                                        _meta(pvc).get("namespace"))
                vols.dynamic_provisions[i] = new
                done_p += 1
        finally:
            self._revert(vc, vols.static_bindings[done_b:], vols.dynamic_provisions[done_p:])

    async def _wait_bound(self, state, vc: VolumeCache, pod: Obj, node_name: str, vols: PodVolumes) -> None:
        deadline = time.monotonic() + self.bind_timeout
        while True:
            if self._check_bindings(state, vc, pod, node_name, vols):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise VolumeBindingError("binding volumes: timed out waiting for the condition")
            await vc.wait_changed(min(RECHECK_INTERVAL, left))

    @staticmethod
    def _check_bindings(state, vc: VolumeCache, pod: Obj, node_name: str, vols: PodVolumes) -> bool:
        """checkBindings, on the API objects the informers delivered: True once every claim
        is fully bound; an error when binding cannot finish here and scheduling must retry."""
        snap = getattr(state, "snapshot", None)
        ni = getattr(snap, "nodes", {}).get(node_name) if snap is not None else None
        node = getattr(ni, "node", None)
        if node is None:
            raise VolumeBindingError(f'binding volumes: failed to get node "{node_name}"')
        labels = _meta(node).get("labels") or {}
        is_assumed = getattr(snap, "is_assumed", None)
        if is_assumed is not None and not is_assumed(pod):
            raise VolumeBindingError("binding volumes: pod does not exist any more")
        for pv, pvc in vols.static_bindings:
            name = _meta(pv).get("name", "")
            api_pv = vc.pvs.get_api(name)
            if api_pv is None:
                raise VolumeBindingError(f'binding volumes: failed to check binding: persistentvolume "{name}" not found')
            api_pvc = vc.pvcs.get_api(_pvc_key(pvc))
            if api_pvc is None:
                raise VolumeBindingError(f'binding volumes: failed to check binding: '
                                         f'persistentvolumeclaim "{_pvc_key(pvc)}" not found')
            if _version(pv) > _version(api_pv):
                return False  # our own write has not come back through the watch yet
            if not check_node_affinity(api_pv, labels):
                raise VolumeBindingError(f'binding volumes: pv "{name}" node affinity doesn\'t match node '
                                         f'"{node_name}": no matching NodeSelectorTerms')
            ref = (api_pv.get("spec") or {}).get("claimRef") or {}
            if not ref.get("uid"):
                raise VolumeBindingError(f'binding volumes: ClaimRef got reset for pv "{name}"')
            if not is_pvc_fully_bound(api_pvc):
                return False
        for pvc in vols.dynamic_provisions:
            api_pvc = vc.pvcs.get_api(_pvc_key(pvc))
            if api_pvc is None:
                raise VolumeBindingError(f'binding volumes: failed to check provisioning pvc: '
                                         f'persistentvolumeclaim "{_pvc_key(pvc)}" not found')
            if _version(pvc) > _version(api_pvc):
                return False
            if _ann(api_pvc).get(ANN_SELECTED_NODE) != node_name:
                # the provisioner drops the annotation to ask for another try
                raise VolumeBindingError(f'binding volumes: provisioning failed for PVC "{_meta(pvc).get("name")}"')
            vname = (api_pvc.get("spec") or {}).get("volumeName")
            if vname:
                api_pv = vc.pvs.get_api(vname)
                if api_pv is None:
                    return False  # not seen yet
                if not check_node_affinity(api_pv, labels):
                    raise VolumeBindingError(f'binding volumes: pv "{vname}" node affinity doesn\'t match node '
                                             f'"{node_name}": no matching NodeSelectorTerms')
            if not is_pvc_fully_bound(api_pvc):
                return False
        return True


# --------------------------------------------------------------------------- queueing hints

def storage_class_change_matters(old: Optional[Obj], new: Obj) -> bool:
    """A new class may help any pod; an update only when allowedTopologies changed (the
    binding mode is immutable)."""
    return old is None or (old.get("allowedTopologies") != new.get("allowedTopologies"))
