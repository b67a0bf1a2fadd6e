"""Run containerd as a child of the node agent, k3s-style.

    async with ContainerdProcess(data_dir) as rt:
        async with CRIClient(rt.endpoint) as cri:
            ...

ContainerdProcess writes a containerd config under `data_dir` (its own root, state,
socket, `opt` plugin path, runc root, CNI dirs, registry hosts, sandbox image),
starts containerd, waits until the CRI answers Status, makes sure the sandbox
(pause) image is there and imports any archives dropped into `data_dir/images/`.
stop() removes the pods it ran (unless asked to keep them), terminates containerd
by PID and reaps it, kills shims of that containerd left behind and unmounts
anything left under the data dir.  Nothing is written to /etc or /opt; containerd
1.6 itself still keeps its shim sockets in /run/containerd/s/.

ExternalRuntime is the same interface for a CRI socket someone else runs
(`--container-runtime-endpoint`); container_runtime() picks one of the two.

Layout under data_dir:
    containerd/config.toml  containerd.sock  containerd.log  containerd.pid
    containerd/root/  state/  opt/  runc/  certs.d/<host>/hosts.toml  pause/
    cni/net.d/          (CNI config dir, unless cni_conf_dir is given)
    images/             (air-gapped image archives, imported at start)
    pods/               (suggested pod log root; the kubelet owns it)
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

from kybernetes.cri import CRIClient, CRIError, CRIUnimplemented, socket_path
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.images_import import import_archive, pending_archives
from kybernetes.kubelet.images_pause import PAUSE_IMAGE, build_pause_image

log = logging.getLogger("kybernetes.kubelet.containerd")

CNI_BIN_DIR = "/usr/lib/cni"
# Where `offline` points registries that must never be contacted: loopback, a port
# where nothing listens (discard), so a stray pull fails at once and stays on this host.
DEAD_REGISTRY = "http://127.0.0.1:9"
UNIX_PATH_MAX = 107

_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1


class ContainerdError(RuntimeError):
    pass


def agent_dir(data_dir: Union[str, os.PathLike]) -> Path:
    """The node agent's directory inside a kyb data dir (`kyb server`/`kyb agent` pass
    this to ContainerdProcess; `kyb images` looks for containerd there)."""
    return Path(data_dir) / "agent"


def _q(s: str) -> str:
    """A TOML basic string (JSON escapes are valid TOML escapes for these values)."""
    return json.dumps(str(s))


def _host_dir(host: str) -> str:
    # containerd's hosts dir naming: "host:port" lives in "host_port_" (or "host:port").
    if ":" in host and not host.startswith("["):
        h, _, port = host.rpartition(":")
        return f"{h}_{port}_"
    return host


class ContainerdProcess:
    """containerd as a supervised child process with a generated config.

    Options:
      sandbox_image        image containerd uses for pod sandboxes (default: our pause image)
      pause_archive        OCI archive to import when `sandbox_image` is missing; default:
                           build the pause image with gcc (only for the default sandbox_image)
      cni_bin_dir          CNI plugin binaries (Debian's containernetworking-plugins)
      cni_conf_dir         CNI config dir (default data_dir/cni/net.d); containerd reloads it
                           on file events, so write conflists there atomically
      insecure_registries  hosts ("127.0.0.1:5000") pulled over plain HTTP (TLS unverified)
      registry_mirrors     {"docker.io": ["http://127.0.0.1:5000"]}: tried instead of the host
      registry_auths       {"127.0.0.1:5001": {"username": .., "password": ..}} static credentials
                           (pulls with CRI AuthConfig do not need this)
      offline              point docker.io (the default registry) at a dead loopback port, so a
                           pull of an unqualified image name never leaves this host (tests)
      netns                path of a network namespace (/run/netns/X) to run containerd in; CNI
                           plugins then run there and bridges/routes live in that namespace
      import_dir           directory of image archives imported at start (default data_dir/images)
    """

    def __init__(
        self,
        data_dir: Union[str, os.PathLike],
        *,
        sandbox_image: str = PAUSE_IMAGE,
        pause_archive: Optional[Union[str, os.PathLike]] = None,
        cni_bin_dir: str = CNI_BIN_DIR,
        cni_conf_dir: Optional[Union[str, os.PathLike]] = None,
        insecure_registries: Iterable[str] = (),
        registry_mirrors: Optional[Mapping[str, Sequence[str]]] = None,
        registry_auths: Optional[Mapping[str, Mapping[str, str]]] = None,
        offline: bool = False,
        netns: Optional[Union[str, os.PathLike]] = None,
        import_dir: Optional[Union[str, os.PathLike]] = None,
        stream_server_address: str = "127.0.0.1",
        log_level: str = "info",
        containerd_bin: str = "containerd",
        ctr_bin: str = "ctr",
        runc_bin: str = "runc",
        start_timeout: float = 60.0,
        max_container_log_line_size: int = 16384,
    ):
        self.data_dir = Path(data_dir).absolute()
        self.dir = self.data_dir / "containerd"
        self.root = self.dir / "root"
        self.state = self.dir / "state"
        self.opt = self.dir / "opt"
        self.runc_root = self.dir / "runc"
        self.certs_dir = self.dir / "certs.d"
        self.config_path = self.dir / "config.toml"
        self.socket = self.dir / "containerd.sock"
        self.log_path = self.dir / "containerd.log"
        self.pid_path = self.dir / "containerd.pid"
        self.pause_cache = self.dir / "pause"
        self.cni_bin_dir = cni_bin_dir
        self.cni_conf_dir = Path(cni_conf_dir).absolute() if cni_conf_dir else self.data_dir / "cni" / "net.d"
        self.import_dir = Path(import_dir).absolute() if import_dir else self.data_dir / "images"
        self.pod_log_root = self.data_dir / "pods"
        self.sandbox_image = sandbox_image
        self.pause_archive = Path(pause_archive) if pause_archive else None
        self.insecure_registries = list(insecure_registries)
        self.registry_mirrors = {k: list(v) for k, v in (registry_mirrors or {}).items()}
        self.registry_auths = {k: dict(v) for k, v in (registry_auths or {}).items()}
        self.offline = offline
        self.netns = str(netns) if netns else None
        self.stream_server_address = stream_server_address
        self.log_level = log_level
        self.containerd_bin = containerd_bin
        self.ctr_bin = ctr_bin
        self.runc_bin = runc_bin
        self.start_timeout = start_timeout
        self.max_container_log_line_size = max_container_log_line_size
        self.proc: Optional[subprocess.Popen] = None
        self.version: str = ""
        self.imported: list[str] = []

    # ------------------------------------------------------------ identity

    @property
    def endpoint(self) -> str:
        return "unix://" + str(self.socket)

    @property
    def address(self) -> str:
        """containerd's own API address (same socket), for ctr."""
        return str(self.socket)

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    @property
    def owned(self) -> bool:
        return True

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kw) -> CRIClient:
        return CRIClient(self.endpoint, **kw)

    # ------------------------------------------------------------ config

    def _binary(self, name: str) -> str:
        exe = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
        if exe is None:
            raise ContainerdError(f"{name!r} not found; install the Debian packages containerd and runc (make deps)")
        return exe

    def render_config(self) -> str:
        runc = self._binary(self.runc_bin)
        cri = '[plugins."io.containerd.grpc.v1.cri"]'
        lines = [
            "# Generated by kybernetes (kybernetes/kubelet/containerd.py); rewritten at every start.",
            "version = 2",
            f"root = {_q(self.root)}",
            f"state = {_q(self.state)}",
            "oom_score = 0",
            # Snapshotters that cannot work here.  (The legacy v1 runtime cannot be
            # disabled in 1.6 — the tasks service needs it — so its root is moved below.)
            'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",'
            ' "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",'
            ' "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]',
            "",
            "[grpc]",
            f"  address = {_q(self.socket)}",
            "  uid = 0",
            "  gid = 0",
            "",
            "[ttrpc]",
            '  address = ""',
            "",
            "[debug]",
            '  address = ""',
            f"  level = {_q(self.log_level)}",
            "",
            "[metrics]",
            '  address = ""',
            "",
            '[plugins."io.containerd.internal.v1.opt"]',
            f"  path = {_q(self.opt)}",
            "",
            '[plugins."io.containerd.runtime.v1.linux"]',
            f"  runtime = {_q(runc)}",
            f"  runtime_root = {_q(self.runc_root / 'v1')}",
            "",
            cri,
            f"  sandbox_image = {_q(self.sandbox_image)}",
            # root lacks CAP_SYS_RESOURCE here: without this RunPodSandbox fails in runc.
            "  restrict_oom_score_adj = true",
            "  netns_mounts_under_state_dir = true",
            f"  stream_server_address = {_q(self.stream_server_address)}",
            '  stream_server_port = "0"',
            "  enable_selinux = false",
            f"  max_container_log_line_size = {int(self.max_container_log_line_size)}",
            "  enable_unprivileged_ports = false",
            "  enable_unprivileged_icmp = false",
            "",
            f"{cri[:-1]}.containerd]",
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            "  discard_unpacked_layers = false",
            "",
            f"{cri[:-1]}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            "",
            f"{cri[:-1]}.containerd.runtimes.runc.options]",
            f"  BinaryName = {_q(runc)}",
            f"  Root = {_q(self.runc_root)}",
            "  SystemdCgroup = false",
            "",
            f"{cri[:-1]}.cni]",
            f"  bin_dir = {_q(self.cni_bin_dir)}",
            f"  conf_dir = {_q(self.cni_conf_dir)}",
            "  max_conf_num = 1",
            "",
            f"{cri[:-1]}.registry]",
            f"  config_path = {_q(self.certs_dir)}",
        ]
        for host, auth in sorted(self.registry_auths.items()):
            lines += ["", f"{cri[:-1]}.registry.configs.{_q(host)}.auth]"]
            for k in ("username", "password", "auth", "identitytoken"):
                if auth.get(k):
                    lines.append(f"  {k} = {_q(auth[k])}")
        return "\n".join(lines) + "\n"

    def registry_hosts(self) -> dict[str, str]:
        """{host: hosts.toml text} for the registry config dir."""
        out: dict[str, str] = {}
        for host in self.insecure_registries:
            out[host] = (f'server = {_q("http://" + host)}\n\n'
                         f'[host.{_q("http://" + host)}]\n'
                         '  capabilities = ["pull", "resolve", "push"]\n'
                         "  skip_verify = true\n")
        for host, endpoints in self.registry_mirrors.items():
            text = out.get(host) or ""
            if not text:
                upstream = DEAD_REGISTRY if (self.offline and host == "docker.io") else (
                    "https://registry-1.docker.io" if host == "docker.io" else f"https://{host}")
                text = f"server = {_q(upstream)}\n"
            for ep in endpoints:
                text += (f"\n[host.{_q(ep)}]\n"
                         '  capabilities = ["pull", "resolve"]\n')
                if ep.startswith("http://"):
                    text += "  skip_verify = true\n"
            out[host] = text
        if self.offline and "docker.io" not in out:
            out["docker.io"] = (f"server = {_q(DEAD_REGISTRY)}\n\n[host.{_q(DEAD_REGISTRY)}]\n"
                                '  capabilities = ["pull", "resolve"]\n')
        return out

    def write_config(self) -> Path:
        if len(str(self.socket)) > UNIX_PATH_MAX:
            raise ContainerdError(f"socket path {self.socket} is longer than {UNIX_PATH_MAX} bytes; "
                                  "use a shorter data dir")
        for d in (self.dir, self.root, self.state, self.opt, self.runc_root, self.cni_conf_dir,
                  self.import_dir, self.pod_log_root):
            d.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o711)
        if self.certs_dir.exists():
            shutil.rmtree(self.certs_dir)
        for host, text in self.registry_hosts().items():
            d = self.certs_dir / _host_dir(host)
            d.mkdir(parents=True, exist_ok=True)
            (d / "hosts.toml").write_text(text)
        self.certs_dir.mkdir(exist_ok=True)
        tmp = self.config_path.with_suffix(".toml.tmp")
        tmp.write_text(self.render_config())
        tmp.chmod(0o600)
        os.replace(tmp, self.config_path)
        return self.config_path

    # ------------------------------------------------------------ start

    def _stale_pid(self) -> Optional[int]:
        """A containerd left running on our config by an earlier agent that died."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        argv = cleanup._cmdline(pid)
        if argv and os.path.basename(argv[0]) == "containerd" and str(self.config_path) in argv:
            return pid
        return None

    def _preexec_fn(self, netns_fd: int):
        """The child-side setup (after fork, before exec).  Everything it needs is
        resolved here in the parent, so the child only makes three system calls: the
        agent has other threads (gRPC), and a forked child must not take their locks."""
        libc = ctypes.CDLL(None, use_errno=True)
        prctl, setns, setsid = libc.prctl, libc.setns, os.setsid
        sigterm = int(signal.SIGTERM)

        def preexec() -> None:
            setsid()
            # containerd gets SIGTERM if the agent dies without stopping it.  (This is tied to
            # the forking thread: start() must run on the event loop's thread, not a worker.)
            prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
            if netns_fd >= 0 and setns(netns_fd, _CLONE_NEWNET) != 0:
                os._exit(121)

        return preexec

    async def start(self) -> "ContainerdProcess":
        if self.running():
            return self
        exe = self._binary(self.containerd_bin)
        self.write_config()
        stale = self._stale_pid()
        if stale is not None:
            log.warning("stopping containerd pid %d left over on %s", stale, self.config_path)
            cleanup.kill_pids([stale], signal.SIGTERM)
            if cleanup.wait_gone([stale], 10.0):
                cleanup.kill_pids([stale])
                cleanup.wait_gone([stale], 5.0)
        if self.socket.exists() or self.socket.is_symlink():
            self.socket.unlink()
        if self.netns and not os.path.exists(self.netns):
            raise ContainerdError(f"network namespace {self.netns} does not exist")
        logf = open(self.log_path, "ab", buffering=0)
        netns_fd = os.open(self.netns, os.O_RDONLY | os.O_CLOEXEC) if self.netns else -1
        try:
            env = dict(os.environ)
            # Pulls must not go through a proxy that the environment may name.
            for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
                env.pop(k, None)
            env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
            self.proc = subprocess.Popen(
                [exe, "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                preexec_fn=self._preexec_fn(netns_fd), close_fds=True, cwd=str(self.dir),
            )
        finally:
            logf.close()
            if netns_fd >= 0:
                os.close(netns_fd)
        self.pid_path.write_text(f"{self.proc.pid}\n")
        try:
            await self._wait_ready()
            await self._ensure_sandbox_image()
            await self._import_dir()
        except BaseException:
            await self.stop()
            raise
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            data = self.log_path.read_bytes()[-65536:].decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        async with self.client(timeout=5.0) as cri:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise ContainerdError(f"containerd exited with status {self.proc.returncode} during start; "
                                          f"log {self.log_path}:\n{self.log_tail()}")
                if self.socket.exists():
                    try:
                        v = await cri.version()
                        await cri.status()
                        self.version = v.runtime_version
                        return
                    except CRIUnimplemented:
                        raise ContainerdError(f"containerd runs but its CRI plugin did not load; "
                                              f"log {self.log_path}:\n{self.log_tail()}") from None
                    except CRIError:
                        pass
                if time.monotonic() > deadline:
                    raise ContainerdError(f"containerd's CRI did not answer within {self.start_timeout:.0f}s; "
                                          f"log {self.log_path}:\n{self.log_tail()}")
                await asyncio.sleep(0.05)

    async def _ensure_sandbox_image(self) -> None:
        archive = self.pause_archive
        if archive is None and self.sandbox_image == PAUSE_IMAGE:
            async with self.client() as cri:
                if await cri.image_status(self.sandbox_image) is not None:
                    return
            archive = await asyncio.to_thread(build_pause_image, self.pause_cache)
        if archive is None:
            return  # a sandbox image we cannot build: containerd pulls it when needed
        await ensure_image(self.endpoint, self.address, self.sandbox_image, archive, ctr=self.ctr_bin)

    async def _import_dir(self) -> None:
        marker = self.import_dir / ".imported.json"
        try:
            done = json.loads(marker.read_text())
        except (OSError, ValueError):
            done = {}
        for p in pending_archives(self.import_dir, done):
            try:
                names = await import_archive(self.address, p, ctr=self.ctr_bin)
            except Exception as e:  # one bad archive must not stop the node
                log.error("importing %s failed: %s", p, e)
                continue
            self.imported.extend(names)
            st = p.stat()
            done[p.name] = f"{st.st_size}:{int(st.st_mtime)}"
            done.setdefault(".images", [])
            done[".images"] = sorted(set(done[".images"]) | set(names))
            tmp = marker.with_suffix(".tmp")
            tmp.write_text(json.dumps(done, indent=1, sort_keys=True))
            os.replace(tmp, marker)

    def imported_images(self) -> list[str]:
        """Names of images imported from import_dir (ever), for image GC to spare."""
        try:
            return list(json.loads((self.import_dir / ".imported.json").read_text()).get(".images", []))
        except (OSError, ValueError):
            return []

    # ------------------------------------------------------------ stop

    async def remove_all_pods(self, timeout: int = 10) -> int:
        """Stop and remove every pod sandbox and container through the CRI. Returns the count."""
        n = 0
        try:
            async with self.client(timeout=30.0 + timeout) as cri:
                for c in await cri.list_containers():
                    try:
                        await cri.stop_container(c.id, timeout=timeout)
                        await cri.remove_container(c.id)
                    except CRIError as e:
                        log.warning("removing container %s: %s", c.id[:12], e)
                for s in await cri.list_pod_sandbox():
                    try:
                        await cri.stop_pod_sandbox(s.id)
                        await cri.remove_pod_sandbox(s.id)
                        n += 1
                    except CRIError as e:
                        log.warning("removing sandbox %s: %s", s.id[:12], e)
        except CRIError as e:
            log.warning("cannot list pods to remove: %s", e)
        return n

    async def stop(self, *, remove_pods: bool = True, timeout: float = 15.0) -> None:
        """Stop containerd.  With remove_pods (default) first remove every pod through
        the CRI, and afterwards kill shims of this containerd that are still alive and
        unmount what is left under the data dir.  With remove_pods=False containers
        keep running under their shims (a restarted containerd picks them up)."""
        if self.running() and remove_pods:
            await self.remove_all_pods()
        await asyncio.to_thread(self._terminate, timeout)
        if remove_pods:
            await asyncio.to_thread(self.cleanup_leftovers)

    def _terminate(self, timeout: float) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        try:
            if self.pid_path.read_text().strip() == str(proc.pid):
                self.pid_path.unlink()
        except OSError:
            pass

    def kill(self) -> None:
        """Synchronous last resort (e.g. from a signal handler): SIGKILL containerd, reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def cleanup_leftovers(self) -> dict:
        """Kill shims (and their process trees) of this containerd, unmount under the data
        dir.  Call only when containerd is stopped and its pods are meant to go."""
        shims = cleanup.shim_pids(self.address)
        for pid in shims:
            cleanup.kill_tree(pid)
        unmounted = cleanup.unmount_under(self.dir)
        for sock in (self.socket, Path(str(self.socket) + ".ttrpc")):
            try:
                sock.unlink()
            except OSError:
                pass
        return {"shims_killed": len(shims), "unmounted": unmounted}

    async def __aenter__(self) -> "ContainerdProcess":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class ExternalRuntime:
    """A CRI runtime someone else runs (`--container-runtime-endpoint`): start() waits
    until it answers, stop() leaves it alone."""

    owned = False

    def __init__(self, endpoint: str, *, start_timeout: float = 60.0):
        self.socket = Path(socket_path(endpoint))
        self.start_timeout = start_timeout
        self.version = ""

    @property
    def endpoint(self) -> str:
        return "unix://" + str(self.socket)

    @property
    def address(self) -> str:
        return str(self.socket)

    pid = None

    def running(self) -> bool:
        return self.socket.exists()

    def client(self, **kw) -> CRIClient:
        return CRIClient(self.endpoint, **kw)

    async def start(self) -> "ExternalRuntime":
        async with self.client(timeout=5.0) as cri:
            await cri.wait_ready(self.start_timeout)
            self.version = (await cri.version()).runtime_version
        return self

    async def stop(self, **_: object) -> None:
        return None

    async def __aenter__(self) -> "ExternalRuntime":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        return None


def container_runtime(data_dir: Union[str, os.PathLike], endpoint: Optional[str] = None,
                      **options) -> Union[ContainerdProcess, ExternalRuntime]:
    """The runtime for a node: an existing CRI socket when `endpoint` is given, else a
    containerd child process under `data_dir` (options go to ContainerdProcess)."""
    if endpoint:
        return ExternalRuntime(endpoint)
    return ContainerdProcess(data_dir, **options)


async def ensure_image(endpoint: str, address: str, image: str, archive: Union[str, os.PathLike], *,
                       ctr: str = "ctr", wait: float = 10.0) -> bool:
    """Import `archive` unless the CRI at `endpoint` already has `image`; True if imported.
    Waits (up to `wait` s) until the CRI's image store shows the image."""
    async with CRIClient(endpoint) as cri:
        if await cri.image_status(image) is not None:
            return False
        await import_archive(address, archive, ctr=ctr)
        deadline = time.monotonic() + wait
        while await cri.image_status(image) is None:
            if time.monotonic() > deadline:
                raise ContainerdError(f"imported {archive} but the CRI does not show {image}")
            await asyncio.sleep(0.05)
    return True
