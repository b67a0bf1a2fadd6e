"""Raw datastore benchmark: SQLiteStore create throughput, plus list and watch-cache costs.

    .venv/bin/python bench/store.py [--objects 10000] [--concurrency 32] [--dir DIR]

Prints a table and writes bench/results/store.json.  `raw_create_throughput` is
the baseline other benchmarks (bench/api.py) import.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _load import pct, run_pool, write_result  # noqa: E402
from kybernetes.storage import SQLiteStore, WatchCache  # noqa: E402

VALUE = b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"default"},"data":{"k":"v"}}'


async def raw_create_throughput(path: str, n: int, concurrency: int, *, value: bytes = VALUE) -> dict:
    """Create `n` keys with `concurrency` concurrent writers on a fresh SQLiteStore at `path`.

    Returns {"n", "concurrency", "elapsed_s", "ops_per_s", "p50_ms", "p99_ms",
    "commits", "ops_per_commit"} — latencies are per create, as a caller sees them."""
    store = SQLiteStore(path, compact_interval=0)
    await store.start()
    try:
        before = dict(store.stats)
        elapsed, lat = await run_pool(n, concurrency,
                                      lambda i: store.create(f"/registry/configmaps/default/cm-{i:07d}", value))
        commits = store.stats["commits"] - before["commits"]
    finally:
        await store.close()
    return {
        "n": n,
        "concurrency": concurrency,
        "elapsed_s": round(elapsed, 4),
        "ops_per_s": n / elapsed if elapsed > 0 else 0.0,
        "p50_ms": pct(lat, 50) * 1000,
        "p99_ms": pct(lat, 99) * 1000,
        "commits": commits,
        "ops_per_commit": n / commits if commits else 0.0,
    }


async def read_costs(path: str, n: int) -> dict:
    """On a store holding `n` keys (from raw_create_throughput): list, paged list, get, cache fill."""
    store = SQLiteStore(path, compact_interval=0)
    await store.start()
    try:
        prefix = "/registry/configmaps/"
        t0 = time.perf_counter()
        res = await store.list(prefix)
        full_list = time.perf_counter() - t0
        assert len(res.items) == n, (len(res.items), n)

        t0 = time.perf_counter()
        after: Optional[str] = None
        pages = 0
        while True:
            page = await store.list(prefix, revision=res.revision, limit=500, start_after=after)
            pages += 1
            if not page.more:
                break
            after = page.items[-1].key
        paged = time.perf_counter() - t0

        t0 = time.perf_counter()
        gets = min(n, 2000)
        await asyncio.gather(*(store.get(f"{prefix}default/cm-{i:07d}") for i in range(gets)))
        get_s = time.perf_counter() - t0

        cache = WatchCache(store, prefix)
        t0 = time.perf_counter()
        await cache.start()
        fill = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(100):
            cache.list(limit=500)
        cache_page = (time.perf_counter() - t0) / 100
        # write -> visible in the cache (the API server's read-your-writes wait)
        lat = []
        for i in range(200):
            t = time.perf_counter()
            kv = await store.create(f"{prefix}bench/sync-{i}", VALUE)
            await cache.wait_for(kv.mod_revision)
            lat.append(time.perf_counter() - t)
        await cache.stop()
    finally:
        await store.close()
    lat.sort()
    return {
        "full_list_ms": full_list * 1000,
        "paged_list_500_total_ms": paged * 1000,
        "pages": pages,
        "get_per_s": gets / get_s,
        "cache_fill_ms": fill * 1000,
        "cache_page_500_ms": cache_page * 1000,
        "create_then_cache_sync_p50_ms": pct(lat, 50) * 1000,
        "create_then_cache_sync_p99_ms": pct(lat, 99) * 1000,
    }


async def run(objects: int, concurrency: int, directory: Optional[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="kyb-store-bench-", dir=directory) as tmp:
        seq = await raw_create_throughput(os.path.join(tmp, "seq.db"), objects, 1)
        conc = await raw_create_throughput(os.path.join(tmp, "conc.db"), objects, concurrency)
        reads = await read_costs(os.path.join(tmp, "conc.db"), objects)
    return {"objects": objects, "sequential": seq, "concurrent": conc, "reads": reads}


def table(r: dict) -> str:
    s, c, rd = r["sequential"], r["concurrent"], r["reads"]
    rows = [
        ("create, 1 writer", f"{s['ops_per_s']:.0f}/s", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}", f"{s['ops_per_commit']:.1f}"),
        (
            f"create, {c['concurrency']} writers",
            f"{c['ops_per_s']:.0f}/s",
            f"{c['p50_ms']:.2f}",
            f"{c['p99_ms']:.2f}",
            f"{c['ops_per_commit']:.1f}",
        ),
    ]
    out = [f"SQLiteStore, {r['objects']} objects, synchronous=FULL", ""]
    out.append("| operation | throughput | p50 ms | p99 ms | ops/commit |")
    out.append("|---|---|---|---|---|")
    out += [f"| {' | '.join(row)} |" for row in rows]
    out.append("")
    out.append("| read | value |")
    out.append("|---|---|")
    out.append(f"| list all ({r['objects']}) | {rd['full_list_ms']:.1f} ms |")
    out.append(f"| paged list, {rd['pages']} pages of 500 at one revision | {rd['paged_list_500_total_ms']:.1f} ms total |")
    out.append(f"| concurrent get | {rd['get_per_s']:.0f}/s |")
    out.append(f"| watch cache fill | {rd['cache_fill_ms']:.1f} ms |")
    out.append(f"| watch cache page of 500 | {rd['cache_page_500_ms']:.3f} ms |")
    out.append(
        f"| create + cache.wait_for | p50 {rd['create_then_cache_sync_p50_ms']:.2f} ms,"
        f" p99 {rd['create_then_cache_sync_p99_ms']:.2f} ms |"
    )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--dir", default=None, help="where the temporary databases go (default: system temp)")
    args = ap.parse_args()
    r = asyncio.run(run(args.objects, args.concurrency, args.dir))
    print(table(r))
    write_result(HERE / "results" / "store.json", r)


if __name__ == "__main__":
    main()
