"""projected volumes: secrets, configMaps, downward API items and service account tokens
merged into one directory (the kube-api-access-* volume of every pod is one)."""

from __future__ import annotations

from kybernetes.kubelet.volumes import configmap, secret
from kybernetes.kubelet.volumes.atomic_writer import FileProjection, write_volume
from kybernetes.kubelet.volumes.base import MountedVolume, Obj, VolumeContext, VolumeError
from kybernetes.kubelet.volumes.emptydir import mount_tmpfs
from kybernetes.kubelet.volumes.projection import DEFAULT_MODE, downward_payload

PLUGIN = "projected"


async def payload(ctx: VolumeContext, vol: Obj) -> dict[str, FileProjection]:
    src = vol["projected"]
    mode = src.get("defaultMode")
    default_mode = DEFAULT_MODE if mode is None else int(mode)
    out: dict[str, FileProjection] = {}
    for s in src.get("sources") or []:
        if s.get("configMap") is not None:
            out.update(await configmap.payload(ctx, s["configMap"], default_mode))
        elif s.get("secret") is not None:
            out.update(await secret.payload(ctx, s["secret"], s["secret"].get("name", ""), default_mode))
        elif s.get("downwardAPI") is not None:
            out.update(downward_payload(ctx.pod, s["downwardAPI"].get("items") or [], default_mode,
                                        ctx.node_allocatable()))
        elif s.get("serviceAccountToken") is not None:
            tok = s["serviceAccountToken"]
            if ctx.tokens is None:
                raise VolumeError("no token manager for serviceAccountToken projection")
            sa = (ctx.pod.get("spec") or {}).get("serviceAccountName") or "default"
            token = await ctx.tokens.token(ctx.pod, sa, audience=tok.get("audience") or "",
                                           expiration_seconds=int(tok.get("expirationSeconds") or 3600))
            out[tok.get("path", "token")] = FileProjection(token.encode(), default_mode)
        elif s.get("clusterTrustBundle") is not None:
            raise VolumeError("clusterTrustBundle projections are not supported")
    return out


async def setup(ctx: VolumeContext, vol: Obj) -> MountedVolume:
    files = await payload(ctx, vol)
    d = ctx.volume_dir(PLUGIN, vol["name"])
    d.mkdir(parents=True, exist_ok=True)
    await mount_tmpfs(d, None)  # tokens and secrets stay in memory, as upstream
    await write_volume(d, files, ctx.fs_group)
    return MountedVolume(d, read_only=True)
