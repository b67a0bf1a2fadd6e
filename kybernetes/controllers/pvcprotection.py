"""PVC protection (upstream pkg/controller/volume/pvcprotection): a claim being deleted
keeps its `kubernetes.io/pvc-protection` finalizer while a scheduled pod still names it,
so `kubectl delete pvc` on a claim in use leaves it Terminating until the pod is gone.

The StorageObjectInUseProtection admission plugin puts the finalizer on new claims; this
controller adds it to claims that lack it (made before the plugin ran) and removes it from
deleted claims no pod uses.  A pod counts once it is scheduled (the kubelet never starts a
pod whose claim is being deleted); a pod of a generic ephemeral volume stops counting once
it is shut down.  An empty informer answer is confirmed by a live pod list, as upstream.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from kybernetes.api import storagehelpers as m
from kybernetes.client.errors import NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers.base import Controller

Obj = dict[str, Any]

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
POD_PVC_INDEX = "pod-pvc"


def needs_finalizer(obj: Obj, finalizer: str) -> bool:
    """protectionutil.NeedToAddFinalizer: alive and without it."""
    md = m.meta(obj)
    return not md.get("deletionTimestamp") and finalizer not in (md.get("finalizers") or [])


def is_deletion_candidate(obj: Obj, finalizer: str) -> bool:
    """protectionutil.IsDeletionCandidate: being deleted and still held by it."""
    md = m.meta(obj)
    return bool(md.get("deletionTimestamp")) and finalizer in (md.get("finalizers") or [])


def pod_is_shut_down(pod: Obj) -> bool:
    """Done by the kubelet, or force-deleted: deleted with a zero grace period."""
    md = m.meta(pod)
    return bool(md.get("deletionTimestamp")) and md.get("deletionGracePeriodSeconds") == 0


def pod_uses_claim(pod: Obj, claim: Obj) -> bool:
    """podUsesPVC: a scheduled pod naming the claim (a generic ephemeral volume's claim
    only while the pod is not shut down and the claim is owned by that pod)."""
    if not m.spec(pod).get("nodeName"):
        return False
    name = m.meta(claim).get("name")
    for claim_name, ephemeral in m.pod_claims(pod):
        if claim_name != name:
            continue
        if not ephemeral:
            return True
        if not pod_is_shut_down(pod) and m.volume_is_for_pod(pod, claim) is None:
            return True
    return False


class PVCProtectionController(Controller):
    """Upstream's PVC protection controller ("pvc-protection")."""

    name = "pvc-protection"
    workers = 1

    def setup(self) -> None:
        self.claims = self.watch("", "v1", "persistentvolumeclaims", enqueue=self._claim_key)
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.pods.store.add_index(POD_PVC_INDEX, m.pod_claim_keys)
        self.pods.add_handlers(on_add=lambda p: self._pod_changed(None, p, False),
                               on_update=lambda o, n: self._pod_changed(o, n, False),
                               on_delete=lambda p: self._pod_changed(None, p, True))
        self.pvc_api = self.resource("", "v1", "persistentvolumeclaims")
        self.pod_api = self.resource("", "v1", "pods")

    @staticmethod
    def _claim_key(pvc: Obj) -> Optional[str]:
        if needs_finalizer(pvc, PVC_PROTECTION_FINALIZER) or is_deletion_candidate(pvc, PVC_PROTECTION_FINALIZER):
            return object_key(pvc)
        return None

    def _pod_changed(self, old: Optional[Obj], pod: Obj, deleted: bool) -> None:
        self._enqueue_claims(pod, deleted)
        # an update may hide a pod deleted and re-created under the same name
        if old is not None and m.meta(old).get("uid") != m.meta(pod).get("uid"):
            self._enqueue_claims(old, True)

    def _enqueue_claims(self, pod: Obj, deleted: bool) -> None:
        # only pods that stopped counting can let a finalizer go
        if not deleted and not m.is_pod_terminated(pod) and m.spec(pod).get("nodeName"):
            return
        for key in m.pod_claim_keys(pod):
            self.enqueue(key)

    async def reconcile(self, key: str) -> None:
        pvc = self.claims.get(key)
        if pvc is None:
            return
        if is_deletion_candidate(pvc, PVC_PROTECTION_FINALIZER):
            if not await self._in_use(pvc):
                await self._set_finalizer(pvc, False)
                return
            self.log.info("keeping claim %s: it is being used", key)
        if needs_finalizer(pvc, PVC_PROTECTION_FINALIZER):
            await self._set_finalizer(pvc, True)

    async def _in_use(self, pvc: Obj) -> bool:
        if any(pod_uses_claim(p, pvc) for p in self.pods.store.by_index(POD_PVC_INDEX, object_key(pvc))):
            return True
        # the cache may not have the pod yet: a live list decides
        pods = (await self.pod_api.list(m.meta(pvc).get("namespace", "")))["items"]
        return any(pod_uses_claim(p, pvc) for p in pods)

    async def _set_finalizer(self, pvc: Obj, present: bool) -> None:
        clone = copy.deepcopy(pvc)
        clone["apiVersion"], clone["kind"] = "v1", "PersistentVolumeClaim"
        fins = [f for f in (m.meta(pvc).get("finalizers") or []) if f != PVC_PROTECTION_FINALIZER]
        if present:
            fins.append(PVC_PROTECTION_FINALIZER)
        clone["metadata"]["finalizers"] = fins
        try:
            await self.pvc_api.update(clone)
        except NotFound:
            return  # deleted meanwhile: nothing left to protect
        self.log.info("%s protection finalizer %s claim %s", "added" if present else "removed",
                      "to" if present else "from", object_key(pvc))
