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

The matching rules (FindMatchingVolume, CheckNodeAffinity, GetBindVolumeToClaim), shared
with the PV controller, live in kybernetes/api/storagehelpers.py."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from kybernetes.api.storagehelpers import (
    ANN_BIND_COMPLETED,
    ANN_SELECTED_NODE,
    NOT_SUPPORTED_PROVISIONER,
    MatchError,
    annotations as annotations_of,
    bind_volume_to_claim,
    check_node_affinity,
    claim_class,
    claim_key,
    find_matching_volume,
    is_delay_binding_mode,
    meta as meta_of,
    pod_claims,
    requested_storage,
    volume_class,
    volume_is_for_pod,
)
from kybernetes.scheduler.framework import Code, Status
from kybernetes.scheduler.volumecache import VolumeCache, resource_version

log = logging.getLogger("kybernetes.scheduler.volumebinding")
Obj = dict[str, Any]

NAME = "VolumeBinding"

ERR_REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_REASON_NOT_ENOUGH_SPACE = "node(s) did not have enough free storage"
ERR_REASON_PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"

# upstream VolumeBindingArgs.bindTimeoutSeconds default
DEFAULT_BIND_TIMEOUT = 600.0
# how often PreBind re-checks when no PV/PVC event arrives (pod deletion, node changes)
RECHECK_INTERVAL = 1.0


class VolumeBindingError(Exception):
    """Something other than a misfit: the plugin answers Error, not Unschedulable."""


def is_pvc_fully_bound(pvc: Mapping[str, Any]) -> bool:
    """Bound, and the PV controller has finished (it sets bind-completed)."""
    return bool((pvc.get("spec") or {}).get("volumeName")) and ANN_BIND_COMPLETED in annotations_of(pvc)


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
        ns = meta_of(pod).get("namespace") or ""
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
            if meta_of(pvc).get("deletionTimestamp"):
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
                delayed = is_delay_binding_mode(pvc, vc.storage_class)
            except MatchError as e:
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

    # -- Filter
    def filter(self, state, pod, ni):
        s: Optional[_State] = state.get(NAME)
        if s is None:
            return None
        node = ni.node
        try:
            pv_vols, reasons = self.find_pod_volumes(s, node)
        except (VolumeBindingError, MatchError) as e:
            return Status.as_error(e)
        if reasons:
            return Status.unresolvable(*reasons)
        s.by_node[ni.name] = pv_vols
        return None

    def find_pod_volumes(self, s: _State, node: Obj) -> tuple[PodVolumes, list[str]]:
        """FindPodVolumes: this node's bindings and provisions, or why it cannot serve."""
        vols = PodVolumes()
        labels = meta_of(node).get("labels") or {}
        node_name = meta_of(node).get("name")
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
                sel = annotations_of(pvc).get(ANN_SELECTED_NODE)
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
                    chosen[meta_of(pv)["name"]] = pv
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
                raise VolumeBindingError(f'no class for claim "{claim_key(pvc)}"')
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
        ns = meta_of(pod).get("namespace") or ""
        for name, _ in pod_claims(pod):
            pvc = vc.pvc(ns, name)
            if pvc is None or not is_pvc_fully_bound(pvc):
                return False
        return True

    @staticmethod
    def _revert(vc: VolumeCache, bindings: Sequence[tuple[Obj, Obj]], provisions: Sequence[Obj]) -> None:
        for pv, _ in bindings:
            vc.pvs.restore(meta_of(pv).get("name", ""))
        for pvc in provisions:
            vc.pvcs.restore(claim_key(pvc))

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
                log.info("scheduler: binding PV %s to claim %s", meta_of(pv).get("name"), claim_key(pvc))
                new = await pvs.update({"apiVersion": "v1", "kind": "PersistentVolume", **pv})
                vols.static_bindings[i] = (new, pvc)
                done_b += 1
            for i, pvc in enumerate(vols.dynamic_provisions):
                new = await pvcs.update({"apiVersion": "v1", "kind": "PersistentVolumeClaim", **pvc},
                                        meta_of(pvc).get("namespace"))
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
        labels = meta_of(node).get("labels") or {}
        is_assumed = getattr(snap, "is_assumed", None)
        if is_assumed is not None and not is_assumed(pod):
            raise VolumeBindingError("binding volumes: pod does not exist any more")
        for pv, pvc in vols.static_bindings:
            name = meta_of(pv).get("name", "")
            api_pv = vc.pvs.get_api(name)
            if api_pv is None:
                raise VolumeBindingError(f'binding volumes: failed to check binding: persistentvolume "{name}" not found')
            api_pvc = vc.pvcs.get_api(claim_key(pvc))
            if api_pvc is None:
                raise VolumeBindingError(f'binding volumes: failed to check binding: '
                                         f'persistentvolumeclaim "{claim_key(pvc)}" not found')
            if resource_version(pv) > resource_version(api_pv):
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
            api_pvc = vc.pvcs.get_api(claim_key(pvc))
            if api_pvc is None:
                raise VolumeBindingError(f'binding volumes: failed to check provisioning pvc: '
                                         f'persistentvolumeclaim "{claim_key(pvc)}" not found')
            if resource_version(pvc) > resource_version(api_pvc):
                return False
            if annotations_of(api_pvc).get(ANN_SELECTED_NODE) != node_name:
                # the provisioner drops the annotation to ask for another try
                raise VolumeBindingError(f'binding volumes: provisioning failed for PVC "{meta_of(pvc).get("name")}"')
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
