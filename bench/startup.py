"""Start-up benchmark: time from `kyb server` exec to `/readyz` = ok (cold: new data dir,
which generates the PKI; warm: restart on the same dir) and idle RSS, next to the bare
interpreter start (`python -c 'import aiohttp'`) measured in the same run.

    .venv/bin/python bench/startup.py [--runs 5]

Prints a table and writes bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from fixtures.server import free_port, start_server  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_start(data_dir: Path) -> tuple[float, float]:
    t = time.perf_counter()
    srv = start_server(data_dir, port=free_port())
    elapsed = time.perf_counter() - t
    rss = rss_mib(srv.proc.pid)
    srv.stop()
    return elapsed, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    bare = []
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import aiohttp"], check=True)
        bare.append(time.perf_counter() - t)
    cold, warm, rss = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="kyb-start-") as tmp:
            c, r = timed_start(Path(tmp))
            w, r2 = timed_start(Path(tmp))
            cold.append(c)
            warm.append(w)
            rss += [r, r2]
    res = {
        "runs": args.runs,
        "bare_python_aiohttp_s": statistics.median(bare),
        "cold_start_s": statistics.median(cold),
        "warm_start_s": statistics.median(warm),
        "idle_rss_mib": statistics.median(rss),
    }
    res["warm_start_ratio_vs_bare"] = res["warm_start_s"] / res["bare_python_aiohttp_s"]
    print("| measure | median |")
    print("|---|---|")
    print(f"| bare `python -c 'import aiohttp'` | {res['bare_python_aiohttp_s'] * 1e3:.0f} ms |")
    print(f"| `kyb server` cold start to /readyz (new data dir, PKI generated) | {res['cold_start_s'] * 1e3:.0f} ms |")
    print(f"| `kyb server` warm start to /readyz | {res['warm_start_s'] * 1e3:.0f} ms |")
    print(f"| **warm start / bare interpreter** | **{res['warm_start_ratio_vs_bare']:.1f}** |")
    print(f"| idle server RSS | {res['idle_rss_mib']:.0f} MiB |")
    out = HERE / "results" / "startup.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
