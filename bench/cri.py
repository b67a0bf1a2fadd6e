"""Raw CRI pod start: RunPodSandbox + CreateContainer + StartContainer against a real
containerd, for N pods, serially and all at once.

    .venv/bin/python bench/cri.py [--pods 20] [--concurrency 0 (=pods)] [--dir DIR]

Needs root.  containerd runs from our config inside a network namespace made for
the run (bridge CNI, no uplink, no default route), so no pod packet can leave the
machine.  Prints a table and writes bench/results/cri.json.

`raw_pod_start(endpoint, ...)` is the reusable part: the pod-start benchmark
(bench/podstart.py) calls it against the node's own containerd to get the
baseline its API-to-Running times are compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from _load import pct, write_result  # noqa: E402
from kybernetes.cri import CRIClient, pb  # noqa: E402
from kybernetes.kubelet import runtime_cleanup as cleanup  # noqa: E402
from kybernetes.kubelet.containerd import ContainerdProcess  # noqa: E402
from kybernetes.kubelet.runtime_netns import bridge_conflist, create_netns, delete_netns, write_conflist  # noqa: E402

BENCH_IMAGE = "localhost/kyb-bench/busybox:1"


def _summary(values: list[float]) -> dict:
    v = sorted(values)
    return {"p50_ms": round(pct(v, 50) * 1000, 2), "p99_ms": round(pct(v, 99) * 1000, 2),
            "max_ms": round((v[-1] if v else 0) * 1000, 2)}


def pod_configs(name: str, *, log_root: Path, cgroup_root: str, image: str,
                command: Optional[list[str]] = None) -> tuple[pb.PodSandboxConfig, pb.ContainerConfig]:
    """A minimal pod (one busybox container) as the kubelet would describe it."""
    uid = str(uuid.uuid4())
    log_dir = log_root / f"bench_{name}_{uid}"
    log_dir.mkdir(parents=True, exist_ok=True)
    sandbox = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="bench", attempt=0),
        hostname=name, log_directory=str(log_dir),
        labels={"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "bench", "kyb-bench": "cri"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=f"/{cgroup_root.strip('/')}/pod{uid}",
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD))),
    )
    container = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="main"), image=pb.ImageSpec(image=image),
        # A TERM trap so teardown is not a grace-period wait.
        command=command or ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
        log_path="main/0.log", labels={"io.kubernetes.container.name": "main"},
    )
    return sandbox, container


async def raw_pod_start(endpoint: str, *, n: int, image: str, log_root: Path, cgroup_root: str,
                        concurrency: int = 0, teardown: bool = True, prefix: str = "raw") -> dict:
    """Start `n` pods through the raw CRI sequence with `concurrency` pods in flight
    (0 = all at once), then (by default) stop and remove them and their pod cgroups.

    Returns {"n", "concurrency", "elapsed_s", "pods_per_s", "p50_ms", "p99_ms", "max_ms",
    "steps": {"run_pod_sandbox"|"create_container"|"start_container": {p50_ms, p99_ms, max_ms}},
    "teardown_s"} — per-pod latency is RunPodSandbox start to StartContainer return."""
    concurrency = concurrency or n
    totals: list[float] = []
    steps: dict[str, list[float]] = {"run_pod_sandbox": [], "create_container": [], "start_container": []}
    started: list[tuple[str, pb.PodSandboxConfig]] = []
    sem = asyncio.Semaphore(concurrency)
    async with CRIClient(endpoint) as cri:
        async def one(i: int) -> None:
            sbx, ctr = pod_configs(f"{prefix}-{i}", log_root=log_root, cgroup_root=cgroup_root, image=image)
            async with sem:
                t0 = time.perf_counter()
                sid = await cri.run_pod_sandbox(sbx)
                started.append((sid, sbx))
                t1 = time.perf_counter()
                cid = await cri.create_container(sid, ctr, sbx)
                t2 = time.perf_counter()
                await cri.start_container(cid)
                t3 = time.perf_counter()
            steps["run_pod_sandbox"].append(t1 - t0)
            steps["create_container"].append(t2 - t1)
            steps["start_container"].append(t3 - t2)
            totals.append(t3 - t0)

        t_start = time.perf_counter()
        try:
            await asyncio.gather(*(one(i) for i in range(n)))
        finally:
            elapsed = time.perf_counter() - t_start
            t_down = time.perf_counter()
            if teardown:
                async def down(sid: str, sbx: pb.PodSandboxConfig) -> None:
                    async with sem:
                        await cri.stop_pod_sandbox(sid)
                        await cri.remove_pod_sandbox(sid)
                    cleanup.remove_cgroup(sbx.linux.cgroup_parent)
                await asyncio.gather(*(down(s, c) for s, c in started), return_exceptions=True)
            teardown_s = time.perf_counter() - t_down
    return {
        "n": n, "concurrency": concurrency, "elapsed_s": round(elapsed, 3),
        "pods_per_s": round(n / elapsed, 2) if elapsed > 0 else 0.0,
        **_summary(totals),
        "steps": {k: _summary(v) for k, v in steps.items()},
        "teardown_s": round(teardown_s, 3),
    }


class BenchNode:
    """containerd in its own network namespace with the busybox bench image, for one run."""

    def __init__(self, base: Path):
        self.name = f"kyb-bench-{os.getpid()}"
        self.base = base
        self.rt: Optional[ContainerdProcess] = None

    async def __aenter__(self) -> "BenchNode":
        from fixtures.images import write_busybox_archive

        netns = create_netns(self.name)
        try:
            self.rt = ContainerdProcess(self.base / "node", netns=netns, offline=True, log_level="warn")
            write_conflist(self.rt.cni_conf_dir, bridge_conflist("kyb-bench", "kybbench0", "10.88.99.0/24",
                                                                 ipam_dir=self.rt.data_dir / "cni" / "ipam"))
            write_busybox_archive(self.rt.import_dir / "busybox.oci.tar", BENCH_IMAGE)
            await self.rt.start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self.rt is not None:
                await self.rt.stop()
        finally:
            cleanup.remove_cgroup(self.name)
            delete_netns(self.name)


async def run(pods: int, concurrency: int, base: Path) -> dict:
    async with BenchNode(base) as node:
        rt = node.rt
        common = dict(image=BENCH_IMAGE, log_root=rt.pod_log_root, cgroup_root=node.name)
        await raw_pod_start(rt.endpoint, n=2, prefix="warmup", **common)
        serial = await raw_pod_start(rt.endpoint, n=pods, concurrency=1, prefix="serial", **common)
        parallel = await raw_pod_start(rt.endpoint, n=pods, concurrency=concurrency or pods, prefix="par", **common)
        return {"containerd": rt.version, "serial": serial, "parallel": parallel}


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=0, help="pods in flight in the parallel run (0 = all)")
    ap.add_argument("--dir", type=Path, default=None, help="scratch dir (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "cri.json")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/cri.py needs root (containerd, runc, network namespaces)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="kyb-bench-cri-", dir=args.dir) as tmp:
        res = asyncio.run(run(args.pods, args.concurrency, Path(tmp)))
    res["machine"] = {"cpus": os.cpu_count()}
    rows = [("run", "pods", "in flight", "elapsed s", "pods/s", "p50 ms", "p99 ms", "sandbox p50", "create p50",
             "start p50", "teardown s")]
    for name in ("serial", "parallel"):
        r = res[name]
        rows.append((name, str(r["n"]), str(r["concurrency"]), f"{r['elapsed_s']:.2f}", f"{r['pods_per_s']:.1f}",
                     f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}", f"{r['steps']['run_pod_sandbox']['p50_ms']:.0f}",
                     f"{r['steps']['create_container']['p50_ms']:.0f}",
                     f"{r['steps']['start_container']['p50_ms']:.0f}", f"{r['teardown_s']:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"raw CRI pod start (containerd {res['containerd']})")
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    write_result(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
