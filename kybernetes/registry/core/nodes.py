"""Nodes: the machines pods run on.

Unlike other kinds, a node keeps the status it is created with (the kubelet registers
itself with one); updates of the main resource keep the stored status.
"""

from __future__ import annotations

from typing import Any

from kybernetes.registry import _checks
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    forbidden,
    invalid,
    not_supported,
    required,
)

ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_I = "io.k8s.api.core.v1.NodeSystemInfo"
_S = "io.k8s.api.core.v1.NodeStatus"


def node_roles(node: Obj) -> list[str]:
    """Roles from node-role.kubernetes.io/<role> labels and the kubernetes.io/role label."""
    roles = set()
    for k, v in (dig(node, "metadata", "labels") or {}).items():
        if k.startswith(ROLE_LABEL_PREFIX) and k[len(ROLE_LABEL_PREFIX):]:
            roles.add(k[len(ROLE_LABEL_PREFIX):])
        elif k == ROLE_LABEL and v:
            roles.add(v)
    return sorted(roles)


def node_status_cell(node: Obj) -> str:
    """Ready / NotReady / Unknown, plus SchedulingDisabled when cordoned."""
    status = []
    for c in dig(node, "status", "conditions", default=[]) or []:
        if c.get("type") == "Ready":
            status = ["Ready" if c.get("status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if dig(node, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def node_address(node: Obj, kind: str) -> str:
    for a in dig(node, "status", "addresses", default=[]) or []:
        if a.get("type") == kind:
            return a.get("address", "")
    return "<none>"


class NodeStrategy(Strategy):
    """core/v1 Node."""

    group = ""
    version = "v1"
    kind = "Node"
    resource = "nodes"
    singular = "node"
    namespaced = False
    short_names = ("no",)
    subresources = ("status", "proxy")  # proxy: to the node's kubelet (apiserver/kubelet_proxy.py)
    has_status_split = True
    tracks_generation = False

    columns = (
        NAME_COLUMN,
        column("Status", doc="The status of the node"),
        column("Roles", doc="The roles of the node"),
        AGE_COLUMN,
        column("Version", doc=(_I, "kubeletVersion")),
        column("Internal-IP", doc=(_S, "addresses"), priority=1),
        column("External-IP", doc=(_S, "addresses"), priority=1),
        column("OS-Image", doc=(_I, "osImage"), priority=1),
        column("Kernel-Version", doc=(_I, "kernelVersion"), priority=1),
        column("Container-Runtime", doc=(_I, "containerRuntimeVersion"), priority=1),
    )
    field_selectors = {"spec.unschedulable": lambda o: "true" if dig(o, "spec", "unschedulable") else "false"}

    def default(self, obj: Obj) -> None:
        status = obj.get("status")
        if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
            status["allocatable"] = dict(status["capacity"])  # allocatable defaults to capacity

    def prepare_for_create(self, obj: Obj) -> None:
        """The kubelet registers with its status; keep it."""

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for i, t in enumerate(dig(obj, "spec", "taints", default=[]) or []):
            path = f"spec.taints[{i}]"
            key = t.get("key") or ""
            if not key:
                causes.append(required(f"{path}.key"))
            else:
                causes += [invalid(f"{path}.key", key, m) for m in _checks.is_qualified_name(key)]
            if t.get("value"):
                causes += [invalid(f"{path}.value", t["value"], m) for m in _checks.is_valid_label_value(t["value"])]
            effect = t.get("effect") or ""
            if not effect:
                causes.append(required(f"{path}.effect"))
            elif effect not in TAINT_EFFECTS:
                causes.append(not_supported(f"{path}.effect", effect, TAINT_EFFECTS))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = self.validate(new)
        old_cidrs = dig(old, "spec", "podCIDRs", default=[]) or []
        if old_cidrs and (dig(new, "spec", "podCIDRs", default=[]) or []) != old_cidrs:
            causes.append(forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))
        old_pid = dig(old, "spec", "providerID", default="")
        if old_pid and dig(new, "spec", "providerID", default="") != old_pid:
            causes.append(forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid'))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        info = dig(obj, "status", "nodeInfo") or {}
        return [
            obj["metadata"]["name"],
            node_status_cell(obj),
            ",".join(node_roles(obj)) or "<none>",
            age_of(obj),
            info.get("kubeletVersion", ""),
            node_address(obj, "InternalIP"),
            node_address(obj, "ExternalIP"),
            info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>",
        ]
