"""etcd benchmark: raw etcd puts (etcd3aio, the client library EtcdStore builds on)
next to EtcdStore.create (a create-if-absent txn, through the Store interface),
on a 1-member and a 3-member loopback cluster, sequential and concurrent; with
SQLiteStore creates on the same machine for comparison.

    .venv/bin/python bench/etcd_raw.py [--objects 3000] [--concurrency 64] [--sizes 1,3]

Starts its own etcd members (Debian's etcd-server, /usr/bin/etcd) on free
127.0.0.1 ports with data in a temporary directory, and stops them by PID.
Prints a table and writes bench/results/etcd_raw.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (not named etcd.py: etcd3aio's generated API modules are the top-level package `etcd`)
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from _load import drive, write_result  # noqa: E402
from fixtures.etcd import EtcdCluster, etcd_binary  # noqa: E402

from kybernetes.storage import SQLiteStore  # noqa: E402
from kybernetes.storage.etcd import EtcdStore  # noqa: E402

VALUE = (b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"default",'
         b'"uid":"6f1c1b9e-3f57-4c39-9a0e-000000000000"},"data":{"k":"v"}}')


async def raw_puts(endpoints: list[str], prefix: str, n: int, concurrency: int, value: bytes = VALUE) -> dict:
    from etcd3aio import Etcd3Client

    """`n` raw puts of `value` under `prefix` straight through etcd3aio (after one warm-up put)."""
    client = Etcd3Client(endpoints)
    await client.connect()
    try:
        kv = client.kv
        await kv.put(prefix + "warmup", value)
        return await drive(lambda i: kv.put(f"{prefix}{i:07d}", value), n, concurrency)
    finally:
        await client.close()


async def _store_creates(endpoints: list[str], prefix: str, n: int, concurrency: int) -> dict:
    store = EtcdStore(endpoints, compact_interval=0)
    await store.start()
    try:
        await store.create(prefix + "warmup", VALUE)
        return await drive(lambda i: store.create(f"{prefix}{i:07d}", VALUE), n, concurrency)
    finally:
        await store.close()


async def _sqlite_creates(path: str, n: int, concurrency: int) -> dict:
    store = SQLiteStore(path, compact_interval=0)
    await store.start()
    try:
        return await drive(lambda i: store.create(f"/registry/configmaps/default/cm-{i:07d}", VALUE), n, concurrency)
    finally:
        await store.close()


async def run(objects: int, concurrency: int, sizes: list[int]) -> dict:
    result: dict = {"objects": objects, "concurrency": concurrency, "clusters": {}}
    with tempfile.TemporaryDirectory(prefix="kyb-etcd-bench-") as tmp:
        for size in sizes:
            cl = EtcdCluster(Path(tmp) / f"etcd{size}", size=size)
            await asyncio.to_thread(cl.start)
            try:
                eps = cl.endpoints
                r: dict = {"members": size, "etcd_version": ""}
                st = EtcdStore(eps, compact_interval=0)
                await st.start()
                r["etcd_version"] = st.server_version
                await st.close()
                for label, c in (("sequential", 1), ("concurrent", concurrency)):
                    # raw and store alternate on distinct key ranges of the same cluster
                    raw = await raw_puts(eps, f"/bench/raw/{label}/", objects, c)
                    store = await _store_creates(eps, f"/registry/configmaps/{label}/cm-", objects, c)
                    r[label] = {
                        "raw_put": raw,
                        "store_create": store,
                        "store_over_raw_throughput": store["ops_per_s"] / raw["ops_per_s"] if raw["ops_per_s"] else 0.0,
                    }
                result["clusters"][str(size)] = r
            finally:
                await asyncio.to_thread(cl.kill)
        result["sqlite"] = {
            "sequential": await _sqlite_creates(os.path.join(tmp, "seq.db"), objects, 1),
            "concurrent": await _sqlite_creates(os.path.join(tmp, "conc.db"), objects, concurrency),
        }
    return result


def table(r: dict) -> str:
    out = [f"{r['objects']} writes per row, concurrency 1 and {r['concurrency']}; loopback etcd, fsync on", ""]
    out.append("| datastore | writers | operation | throughput | p50 ms | p99 ms | store/raw |")
    out.append("|---|---|---|---|---|---|---|")
    for size, c in r["clusters"].items():
        name = f"etcd {c['etcd_version']}, {size} member{'s' if size != '1' else ''}"
        for label in ("sequential", "concurrent"):
            row = c[label]
            raw, st = row["raw_put"], row["store_create"]
            out.append(f"| {name} | {raw['concurrency']} | raw put (etcd3aio) | {raw['ops_per_s']:.0f}/s"
                       f" | {raw['p50_ms']:.2f} | {raw['p99_ms']:.2f} | |")
            out.append(f"| {name} | {st['concurrency']} | EtcdStore.create (txn) | {st['ops_per_s']:.0f}/s"
                       f" | {st['p50_ms']:.2f} | {st['p99_ms']:.2f} | {row['store_over_raw_throughput']:.2f} |")
    for label in ("sequential", "concurrent"):
        s = r["sqlite"][label]
        out.append(f"| SQLite, synchronous=FULL | {s['concurrency']} | SQLiteStore.create | {s['ops_per_s']:.0f}/s"
                   f" | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--sizes", default="1,3", help="cluster sizes to measure, comma-separated")
    args = ap.parse_args()
    if etcd_binary() is None:
        sys.exit("bench/etcd_raw.py: no etcd binary (install Debian's etcd-server: make deps)")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    r = asyncio.run(run(args.objects, args.concurrency, sizes))
    print(table(r))
    write_result(HERE / "results" / "etcd_raw.json", r)


if __name__ == "__main__":
    main()
