"""DefaultStorageClass admission (upstream plugin/pkg/admission/storage/storageclass/setdefault).

A PersistentVolumeClaim created without a class (no `spec.storageClassName` and no beta
annotation) gets the default StorageClass: the one annotated
`storageclass.kubernetes.io/is-default-class: "true"` (newest first, then by name)."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.admission import lookup
from kybernetes.apiserver.objects import ObjectStore

Obj = dict[str, Any]

DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def is_default(sc: Obj) -> bool:
    ann = (sc.get("metadata") or {}).get("annotations") or {}
    return ann.get(DEFAULT_ANNOTATION) == "true" or ann.get(BETA_DEFAULT_ANNOTATION) == "true"


def pick_default(classes: list[Obj]) -> Optional[Obj]:
    defaults = [c for c in classes if is_default(c)]
    if not defaults:
        return None
    # newest creationTimestamp first (RFC 3339 UTC strings sort by time), then name ascending
    defaults.sort(key=lambda c: c["metadata"].get("name", ""))
    defaults.sort(key=lambda c: c["metadata"].get("creationTimestamp", ""), reverse=True)
    return defaults[0]


def has_class(pvc: Obj) -> bool:
    if (pvc.get("spec") or {}).get("storageClassName") is not None:
        return True
    return BETA_CLASS_ANNOTATION in ((pvc.get("metadata") or {}).get("annotations") or {})


class DefaultStorageClass:
    name = "DefaultStorageClass"

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    async def admit(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        s = r.strategy
        if (op != "CREATE" or new is None or s.group or s.resource != "persistentvolumeclaims"
                or lookup.subresource(r) or has_class(new)):
            return
        default = pick_default(await lookup.list_objects(self.objects, "storage.k8s.io", "v1", "storageclasses"))
        if default is not None:
            new.setdefault("spec", {})["storageClassName"] = default["metadata"]["name"]
