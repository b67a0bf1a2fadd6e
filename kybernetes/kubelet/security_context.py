"""The pod's and containers' securityContext as CRI Linux security contexts, as upstream's
determineEffectiveSecurityContext: container fields override the pod's; the supplemental
groups are the pod's plus its fsGroup, so the process can use fsGroup-owned volumes.
A privileged container is privileged in CRI too (all capabilities, host devices, writable
/sys), and so is the sandbox of a pod with any privileged container, since containerd
refuses a privileged container in an unprivileged sandbox."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.cri import pb

Obj = dict[str, Any]


def _pod_sc(pod: Obj) -> Obj:
    return ((pod.get("spec") or {}).get("securityContext")) or {}


def _effective(pod: Obj, container: Obj, key: str) -> Any:
    c = (container.get("securityContext") or {}).get(key)
    return c if c is not None else _pod_sc(pod).get(key)


def supplemental_groups(pod: Obj) -> list[int]:
    """The pod's supplementalGroups, then its fsGroup (upstream's order)."""
    sc = _pod_sc(pod)
    groups = [int(g) for g in sc.get("supplementalGroups") or []]
    if sc.get("fsGroup") is not None:
        groups.append(int(sc["fsGroup"]))
    return groups


def _groups_policy(pod: Obj) -> int:
    return pb.Strict if _pod_sc(pod).get("supplementalGroupsPolicy") == "Strict" else pb.Merge


def _int64(v: Optional[Any]) -> Optional["pb.Int64Value"]:
    return None if v is None else pb.Int64Value(value=int(v))


def namespace_options(pod: Obj) -> "pb.NamespaceOption":
    """The pod's Linux namespaces as upstream's kubelet asks for them, for the sandbox and each
    container alike: the node's where hostNetwork/hostPID/hostIPC say so; otherwise network and
    IPC of the pod, and a process namespace per container unless shareProcessNamespace."""
    spec = pod.get("spec") or {}
    if spec.get("hostPID"):
        pid = pb.NODE
    elif spec.get("shareProcessNamespace"):
        pid = pb.POD
    else:
        pid = pb.CONTAINER
    return pb.NamespaceOption(network=pb.NODE if spec.get("hostNetwork") else pb.POD, pid=pid,
                              ipc=pb.NODE if spec.get("hostIPC") else pb.POD)


def container_security_context(pod: Obj, container: Obj) -> "pb.LinuxContainerSecurityContext":
    """The CRI security context of one container: user, group, supplemental groups,
    capabilities, read-only root filesystem, no_new_privs and privileged."""
    csc = container.get("securityContext") or {}
    caps = csc.get("capabilities") or {}
    out = pb.LinuxContainerSecurityContext(
        run_as_user=_int64(_effective(pod, container, "runAsUser")),
        run_as_group=_int64(_effective(pod, container, "runAsGroup")),
        supplemental_groups=supplemental_groups(pod),
        supplemental_groups_policy=_groups_policy(pod),
        readonly_rootfs=bool(csc.get("readOnlyRootFilesystem")),
        # allowPrivilegeEscalation false sets no_new_privs (true or unset leave it off)
        no_new_privs=csc.get("allowPrivilegeEscalation") is False,
        privileged=bool(csc.get("privileged")),
        namespace_options=namespace_options(pod),
    )
    if caps.get("add") or caps.get("drop"):
        out.capabilities.CopyFrom(pb.Capability(add_capabilities=list(caps.get("add") or []),
                                                drop_capabilities=list(caps.get("drop") or [])))
    return out


def has_privileged_container(pod: Obj) -> bool:
    """Whether any init, app or ephemeral container asks for securityContext.privileged."""
    spec = pod.get("spec") or {}
    return any(((c.get("securityContext") or {}).get("privileged")) is True
               for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or [])


def sandbox_identity(pod: Obj) -> dict[str, Any]:
    """The pod-level fields of LinuxSandboxSecurityContext (the pause container's user and
    groups; privileged when a container is), as keyword arguments."""
    sc = _pod_sc(pod)
    out: dict[str, Any] = {"supplemental_groups": supplemental_groups(pod),
                           "supplemental_groups_policy": _groups_policy(pod)}
    if has_privileged_container(pod):
        out["privileged"] = True
    if sc.get("runAsUser") is not None:
        out["run_as_user"] = pb.Int64Value(value=int(sc["runAsUser"]))
    if sc.get("runAsGroup") is not None:
        out["run_as_group"] = pb.Int64Value(value=int(sc["runAsGroup"]))
    return out
