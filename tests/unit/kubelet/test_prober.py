"""Probes: httpGet/tcpSocket/grpc against loopback servers, and the worker's thresholds,
initial delay, startup gating and liveness hold."""

from __future__ import annotations

import socket

import grpc
import pytest
from aiohttp import web

from kybernetes.kubelet.prober import grpc_health, manager
from kybernetes.kubelet.prober.manager import PodProbes, Running
from kybernetes.kubelet.prober.probes import ProbeResult, http_probe, resolve_port, tcp_probe


async def _serve(app):
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


async def test_http_probe_codes_redirects_headers():
    seen = {}

    async def handler(request):
        seen["ua"] = request.headers.get("User-Agent")
        seen["x"] = request.headers.get("X-Probe")
        code = int(request.match_info["code"])
        if code == 302:
            raise web.HTTPFound("/code/200")
        if code == 301:
            raise web.HTTPMovedPermanently("http://other.invalid/x")
        return web.Response(status=code, text=f"body{code}")
    app = web.Application()
    app.router.add_get("/code/{code}", handler)
    runner, port = await _serve(app)
    try:
        c = {"name": "c", "ports": [{"name": "web", "containerPort": port}]}
        ok = await http_probe({"path": "/code/200", "port": "web", "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                              c, "127.0.0.1", None, 2)
        assert ok == (ProbeResult.SUCCESS, "body200")
        assert seen == {"ua": "kube-probe/1.37", "x": "1"}
        assert (await http_probe({"path": "/code/302", "port": port}, c, "127.0.0.1", None, 2))[0] is ProbeResult.SUCCESS
        res, msg = await http_probe({"path": "/code/301", "port": port}, c, "127.0.0.1", None, 2)
        assert res is ProbeResult.WARNING and msg.startswith("Probe terminated redirects")
        res, msg = await http_probe({"path": "/code/503", "port": port}, c, "127.0.0.1", None, 2)
        assert (res, msg) == (ProbeResult.FAILURE, "HTTP probe failed with statuscode: 503")
    finally:
        await runner.cleanup()
    res, msg = await http_probe({"path": "/", "port": port}, c, "127.0.0.1", None, 2)
    assert res is ProbeResult.FAILURE and "connection refused" in msg


async def test_tcp_probe():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    assert (await tcp_probe("127.0.0.1", port, None, 1))[0] is ProbeResult.SUCCESS
    srv.close()
    res, msg = await tcp_probe("127.0.0.1", port, None, 1)
    assert res is ProbeResult.FAILURE and msg == f"dial tcp 127.0.0.1:{port}: connect: connection refused"


def test_resolve_port():
    c = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port(80, c) == 80 and resolve_port("81", c) == 81 and resolve_port("http", c) == 8080
    with pytest.raises(ValueError):
        resolve_port("nope", c)


async def test_grpc_health_against_grpcio():
    status = {"": 1, "down": 2}

    def check(req: bytes, ctx):
        svc = req[2:].decode() if req else ""
        if svc not in status:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return bytes([0x08, status[svc]])
    handler = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(check)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        assert (await grpc_health.check("127.0.0.1", port, "", None, 2))[0] is ProbeResult.SUCCESS
        res, msg = await grpc_health.check("127.0.0.1", port, "down", None, 2)
        assert (res, msg) == (ProbeResult.FAILURE, 'service unhealthy (responded with "NOT_SERVING")')
        assert (await grpc_health.check("127.0.0.1", port, "missing", None, 2))[0] is ProbeResult.FAILURE
    finally:
        await server.stop(None)


class Clock:
    t = 1000.0

    def __call__(self):
        return self.t


async def _drive(probes, results, monkeypatch):
    """Replace the probe runner with scripted results."""
    async def fake(probe, spec, **kw):
        return results.pop(0) if results else (ProbeResult.SUCCESS, "")
    monkeypatch.setattr(manager, "run_probe", fake)


async def test_readiness_thresholds(monkeypatch):
    clock = Clock()
    notes = []
    p = PodProbes(None, lambda: notes.append(1), clock=clock)
    S, F = (ProbeResult.SUCCESS, ""), (ProbeResult.FAILURE, "bad")
    results = [S, S, F, F, F]
    await _drive(p, results, monkeypatch)
    spec = {"name": "c", "readinessProbe": {"exec": {}, "successThreshold": 2, "failureThreshold": 3,
                                            "initialDelaySeconds": 5, "periodSeconds": 1000}}
    p.update([spec], {"c": Running("id1", clock.t, spec)}, "10.0.0.1", None)
    w = p.workers[("c", "readiness")]
    w.task.cancel()  # step by hand
    await p._step(w)
    assert not p.ready("c", "id1") and results == [S, S, F, F, F]  # initial delay: no probe yet
    clock.t += 5
    await p._step(w)
    assert not p.ready("c", "id1")          # one success of two
    await p._step(w)
    assert p.ready("c", "id1")
    await p._step(w)
    await p._step(w)
    assert p.ready("c", "id1")              # two failures of three
    await p._step(w)
    assert not p.ready("c", "id1")
    assert p.failed("c", "id1") is None     # readiness never restarts
    # a new instance starts unready
    p.running = {"c": Running("id2", clock.t, spec)}
    assert not p.ready("c", "id2")
    await p.stop()


async def test_liveness_holds_and_startup_gates(monkeypatch):
    clock = Clock()
    p = PodProbes(None, lambda: None, clock=clock)
    S, F = (ProbeResult.SUCCESS, ""), (ProbeResult.FAILURE, "dead")
    results = [F, S, F]
    await _drive(p, results, monkeypatch)
    spec = {"name": "c", "startupProbe": {"exec": {}, "failureThreshold": 5},
            "livenessProbe": {"exec": {}, "failureThreshold": 1}}
    p.update([spec], {"c": Running("id1", clock.t, spec)}, "", None)
    su, lv = p.workers[("c", "startup")], p.workers[("c", "liveness")]
    su.task.cancel()
    lv.task.cancel()
    await p._step(lv)
    assert results == [F, S, F]             # liveness waits for startup
    assert not p.ready("c", "id1") and not p.started("c", "id1")
    await p._step(su)                       # F (1 of 5)
    await p._step(su)                       # S -> started
    assert p.started("c", "id1") and p.ready("c", "id1")
    await p._step(su)                       # startup does not run again
    assert results == [F]
    await p._step(lv)                       # F with threshold 1 -> restart
    assert p.failed("c", "id1") == "Container c failed liveness probe, will be restarted"
    await p._step(lv)
    assert results == []                    # held: no further probing
    p.running = {"c": Running("id2", clock.t, spec)}
    await p._step(lv)
    assert p.failed("c", "id2") is None
    await p.stop()
