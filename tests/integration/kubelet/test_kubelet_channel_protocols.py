"""The WebSocket streaming protocols through the API server to the kubelet and containerd:
the official Python client's exec (stdout/stderr, stdin with v5 close, exit code from the
status channel, tty resize) and port-forward; raw WebSocket clients speaking no
subprotocol, channel.k8s.io, base64.channel.k8s.io and v4.base64.channel.k8s.io (frame
formats, plain-text versus Status errors), v2/v3 refused as upstream does; pods/log over
binary.k8s.io/base64.binary.k8s.io; nodes/proxy passing WebSocket upgrades through.
One kubelet and one pod serve the whole module."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio

from fixtures.images import BUSYBOX_REF
from kl_helpers import serving_kubelet, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-ch"
POD = "chan"
SCRIPT = "echo first-line; mkdir -p /www && echo hello-pf > /www/index.html && httpd -p 8080 -h /www && exec sleep 3600"
EXEC = f"/api/v1/namespaces/default/pods/{POD}/exec"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(env, tmp_path_factory):
    async with serving_kubelet(env, tmp_path_factory.mktemp("klch"), NODE) as n:
        cl, kl, pods, names = n
        names.append(POD)
        await pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": "default"},
                           "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": [
                               {"name": "main", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                "command": ["sh", "-c", SCRIPT]}]}})

        async def running():
            p = await pods.get(POD, "default")
            return (p.get("status") or {}).get("phase") == "Running"
        await wait_for(running, 60)
        yield n


@pytest_asyncio.fixture(loop_scope="module")
async def http(env, node):
    srv = env["srv"]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=srv.ssl_context())) as s:
        yield s


def ws_url(srv, path: str, **query) -> str:
    q = [(k, x) for k, v in query.items() for x in (v if isinstance(v, list) else [v])]
    return srv.url.replace("https://", "wss://") + path + ("?" + urlencode(q) if q else "")


async def frames(ws, timeout: float = 30) -> list:
    """Every data message until the server closes the WebSocket (each within `timeout`)."""
    out = []
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
            return out
        out.append(msg.data)


def sh(cmd: str) -> list[str]:
    return ["sh", "-c", cmd]


# ---------------------------------------------------------------- the official client

def python_client_session(kubeconfig) -> dict:
    from kubernetes import client, config
    from kubernetes.stream import portforward, stream
    from kubernetes.stream.ws_client import RESIZE_CHANNEL, STDIN_CHANNEL

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    got: dict = {}
    with client.ApiClient(cfg) as c:
        core = client.CoreV1Api(c)
        # stdout and stderr apart, success status
        r = stream(core.connect_get_namespaced_pod_exec, POD, "default", command=sh("echo out; echo err >&2"),
                   stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
        r.run_forever(timeout=30)
        got["protocol"] = r.subprotocol
        got["streams"] = (r.read_stdout(), r.read_stderr(), r.returncode)
        # a non-zero exit code through the status channel
        r = stream(core.connect_get_namespaced_pod_exec, POD, "default", command=sh("exit 3"),
                   stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
        r.run_forever(timeout=30)
        got["exit"] = r.returncode
        # stdin, ended by v5's close signal
        r = stream(core.connect_get_namespaced_pod_exec, POD, "default", command=["wc", "-c"],
                   stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
        r.write_stdin("x" * 5000)
        r.close_channel(STDIN_CHANNEL)
        r.run_forever(timeout=30)
        got["stdin"] = (r.read_stdout().strip(), r.returncode)
        # a terminal that follows resize messages
        r = stream(core.connect_get_namespaced_pod_exec, POD, "default",
                   command=sh("while read x; do stty size; done"), stderr=False, stdin=True, stdout=True,
                   tty=True, _preload_content=False)
        r.write_channel(RESIZE_CHANNEL, json.dumps({"Width": 101, "Height": 37}))
        seen, deadline = "", time.monotonic() + 30
        while "37 101" not in seen and time.monotonic() < deadline:
            r.write_stdin("\n")  # the resize reaches the tty asynchronously: ask again until it shows
            r.update(timeout=1)
            seen += r.read_stdout(timeout=0) or ""
        r.close()
        got["tty"] = seen
        # port-forward: the v4 channel protocol with the port prefix on both channels
        pf = portforward(core.connect_get_namespaced_pod_portforward, POD, "default", ports="8080")
        sock = pf.socket(8080)
        sock.settimeout(30)
        sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        body = b""
        while chunk := sock.recv(4096):
            body += chunk
        sock.close()
        got["portforward"] = (body, pf.error(8080))
        pf.close()
    return got


async def test_python_client(env, node):
    got = await asyncio.to_thread(python_client_session, env["srv"].kubeconfig)
    assert got["protocol"] == "v5.channel.k8s.io"  # it offers v5 first, then v4
    assert got["streams"] == ("out\n", "err\n", 0)
    assert got["exit"] == 3
    assert got["stdin"] == ("5000", 0)
    assert "37 101" in got["tty"]
    body, err = got["portforward"]
    assert body.startswith(b"HTTP/1.") and body.endswith(b"hello-pf\n") and err is None


# ---------------------------------------------------------------- raw channel protocols

async def test_channel_v1_binary_and_plain_errors(env, http):
    srv = env["srv"]
    url = ws_url(srv, EXEC, command=sh("echo out; echo err >&2; exit 3"), stdout="1", stderr="1")
    async with http.ws_connect(url, protocols=["channel.k8s.io"]) as ws:
        assert ws.protocol == "channel.k8s.io"
        got = await frames(ws)
    assert all(isinstance(f, bytes) for f in got)
    assert got[0] == b"\x01"  # the empty "ready" message on stdout
    assert b"\x01out\n" in got and b"\x02err\n" in got
    errs = [f[1:] for f in got if f[0] == 3]
    # before v4 the error channel has the bare message, not a Status
    assert len(errs) == 1 and not errs[0].startswith(b"{") and b"exit code 3" in errs[0]
    # success: nothing at all on the error channel
    async with http.ws_connect(ws_url(srv, EXEC, command=["true"], stdout="1"),
                               protocols=["channel.k8s.io"]) as ws:
        got = await frames(ws)
    assert got == [b"\x01"]


async def test_no_subprotocol_is_binary_v1(env, http):
    async with http.ws_connect(ws_url(env["srv"], EXEC, command=sh("echo plain"), stdout="1")) as ws:
        assert ws.protocol is None
        got = await frames(ws)
    assert got == [b"\x01", b"\x01plain\n"]


async def test_base64_channel(env, http):
    srv = env["srv"]
    url = ws_url(srv, EXEC, command=["cat"], stdin="1", stdout="1", stderr="1")
    # v3 and v2 are SPDY-only names: the server skips them and takes the base64 protocol
    async with http.ws_connect(url, protocols=["v3.channel.k8s.io", "base64.channel.k8s.io"]) as ws:
        assert ws.protocol == "base64.channel.k8s.io"
        first = await ws.receive()
        assert (first.type, first.data) == (aiohttp.WSMsgType.TEXT, "1")
        await ws.send_str("0" + base64.b64encode(b"foo\n").decode())
        echoed = await ws.receive()
        assert echoed.type == aiohttp.WSMsgType.TEXT and echoed.data == "1Zm9vCg=="
        await ws.close()  # the caller hanging up ends cat's stdin
    # a failure in base64: the message, base64-encoded on channel '3'
    url = ws_url(srv, EXEC, command=sh("exit 4"), stdout="1")
    async with http.ws_connect(url, protocols=["base64.channel.k8s.io"]) as ws:
        got = await frames(ws)
    assert got[0] == "1" and all(isinstance(f, str) for f in got)
    errs = [base64.b64decode(f[1:]) for f in got if f[0] == "3"]
    assert len(errs) == 1 and b"exit code 4" in errs[0] and not errs[0].startswith(b"{")


async def test_v4_base64_status_and_resize(env, http):
    url = ws_url(env["srv"], EXEC, command=sh("while read x; do stty size; done"), stdin="1", stdout="1",
                 tty="1")
    async with http.ws_connect(url, protocols=["v4.base64.channel.k8s.io"]) as ws:
        assert ws.protocol == "v4.base64.channel.k8s.io"
        await ws.send_str("4" + base64.b64encode(b'{"Width":90,"Height":22}').decode())
        seen = b""
        deadline = time.monotonic() + 30
        while b"22 90" not in seen and time.monotonic() < deadline:
            await ws.send_str("0" + base64.b64encode(b"\n").decode())
            try:
                msg = await ws.receive(timeout=1)
            except asyncio.TimeoutError:
                continue
            if msg.type == aiohttp.WSMsgType.TEXT and msg.data[:1] == "1":
                seen += base64.b64decode(msg.data[1:])
        assert b"22 90" in seen
    async with http.ws_connect(ws_url(env["srv"], EXEC, command=sh("exit 5"), stdout="1"),
                               protocols=["v4.base64.channel.k8s.io"]) as ws:
        got = await frames(ws)
    status = json.loads(base64.b64decode(next(f[1:] for f in got if f[0] == "3")))
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]


async def test_v2_v3_refused(env, http):
    url = ws_url(env["srv"], EXEC, command=["true"], stdout="1")
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await http.ws_connect(url, protocols=["v3.channel.k8s.io", "v2.channel.k8s.io"])
    assert e.value.status == 403


# ---------------------------------------------------------------- port-forward, logs, nodes/proxy

async def test_portforward_v4_base64(env, http):
    url = ws_url(env["srv"], f"/api/v1/namespaces/default/pods/{POD}/portforward", ports="8080,1")
    async with http.ws_connect(url, protocols=["v4.base64.channel.k8s.io"]) as ws:
        prefix = base64.b64encode((8080).to_bytes(2, "little")).decode()
        closed = base64.b64encode((1).to_bytes(2, "little")).decode()
        got = [(await ws.receive()).data for _ in range(4)]
        assert got == ["0" + prefix, "1" + prefix, "2" + closed, "3" + closed]
        # nothing listens on port 1: its error channel says so
        err = await ws.receive(timeout=15)
        assert err.data[0] == "3"
        assert base64.b64decode(err.data[1:]).decode().startswith("error forwarding port 1 to pod ")
        await ws.send_str("0" + base64.b64encode(b"GET /index.html HTTP/1.0\r\n\r\n").decode())
        body = b"".join(base64.b64decode(f[1:]) for f in await frames(ws) if f[0] == "0")
    assert body.startswith(b"HTTP/1.") and body.endswith(b"hello-pf\n")


async def test_log_over_websocket(env, http):
    srv = env["srv"]
    path = f"/api/v1/namespaces/default/pods/{POD}/log"
    async with http.ws_connect(ws_url(srv, path), protocols=["base64.binary.k8s.io"]) as ws:
        assert ws.protocol == "base64.binary.k8s.io"
        got = await frames(ws)
    assert got[0] == "" and base64.b64decode("".join(got[1:])) == b"first-line\n"
    async with http.ws_connect(ws_url(srv, path, tailLines="1"), protocols=["binary.k8s.io"]) as ws:
        got = await frames(ws)
    assert got[0] == b"" and b"".join(got[1:]) == b"first-line\n"


async def test_nodes_proxy_passes_websockets_through(env, http):
    srv = env["srv"]
    url = ws_url(srv, f"/api/v1/nodes/{NODE}/proxy/exec/default/{POD}/main", command=sh("echo via-proxy"),
                 stdout="1")
    async with http.ws_connect(url, protocols=["v4.channel.k8s.io"]) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        got = await frames(ws)
    assert b"\x01via-proxy\n" in got
    assert json.loads(next(f[1:] for f in got if f[0] == 3)) == {"metadata": {}, "status": "Success"}
    # the kubelet's own refusals come back as they are
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await http.ws_connect(url, protocols=["v2.channel.k8s.io"])
    assert e.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await http.ws_connect(url.replace(f"/{POD}/", "/nosuchpod/"), protocols=["v4.channel.k8s.io"])
    assert e.value.status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await http.ws_connect(url.replace("&stdout=1", ""), protocols=["v4.channel.k8s.io"])
    assert e.value.status == 400  # none of stdin, stdout, stderr asked for
    # plain requests still work
    async with http.get(f"{srv.url}/api/v1/nodes/{NODE}/proxy/healthz") as r:
        assert (r.status, await r.text()) == (200, "ok")



# ---------------------------------------------------------------- older SPDY remote-command versions

async def spdy_exec(srv, command: list[str], versions: list[str], *, tty: bool = False):
    """POST an SPDY/3.1 upgrade to pods/exec offering `versions`; returns (status line,
    headers, {streamtype: bytes read}) — streams error and stdout, plus resize when
    `tty` (what a v3 client opens)."""
    from kybernetes.streaming.spdy import Session

    q = urlencode([("command", c) for c in command] + [("stdout", "1")] + ([("tty", "1")] if tty else []))
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port, ssl=srv.ssl_context())
    lines = [f"POST {EXEC}?{q} HTTP/1.1", f"Host: 127.0.0.1:{srv.port}", "Connection: Upgrade",
             "Upgrade: SPDY/3.1", *[f"X-Stream-Protocol-Version: {v}" for v in versions], "Content-Length: 0", "", ""]
    writer.write("\r\n".join(lines).encode())
    try:
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).decode()
        status, *hdrs = head.strip().split("\r\n")
        headers = [tuple(x.strip() for x in h.split(":", 1)) for h in hdrs]
        if " 101 " not in status:
            body = await asyncio.wait_for(reader.read(4096), 30)
            return status, headers, {"body": body}

        async def send(b: bytes) -> None:
            writer.write(b)
            await writer.drain()
        sess = Session(send, server=False)

        async def pump():
            while data := await reader.read(65536):
                sess.feed(data)
            sess.shutdown()
        pumping = asyncio.create_task(pump())
        try:
            streams = {t: await sess.open_stream({"streamtype": t})
                       for t in ["error", "stdout"] + (["resize"] if tty else [])}
            got = {}
            for t in ("stdout", "error"):
                buf = b""
                while data := await asyncio.wait_for(streams[t].read(), 30):
                    buf += data
                got[t] = buf
            return status, headers, got
        finally:
            pumping.cancel()
            sess.shutdown()
    finally:
        writer.close()


async def test_spdy_older_versions(env, node):
    srv = env["srv"]
    # v3: plain-text error stream, and the resize stream is part of a tty session
    status, headers, got = await spdy_exec(srv, sh("echo v3-out; exit 6"), ["v3.channel.k8s.io"], tty=True)
    assert " 101 " in status and ("X-Stream-Protocol-Version", "v3.channel.k8s.io") in headers
    assert got["stdout"].replace(b"\r", b"") == b"v3-out\n"
    assert b"exit code 6" in got["error"] and not got["error"].startswith(b"{")
    # v2 (the client's first supported choice wins), success leaves the error stream empty
    status, headers, got = await spdy_exec(srv, sh("echo v2-out"), ["v9.channel.k8s.io", "v2.channel.k8s.io",
                                                                    "v4.channel.k8s.io"])
    assert ("X-Stream-Protocol-Version", "v2.channel.k8s.io") in headers
    assert got == {"stdout": b"v2-out\n", "error": b""}
    # nothing in common: upstream's plain-text 403 naming what the server accepts
    status, headers, got = await spdy_exec(srv, ["true"], ["v9.channel.k8s.io"])
    assert " 403 " in status
    assert [v for k, v in headers if k == "X-Accepted-Stream-Protocol-Versions"] == [
        "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]
    assert got["body"].decode().startswith("unable to upgrade: unable to negotiate protocol: client supports "
                                           "[v9.channel.k8s.io], server accepts [v5.channel.k8s.io ")
