"""persistentVolumeClaim (and generic ephemeral) pod volumes: the claim must be Bound to a
PersistentVolume whose claimRef points back at it, as upstream's desired-state populator
checks before any mount; then the PV's own source is set up (`local` or `hostPath`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from kybernetes.api import storagehelpers as sh
from kybernetes.kubelet.volumes import hostpath, local
from kybernetes.kubelet.volumes.base import MountedVolume, MountError, Obj, VolumeContext, VolumeError

# the PV sources this kubelet can mount
SUPPORTED = ("local", "hostPath")


class ProcessError(VolumeError):
    """The pod volume cannot even be turned into a volume to mount (upstream: it never
    reaches the desired state of world and is listed under "failed to process volumes")."""


@dataclass(frozen=True)
class Claim:
    """A pod volume resolved to its bound claim and volume."""
    pvc: Obj
    pv: Obj
    read_only: bool


def is_claim(vol: Obj) -> bool:
    return vol.get("persistentVolumeClaim") is not None or vol.get("ephemeral") is not None


def claim_source(pod: Obj, vol: Obj) -> tuple[str, bool, bool]:
    """(claim name, readOnly, ephemeral) of a claim-backed pod volume."""
    src = vol.get("persistentVolumeClaim")
    if src is not None:
        return src.get("claimName", ""), bool(src.get("readOnly")), False
    return sh.ephemeral_claim_name(pod, vol), False, True


def _err_text(e: BaseException) -> str:
    return getattr(e, "message", "") or str(e)


def _uses(pod: Obj, vol_name: str, field: str) -> bool:
    spec = pod.get("spec") or {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if any(m.get("name") == vol_name for m in c.get(field) or []):
            return True
    return False


async def _get_pv(ctx: VolumeContext, name: str) -> Obj:
    from kybernetes.client import NotFound
    try:
        return await ctx.client.resource("", "v1", "persistentvolumes", namespaced=False).get(name)
    except NotFound:
        raise ProcessError(f'persistentvolumes "{name}" not found') from None


async def resolve(ctx: VolumeContext, vol: Obj) -> Claim:
    """The claim and PV behind a pod volume; ProcessError with upstream's words when the
    claim is missing, being deleted, not bound, or its PV does not point back at it."""
    ns = ctx.namespace
    claim_name, read_only, ephemeral = claim_source(ctx.pod, vol)
    what = f"error processing PVC {ns}/{claim_name}"
    try:
        pvc = await ctx.get("persistentvolumeclaims", claim_name)
    except Exception as e:  # the API could not answer: retried on the next sync
        raise ProcessError(f"{what}: failed to fetch PVC from API server: {_err_text(e)}") from None
    if pvc is None:
        raise ProcessError(f'{what}: failed to fetch PVC from API server: '
                           f'persistentvolumeclaims "{claim_name}" not found')
    meta = pvc.get("metadata") or {}
    if ephemeral:
        not_for_pod = sh.volume_is_for_pod(ctx.pod, pvc)
        if not_for_pod:
            raise ProcessError(not_for_pod)
    if meta.get("deletionTimestamp"):
        raise ProcessError(f"{what}: PVC is being deleted")
    if (pvc.get("status") or {}).get("phase") != "Bound":
        raise ProcessError(f"{what}: PVC is not bound")
    bound_pv = (pvc.get("spec") or {}).get("volumeName") or ""
    if not bound_pv:
        raise ProcessError(f"{what}: PVC has empty pvc.Spec.VolumeName")
    try:
        pv = await _get_pv(ctx, bound_pv)
    except ProcessError as e:
        raise ProcessError(f"{what}: failed to fetch PV {bound_pv} from API server: {e}") from None
    except Exception as e:
        raise ProcessError(f"{what}: failed to fetch PV {bound_pv} from API server: {_err_text(e)}") from None
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:
        raise ProcessError(f"{what}: found PV object {bound_pv} but it has a nil pv.Spec.ClaimRef indicating "
                           "it is not yet bound to the claim")
    if ref.get("uid", "") != meta.get("uid", ""):
        raise ProcessError(f"{what}: found PV object {bound_pv} but its pv.Spec.ClaimRef.UID {ref.get('uid', '')} "
                           f"does not point to claim.UID {meta.get('uid', '')}")
    name = vol.get("name", "")
    mode = sh.spec(pv).get("volumeMode") or "Filesystem"
    if mode != "Filesystem" and _uses(ctx.pod, name, "volumeMounts"):
        raise ProcessError(f"volume {name} has volumeMode {mode}, but is specified in volumeMounts")
    if _uses(ctx.pod, name, "volumeDevices"):
        if mode != "Block":
            raise ProcessError(f"volume {name} has volumeMode {mode}, but is specified in volumeDevices")
        raise ProcessError(f"volume {name} has volumeMode Block: raw block volumes are not supported "
                           "by this kubelet")
    if not any((pv.get("spec") or {}).get(k) is not None for k in SUPPORTED):
        raise ProcessError(f'failed to get Plugin from volumeSpec for volume "{bound_pv}" '
                           "err=no volume plugin matched")
    return Claim(pvc, pv, read_only)


async def check_node_affinity(ctx: VolumeContext, claim: Claim, node_name: str) -> None:
    """MountError unless the PV's required node affinity matches this node's labels."""
    if ((sh.spec(claim.pv).get("nodeAffinity") or {}).get("required")) is None:
        return  # nothing to check: spare the node lookup
    try:
        node = await ctx.client.resource("", "v1", "nodes", namespaced=False).get(node_name)
    except Exception as e:
        raise MountError("MountVolume.NodeAffinity check", pv_name(claim), _err_text(e)) from None
    if not sh.check_node_affinity(claim.pv, (node.get("metadata") or {}).get("labels") or {}):
        raise MountError("MountVolume.NodeAffinity check", pv_name(claim), "no matching NodeSelectorTerms")


def pv_name(claim: Claim) -> str:
    return (claim.pv.get("metadata") or {}).get("name", "")


async def setup(ctx: VolumeContext, claim: Claim) -> MountedVolume:
    """Set up the PV's source for the pod (a local bind mount, or the hostPath checked)."""
    spec = claim.pv.get("spec") or {}
    if spec.get("local") is not None:
        return await local.setup(ctx, claim.pv, claim.read_only)
    src = spec.get("hostPath") or {}
    path = src.get("path", "")
    try:
        await asyncio.to_thread(hostpath.check_type, path, src.get("type") or "")
    except VolumeError as e:
        raise MountError(local.SET_UP, pv_name(claim), str(e)) from None
    # hostPath volumes never take the pod's fsGroup (upstream leaves them alone too)
    return MountedVolume(Path(path), read_only=claim.read_only)


def unable_to_mount(failed: dict[str, str]) -> str:
    """Upstream's FailedMount text for volumes that could not be processed (volume name ->
    why), as the kubelet's WaitForAttachAndMount reports them."""
    names = " ".join(sorted(failed))
    return (f"Unable to attach or mount volumes: unmounted volumes=[{names}], unattached volumes=[], "
            f"failed to process volumes=[{names}]: " + "; ".join(failed[n] for n in sorted(failed)))
