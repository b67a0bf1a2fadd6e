"""The kubelet's HTTPS API (port 10250 by default): /healthz (and /healthz/ping, /log,
/syncloop), /pods, /runningpods/, /containerLogs, /exec, /attach, /portForward,
/stats/summary, /metrics, /metrics/probes, /metrics/resource, /configz, /spec/ and the
node's log directory under /logs/.  Callers present a client certificate from the cluster CA
(or a bearer token, checked by TokenReview) and each request is authorized with a
SubjectAccessReview, as upstream's webhook mode does.

The serving certificate comes from a `CertSource` (a callable giving cert and key
files): CA-issued, static files, or the newest certificate from a kubelet-serving CSR
(`csr_cert_source`).  The server re-reads the source every `cert_check_interval` seconds
(and on `reload_certificate()`) and new connections get a renewed certificate at once;
without any certificate yet, handshakes fail until one arrives (as upstream).

    srv = KubeletServer(kubelet, cert_source=static_cert(crt, key), client_ca=ca_file, port=10250)
    await srv.start(); ...; await srv.stop()
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Callable, Optional

import orjson
from aiohttp import web

from kybernetes.auth.tokens import bearer_token
from kybernetes.cri import CRIError, pb
from kybernetes.kubelet import stats
from kybernetes.kubelet.pod_workers import L_CONTAINER, L_UID
from kybernetes.kubelet.prober.netns import sandbox_netns
from kybernetes.kubelet.server import auth, configz, logs, logs_endpoint, metrics_endpoint, runningpods, spec, \
    streams, wschannel

log = logging.getLogger("kybernetes.kubelet.server")

CertSource = Callable[[], tuple[Path, Path]]
HEALTH_CHECKS = ("ping", "log", "syncloop")  # the named checks upstream's /healthz runs
DEFAULT_PORT = 10250


def static_cert(cert: Path, key: Path) -> CertSource:
    """A serving certificate kept in two files."""
    return lambda: (Path(cert), Path(key))


def ca_issued_cert(ca_dir: Path, out_dir: Path, node_name: str, ips: Optional[list[str]] = None) -> CertSource:
    """A serving certificate issued directly by the cluster CA (its key in `ca_dir`), for
    a kubelet running next to the control plane; written once under `out_dir`.  `ips`
    default to the node's address and 127.0.0.1."""
    def source() -> tuple[Path, Path]:
        from kybernetes.auth import pki
        from kybernetes.kubelet.node_status import host_ip

        crt, key = Path(out_dir) / "kubelet.crt", Path(out_dir) / "kubelet.key"
        if not (crt.exists() and key.exists()):
            ca = pki.load_ca(Path(ca_dir).parent)
            sans = sorted(set((ips if ips is not None else [host_ip()]) + ["127.0.0.1"]))
            cert_pem, key_pem = pki.issue_serving_cert(ca, node_name, [node_name, "localhost"], sans)
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            pki.write_atomic(key, key_pem, 0o600)
            pki.write_atomic(crt, cert_pem, 0o644)
        return crt, key
    return source


def csr_cert_source(pki_dir: Path, fallback: Optional[CertSource] = None) -> CertSource:
    """The newest serving certificate from a CSR, `<pki_dir>/kubelet-server-current.pem`
    (certificate and key in one file, see kubelet.certificate); `fallback` until there is
    one, or FileNotFoundError."""
    def source() -> tuple[Path, Path]:
        cur = Path(pki_dir) / "kubelet-server-current.pem"
        if cur.exists():
            return cur, cur
        if fallback is not None:
            return fallback()
        raise FileNotFoundError(f"no kubelet serving certificate yet ({cur})")
    return source


def _identity(cert: Path, key: Path) -> tuple:
    """What changes when a certificate file is replaced (the symlink target, its mtime)."""
    out = []
    for p in (cert, key):
        st = Path(p).stat()
        out.append((str(Path(p).resolve()), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket" and \
        "upgrade" in request.headers.get("Connection", "").lower()


def _websocket(request: web.Request, supported: list[str]) -> tuple[web.StreamResponse, str]:
    """(WebSocket, subprotocol) answering with the subprotocol upstream's wsstream would
    pick (the client's first supported one; none offered means "", the plain binary
    protocol), or (the 403 refusal, "") when nothing fits."""
    offered = wschannel.offered(request.headers.getall("Sec-WebSocket-Protocol", []))
    proto = wschannel.negotiate(offered, supported)
    if proto is None:
        return _text(403, wschannel.refusal(offered, supported)), ""
    return web.WebSocketResponse(protocols=[proto] if proto else [], autoping=True, compress=False,
                                 max_msg_size=0), proto


def _flag(q, name: str) -> bool:
    return q.get(name, "").lower() in ("1", "true")


class KubeletServer:
    def __init__(self, kubelet, *, cert_source: CertSource, client_ca: Path, address: str = "0.0.0.0",
                 port: int = DEFAULT_PORT, runtime_netns: Optional[str] = None, cert_check_interval: float = 10.0,
                 log_dir: Path = Path("/var/log")):
        """`log_dir` is the node's log directory served under /logs/."""
        self.kl = kubelet
        self.log_dir = Path(log_dir)
        self.metrics = metrics_endpoint.KubeletMetrics(kubelet.node_name).attach(kubelet)
        self.cert_source, self.client_ca = cert_source, Path(client_ca)
        self.address, self.port = address, port
        self.runtime_netns = runtime_netns
        self.authn = auth.Authenticator(kubelet.client)
        self.authz = auth.Authorizer(kubelet.client, kubelet.node_name)
        self.runner: Optional[web.AppRunner] = None
        self.cert_check_interval = cert_check_interval
        self._ctx: Optional[ssl.SSLContext] = None
        self._loaded: Optional[tuple] = None  # identity of the certificate files in use
        self._watch: Optional[asyncio.Task] = None

    # ------------------------------------------------------------ life cycle

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_verify_locations(self.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        self._ctx = ctx
        try:
            self._load_certificate()
        except FileNotFoundError as e:
            log.warning("kubelet server starts without a serving certificate: %s", e)
        return ctx

    def _load_certificate(self) -> bool:
        """(Re)load the source's certificate into the live context if it changed; later
        handshakes use it (the context is shared, connections made before keep theirs)."""
        cert, key = self.cert_source()
        ident = _identity(cert, key)
        if ident == self._loaded or self._ctx is None:
            return False
        self._ctx.load_cert_chain(cert, key)
        self._loaded = ident
        return True

    async def reload_certificate(self) -> bool:
        """Pick up a new serving certificate now; True when it changed."""
        try:
            changed = await asyncio.to_thread(self._load_certificate)
        except (OSError, ssl.SSLError) as e:  # a half-written or missing pair: keep the old one
            log.warning("kubelet serving certificate not reloaded: %s", e)
            return False
        if changed:
            log.info("kubelet server: serving certificate loaded")
        return changed

    async def _watch_certificate(self) -> None:
        while True:
            await asyncio.sleep(self.cert_check_interval)
            await self.reload_certificate()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        r = app.router
        r.add_get("/healthz", self.healthz)
        for check in HEALTH_CHECKS:
            r.add_get(f"/healthz/{check}", self.healthz_check)
        r.add_get("/pods", self.pods)
        r.add_get("/runningpods", self.running_pods)
        r.add_get("/runningpods/", self.running_pods)
        r.add_get("/configz", self.configz)
        r.add_get("/metrics", self.metrics_kubelet)
        r.add_get("/metrics/probes", self.metrics_probes)
        r.add_get("/spec", self.spec)
        r.add_get("/spec/", self.spec)
        r.add_get("/logs", self.logs)
        r.add_get("/logs/{tail:.*}", self.logs)
        r.add_get("/containerLogs/{ns}/{pod}/{container}", self.container_logs)
        for verb in ("exec", "attach"):
            r.add_route("*", "/%s/{ns}/{pod}/{container}" % verb, self.remotecommand)
            r.add_route("*", "/%s/{ns}/{pod}/{uid}/{container}" % verb, self.remotecommand)
        r.add_route("*", "/portForward/{ns}/{pod}", self.portforward)
        r.add_route("*", "/portForward/{ns}/{pod}/{uid}", self.portforward)
        r.add_get("/stats/summary", self.stats_summary)
        r.add_get("/metrics/resource", self.metrics_resource)
        return app

    async def start(self) -> int:
        ctx = self.ssl_context()
        self.runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1,
                                    handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.address, self.port, ssl_context=ctx, reuse_address=True)
        await site.start()
        self.port = self.runner.addresses[0][1]
        self._watch = asyncio.ensure_future(self._watch_certificate())
        log.info("kubelet server on %s:%d", self.address, self.port)
        return self.port

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # ------------------------------------------------------------ authn/authz

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        user = None
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        if cert:
            user = auth.user_from_cert(cert)
        if user is None:
            token, _ = bearer_token(request.headers.get("Authorization"))
            if token:
                user = await self.authn.token(token)
        if user is None:
            return _text(401, "Unauthorized")
        verb, subs = auth.attributes(request.method, request.path)
        for sub in subs:
            if await self.authz.allowed(user, verb, sub):
                return await handler(request)
        return _text(403, f"Forbidden (user={user.name}, verb={verb}, resource=nodes, subresource={subs[-1]})")

    # ------------------------------------------------------------ lookups

    def find_pod(self, ns: str, name: str, uid: str = "") -> Optional[dict]:
        for p in self.kl.informer.list():
            m = p["metadata"]
            if m["namespace"] == ns and m["name"] == name and (not uid or m["uid"] == uid):
                return p
        return None

    async def containers(self, pod: dict, name: str) -> list:
        """The runtime's instances of one container of a pod, newest attempt first."""
        cs = await self.kl.cri.list_containers(labels={L_UID: pod["metadata"]["uid"], L_CONTAINER: name})
        return sorted(cs, key=lambda c: (c.metadata.attempt, c.created_at), reverse=True)

    # ------------------------------------------------------------ handlers

    def _health(self) -> dict[str, Optional[str]]:
        """Each named check's error, None when it passes (upstream: ping and log always
        pass; syncloop once the sync loop runs)."""
        return {"ping": None, "log": None,
                "syncloop": None if self.kl.started else "sync Loop took longer than expected"}

    async def healthz(self, request: web.Request) -> web.Response:
        """"ok", or every check with its verdict when asked (?verbose) or when one fails."""
        checks = self._health()
        failed = any(err is not None for err in checks.values())
        if not failed and "verbose" not in request.query:
            return _text(200, "ok")
        lines = [f"[+]{name} ok" if err is None else f"[-]{name} failed: reason withheld"
                 for name, err in checks.items()]
        lines.append("healthz check failed" if failed else "healthz check passed")
        return _text(500 if failed else 200, "\n".join(lines) + "\n")

    async def healthz_check(self, request: web.Request) -> web.Response:
        """One named check of /healthz."""
        err = self._health()[request.path.rsplit("/", 1)[-1]]
        if err is not None:
            return _text(500, f"internal server error: {err}\n")
        return _text(200, "ok")

    async def running_pods(self, request: web.Request) -> web.Response:
        try:
            body = await runningpods.running_pods(self.kl.cri)
        except CRIError as e:
            return _text(500, f"Internal Error: {e}")
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def configz(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(configz.kubelet_config(self.kl, self)), content_type="application/json")

    async def spec(self, request: web.Request) -> web.Response:
        """The machine description (cAdvisor MachineInfo)."""
        return web.Response(body=orjson.dumps(await asyncio.to_thread(spec.machine_info)),
                            content_type="application/json")

    async def metrics_kubelet(self, request: web.Request) -> web.Response:
        return web.Response(body=await self.metrics.render(),
                            headers={"Content-Type": metrics_endpoint.CONTENT_TYPE})

    async def metrics_probes(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render_probes(), headers={"Content-Type": metrics_endpoint.CONTENT_TYPE})

    async def logs(self, request: web.Request) -> web.StreamResponse:
        """The node's log directory (Go's http.FileServer behaviour).  Upstream strips the
        prefix "/logs/", so a bare /logs is not found."""
        if request.path == "/logs":
            return _text(404, logs_endpoint.NOT_FOUND)
        return await logs_endpoint.serve(request, self.log_dir, request.match_info.get("tail", ""))

    async def pods(self, request: web.Request) -> web.Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.kl.informer.list()}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def stats_summary(self, request: web.Request) -> web.Response:
        """The Summary API (statsapi/v1alpha1); `only_cpu_and_memory=true` keeps just the
        CPU and memory figures, as upstream's cheaper variant does."""
        try:
            body = await self.kl.stats.summary()
        except Exception as e:  # noqa: BLE001 - upstream answers 500 with the error text
            log.warning("stats summary: %s", e)
            return _text(500, f"Internal Error: failed to get summary stats: {e}")
        if _flag(request.query, "only_cpu_and_memory"):
            body = stats.cpu_and_memory_only(body)
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def metrics_resource(self, request: web.Request) -> web.Response:
        text = await self.kl.stats.resource_metrics()
        return web.Response(body=text.encode(), headers={"Content-Type": stats.RESOURCE_METRICS_CONTENT_TYPE})

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, name, cname = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        try:
            opts = logs.LogOptions.from_query(request.query)
        except ValueError as e:
            return _text(400, str(e))
        pod = self.find_pod(ns, name)
        if pod is None:
            return _text(404, f'pod "{name}" does not exist\n')
        spec_names = [c["name"] for key in ("initContainers", "containers", "ephemeralContainers")
                      for c in (pod["spec"].get(key) or [])]
        if cname not in spec_names:
            return _text(404, f'container "{cname}" in pod "{name}" is not available\n')
        instances = await self.containers(pod, cname)
        if opts.previous:
            if len(instances) < 2:
                return _text(400, f'previous terminated container "{cname}" in pod "{name}" not found')
            inst = instances[1]
        elif instances:
            inst = instances[0]
        else:
            return _text(400, f'container "{cname}" in pod "{name}" is waiting to start: ContainerCreating')
        st = (await self.kl.cri.container_status(inst.id)).status
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)

        async def running() -> bool:
            if opts.previous:
                return False
            try:
                return (await self.kl.cri.container_status(inst.id)).status.state == pb.CONTAINER_RUNNING
            except CRIError:
                return False

        try:
            await logs.stream_log(st.log_path, opts, resp.write, running)
        except FileNotFoundError:
            pass
        await resp.write_eof()
        return resp

    async def remotecommand(self, request: web.Request) -> web.StreamResponse:
        verb = request.path.split("/")[1]
        ns, name, cname = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        q = request.query
        if not _is_websocket(request):
            return _text(400, "Upgrade request required")
        stdin, stdout, stderr, tty = (_flag(q, "stdin"), _flag(q, "stdout"), _flag(q, "stderr"), _flag(q, "tty"))
        stderr = stderr and not tty  # a terminal has no separate stderr (upstream drops it too)
        if not (stdin or stdout or stderr):
            return _text(400, "you must specify at least 1 of stdin, stdout, stderr")
        pod = self.find_pod(ns, name, request.match_info.get("uid", ""))
        if pod is None:
            return _text(404, f'pod "{name}" does not exist')
        instances = [c for c in await self.containers(pod, cname) if c.state == pb.CONTAINER_RUNNING]
        if not instances:
            return _text(404, f'container not found ("{cname}")')
        ws, proto = _websocket(request, streams.CHANNEL_PROTOCOLS)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        try:
            if verb == "exec":
                cmd = q.getall("command", [])
                if not cmd:
                    return _text(400, "you must specify at least 1 command")
                url = await self.kl.cri.exec(instances[0].id, cmd, tty=tty, stdin=stdin, stdout=stdout,
                                             stderr=stderr)
            else:
                url = await self.kl.cri.attach(instances[0].id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr)
        except CRIError as e:
            return _text(500, str(e))
        await ws.prepare(request)
        codec = wschannel.ChannelCodec(proto)
        await streams.send_message(ws, streams.first_message(codec, stdout=stdout, stderr=stderr))
        try:
            await streams.relay_remotecommand(ws, url, self.runtime_netns, stdin=stdin, stdout=stdout,
                                              stderr=stderr, tty=tty)
        except (streams.UpgradeError, OSError) as e:
            log.warning("%s %s/%s: %s", verb, ns, name, e)
            if not ws.closed:
                status = {"metadata": {}, "status": "Failure", "message": str(e), "reason": "InternalError",
                          "code": 500}
                await streams.send_status(ws, codec, orjson.dumps(status))
                await ws.close()
        return ws

    async def portforward(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        if not _is_websocket(request):
            return _text(400, "Upgrade request required")
        pod = self.find_pod(ns, name, request.match_info.get("uid", ""))
        if pod is None:
            return _text(404, f'pod "{name}" does not exist')
        ws, proto = _websocket(request, streams.PORTFORWARD_PROTOCOLS)
        if not isinstance(ws, web.WebSocketResponse):
            return ws
        tunnel = proto == wschannel.PORTFORWARD_TUNNEL
        ports: list[int] = []
        if not tunnel:
            try:
                ports = wschannel.parse_ports(request.query.getall("port", []))
            except ValueError as e:
                return _text(400, str(e))
        sandboxes = await self.kl.cri.list_pod_sandbox(labels={L_UID: pod["metadata"]["uid"]},
                                                       state=pb.SANDBOX_READY)
        if not sandboxes:
            return _text(404, f'pod "{name}" has no running sandbox')
        netns = sandbox_netns(await self.kl.cri.pod_sandbox_status(sandboxes[0].id, verbose=True))
        desc = f"{sandboxes[0].id}, uid {pod['metadata']['uid']}"
        await ws.prepare(request)
        if tunnel:
            await streams.serve_portforward(ws, netns, desc)
        else:
            await streams.serve_portforward_channels(ws, netns, ports, desc)
        return ws
