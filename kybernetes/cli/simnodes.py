"""`kyb sim-nodes`: register simulated nodes (a simulator for scale and scheduler tests,
like kwok; no containers run on them)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

HELP = ("SIMULATOR: register N simulated Nodes (capacity, Ready, Leases kept renewed) for scale and "
        "scheduler tests; with --run-pods a fake kubelet marks pods bound to them Running (or Failed when "
        "annotated sim.kybernetes.io/fail=MESSAGE), removes deleted pods after their grace period and never "
        "rewrites a terminal pod. No containers run.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = HELP
    p.add_argument("--count", type=int, required=True, help="how many simulated nodes")
    p.add_argument("--cpu", default="4")
    p.add_argument("--memory", default="8Gi")
    p.add_argument("--pods", default="110")
    p.add_argument("--extended-resource", action="append", default=[], metavar="NAME=QTY")
    p.add_argument("--labels", default="", help="k=v,k2=v2 added to every node")
    p.add_argument("--taints", default="", help="key=value:Effect,... on every node")
    p.add_argument("--zones", type=int, default=0, help="spread the nodes over N zones (topology.kubernetes.io/zone)")
    p.add_argument("--prefix", default="sim-node-")
    p.add_argument("--run-pods", action="store_true", help="fake kubelet: mark bound pods Running")
    p.add_argument("--delete-on-exit", action="store_true")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data-dir", type=Path, default=None, help="use DIR/admin.kubeconfig (default: the server's data dir)")
    g.add_argument("--kubeconfig", type=Path, default=None)
    p.add_argument("--log-level", default="INFO")


def _parse_taints(s: str) -> list[dict]:
    out = []
    for t in filter(None, s.split(",")):
        kv, _, effect = t.partition(":")
        k, _, v = kv.partition("=")
        out.append({"key": k, "value": v, "effect": effect or "NoSchedule"} if v else {"key": k, "effect": effect or "NoSchedule"})
    return out


def run(args: argparse.Namespace) -> int:
    from kybernetes.cli.server import default_data_dir
    from kybernetes.client import Client
    from kybernetes.scheduler.simnodes import SimNodes

    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kc = args.kubeconfig or (args.data_dir or default_data_dir()) / "admin.kubeconfig"
    labels = dict(kv.split("=", 1) for kv in filter(None, args.labels.split(",")))
    extended = dict(kv.split("=", 1) for kv in args.extended_resource)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Client.from_kubeconfig(kc) as client:
            sim = SimNodes(client, args.count, prefix=args.prefix, run_pods=args.run_pods, cpu=args.cpu,
                           memory=args.memory, pods=args.pods, extended=extended, labels=labels,
                           taints=_parse_taints(args.taints), zones=args.zones)
            await sim.start()
            print(f"kyb sim-nodes: {args.count} simulated nodes registered ({args.prefix}0000..); Ctrl-C to stop", flush=True)
            try:
                await stop.wait()
            finally:
                await sim.stop(delete=args.delete_on_exit)

    asyncio.run(main())
    return 0
