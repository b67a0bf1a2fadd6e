"""`/runningpods/`: the pods as the container runtime sees them (a ready sandbox or a
running container), as a v1 PodList of name, namespace, uid and the containers' names
and images, the shape upstream's kubelet gives its runtime pods."""

from __future__ import annotations

from typing import Any

from kybernetes.cri import pb
from kybernetes.kubelet.pod_workers import L_CONTAINER, L_NAME, L_NS, L_UID


def _pod(uid: str, name: str, namespace: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid, "creationTimestamp": None},
            "spec": {"containers": []}, "status": {}}


async def running_pods(cri) -> dict[str, Any]:
    """The runtime's running pods as a PodList, sorted by namespace and name."""
    sandboxes = await cri.list_pod_sandbox(state=pb.SANDBOX_READY)
    containers = await cri.list_containers(state=pb.CONTAINER_RUNNING)
    pods: dict[str, dict[str, Any]] = {}
    for s in sandboxes:
        m = s.metadata
        pods.setdefault(m.uid, _pod(m.uid, m.name, m.namespace))
    for c in sorted(containers, key=lambda c: c.created_at):
        lb = c.labels
        uid = lb.get(L_UID, "")
        if not uid:
            continue  # not a kubelet-made container
        pod = pods.setdefault(uid, _pod(uid, lb.get(L_NAME, ""), lb.get(L_NS, "")))
        pod["spec"]["containers"].append({"name": lb.get(L_CONTAINER, c.metadata.name),
                                          "image": c.image.image or c.image_ref, "resources": {}})
    items = sorted(pods.values(), key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
    for p in items:
        if not p["spec"]["containers"]:
            p["spec"]["containers"] = None
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
