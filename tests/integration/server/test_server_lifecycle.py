"""`kyb server` lifecycle: state survives restart and SIGKILL; one server per data dir."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml

from fixtures.server import REPO, RunningServer, free_port, start_server


def admin_session(srv: RunningServer) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=srv.ssl_context(), limit=64),
                                 timeout=aiohttp.ClientTimeout(total=30))


async def call(s: aiohttp.ClientSession, srv: RunningServer, method: str, path: str, body=None):
    data = orjson.dumps(body) if body is not None else None
    async with s.request(method, srv.url + path, data=data,
                         headers={"Content-Type": "application/json"} if data else None) as r:
        return r.status, orjson.loads(await r.read())


async def must(s, srv, method, path, body=None, status=200):
    got, obj = await call(s, srv, method, path, body)
    assert got == status, f"{method} {path}: HTTP {got}: {obj}"
    return obj


def cm(name: str, **data) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"k": name}},
            "data": data or {"a": "b"}}


def kubeconfig_credentials(path: Path) -> dict:
    kc = yaml.safe_load(path.read_text())
    return {"ca": [c["cluster"]["certificate-authority-data"] for c in kc["clusters"]],
            "server": [c["cluster"]["server"] for c in kc["clusters"]],
            "cert": [u["user"]["client-certificate-data"] for u in kc["users"]],
            "key": [u["user"]["client-key-data"] for u in kc["users"]]}


def integrity_check(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def servers():
    """Servers a test started; stopped (by PID) at the end whatever happens."""
    started: list[RunningServer] = []
    yield started
    for srv in started:
        srv.stop(signal.SIGKILL if srv.proc.poll() is None else signal.SIGTERM)


# ---------------------------------------------------------------------- restart
async def test_restart_keeps_all_state(tmp_path, servers):
    data = tmp_path / "data"
    port = free_port()
    srv = start_server(data, port=port)
    servers.append(srv)
    ca_before = (data / "tls" / "ca.crt").read_bytes()
    admin_crt_before = (data / "tls" / "admin.crt").read_bytes()
    creds_before = kubeconfig_credentials(srv.kubeconfig)

    paths = []
    async with admin_session(srv) as s:
        await must(s, srv, "POST", "/api/v1/namespaces",
                   {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keep"}}, 201)
        paths.append("/api/v1/namespaces/keep")
        for i in range(5):
            await must(s, srv, "POST", "/api/v1/namespaces/keep/configmaps", cm(f"cm{i}", i=str(i)), 201)
            paths.append(f"/api/v1/namespaces/keep/configmaps/cm{i}")
        # an updated and a deleted object: the newest state is what survives
        got = await must(s, srv, "GET", "/api/v1/namespaces/keep/configmaps/cm1")
        got["data"] = {"updated": "yes"}
        await must(s, srv, "PUT", "/api/v1/namespaces/keep/configmaps/cm1", got)
        await must(s, srv, "DELETE", "/api/v1/namespaces/keep/configmaps/cm4")
        paths.remove("/api/v1/namespaces/keep/configmaps/cm4")
        dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
        await must(s, srv, "POST", "/apis/apps/v1/namespaces/keep/deployments", dep, 201)
        paths.append("/apis/apps/v1/namespaces/keep/deployments/web")
        for sysns in ("default", "kube-system", "kube-public"):
            paths.append(f"/api/v1/namespaces/{sysns}")
        before = {p: await must(s, srv, "GET", p) for p in paths}
        list_before = await must(s, srv, "GET", "/api/v1/namespaces/keep/configmaps")

    assert srv.stop(signal.SIGTERM) == 0, f"SIGTERM should be a clean exit:\n{srv.log()}"

    srv2 = start_server(data, port=port)
    servers.append(srv2)
    assert (data / "tls" / "ca.crt").read_bytes() == ca_before, "the CA is reused"
    assert (data / "tls" / "admin.crt").read_bytes() == admin_crt_before, "the admin certificate is reused"
    assert kubeconfig_credentials(srv2.kubeconfig) == creds_before, "the admin kubeconfig is reused"

    async with admin_session(srv2) as s:
        for p, obj in before.items():
            now = await must(s, srv2, "GET", p)
            if p.startswith("/apis/apps/"):
                # a controller may have written status since; what the user wrote is unchanged
                for k in ("uid", "creationTimestamp", "generation", "name", "namespace", "labels"):
                    assert now["metadata"].get(k) == obj["metadata"].get(k), (p, k)
                assert now["spec"] == obj["spec"]
                assert int(now["metadata"]["resourceVersion"]) >= int(obj["metadata"]["resourceVersion"])
            else:
                assert now == obj, f"{p} changed across restart"
        (status, _) = await call(s, srv2, "GET", "/api/v1/namespaces/keep/configmaps/cm4")
        assert status == 404
        list_after = await must(s, srv2, "GET", "/api/v1/namespaces/keep/configmaps")
        mine = lambda lst: {i["metadata"]["name"]: i for i in lst["items"] if i["metadata"]["name"].startswith("cm")}
        assert mine(list_after) == mine(list_before) and len(mine(list_before)) == 4
        # the revision counter continues: new writes get newer resourceVersions
        newest = max(int(o["metadata"]["resourceVersion"]) for o in before.values())
        created = await must(s, srv2, "POST", "/api/v1/namespaces/keep/configmaps", cm("after"), 201)
        assert int(created["metadata"]["resourceVersion"]) > newest
        assert int(list_after["metadata"]["resourceVersion"]) >= newest
    # the real kubectl works with the reused kubeconfig
    out = srv2.kubectl("get", "configmap", "cm0", "-n", "keep", "-o", "jsonpath={.metadata.uid}")
    assert out.stdout == before["/api/v1/namespaces/keep/configmaps/cm0"]["metadata"]["uid"]


# ---------------------------------------------------------------------- one server per data dir
async def test_second_server_on_same_data_dir_refuses(tmp_path, servers):
    data = tmp_path / "data"
    srv = start_server(data)
    servers.append(srv)
    kc_before = srv.kubeconfig.read_bytes()
    async with admin_session(srv) as s:
        await must(s, srv, "POST", "/api/v1/namespaces/default/configmaps", cm("first"), 201)

    port2 = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kybernetes.cli.main", "server", "--data-dir", str(data),
         "--https-port", str(port2), "--disable-agent"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
        raise AssertionError(f"second server did not exit:\n{out.decode(errors='replace')}")
    text = out.decode(errors="replace")
    assert proc.returncode != 0, text
    assert str(data) in text or str(data.resolve()) in text, f"message should name the data dir:\n{text}"
    assert "Traceback" not in text, f"a clear message, not a traceback:\n{text}"

    # the first server is untouched and keeps serving
    assert srv.proc.poll() is None
    assert srv.kubeconfig.read_bytes() == kc_before
    async with admin_session(srv) as s:
        async with s.get(srv.url + "/readyz") as r:
            assert r.status == 200 and await r.text() == "ok"
        await must(s, srv, "GET", "/api/v1/namespaces/default/configmaps/first")
        await must(s, srv, "POST", "/api/v1/namespaces/default/configmaps", cm("second"), 201)
    # nothing listens on the second port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port2), timeout=1).close()


# ---------------------------------------------------------------------- crash safety
async def test_acknowledged_creates_survive_sigkill(tmp_path, servers):
    data = tmp_path / "data"
    srv = start_server(data)
    servers.append(srv)
    acked: dict[str, str] = {}  # name -> uid of every 201
    stop = asyncio.Event()
    WORKERS, TARGET = 12, 400

    async with admin_session(srv) as s:
        await must(s, srv, "POST", "/api/v1/namespaces",
                   {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "burst"}}, 201)

        async def writer(w: int) -> None:
            i = 0
            while not stop.is_set():
                name = f"w{w:02d}-{i:05d}"
                i += 1
                try:
                    status, obj = await call(s, srv, "POST", "/api/v1/namespaces/burst/configmaps", cm(name, n=str(i)))
                except (aiohttp.ClientError, asyncio.TimeoutError, orjson.JSONDecodeError, ConnectionError):
                    return  # the server is gone
                if status == 201:
                    acked[name] = obj["metadata"]["uid"]
                else:
                    raise AssertionError(f"create {name}: HTTP {status}: {obj}")

        tasks = [asyncio.create_task(writer(w)) for w in range(WORKERS)]
        deadline = time.monotonic() + 60
        while len(acked) < TARGET:
            assert time.monotonic() < deadline, f"only {len(acked)} creates acknowledged in 60s"
            assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
            await asyncio.sleep(0.01)
        # mid-burst: every writer has a request in flight
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert srv.proc.returncode == -signal.SIGKILL
    assert len(acked) >= TARGET

    srv2 = start_server(data, port=srv.port)
    servers.append(srv2)
    async with admin_session(srv2) as s:
        lst = await must(s, srv2, "GET", "/api/v1/namespaces/burst/configmaps")
        present = {i["metadata"]["name"]: i["metadata"]["uid"] for i in lst["items"]}
        missing = sorted(n for n in acked if n not in present)
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged creates lost, e.g. {missing[:5]}"
        wrong = [n for n, uid in acked.items() if present[n] != uid]
        assert not wrong, f"acknowledged objects came back with other uids: {wrong[:5]}"
        # the server keeps working after recovery
        await must(s, srv2, "POST", "/api/v1/namespaces/burst/configmaps", cm("after-crash"), 201)
    assert srv2.stop(signal.SIGTERM) == 0, srv2.log()
    assert integrity_check(data / "db" / "state.db") == "ok"
