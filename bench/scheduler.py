"""Scheduler benchmark: pods scheduled per second by the scheduler inside `kyb server` onto
simulated nodes, next to the raw rate of binding POSTs (the same pods bound directly by
the benchmark against a server run with --disable-scheduler) measured in the same run.

    .venv/bin/python bench/scheduler.py [--nodes 100] [--pods 1000]

Prints a table and writes bench/results/scheduler.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from fixtures.server import start_server  # noqa: E402

from kybernetes.client import Client, Informer  # noqa: E402
from kybernetes.scheduler.simnodes import SimNodes  # noqa: E402


def pod(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"b-{i:05d}", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


async def create_pods(client: Client, n: int, conc: int = 32) -> None:
    pods = client.resource("", "v1", "pods")
    sem = asyncio.Semaphore(conc)

    async def one(i: int) -> None:
        async with sem:
            await pods.create(pod(i))

    await asyncio.gather(*(one(i) for i in range(n)))


async def scheduled_rate(kc: Path, nodes: int, n: int) -> dict:
    async with Client.from_kubeconfig(kc) as client:
        sim = SimNodes(client, nodes, prefix="bench-", cpu="64", memory="256Gi", pods="500")
        await sim.start()
        inf = Informer(client.resource("", "v1", "pods"))
        done = asyncio.Event()
        bound: set[str] = set()

        def seen(*objs):
            p = objs[-1]
            if p["spec"].get("nodeName"):
                bound.add(p["metadata"]["name"])
                if len(bound) >= n:
                    done.set()

        inf.add_handlers(on_add=seen, on_update=seen)
        inf.start()
        await inf.wait_synced(30)
        t0 = time.perf_counter()
        await create_pods(client, n)
        t_created = time.perf_counter() - t0
        await asyncio.wait_for(done.wait(), timeout=max(120, n / 5))
        elapsed = time.perf_counter() - t0
        await inf.stop()
        await sim.stop()
        return {"pods": n, "nodes": nodes, "create_s": round(t_created, 3), "all_bound_s": round(elapsed, 3),
                "pods_per_s": round(n / elapsed, 1)}


async def raw_binding_rate(kc: Path, nodes: int, n: int, conc: int = 64) -> dict:
    async with Client.from_kubeconfig(kc) as client:
        sim = SimNodes(client, nodes, prefix="bench-", cpu="64", memory="256Gi", pods="500")
        await sim.start()
        await create_pods(client, n)
        sem = asyncio.Semaphore(conc)

        async def bind(i: int) -> None:
            async with sem:
                name = f"b-{i:05d}"
                await client.request("POST", f"/api/v1/namespaces/default/pods/{name}/binding",
                                     {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                      "target": {"kind": "Node", "name": sim.names[i % nodes]}})

        t0 = time.perf_counter()
        await asyncio.gather(*(bind(i) for i in range(n)))
        elapsed = time.perf_counter() - t0
        await sim.stop()
        return {"pods": n, "nodes": nodes, "bind_s": round(elapsed, 3), "bindings_per_s": round(n / elapsed, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=1000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        srv = start_server(Path(d) / "raw", extra=("--disable-scheduler",))
        try:
            raw = asyncio.run(raw_binding_rate(srv.kubeconfig, a.nodes, a.pods))
        finally:
            srv.stop()
        srv = start_server(Path(d) / "sched")
        try:
            sched = asyncio.run(scheduled_rate(srv.kubeconfig, a.nodes, a.pods))
        finally:
            srv.stop()
    print(f"{'measure':<44} {'pods':>6} {'nodes':>6} {'pods/s':>9}")
    print(f"{'raw binding POSTs (baseline, 64 in flight)':<44} {raw['pods']:>6} {raw['nodes']:>6} {raw['bindings_per_s']:>9}")
    print(f"{'scheduler: create -> all bound':<44} {sched['pods']:>6} {sched['nodes']:>6} {sched['pods_per_s']:>9}")
    out = HERE / "results" / "scheduler.json"
    out.write_text(json.dumps({"raw_binding": raw, "scheduler": sched}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
