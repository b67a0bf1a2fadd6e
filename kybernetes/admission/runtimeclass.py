"""RuntimeClass admission (upstream plugin/pkg/admission/runtimeclass).

On pod CREATE only.  A pod naming a RuntimeClass that does not exist is refused (403,
`pod rejected: RuntimeClass "x" not found`).  Admit copies the class's `overhead.podFixed`
into `spec.overhead` (refusing a pod whose own overhead differs) and merges the class's
`scheduling`: its nodeSelector into the pod's (a key the pod sets to another value is a
conflict) and its tolerations into the pod's, dropping ones another already covers.
Validate then re-checks the overhead, so a later mutating webhook cannot change it, and
refuses an overhead on a pod whose class defines none."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.admission import lookup

Obj = dict[str, Any]

GROUP, VERSION, RESOURCE = "node.k8s.io", "v1", "runtimeclasses"


def _same_resources(a: Optional[dict[str, Any]], b: Optional[dict[str, Any]]) -> bool:
    """Semantic equality of two ResourceLists: same names, equal quantities (1 == 1000m)."""
    a, b = a or {}, b or {}
    if set(a) != set(b):
        return False
    try:
        return all(lookup.quantity(a[k]) == lookup.quantity(b[k]) for k in a)
    except ValueError:
        return False


def _is_superset(ss: Obj, t: Obj) -> bool:
    """Whether toleration `ss` tolerates everything `t` does (upstream tolerations.isSuperset)."""
    if ss == t:
        return True
    ss_key, t_key = ss.get("key") or "", t.get("key") or ""
    ss_op = ss.get("operator") or "Equal"
    if t_key != ss_key and (ss_key != "" or ss_op != "Exists"):
        return False
    ss_effect = ss.get("effect") or ""
    if (t.get("effect") or "") != ss_effect and ss_effect != "":
        return False
    if ss_effect == "NoExecute" and ss.get("tolerationSeconds") is not None:
        if t.get("tolerationSeconds") is None or t["tolerationSeconds"] > ss["tolerationSeconds"]:
            return False
    if ss_op == "Equal":
        return (t.get("operator") or "Equal") == "Equal" and (t.get("value") or "") == (ss.get("value") or "")
    return ss_op == "Exists"


def merge_tolerations(first: list[Obj], second: list[Obj]) -> list[Obj]:
    """Both lists, in order, without a toleration that another one already covers
    (of two equal tolerations the first is kept)."""
    every = list(first) + list(second)
    merged: list[Obj] = []
    for i, t in enumerate(every):
        if any(_is_superset(m, t) for m in merged):
            continue
        if any(t != later and _is_superset(later, t) for later in every[i + 1:]):
            continue
        merged.append(t)
    return merged


class RuntimeClass:
    name = "RuntimeClass"

    def __init__(self, objects: Any) -> None:
        self.objects = objects

    async def _class_of(self, r: Any, pod: Obj) -> Optional[Obj]:
        """The pod's RuntimeClass; None when it names none; 403 when it names a missing one."""
        class_name = (pod.get("spec") or {}).get("runtimeClassName")
        if class_name is None:
            return None
        rc = await lookup.get_object(self.objects, GROUP, VERSION, RESOURCE, "", class_name)
        if rc is None:
            name = (pod.get("metadata") or {}).get("name", "")
            raise lookup.forbidden(r, name, f'pod rejected: RuntimeClass "{class_name}" not found')
        return rc

    @staticmethod
    def _applies(op: str, r: Any, new: Optional[Obj]) -> bool:
        s = r.strategy
        return new is not None and op == "CREATE" and not s.group and s.resource == "pods" and not lookup.subresource(r)

    async def admit(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        if not self._applies(op, r, new):
            return
        rc = await self._class_of(r, new)
        if rc is None:
            return
        spec = new.setdefault("spec", {})
        name = (new.get("metadata") or {}).get("name", "")
        overhead = rc.get("overhead")
        if overhead is not None:
            pod_fixed = overhead.get("podFixed")
            if spec.get("overhead") and not _same_resources(pod_fixed, spec["overhead"]):
                raise lookup.forbidden(r, name, "pod rejected: Pod's Overhead doesn't match RuntimeClass's "
                                                "defined Overhead")
            if pod_fixed is None:
                spec.pop("overhead", None)
            else:
                spec["overhead"] = dict(pod_fixed)
        scheduling = rc.get("scheduling")
        if scheduling is not None:
            selector = spec.get("nodeSelector")
            class_selector = scheduling.get("nodeSelector") or {}
            if selector is None:
                selector = dict(class_selector) if scheduling.get("nodeSelector") is not None else None
            else:
                for key, value in class_selector.items():
                    if key in selector and selector[key] != value:
                        raise lookup.forbidden(r, name, f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = "
                                                        f"{value}; pod.spec.nodeSelector[{key}] = {selector[key]}")
                    selector[key] = value
            if selector is not None:
                spec["nodeSelector"] = selector
            tolerations = merge_tolerations(spec.get("tolerations") or [], scheduling.get("tolerations") or [])
            if tolerations:
                spec["tolerations"] = tolerations

    async def validate(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        if not self._applies(op, r, new):
            return
        rc = await self._class_of(r, new)
        spec = new.get("spec") or {}
        name = (new.get("metadata") or {}).get("name", "")
        if rc is not None and rc.get("overhead") is not None:
            if not _same_resources(rc["overhead"].get("podFixed"), spec.get("overhead")):
                raise lookup.forbidden(r, name, "pod rejected: Pod's Overhead doesn't match RuntimeClass's "
                                                "defined Overhead")
        elif spec.get("overhead") is not None:
            raise lookup.forbidden(r, name, "pod rejected: Pod Overhead set without corresponding RuntimeClass "
                                            "defined Overhead")
