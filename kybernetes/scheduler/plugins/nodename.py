"""NodeName: a pod that names a node (spec.nodeName) fits only that node."""

from __future__ import annotations

from kybernetes.scheduler.framework import Code, Status

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = NAME

    def pre_filter(self, state, pod):
        if not (pod.get("spec") or {}).get("nodeName"):
            return Status(Code.SKIP)
        return None

    def filter(self, state, pod, ni):
        want = (pod.get("spec") or {}).get("nodeName")
        if want and want != ni.name:
            return Status.unresolvable(ERR_REASON)
        return None
