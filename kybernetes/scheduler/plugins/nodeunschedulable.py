"""NodeUnschedulable: filter out nodes with spec.unschedulable unless the pod tolerates
the node.kubernetes.io/unschedulable:NoSchedule taint."""

from __future__ import annotations

from kybernetes.scheduler.framework import Code, Status
from kybernetes.scheduler.plugins.helpers import tolerates

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_REASON_UNKNOWN = "node(s) had unknown conditions"
_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    name = NAME

    def pre_filter(self, state, pod):
        snap = getattr(state, "snapshot", None)
        if snap is not None and not snap.any_unschedulable:
            return Status(Code.SKIP)  # no cordoned node (and the snapshot lists only existing ones)
        return None

    def filter(self, state, pod, ni):
        if ni.node is None:
            return Status.unresolvable(ERR_REASON_UNKNOWN)
        if not ni.unschedulable:
            return None
        tols = (pod.get("spec") or {}).get("tolerations") or []
        if any(tolerates(t, _TAINT) for t in tols):
            return None
        return Status.unresolvable(ERR_REASON_UNSCHEDULABLE)
