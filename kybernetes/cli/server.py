"""`kyb server`: run the control plane (API server on SQLite by default) in one process."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import socket
import ssl
from pathlib import Path
from typing import Optional

from aiohttp import web

log = logging.getLogger("kybernetes.server")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def default_data_dir() -> Path:
    env = os.environ.get("KYB_DATA_DIR")
    if env:
        return Path(env)
    return Path("/var/lib/kybernetes") if os.geteuid() == 0 else Path.home() / ".kyb"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None, help="state directory (default ~/.kyb, or /var/lib/kybernetes as root)")
    p.add_argument("--bind-address", default="127.0.0.1")
    p.add_argument("--advertise-address", default="",
                   help="the address published behind the default/kubernetes Service (default: the bind address)")
    p.add_argument("--https-port", type=int, default=6443)
    p.add_argument("--datastore-endpoint", default="", help="sqlite://PATH (default DIR/db/state.db)")
    p.add_argument("--disable-agent", action="store_true", help="run the control plane only")
    p.add_argument("--disable-controllers", action="store_true", help="do not run the controller manager")
    p.add_argument("--disable-scheduler", action="store_true", help="do not run the scheduler")
    from kybernetes.controllers.nodeipam import cluster_cidr_arg
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", type=cluster_cidr_arg,
                   help="pod CIDR(s) of the cluster; nodes get subnets of it")
    p.add_argument("--node-cidr-mask-size", type=int, default=0, help="prefix length of a node's pod CIDR (IPv4, default 24)")
    from kybernetes.cli.agent import add_kubelet_arguments
    add_kubelet_arguments(p)
    p.add_argument("--node-name", default=socket.gethostname().lower())
    p.add_argument("--token", default="")
    p.add_argument("--write-kubeconfig", type=Path, default=None)
    p.add_argument("--audit-policy-file", default="")
    p.add_argument("--audit-log-path", default="")
    p.add_argument("--audit-log-maxsize", type=int, default=0, help="MB before the audit log is rotated (0 = never)")
    p.add_argument("--audit-log-maxbackup", type=int, default=0)
    p.add_argument("--audit-log-maxage", type=int, default=0, help="days to keep rotated audit logs")
    p.add_argument("--audit-webhook-config-file", default="")
    from kybernetes.apiserver.audit import add_flags as add_audit_webhook_flags
    add_audit_webhook_flags(p)  # --audit-webhook-mode, --audit-webhook-batch-*, --audit-webhook-initial-backoff
    p.add_argument("--encryption-provider-config", default="")
    p.add_argument("--encryption-provider-config-automatic-reload", nargs="?", const="true", default=False,
                   type=lambda v: str(v).lower() in ("1", "true", "yes"),
                   help="reload the encryption config when its file changes (polled every minute)")
    p.add_argument("--encryption-provider-config-reload-interval", type=float, default=60.0,
                   help=argparse.SUPPRESS)  # tests poll faster
    p.add_argument("--admission-control-config-file", default="", help="AdmissionConfiguration (PodSecurity defaults/exemptions)")
    p.add_argument("--authorization-mode", default="Node,RBAC")
    p.add_argument("--token-auth-file", default="", help="static tokens (CSV: token,user,uid,\"group1,group2\")")
    p.add_argument("--anonymous-auth", type=lambda v: v.lower() in ("1", "true", "yes"), default=True,
                   help="serve unauthenticated requests as system:anonymous (default true)")
    p.add_argument("--service-account-issuer", default="")
    p.add_argument("--service-account-signing-key-file", default="",
                   help="private key that signs service-account tokens (default: DATA/tls/sa.key, generated)")
    p.add_argument("--service-account-key-file", action="append", default=[],
                   help="PEM file of public keys (or certificates, private keys) that verify service-account "
                        "tokens; repeatable (default: the signing key's public half)")
    p.add_argument("--cluster-signing-duration", default="8760h",
                   help="validity of certificates the built-in CSR signers issue (Go duration, default 8760h)")
    p.add_argument("--log-level", default=os.environ.get("KYB_LOG_LEVEL", "INFO"))
    p.add_argument("--leader-elect", type=lambda v: v.lower() in ("1", "true", "yes"), default=True,
                   help="run the controller manager and scheduler under Lease leader election (default true)")
    p.add_argument("--leader-elect-lease-duration", default="15s")
    p.add_argument("--leader-elect-renew-deadline", default="10s")
    p.add_argument("--leader-elect-retry-period", default="2s")
    p.add_argument("--node-monitor-grace-period", default="40s",
                   help="how long a node may go without a heartbeat before it is marked unhealthy (default 40s)")


class DataDirLock:
    """An exclusive lock on the data dir so that two servers never share it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "kyb.lock"
        self.fd: Optional[int] = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SystemExit(
                f"kyb server: data dir {self.path.parent} is in use by another kyb server (pid {holder}); "
                "stop it or choose another --data-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


async def bootstrap_kubernetes_service(objects, catalog, allocator, port: int) -> None:
    """The `kubernetes` Service in `default`, on the first address of the service range."""
    from kybernetes.apiserver.endpoint_reconciler import desired_service
    from kybernetes.apiserver.objects import object_key
    from kybernetes.apiserver.rest import prepare_new_meta
    from kybernetes.storage.interface import KeyExistsError

    s = catalog.lookup("", "v1", "services")
    key = object_key(s, "default", "kubernetes")
    if await objects.store.get(key) is not None:
        return
    svc = desired_service(allocator.kubernetes_service_ip, port)  # the one the reconciler keeps
    prepare_new_meta(svc, s)
    s.default(svc)
    s.prepare_for_create(svc)
    claimed = await allocator.allocate(svc)
    try:
        await objects.store.create(key, objects.encode(key, svc))
    except KeyExistsError:
        await allocator.rollback(claimed)


async def bootstrap_namespaces(objects, catalog) -> None:
    """Create the system namespaces the first time the cluster starts."""
    from kybernetes.apiserver.objects import object_key
    from kybernetes.apiserver.rest import prepare_new_meta
    from kybernetes.storage.interface import KeyExistsError

    s = catalog.lookup("", "v1", "namespaces")
    for name in SYSTEM_NAMESPACES:
        key = object_key(s, "", name)
        if await objects.store.get(key) is not None:
            continue
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        prepare_new_meta(obj, s)
        s.default(obj)
        s.prepare_for_create(obj)
        s.default(obj)
        try:
            await objects.store.create(key, objects.encode(key, obj))
        except KeyExistsError:
            pass


class Server:
    """The control plane of one `kyb server` process."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir: Path = (args.data_dir or default_data_dir()).resolve()
        self.lock = DataDirLock(self.data_dir)
        self.runner: Optional[web.AppRunner] = None
        self.store = None
        self.objects = None
        self.url = ""
        self.controller_manager = None
        self.scheduler = None
        self.agent = None
        self.endpoint_reconciler = None

    async def start(self) -> None:
        from kybernetes.api.catalog import default_catalog
        from kybernetes.apiserver.app import APIServer, build_app
        from kybernetes.apiserver.objects import ObjectStore
        from kybernetes.auth import pki
        from kybernetes.client import kubeconfig
        from kybernetes.storage import open_store

        args = self.args
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lock.acquire()
        if args.leader_elect:  # the identity exists before the server reports ready
            from kybernetes.client.leaderelection import stable_identity

            await asyncio.to_thread(stable_identity, self.data_dir, args.node_name)
        sans_ip = ["127.0.0.1"]
        sans_dns = ["localhost", args.node_name]
        if args.bind_address not in ("0.0.0.0", "::", "127.0.0.1"):
            sans_ip.append(args.bind_address)
        await self._sync_cluster_identity(sans_dns, sans_ip)
        paths = await asyncio.to_thread(pki.ensure_pki, self.data_dir, sans_dns=sans_dns, sans_ip=sans_ip)

        transformer, self.encryption_reloader = await self._encryption(args)
        url = args.datastore_endpoint or f"sqlite://{self.data_dir / 'db' / 'state.db'}"
        if url.startswith("sqlite://"):
            (Path(url[len("sqlite://"):]).parent).mkdir(parents=True, exist_ok=True)
        self.store = open_store(url)
        await self.store.start()
        self.objects = ObjectStore(self.store, transformer)
        catalog = default_catalog()
        await bootstrap_namespaces(self.objects, catalog)

        host = args.bind_address
        port = args.https_port
        client_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        api = APIServer(catalog, self.objects, server_address=f"{client_host}:{port}")
        await bootstrap_kubernetes_service(self.objects, catalog, api.handlers.services, port or 6443)
        sec = await self._security(api, paths)
        # every watch cache starts before the first request, after the bootstrap writes
        await self.objects.start_caches(catalog.strategies)
        self._add_datastore_checks(api)
        self._add_kms_checks(api, transformer)
        app = build_app(api)
        app["security"] = sec
        from kybernetes.apiserver.kubelet_proxy import client_ssl_context
        app["kubelet_client_ssl"] = await asyncio.to_thread(client_ssl_context, paths.dir)
        from kybernetes.apiserver import audit
        self.audit = await audit.setup(app, args)

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(paths.serving_cert, paths.serving_key)
        ctx.load_verify_locations(paths.ca_cert)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        # handler_cancellation ends a watch as soon as its client goes away
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1,
                                    handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=ctx, reuse_address=True, backlog=1024)
        await site.start()
        if port == 0:
            port = self.runner.addresses[0][1]
        self.url = f"https://{client_host}:{port}"

        kc_path = self.data_dir / "admin.kubeconfig"
        await asyncio.to_thread(kubeconfig.write_admin_kubeconfig, kc_path, self.url,
                                paths.ca_cert.read_bytes(), paths.admin_cert.read_bytes(), paths.admin_key.read_bytes())
        if args.write_kubeconfig:
            await asyncio.to_thread(kubeconfig.write_admin_kubeconfig, args.write_kubeconfig, self.url,
                                    paths.ca_cert.read_bytes(), paths.admin_cert.read_bytes(), paths.admin_key.read_bytes())
        # the components run as their own identities, never as system:masters
        cm_kc = await self._component_kubeconfig("controller-manager", pki.CONTROLLER_MANAGER_USER)
        sched_kc = await self._component_kubeconfig("scheduler", pki.SCHEDULER_USER)
        await self._start_endpoint_reconciler(kc_path, args.advertise_address or client_host, port,
                                              api.handlers.services.kubernetes_service_ip)
        if not args.disable_controllers:
            import functools

            from kybernetes.client.leaderelection import parse_duration
            from kybernetes.auth.serviceaccount_tokens import LEGACY_ISSUER, TokenIssuer
            from kybernetes.controllers.csrsigning import CSRSigningController
            from kybernetes.controllers.sa_tokens import TokensController
            from kybernetes.controllers.manager import default_controllers, start_controller_manager

            ca = await asyncio.to_thread(pki.load_ca, self.data_dir)
            try:
                grace = parse_duration(args.node_monitor_grace_period)
            except ValueError as e:
                raise SystemExit(f"kyb server: --node-monitor-grace-period: {e}") from None
            controllers = default_controllers(root_ca=paths.ca_cert.read_bytes(), node_monitor_grace_period=grace,
                                              cluster_cidr=args.cluster_cidr,
                                              node_cidr_mask_size=args.node_cidr_mask_size or None) + [
                functools.partial(CSRSigningController, ca=ca, duration=self._signing_duration()),
                functools.partial(TokensController, issuer=await asyncio.to_thread(
                    TokenIssuer.from_file, self._service_account_keys(paths)[0], LEGACY_ISSUER),
                                  root_ca=paths.ca_cert.read_bytes())]
            if args.leader_elect:
                self.controller_manager = await self._elected_controller_manager(cm_kc, controllers)
            else:
                self.controller_manager = await start_controller_manager(cm_kc, controllers=controllers,
                                                                         service_account_credentials=True)
        if not getattr(args, "disable_scheduler", False):
            from kybernetes.scheduler import start_scheduler

            if args.leader_elect:
                self.scheduler = await self._elected_scheduler(sched_kc)
            else:
                self.scheduler = await start_scheduler(sched_kc)
        if not args.disable_agent:
            from kybernetes.kubelet.containerd import agent_dir

            kubelet_kc = await self._component_kubeconfig(
                "kubelet", pki.node_user(args.node_name), [pki.NODES_GROUP],
                path=agent_dir(self.data_dir) / "kubelet.kubeconfig")
            await self._start_agent(kubelet_kc)
        print(f"kyb server: serving {self.url}", flush=True)
        print(f"kyb server: admin kubeconfig written to {kc_path}", flush=True)
        print(f"kyb server: try `kyb kubectl --data-dir {self.data_dir} get namespaces` "
              f"or `KUBECONFIG={kc_path} kubectl get ns`", flush=True)

    def _signing_duration(self):
        import datetime as _dt

        from kybernetes.client.leaderelection import parse_duration

        try:
            seconds = parse_duration(getattr(self.args, "cluster_signing_duration", "8760h"))
        except ValueError as e:
            raise SystemExit(f"kyb server: --cluster-signing-duration: {e}") from None
        if seconds <= 0:
            raise SystemExit("kyb server: --cluster-signing-duration must be positive")
        return _dt.timedelta(seconds=seconds)

    async def _component_kubeconfig(self, name: str, user: str, groups: Optional[list[str]] = None, *,
                                    path: Optional[Path] = None) -> Path:
        """A client cert for `user` from the cluster CA and a kubeconfig using it
        (DATA/<name>.kubeconfig unless `path`)."""
        from kybernetes.auth import pki
        from kybernetes.client import kubeconfig

        cert, key = await asyncio.to_thread(pki.ensure_client_cert, self.data_dir, name, user, groups or [])
        path = path or self.data_dir / f"{name}.kubeconfig"
        tls = pki.PKIPaths.under(self.data_dir)
        await asyncio.to_thread(kubeconfig.write_admin_kubeconfig, path, self.url, tls.ca_cert.read_bytes(),
                                cert.read_bytes(), key.read_bytes(), user=name)
        return path

    async def _sync_cluster_identity(self, sans_dns: list[str], sans_ip: list[str]) -> None:
        """On a shared datastore (etcd): load the cluster's CA and service-account key
        from it, or store ours sealed with the token if we are the first server.

        Without --token the server uses the token it generated before (DATA_DIR/token);
        on a datastore that holds no identity yet it generates one there (as k3s does).
        It refuses to start when the datastore already holds an identity and it has no
        token: it could neither read the cluster's CA nor issue credentials the other
        servers accept."""
        from kybernetes.auth import cluster_identity
        from kybernetes.storage import open_store

        url = self.args.datastore_endpoint
        if not url or not cluster_identity.shared_datastore(url):
            return
        token = self.args.token or cluster_identity.read_local_token(self.data_dir)
        store = open_store(url)
        await store.start()
        try:
            generated = False
            if not token:
                if await cluster_identity.sealed_identity_exists(store):
                    raise SystemExit(
                        "kyb server: the datastore already holds a cluster identity sealed with a token, and no "
                        "--token was given; start this server with the cluster's --token (the first server "
                        "keeps it in its data dir, file 'token')")
                token, generated = cluster_identity.new_token(), True
            how = await cluster_identity.sync_identity(store, self.data_dir, token,
                                                       sans_dns=sans_dns, sans_ip=sans_ip)
        except cluster_identity.BootstrapError as e:
            raise SystemExit(f"kyb server: {e}") from None
        finally:
            await store.close()
        if generated:
            path = await asyncio.to_thread(cluster_identity.write_local_token, self.data_dir, token)
            print(f"kyb server: no --token given: generated the cluster token in {path}; start other "
                  "servers on this datastore with --token set to its content", flush=True)
        print(f"kyb server: cluster identity {how} ({'shared CA from the datastore' if how == 'loaded' else 'first server'})",
              flush=True)

    async def _encryption(self, args):
        """The ObjectStore transformer hook for --encryption-provider-config, and the
        reloader when --encryption-provider-config-automatic-reload is on (else None)."""
        from kybernetes.storage.encryption import transformer_from_file
        from kybernetes.storage.encryption_reload import automatic_reload

        path = args.encryption_provider_config
        try:  # a bad encryption config must stop the server before it touches the data
            if path and getattr(args, "encryption_provider_config_automatic_reload", False):
                dynamic, reloader = await asyncio.to_thread(
                    automatic_reload, path, interval=args.encryption_provider_config_reload_interval,
                    apiserver_id=f"kube-apiserver-{args.node_name}")
                reloader.start()
                from kybernetes.apiserver import metrics_sources

                metrics_sources.register(reloader, "encryption-reload")
                return dynamic.hook(), reloader
            return await asyncio.to_thread(transformer_from_file, path), None
        except (OSError, ValueError) as e:
            raise SystemExit(f"kyb server: --encryption-provider-config: {e}") from None

    def _lease_elector(self, client, name: str):
        from kybernetes.client.leaderelection import LeaseElector, LeaseLock, parse_duration, stable_identity

        a = self.args
        try:
            return LeaseElector(LeaseLock(client, name), stable_identity(self.data_dir, a.node_name),
                                lease_duration=parse_duration(a.leader_elect_lease_duration),
                                renew_deadline=parse_duration(a.leader_elect_renew_deadline),
                                retry_period=parse_duration(a.leader_elect_retry_period))
        except ValueError as e:
            raise SystemExit(f"kyb server: {e}") from None

    def _service_account_keys(self, paths) -> tuple[Path, list[Path]]:
        """The service-account signing key and the files of verifying keys: the flags when
        given (upstream --service-account-signing-key-file / --service-account-key-file),
        else the generated pair under DATA/tls."""
        key = Path(self.args.service_account_signing_key_file) if self.args.service_account_signing_key_file \
            else paths.sa_key
        pubs = [Path(f) for f in self.args.service_account_key_file] or \
            ([key] if self.args.service_account_signing_key_file else [paths.sa_pub])
        return key, pubs

    async def _elected_controller_manager(self, kc_path: Path, controllers):
        """The controller manager under the `kube-controller-manager` Lease; waits for the
        first round of the election (so a sole server's controllers run before it reports
        ready, as without election) but not for leadership."""
        from kybernetes.client.rest import Client
        from kybernetes.controllers.clientbuilder import SAClientBuilder
        from kybernetes.controllers.manager import ControllerManager

        client = Client.from_kubeconfig(kc_path)
        elector = self._lease_elector(client, "kube-controller-manager")
        manager = ControllerManager(client, controllers, leader_elector=elector, close_client=True,
                                    client_builder=SAClientBuilder(kc_path, client))
        await manager.start(wait_leading=False)
        try:
            await asyncio.wait_for(elector.settled.wait(), 60)
        except asyncio.TimeoutError:
            pass
        return manager

    async def _elected_scheduler(self, kc_path: Path):
        """The scheduler under the `kube-scheduler` Lease (a fresh one per term)."""
        from kybernetes.client.leaderelection import ElectedComponent
        from kybernetes.client.rest import Client
        from kybernetes.scheduler import start_scheduler

        client = Client.from_kubeconfig(kc_path)
        elector = self._lease_elector(client, "kube-scheduler")
        sched = ElectedComponent(elector, lambda: start_scheduler(kc_path), cleanup=client.close, name="scheduler")
        await sched.start()
        try:
            await asyncio.wait_for(elector.settled.wait(), 60)
        except asyncio.TimeoutError:
            pass
        return sched

    async def _security(self, api, paths):
        """Authenticators, the authorizer chain and the RBAC bootstrap policy."""
        from kybernetes.admission import certificates as certificates_admission
        from kybernetes.admission import chain as admission_chain
        from kybernetes.admission import noderestriction
        from kybernetes.apiserver import security
        from kybernetes.apiserver.reviews import Reviews
        from kybernetes.auth.authorizer import as_rules_check
        from kybernetes.auth.tokens import as_token_check

        args = self.args
        await security.reconcile_bootstrap_policy(self.objects)
        await security.ensure_kubelet_bootstrap_bindings(self.objects)
        sa_key, sa_pubs = self._service_account_keys(paths)
        sec = await security.build(self.objects, sa_key=sa_key, sa_pub=sa_pubs,
                                   authorization_mode=args.authorization_mode,
                                   token_auth_file=args.token_auth_file, issuer=args.service_account_issuer,
                                   anonymous=args.anonymous_auth)
        api.authorizer = sec.access
        api.handlers.reviews = Reviews(access=sec.access, tokens=as_token_check(sec.tokens),
                                       rules=as_rules_check(sec.chain))
        api.handlers.validating.append(security.escalation_admission(sec))
        api.handlers.validating.append(certificates_admission.admission(sec.chain))
        await admission_chain.install(api.handlers, objects=self.objects, args=args)
        api.handlers.validating.append(noderestriction.admission(self.objects))
        return sec

    def _add_datastore_checks(self, api) -> None:
        """/readyz checks of the datastore.  On etcd, upstream's pair (`etcd`,
        `etcd-readiness`): one short-deadline read shared by both, at most once a second,
        so /readyz fails within ~2 s while etcd is down instead of waiting out retries."""
        from kybernetes.apiserver.healthz import RateLimitedCheck

        probe = getattr(self.store, "check_health", None)
        if probe is None:
            api.ready_checks["datastore"] = self._datastore_ok
            return
        check = RateLimitedCheck(lambda: probe(timeout=2.0), interval=1.0)
        api.ready_checks["etcd"] = check
        api.ready_checks["etcd-readiness"] = check

    def _add_kms_checks(self, api, transformer) -> None:
        """/readyz checks of KMS v2 plugins, named as upstream: one `kms-providers` check
        over the current set when the config reloads, else `kms-provider-<i>` each."""
        from kybernetes.apiserver.healthz import RateLimitedCheck

        owner = getattr(transformer[0], "__self__", None) if transformer else None
        if owner is None or not owner.kms_providers():
            return

        def probe(select):
            async def check() -> None:
                for kms in select():
                    await asyncio.to_thread(kms.check_health)
            return RateLimitedCheck(check, interval=1.0)

        if self.encryption_reloader is not None:
            api.ready_checks["kms-providers"] = probe(owner.kms_providers)
        else:
            for i, kms in enumerate(owner.kms_providers()):
                api.ready_checks[f"kms-provider-{i}"] = probe(lambda k=kms: [k])

    async def _start_endpoint_reconciler(self, kc_path: Path, ip: str, port: int, service_ip: str) -> None:
        """Publish this server behind default/kubernetes (the Service, its Endpoints and EndpointSlice)."""
        from kybernetes.apiserver.endpoint_reconciler import EndpointReconciler
        from kybernetes.client import Client

        try:
            reconciler = EndpointReconciler(self.store, Client.from_kubeconfig(kc_path), ip, port,
                                            service_ip=service_ip)
        except ValueError:
            log.warning("--advertise-address %r is not an IP address: default/kubernetes gets no endpoints", ip)
            return
        self.endpoint_reconciler = reconciler
        await reconciler.start()

    async def _datastore_ok(self) -> bool:
        await self.store.current_revision()
        return True

    async def _start_agent(self, kc_path: Path) -> None:
        from kybernetes.cli.agent import kubelet_options, start_node_agent
        from kybernetes.client import Client

        try:
            from kybernetes.auth.pki import PKIPaths
            from kybernetes.kubelet.server.app import ca_issued_cert

            tls = PKIPaths.under(self.data_dir)
            self.agent = await start_node_agent(Client.from_kubeconfig(kc_path), node_name=self.args.node_name,
                                                data_dir=self.data_dir, client_ca=tls.ca_cert,
                                                cert_source=ca_issued_cert(tls.dir, self.data_dir / "agent" / "tls",
                                                                           self.args.node_name),
                                                **kubelet_options(self.args))
        except Exception as e:  # the control plane keeps serving without a node
            log.error("node agent did not start (run with --disable-agent to skip it): %s", e)

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.controller_manager is not None:
            await self.controller_manager.stop()
        if self.endpoint_reconciler is not None:
            await self.endpoint_reconciler.stop()
            await self.endpoint_reconciler.client.close()
        if self.runner is not None:
            await self.runner.cleanup()
        from kybernetes.admission.webhooks import client as webhook_client

        await webhook_client.close()  # the pooled connections to admission webhooks
        if getattr(self, "audit", None) is not None:
            await self.audit.shutdown()
        if getattr(self, "encryption_reloader", None) is not None:
            await self.encryption_reloader.stop()
        if self.objects is not None:
            await self.objects.close()
        if self.store is not None:
            await self.store.close()
        self.lock.release()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        pass

    async def main() -> None:
        server = Server(args)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await server.start()
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(main())
    return 0
