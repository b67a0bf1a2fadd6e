"""ResourceQuota admission (upstream plugin/pkg/admission/resourcequota) and the usage
evaluators it shares with the quota controller (upstream pkg/quota/v1/evaluator/core and
pkg/quota/v1/generic).

Validating, on create (and on updates of pods, services and claims that change usage) of
a namespaced object: every ResourceQuota of the namespace whose `status.hard` names a
resource the object uses and whose scopes match it is charged the object's usage.  When a
quota would go over its hard limit the request is refused (403) with upstream's
`exceeded quota: <name>, requested: ..., used: ..., limited: ...`; otherwise the new
`status.used` is written with a compare-and-swap on the quota before the object itself is
stored (not for dry runs).  Quotas on cpu / memory require every container to state them
(`failed quota: <name>: must specify ...`).  The quota controller later recalculates the
usage from the objects that exist."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable, Iterable, Optional

from kybernetes.admission import lookup
from kybernetes.api.storagehelpers import claim_class
from kybernetes.apiserver.objects import ObjectStore, collection_prefix, object_key
from kybernetes.storage.interface import ConflictError, KeyNotFoundError

Obj = dict[str, Any]

# ---------------------------------------------------------------- quantities
_BIN_SUFFIXES = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DEC_SUFFIXES = {18: "E", 15: "P", 12: "T", 9: "G", 6: "M", 3: "k", 0: "", -3: "m", -6: "u", -9: "n"}


class Q:
    """A resource.Quantity: an exact value and its format (binary or decimal SI)."""

    __slots__ = ("value", "binary")

    def __init__(self, value: Fraction | int = 0, binary: bool = False) -> None:
        self.value = Fraction(value)
        self.binary = binary

    @classmethod
    def parse(cls, v: Any) -> "Q":
        s = str(v).strip()
        return cls(lookup.quantity(s), any(s.endswith(x) for x in _BIN_SUFFIXES))

    def __add__(self, other: "Q") -> "Q":
        # Quantity.Add: a zero value takes the other operand's format
        return Q(self.value + other.value, other.binary if self.value == 0 else self.binary)

    def __sub__(self, other: "Q") -> "Q":
        return Q(self.value - other.value, other.binary if self.value == 0 else self.binary)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Q) and self.value == other.value

    def __repr__(self) -> str:
        return f"Q({self})"

    def __str__(self) -> str:
        """Quantity.String(): the canonical form."""
        q = self.value
        if q == 0:
            return "0"
        sign = "-" if q < 0 else ""
        q = abs(q)
        if self.binary and q.denominator == 1 and q >= 1024:
            for i in range(len(_BIN_SUFFIXES), 0, -1):
                unit = 1 << (10 * i)
                if q % unit == 0:
                    return f"{sign}{q // unit}{_BIN_SUFFIXES[i - 1]}"
            return f"{sign}{q}"
        for exp, suffix in _DEC_SUFFIXES.items():
            scaled = q / Fraction(10) ** exp
            if scaled.denominator == 1:
                return f"{sign}{scaled.numerator}{suffix}"
        return f"{sign}{math.ceil(q * 10 ** 9)}n"


ResourceList = dict[str, Q]


def parse_list(raw: Optional[dict]) -> ResourceList:
    out: ResourceList = {}
    for k, v in (raw or {}).items():
        try:
            out[k] = Q.parse(v)
        except ValueError:
            continue
    return out


def format_list(rl: ResourceList) -> dict[str, str]:
    return {k: str(v) for k, v in sorted(rl.items())}


def add(a: ResourceList, b: ResourceList) -> ResourceList:
    out = dict(a)
    for k, v in b.items():
        out[k] = out[k] + v if k in out else Q(v.value, v.binary)
    return out


def subtract_non_negative(a: ResourceList, b: ResourceList) -> ResourceList:
    """quota.SubtractWithNonNegativeResult."""
    out: ResourceList = {}
    for k, v in a.items():
        d = v - b[k] if k in b else v
        out[k] = d if d.value > 0 else Q(0, v.binary)
    for k, v in b.items():
        if k not in out:
            out[k] = Q(0, v.binary)
    return out


def mask(rl: ResourceList, names: Iterable[str]) -> ResourceList:
    names = set(names)
    return {k: v for k, v in rl.items() if k in names}


def is_zero(rl: ResourceList) -> bool:
    return all(v.value == 0 for v in rl.values())


def pretty(rl: ResourceList) -> str:
    """prettyPrint: `name=value` pairs sorted by name, comma-joined."""
    return ",".join(f"{k}={rl[k]}" for k in sorted(rl))


# ---------------------------------------------------------------- resource names
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
COMPUTE_VALIDATION = {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
POD_RESOURCES = {"pods", "count/pods", "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory",
                 "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage"}
POD_PREFIXES = ("hugepages-", "requests.hugepages-")
NATIVE_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage", "pods"}


def object_count_name(group: str, resource: str) -> str:
    """ObjectCountQuotaResourceNameFor: count/<resource>[.<group>]."""
    return f"count/{resource}.{group}" if group else f"count/{resource}"


def is_native(name: str) -> bool:
    """helper.IsNativeResource: unprefixed or in the kubernetes.io namespace."""
    return "/" not in name or "kubernetes.io/" in name


def is_extended(name: str) -> bool:
    """helper.IsExtendedResourceName: outside the kubernetes.io namespace, not `requests.*`."""
    if is_native(name) or name.startswith("requests."):
        return False
    return True


def is_extended_for_quota(name: str) -> bool:
    return name.startswith("requests.") and is_extended(name[len("requests."):])


# ---------------------------------------------------------------- pods
def _resources(c: Obj) -> tuple[dict, dict]:
    res = c.get("resources") or {}
    return res.get("requests") or {}, res.get("limits") or {}


def _sum_into(total: ResourceList, raw: dict) -> None:
    for k, v in raw.items():
        try:
            q = Q.parse(v)
        except ValueError:
            continue
        total[k] = total[k] + q if k in total else q


def _max_into(total: ResourceList, other: ResourceList) -> None:
    for k, v in other.items():
        if k not in total or v.value > total[k].value:
            total[k] = v


def pod_aggregate(pod: Obj, which: int) -> ResourceList:
    """resourcehelper.PodRequests (which=0) / PodLimits (which=1): containers summed, the
    largest init container (plus the sidecars started before it) if larger, plus overhead."""
    spec = pod.get("spec") or {}
    total: ResourceList = {}
    for c in spec.get("containers") or []:
        _sum_into(total, _resources(c)[which])
    sidecars: ResourceList = {}
    init_max: ResourceList = {}
    for c in spec.get("initContainers") or []:
        raw = _resources(c)[which]
        if c.get("restartPolicy") == "Always":
            _sum_into(sidecars, raw)
            _max_into(init_max, dict(sidecars))
        else:
            one: ResourceList = dict(sidecars)
            _sum_into(one, raw)
            _max_into(init_max, one)
    total = add(total, sidecars)
    _max_into(total, init_max)
    if spec.get("overhead"):
        total = add(total, parse_list(spec["overhead"]))
    return total


def compute_usage(requests: ResourceList, limits: ResourceList) -> ResourceList:
    """podComputeUsageHelper."""
    out: ResourceList = {"pods": Q(1)}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            out[name] = requests[name]
            out[f"requests.{name}"] = requests[name]
        if name in limits:
            out[f"limits.{name}"] = limits[name]
    for name, q in requests.items():
        if name.startswith("hugepages-"):
            out[name] = q
            out[f"requests.{name}"] = q
        if is_extended(name):
            out[f"requests.{name}"] = q
    return out


def pod_terminal(pod: Obj, now: Optional[float] = None) -> bool:
    """Not QuotaV1Pod: finished, or past its deletion grace period."""
    if ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed"):
        return True
    meta = pod.get("metadata") or {}
    ts, grace = meta.get("deletionTimestamp"), meta.get("deletionGracePeriodSeconds")
    if ts and grace is not None:
        import datetime
        import time

        try:
            t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return False
        return (now if now is not None else time.time()) > t + grace
    return False


def pod_usage(pod: Obj) -> ResourceList:
    out: ResourceList = {"count/pods": Q(1)}
    if pod_terminal(pod):
        return out
    return add(out, compute_usage(pod_aggregate(pod, 0), pod_aggregate(pod, 1)))


def pod_matching_resources(names: Iterable[str]) -> list[str]:
    return [n for n in names if n in POD_RESOURCES or n.startswith(POD_PREFIXES) or is_extended_for_quota(n)]


def pod_constraints(required: Iterable[str], pod: Obj) -> Optional[str]:
    """Every container must state the cpu / memory a quota restricts: the `must specify`
    message (None when satisfied)."""
    required_set = set(required) & COMPUTE_VALIDATION
    if not required_set:
        return None
    missing: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        req, lim = _resources(c)
        have = set(compute_usage(parse_list(req), parse_list(lim)))
        for name in required_set - have:
            missing.setdefault(name, set()).add(c.get("name", ""))
    if not missing:
        return None
    return "must specify " + "; ".join(f"{r} for: {','.join(sorted(missing[r]))}" for r in sorted(missing))


def is_best_effort(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        for raw in _resources(c):
            for k, v in raw.items():
                if k in ("cpu", "memory"):
                    try:
                        if lookup.quantity(v) != 0:
                            return False
                    except ValueError:
                        pass
    return True


def _cross_namespace_affinity(pod: Obj) -> bool:
    aff = (pod.get("spec") or {}).get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        a = aff.get(kind) or {}
        terms = list(a.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        terms += [w.get("podAffinityTerm") or {} for w in a.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        if any(t.get("namespaces") or t.get("namespaceSelector") is not None for t in terms):
            return True
    return False


def pod_matches_scope(selector: Obj, pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    scope, op = selector.get("scopeName"), selector.get("operator")
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] >= 0
    if scope == "NotTerminating":
        return not (spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] >= 0)
    if scope == "BestEffort":
        return is_best_effort(pod)
    if scope == "NotBestEffort":
        return not is_best_effort(pod)
    if scope == "PriorityClass":
        name = spec.get("priorityClassName") or ""
        values = selector.get("values") or []
        if op == "Exists":
            return bool(name)
        if op == "DoesNotExist":
            return not name
        if op == "In":
            return bool(name) and name in values
        if op == "NotIn":
            return not name or name not in values
        return False
    if scope == "CrossNamespacePodAffinity":
        return _cross_namespace_affinity(pod)
    return False


# ---------------------------------------------------------------- services, claims
def service_usage(svc: Obj) -> ResourceList:
    spec = svc.get("spec") or {}
    ports = spec.get("ports") or []
    out: ResourceList = {"count/services": Q(1), "services": Q(1),
                         "services.loadbalancers": Q(0), "services.nodeports": Q(0)}
    t = spec.get("type") or "ClusterIP"
    if t == "NodePort":
        out["services.nodeports"] = Q(len(ports))
    elif t == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is False:
            out["services.nodeports"] = Q(sum(1 for p in ports if p.get("nodePort")))
        else:
            out["services.nodeports"] = Q(len(ports))
        out["services.loadbalancers"] = Q(1)
    return out


def pvc_usage(pvc: Obj) -> ResourceList:
    out: ResourceList = {"persistentvolumeclaims": Q(1), "count/persistentvolumeclaims": Q(1)}
    cls = claim_class(pvc)
    if cls:
        out[cls + STORAGE_CLASS_SUFFIX + "persistentvolumeclaims"] = Q(1)
    storage: Optional[Q] = None
    raw = ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}
    if "storage" in raw:
        storage = Q.parse(raw["storage"])
    allocated = ((pvc.get("status") or {}).get("allocatedResources") or {}).get("storage")
    if allocated is not None:
        a = Q.parse(allocated)
        if storage is None or a.value > storage.value:
            storage = a
    if storage is not None:
        out["requests.storage"] = storage
        if cls:
            out[cls + STORAGE_CLASS_SUFFIX + "requests.storage"] = storage
    return out


def pvc_matching_resources(names: Iterable[str]) -> list[str]:
    fixed = {"persistentvolumeclaims", "count/persistentvolumeclaims", "requests.storage"}
    return [n for n in names if n in fixed or (STORAGE_CLASS_SUFFIX in n and n.endswith(
        (STORAGE_CLASS_SUFFIX + "persistentvolumeclaims", STORAGE_CLASS_SUFFIX + "requests.storage")))]


# ---------------------------------------------------------------- evaluators
class Evaluator:
    """One group/resource's usage: which quota resources it answers to, the usage of one
    object, whether scopes apply, and which operations it charges."""

    def __init__(self, group: str, resource: str, usage: Callable[[Obj], ResourceList],
                 matching: Callable[[Iterable[str]], list[str]], *, scoped: bool = False,
                 updates: bool = False, constraints: Optional[Callable[[Iterable[str], Obj], Optional[str]]] = None,
                 version: str = "v1") -> None:
        self.group, self.resource, self.version = group, resource, version
        self._usage, self._matching = usage, matching
        self.scoped, self.updates, self._constraints = scoped, updates, constraints

    def handles(self, op: str) -> bool:
        return op == "CREATE" or (op == "UPDATE" and self.updates)

    def usage(self, obj: Obj) -> ResourceList:
        return self._usage(obj)

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        return self._matching(names)

    def matches_scope(self, selector: Obj, obj: Obj) -> bool:
        return pod_matches_scope(selector, obj) if self.scoped else False

    def constraints(self, required: Iterable[str], obj: Obj) -> Optional[str]:
        return self._constraints(required, obj) if self._constraints else None

    def matches(self, quota: Obj, obj: Obj) -> bool:
        """generic.Matches: the quota's hard names a resource of ours and every scope matches."""
        hard = ((quota.get("status") or {}).get("hard")) or {}
        if not self.matching_resources(hard):
            return False
        return all(self.matches_scope(sel, obj) for sel in scope_selectors(quota))


def object_count_evaluator(group: str, resource: str, version: str = "v1", alias: str = "") -> Evaluator:
    name = object_count_name(group, resource)
    names = {name} | ({alias} if alias else set())

    def usage(_: Obj) -> ResourceList:
        return {n: Q(1) for n in names}

    return Evaluator(group, resource, usage, lambda hard: [n for n in hard if n in names], version=version)


_EVALUATORS: dict[tuple[str, str], Evaluator] = {
    ("", "pods"): Evaluator("", "pods", pod_usage, pod_matching_resources, scoped=True, updates=True,
                            constraints=pod_constraints),
    ("", "services"): Evaluator("", "services", service_usage, lambda hard: [
        n for n in hard if n in ("services", "count/services", "services.loadbalancers", "services.nodeports")],
        updates=True),
    ("", "persistentvolumeclaims"): Evaluator("", "persistentvolumeclaims", pvc_usage, pvc_matching_resources,
                                              updates=True),
    **{("", r): object_count_evaluator("", r, alias=r)
       for r in ("configmaps", "secrets", "replicationcontrollers", "resourcequotas")},
}


def evaluator_for(group: str, resource: str, version: str = "v1") -> Evaluator:
    """The evaluator of a group/resource: a registered one, else an object counter."""
    e = _EVALUATORS.get((group, resource))
    return e if e is not None else object_count_evaluator(group, resource, version)


def registered_evaluators() -> list[Evaluator]:
    return list(_EVALUATORS.values())


def scope_selectors(quota: Obj) -> list[Obj]:
    """getScopeSelectorsFromQuota: spec.scopes as Exists requirements, then the scopeSelector's."""
    spec = quota.get("spec") or {}
    out = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    out += list(((spec.get("scopeSelector") or {}).get("matchExpressions")) or [])
    return out


# ---------------------------------------------------------------- the admission check
class QuotaExceeded(Exception):
    pass


def charge(quotas: list[Obj], evaluator: Evaluator, op: str, new: Obj, old: Optional[Obj]) -> dict[int, ResourceList]:
    """checkRequest: the new status.used of every quota the object is charged to (by index),
    or raise QuotaExceeded(message) when it may not be admitted."""
    interesting: list[int] = []
    for i, q in enumerate(quotas):
        if not evaluator.matches(q, new):
            continue
        name = q["metadata"]["name"]
        hard_names = list(((q.get("status") or {}).get("hard")) or {})
        restricted = evaluator.matching_resources(hard_names)
        why = evaluator.constraints(restricted, new)
        if why:
            raise QuotaExceeded(f"failed quota: {name}: {why}")
        used = (q.get("status") or {}).get("used") or {}
        missing = [r for r in restricted if r not in used]
        if missing:
            raise QuotaExceeded(f"status unknown for quota: {name}, resources: {','.join(sorted(restricted))}")
        interesting.append(i)
    if not interesting:
        return {}
    delta = evaluator.usage(new)
    if op == "UPDATE" and old is not None:
        delta = subtract_non_negative(delta, evaluator.usage(old))
    if is_zero(delta):
        return {}
    out: dict[int, ResourceList] = {}
    for i in interesting:
        q = quotas[i]
        status = q.get("status") or {}
        hard = parse_list(status.get("hard"))
        used = parse_list(status.get("used"))
        requested = mask(delta, hard)
        new_used = add(used, requested)
        exceeded = sorted(k for k in requested if new_used[k].value > hard[k].value)
        if exceeded:
            raise QuotaExceeded(
                f"exceeded quota: {q['metadata']['name']}, requested: {pretty(mask(requested, exceeded))}, "
                f"used: {pretty(mask(used, exceeded))}, limited: {pretty(mask(hard, exceeded))}")
        out[i] = new_used
    return out


class ResourceQuota:
    """The validating plugin; runs last in the chain, as upstream."""

    name = "ResourceQuota"
    retries = 10

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    async def validate(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        s = r.strategy
        if new is None or not s.namespaced or lookup.subresource(r):
            return
        evaluator = evaluator_for(s.group, s.resource, s.version)
        if not evaluator.handles(op):
            return
        namespace = (new.get("metadata") or {}).get("namespace") or getattr(r.info, "namespace", "") or ""
        if not namespace:
            return
        rq = lookup.strategy("", "v1", "resourcequotas")
        # as upstream's quota lister: a namespace without quotas in the cache costs no
        # consistent read (most writes); with quotas, read them as current as the store
        cache = await self.objects.cache(rq)
        if not cache.list(prefix=collection_prefix(rq, namespace)).items:
            return
        quotas = await lookup.list_objects(self.objects, "", "v1", "resourcequotas", namespace)
        if not quotas:
            return
        name = (new.get("metadata") or {}).get("name", "")
        for _ in range(self.retries):
            try:
                charges = charge(quotas, evaluator, op, new, old)
            except QuotaExceeded as e:
                raise lookup.forbidden(r, name, str(e)) from None
            if not charges or r.dry_run:
                return
            retry: list[Obj] = []
            for i, used in charges.items():
                q = quotas[i]
                key = object_key(rq, namespace, q["metadata"]["name"])
                q.setdefault("status", {})["used"] = format_list(used)
                try:
                    await self.objects.store.update(key, self.objects.encode(key, q),
                                                    int(q["metadata"]["resourceVersion"]))
                except ConflictError:
                    kv = await self.objects.store.get(key)
                    if kv is not None:
                        retry.append(self.objects.decode(kv))
                except KeyNotFoundError:
                    pass
            if not retry:
                return
            quotas = retry
        raise lookup.forbidden(r, name, "unable to update quota status: too many conflicts")


__all__ = ["ResourceQuota", "Evaluator", "evaluator_for", "registered_evaluators", "charge", "QuotaExceeded",
           "Q", "parse_list", "format_list", "add", "mask", "scope_selectors", "object_count_name",
           "pod_usage", "service_usage", "pvc_usage", "pod_constraints", "pod_matches_scope"]
