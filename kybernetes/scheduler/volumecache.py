"""The scheduler's view of storage: PersistentVolumes, PersistentVolumeClaims and
StorageClasses as its informers last saw them, plus the scheduler's own *assumed* versions
of PVs and PVCs (upstream volumebinding assume_cache.go).

When the VolumeBinding plugin reserves a PV for a claim it stores the PV as it will be
(pre-bound to the claim) before the API knows; the next pods then see that PV taken and
never pick it twice.  An informer update at least as new as the assumed object replaces
it; a failed binding restores the API version."""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Optional

from kybernetes.client.informer import object_key

Obj = dict[str, Any]


def resource_version(obj: Mapping[str, Any]) -> int:
    """metadata.resourceVersion as a number (0 when missing), to tell newer from older."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class AssumeCache:
    """Objects by key (`name`, or `namespace/name`), each with the latest version the
    informer delivered (`api`) and the one the scheduler works with (`latest`, which is
    an assumed object while a decision is on its way to the API)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._api: dict[str, Obj] = {}
        self._latest: dict[str, Obj] = {}

    def add(self, obj: Obj) -> None:
        """Informer add/update: the API object always; the working copy only when the
        object is newer (an assumed object survives a resync of the version it came from)."""
        key = object_key(obj)
        self._api[key] = obj
        cur = self._latest.get(key)
        if cur is None or resource_version(obj) > resource_version(cur):
            self._latest[key] = obj

    def delete(self, obj: Obj) -> None:
        key = object_key(obj)
        self._api.pop(key, None)
        self._latest.pop(key, None)

    def get(self, key: str) -> Optional[Obj]:
        return self._latest.get(key)

    def get_api(self, key: str) -> Optional[Obj]:
        return self._api.get(key)

    def list(self) -> list[Obj]:
        return list(self._latest.values())

    def assume(self, obj: Obj) -> None:
        """Work with `obj` (a changed copy of a cached object) until the API catches up."""
        key = object_key(obj)
        cur = self._latest.get(key)
        if cur is None:
            raise LookupError(f"{self.kind} {key!r} not found in the scheduler's cache")
        if resource_version(obj) < resource_version(cur):
            raise ValueError(f"{self.kind} {key!r} is out of sync with the scheduler's cache "
                             f"(version {resource_version(obj)} < {resource_version(cur)})")
        self._latest[key] = obj

    def restore(self, key: str) -> None:
        """Drop an assumed version: back to what the API said last."""
        api = self._api.get(key)
        if api is None:
            self._latest.pop(key, None)
        else:
            self._latest[key] = api

    def __len__(self) -> int:
        return len(self._latest)


class VolumeCache:
    """PVs (by name), PVCs (by namespace/name) and StorageClasses (by name), fed by the
    scheduler's informers.  `wait_changed` lets the binding cycle wait for the PV
    controller's progress without polling the API."""

    def __init__(self) -> None:
        self.pvs = AssumeCache("persistentvolume")
        self.pvcs = AssumeCache("persistentvolumeclaim")
        self.classes: dict[str, Obj] = {}
        self._changed: Optional[asyncio.Event] = None

    # -- informer side
    def set_pv(self, pv: Obj) -> None:
        self.pvs.add(pv)
        self._notify()

    def remove_pv(self, pv: Obj) -> None:
        self.pvs.delete(pv)
        self._notify()

    def set_pvc(self, pvc: Obj) -> None:
        self.pvcs.add(pvc)
        self._notify()

    def remove_pvc(self, pvc: Obj) -> None:
        self.pvcs.delete(pvc)
        self._notify()

    def set_class(self, sc: Obj) -> None:
        self.classes[sc["metadata"]["name"]] = sc
        self._notify()

    def remove_class(self, sc: Obj) -> None:
        self.classes.pop(sc["metadata"]["name"], None)
        self._notify()

    # -- readers
    def pvc(self, namespace: str, name: str) -> Optional[Obj]:
        return self.pvcs.get(f"{namespace}/{name}")

    def pv(self, name: str) -> Optional[Obj]:
        return self.pvs.get(name)

    def storage_class(self, name: str) -> Optional[Obj]:
        return self.classes.get(name)

    # -- change notification
    def _notify(self) -> None:
        ev = self._changed
        if ev is not None:
            self._changed = None
            ev.set()

    async def wait_changed(self, timeout: float) -> None:
        """Return after the next PV/PVC/StorageClass event, or after `timeout` seconds."""
        if self._changed is None:
            self._changed = asyncio.Event()
        ev = self._changed
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except asyncio.TimeoutError:
            pass
