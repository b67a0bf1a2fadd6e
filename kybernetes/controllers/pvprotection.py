"""PV protection (upstream pkg/controller/volume/pvprotection): a volume being deleted
keeps its `kubernetes.io/pv-protection` finalizer while it is Bound to a claim.

The StorageObjectInUseProtection admission plugin puts the finalizer on new volumes; this
controller adds it to volumes that lack it and removes it from deleted volumes that are
not (or no longer) Bound — the binder moves a volume out of Bound when its claim goes.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from kybernetes.api import storagehelpers as m
from kybernetes.client.errors import NotFound
from kybernetes.controllers.base import Controller
from kybernetes.controllers.pvcprotection import is_deletion_candidate, needs_finalizer

Obj = dict[str, Any]

PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"


class PVProtectionController(Controller):
    """Upstream's PV protection controller ("pv-protection")."""

    name = "pv-protection"
    workers = 1

    def setup(self) -> None:
        self.volumes = self.watch("", "v1", "persistentvolumes", enqueue=self._volume_key)
        self.pv_api = self.resource("", "v1", "persistentvolumes")

    @staticmethod
    def _volume_key(pv: Obj) -> Optional[str]:
        if needs_finalizer(pv, PV_PROTECTION_FINALIZER) or is_deletion_candidate(pv, PV_PROTECTION_FINALIZER):
            return m.meta(pv).get("name")
        return None

    async def reconcile(self, key: str) -> None:
        pv = self.volumes.get(key)
        if pv is None:
            return
        if is_deletion_candidate(pv, PV_PROTECTION_FINALIZER):
            if m.phase(pv) != "Bound":
                await self._set_finalizer(pv, False)
                return
            self.log.info("keeping volume %s: it is bound", key)
        if needs_finalizer(pv, PV_PROTECTION_FINALIZER):
            await self._set_finalizer(pv, True)

    async def _set_finalizer(self, pv: Obj, present: bool) -> None:
        clone = copy.deepcopy(pv)
        clone["apiVersion"], clone["kind"] = "v1", "PersistentVolume"
        fins = [f for f in (m.meta(pv).get("finalizers") or []) if f != PV_PROTECTION_FINALIZER]
        if present:
            fins.append(PV_PROTECTION_FINALIZER)
        clone["metadata"]["finalizers"] = fins
        try:
            await self.pv_api.update(clone)
        except NotFound:
            return  # deleted meanwhile: nothing left to protect
        self.log.info("%s protection finalizer %s volume %s", "added" if present else "removed",
                      "to" if present else "from", m.meta(pv).get("name"))
