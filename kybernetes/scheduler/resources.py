"""Resource quantities and pod requests, as the scheduler counts them.

CPU is counted in millicores, everything else in integer units (bytes for memory and
ephemeral-storage).  A pod's request is upstream's rule: the larger of (sum of the
regular containers, plus restartable init (sidecar) containers) and (each plain init
container, plus the sidecars started before it), plus the pod overhead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Optional

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

# upstream pkg/scheduler/util: requests assumed for scoring when a container has none
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

_SUFFIX = {
    "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "Pi": 1024 ** 5, "Ei": 1024 ** 6,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18,
}
_QTY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$")


def parse_quantity(value: Any) -> Decimal:
    """A Kubernetes quantity ("100m", "1.5Gi", "2", 3) as a Decimal; ValueError if bad."""
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    m = _QTY.match(str(value).strip())
    if not m:
        raise ValueError(f"invalid quantity {value!r}")
    try:
        num = Decimal(m.group(1))
    except InvalidOperation:
        raise ValueError(f"invalid quantity {value!r}") from None
    suf = m.group(2) or ""
    if suf[:1] in ("e", "E"):
        return num * (Decimal(10) ** int(suf[1:]))
    return num * _SUFFIX[suf]


_UNITS: dict[tuple[bool, Any], int] = {}


def to_units(name: str, value: Any) -> int:
    """Millicores for cpu, rounded up (as resource.Quantity.MilliValue/Value do); whole units otherwise."""
    key = (name == CPU, value)
    n = _UNITS.get(key) if isinstance(value, str) else None
    if n is not None:
        return n  # the same few quantity strings recur in every replica: parse each once
    q = parse_quantity(value)
    n = int(math.ceil(q * 1000)) if name == CPU else int(math.ceil(q))
    if isinstance(value, str):
        if len(_UNITS) > 4096:
            _UNITS.clear()
        _UNITS[key] = n
    return n


@dataclass
class Resource:
    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    allowed_pods: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_list(cls, rl: Optional[Mapping[str, Any]]) -> "Resource":
        r = cls()
        for name, v in (rl or {}).items():
            try:
                n = to_units(name, v)
            except ValueError:
                continue
            r.set(name, n)
        return r

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        if name == PODS:
            return self.allowed_pods
        return self.scalar.get(name, 0)

    def set(self, name: str, n: int) -> None:
        if name == CPU:
            self.milli_cpu = n
        elif name == MEMORY:
            self.memory = n
        elif name == EPHEMERAL_STORAGE:
            self.ephemeral_storage = n
        elif name == PODS:
            self.allowed_pods = n
        else:
            self.scalar[name] = n

    def add(self, other: "Resource", sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for k, v in other.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) + sign * v

    def set_max(self, other: "Resource") -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for k, v in other.scalar.items():
            self.scalar[k] = max(self.scalar.get(k, 0), v)

    def copy(self) -> "Resource":
        return Resource(self.milli_cpu, self.memory, self.ephemeral_storage, self.allowed_pods, dict(self.scalar))


def _container_requests(c: Mapping[str, Any]) -> Resource:
    res = c.get("resources") or {}
    # a limit without a request means request = limit (API defaulting does this; be safe)
    merged = dict(res.get("limits") or {})
    merged.update(res.get("requests") or {})
    return Resource.from_list(merged)


def _non_zero(r: Resource) -> Resource:
    out = r.copy()
    if out.milli_cpu == 0:
        out.milli_cpu = DEFAULT_MILLI_CPU_REQUEST
    if out.memory == 0:
        out.memory = DEFAULT_MEMORY_REQUEST
    return out


def pod_requests(pod: Mapping[str, Any], *, non_zero: bool = False) -> Resource:
    """The pod's effective request (upstream resourcehelper.PodRequests).  With non_zero,
    containers without cpu/memory requests count the scheduler's defaults (for scoring)."""
    spec = pod.get("spec") or {}
    reqs = Resource()
    for c in spec.get("containers") or []:
        r = _container_requests(c)
        reqs.add(_non_zero(r) if non_zero else r)
    sidecars = Resource()
    init_max = Resource()
    for c in spec.get("initContainers") or []:
        r = _container_requests(c)
        if non_zero:
            r = _non_zero(r)
        if c.get("restartPolicy") == "Always":
            reqs.add(r)
            sidecars.add(r)
            init_max.set_max(sidecars)
        else:
            tmp = sidecars.copy()
            tmp.add(r)
            init_max.set_max(tmp)
    reqs.set_max(init_max)
    overhead = spec.get("overhead")
    if overhead:
        reqs.add(Resource.from_list(overhead))
    return reqs
