"""DefaultTolerationSeconds admission (upstream plugin/pkg/admission/defaulttolerationseconds).

Pods that do not tolerate the node.kubernetes.io/not-ready or /unreachable NoExecute
taints get a toleration for each that lasts 300 seconds."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.admission import lookup

Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300


def _toleration(key: str, seconds: int) -> Obj:
    return {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}


def add_default_tolerations(pod: Obj, not_ready_seconds: int = DEFAULT_SECONDS,
                            unreachable_seconds: int = DEFAULT_SECONDS) -> None:
    spec = pod.setdefault("spec", {})
    tolerations = list(spec.get("tolerations") or [])
    not_ready = unreachable = False
    for t in tolerations:
        key, effect = t.get("key") or "", t.get("effect") or ""
        if key in (NOT_READY, "") and effect in ("NoExecute", ""):
            not_ready = True
        if key in (UNREACHABLE, "") and effect in ("NoExecute", ""):
            unreachable = True
    if not not_ready:
        tolerations.append(_toleration(NOT_READY, not_ready_seconds))
    if not unreachable:
        tolerations.append(_toleration(UNREACHABLE, unreachable_seconds))
    spec["tolerations"] = tolerations


class DefaultTolerationSeconds:
    name = "DefaultTolerationSeconds"

    def __init__(self, not_ready_seconds: int = DEFAULT_SECONDS, unreachable_seconds: int = DEFAULT_SECONDS) -> None:
        self.not_ready_seconds = not_ready_seconds
        self.unreachable_seconds = unreachable_seconds

    async def admit(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        s = r.strategy
        if new is None or s.group or s.resource != "pods" or lookup.subresource(r) or op not in ("CREATE", "UPDATE"):
            return
        add_default_tolerations(new, self.not_ready_seconds, self.unreachable_seconds)
