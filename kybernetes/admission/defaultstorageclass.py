"""DefaultStorageClass admission (upstream plugin/pkg/admission/storage/storageclass/setdefault).

A PersistentVolumeClaim created without a class (no `spec.storageClassName` and no beta
annotation) gets the default StorageClass: the one annotated
`storageclass.kubernetes.io/is-default-class: "true"` (newest first, then by name)."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.admission import lookup
from kybernetes.api.storagehelpers import claim_has_class, default_class
from kybernetes.apiserver.objects import ObjectStore

Obj = dict[str, Any]


class DefaultStorageClass:
    name = "DefaultStorageClass"

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    async def admit(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        s = r.strategy
        if (op != "CREATE" or new is None or s.group or s.resource != "persistentvolumeclaims"
                or lookup.subresource(r) or claim_has_class(new)):
            return
        default = default_class(await lookup.list_objects(self.objects, "storage.k8s.io", "v1", "storageclasses"))
        if default is not None:
            new.setdefault("spec", {})["storageClassName"] = default["metadata"]["name"]
