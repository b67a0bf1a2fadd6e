"""`/spec/`: the machine description upstream's kubelet takes from cAdvisor (MachineInfo),
with the fields this node can tell from /proc: cores, sockets, CPU frequency, memory
and swap, machine, system and boot ids."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kybernetes.kubelet.node_status import _boot_id, machine_id


def _cpuinfo(text: str) -> tuple[int, int, int, str]:
    """(physical cores, sockets, max MHz * 1000, vendor) from /proc/cpuinfo."""
    cores, sockets, khz, vendor = set(), set(), 0, ""
    phys = core = ""
    for line in text.splitlines() + [""]:
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "physical id":
            phys = value
        elif key == "core id":
            core = value
        elif key == "cpu MHz":
            khz = max(khz, int(float(value) * 1000))
        elif key == "vendor_id" and not vendor:
            vendor = value
        elif not line.strip():  # the end of one processor's block
            if phys or core:
                cores.add((phys, core))
                sockets.add(phys)
            phys = core = ""
    return len(cores), len(sockets), khz, vendor


def _meminfo(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info() -> dict[str, Any]:
    """MachineInfo in cAdvisor's JSON field names (blocking: run it off the loop)."""
    ncpu = os.cpu_count() or 1
    phys, sockets, khz, vendor = _cpuinfo(_read("/proc/cpuinfo"))
    mem = _meminfo(_read("/proc/meminfo"))
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    uuid = _read("/sys/class/dmi/id/product_uuid").strip() or machine_id()
    return {
        "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "vendor_id": vendor,
        "num_cores": ncpu,
        "num_physical_cores": phys or ncpu,
        "num_sockets": sockets or 1,
        "cpu_frequency_khz": int(max_khz) if max_khz.isdigit() else khz,
        "memory_capacity": mem.get("MemTotal", 0),
        "swap_capacity": mem.get("SwapTotal", 0),
        "machine_id": machine_id(),
        "system_uuid": uuid,
        "boot_id": _boot_id(),
        "cloud_provider": "Unknown",
        "instance_type": "Unknown",
        "instance_id": "None",
    }
