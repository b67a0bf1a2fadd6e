"""Scheduler benchmark on simulated nodes.

1. raw bindings: pods bound by the benchmark itself with POST pods/binding (64 in
   flight), against a server run with --disable-scheduler: the API's ceiling.
2. scheduler throughput: pods created first (nobody schedules them), then a Scheduler is
   started in this process (a separate process from the API server, as kube-scheduler is)
   and the clock runs from its start until every pod is bound.  Once for plain pods, once
   for a mix of plain, node-affinity, pod anti-affinity and topology-spread pods.
   Latency is per pod, from its first scheduling attempt to its binding being accepted.
3. a Deployment of 1,000 replicas from create to all pods Running, through a full
   `kyb server` (controller manager and its in-process scheduler) with the simulated
   nodes playing the kubelet.

    .venv/bin/python bench/scheduler.py [--nodes 1000] [--plain 3000] [--mixed 10000] [--replicas 1000]

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

from kybernetes.client import AlreadyExists, Client, Informer  # noqa: E402
from kybernetes.scheduler.scheduler import Scheduler  # noqa: E402
from kybernetes.scheduler.simnodes import ZONE_LABEL, SimNodes  # noqa: E402

NS = "default"
ZONES = 3
NODE = dict(cpu="64", memory="256Gi", pods="500", zones=ZONES)


def _base(name: str, labels: dict | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                     **spec}}


def plain_pod(i: int) -> dict:
    return _base(f"p-{i:05d}")


def mixed_pod(i: int) -> dict:
    """A quarter each: plain, node affinity, required anti-affinity (groups of 50 on
    distinct nodes), zone spread (groups of 100, maxSkew 1)."""
    kind = i % 4
    if kind == 0:
        return _base(f"m-{i:05d}")
    if kind == 1:
        return _base(f"m-{i:05d}", affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": ZONE_LABEL, "operator": "In", "values": ["zone-0", "zone-1"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {"matchExpressions": [
                {"key": ZONE_LABEL, "operator": "In", "values": ["zone-1"]}]}}]}})
    if kind == 2:
        app = f"anti-{(i // 4) % 50}"
        return _base(f"m-{i:05d}", {"app": app}, affinity={"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}]}})
    app = f"spread-{(i // 4) % 25}"
    return _base(f"m-{i:05d}", {"app": app}, topologySpreadConstraints=[
        {"maxSkew": 1, "topologyKey": ZONE_LABEL, "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": app}}}])


async def ensure_default_sa(client: Client) -> None:
    """With the controller manager off nobody creates `default/default`, and pod
    admission would wait for it on every create."""
    try:
        await client.resource("", "v1", "serviceaccounts").create({"metadata": {"name": "default"}}, namespace=NS)
    except AlreadyExists:
        pass


async def create_pods(client: Client, pods: list[dict], conc: int = 64) -> float:
    await ensure_default_sa(client)
    h = client.resource("", "v1", "pods")
    sem = asyncio.Semaphore(conc)

    async def one(p: dict) -> None:
        async with sem:
            await h.create(p)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(p) for p in pods))
    return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def raw_binding_rate(kc: Path, nodes: int, n: int, conc: int = 64) -> dict:
    async with Client.from_kubeconfig(kc) as client:
        sim = SimNodes(client, nodes, prefix="bench-", **NODE)
        await sim.register()
        await create_pods(client, [plain_pod(i) for i in range(n)])
        sem = asyncio.Semaphore(conc)

        async def bind(i: int) -> None:
            async with sem:
                name = f"p-{i:05d}"
                await client.request("POST", f"/api/v1/namespaces/{NS}/pods/{name}/binding",
                                     {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                      "target": {"kind": "Node", "name": sim.names[i % nodes]}})

        t0 = time.perf_counter()
        await asyncio.gather(*(bind(i) for i in range(n)))
        elapsed = time.perf_counter() - t0
        await sim.stop()
        return {"pods": n, "nodes": nodes, "bind_s": round(elapsed, 3), "bindings_per_s": round(n / elapsed, 1)}


def check_mixed(bound: dict[str, dict]) -> dict:
    """Rule violations in the mixed placement (all must be 0)."""
    anti: dict[str, list[str]] = {}
    spread: dict[str, dict[str, int]] = {}
    zone_of: dict[str, str] = {}
    affinity_bad = 0
    for p in bound.values():
        node, app = p["spec"]["nodeName"], (p["metadata"].get("labels") or {}).get("app", "")
        z = zone_of.setdefault(node, f"zone-{int(node.rsplit('-', 1)[1]) % ZONES}")
        if app.startswith("anti-"):
            anti.setdefault(app, []).append(node)
        elif app.startswith("spread-"):
            spread.setdefault(app, {f"zone-{k}": 0 for k in range(ZONES)})[z] += 1
        elif p["spec"].get("affinity") and z not in ("zone-0", "zone-1"):
            affinity_bad += 1
    return {"anti_affinity_shared_nodes": sum(len(v) - len(set(v)) for v in anti.values()),
            "spread_skew_over_1": sum(1 for v in spread.values() if max(v.values()) - min(v.values()) > 1),
            "node_affinity_outside": affinity_bad}


async def scheduler_rate(kc: Path, nodes: int, pods: list[dict], label: str) -> dict:
    async with Client.from_kubeconfig(kc) as client, Client.from_kubeconfig(kc) as sched_client:
        sim = SimNodes(client, nodes, prefix="bench-", **NODE)
        await sim.register()  # no lease renewals: the server runs no node lifecycle controller here
        t_create = await create_pods(client, pods)
        inf = Informer(client.resource("", "v1", "pods"), namespace=NS)
        done = asyncio.Event()
        bound: dict[str, dict] = {}
        want = {p["metadata"]["name"] for p in pods}

        def seen(*objs):
            p = objs[-1]
            if p["spec"].get("nodeName") and p["metadata"]["name"] in want:
                bound[p["metadata"]["name"]] = p
                if len(bound) >= len(want):
                    done.set()

        inf.add_handlers(on_add=seen, on_update=seen)
        inf.start()
        await inf.wait_synced(60)
        sched = Scheduler(sched_client, record_scheduled_events=False)
        t0 = time.perf_counter()
        await sched.start()
        await asyncio.wait_for(done.wait(), timeout=600)
        elapsed = time.perf_counter() - t0
        lat = sched.latencies
        out = {"workload": label, "pods": len(pods), "nodes": nodes, "create_s": round(t_create, 2),
               "all_bound_s": round(elapsed, 2), "pods_per_s": round(len(pods) / elapsed, 1),
               "attempts": sched.attempts, "latency_p50_ms": round(pct(lat, 0.50) * 1000, 1),
               "latency_p99_ms": round(pct(lat, 0.99) * 1000, 1)}
        if label == "mixed":
            out["violations"] = check_mixed(bound)
        await sched.stop()
        await inf.stop()
        await sim.stop()
        return out


async def deployment_rollout(kc: Path, nodes: int, replicas: int) -> dict:
    async with Client.from_kubeconfig(kc) as client:
        sim = SimNodes(client, nodes, prefix="bench-", run_pods=True, **NODE)
        await sim.start()
        deps = client.resource("apps", "v1", "deployments")
        inf = Informer(client.resource("", "v1", "pods"), namespace=NS, label_selector="app=big")
        running: set[str] = set()
        created: set[str] = set()
        bound: set[str] = set()
        marks: dict[str, float] = {}
        done = asyncio.Event()

        def seen(*objs):
            p = objs[-1]
            name = p["metadata"]["name"]
            created.add(name)
            if len(created) >= replicas:
                marks.setdefault("all_created", time.perf_counter())
            if p["spec"].get("nodeName"):
                bound.add(name)
                if len(bound) >= replicas:
                    marks.setdefault("all_bound", time.perf_counter())
            if (p.get("status") or {}).get("phase") == "Running":
                running.add(p["metadata"]["name"])
                if len(running) >= replicas:
                    done.set()

        inf.add_handlers(on_add=seen, on_update=seen)
        inf.start()
        await inf.wait_synced(60)
        t0 = time.perf_counter()
        await deps.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "big", "namespace": NS},
                           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "big"}},
                                    "template": {"metadata": {"labels": {"app": "big"}},
                                                 "spec": {"containers": [{"name": "c", "image": "x", "resources": {
                                                     "requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}})
        await asyncio.wait_for(done.wait(), timeout=600)
        all_running = time.perf_counter() - t0

        async def ready() -> bool:
            d = await deps.get("big", namespace=NS)
            return (d.get("status") or {}).get("readyReplicas") == replicas

        while not await ready():  # the controller's status catches up from its informer
            if time.perf_counter() - t0 > 600:
                break
            await asyncio.sleep(0.2)
        status_ready = time.perf_counter() - t0
        await inf.stop()
        await sim.stop()
        return {"replicas": replicas, "nodes": nodes, "all_running_s": round(all_running, 2),
                **{f"{k}_s": round(v - t0, 2) for k, v in marks.items()},
                "status_ready_s": round(status_ready, 2), "pods_per_s": round(replicas / all_running, 1)}


def progress(results: dict) -> None:
    """Each phase's numbers as soon as they exist (a long run shows where it is)."""
    k = list(results)[-1]
    print(f"[{time.strftime('%H:%M:%S')}] {k}: {json.dumps(results[k])}", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--plain", type=int, default=3000)
    ap.add_argument("--mixed", type=int, default=10000)
    ap.add_argument("--replicas", type=int, default=1000)
    a = ap.parse_args()
    results: dict = {}
    try:
        with open("/proc/loadavg") as f:
            results["load_average_at_start"] = f.read().split()[0]
    except OSError:
        pass
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        only_api = ("--disable-scheduler", "--disable-controllers")
        srv = start_server(Path(d) / "raw", extra=only_api)
        try:
            results["raw_binding"] = asyncio.run(raw_binding_rate(srv.kubeconfig, a.nodes, a.plain))
        finally:
            srv.stop()
        progress(results)
        for label, pods in (("plain", [plain_pod(i) for i in range(a.plain)]),
                            ("mixed", [mixed_pod(i) for i in range(a.mixed)])):
            if not pods:
                continue
            srv = start_server(Path(d) / label, extra=only_api)
            try:
                results[f"scheduler_{label}"] = asyncio.run(scheduler_rate(srv.kubeconfig, a.nodes, pods, label))
            finally:
                srv.stop()
            progress(results)
        if a.replicas:
            srv = start_server(Path(d) / "deploy")
            try:
                results["deployment"] = asyncio.run(deployment_rollout(srv.kubeconfig, a.nodes, a.replicas))
            finally:
                srv.stop()
    results["total_runtime_s"] = round(time.perf_counter() - t_all, 1)
    raw = results["raw_binding"]
    print(f"{'measure':<52} {'pods':>6} {'nodes':>6} {'pods/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'raw binding POSTs (baseline, 64 in flight)':<52} {raw['pods']:>6} {raw['nodes']:>6} {raw['bindings_per_s']:>8}")
    for label in ("plain", "mixed"):
        r = results.get(f"scheduler_{label}")
        if r:
            print(f"{'scheduler, ' + label + ' pods (own process)':<52} {r['pods']:>6} {r['nodes']:>6} {r['pods_per_s']:>8}"
                  f" {r['latency_p50_ms']:>8} {r['latency_p99_ms']:>8}")
    dep = results.get("deployment")
    if dep:
        print(f"{'deployment create -> all Running (kyb server)':<52} {dep['replicas']:>6} {dep['nodes']:>6} {dep['pods_per_s']:>8}"
              f"   (all created {dep.get('all_created_s')} s, bound {dep.get('all_bound_s')} s, "
              f"Running {dep['all_running_s']} s, readyReplicas {dep['status_ready_s']} s)")
    if "scheduler_mixed" in results:
        print(f"mixed placement rule violations: {results['scheduler_mixed']['violations']}")
    print(f"total runtime {results['total_runtime_s']} s")
    out = HERE / "results" / "scheduler.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
