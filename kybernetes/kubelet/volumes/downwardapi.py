"""downwardAPI volumes: pod metadata (fieldRef) and container resources (resourceFieldRef)
as files, refreshed so label and annotation changes show up."""

from __future__ import annotations

from kybernetes.kubelet.volumes.atomic_writer import write_volume
from kybernetes.kubelet.volumes.base import MountedVolume, Obj, VolumeContext
from kybernetes.kubelet.volumes.projection import DEFAULT_MODE, downward_payload

PLUGIN = "downward-api"


async def setup(ctx: VolumeContext, vol: Obj) -> MountedVolume:
    src = vol["downwardAPI"]
    mode = src.get("defaultMode")
    files = downward_payload(ctx.pod, src.get("items") or [], DEFAULT_MODE if mode is None else int(mode),
                             ctx.node_allocatable())
    d = ctx.volume_dir(PLUGIN, vol["name"])
    d.mkdir(parents=True, exist_ok=True)
    await write_volume(d, files, ctx.fs_group)
    return MountedVolume(d, read_only=True)
