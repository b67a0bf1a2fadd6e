"""gRPC probe failures read as upstream's (pkg/probe/grpc): a non-SERVING answer, an RPC
error status in the trailers, a port nobody listens on (the dial retries until the probe's
deadline), and the Unhealthy event text the pod worker builds from them."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import grpc
import pytest

from kybernetes.kubelet.pod_workers import PodWorker
from kybernetes.kubelet.prober import hpack
from kybernetes.kubelet.prober.grpc_health import go_duration, join_host_port, rpc_error
from kybernetes.kubelet.prober.manager import PodProbes, Running


async def health_server(statuses: dict[str, int]):
    def check(req: bytes, ctx):
        svc = req[2:].decode() if req else ""
        if svc not in statuses:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return bytes([0x08, statuses[svc]])
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def probe_failures(spec: dict) -> list[tuple[str, str, str]]:
    """The failure messages of one real probe attempt of each kind in `spec`."""
    failures: list[tuple[str, str, str]] = []
    p = PodProbes(None, lambda: None, on_failure=lambda *a: failures.append(a))
    p.update([spec], {"c": Running("id1", 0.0, spec)}, "127.0.0.1", None)
    for w in p.workers.values():  # step by hand: no worker loop runs on its own
        w.task.cancel()
    for w in p.workers.values():
        await p._step(w)
    await p.stop()
    return failures


def unhealthy_events(failures) -> list[tuple]:
    """What the pod worker records for them (its probe_failed on a recorder double)."""
    got: list[tuple] = []
    worker = SimpleNamespace(event=lambda *a: got.append(a))
    for kind, name, out in failures:
        PodWorker.probe_failed(worker, kind, name, out)
    return got


async def test_not_serving_answer():
    server, port = await health_server({"": 1, "db": 2, "cache": 0})
    try:
        spec = {"name": "c", "readinessProbe": {"grpc": {"port": port, "service": "db"}, "timeoutSeconds": 2},
                "livenessProbe": {"grpc": {"port": port, "service": "cache"}, "timeoutSeconds": 2}}
        failures = sorted(await probe_failures(spec))
        assert failures == [("liveness", "c", 'service unhealthy (responded with "UNKNOWN")'),
                            ("readiness", "c", 'service unhealthy (responded with "NOT_SERVING")')]
        assert unhealthy_events(failures) == [
            ("Warning", "Unhealthy", 'Liveness probe failed: service unhealthy (responded with "UNKNOWN")', "c"),
            ("Warning", "Unhealthy", 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")', "c")]
        assert await probe_failures({"name": "c", "readinessProbe": {"grpc": {"port": port}}}) == []
    finally:
        await server.stop(None)


async def test_nobody_listening():
    port = free_port()
    failures = await probe_failures({"name": "c", "startupProbe": {"grpc": {"port": port}, "timeoutSeconds": 1}})
    msg = f'timeout: failed to connect service "127.0.0.1:{port}" within 1s: context deadline exceeded'
    assert failures == [("startup", "c", msg)]
    assert unhealthy_events(failures) == [("Warning", "Unhealthy", f"Startup probe failed: {msg}", "c")]


def test_go_formats():
    assert [go_duration(s) for s in (1, 10, 1.5, 60, 75, 3600)] == ["1s", "10s", "1.5s", "1m0s", "1m15s", "1h0m0s"]
    assert join_host_port("fd00::5", 9000) == "[fd00::5]:9000"
    assert join_host_port("10.1.2.3", 9000) == "10.1.2.3:9000"


async def test_rpc_error_status():
    server, port = await health_server({"": 1})

    async def unimplemented(req, ctx):
        await ctx.abort(grpc.StatusCode.UNIMPLEMENTED, "unknown service grpc.health.v1.Health")
    other = grpc.aio.server()
    other.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(unimplemented)}),))
    other_port = other.add_insecure_port("127.0.0.1:0")
    await other.start()
    try:
        spec = {"name": "c", "readinessProbe": {"grpc": {"port": port, "service": "no such"}}}
        assert await probe_failures(spec) == [
            ("readiness", "c", "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service")]
        spec = {"name": "c", "readinessProbe": {"grpc": {"port": other_port}}}
        assert await probe_failures(spec) == [
            ("readiness", "c", "error: this server does not implement the grpc health protocol "
                               "(grpc.health.v1.Health): unknown service grpc.health.v1.Health")]
    finally:
        await server.stop(None)
        await other.stop(None)


def test_hpack_fields():
    d = hpack.Decoder()
    # indexed :status 200, a literal added to the table, a literal never indexed, then the
    # added one by its dynamic index (62) in the next block; a Huffman-coded value is None
    first = bytes([0x88, 0x40, 11]) + b"grpc-status" + bytes([1]) + b"5" + bytes([0x10, 12]) + b"grpc-message" + \
        bytes([4]) + b"a%20"
    assert d.decode(first) == [(":status", "200"), ("grpc-status", "5"), ("grpc-message", "a%20")]
    assert d.decode(bytes([0xBE, 0x0F, 0x10, 0x81, 0xFF])) == [("grpc-status", "5"), ("content-type", None)]
    assert rpc_error(d.decode(first)) == (5, "a ")
    with pytest.raises(hpack.HPACKError):
        d.decode(bytes([0xFF, 0x7F]))  # an index far past both tables
