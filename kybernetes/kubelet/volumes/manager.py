"""The kubelet's volume manager: sets up every volume of a pod before its containers start
(and again on each resync, so API data volumes follow their sources), turns volumeMounts
into CRI mounts (readOnly, subPath), and tears everything down when the pod goes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

from kybernetes.cri import pb
from kybernetes.kubelet import pod_status as ps
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.volumes import configmap, downwardapi, emptydir, hostpath, projected, pvc, secret
from kybernetes.kubelet.volumes.base import MountedVolume, MountError, Obj, ObjectCache, VolumeContext, VolumeError
from kybernetes.kubelet.volumes.tokens import TokenManager

_UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PLUGINS = {
    "emptyDir": emptydir,
    "hostPath": hostpath,
    "configMap": configmap,
    "secret": secret,
    "downwardAPI": downwardapi,
    "projected": projected,
}


def _unmount_and_remove(d: Path) -> None:
    if not d.exists():
        return
    for mp in reversed(cleanup.mounts_under(d)):
        cleanup.unmount(mp)
    left = cleanup.mounts_under(d)
    if left:
        # never delete through a mount: a local PV's bind mount holds the user's data
        raise OSError(f"still mounted under {d}: {', '.join(left)}")
    shutil.rmtree(d, ignore_errors=True)


class ContainerConfigError(Exception):
    """A volumeMount cannot be turned into a mount (CreateContainerConfigError)."""


def plugin_for(vol: Obj) -> Optional[Any]:
    for k, mod in PLUGINS.items():
        if k in vol and vol[k] is not None:
            return mod
    return None


class VolumeManager:
    def __init__(self, client: Any, root: Path, *,
                 node_allocatable: Callable[[], dict[str, str]] = lambda: {}, node_name: str = ""):
        self.client = client
        self.root = Path(root)  # <data>/pods
        self.tokens = TokenManager(client)
        self.objects = ObjectCache(client)
        self.node_allocatable = node_allocatable
        self.node_name = node_name  # for PersistentVolume node affinity (empty: not checked)
        # pod uid -> volume name -> its resolved claim; a claim is resolved once per pod,
        # as upstream's populator adds it to the desired state once (a claim deleted
        # later does not break the running pod)
        self.claims: dict[str, dict[str, pvc.Claim]] = {}

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    async def setup(self, pod: Obj) -> dict[str, MountedVolume]:
        """Set up (or refresh) every volume of the pod; VolumeError names the first failure
        in upstream's words: MountVolume.SetUp failed for volume "x" : <why>."""
        uid = pod["metadata"]["uid"]
        ctx = VolumeContext(self.client, pod, self.pod_dir(uid), tokens=self.tokens,
                            node_allocatable=self.node_allocatable, objects=self.objects)
        volumes = (pod.get("spec") or {}).get("volumes") or []
        claims = await self._resolve_claims(ctx, volumes)
        out: dict[str, MountedVolume] = {}
        for vol in volumes:
            name = vol.get("name", "")
            if name in claims:
                try:
                    out[name] = await pvc.setup(ctx, claims[name])  # MountError names the PV
                except OSError as e:
                    raise MountError("MountVolume.SetUp", pvc.pv_name(claims[name]), str(e)) from None
                continue
            mod = plugin_for(vol)
            try:
                if mod is None:
                    raise VolumeError("unsupported volume type")
                out[name] = await mod.setup(ctx, vol)
            except MountError:
                raise
            except VolumeError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
            except OSError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
        return out

    async def _resolve_claims(self, ctx: VolumeContext, volumes: list[Obj]) -> dict[str, pvc.Claim]:
        """Every claim-backed volume of the pod resolved to its bound PV, or one VolumeError
        worded as upstream's "Unable to attach or mount volumes" for those that are not."""
        known = self.claims.setdefault(ctx.pod["metadata"]["uid"], {})
        failed: dict[str, str] = {}
        for vol in volumes:
            name = vol.get("name", "")
            if not pvc.is_claim(vol) or name in known:
                continue
            try:
                claim = await pvc.resolve(ctx, vol)
            except pvc.ProcessError as e:
                failed[name] = str(e)
                continue
            if self.node_name:
                # a PV pinned to other nodes is never mounted here, whatever the scheduler did
                await pvc.check_node_affinity(ctx, claim, self.node_name)
            known[name] = claim
        if failed:
            raise VolumeError(pvc.unable_to_mount(failed))
        return known

    async def unmount(self, uid: str) -> None:
        """Release a terminated pod's volumes (its tmpfs memory, local bind mounts) but keep
        the pod directory (termination messages live there) until the pod is deleted."""
        self.tokens.forget_pod(uid)
        self.claims.pop(uid, None)
        await asyncio.to_thread(_unmount_and_remove, self.pod_dir(uid) / "volumes")

    async def teardown(self, uid: str) -> None:
        """Unmount every mount of the pod and remove its directory."""
        self.tokens.forget_pod(uid)
        self.claims.pop(uid, None)
        await asyncio.to_thread(_unmount_and_remove, self.pod_dir(uid))

    async def cleanup_orphans(self, known_uids: set[str]) -> list[str]:
        """Tear down pod directories of pods this kubelet no longer has (after a restart,
        or a pod removed while the kubelet was down), as upstream's HandlePodCleanups."""
        if not self.root.is_dir():
            return []
        gone = [d.name for d in self.root.iterdir() if _UID.match(d.name) and d.name not in known_uids]
        for uid in gone:
            await self.teardown(uid)
        return gone

    # ------------------------------------------------------------ container mounts

    def container_mounts(self, pod: Obj, container: Obj, volumes: dict[str, MountedVolume]) -> list["pb.Mount"]:
        """CRI mounts of the container's volumeMounts (subPath resolved inside the volume)."""
        out = []
        for m in container.get("volumeMounts") or []:
            vol = volumes.get(m.get("name", ""))
            if vol is None:
                raise ContainerConfigError(f"cannot find volume {m.get('name')!r} to mount into container "
                                           f"{container.get('name')!r}")
            host = str(vol.path)
            sub = m.get("subPath") or ""
            if m.get("subPathExpr"):
                env = dict(ps.container_env(pod, container))
                sub = ps.expand(m["subPathExpr"], env)
            if sub:
                host = self._sub_path(vol.path, sub)
            prop = {"HostToContainer": pb.PROPAGATION_HOST_TO_CONTAINER,
                    "Bidirectional": pb.PROPAGATION_BIDIRECTIONAL}.get(m.get("mountPropagation") or "",
                                                                        pb.PROPAGATION_PRIVATE)
            out.append(pb.Mount(container_path=m.get("mountPath", ""), host_path=host,
                                readonly=bool(m.get("readOnly")) or vol.read_only, propagation=prop))
        return out

    @staticmethod
    def _sub_path(base: Path, sub: str) -> str:
        if os.path.isabs(sub) or any(p == ".." for p in sub.split("/")):
            raise ContainerConfigError(f"invalid subpath {sub!r}: must be a relative path without '..'")
        full = base / sub
        if not os.path.lexists(full):
            # upstream creates a missing subPath as a directory (0750) inside the volume
            full.mkdir(parents=True, mode=0o750, exist_ok=True)
        real_base = os.path.realpath(base)
        real = os.path.realpath(full)
        if real != real_base and not real.startswith(real_base.rstrip("/") + "/"):
            raise ContainerConfigError(f"subpath {sub!r} resolves outside the volume")
        return real
