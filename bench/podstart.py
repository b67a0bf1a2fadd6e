"""Pod start through the whole stack: N pods created at once through the API on one node,
API create to Running, next to the raw CRI sequence (RunPodSandbox + CreateContainer +
StartContainer for N pods at once) measured against the same containerd in the same run.

    sudo .venv/bin/python bench/podstart.py [--pods 50] [--rounds 1] [--dir DIR]

A real `kyb server` (its own process, scheduler off: pods name spec.nodeName) and a
kubelet in its own process (so its RSS is its own) talk to containerd running in a
network namespace made for the run (bridge CNI, no uplink, no default route): no pod
packet leaves the machine.  Prints a table and writes bench/results/podstart.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from _load import write_result  # noqa: E402
from cri import BENCH_IMAGE, BenchNode, _summary, raw_pod_start  # noqa: E402
from kybernetes.client import Client, NotFound  # noqa: E402

NODE = "bench-node"
NS = "default"


def rss_mb(pid: int) -> float:
    """Resident set size of one process (VmRSS), in MiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def bench_pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS, "labels": {"bench": "podstart"}},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 5,
                     "automountServiceAccountToken": False, "enableServiceLinks": False,
                     "containers": [{"name": "main", "image": BENCH_IMAGE, "imagePullPolicy": "IfNotPresent",
                                     # a TERM trap, so deletion is not a grace-period wait
                                     "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}]}}


async def api_pod_start(client: Client, n: int, prefix: str, timeout: float = 300.0) -> dict:
    """Create `n` pods at once; per pod, the time from sending its create to the watch
    showing phase Running.  Then delete them and wait until they are gone."""
    pods = client.resource("", "v1", "pods", namespaced=True)
    lst = await pods.list(NS)
    rv = lst["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    running: dict[str, float] = {}
    done = asyncio.Event()

    async def watch() -> None:
        async with pods.watch(NS, resource_version=rv, label_selector="bench=podstart") as w:
            async for typ, obj in w:
                name = obj["metadata"]["name"]
                if (obj.get("status") or {}).get("phase") == "Running" and name not in running:
                    running[name] = time.perf_counter()
                    if len(running) == n:
                        done.set()
                        return

    wt = asyncio.ensure_future(watch())
    await asyncio.sleep(0.2)  # the watch is established before the first create

    async def create(i: int) -> None:
        name = f"{prefix}-{i}"
        sent[name] = time.perf_counter()
        await pods.create(bench_pod(name), NS)

    t0 = time.perf_counter()
    await asyncio.gather(*(create(i) for i in range(n)))
    created = time.perf_counter() - t0
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        wt.cancel()
        await asyncio.gather(wt, return_exceptions=True)
    elapsed = max(running.values()) - t0
    lat = [running[k] - sent[k] for k in running]
    return {"n": n, "created_s": round(created, 3), "elapsed_s": round(elapsed, 3),
            "pods_per_s": round(n / elapsed, 2), **_summary(lat)}


async def delete_all(client: Client, timeout: float = 120.0) -> float:
    pods = client.resource("", "v1", "pods", namespaced=True)
    t0 = time.perf_counter()
    lst = await pods.list(NS, label_selector="bench=podstart")
    await asyncio.gather(*(pods.delete(p["metadata"]["name"], NS) for p in lst["items"]), return_exceptions=True)
    while time.perf_counter() - t0 < timeout:
        if not (await pods.list(NS, label_selector="bench=podstart"))["items"]:
            return round(time.perf_counter() - t0, 3)
        await asyncio.sleep(0.2)
    raise RuntimeError("bench pods not gone")


def start_kubelet(kubeconfig: Path, endpoint: str, data_dir: Path, log_root: Path, cgroup_root: str,
                  log_path: Path) -> subprocess.Popen:
    logf = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--kubelet-child", str(kubeconfig),
                             endpoint, str(data_dir), str(log_root), cgroup_root],
                            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    logf.close()
    return proc


def kubelet_child(kubeconfig: str, endpoint: str, data_dir: str, log_root: str, cgroup_root: str) -> int:
    """The kubelet of the bench node, in its own process until SIGTERM."""
    import logging

    from kybernetes.kubelet.kubelet import Kubelet

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with Client.from_kubeconfig(kubeconfig) as c:
            kl = Kubelet(c, endpoint, node_name=NODE, data_dir=Path(data_dir), node_ip="10.88.99.1",
                         pod_log_root=Path(log_root), cgroup_root=cgroup_root)
            await kl.start()
            try:
                await stop.wait()
            finally:
                await kl.stop()
    asyncio.run(main())
    return 0


async def wait_node_ready(client: Client, timeout: float = 60.0) -> None:
    nodes = client.resource("", "v1", "nodes", namespaced=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            n = await nodes.get(NODE)
            if any(c["type"] == "Ready" and c["status"] == "True" for c in (n.get("status") or {}).get("conditions") or []):
                return
        except NotFound:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("bench node not Ready")


async def run(pods: int, rounds: int, base: Path) -> dict:
    from fixtures.server import start_server

    srv = start_server(base / "server", extra=("--disable-scheduler",))
    kubelet = None
    out: dict = {"pods": pods, "rounds": []}
    try:
        async with BenchNode(base) as node:
            rt = node.rt
            out["containerd"] = rt.version
            common = dict(image=BENCH_IMAGE, log_root=rt.pod_log_root, cgroup_root=f"{node.name}-raw")
            kubelet = start_kubelet(srv.kubeconfig, rt.endpoint, base / "kubelet", rt.pod_log_root,
                                    f"{node.name}-kl", base / "kubelet.log")
            async with Client.from_kubeconfig(srv.kubeconfig) as c:
                await wait_node_ready(c)
                # warm-up of both paths (image unpack caches, first CNI call, watch caches)
                await raw_pod_start(rt.endpoint, n=2, prefix="warmup", **common)
                await api_pod_start(c, 2, "warmup")
                await delete_all(c)
                for r in range(rounds):
                    procs = {"server": srv.proc.pid, "kubelet": kubelet.pid, "containerd": rt.pid or 0,
                             "bench": os.getpid()}
                    c0 = {k: cpu_s(p) for k, p in procs.items()}
                    raw = await raw_pod_start(rt.endpoint, n=pods, prefix=f"raw{r}", **common)
                    c1 = {k: cpu_s(p) for k, p in procs.items()}
                    api = await api_pod_start(c, pods, f"p{r}")
                    c2 = {k: cpu_s(p) for k, p in procs.items()}
                    raw["cpu_s"] = {k: round(c1[k] - c0[k], 2) for k in procs}
                    api["cpu_s"] = {k: round(c2[k] - c1[k], 2) for k in procs}
                    mem = {"server_rss_mb": rss_mb(srv.proc.pid), "kubelet_rss_mb": rss_mb(kubelet.pid),
                           "containerd_rss_mb": rss_mb(rt.pid or 0)}
                    api["delete_all_s"] = await delete_all(c)
                    out["rounds"].append({"raw_cri": raw, "api": api, "memory": mem,
                                          "ratio_p50": round(api["p50_ms"] / raw["p50_ms"], 2),
                                          "ratio_p99": round(api["p99_ms"] / raw["p99_ms"], 2),
                                          "ratio_elapsed": round(api["elapsed_s"] / raw["elapsed_s"], 2)})
    finally:
        if kubelet is not None and kubelet.poll() is None:
            kubelet.send_signal(signal.SIGTERM)
            try:
                kubelet.wait(20)
            except subprocess.TimeoutExpired:
                kubelet.kill()
                kubelet.wait(5)
        from kybernetes.kubelet import runtime_cleanup as cleanup
        cleanup.remove_cgroup(f"kyb-bench-{os.getpid()}-kl")
        cleanup.remove_cgroup(f"kyb-bench-{os.getpid()}-raw")
        srv.stop()
    return out


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--kubelet-child":
        return kubelet_child(*argv[1:6])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None, help="scratch dir (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "podstart.json")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/podstart.py needs root (containerd, runc, network namespaces)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="kyb-bench-podstart-", dir=args.dir) as tmp:
        res = asyncio.run(run(args.pods, args.rounds, Path(tmp)))
    res["machine"] = {"cpus": os.cpu_count()}
    rows = [("round", "path", "pods", "elapsed s", "pods/s", "p50 ms", "p99 ms", "max ms")]
    for i, r in enumerate(res["rounds"]):
        for label, key in (("raw CRI", "raw_cri"), ("API→Running", "api")):
            x = r[key]
            rows.append((str(i), label, str(x["n"]), f"{x['elapsed_s']:.2f}", f"{x['pods_per_s']:.1f}",
                         f"{x['p50_ms']:.0f}", f"{x['p99_ms']:.0f}", f"{x['max_ms']:.0f}"))
        rows.append((str(i), "ratio", "", f"{r['ratio_elapsed']:.2f}", "", f"{r['ratio_p50']:.2f}",
                     f"{r['ratio_p99']:.2f}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"pod start, {res['pods']} pods at once on one node (containerd {res.get('containerd')})")
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    for i, r in enumerate(res["rounds"]):
        print(f"round {i} CPU s during API→Running: " + ", ".join(f"{k} {v}" for k, v in r["api"]["cpu_s"].items())
              + f" (raw CRI phase: containerd {r['raw_cri']['cpu_s']['containerd']})")
    for i, r in enumerate(res["rounds"]):
        m = r["memory"]
        print(f"round {i} RSS with {res['pods']} pods running: server {m['server_rss_mb']} MiB, "
              f"kubelet {m['kubelet_rss_mb']} MiB, containerd {m['containerd_rss_mb']} MiB")
    write_result(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
