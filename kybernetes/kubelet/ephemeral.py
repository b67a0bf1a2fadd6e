"""Ephemeral containers (kubectl debug): started once in the pod's running sandbox when the
pod gains them through pods/ephemeralcontainers, never restarted, reported in
status.ephemeralContainerStatuses, and killed with the pod (upstream kuberuntime's
EphemeralContainersToStart and ephemeralContainerStartSpec).

With targetContainerName the container joins that container's process namespace (CRI
NamespaceOption pid=TARGET with target_id), so it sees the target's processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kybernetes.cri import pb
from kybernetes.kubelet import security_context

if TYPE_CHECKING:
    from kybernetes.kubelet.pod_workers import PodWorker

Obj = dict[str, Any]

KIND = "ephemeral"  # the kyb.io/container-kind label of their CRI containers


def specs(pod: Obj) -> list[Obj]:
    return [c for c in (pod.get("spec") or {}).get("ephemeralContainers") or [] if isinstance(c, dict)]


def target_namespaces(pod: Obj, target_id: str) -> "pb.NamespaceOption":
    """The pod's network and IPC namespaces, the process namespace of the target container."""
    ns = security_context.namespace_options(pod)
    ns.pid, ns.target_id = pb.TARGET, target_id
    return ns


async def start_new(w: "PodWorker", sid: str, sconfig: Any, containers: list, latest: dict, pod_ip: str) -> None:
    """Start each ephemeral container that never ran in this pod. `containers` are all of
    the pod's CRI containers (every sandbox): one that ran once, even in an earlier
    sandbox, is never started again, as upstream."""
    from kybernetes.kubelet.pod_workers import L_CONTAINER, L_KIND

    ran = {c.labels.get(L_CONTAINER) for c in containers if c.labels.get(L_KIND) == KIND}
    for c in specs(w.pod):
        name = c.get("name")
        if not name or name in ran:
            continue
        target_id = ""
        target = c.get("targetContainerName")
        if target:
            cur = latest.get(target)
            if cur is None or cur.state != pb.CONTAINER_RUNNING:
                # upstream cannot find a target that is not running either; the next sync retries
                w.waiting[name] = ("CreateContainerError", f'target container "{target}" is not running')
                continue
            target_id = cur.id
        await w.start_container(sid, sconfig, c, 0, KIND, pod_ip, target_id=target_id)


async def statuses(w: "PodWorker", latest: dict) -> list[Obj]:
    """status.ephemeralContainerStatuses: like a container's, never ready, never started
    (no probes), restartCount always 0. One that ran in an earlier sandbox of the pod (and
    is never started again) reports that instance."""
    from kybernetes.kubelet.pod_workers import L_CONTAINER, L_KIND, L_UID

    found = dict(latest)
    if any(c["name"] not in found for c in specs(w.pod)):
        earlier = await w.w.cri.list_containers(labels={L_UID: w.uid, L_KIND: KIND})
        for ctr in sorted(earlier, key=lambda x: x.created_at, reverse=True):
            found.setdefault(ctr.labels.get(L_CONTAINER), ctr)
    out = []
    for c in specs(w.pod):
        st = await w.container_status(c, found.get(c["name"]), KIND)
        st.pop("started", None)
        st["ready"] = False
        out.append(st)
    return out
