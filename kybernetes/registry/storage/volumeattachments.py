"""VolumeAttachments: intent to attach a volume to a node."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


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
