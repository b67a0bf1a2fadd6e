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
import sys
from pathlib import Path
from typing import Optional

log = logging.getLogger("kybernetes.agent")

# Pods of a node started by default get this bridge network, with no gateway address on
# the host and no default route in the pod: pods reach each other, nothing leaves the host.
DEFAULT_POD_SUBNET = "10.42.0.0/24"
POD_BRIDGE = "kyb0"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default="", help="API server URL (https://HOST:PORT)")
    p.add_argument("--token", default="", help="bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}: TLS bootstrap of the node's "
                   "client certificate) or another bearer token for the API server")
    p.add_argument("--bootstrap-kubeconfig", default="",
                   help="kubeconfig with bootstrap credentials, used to request the node's client certificate")
    p.add_argument("--rotate-certificates", type=lambda v: v.lower() in ("1", "true", "yes"), default=True,
                   help="renew the node's client certificate before it expires (default true)")
    p.add_argument("--rotate-server-certificates", type=lambda v: v.lower() in ("1", "true", "yes"), default=False,
                   help="request a kubelet serving certificate (signer kubernetes.io/kubelet-serving) for the "
                        "node's name and address; an administrator approves it (default false)")
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
    add_kubelet_arguments(p)


def add_kubelet_arguments(p: argparse.ArgumentParser) -> None:
    """Kubelet options shared by `kyb agent` and `kyb server` (its in-process node)."""
    # No default: nothing serves cluster DNS yet, and without one upstream's kubelet gives
    # ClusterFirst pods the node's resolv.conf instead.
    p.add_argument("--cluster-dns", default="",
                   help="comma-separated DNS server addresses pods with dnsPolicy ClusterFirst get in resolv.conf "
                        "(default: none, such pods use the node's resolv.conf)")
    p.add_argument("--cluster-domain", default=DEFAULT_CLUSTER_DOMAIN,
                   help="the cluster's DNS domain; pods search <ns>.svc.DOMAIN, svc.DOMAIN, DOMAIN")
    p.add_argument("--image-gc-high-threshold", type=int, default=85,
                   help="image filesystem usage percent that starts image garbage collection")
    p.add_argument("--image-gc-low-threshold", type=int, default=80,
                   help="image filesystem usage percent image garbage collection frees down to")
    p.add_argument("--image-minimum-gc-age", default="2m", help="minimum age of an unused image before it is collected")
    p.add_argument("--pod-manifest-path", default="", help="directory of static pod manifests (run without the API)")
    p.add_argument("--file-check-frequency", default="20s", help="how often the static pod directory is read")
    from kybernetes.kubelet.eviction import DEFAULT_EVICTION_HARD

    p.add_argument("--eviction-hard", default=DEFAULT_EVICTION_HARD,
                   help="hard eviction thresholds, signal<quantity or signal<percent, comma separated "
                        "(empty: none; local storage limits still apply)")
    p.add_argument("--eviction-pressure-transition-period", default="5m",
                   help="how long a pressure condition stays after its threshold is no longer met")
    p.add_argument("--eviction-soft", default="",
                   help="soft eviction thresholds (e.g. memory.available<1.5Gi), met for their grace period to evict")
    p.add_argument("--eviction-soft-grace-period", default="",
                   help="grace periods of the soft thresholds (e.g. memory.available=1m30s)")
    p.add_argument("--eviction-max-pod-grace-period", type=int, default=0,
                   help="largest grace period (seconds) given to pods evicted for a soft threshold")
    p.add_argument("--eviction-minimum-reclaim", default="",
                   help="how far past its threshold a signal must recover after an eviction (e.g. "
                        "imagefs.available=2Gi)")
    p.add_argument("--local-storage-capacity-isolation", type=lambda v: v.lower() in ("1", "true", "yes"),
                   default=True, help="evict pods over their emptyDir sizeLimit or ephemeral-storage limits "
                                      "(upstream's localStorageCapacityIsolation; default true)")
    p.add_argument("--allowed-unsafe-sysctls", default="",
                   help="comma-separated unsafe sysctls or patterns (e.g. 'kernel.msg*,net.core.somaxconn') "
                        "pods may set beside the safe ones")


def kubelet_options(args: argparse.Namespace) -> dict:
    """start_node_agent keyword arguments from the kubelet flags (defaults when absent)."""
    from kybernetes.client.leaderelection import parse_duration
    from kybernetes.kubelet.image_gc import ImageGCPolicy

    policy = ImageGCPolicy(getattr(args, "image_gc_high_threshold", 85), getattr(args, "image_gc_low_threshold", 80),
                           parse_duration(getattr(args, "image_minimum_gc_age", "2m")))
    policy.validate()
    out: dict = {"image_gc_policy": policy}
    dns = getattr(args, "cluster_dns", "") or ""
    out["cluster_dns"] = [a.strip() for a in dns.split(",") if a.strip()]
    out["cluster_domain"] = getattr(args, "cluster_domain", "") or DEFAULT_CLUSTER_DOMAIN
    unsafe = getattr(args, "allowed_unsafe_sysctls", "") or ""
    if unsafe:
        from kybernetes.kubelet.sysctls import Allowlist

        out["allowed_unsafe_sysctls"] = [s.strip() for s in unsafe.split(",") if s.strip()]
        try:
            Allowlist(out["allowed_unsafe_sysctls"])
        except ValueError as e:
            raise ValueError(f"--allowed-unsafe-sysctls: {e}") from None
    from kybernetes.kubelet import eviction_thresholds as et

    hard = getattr(args, "eviction_hard", et.DEFAULT_EVICTION_HARD)
    soft, periods, reclaims = (getattr(args, f, "") for f in
                               ("eviction_soft", "eviction_soft_grace_period", "eviction_minimum_reclaim"))
    for flag, value, parse in (("--eviction-hard", hard, et.parse_thresholds),
                               ("--eviction-soft", soft, et.parse_thresholds),
                               ("--eviction-soft-grace-period", periods, et.parse_grace_periods),
                               ("--eviction-minimum-reclaim", reclaims, et.parse_minimum_reclaims)):
        try:
            parse(value)
        except ValueError as e:
            raise ValueError(f"{flag}: {e}") from None
    try:
        out["eviction_hard"] = et.parse_threshold_config(hard, soft, periods, reclaims)
    except ValueError as e:  # a soft threshold without its grace period
        raise ValueError(f"--eviction-soft-grace-period: {e}") from None
    out["eviction_max_pod_grace_period"] = getattr(args, "eviction_max_pod_grace_period", 0)
    out["local_storage_capacity_isolation"] = getattr(args, "local_storage_capacity_isolation", True)
    out["eviction_pressure_transition_period"] = parse_duration(
        getattr(args, "eviction_pressure_transition_period", "5m"))
    if getattr(args, "pod_manifest_path", ""):
        out["static_pod_path"] = Path(args.pod_manifest_path)
        out["file_check_frequency"] = parse_duration(getattr(args, "file_check_frequency", "20s"))
    return out


class NodeAgent:
    """containerd + kubelet of one node; `bridge` is the pod bridge to remove on stop;
    `certificates` the client certificate manager (TLS bootstrap/rotation), if any."""

    def __init__(self, runtime, kubelet, client, bridge: str = "", certificates=None):
        self.runtime = runtime
        self.kubelet = kubelet
        self.client = client
        self.bridge = bridge
        self.certificates = certificates

    async def stop(self, *, remove_pods: bool = True) -> None:
        workers = getattr(self.kubelet, "workers", None)
        # the pod cgroups, while the kubelet still knows its pods (stopping forgets them)
        cgroups = [workers.cgroup_parent(uid, w.pod) for uid, w in workers.workers.items()] if workers else []
        try:
            if self.certificates is not None:
                await self.certificates.stop()
            await self.kubelet.stop()
        finally:
            try:
                await self.runtime.stop(remove_pods=remove_pods)
                if remove_pods and getattr(self.runtime, "owned", False):
                    # the pods are gone with the containerd we ran: release their volume
                    # tmpfs mounts too (a restart's orphan cleanup removes the directories)
                    from kybernetes.kubelet import runtime_cleanup
                    await asyncio.to_thread(runtime_cleanup.unmount_under, self.kubelet.volumes.root)
                    for cg in cgroups:
                        await asyncio.to_thread(runtime_cleanup.remove_cgroup, cg.lstrip("/"))
            finally:
                try:
                    if self.bridge and remove_pods:
                        await _delete_link(self.bridge)
                finally:
                    await self.client.close()


async def start_node_agent(client, *, node_name: str, data_dir: Path, runtime_endpoint: str = "",
                           node_ip: Optional[str] = None, cert_source=None, client_ca: Optional[Path] = None,
                           kubelet_port: int = 10250, **kubelet_options) -> NodeAgent:
    """Start containerd (unless `runtime_endpoint`) under DATA/agent and a kubelet using `client`
    (which the agent then owns and closes); `kubelet_options` go to the Kubelet.  With
    `cert_source` and `client_ca` the kubelet serves its HTTPS API (logs, exec, port-forward)
    on `kubelet_port`."""
    from kybernetes.kubelet.containerd import ContainerdProcess, agent_dir, container_runtime
    from kybernetes.kubelet.images_pause import PAUSE_IMAGE
    from kybernetes.kubelet.kubelet import Kubelet
    from kybernetes.kubelet.runtime_netns import bridge_conflist, write_conflist

    adir = agent_dir(data_dir)
    rt = container_runtime(adir, runtime_endpoint or None)
    on_pod_cidr = None
    if not runtime_endpoint:
        async def write_cni(cidrs: Optional[list[str]]) -> None:
            # host-local hands out pod IPs from the node's podCIDR (node IPAM); without one
            # (no controller manager), the default subnet, once
            conf = rt.cni_conf_dir
            if not cidrs and conf.exists() and any(conf.glob("*.conflist")):
                return
            if not cidrs:
                log.warning("node %s got no podCIDR: pods use %s", node_name, DEFAULT_POD_SUBNET)
            subnet = cidrs[0] if cidrs else DEFAULT_POD_SUBNET
            await asyncio.to_thread(write_conflist, conf, bridge_conflist("kyb", POD_BRIDGE, subnet, gateway=False,
                                                                          ipam_dir=adir / "cni" / "ipam"))
        on_pod_cidr = write_cni
    await rt.start()
    try:
        kl = Kubelet(client, rt.endpoint, node_name=node_name, data_dir=adir, node_ip=node_ip or None,
                     pod_log_root=getattr(rt, "pod_log_root", adir / "pods"), on_pod_cidr=on_pod_cidr,
                     airgap_dir=ContainerdProcess(adir).import_dir, **kubelet_options,
                     sandbox_image=getattr(rt, "sandbox_image", PAUSE_IMAGE), cert_source=cert_source,
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


def _write_ca(path: Path, pem: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(pem)


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


def _serving_certificates(agent: NodeAgent, node_name: str, data_dir: Path):
    """The manager of the kubelet's serving certificate (kubelet-serving CSRs; nothing
    auto-approves them, as upstream), stored under DATA/agent/pki; each new one goes
    straight into the kubelet's HTTPS server."""
    from kybernetes.kubelet.certificate import ServingCertificateManager
    from kybernetes.kubelet.containerd import agent_dir

    ips = tuple(ip for ip in [getattr(agent.kubelet.node, "node_ip", None)] if ip)
    server = agent.kubelet.server
    return ServingCertificateManager(agent.client, node_name, agent_dir(data_dir) / "pki", dns=(node_name,), ips=ips,
                                     on_rotated=server.reload_certificate if server is not None else None)


def _uses_tls_bootstrap(args: argparse.Namespace) -> bool:
    from kybernetes.auth.tokens import parse_bootstrap_token

    if args.kubeconfig:
        return False
    return bool(args.bootstrap_kubeconfig) or parse_bootstrap_token(args.token or "") is not None


def certificate_manager(args: argparse.Namespace, data_dir: Path):
    """The kubelet's client certificate manager for `kyb agent` with a bootstrap token or
    bootstrap kubeconfig: the node's certificate lives under DATA/agent/pki."""
    from kybernetes.client.kubeconfig import KubeConfig, load_kubeconfig
    from kybernetes.kubelet.certificate import ClientCertificateManager
    from kybernetes.kubelet.containerd import agent_dir

    boot = load_kubeconfig(args.bootstrap_kubeconfig) if args.bootstrap_kubeconfig else None
    server = boot.server if boot else args.server
    if not server:
        raise SystemExit("kyb agent: give --server (or a --bootstrap-kubeconfig)")
    ca_pem = Path(args.ca_file).read_bytes() if args.ca_file else (boot.ca_pem if boot else None)
    if ca_pem is None:
        log.warning("no --ca-file: the API server's certificate is not verified")
    base = KubeConfig(server=server, ca_pem=ca_pem, insecure_skip_tls_verify=ca_pem is None,
                      tls_server_name=boot.tls_server_name if boot else None)
    return ClientCertificateManager(base, args.node_name, agent_dir(data_dir) / "pki",
                                    bootstrap_token=None if boot else args.token, bootstrap=boot)


def _write_kubelet_kubeconfig(path: Path, server: str, ca_pem: Optional[bytes], cert_file: Path) -> None:
    """A kubeconfig naming the node's current certificate file (as kubeadm's kubelet.conf),
    so that `kubectl --kubeconfig` can act as the node, and renewals need no rewrite."""
    import base64

    import yaml

    from kybernetes.auth.pki import write_atomic

    cluster: dict = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    else:
        cluster["insecure-skip-tls-verify"] = True
    doc = {"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "default", "cluster": cluster}],
           "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default-auth"}}],
           "current-context": "default", "preferences": {},
           "users": [{"name": "default-auth", "user": {"client-certificate": str(cert_file),
                                                        "client-key": str(cert_file)}}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, yaml.safe_dump(doc, sort_keys=False).encode(), 0o600)


def run(args: argparse.Namespace) -> int:
    from kybernetes.cli.server import default_data_dir

    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = (args.data_dir or default_data_dir()).resolve()
    try:
        options = kubelet_options(args)
    except ValueError as e:
        print(f"kyb agent: {e}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        serving_tls = {}
        if args.tls_cert_file and args.tls_private_key_file and args.ca_file:
            from kybernetes.kubelet.server.app import static_cert

            serving_tls = {"cert_source": static_cert(Path(args.tls_cert_file), Path(args.tls_private_key_file)),
                           "client_ca": Path(args.ca_file)}
        elif args.tls_cert_file or args.tls_private_key_file:
            raise SystemExit("kyb agent: --tls-cert-file needs --tls-private-key-file and --ca-file")
        certs = None
        if _uses_tls_bootstrap(args):
            from kybernetes.kubelet.certificate import BootstrapError
            from kybernetes.kubelet.containerd import agent_dir

            certs = certificate_manager(args, data_dir)
            try:
                client = await certs.start()
            except BootstrapError as e:
                raise SystemExit(f"kyb agent: {e}") from None
            if not args.rotate_certificates:
                await certs.stop()
            await asyncio.to_thread(_write_kubelet_kubeconfig, agent_dir(data_dir) / "kubelet.kubeconfig",
                                    certs.base.server, certs.base.ca_pem, certs.store.current_path)
        else:
            client = _client(args)
        if args.rotate_server_certificates and not serving_tls:
            # serve with the certificate the CSRs bring (no handshake succeeds before the
            # first is approved); callers' client certificates are checked against the CA
            from kybernetes.kubelet.containerd import agent_dir
            from kybernetes.kubelet.server.app import csr_cert_source

            pki_dir = agent_dir(data_dir) / "pki"
            ca = Path(args.ca_file) if args.ca_file else None
            if ca is None and certs is not None and certs.base.ca_pem:
                ca = pki_dir / "ca.crt"
                await asyncio.to_thread(_write_ca, ca, certs.base.ca_pem)
            if ca is not None:
                serving_tls = {"cert_source": csr_cert_source(pki_dir), "client_ca": ca}
        try:
            agent = await start_node_agent(client, node_name=args.node_name, data_dir=data_dir,
                                           runtime_endpoint=args.container_runtime_endpoint, node_ip=args.node_ip,
                                           kubelet_port=args.kubelet_port, **serving_tls, **options)
        except BaseException:
            if certs is not None:
                await certs.stop()
            raise
        agent.certificates = certs
        serving = None
        if args.rotate_server_certificates:
            serving = _serving_certificates(agent, args.node_name, data_dir)
            serving.start()
        print(f"kyb agent: node {args.node_name} joined", flush=True)
        try:
            await stop.wait()
        finally:
            if serving is not None:
                await serving.stop()
            await agent.stop()

    asyncio.run(main())
    return 0
