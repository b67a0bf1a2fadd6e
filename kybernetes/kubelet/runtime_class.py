"""The kubelet's RuntimeClass lookup (upstream pkg/kubelet/runtimeclass): a pod's
`spec.runtimeClassName` resolves to the class's `handler`, which the kubelet passes as
RunPodSandbox's runtime_handler.  No class name means the runtime's default handler ("")."""

from __future__ import annotations

from typing import Any

from kybernetes.client import ClientError, NotFound

Obj = dict[str, Any]


class RuntimeClassError(Exception):
    """The pod's RuntimeClass could not be resolved; the sandbox is not created."""


async def runtime_handler(client: Any, pod: Obj) -> str:
    """The CRI runtime handler for `pod` (read live, as the class may have been created
    after the pod); RuntimeClassError with upstream's wording when it cannot be found."""
    name = (pod.get("spec") or {}).get("runtimeClassName") or ""
    if not name:
        return ""
    try:
        rc = await client.resource("node.k8s.io", "v1", "runtimeclasses", namespaced=False).get(name)
    except NotFound:
        raise RuntimeClassError(f'runtimeclass.node.k8s.io "{name}" not found') from None
    except ClientError as e:
        raise RuntimeClassError(f"failed to lookup RuntimeClass {name}: {e}") from None
    return rc.get("handler") or ""
