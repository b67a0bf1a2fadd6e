"""The load driver the benchmarks share: `n` operations spread over `concurrency`
workers, each operation timed as its caller sees it, and percentiles of the result.

Imported by the scripts in bench/ as the top-level module `_load` (a script's own
directory is first on sys.path).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Awaitable, Callable


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; 0.0 when there are none."""
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def run_pool(n: int, concurrency: int, op: Callable[[int], Awaitable[object]]) -> tuple[float, list[float]]:
    """Await op(i) for i in range(n) on `concurrency` workers: (elapsed seconds,
    per-operation latencies in seconds, in completion order)."""
    lat: list[float] = []
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            t = time.perf_counter()
            await op(i)
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return time.perf_counter() - t0, lat


async def drive(op: Callable[[int], Awaitable[object]], n: int, concurrency: int) -> dict:
    """run_pool summarised: {"n", "concurrency", "elapsed_s", "ops_per_s", "p50_ms", "p99_ms"}."""
    elapsed, lat = await run_pool(n, concurrency, op)
    return {"n": n, "concurrency": concurrency, "elapsed_s": elapsed,
            "ops_per_s": n / elapsed if elapsed else 0.0,
            "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_result(out: Path, result: dict) -> None:
    """Write a benchmark's result as JSON to `out` (whole or not at all) and say so."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    print(f"\nwrote {out}")
