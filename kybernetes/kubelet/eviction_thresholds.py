"""Eviction thresholds from the kubelet's flags, parsed as upstream's ParseThresholdConfig:
`--eviction-hard` / `--eviction-soft` (`signal<value,...`, value a quantity or a
percentage of capacity), `--eviction-soft-grace-period` (`signal=duration,...`, one for
every soft threshold) and `--eviction-minimum-reclaim` (`signal=value,...`).

    ts = parse_threshold_config(hard="memory.available<100Mi", soft="nodefs.available<15%",
                                soft_grace_period="nodefs.available=1m30s",
                                minimum_reclaim="nodefs.available=500Mi")
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Optional

from kybernetes.scheduler.resources import parse_quantity

MEMORY_AVAILABLE = "memory.available"
ALLOCATABLE_MEMORY_AVAILABLE = "allocatableMemory.available"
NODEFS_AVAILABLE = "nodefs.available"
NODEFS_INODES_FREE = "nodefs.inodesFree"
IMAGEFS_AVAILABLE = "imagefs.available"
IMAGEFS_INODES_FREE = "imagefs.inodesFree"
CONTAINERFS_AVAILABLE = "containerfs.available"
CONTAINERFS_INODES_FREE = "containerfs.inodesFree"
PID_AVAILABLE = "pid.available"

# every signal upstream accepts, with the resource it starves (named in eviction messages)
SIGNAL_RESOURCE = {
    MEMORY_AVAILABLE: "memory", ALLOCATABLE_MEMORY_AVAILABLE: "memory",
    NODEFS_AVAILABLE: "ephemeral-storage", IMAGEFS_AVAILABLE: "ephemeral-storage",
    CONTAINERFS_AVAILABLE: "ephemeral-storage",
    NODEFS_INODES_FREE: "inodes", IMAGEFS_INODES_FREE: "inodes", CONTAINERFS_INODES_FREE: "inodes",
    PID_AVAILABLE: "pids",
}
SIGNALS = tuple(SIGNAL_RESOURCE)

MEMORY_PRESSURE, DISK_PRESSURE, PID_PRESSURE = "MemoryPressure", "DiskPressure", "PIDPressure"
SIGNAL_CONDITION = {s: (MEMORY_PRESSURE if r == "memory" else PID_PRESSURE if r == "pids" else DISK_PRESSURE)
                    for s, r in SIGNAL_RESOURCE.items()}

# upstream's defaults (DefaultEvictionHard on Linux)
DEFAULT_EVICTION_HARD = ("memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,"
                         "imagefs.available<15%,imagefs.inodesFree<5%")


def binary_si(n: int) -> str:
    """An integer as upstream's resource.Quantity prints it in BinarySI (the largest
    binary suffix that divides it exactly, the plain number otherwise)."""
    for suffix, mult in (("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20),
                         ("Ki", 1 << 10)):
        if n and n % mult == 0:
            return f"{n // mult}{suffix}"
    return str(n)


@dataclass(frozen=True)
class Value:
    """A threshold's (or a minimum reclaim's) amount: a quantity, or a fraction of capacity."""
    quantity: Optional[int] = None
    percentage: Optional[Decimal] = None

    def resolve(self, capacity: int) -> int:
        if self.quantity is not None:
            return self.quantity
        return int(capacity * (self.percentage or 0))

    def __str__(self) -> str:
        if self.percentage is not None:
            return f"{self.percentage * 100:f}".rstrip("0").rstrip(".") + "%"
        return binary_si(self.quantity or 0)


@dataclass(frozen=True)
class Threshold:
    """`signal < value`; soft when `grace_period` (seconds) is set; `min_reclaim` is how far
    past the threshold the signal must recover before the threshold counts as resolved."""
    signal: str
    quantity: Optional[int] = None
    percentage: Optional[Decimal] = None
    grace_period: float = 0.0
    min_reclaim: Optional[Value] = None

    @property
    def hard(self) -> bool:
        return self.grace_period == 0

    def value(self, capacity: int) -> int:
        """The threshold in bytes (inodes, PIDs) for a resource of this capacity."""
        return Value(self.quantity, self.percentage).resolve(capacity)

    def __str__(self) -> str:
        return f"{self.signal}<{Value(self.quantity, self.percentage)}"


def parse_langle_map(text: str) -> dict[str, str]:
    """`k<v,k<v` as upstream's LangleSeparatedMapStringString (a later key wins)."""
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part:
            continue
        if "<" not in part:
            raise ValueError("malformed pair, expect string<string")
        k, v = part.split("<", 1)
        out[k.strip()] = v.strip()
    return out


def parse_equals_map(text: str) -> dict[str, str]:
    """`k=v,k=v` as upstream's MapStringString."""
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part:
            continue
        if "=" not in part:
            raise ValueError("malformed pair, expect string=string")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _percentage(signal: str, val: str) -> Decimal:
    try:
        return Decimal(val[:-1]) / 100
    except InvalidOperation:
        raise ValueError(f'strconv.ParseFloat: parsing "{val[:-1]}": invalid syntax') from None


def _quantity(val: str) -> Decimal:
    try:
        return parse_quantity(val)
    except ValueError:
        raise ValueError("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'") from None


def _check_signal(signal: str) -> None:
    if signal not in SIGNAL_RESOURCE:
        raise ValueError(f"unsupported eviction signal {signal}")


def parse_threshold_statement(signal: str, val: str) -> Optional[Threshold]:
    """One `signal<val` statement; None for the ignored 0% and 100%."""
    _check_signal(signal)
    if val.endswith("%"):
        if val in ("0%", "100%"):
            return None
        pct = _percentage(signal, val)
        if pct < 0:
            raise ValueError(f"eviction percentage threshold {signal} must be >= 0%: {val}")
        if pct > 1:
            raise ValueError(f"eviction percentage threshold {signal} must be <= 100%: {val}")
        return Threshold(signal, percentage=pct)
    q = _quantity(val)
    if q <= 0:
        raise ValueError(f"eviction threshold {signal} must be positive: {val}")
    return Threshold(signal, quantity=int(q))


def parse_thresholds(text: str) -> list[Threshold]:
    """Hard thresholds from `--eviction-hard` syntax (`signal<value,...`)."""
    out = []
    for signal, val in parse_langle_map(text).items():
        t = parse_threshold_statement(signal, val)
        if t is not None:
            out.append(t)
    return out


def parse_grace_periods(text: str) -> dict[str, float]:
    """`--eviction-soft-grace-period`: seconds per signal."""
    from kybernetes.client.leaderelection import parse_duration

    out: dict[str, float] = {}
    for signal, val in parse_equals_map(text).items():
        _check_signal(signal)
        neg = val.startswith("-")
        try:
            secs = parse_duration(val.lstrip("-"))
        except ValueError:
            raise ValueError(f'time: invalid duration "{val}"') from None
        if neg and secs:
            raise ValueError(f"invalid eviction grace period specified: {val}, must be a positive value")
        out[signal] = secs
    return out


def parse_minimum_reclaims(text: str) -> dict[str, Value]:
    """`--eviction-minimum-reclaim`: a quantity or a percentage per signal."""
    out: dict[str, Value] = {}
    for signal, val in parse_equals_map(text).items():
        _check_signal(signal)
        if val.endswith("%"):
            pct = _percentage(signal, val)
            if pct <= 0:
                raise ValueError(f"eviction percentage minimum reclaim {signal} must be positive: {val}")
            out[signal] = Value(percentage=pct)
            continue
        q = _quantity(val)
        if q < 0:
            raise ValueError(f"negative eviction minimum reclaim specified for {signal}")
        out[signal] = Value(quantity=int(q))
    return out


def parse_threshold_config(hard: str = DEFAULT_EVICTION_HARD, soft: str = "", soft_grace_period: str = "",
                           minimum_reclaim: str = "") -> list[Threshold]:
    """All thresholds, hard then soft, each soft one with its grace period and any with
    its minimum reclaim.  ValueError with upstream's message when a flag is wrong."""
    hard_ts = parse_thresholds(hard)
    soft_ts = parse_thresholds(soft)
    periods = parse_grace_periods(soft_grace_period)
    reclaims = parse_minimum_reclaims(minimum_reclaim)
    out = list(hard_ts)
    for t in soft_ts:
        if t.signal not in periods:
            raise ValueError(f"grace period must be specified for the soft eviction threshold {t.signal}")
        out.append(Threshold(t.signal, t.quantity, t.percentage, grace_period=periods[t.signal]))
    return [Threshold(t.signal, t.quantity, t.percentage, t.grace_period, reclaims.get(t.signal)) for t in out]
