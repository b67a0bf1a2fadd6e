"""API on etcd benchmark: ConfigMap creates through a real `kyb server` on a 1-member and
a 3-member loopback etcd cluster, next to raw etcd puts from the same client library
(etcd3aio over grpc.aio, what EtcdStore builds on) on the same cluster in the same run,
and the same API benchmark on the default SQLite datastore.

    .venv/bin/python bench/etcd_api.py [--objects 2000] [--concurrency 32] [--sizes 1,3]

The servers run API only (--disable-controllers --disable-scheduler) so that nothing
but the benchmark writes.  Starts its own etcd members (Debian's etcd-server) and
servers on free 127.0.0.1 ports with data in a temporary directory, and stops them by
PID.  Prints a table and writes bench/results/etcd_api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

import aiohttp  # noqa: E402
import orjson  # noqa: E402

from _load import drive, write_result  # noqa: E402
from etcd_raw import raw_puts  # noqa: E402
from fixtures.etcd import EtcdCluster, etcd_binary  # noqa: E402
from fixtures.server import RunningServer, start_server  # noqa: E402

VALUE = (b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"default",'
         b'"uid":"6f1c1b9e-3f57-4c39-9a0e-000000000000"},"data":{"k":"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"}}')
API_ONLY = ("--disable-controllers", "--disable-scheduler")


async def api_creates(srv: RunningServer, namespace: str, n: int, concurrency: int) -> dict:
    conn = aiohttp.TCPConnector(ssl=srv.ssl_context(), limit=concurrency * 2)
    async with aiohttp.ClientSession(srv.url, connector=conn) as http:
        async with http.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}) as r:
            if r.status != 201:
                raise RuntimeError(f"namespace {namespace}: {r.status} {await r.text()}")
        base = f"/api/v1/namespaces/{namespace}/configmaps"
        headers = {"Content-Type": "application/json"}

        async def create(i: int) -> None:
            body = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:06d}"},
                                 "data": {"k": "v" * 32}})
            async with http.post(base, data=body, headers=headers) as r:
                if r.status != 201:
                    raise RuntimeError(f"create cm-{i:06d}: {r.status} {await r.text()}")
                await r.read()

        await create(n)  # warm-up (connection, caches)
        return await drive(create, n, concurrency)


def _modes(concurrency: int) -> tuple[tuple[str, int], ...]:
    return (("sequential", 1), ("concurrent", concurrency))


async def run(objects: int, concurrency: int, sizes: list[int]) -> dict:
    result: dict = {"objects": objects, "concurrency": concurrency, "etcd": {}, "sqlite": {}}
    with tempfile.TemporaryDirectory(prefix="kyb-etcd-api-bench-") as tmp:
        base = Path(tmp)
        for size in sizes:
            cl = EtcdCluster(base / f"etcd{size}", size=size)
            await asyncio.to_thread(cl.start)
            srv = None
            try:
                srv = await asyncio.to_thread(start_server, base / f"srv{size}",
                                              extra=("--datastore-endpoint", cl.url, "--token", "bench", *API_ONLY),
                                              timeout=120)
                r: dict = {"members": size, "etcd_version": cl.members[0].status().get("version", "")}
                for label, c in _modes(concurrency):
                    raw = await raw_puts(cl.endpoints, f"/bench/raw/{label}/", objects, c, VALUE)
                    api = await api_creates(srv, f"bench-{label}", objects, c)
                    r[label] = {"raw_put": raw, "api_create": api,
                                "api_over_raw_throughput": api["ops_per_s"] / raw["ops_per_s"]
                                if raw["ops_per_s"] else 0.0}
                result["etcd"][str(size)] = r
            finally:
                if srv is not None:
                    await asyncio.to_thread(srv.stop)
                await asyncio.to_thread(cl.kill)
        srv = await asyncio.to_thread(start_server, base / "sqlite", extra=API_ONLY, timeout=120)
        try:
            for label, c in _modes(concurrency):
                result["sqlite"][label] = {"api_create": await api_creates(srv, f"bench-{label}", objects, c)}
        finally:
            await asyncio.to_thread(srv.stop)
    return result


def table(r: dict) -> str:
    out = [f"{r['objects']} ConfigMap creates per row through `kyb server` (API only), HTTPS on loopback; "
           f"raw etcd puts from the same client library on the same cluster in the same run", ""]
    out.append("| datastore | clients | raw etcd put | API create | API p50 ms | API p99 ms | raw p99 ms | API/raw |")
    out.append("|---|---|---|---|---|---|---|---|")
    for size, c in r["etcd"].items():
        name = f"etcd {c['etcd_version']}, {size} member{'s' if size != '1' else ''}"
        for label in ("sequential", "concurrent"):
            row = c[label]
            raw, api = row["raw_put"], row["api_create"]
            out.append(f"| {name} | {api['concurrency']} | {raw['ops_per_s']:.0f}/s | {api['ops_per_s']:.0f}/s"
                       f" | {api['p50_ms']:.1f} | {api['p99_ms']:.1f} | {raw['p99_ms']:.1f}"
                       f" | {row['api_over_raw_throughput']:.2f} |")
    for label in ("sequential", "concurrent"):
        api = r["sqlite"][label]["api_create"]
        out.append(f"| SQLite (default) | {api['concurrency']} | | {api['ops_per_s']:.0f}/s"
                   f" | {api['p50_ms']:.1f} | {api['p99_ms']:.1f} | | |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--sizes", default="1,3", help="etcd cluster sizes, comma-separated")
    args = ap.parse_args()
    if etcd_binary() is None:
        sys.exit("bench/etcd_api.py: no etcd binary (install Debian's etcd-server: make deps)")
    r = asyncio.run(run(args.objects, args.concurrency, [int(s) for s in args.sizes.split(",") if s]))
    print(table(r))
    write_result(HERE / "results" / "etcd_api.json", r)


if __name__ == "__main__":
    main()
