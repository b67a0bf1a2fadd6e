"""The CRI proto (wire numbers), the generated stubs and CRIClient against an
in-process fake runtime on a unix socket."""

from __future__ import annotations

import base64
from pathlib import Path

import grpc
import grpc.aio
import pytest

from kybernetes.cri import (
    CRIClient, CRIError, CRINotFound, CRIUnavailable, CRIUnimplemented, auth_config, pb, pb_grpc, socket_path,
)
from kybernetes.cri import _build
from kybernetes.cri.errors import error_for

# (message, field, number) spot checks against CRI v1 as runtimes speak it.
WIRE = [
    ("PodSandboxConfig", "metadata", 1), ("PodSandboxConfig", "log_directory", 3), ("PodSandboxConfig", "linux", 8),
    ("LinuxPodSandboxConfig", "cgroup_parent", 1), ("LinuxPodSandboxConfig", "resources", 5),
    ("LinuxSandboxSecurityContext", "run_as_group", 8), ("LinuxSandboxSecurityContext", "seccomp", 9),
    ("ContainerConfig", "log_path", 11), ("ContainerConfig", "tty", 14), ("ContainerConfig", "linux", 15),
    ("LinuxContainerSecurityContext", "no_new_privs", 11), ("LinuxContainerSecurityContext", "run_as_group", 12),
    ("LinuxContainerResources", "memory_swap_limit_in_bytes", 10), ("LinuxContainerResources", "unified", 9),
    ("ImageSpec", "user_specified_image", 18), ("ImageSpec", "image_ref", 20),
    ("ContainerStatus", "reason", 10), ("ContainerStatus", "log_path", 15), ("ContainerStatus", "image_id", 17),
    ("Container", "image_id", 10), ("PodSandboxStatusResponse", "containers_statuses", 3),
    ("UpdateContainerResourcesRequest", "annotations", 4), ("AuthConfig", "registry_token", 6),
    ("ContainerStats", "writable_layer", 4), ("ContainerStats", "io", 6), ("MemoryUsage", "major_page_faults", 7),
    ("LinuxPodSandboxStats", "containers", 5), ("ImageFsInfoResponse", "container_filesystems", 2),
    ("StatusResponse", "runtime_handlers", 3), ("Image", "pinned", 8), ("ExecSyncResponse", "exit_code", 3),
]


@pytest.mark.parametrize("msg,name,number", WIRE)
def test_field_numbers(msg, name, number):
    assert pb.DESCRIPTOR.message_types_by_name[msg].fields_by_name[name].number == number


def test_wire_bytes():
    # field 11, length-delimited: tag 0x5a
    assert pb.ContainerConfig(log_path="x").SerializeToString() == b"\x5a\x01x"
    # field 18: two-byte tag
    assert pb.ImageSpec(user_specified_image="a").SerializeToString() == b"\x92\x01\x01a"
    assert pb.ContainerState.Value("CONTAINER_EXITED") == 2
    assert pb.NamespaceMode.Value("NODE") == 2


def test_service_paths():
    svc = pb.DESCRIPTOR.services_by_name
    assert svc["RuntimeService"].full_name == "runtime.v1.RuntimeService"
    rpcs = {m.name for m in svc["RuntimeService"].methods}
    assert {"Version", "Status", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus",
            "ListPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
            "ListContainers", "ContainerStatus", "UpdateContainerResources", "ReopenContainerLog", "ExecSync",
            "Exec", "Attach", "PortForward", "ContainerStats", "ListContainerStats", "PodSandboxStats",
            "ListPodSandboxStats"} <= rpcs
    assert {m.name for m in svc["ImageService"].methods} == {"ListImages", "ImageStatus", "PullImage",
                                                             "RemoveImage", "ImageFsInfo"}


def test_stubs_are_current():
    assert _build.is_current()
    assert _build.GEN.name == "_gen"


def test_auth_config():
    a = auth_config({"username": "u", "password": "p", "server_address": "127.0.0.1:5001"})
    assert (a.username, a.password, a.server_address) == ("u", "p", "https://127.0.0.1:5001")
    a = auth_config({"auth": base64.b64encode(b"me:pa:ss").decode()})
    assert (a.username, a.password) == ("me", "pa:ss")
    a = auth_config({"serveraddress": "http://r:5000", "identitytoken": "tok"})
    assert a.server_address == "http://r:5000" and a.identity_token == "tok"
    assert auth_config(None) is None
    with pytest.raises(ValueError):
        auth_config({"user": "x"})


def test_error_mapping():
    assert isinstance(error_for("X", grpc.StatusCode.NOT_FOUND, "gone"), CRINotFound)
    assert isinstance(error_for("X", grpc.StatusCode.UNKNOWN, 'container "x" not found'), CRINotFound)
    assert isinstance(error_for("X", grpc.StatusCode.UNAVAILABLE, "down"), CRIUnavailable)
    e = error_for("RunPodSandbox", grpc.StatusCode.UNKNOWN, "boom", "unix:///s")
    assert type(e) is CRIError and "RunPodSandbox at unix:///s: UNKNOWN: boom" in str(e)


def test_socket_path():
    assert socket_path("unix:///run/x.sock") == "/run/x.sock"
    assert socket_path("unix:/run/x.sock") == "/run/x.sock"
    assert socket_path("/run/x.sock") == "/run/x.sock"


class FakeRuntime(pb_grpc.RuntimeServiceServicer):
    def __init__(self):
        self.seen = []

    async def Version(self, request, context):
        self.seen.append(request)
        return pb.VersionResponse(version="0.1.0", runtime_name="fake", runtime_version="9", runtime_api_version="v1")

    async def Status(self, request, context):
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=[
            pb.RuntimeCondition(type="RuntimeReady", status=True),
            pb.RuntimeCondition(type="NetworkReady", status=False, reason="NoCNI")]))

    async def ListPodSandbox(self, request, context):
        self.seen.append(request)
        return pb.ListPodSandboxResponse(items=[pb.PodSandbox(id="s1", state=pb.SANDBOX_READY)])

    async def ContainerStatus(self, request, context):
        await context.abort(grpc.StatusCode.NOT_FOUND, f"container {request.container_id} not found")

    async def ExecSync(self, request, context):
        self.seen.append(request)
        return pb.ExecSyncResponse(stdout=" ".join(request.cmd).encode(), exit_code=len(request.cmd))


class FakeImages(pb_grpc.ImageServiceServicer):
    async def PullImage(self, request, context):
        return pb.PullImageResponse(image_ref=f"{request.image.image}|{request.auth.username}|{request.auth.server_address}")

    async def ImageStatus(self, request, context):
        return pb.ImageStatusResponse()  # not present


@pytest.fixture
async def fake(tmp_path):
    sock = tmp_path / "cri.sock"
    server = grpc.aio.server()
    rt = FakeRuntime()
    pb_grpc.add_RuntimeServiceServicer_to_server(rt, server)
    pb_grpc.add_ImageServiceServicer_to_server(FakeImages(), server)
    server.add_insecure_port(f"unix://{sock}")
    await server.start()
    yield sock, rt
    await server.stop(None)


async def test_client_against_fake(fake):
    sock, rt = fake
    async with CRIClient(str(sock)) as cri:
        v = await cri.version()
        assert (v.runtime_name, v.runtime_api_version) == ("fake", "v1")
        assert rt.seen[0].version == "v1"
        assert await cri.conditions() == {"RuntimeReady": True, "NetworkReady": False}
        items = await cri.list_pod_sandbox(state=pb.SANDBOX_READY, labels={"a": "b"})
        assert [i.id for i in items] == ["s1"]
        req = rt.seen[-1]
        assert req.filter.HasField("state") and dict(req.filter.label_selector) == {"a": "b"}
        with pytest.raises(CRINotFound, match="container abc not found"):
            await cri.container_status("abc")
        r = await cri.exec_sync("c", ["echo", "hi"], timeout=5)
        assert (r.stdout, r.exit_code) == (b"echo hi", 2)
        with pytest.raises(CRIUnimplemented):
            await cri.stop_container("c")
        ref = await cri.pull_image("127.0.0.1:5000/x:1", auth={"username": "u", "password": "p",
                                                                "server_address": "127.0.0.1:5000"})
        assert ref == "127.0.0.1:5000/x:1|u|https://127.0.0.1:5000"
        assert await cri.image_status("nope") is None
        st = await cri.wait_ready(2)
        assert st.status.conditions[0].status


async def test_client_unavailable(tmp_path):
    async with CRIClient(f"unix://{tmp_path}/missing.sock", timeout=2) as cri:
        with pytest.raises(CRIUnavailable) as ei:
            await cri.version()
        assert str(tmp_path) in str(ei.value)
        with pytest.raises(CRIUnavailable, match="did not answer"):
            await cri.wait_ready(0.3)
