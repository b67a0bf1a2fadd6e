"""secret volumes: a Secret's keys (or the listed items) as files, atomically refreshed."""

from __future__ import annotations

from kybernetes.kubelet.volumes.atomic_writer import write_volume
from kybernetes.kubelet.volumes.base import MountedVolume, Obj, VolumeContext, VolumeError
from kybernetes.kubelet.volumes.emptydir import mount_tmpfs
from kybernetes.kubelet.volumes.projection import DEFAULT_MODE, key_payload, secret_data

PLUGIN = "secret"


async def payload(ctx: VolumeContext, src: Obj, name: str, default_mode: int) -> dict:
    optional = bool(src.get("optional"))
    s = await ctx.get("secrets", name)
    if s is None:
        if optional:
            return {}
        raise VolumeError(f'secret "{name}" not found')
    return key_payload(secret_data(s), src.get("items"), default_mode, optional=optional,
                       missing_key=lambda k: f"references non-existent secret key: {k}")


async def setup(ctx: VolumeContext, vol: Obj) -> MountedVolume:
    src = vol["secret"]
    mode = src.get("defaultMode")
    files = await payload(ctx, src, src.get("secretName", ""), DEFAULT_MODE if mode is None else int(mode))
    d = ctx.volume_dir(PLUGIN, vol["name"])
    d.mkdir(parents=True, exist_ok=True)
    # secrets stay off disk: a tmpfs per volume, as upstream
    await mount_tmpfs(d, None)
    await write_volume(d, files, ctx.fs_group)
    return MountedVolume(d, read_only=True)
