"""An asyncio CRI v1 client (grpc.aio over a unix socket).

    async with CRIClient("/var/lib/kybernetes/agent/containerd/containerd.sock") as cri:
        v = await cri.version()
        sid = await cri.run_pod_sandbox(pb.PodSandboxConfig(...))

Every helper takes and returns the generated protobuf messages (`kybernetes.cri.pb`)
with plain-Python conveniences for ids, filters and labels.  Failures raise the
CRIError family (kybernetes.cri.errors) naming the RPC, the status code and the
socket, never a bare grpc exception.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any, Callable, Iterable, Mapping, Optional, Union

import grpc
import grpc.aio

from kybernetes.cri import pb, pb_grpc
from kybernetes.cri.errors import CRIError, CRIUnavailable, error_for

AuthLike = Union["pb.AuthConfig", Mapping[str, str], None]

# Large enough for ListContainerStats/ListPodSandboxStats on a busy node (the kubelet uses 16 MiB).
MAX_MESSAGE = 16 * 1024 * 1024


def socket_path(endpoint: str) -> str:
    """`unix:///run/x.sock`, `unix:/run/x.sock` or `/run/x.sock` -> `/run/x.sock`."""
    if endpoint.startswith("unix://"):
        return endpoint[len("unix://"):]
    if endpoint.startswith("unix:"):
        return endpoint[len("unix:"):]
    return endpoint


class CRIClient:
    """A CRI v1 RuntimeService + ImageService client for one runtime socket.

    `timeout` bounds ordinary calls (seconds); image pulls use `pull_timeout`.
    The gRPC channel is opened lazily in the running event loop and closed by
    close() / `async with`.
    """

    def __init__(self, endpoint: str, *, timeout: float = 120.0, pull_timeout: float = 900.0):
        self.socket = socket_path(endpoint)
        self.endpoint = "unix://" + self.socket
        self.timeout = timeout
        self.pull_timeout = pull_timeout
        self._channel: Optional[grpc.aio.Channel] = None
        self._runtime: Any = None
        self._images: Any = None
        # called after every RPC with (method, seconds, error or None): the kubelet's metrics
        self.observer: Optional[Callable[[str, float, Optional[BaseException]], None]] = None

    # ------------------------------------------------------------ plumbing

    def _ensure(self) -> None:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.endpoint,
                options=[
                    ("grpc.max_receive_message_length", MAX_MESSAGE),
                    ("grpc.max_send_message_length", MAX_MESSAGE),
                    # One host, no proxies: never consult http_proxy for a unix socket.
                    ("grpc.enable_http_proxy", 0),
                ],
            )
            self._runtime = pb_grpc.RuntimeServiceStub(self._channel)
            self._images = pb_grpc.ImageServiceStub(self._channel)

    async def close(self) -> None:
        ch, self._channel = self._channel, None
        if ch is not None:
            await ch.close()

    async def __aenter__(self) -> "CRIClient":
        self._ensure()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _rt(self, method: str, request: Any, timeout: Optional[float] = -1.0) -> Any:
        self._ensure()
        return await self._invoke(self._runtime, method, request, timeout)

    async def _img(self, method: str, request: Any, timeout: Optional[float] = -1.0) -> Any:
        self._ensure()
        return await self._invoke(self._images, method, request, timeout)

    async def _invoke(self, stub: Any, method: str, request: Any, timeout: Optional[float]) -> Any:
        if timeout is not None and timeout < 0:
            timeout = self.timeout
        start, err = time.monotonic(), None
        try:
            return await getattr(stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            err = error_for(method, e.code(), e.details() or "", self.endpoint)
            raise err from None
        except grpc.aio.UsageError as e:  # channel closed under us
            err = CRIError(method, None, str(e), self.endpoint)
            raise err from None
        finally:
            if self.observer is not None:
                self.observer(method, time.monotonic() - start, err)

    async def wait_ready(self, timeout: float = 30.0, *, interval: float = 0.05) -> "pb.StatusResponse":
        """Poll Status until the runtime answers (not necessarily NetworkReady)."""
        deadline = time.monotonic() + timeout
        last: Optional[CRIError] = None
        while True:
            try:
                return await self._rt("Status", pb.StatusRequest(), timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            except (CRIUnavailable, CRIError) as e:
                last = e
            if time.monotonic() >= deadline:
                raise CRIUnavailable("Status", grpc.StatusCode.UNAVAILABLE,
                                     f"runtime did not answer within {timeout:.0f}s ({last})", self.endpoint)
            await asyncio.sleep(interval)

    # ------------------------------------------------------------ runtime: version & status

    async def version(self) -> "pb.VersionResponse":
        return await self._rt("Version", pb.VersionRequest(version="v1"))

    async def status(self, verbose: bool = False) -> "pb.StatusResponse":
        return await self._rt("Status", pb.StatusRequest(verbose=verbose))

    async def conditions(self) -> dict[str, bool]:
        """{"RuntimeReady": bool, "NetworkReady": bool} from Status."""
        st = await self.status()
        return {c.type: c.status for c in st.status.conditions}

    async def update_runtime_config(self, pod_cidr: str) -> None:
        await self._rt("UpdateRuntimeConfig", pb.UpdateRuntimeConfigRequest(
            runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=pod_cidr))))

    # ------------------------------------------------------------ pod sandboxes

    async def run_pod_sandbox(self, config: "pb.PodSandboxConfig", runtime_handler: str = "") -> str:
        resp = await self._rt("RunPodSandbox", pb.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler))
        return resp.pod_sandbox_id

    async def stop_pod_sandbox(self, pod_sandbox_id: str) -> None:
        await self._rt("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod_sandbox_id))

    async def remove_pod_sandbox(self, pod_sandbox_id: str) -> None:
        await self._rt("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod_sandbox_id))

    async def pod_sandbox_status(self, pod_sandbox_id: str, verbose: bool = False) -> "pb.PodSandboxStatusResponse":
        return await self._rt("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod_sandbox_id, verbose=verbose))

    async def list_pod_sandbox(self, *, id: str = "", state: Optional[int] = None,
                               labels: Optional[Mapping[str, str]] = None) -> list["pb.PodSandbox"]:
        f = pb.PodSandboxFilter(id=id, label_selector=dict(labels or {}))
        if state is not None:
            f.state.CopyFrom(pb.PodSandboxStateValue(state=state))
        resp = await self._rt("ListPodSandbox", pb.ListPodSandboxRequest(filter=f))
        return list(resp.items)

    # ------------------------------------------------------------ containers

    async def create_container(self, pod_sandbox_id: str, config: "pb.ContainerConfig",
                               sandbox_config: "pb.PodSandboxConfig") -> str:
        resp = await self._rt("CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=pod_sandbox_id, config=config, sandbox_config=sandbox_config))
        return resp.container_id

    async def start_container(self, container_id: str) -> None:
        await self._rt("StartContainer", pb.StartContainerRequest(container_id=container_id))

    async def stop_container(self, container_id: str, timeout: int = 0) -> None:
        """Signal the container (its stop signal, then SIGKILL after `timeout` seconds)."""
        await self._rt("StopContainer", pb.StopContainerRequest(container_id=container_id, timeout=timeout),
                       timeout=self.timeout + max(0, timeout))

    async def remove_container(self, container_id: str) -> None:
        await self._rt("RemoveContainer", pb.RemoveContainerRequest(container_id=container_id))

    async def list_containers(self, *, id: str = "", pod_sandbox_id: str = "", state: Optional[int] = None,
                              labels: Optional[Mapping[str, str]] = None) -> list["pb.Container"]:
        f = pb.ContainerFilter(id=id, pod_sandbox_id=pod_sandbox_id, label_selector=dict(labels or {}))
        if state is not None:
            f.state.CopyFrom(pb.ContainerStateValue(state=state))
        resp = await self._rt("ListContainers", pb.ListContainersRequest(filter=f))
        return list(resp.containers)

    async def container_status(self, container_id: str, verbose: bool = False) -> "pb.ContainerStatusResponse":
        return await self._rt("ContainerStatus", pb.ContainerStatusRequest(container_id=container_id, verbose=verbose))

    async def update_container_resources(self, container_id: str, linux: "pb.LinuxContainerResources",
                                         annotations: Optional[Mapping[str, str]] = None) -> None:
        await self._rt("UpdateContainerResources", pb.UpdateContainerResourcesRequest(
            container_id=container_id, linux=linux, annotations=dict(annotations or {})))

    async def reopen_container_log(self, container_id: str) -> None:
        await self._rt("ReopenContainerLog", pb.ReopenContainerLogRequest(container_id=container_id))

    # ------------------------------------------------------------ exec, attach, port-forward

    async def exec_sync(self, container_id: str, cmd: Iterable[str], timeout: int = 0) -> "pb.ExecSyncResponse":
        """Run `cmd` in the container and wait; `timeout` seconds (0 = no limit) is the runtime's."""
        deadline = None if timeout <= 0 else timeout + 30.0
        return await self._rt("ExecSync", pb.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout),
                              timeout=deadline)

    async def exec(self, container_id: str, cmd: Iterable[str], *, tty: bool = False, stdin: bool = False,
                   stdout: bool = True, stderr: bool = True) -> str:
        """Streaming URL (WebSocket, subprotocol v4.channel.k8s.io) on the runtime's stream server."""
        resp = await self._rt("Exec", pb.ExecRequest(container_id=container_id, cmd=list(cmd), tty=tty,
                                                     stdin=stdin, stdout=stdout, stderr=stderr and not tty))
        return resp.url

    async def attach(self, container_id: str, *, tty: bool = False, stdin: bool = False,
                     stdout: bool = True, stderr: bool = True) -> str:
        resp = await self._rt("Attach", pb.AttachRequest(container_id=container_id, tty=tty, stdin=stdin,
                                                         stdout=stdout, stderr=stderr and not tty))
        return resp.url

    async def port_forward(self, pod_sandbox_id: str, ports: Iterable[int] = ()) -> str:
        resp = await self._rt("PortForward", pb.PortForwardRequest(pod_sandbox_id=pod_sandbox_id, port=list(ports)))
        return resp.url

    # ------------------------------------------------------------ stats

    async def container_stats(self, container_id: str) -> "pb.ContainerStats":
        resp = await self._rt("ContainerStats", pb.ContainerStatsRequest(container_id=container_id))
        return resp.stats

    async def list_container_stats(self, *, id: str = "", pod_sandbox_id: str = "",
                                   labels: Optional[Mapping[str, str]] = None) -> list["pb.ContainerStats"]:
        f = pb.ContainerStatsFilter(id=id, pod_sandbox_id=pod_sandbox_id, label_selector=dict(labels or {}))
        resp = await self._rt("ListContainerStats", pb.ListContainerStatsRequest(filter=f))
        return list(resp.stats)

    async def pod_sandbox_stats(self, pod_sandbox_id: str) -> "pb.PodSandboxStats":
        resp = await self._rt("PodSandboxStats", pb.PodSandboxStatsRequest(pod_sandbox_id=pod_sandbox_id))
        return resp.stats

    async def list_pod_sandbox_stats(self, *, id: str = "",
                                     labels: Optional[Mapping[str, str]] = None) -> list["pb.PodSandboxStats"]:
        f = pb.PodSandboxStatsFilter(id=id, label_selector=dict(labels or {}))
        resp = await self._rt("ListPodSandboxStats", pb.ListPodSandboxStatsRequest(filter=f))
        return list(resp.stats)

    # ------------------------------------------------------------ images

    async def list_images(self, image: str = "") -> list["pb.Image"]:
        f = pb.ImageFilter(image=pb.ImageSpec(image=image)) if image else None
        resp = await self._img("ListImages", pb.ListImagesRequest(filter=f))
        return list(resp.images)

    async def image_status(self, image: str, verbose: bool = False) -> Optional["pb.Image"]:
        """The image, or None when the runtime does not have it."""
        resp = await self._img("ImageStatus", pb.ImageStatusRequest(image=pb.ImageSpec(image=image), verbose=verbose))
        return resp.image if resp.HasField("image") and resp.image.id else None

    async def pull_image(self, image: str, auth: AuthLike = None,
                         sandbox_config: Optional["pb.PodSandboxConfig"] = None) -> str:
        """Pull `image` (optionally with registry credentials); returns the image reference (id)."""
        req = pb.PullImageRequest(image=pb.ImageSpec(image=image), auth=auth_config(auth),
                                  sandbox_config=sandbox_config)
        resp = await self._img("PullImage", req, timeout=self.pull_timeout)
        return resp.image_ref

    async def remove_image(self, image: str) -> None:
        await self._img("RemoveImage", pb.RemoveImageRequest(image=pb.ImageSpec(image=image)))

    async def image_fs_info(self) -> "pb.ImageFsInfoResponse":
        return await self._img("ImageFsInfo", pb.ImageFsInfoRequest())


def auth_config(auth: AuthLike) -> Optional["pb.AuthConfig"]:
    """A pb.AuthConfig from a message, a dict (docker config.json `auths` entry style:
    username/password, or auth = base64(user:password), server_address, identity_token,
    registry_token), or None."""
    if auth is None:
        return None
    if isinstance(auth, pb.AuthConfig):
        return auth
    a = dict(auth)
    unknown = set(a) - {"username", "password", "auth", "server_address", "serveraddress",
                        "identity_token", "identitytoken", "registry_token", "registrytoken", "email"}
    if unknown:
        raise ValueError(f"auth_config: unknown keys {sorted(unknown)}")
    username, password = a.get("username", ""), a.get("password", "")
    if a.get("auth") and not (username or password):
        try:
            username, _, password = base64.b64decode(a["auth"]).decode().partition(":")
        except Exception as e:
            raise ValueError("auth_config: `auth` is not base64 of user:password") from e
    server = a.get("server_address") or a.get("serveraddress", "")
    if server and "://" not in server:
        # containerd matches credentials by url.Parse(server_address).Host: a bare
        # "host:port" would not parse (1.6) or match, so give it a scheme.
        server = "https://" + server
    return pb.AuthConfig(
        username=username,
        password=password,
        server_address=server,
        identity_token=a.get("identity_token") or a.get("identitytoken", ""),
        registry_token=a.get("registry_token") or a.get("registrytoken", ""),
    )
