"""Encryption at rest on etcd: the raw etcd value of a Secret is ciphertext with the
upstream `k8s:enc:<provider>:v1:<key>:` prefix, and --encryption-provider-config-automatic-reload
puts a changed configuration in force without a restart (an invalid one keeps the old)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from fixtures.etcd import EtcdCluster, _http, require_etcd
from fixtures.server import RunningServer, start_server

pytestmark = pytest.mark.slow

KEY1 = base64.b64encode(b"k1" * 16).decode()
KEY2 = base64.b64encode(b"k2" * 16).decode()
PLAIN = "TopSecretValue123"


def write_config(path: Path, providers: list[str]) -> None:
    lines = ["apiVersion: apiserver.config.k8s.io/v1", "kind: EncryptionConfiguration", "resources:",
             "  - resources:", "      - secrets", "    providers:"] + providers + ["      - identity: {}"]
    path.write_text("\n".join(lines) + "\n")


def provider(kind: str, *keys: tuple[str, str]) -> str:
    body = "".join(f"\n            - name: {n}\n              secret: {s}" for n, s in keys)
    return f"      - {kind}:\n          keys:{body}"


def raw_etcd(etcd: EtcdCluster, key: str) -> bytes:
    """The value etcd holds for `key`, through etcd's own JSON gateway (not our client)."""
    doc = _http(etcd.members[0].client_url + "/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()})
    kvs = doc.get("kvs") or []
    assert kvs, f"{key} not in etcd"
    return base64.b64decode(kvs[0]["value"])


def assert_ciphertext(value: bytes, prefix: bytes) -> None:
    assert value.startswith(prefix), value[:40]
    body = value[len(prefix):]
    assert PLAIN.encode() not in body and base64.b64encode(PLAIN.encode()) not in body
    assert b'"Secret"' not in body and b"metadata" not in body


def wait_log(srv: RunningServer, text: str, count: int, timeout: float = 20) -> None:
    """Wait (deadline) until the server log holds `text` `count` times: the reloader's own word."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if srv.log().count(text) >= count:
            return
        assert srv.proc.poll() is None, srv.log()
        time.sleep(0.05)
    raise AssertionError(f"{text!r} x{count} not logged within {timeout}s:\n{srv.log()[-3000:]}")


def secret(srv: RunningServer, name: str) -> str:
    out = srv.kubectl("get", "secret", name, "-o", "jsonpath={.data.password}").stdout
    return base64.b64decode(out).decode()


def test_secrets_on_etcd_are_ciphertext_and_config_reloads_without_restart(tmp_path):
    require_etcd()
    cfg = tmp_path / "enc.yaml"
    write_config(cfg, [provider("aescbc", ("key1", KEY1))])
    etcd = EtcdCluster(tmp_path / "etcd").start()
    srv = None
    try:
        srv = start_server(tmp_path / "srv", timeout=60, extra=(
            "--datastore-endpoint", etcd.url, "--token", "enc", "--disable-controllers", "--disable-scheduler",
            "--encryption-provider-config", str(cfg), "--encryption-provider-config-automatic-reload",
            "--encryption-provider-config-reload-interval", "0.2"))
        pid = srv.proc.pid
        srv.kubectl("create", "secret", "generic", "s1", f"--from-literal=password={PLAIN}")
        srv.kubectl("create", "configmap", "cm1", "--from-literal=k=PlainConfigValue")
        assert_ciphertext(raw_etcd(etcd, "/registry/secrets/default/s1"), b"k8s:enc:aescbc:v1:key1:")
        assert b"PlainConfigValue" in raw_etcd(etcd, "/registry/configmaps/default/cm1")
        assert secret(srv, "s1") == PLAIN

        # a new first provider and key: new writes use it, old data stays readable
        write_config(cfg, [provider("aesgcm", ("key2", KEY2)), provider("aescbc", ("key1", KEY1))])
        wait_log(srv, "loaded new encryption config content", 1)
        srv.kubectl("create", "secret", "generic", "s2", f"--from-literal=password={PLAIN}")
        assert_ciphertext(raw_etcd(etcd, "/registry/secrets/default/s2"), b"k8s:enc:aesgcm:v1:key2:")
        assert raw_etcd(etcd, "/registry/secrets/default/s1").startswith(b"k8s:enc:aescbc:v1:key1:")
        assert secret(srv, "s1") == PLAIN and secret(srv, "s2") == PLAIN

        # rotation step without restart: rewrite all secrets, then s1 is under key2 too
        out = srv.kubectl("get", "secrets", "-A", "-o", "json").stdout
        srv.kubectl("replace", "-f", "-", input=out)
        assert_ciphertext(raw_etcd(etcd, "/registry/secrets/default/s1"), b"k8s:enc:aesgcm:v1:key2:")

        # an invalid configuration is refused; the previous one stays in force
        cfg.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                       "resources:\n  - resources: [secrets]\n    providers: [{aescbc: {keys: []}}]\n")
        wait_log(srv, f"error processing encryption config file {cfg}", 1)
        srv.kubectl("create", "secret", "generic", "s3", f"--from-literal=password={PLAIN}")
        assert_ciphertext(raw_etcd(etcd, "/registry/secrets/default/s3"), b"k8s:enc:aesgcm:v1:key2:")
        assert secret(srv, "s1") == PLAIN and secret(srv, "s3") == PLAIN

        # dropping key1 (all data is under key2 now) and going back to aescbc with key2's name
        write_config(cfg, [provider("aescbc", ("key3", KEY1)), provider("aesgcm", ("key2", KEY2))])
        wait_log(srv, "loaded new encryption config content", 2)
        srv.kubectl("create", "secret", "generic", "s4", f"--from-literal=password={PLAIN}")
        assert_ciphertext(raw_etcd(etcd, "/registry/secrets/default/s4"), b"k8s:enc:aescbc:v1:key3:")
        assert all(secret(srv, n) == PLAIN for n in ("s1", "s2", "s3", "s4"))
        assert srv.proc.pid == pid and srv.proc.poll() is None  # never restarted
    finally:
        if srv is not None:
            srv.stop()
        etcd.kill()
