"""The persistent volume binder (upstream pkg/controller/volume/persistentvolume): binds
PersistentVolumeClaims to PersistentVolumes and runs the reclaim policy of released volumes.

The binding is a two-sided pointer — PV.spec.claimRef and PVC.spec.volumeName — written
without transactions, so each sync looks at both sides and finishes or repairs whatever a
previous sync, the user or the scheduler left half done.  Order of one binding, as
upstream: PV spec (claimRef), PV status (Bound), PVC spec (volumeName + annotations),
PVC status (Bound, access modes, capacity).  A conflict fails the sync, which is retried.

- Claims (`claim/<ns>/<name>` keys): an unbound claim gets the volume pre-bound to it or
  the smallest Available one that fits (persistentvolume_match); a claim of a
  WaitForFirstConsumer class only binds a volume the scheduler pre-bound to it.  No match:
  Pending, with the upstream event (FailedBinding / WaitForFirstConsumer /
  WaitForPodScheduled / ProvisioningFailed / ExternalProvisioning).  A bound claim whose
  volume vanished or went to another claim is Lost.
- Volumes (`volume/<name>` keys): no claimRef -> Available; the claim gone -> Released,
  then Retain keeps it, Delete and Recycle fail (no deleter or recycler plugins run here)
  unless an external provisioner owns the volume.
- Everything is re-synced every 15 s (upstream's default --pvclaimbinder-sync-period).

Writes are remembered (`_Cache`) so a sync never acts on an informer copy older than what
this controller itself already wrote, as upstream's storeObjectUpdate does.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import shutil
from typing import Any, Optional

from kybernetes.api import storagehelpers as m
from kybernetes.client.errors import NotFound
from kybernetes.client.informer import Informer, object_key
from kybernetes.controllers.persistentvolume_match import check_volume_satisfies_claim, find_best_match_for_claim
from kybernetes.controllers.base import Controller, ReconcileError

Obj = dict[str, Any]

RESYNC_PERIOD = 15.0
CLAIM, VOLUME = "claim/", "volume/"
POD_PVC_INDEX = "pod-pvc"

# event reasons (upstream pkg/controller/volume/events)
FAILED_BINDING = "FailedBinding"
VOLUME_MISMATCH = "VolumeMismatch"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
WAIT_FOR_POD_SCHEDULED = "WaitForPodScheduled"
PROVISIONING_FAILED = "ProvisioningFailed"
EXTERNAL_PROVISIONING = "ExternalProvisioning"
VOLUME_FAILED_DELETE = "VolumeFailedDelete"
VOLUME_FAILED_RECYCLE = "VolumeFailedRecycle"
VOLUME_UNKNOWN_RECLAIM_POLICY = "VolumeUnknownReclaimPolicy"


HOST_PATH_PLUGIN = "kubernetes.io/host-path"
_HOST_PATH_DELETABLE = re.compile("/tmp/.+")


def delete_host_path(volume_name: str, source: Optional[Obj]) -> Optional[str]:
    """upstream's hostPath deleter (blocking: run it in a thread): removes the directory
    when its path matches /tmp/.+; answers why not otherwise (None when done)."""
    if source is None:
        return (f'failed to create deleter for volume "{volume_name}": '
                "spec.PersistentVolumeSource.HostPath is nil")
    path = source.get("path") or ""
    # stricter than upstream's unanchored match: only what really lies below /tmp (no
    # "/data/tmp/x", no "/tmp/../etc", no symlinked way out) may be removed
    real = os.path.realpath(path)
    if not _HOST_PATH_DELETABLE.match(path) or not real.startswith("/tmp/") or real == "/tmp/":
        return f"host_path deleter only supports /tmp/.+ but received provided {path}"
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass  # already gone, as os.RemoveAll allows
    except OSError as e:
        return str(e)
    return None


def _rv(obj: Optional[Obj]) -> int:
    try:
        return int(m.meta(obj or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class _Cache:
    """An informer's objects overlaid with the controller's own newer writes."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self.written: dict[str, Obj] = {}

    def get(self, key: str) -> Optional[Obj]:
        cached, mine = self.informer.get(key), self.written.get(key)
        if mine is None:
            return cached
        if cached is None or _rv(cached) >= _rv(mine):
            # gone (only objects the informer knew are ever written), or the informer caught up
            self.written.pop(key, None)
            return cached
        return mine

    def list(self) -> list[Obj]:
        return [o for o in (self.get(k) for k in sorted(self.informer.store.keys())) if o is not None]

    def store(self, obj: Obj) -> None:
        self.written[object_key(obj)] = obj

    def forget(self, key: str) -> None:
        self.written.pop(key, None)


class PersistentVolumeController(Controller):
    """Upstream's PersistentVolumeController ("persistentvolume-binder"), without dynamic
    provisioning plugins (external provisioners are told about claims by annotation)."""

    name = "persistentvolume-binder"
    event_source = "persistentvolume-controller"
    workers = 1  # syncClaim is not reentrant: two workers could bind one volume twice

    def __init__(self, client: Any, informers: Any = None, *, resync_period: float = RESYNC_PERIOD, **kw: Any) -> None:
        self.resync_period = resync_period
        self._resync_task: Optional[asyncio.Task[None]] = None
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.pv_informer = self.watch("", "v1", "persistentvolumes", enqueue=None)
        self.pv_informer.add_handlers(on_add=self._volume_event, on_update=lambda o, n: self._volume_event(n),
                                      on_delete=self._volume_deleted)
        self.pvc_informer = self.watch("", "v1", "persistentvolumeclaims", enqueue=None)
        self.pvc_informer.add_handlers(on_add=self._claim_event, on_update=lambda o, n: self._claim_event(n),
                                       on_delete=self._claim_deleted)
        self.classes = self.watch("storage.k8s.io", "v1", "storageclasses", enqueue=None)
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.pods.store.add_index(POD_PVC_INDEX, m.pod_claim_keys)  # idempotent on the shared informer
        self.volumes = _Cache(self.pv_informer)
        self.claims = _Cache(self.pvc_informer)
        self.pv_api = self.resource("", "v1", "persistentvolumes")
        self.pvc_api = self.resource("", "v1", "persistentvolumeclaims")

    # ------------------------------------------------------------------ events -> keys
    def _volume_event(self, pv: Obj) -> None:
        self.enqueue(VOLUME + m.meta(pv).get("name", ""))

    def _volume_deleted(self, pv: Obj) -> None:
        self.volumes.forget(object_key(pv))
        ref = m.spec(pv).get("claimRef")
        if ref:  # the claim may now be Lost
            self.enqueue(CLAIM + m.claim_ref_key(ref))

    def _claim_event(self, pvc: Obj) -> None:
        self.enqueue(CLAIM + object_key(pvc))

    def _claim_deleted(self, pvc: Obj) -> None:
        self.claims.forget(object_key(pvc))
        name = m.spec(pvc).get("volumeName")
        if name:  # its volume is released
            self.enqueue(VOLUME + name)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, *, sync_timeout: Optional[float] = None) -> None:
        await super().start(sync_timeout=sync_timeout)
        self._resync_task = asyncio.get_running_loop().create_task(self._resync(), name=f"{self.name} resync")

    async def on_stop(self) -> None:
        task, self._resync_task = self._resync_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _resync(self) -> None:
        """Upstream's resync(): every period, every claim and volume is synced again (a
        claim waits for volumes that appear or become Available this way)."""
        while True:
            await asyncio.sleep(self.resync_period)
            for pvc in self.claims.list():
                self.enqueue(CLAIM + object_key(pvc))
            for pv in self.volumes.list():
                self.enqueue(VOLUME + object_key(pv))

    async def reconcile(self, key: str) -> None:
        if key.startswith(CLAIM):
            claim = self.claims.get(key[len(CLAIM):])
            if claim is not None:
                await self.sync_claim(claim)
        elif key.startswith(VOLUME):
            volume = self.volumes.get(key[len(VOLUME):])
            if volume is not None:
                await self.sync_volume(volume)

    # ------------------------------------------------------------------ claims
    async def sync_claim(self, claim: Obj) -> None:
        if not m.has_annotation(claim, m.ANN_BIND_COMPLETED):
            await self._sync_unbound_claim(claim)
        else:
            await self._sync_bound_claim(claim)

    def _delay_binding(self, claim: Obj) -> bool:
        """IsDelayBindingMode: the claim's class binds at the first consumer."""
        try:
            return m.is_delay_binding_mode(claim, self.classes.get)
        except m.MatchError as e:
            raise ReconcileError(str(e)) from None

    async def _sync_unbound_claim(self, claim: Obj) -> None:
        volume_name = m.spec(claim).get("volumeName") or ""
        if not volume_name:
            delay = self._delay_binding(claim)
            try:
                volume = find_best_match_for_claim(claim, self.volumes.list(), delay_binding=delay)
            except m.MatchError as e:
                raise ReconcileError(f'error finding PV for claim "{m.claim_key(claim)}": {e}') from None
            if volume is not None:
                await self._bind(volume, claim)
                return
            if await self._assign_default_class(claim):
                return  # the update brings the claim back with its class
            if delay and not m.has_annotation(claim, m.ANN_SELECTED_NODE):
                self._event_unbound_delayed(claim)
            elif m.claim_class(claim):
                await self._provision(claim)
                return  # upstream leaves the status to the (asynchronous) provisioning
            else:
                self.recorder.event(claim, "Normal", FAILED_BINDING,
                                    "no persistent volumes available for this claim and no storage class is set")
            await self._update_claim_status(claim, "Pending", None)
            return
        volume = self.volumes.get(volume_name)
        if volume is None:
            # the user asked for a volume that does not exist (yet)
            await self._update_claim_status(claim, "Pending", None)
            return
        if not m.spec(volume).get("claimRef"):
            why = check_volume_satisfies_claim(volume, claim)
            if why is not None:
                self.recorder.event(claim, "Warning", VOLUME_MISMATCH,
                                    f'Cannot bind to requested volume "{volume_name}": {why}')
                await self._update_claim_status(claim, "Pending", None)
            else:
                await self._bind(volume, claim)
            return
        if m.is_volume_bound_to_claim(volume, claim):
            await self._bind(volume, claim)  # finish the binding (adds the claim's uid)
            return
        self.recorder.event(claim, "Warning", FAILED_BINDING,
                            f'volume "{volume_name}" already bound to a different claim.')
        if not m.has_annotation(claim, m.ANN_BOUND_BY_CONTROLLER):
            await self._update_claim_status(claim, "Pending", None)
            return
        raise ReconcileError(f'invalid binding of claim "{m.claim_key(claim)}" to volume "{volume_name}": volume '
                         f'already claimed by "{m.claim_ref_key(m.spec(volume)["claimRef"])}"')

    async def _sync_bound_claim(self, claim: Obj) -> None:
        volume_name = m.spec(claim).get("volumeName") or ""
        if not volume_name:
            await self._claim_status_event(claim, "Lost", "Warning", "ClaimLost",
                                           "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            return
        volume = self.volumes.get(volume_name)
        if volume is None:
            await self._claim_status_event(claim, "Lost", "Warning", "ClaimLost",
                                           "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        ref = m.spec(volume).get("claimRef")
        if not ref or ref.get("uid") == m.meta(claim).get("uid"):
            # unbound volume (or a stale copy of one): bind again; bound: bind() checks both sides
            await self._bind(volume, claim)
            return
        await self._claim_status_event(claim, "Lost", "Warning", "ClaimMisbound",
                                       "Two claims are bound to the same volume, this one is bound incorrectly")

    def _event_unbound_delayed(self, claim: Obj) -> None:
        """emitEventForUnboundDelayBindingClaim: name the pods waiting for the scheduler."""
        pods = [m.meta(p).get("name", "") for p in self._pods_using(m.claim_key(claim))
                if not m.is_pod_terminated(p) and not m.spec(p).get("nodeName")]
        if not pods:
            self.recorder.event(claim, "Normal", WAIT_FOR_FIRST_CONSUMER,
                                "waiting for first consumer to be created before binding")
        elif len(pods) == 1:
            self.recorder.event(claim, "Normal", WAIT_FOR_POD_SCHEDULED, f"waiting for pod {pods[0]} to be scheduled")
        else:
            self.recorder.event(claim, "Normal", WAIT_FOR_POD_SCHEDULED,
                                f"waiting for pods {','.join(pods)} to be scheduled")

    def _pods_using(self, claim_key: str) -> list[Obj]:
        return self.pods.store.by_index(POD_PVC_INDEX, claim_key)

    async def _assign_default_class(self, claim: Obj) -> bool:
        """assignDefaultStorageClass: a claim created before any default class existed
        gets the default class now (retroactive default StorageClass assignment)."""
        if m.claim_has_class(claim):
            return False
        sc = m.default_class(self.classes.list())
        if sc is None:
            return False
        clone = self._typed(claim, "PersistentVolumeClaim")
        clone.setdefault("spec", {})["storageClassName"] = m.meta(sc)["name"]
        self.claims.store(await self.pvc_api.update(clone))
        return True

    async def _provision(self, claim: Obj) -> None:
        """provisionClaim without in-tree provisioners: an external provisioner is told by
        annotation and awaited; an in-tree one is missing."""
        name = m.claim_class(claim)
        sc = self.classes.get(name)
        if sc is None:
            self.recorder.event(claim, "Warning", PROVISIONING_FAILED, f'storageclass.storage.k8s.io "{name}" not found')
            return
        provisioner = sc.get("provisioner") or ""
        if provisioner.startswith("kubernetes.io/"):
            # no in-tree provisioning plugin runs here (kubernetes.io/no-provisioner included)
            self.recorder.event(claim, "Warning", PROVISIONING_FAILED, f"no volume plugin matched name: {provisioner}")
            return
        ann = m.annotations(claim)
        if ann.get(m.ANN_STORAGE_PROVISIONER) != provisioner or ann.get(m.ANN_BETA_STORAGE_PROVISIONER) != provisioner:
            clone = self._typed(claim, "PersistentVolumeClaim")
            anns = clone.setdefault("metadata", {}).setdefault("annotations", {})
            anns[m.ANN_STORAGE_PROVISIONER] = anns[m.ANN_BETA_STORAGE_PROVISIONER] = provisioner
            claim = await self.pvc_api.update(clone)
            self.claims.store(claim)
        self.recorder.event(claim, "Normal", EXTERNAL_PROVISIONING,
                            f"Waiting for a volume to be created either by the external provisioner '{provisioner}' "
                            "or manually by the system administrator. If volume creation is delayed, please verify "
                            "that the provisioner is running and correctly registered.")

    # ------------------------------------------------------------------ volumes
    async def sync_volume(self, volume: Obj) -> None:
        ref = m.spec(volume).get("claimRef")
        if not ref or not ref.get("uid"):
            # unused, or reserved for a claim whose sync will finish the binding
            await self._update_volume_phase(volume, "Available")
            return
        claim = await self._claim_of(volume, ref)
        if claim is None:
            if m.phase(volume) not in ("Released", "Failed"):
                volume = await self._update_volume_phase(volume, "Released")
            await self._reclaim(volume)
            return
        cspec = m.spec(claim)
        if not cspec.get("volumeName"):
            if m.volume_mode_mismatch(claim, volume):
                # the claim sync will never pick this volume; say why on both sides
                self.recorder.event(volume, "Warning", VOLUME_MISMATCH,
                                    "Cannot bind PersistentVolume to requested PersistentVolumeClaim "
                                    f'"{m.meta(claim).get("name", "")}" due to incompatible volumeMode.')
                self.recorder.event(claim, "Warning", VOLUME_MISMATCH,
                                    f'Cannot bind PersistentVolume "{m.meta(volume).get("name", "")}" to requested '
                                    "PersistentVolumeClaim due to incompatible volumeMode.")
                return
            # the binding is half done (by us, the user or the scheduler): the claim sync finishes it
            self.enqueue(CLAIM + m.claim_key(claim))
            return
        if cspec.get("volumeName") == m.meta(volume).get("name"):
            await self._update_volume_phase(volume, "Bound")
            return
        # the claim is bound to another volume
        if m.has_annotation(volume, m.ANN_DYNAMICALLY_PROVISIONED) and \
                m.spec(volume).get("persistentVolumeReclaimPolicy") == "Delete":
            if m.phase(volume) not in ("Released", "Failed"):
                volume = await self._update_volume_phase(volume, "Released")
            await self._reclaim(volume)
            return
        # ours: undo it; the user's pre-binding: keep it but drop the uid
        await self._unbind_volume(volume)

    async def _claim_of(self, volume: Obj, ref: Obj) -> Optional[Obj]:
        """The claim a bound volume points to, None when it is gone (or replaced by a new
        claim of the same name).  A miss in the cache is confirmed with the API server
        before a volume is released, since the claim may be newer than the cache."""
        key = m.claim_ref_key(ref)
        claim = self.claims.get(key)
        if claim is None and m.phase(volume) not in ("Released", "Failed"):
            claim = await self._get_claim(ref)
        if claim is not None and m.meta(claim).get("uid") != ref.get("uid"):
            claim = await self._get_claim(ref)
            if claim is not None and m.meta(claim).get("uid") != ref.get("uid"):
                claim = None
        return claim

    async def _get_claim(self, ref: Obj) -> Optional[Obj]:
        try:
            return await self.pvc_api.get(ref.get("name", ""), ref.get("namespace", ""))
        except NotFound:
            return None

    async def _reclaim(self, volume: Obj) -> None:
        """reclaimVolume: the reclaim policy of a released volume."""
        if m.annotations(volume).get(m.ANN_MIGRATED_TO):
            return  # a CSI driver's external provisioner owns it
        policy = m.spec(volume).get("persistentVolumeReclaimPolicy")
        if policy == "Retain":
            return
        if policy == "Recycle":
            await self._recycle(volume)
        elif policy == "Delete":
            await self._delete(volume)
        else:
            await self._volume_phase_event(volume, "Failed", "Warning", VOLUME_UNKNOWN_RECLAIM_POLICY,
                                           "Volume has unrecognized PersistentVolumeReclaimPolicy")

    async def _fresh_released(self, volume: Obj) -> Optional[Obj]:
        """The newest copy of the volume if it still needs reclaiming (upstream re-reads it
        before recycling or deleting)."""
        try:
            fresh = await self.pv_api.get(m.meta(volume)["name"])
        except NotFound:
            return None
        if not self._is_released(fresh):
            return None
        return fresh

    def _is_released(self, volume: Obj) -> bool:
        """isVolumeReleased: bound to a claim that no longer exists, or that is bound elsewhere."""
        ref = m.spec(volume).get("claimRef")
        if not ref or not ref.get("uid"):
            return False
        claim = self.claims.get(m.claim_ref_key(ref))
        if claim is not None and m.meta(claim).get("uid") == ref.get("uid"):
            name = m.spec(claim).get("volumeName")
            return bool(name) and name != m.meta(volume).get("name")
        return True

    async def _recycle(self, volume: Obj) -> None:
        fresh = await self._fresh_released(volume)
        if fresh is None:
            return
        ref = m.spec(fresh)["claimRef"]
        key = m.claim_ref_key(ref)
        using = sorted(f"{m.meta(p).get('namespace', '')}/{m.meta(p).get('name', '')}"
                       for p in self._pods_using(key) if not m.is_pod_terminated(p))
        if using and self.claims.get(key) is None:
            self.recorder.event(fresh, "Normal", VOLUME_FAILED_RECYCLE, f"Volume is used by pods: {','.join(using)}")
            return
        # no recycler plugin (hostPath/nfs scrubbing pods) runs here
        await self._volume_phase_event(fresh, "Failed", "Warning", VOLUME_FAILED_RECYCLE,
                                       "No recycler plugin found for the volume!")

    async def _delete(self, volume: Obj) -> None:
        """deleteVolumeOperation: the deleter plugin removes the storage, then the PV object
        goes.  Of the in-tree deleters only hostPath's exists here (it removes directories
        matching /tmp/.+, as upstream's, which is meant for single-node test clusters)."""
        fresh = await self._fresh_released(volume)
        if fresh is None:
            return
        name = m.meta(fresh).get("name", "")
        provisioned_by = m.annotations(fresh).get(m.ANN_DYNAMICALLY_PROVISIONED) or ""
        if provisioned_by and not provisioned_by.startswith("kubernetes.io/"):
            return  # an external provisioner deletes it
        if not provisioned_by and m.spec(fresh).get("csi") is not None:
            return  # a CSI volume: its external provisioner deletes it
        if provisioned_by and provisioned_by != HOST_PATH_PLUGIN:
            why: Optional[str] = f"no volume plugin matched name: {provisioned_by}"
        elif provisioned_by or m.spec(fresh).get("hostPath") is not None:
            why = await asyncio.to_thread(delete_host_path, name, m.spec(fresh).get("hostPath"))
        else:
            why = f'error getting deleter volume plugin for volume "{name}": no deletable volume plugin matched'
        if why is not None:
            # Failed, and retried at every sync (the event only once)
            await self._volume_phase_event(fresh, "Failed", "Warning", VOLUME_FAILED_DELETE, why)
            return
        self.log.info("volume %s deleted", name)
        try:
            await self.pv_api.delete(name)
        except NotFound:
            pass

    async def _unbind_volume(self, volume: Obj) -> None:
        """unbindVolume: roll back a binding the controller made; of a user's pre-binding
        only the uid goes, so the volume stays reserved for that claim name."""
        clone = self._typed(volume, "PersistentVolume")
        if m.has_annotation(volume, m.ANN_BOUND_BY_CONTROLLER):
            clone["spec"].pop("claimRef", None)
            anns = clone["metadata"].get("annotations") or {}
            anns.pop(m.ANN_BOUND_BY_CONTROLLER, None)
            if not anns:
                clone["metadata"].pop("annotations", None)
        else:
            clone["spec"]["claimRef"].pop("uid", None)
        updated = await self.pv_api.update(clone)
        self.volumes.store(updated)
        await self._update_volume_phase(updated, "Available")

    # ------------------------------------------------------------------ binding
    async def _bind(self, volume: Obj, claim: Obj) -> None:
        """bind(): volume spec, volume status, claim spec, claim status — in that order."""
        clone, dirty = m.bind_volume_to_claim(volume, claim)
        if dirty:
            volume = await self.pv_api.update(self._typed(clone, "PersistentVolume"))
            self.volumes.store(volume)
        volume = await self._update_volume_phase(volume, "Bound")
        claim = await self._bind_claim_to_volume(claim, volume)
        await self._update_claim_status(claim, "Bound", volume)

    async def _bind_claim_to_volume(self, claim: Obj, volume: Obj) -> Obj:
        clone = self._typed(claim, "PersistentVolumeClaim")
        anns = clone["metadata"].setdefault("annotations", {})
        dirty = False
        if m.spec(claim).get("volumeName") != m.meta(volume).get("name"):
            clone.setdefault("spec", {})["volumeName"] = m.meta(volume)["name"]
            anns.setdefault(m.ANN_BOUND_BY_CONTROLLER, "yes")
            dirty = True
        if m.ANN_BIND_COMPLETED not in anns:
            anns[m.ANN_BIND_COMPLETED] = "yes"
            dirty = True
        if not dirty:
            return claim
        updated = await self.pvc_api.update(clone)
        self.claims.store(updated)
        return updated

    # ------------------------------------------------------------------ status writes
    async def _update_claim_status(self, claim: Obj, phase: str, volume: Optional[Obj]) -> Obj:
        """updateClaimStatus: phase, and the volume's access modes and (when the claim
        becomes bound) capacity — or neither without a volume."""
        status = copy.deepcopy(claim.get("status") or {})
        dirty = False
        if status.get("phase") != phase:
            status["phase"] = phase
            dirty = True
        if volume is None:
            for k in ("accessModes", "capacity"):
                if status.get(k) is not None:
                    status.pop(k)
                    dirty = True
        else:
            modes = m.spec(volume).get("accessModes")
            if status.get("accessModes") != modes:
                status["accessModes"] = modes
                dirty = True
            if (claim.get("status") or {}).get("phase") != phase:
                # a bound claim keeps its capacity: it may be a resized filesystem's
                cap = m.spec(volume).get("capacity") or {}
                if "storage" not in cap:
                    name = m.meta(volume).get("name", "")
                    raise ReconcileError(f'PersistentVolume "{name}" is without a storage capacity')
                have = (status.get("capacity") or {}).get("storage")
                if have is None or m.storage_quantity({"storage": have}) != m.storage_quantity(cap):
                    status["capacity"] = cap
                    dirty = True
        if not dirty:
            return claim
        clone = self._typed(claim, "PersistentVolumeClaim")
        clone["status"] = status
        updated = await self.pvc_api.update_status(clone)
        self.claims.store(updated)
        self.log.info("claim %s entered phase %s", m.claim_key(claim), phase)
        return updated

    async def _claim_status_event(self, claim: Obj, phase: str, type_: str, reason: str, note: str) -> Obj:
        """updateClaimStatusWithEvent: the event only when the phase actually changes."""
        if m.phase(claim) == phase:
            return claim
        updated = await self._update_claim_status(claim, phase, None)
        self.recorder.event(updated, type_, reason, note)
        return updated

    async def _update_volume_phase(self, volume: Obj, phase: str, message: str = "") -> Obj:
        """updateVolumePhase (the API server stamps status.lastPhaseTransitionTime)."""
        if m.phase(volume) == phase:
            return volume
        clone = self._typed(volume, "PersistentVolume")
        status = clone.setdefault("status", {})
        status["phase"] = phase
        if message:
            status["message"] = message
        else:
            status.pop("message", None)
        updated = await self.pv_api.update_status(clone)
        self.volumes.store(updated)
        self.log.info("volume %s entered phase %s", m.meta(volume).get("name"), phase)
        return updated

    async def _volume_phase_event(self, volume: Obj, phase: str, type_: str, reason: str, note: str) -> Obj:
        """updateVolumePhaseWithEvent: the event only when the phase actually changes."""
        if m.phase(volume) == phase:
            return volume
        updated = await self._update_volume_phase(volume, phase, note)
        self.recorder.event(updated, type_, reason, note)
        return updated

    @staticmethod
    def _typed(obj: Obj, kind: str) -> Obj:
        """A deep copy to write back, with the type informer copies may lack."""
        clone = copy.deepcopy(obj)
        clone["apiVersion"], clone["kind"] = "v1", kind
        clone.setdefault("metadata", {})
        return clone
