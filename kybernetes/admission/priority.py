"""Priority admission (upstream plugin/pkg/admission/priority) and the built-in classes.

Pods: `spec.priorityClassName` resolves to `spec.priority` and `spec.preemptionPolicy`;
without a class the global default class applies (lowest value if several), else
priority 0 / PreemptLowerPriority.  An unknown class is refused (403), as is a pod whose
own priority / preemptionPolicy disagrees with its class.  PriorityClasses: only one may be
`globalDefault`.  `bootstrap_system_classes` creates system-node-critical and
system-cluster-critical, as upstream's scheduling post-start hook does."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.admission import lookup
from kybernetes.apiserver.objects import ObjectStore, object_key
from kybernetes.storage.interface import KeyExistsError

Obj = dict[str, Any]

GROUP, VERSION, RESOURCE = "scheduling.k8s.io", "v1", "priorityclasses"
DEFAULT_PRIORITY = 0  # scheduling.DefaultPriorityWhenNoDefaultClassExists

SYSTEM_PRIORITY_CLASSES = [
    {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
     "metadata": {"name": "system-node-critical"}, "value": 2_000_001_000, "globalDefault": False,
     "description": "Used for system critical pods that must not be moved from their current node.",
     "preemptionPolicy": "PreemptLowerPriority"},
    {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
     "metadata": {"name": "system-cluster-critical"}, "value": 2_000_000_000, "globalDefault": False,
     "description": "Used for system critical pods that must run in the cluster, but can be moved to another "
                    "node if necessary.",
     "preemptionPolicy": "PreemptLowerPriority"},
]


async def bootstrap_system_classes(objects: ObjectStore) -> None:
    """Create the system priority classes that are missing (existing ones are left as they are)."""
    import copy

    from kybernetes.apiserver.rest import prepare_new_meta

    s = lookup.strategy(GROUP, VERSION, RESOURCE)
    for pc in SYSTEM_PRIORITY_CLASSES:
        obj = copy.deepcopy(pc)
        key = object_key(s, "", obj["metadata"]["name"])
        if await objects.store.get(key) is not None:
            continue
        prepare_new_meta(obj, s)
        try:
            await objects.store.create(key, objects.encode(key, obj))
        except KeyExistsError:
            pass


def default_class(classes: list[Obj]) -> Optional[Obj]:
    best = None
    for pc in classes:
        if pc.get("globalDefault") and (best is None or (pc.get("value") or 0) < (best.get("value") or 0)):
            best = pc
    return best


class Priority:
    name = "Priority"

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    async def _classes(self) -> list[Obj]:
        return await lookup.list_objects(self.objects, GROUP, VERSION, RESOURCE)

    async def admit(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        s = r.strategy
        if new is None or s.group or s.resource != "pods" or lookup.subresource(r):
            return
        spec = new.setdefault("spec", {})
        if op == "UPDATE":
            # priority is set on create and immutable: keep the old values when left out
            old_spec = (old or {}).get("spec") or {}
            if spec.get("priority") is None and old_spec.get("priority") is not None:
                spec["priority"] = old_spec["priority"]
            if spec.get("preemptionPolicy") is None and old_spec.get("preemptionPolicy") is not None:
                spec["preemptionPolicy"] = old_spec["preemptionPolicy"]
            return
        if op != "CREATE":
            return
        name = (new.get("metadata") or {}).get("name", "")
        class_name = spec.get("priorityClassName") or ""
        if not class_name:
            default = default_class(await self._classes())
            if default is None:
                priority, policy = DEFAULT_PRIORITY, "PreemptLowerPriority"
            else:
                class_name = default["metadata"]["name"]
                priority, policy = int(default.get("value") or 0), default.get("preemptionPolicy")
                spec["priorityClassName"] = class_name
                # pod defaulting already filled in the no-class values; those are ours to replace
                if spec.get("priority") == DEFAULT_PRIORITY and spec.get("preemptionPolicy") == "PreemptLowerPriority":
                    spec.pop("priority", None)
                    spec.pop("preemptionPolicy", None)
        else:
            pc = await lookup.get_object(self.objects, GROUP, VERSION, RESOURCE, "", class_name)
            if pc is None:
                raise lookup.forbidden(r, name, f"no PriorityClass with name {class_name} was found")
            priority, policy = int(pc.get("value") or 0), pc.get("preemptionPolicy")
        if spec.get("priority") is not None and spec["priority"] != priority:
            raise lookup.forbidden(r, name, f"the integer value of priority ({spec['priority']}) must not be provided "
                                            f"in pod spec; priority admission controller computed {priority} from "
                                            "the given PriorityClass name")
        spec["priority"] = priority
        if policy is not None:
            if spec.get("preemptionPolicy") is not None and spec["preemptionPolicy"] != policy:
                raise lookup.forbidden(r, name, f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) "
                                                "must not be provided in pod spec; priority admission controller "
                                                f"computed {policy} from the given PriorityClass name")
            spec["preemptionPolicy"] = policy

    async def validate(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        s = r.strategy
        if (new is None or s.group != GROUP or s.resource != RESOURCE or lookup.subresource(r)
                or op not in ("CREATE", "UPDATE") or not new.get("globalDefault")):
            return
        current = default_class(await self._classes())
        if current is None:
            return
        name = (new.get("metadata") or {}).get("name", "")
        if op == "CREATE" or current["metadata"]["name"] != name:
            raise lookup.forbidden(r, name, f"PriorityClass {current['metadata']['name']} is already marked as "
                                            "default. Only one default can exist")
