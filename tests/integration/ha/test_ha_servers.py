"""Two `kyb server` processes on one real etcd with the same --token: one cluster.

Shared state and watches across servers, a shared CA (server A's admin kubeconfig
works against server B), a wrong token refused, exactly one holder per Lease, and
hand-over within the lease duration when the leader is killed."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fixtures.etcd import EtcdCluster, require_etcd
from fixtures.server import REPO, RunningServer, free_port, start_server

pytestmark = pytest.mark.slow

TOKEN = "ha-test-token"
LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
ELECTION = ("--leader-elect-lease-duration", f"{LEASE}s", "--leader-elect-renew-deadline", f"{RENEW}s",
            "--leader-elect-retry-period", f"{RETRY}s")


def _server(base: Path, name: str, etcd: EtcdCluster, token: str = TOKEN) -> RunningServer:
    return start_server(base / name, extra=("--datastore-endpoint", etcd.url, "--token", token,
                                            "--node-name", name, *ELECTION), timeout=60)


def _identity(srv: RunningServer) -> str:
    # written as the server's controllers start, which is a moment after /readyz answers
    path = srv.data_dir / "leader-election-id"
    uid = _wait(lambda: path.exists() and path.read_text().strip(), 10, "the leader-election id")
    return f"{srv.data_dir.name}_{uid}"


def _get(srv: RunningServer, path: str, ctx=None) -> dict:
    with urllib.request.urlopen(srv.url + path, context=ctx or srv.ssl_context(), timeout=10) as r:
        return json.loads(r.read())


def _lease(srv: RunningServer, name: str) -> dict:
    return _get(srv, f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}")["spec"]


def _wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_etcd()
    base = tmp_path_factory.mktemp("ha")
    etcd = EtcdCluster(base / "etcd").start()
    servers: list[RunningServer] = []
    try:
        servers.append(_server(base, "a", etcd))
        servers.append(_server(base, "b", etcd))
        yield etcd, servers[0], servers[1], base
    finally:
        for s in servers:
            s.stop()
        etcd.stop()


def test_shared_ca_and_state(cluster):
    etcd, a, b, _ = cluster
    for f in ("ca.crt", "ca.key", "sa.key", "sa.pub"):
        assert (a.data_dir / "tls" / f).read_bytes() == (b.data_dir / "tls" / f).read_bytes(), f
    # each server has its own serving and admin certificates, from the shared CA
    assert (a.data_dir / "tls" / "apiserver.crt").read_bytes() != (b.data_dir / "tls" / "apiserver.crt").read_bytes()
    assert "cluster identity stored" in a.log() and "cluster identity loaded" in b.log()
    # A's admin credentials against B, and B's against A
    assert {n["metadata"]["name"] for n in _get(b, "/api/v1/namespaces", a.ssl_context())["items"]} >= {
        "default", "kube-system"}
    _get(a, "/api/v1/namespaces", b.ssl_context())
    # A's kubeconfig, pointed at B, with the real kubectl
    a.kubectl("create", "configmap", "shared-1", "--from-literal=k=v")
    out = a.kubectl("--server", b.url, "get", "configmap", "shared-1", "-o", "json").stdout
    assert json.loads(out)["data"] == {"k": "v"}


def test_write_through_a_seen_by_watch_on_b(cluster):
    etcd, a, b, _ = cluster
    rv = _get(b, "/api/v1/namespaces/default/configmaps")["metadata"]["resourceVersion"]
    conn = http.client.HTTPSConnection("127.0.0.1", b.port, context=b.ssl_context(), timeout=15)
    try:
        conn.request("GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}")
        resp = conn.getresponse()
        assert resp.status == 200
        a.kubectl("create", "configmap", "via-a", "--from-literal=x=1")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = resp.readline()
            assert line, "watch ended"
            ev = json.loads(line)
            if ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "via-a":
                assert ev["object"]["data"] == {"x": "1"}
                break
        else:
            raise AssertionError("no ADDED event for via-a on B")
    finally:
        conn.close()


def test_wrong_token_refused(cluster):
    etcd, a, b, base = cluster
    d = base / "wrong"
    d.mkdir()
    p = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "server", "--data-dir", str(d),
                        "--https-port", str(free_port()), "--disable-agent", "--datastore-endpoint", etcd.url,
                        "--token", "not-the-token"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "different --token" in (p.stdout + p.stderr), p.stdout + p.stderr
    assert not (d / "tls" / "ca.key").exists()


def _whoami(srv: RunningServer, token: str, empty_kubeconfig: Path) -> subprocess.CompletedProcess:
    """`kubectl auth whoami` against `srv` with nothing but a bearer token."""
    return srv.kubectl("--server", srv.url, "--certificate-authority", str(srv.data_dir / "tls" / "ca.crt"),
                       "--token", token, "auth", "whoami", "-o", "json", check=False,
                       env={"KUBECONFIG": str(empty_kubeconfig)})


def test_service_account_token_from_one_server_works_on_the_other(cluster):
    etcd, a, b, base = cluster
    empty = base / "empty.kubeconfig"
    empty.write_text("")
    a.kubectl("create", "serviceaccount", "robot")
    for issuer, other in ((a, b), (b, a)):
        token = issuer.kubectl("create", "token", "robot", "--duration=10m").stdout.strip()
        for srv in (issuer, other):
            p = _whoami(srv, token, empty)
            assert p.returncode == 0, p.stderr
            user = json.loads(p.stdout)["status"]["userInfo"]
            assert user["username"] == "system:serviceaccount:default:robot"
            assert "system:serviceaccounts:default" in user["groups"]
        # a token whose signature is not the cluster's is refused by the other server
        head, payload, sig = token.split(".")
        forged = f"{head}.{payload}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
        p = _whoami(other, forged, empty)
        assert p.returncode != 0 and "Unauthorized" in p.stderr, p.stderr


def test_servers_without_token_generate_one_or_refuse(tmp_path):
    require_etcd()
    etcd = EtcdCluster(tmp_path / "etcd").start()
    servers: list[RunningServer] = []
    try:
        def tokenless(name: str) -> subprocess.CompletedProcess:
            d = tmp_path / name
            d.mkdir()
            return subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "server", "--data-dir", str(d),
                                   "--https-port", str(free_port()), "--disable-agent",
                                   "--datastore-endpoint", etcd.url], cwd=REPO, capture_output=True,
                                  text=True, timeout=60)

        # the first server on an empty datastore generates the cluster token and seals with it
        first = start_server(tmp_path / "first", extra=("--datastore-endpoint", etcd.url, *ELECTION), timeout=60)
        servers.append(first)
        token = (first.data_dir / "token").read_text().strip()
        assert token and (first.data_dir / "token").stat().st_mode & 0o777 == 0o600
        assert "generated the cluster token" in first.log() and "cluster identity stored" in first.log()
        assert token not in first.log()  # the secret itself is not logged

        # a second server without a token refuses, saying what to do, and takes nothing
        p = tokenless("second")
        assert p.returncode != 0
        out = p.stdout + p.stderr
        assert "already holds a cluster identity sealed with a token, and no --token was given" in out, out
        assert not (tmp_path / "second" / "tls").exists() and not (tmp_path / "second" / "token").exists()

        # with the first server's token it joins the cluster
        joined = start_server(tmp_path / "third", extra=("--datastore-endpoint", etcd.url, "--token", token,
                                                         *ELECTION), timeout=60)
        servers.append(joined)
        assert "cluster identity loaded" in joined.log()
        assert (joined.data_dir / "tls" / "ca.crt").read_bytes() == (first.data_dir / "tls" / "ca.crt").read_bytes()
        assert not (joined.data_dir / "token").exists()

        # the first server restarts without --token: its token file opens the identity again
        first.stop()
        again = start_server(tmp_path / "first", extra=("--datastore-endpoint", etcd.url, *ELECTION), timeout=60)
        servers.append(again)
        assert "kyb server: cluster identity loaded" in again.log()
        assert (again.data_dir / "token").read_text().strip() == token
        _get(again, "/api/v1/namespaces", joined.ssl_context())  # one CA: B's admin works on A
    finally:
        for s in servers:
            s.stop()
        etcd.stop()


def test_one_holder_per_lease(cluster):
    etcd, a, b, _ = cluster
    ids = {_identity(a), _identity(b)}
    for name in ("kube-controller-manager", "kube-scheduler"):
        first = _wait(lambda: _lease(a, name), 10, f"lease {name}")
        assert first["holderIdentity"] in ids
        assert first["leaseDurationSeconds"] == 3
        assert first["acquireTime"] and first["renewTime"]
        # the same holder keeps renewing, seen identically through both servers
        later = _wait(lambda: (s := _lease(b, name))["renewTime"] != first["renewTime"] and s, 5 * RETRY + 3,
                      f"renewal of {name}")
        assert later["holderIdentity"] == first["holderIdentity"]
        assert later["acquireTime"] == first["acquireTime"]
    # only the holder of kube-controller-manager runs controllers
    holder = _lease(a, "kube-controller-manager")["holderIdentity"]
    running = [s for s in (a, b) if "controller manager: running" in s.log()]
    assert [_identity(s) for s in running] == [holder]


def test_killing_the_leader_hands_over_within_the_lease_duration(tmp_path):
    require_etcd()
    etcd = EtcdCluster(tmp_path / "etcd").start()
    servers: list[RunningServer] = []
    try:
        servers += [_server(tmp_path, "a", etcd), _server(tmp_path, "b", etcd)]
        by_id = {_identity(s): s for s in servers}
        name = "kube-controller-manager"
        spec = _wait(lambda: (s := _lease(servers[0], name))["holderIdentity"] in by_id and s, 10, "a holder")
        leader = by_id[spec["holderIdentity"]]
        other = next(s for s in servers if s is not leader)
        sched_holder = _lease(other, "kube-scheduler")["holderIdentity"]

        leader.stop(signal.SIGKILL)  # a crash: nothing released
        killed_at = time.monotonic()
        new = _wait(lambda: (s := _lease(other, name))["holderIdentity"] == _identity(other) and s,
                    LEASE + 4 * RETRY + 3, "hand-over")
        took = time.monotonic() - killed_at
        # the standby waits one lease duration from its last observed renewal, plus a retry round
        assert took < LEASE + 2 * RETRY * 1.2 + 2.0, took
        assert new["leaseTransitions"] == spec["leaseTransitions"] + 1
        if sched_holder == _identity(leader):
            _wait(lambda: _lease(other, "kube-scheduler")["holderIdentity"] == _identity(other),
                  LEASE + 4 * RETRY + 3, "scheduler hand-over")
        # the new leader's controllers act: a new namespace gets its default ServiceAccount
        other.kubectl("create", "namespace", "after-handover")
        _wait(lambda: other.kubectl("get", "serviceaccount", "default", "-n", "after-handover",
                                    check=False).returncode == 0, 20, "default ServiceAccount")

        # a clean shutdown releases the lease (holderIdentity cleared)
        other.stop(signal.SIGTERM)
        assert other.proc.returncode == 0
        restarted = _server(tmp_path, "a" if leader.data_dir.name == "a" else "b", etcd)
        servers.append(restarted)
        # the released lease (or the restarted server's own, same identity) is taken at once
        _wait(lambda: _lease(restarted, name)["holderIdentity"] == _identity(restarted), 2 * RETRY + 3,
              "restarted server leads")
    finally:
        for s in servers:
            s.stop()
        etcd.stop()
