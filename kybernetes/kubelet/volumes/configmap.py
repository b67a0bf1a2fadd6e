"""configMap volumes: a ConfigMap's keys (or the listed items) as files, written atomically
and refreshed on every resync so updates reach running containers."""

from __future__ import annotations

from pathlib import Path

from kybernetes.kubelet.volumes.atomic_writer import write_volume
from kybernetes.kubelet.volumes.base import MountedVolume, Obj, VolumeContext, VolumeError
from kybernetes.kubelet.volumes.projection import DEFAULT_MODE, configmap_data, key_payload

PLUGIN = "configmap"


async def payload(ctx: VolumeContext, src: Obj, default_mode: int) -> dict:
    name = src.get("name", "")
    optional = bool(src.get("optional"))
    cm = await ctx.get("configmaps", name)
    if cm is None:
        if optional:
            return {}
        raise VolumeError(f'configmap "{name}" not found')
    return key_payload(configmap_data(cm), src.get("items"), default_mode, optional=optional,
                       missing_key=lambda k: f"configmap references non-existent config key: {k}")


async def setup(ctx: VolumeContext, vol: Obj) -> MountedVolume:
    src = vol["configMap"]
    mode = src.get("defaultMode")
    files = await payload(ctx, src, DEFAULT_MODE if mode is None else int(mode))
    d: Path = ctx.volume_dir(PLUGIN, vol["name"])
    d.mkdir(parents=True, exist_ok=True)
    await write_volume(d, files, ctx.fs_group)
    return MountedVolume(d, read_only=True)
