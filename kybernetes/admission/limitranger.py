"""LimitRanger admission (upstream plugin/pkg/admission/limitranger).

Mutating, on pod create: the `Container` limits' `default` / `defaultRequest` fill the
limits / requests each container and init container leaves out, recorded in the
`kubernetes.io/limit-ranger` annotation.  Validating: `min`, `max` and
`maxLimitRequestRatio` for `Container` and `Pod` limits on pod create, and `min` / `max`
of `PersistentVolumeClaim` limits on claim create and update, with upstream's messages."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Optional

from kybernetes.admission import lookup
from kybernetes.apiserver.objects import ObjectStore

Obj = dict[str, Any]

ANNOTATION = "kubernetes.io/limit-ranger"


def _q(v: Any) -> Fraction:
    return lookup.quantity(v)


def _s(v: Any) -> str:
    return lookup.quantity_string(v)


def container_defaults(limit_range: Obj) -> tuple[dict, dict]:
    """(default requests, default limits) from the Container items (later items win)."""
    requests: dict = {}
    limits: dict = {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") != "Container":
            continue
        # the LimitRange defaults, in case the stored item predates them
        default = dict(item.get("default") or {})
        request = dict(item.get("defaultRequest") or {})
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        for k, v in default.items():
            request.setdefault(k, v)
        for k, v in (item.get("min") or {}).items():
            request.setdefault(k, v)
        requests.update(request)
        limits.update(default)
    return requests, limits


def _merge_container(c: Obj, requests: dict, limits: dict, prefix: str, notes: list[str]) -> None:
    res = c.get("resources") or {}
    c_limits = dict(res.get("limits") or {})
    c_requests = dict(res.get("requests") or {})
    set_limits = [k for k in limits if k not in c_limits]
    for k in set_limits:
        c_limits[k] = limits[k]
    set_requests = [k for k in requests if k not in c_requests]
    for k in set_requests:
        c_requests[k] = requests[k]
    if set_limits or set_requests:
        if c_limits:
            res["limits"] = c_limits
        if c_requests:
            res["requests"] = c_requests
        c["resources"] = res
    if set_requests:
        notes.append(", ".join(sorted(set_requests)) + f" request for {prefix} {c.get('name', '')}")
    if set_limits:
        notes.append(", ".join(sorted(set_limits)) + f" limit for {prefix} {c.get('name', '')}")


def merge_pod_defaults(pod: Obj, requests: dict, limits: dict) -> None:
    spec = pod.setdefault("spec", {})
    notes: list[str] = []
    for c in spec.get("containers") or []:
        _merge_container(c, requests, limits, "container", notes)
    for c in spec.get("initContainers") or []:
        _merge_container(c, requests, limits, "init container", notes)
    if notes:
        meta = pod.setdefault("metadata", {})
        ann = meta.get("annotations") or {}
        ann[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
        meta["annotations"] = ann


# ------------------------------------------------------------------ constraints
def min_constraint(limit_type: str, name: str, enforced: Any, request: dict, limit: dict) -> Optional[str]:
    e = _q(enforced)
    if name not in request:
        return f"minimum {name} usage per {limit_type} is {_s(enforced)}.  No request is specified"
    if _q(request[name]) < e:
        return f"minimum {name} usage per {limit_type} is {_s(enforced)}, but request is {_s(request[name])}"
    if name in limit and _q(limit[name]) < e:
        return f"minimum {name} usage per {limit_type} is {_s(enforced)}, but limit is {_s(limit[name])}"
    return None


def max_constraint(limit_type: str, name: str, enforced: Any, request: dict, limit: dict) -> Optional[str]:
    e = _q(enforced)
    if name not in limit:
        return f"maximum {name} usage per {limit_type} is {_s(enforced)}.  No limit is specified"
    if _q(limit[name]) > e:
        return f"maximum {name} usage per {limit_type} is {_s(enforced)}, but limit is {_s(limit[name])}"
    if name in request and _q(request[name]) > e:
        return f"maximum {name} usage per {limit_type} is {_s(enforced)}, but request is {_s(request[name])}"
    return None


def max_request_constraint(limit_type: str, name: str, enforced: Any, request: dict) -> Optional[str]:
    if name not in request:
        return f"maximum {name} usage per {limit_type} is {_s(enforced)}.  No request is specified"
    if _q(request[name]) > _q(enforced):
        return f"maximum {name} usage per {limit_type} is {_s(enforced)}, but request is {_s(request[name])}"
    return None


def ratio_constraint(limit_type: str, name: str, enforced: Any, request: dict, limit: dict) -> Optional[str]:
    req = _q(request[name]) if name in request else Fraction(0)
    lim = _q(limit[name]) if name in limit else Fraction(0)
    if name not in request or req == 0:
        return (f"{name} max limit to request ratio per {limit_type} is {_s(enforced)}, "
                "but no request is specified or request is 0")
    if name not in limit or lim == 0:
        return (f"{name} max limit to request ratio per {limit_type} is {_s(enforced)}, "
                "but no limit is specified or limit is 0")
    # upstream compares milli-values (integers, rounded up)
    import math

    req_m, lim_m = math.ceil(req * 1000), math.ceil(lim * 1000)
    observed = Fraction(lim_m, req_m)
    if observed * 1000 > math.ceil(_q(enforced) * 1000):
        return (f"{name} max limit to request ratio per {limit_type} is {_s(enforced)}, "
                f"but provided ratio is {float(observed):f}")
    return None


def _add(total: dict, values: dict) -> None:
    for k, v in values.items():
        total[k] = total[k] + _q(v) if k in total else _q(v)


def pod_totals(pod: Obj, field: str) -> dict:
    """Sum over containers, then the larger of that and each init container."""
    spec = pod.get("spec") or {}
    total: dict = {}
    for c in spec.get("containers") or []:
        _add(total, (c.get("resources") or {}).get(field) or {})
    for c in spec.get("initContainers") or []:
        for k, v in ((c.get("resources") or {}).get(field) or {}).items():
            if k not in total or _q(v) > total[k]:
                total[k] = _q(v)
    # keep quantities as strings for the messages
    return {k: _fraction_string(v) for k, v in total.items()}


def _fraction_string(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    milli = v * 1000
    if milli.denominator == 1:
        return f"{milli.numerator}m"
    import math

    return f"{math.ceil(v * 10 ** 9)}n"


def validate_pod(limit_range: Obj, pod: Obj) -> list[str]:
    errs: list[str] = []
    spec = pod.get("spec") or {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        t = item.get("type")
        if t == "Container":
            for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
                res = c.get("resources") or {}
                req, lim = res.get("requests") or {}, res.get("limits") or {}
                for k, v in (item.get("min") or {}).items():
                    errs.append(min_constraint(t, k, v, req, lim))
                for k, v in (item.get("max") or {}).items():
                    errs.append(max_constraint(t, k, v, req, lim))
                for k, v in (item.get("maxLimitRequestRatio") or {}).items():
                    errs.append(ratio_constraint(t, k, v, req, lim))
        elif t == "Pod":
            req, lim = pod_totals(pod, "requests"), pod_totals(pod, "limits")
            for k, v in (item.get("min") or {}).items():
                errs.append(min_constraint(t, k, v, req, lim))
            for k, v in (item.get("max") or {}).items():
                errs.append(max_constraint(t, k, v, req, lim))
            for k, v in (item.get("maxLimitRequestRatio") or {}).items():
                errs.append(ratio_constraint(t, k, v, req, lim))
    return [e for e in errs if e]


def validate_pvc(limit_range: Obj, pvc: Obj) -> list[str]:
    errs: list[str] = []
    requests = ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        t = item.get("type")
        if t != "PersistentVolumeClaim":
            continue
        for k, v in (item.get("min") or {}).items():
            errs.append(min_constraint(t, k, v, requests, {}))
        for k, v in (item.get("max") or {}).items():
            errs.append(max_request_constraint(t, k, v, requests))
    return [e for e in errs if e]


def aggregate(errs: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error()."""
    # an aggregate drops duplicate messages
    seen: list[str] = []
    for e in errs:
        if e not in seen:
            seen.append(e)
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


class LimitRanger:
    name = "LimitRanger"

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    @staticmethod
    def _kind(op: str, r: Any, obj: Optional[Obj]) -> str:
        """"pod" / "pvc" when the request is one LimitRanger acts on, else ""."""
        s = r.strategy
        if s.group or lookup.subresource(r) or obj is None or op not in ("CREATE", "UPDATE"):
            return ""
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            return ""
        if s.resource == "pods":
            # containers cannot change after create, so pod updates are left alone
            return "pod" if op == "CREATE" else ""
        if s.resource == "persistentvolumeclaims":
            return "pvc"
        return ""

    async def _ranges(self, r: Any, obj: Obj) -> list[Obj]:
        ns = (obj.get("metadata") or {}).get("namespace") or r.info.namespace
        return await lookup.list_objects(self.objects, "", "v1", "limitranges", ns)

    async def admit(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        if self._kind(op, r, new) != "pod":
            return
        for lr in await self._ranges(r, new):
            requests, limits = container_defaults(lr)
            if requests or limits:
                merge_pod_defaults(new, requests, limits)

    async def validate(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        kind = self._kind(op, r, new)
        if not kind:
            return
        for lr in await self._ranges(r, new):
            errs = validate_pod(lr, new) if kind == "pod" else validate_pvc(lr, new)
            if errs:
                raise lookup.forbidden(r, (new.get("metadata") or {}).get("name", ""), aggregate(errs))
