"""`kyb agent`: a node agent — containerd (child process, or an existing CRI socket) and
the kubelet — joined to a server.  `kyb server` starts the same thing in-process unless
`--disable-agent` (start_node_agent / NodeAgent.stop)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import ssl
from pathlib import Path
from typing import Optional

log = logging.getLogger("kybernetes.agent")

# Pods of a node started by default get this bridge network, with no gateway address on
# the host and no default route in the pod: pods reach each other, nothing leaves the host.
DEFAULT_POD_SUBNET = "10.42.0.0/24"
POD_BRIDGE = "kyb0"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default="", help="API server URL (https://HOST:PORT)")
    p.add_argument("--token", default="", help="bearer token for the API server")
    p.add_argument("--ca-file", default="", help="CA bundle of the API server (default: skip verification, with a warning)")
    p.add_argument("--kubeconfig", default="", help="kubeconfig instead of --server/--token")
    p.add_argument("--node-name", default=socket.gethostname().lower())
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--container-runtime-endpoint", default="", help="use this CRI socket instead of starting containerd")
    p.add_argument("--node-ip", default="")
    p.add_argument("--log-level", default=os.environ.get("KYB_LOG_LEVEL", "INFO"))
    p.add_argument("--kubelet-port", type=int, default=10250, help="port of the kubelet's HTTPS API")
    p.add_argument("--tls-cert-file", default="", help="kubelet serving certificate (with --tls-private-key-file "
                                                       "and --ca-file, which also checks callers' client certs)")
    p.add_argument("--tls-private-key-file", default="")


class NodeAgent:
    """containerd + kubelet of one node; `bridge` is the pod bridge to remove on stop."""

    def __init__(self, runtime, kubelet, client, bridge: str = ""):
        self.runtime = runtime
        self.kubelet = kubelet
        self.client = client
        self.bridge = bridge

    async def stop(self, *, remove_pods: bool = True) -> None:
        try:
            await self.kubelet.stop()
        finally:
            try:
                await self.runtime.stop(remove_pods=remove_pods)
            finally:
                try:
                    if self.bridge and remove_pods:
                        await _delete_link(self.bridge)
                finally:
                    await self.client.close()


async def start_node_agent(client, *, node_name: str, data_dir: Path, runtime_endpoint: str = "",
                           node_ip: Optional[str] = None, cert_source=None, client_ca: Optional[Path] = None,
                           kubelet_port: int = 10250) -> NodeAgent:
    """Start containerd (unless `runtime_endpoint`) under DATA/agent and a kubelet using `client`
    (which the agent then owns and closes).  With `cert_source` and `client_ca` the kubelet
    serves its HTTPS API (logs, exec, port-forward) on `kubelet_port`."""
    from kybernetes.kubelet.containerd import agent_dir, container_runtime
    from kybernetes.kubelet.kubelet import Kubelet
    from kybernetes.kubelet.runtime_netns import bridge_conflist, write_conflist

    adir = agent_dir(data_dir)
    rt = container_runtime(adir, runtime_endpoint or None)
    if not runtime_endpoint:
        conf = rt.cni_conf_dir
        if not conf.exists() or not any(conf.glob("*.conflist")):
            write_conflist(conf, bridge_conflist("kyb", POD_BRIDGE, DEFAULT_POD_SUBNET, gateway=False,
                                                 ipam_dir=adir / "cni" / "ipam"))
    await rt.start()
    try:
        kl = Kubelet(client, rt.endpoint, node_name=node_name, data_dir=adir, node_ip=node_ip or None,
                     pod_log_root=getattr(rt, "pod_log_root", adir / "pods"), cert_source=cert_source,
                     client_ca=client_ca, server_port=kubelet_port, runtime_netns=getattr(rt, "netns", None))
        await kl.start()
    except BaseException:
        await rt.stop()
        raise
    return NodeAgent(rt, kl, client, bridge="" if runtime_endpoint else POD_BRIDGE)


async def _delete_link(name: str) -> None:
    """Remove the pod bridge the CNI plugin made, so a stopped node leaves no link behind."""
    proc = await asyncio.create_subprocess_exec("ip", "link", "del", name, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    await proc.wait()


def _client(args: argparse.Namespace):
    from kybernetes.client import Client

    if args.kubeconfig:
        return Client.from_kubeconfig(args.kubeconfig)
    if not args.server or not args.token:
        raise SystemExit("kyb agent: give --server and --token, or --kubeconfig")
    if args.ca_file:
        ctx = ssl.create_default_context(cafile=args.ca_file)
    else:
        log.warning("no --ca-file: the API server's certificate is not verified")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return Client(args.server, ctx, args.token)


def run(args: argparse.Namespace) -> int:
    from kybernetes.cli.server import default_data_dir

    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = (args.data_dir or default_data_dir()).resolve()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        serving = {}
        if args.tls_cert_file and args.tls_private_key_file and args.ca_file:
            from kybernetes.kubelet.server.app import static_cert

            serving = {"cert_source": static_cert(Path(args.tls_cert_file), Path(args.tls_private_key_file)),
                       "client_ca": Path(args.ca_file)}
        elif args.tls_cert_file or args.tls_private_key_file:
            raise SystemExit("kyb agent: --tls-cert-file needs --tls-private-key-file and --ca-file")
        agent = await start_node_agent(_client(args), node_name=args.node_name, data_dir=data_dir,
                                       runtime_endpoint=args.container_runtime_endpoint, node_ip=args.node_ip,
                                       kubelet_port=args.kubelet_port, **serving)
        print(f"kyb agent: node {args.node_name} joined", flush=True)
        try:
            await stop.wait()
        finally:
            await agent.stop()

    asyncio.run(main())
    return 0
