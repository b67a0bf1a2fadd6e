"""VolumeAttachments: intent to attach a volume to a node (spec fixed once created)."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Column,
    Obj,
    Strategy,
    age_of,
    dig,
    invalid,
    required,
    swagger_doc,
)

_SPEC = "io.k8s.api.storage.v1.VolumeAttachmentSpec"


class VolumeAttachmentStrategy(Strategy):
    """storage.k8s.io/v1 VolumeAttachment."""

    group = "storage.k8s.io"
    version = "v1"
    kind = "VolumeAttachment"
    resource = "volumeattachments"
    singular = "volumeattachment"
    namespaced = False
    subresources = ("status",)
    has_status_split = True
    tracks_generation = False
    return_deleted_object = True

    columns = (
        NAME_COLUMN,
        # upstream marks this column with the "name" format too
        Column("Attacher", "string", "name", swagger_doc(_SPEC, "attacher")),
        Column("PV", "string", "", swagger_doc("io.k8s.api.storage.v1.VolumeAttachmentSource", "persistentVolumeName")),
        Column("Node", "string", "", swagger_doc(_SPEC, "nodeName")),
        Column("Attached", "boolean", "", swagger_doc("io.k8s.api.storage.v1.VolumeAttachmentStatus", "attached")),
        AGE_COLUMN,
    )

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        if not spec.get("attacher"):
            causes.append(required("spec.attacher"))
        if not spec.get("nodeName"):
            causes.append(required("spec.nodeName"))
        src = spec.get("source") or {}
        if (src.get("persistentVolumeName") is None) == (src.get("inlineVolumeSpec") is None):
            causes.append(required("spec.source", "must specify exactly one of inlineVolumeSpec and "
                                                  "persistentVolumeName"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        if new.get("spec") != old.get("spec"):
            causes.append(invalid("spec", "", "field is immutable"))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        return [obj["metadata"]["name"], spec.get("attacher") or "", dig(spec, "source", "persistentVolumeName",
                                                                         default="") or "",
                spec.get("nodeName") or "", bool(dig(obj, "status", "attached")), age_of(obj)]
