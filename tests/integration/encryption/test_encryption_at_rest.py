"""Encryption at rest end to end: a real `kyb server --encryption-provider-config`, kubectl,
and the raw SQLite rows (read with the stdlib sqlite3, read-only, after the server stopped)."""

from __future__ import annotations

import argparse
import base64
import sqlite3
from pathlib import Path

import pytest

from fixtures.server import start_server

KEY1 = base64.b64encode(b"k1" * 16).decode()
KEY2 = base64.b64encode(b"k2" * 16).decode()
KEY3 = base64.b64encode(b"k3" * 16).decode()
PLAIN = "TopSecretValue123"
PLAIN_B64 = base64.b64encode(PLAIN.encode()).decode()


def write_config(path: Path, keys: list[tuple[str, str]], provider: str = "aescbc") -> Path:
    lines = ["apiVersion: apiserver.config.k8s.io/v1", "kind: EncryptionConfiguration", "resources:",
             "  - resources:", "      - secrets", "    providers:", f"      - {provider}:", "          keys:"]
    for name, secret in keys:
        lines += [f"            - name: {name}", f"              secret: {secret}"]
    lines += ["      - identity: {}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def raw_value(data_dir: Path, key: str) -> bytes:
    db = data_dir / "db" / "state.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value, deleted FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1", (key,)).fetchone()
    finally:
        con.close()
    assert row is not None and not row[1], f"{key} not stored"
    return bytes(row[0])


def rewrite(data_dir: Path, config: Path) -> None:
    from kybernetes.cli import secrets_encrypt

    parser = argparse.ArgumentParser()
    secrets_encrypt.add_arguments(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["secrets-encrypt", "rewrite", "--data-dir", str(data_dir),
                              "--encryption-provider-config", str(config)])
    assert secrets_encrypt.run(args) == 0


def secret_value(srv, name: str) -> str:
    out = srv.kubectl("get", "secret", name, "-o", "jsonpath={.data.password}").stdout
    return base64.b64decode(out).decode()


def test_encryption_rotation_and_rewrite(tmp_path):
    data = tmp_path / "data"
    cfg1 = write_config(tmp_path / "enc1.yaml", [("key1", KEY1)])

    # 1. encryption on with key1: the secret is ciphertext at rest, plaintext through the API
    srv = start_server(data, extra=("--encryption-provider-config", str(cfg1)))
    try:
        srv.kubectl("create", "secret", "generic", "s1", f"--from-literal=password={PLAIN}")
        srv.kubectl("create", "configmap", "cm1", "--from-literal=k=PlainConfigValue")
        assert secret_value(srv, "s1") == PLAIN
    finally:
        srv.stop()
    stored = raw_value(data, "/registry/secrets/default/s1")
    assert stored.startswith(b"k8s:enc:aescbc:v1:key1:")
    assert PLAIN.encode() not in stored and PLAIN_B64.encode() not in stored and b'"Secret"' not in stored
    assert b"PlainConfigValue" in raw_value(data, "/registry/configmaps/default/cm1")  # not listed: plaintext

    # 2. rotation: key2 first, key1 still decrypts old data; new writes use key2
    cfg2 = write_config(tmp_path / "enc2.yaml", [("key2", KEY2), ("key1", KEY1)])
    srv = start_server(data, extra=("--encryption-provider-config", str(cfg2)))
    try:
        assert secret_value(srv, "s1") == PLAIN
        srv.kubectl("create", "secret", "generic", "s2", "--from-literal=password=second")
        assert secret_value(srv, "s2") == "second"
        assert "PlainConfigValue" in srv.kubectl("get", "configmap", "cm1", "-o", "yaml").stdout
    finally:
        srv.stop()
    assert raw_value(data, "/registry/secrets/default/s1").startswith(b"k8s:enc:aescbc:v1:key1:")
    assert raw_value(data, "/registry/secrets/default/s2").startswith(b"k8s:enc:aescbc:v1:key2:")

    # 3. rewrite everything with the current key, then drop key1
    rewrite(data, cfg2)
    assert raw_value(data, "/registry/secrets/default/s1").startswith(b"k8s:enc:aescbc:v1:key2:")
    cfg3 = write_config(tmp_path / "enc3.yaml", [("key2", KEY2)])
    srv = start_server(data, extra=("--encryption-provider-config", str(cfg3)))
    try:
        assert secret_value(srv, "s1") == PLAIN
        assert secret_value(srv, "s2") == "second"
    finally:
        srv.stop()

    # 4. a missing key is a clear 500 for that object, not a crash; other objects are fine
    cfg4 = write_config(tmp_path / "enc4.yaml", [("key3", KEY3)])
    srv = start_server(data, extra=("--encryption-provider-config", str(cfg4)))
    try:
        p = srv.kubectl("get", "secret", "s1", check=False)
        assert p.returncode != 0
        assert ('Error from server (InternalError): Internal error occurred: unable to transform key '
                '"/registry/secrets/default/s1": no matching key was found for the provided AES transformer') in p.stderr
        assert "PlainConfigValue" in srv.kubectl("get", "configmap", "cm1", "-o", "yaml").stdout
        assert srv.proc.poll() is None
    finally:
        srv.stop()


@pytest.mark.parametrize("provider,secret", [("aesgcm", KEY1), ("secretbox", KEY1)])
def test_other_providers_at_rest(tmp_path, provider, secret):
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "enc.yaml", [("k", secret)], provider=provider)
    srv = start_server(data, extra=("--encryption-provider-config", str(cfg)))
    try:
        srv.kubectl("create", "secret", "generic", "s1", f"--from-literal=password={PLAIN}")
        assert secret_value(srv, "s1") == PLAIN
    finally:
        srv.stop()
    stored = raw_value(data, "/registry/secrets/default/s1")
    assert stored.startswith(f"k8s:enc:{provider}:v1:k:".encode())
    assert PLAIN_B64.encode() not in stored


def test_existing_plaintext_stays_readable_and_invalid_config_fails(tmp_path):
    data = tmp_path / "data"
    srv = start_server(data)
    try:
        srv.kubectl("create", "secret", "generic", "old", f"--from-literal=password={PLAIN}")
    finally:
        srv.stop()
    assert PLAIN_B64.encode() in raw_value(data, "/registry/secrets/default/old")
    cfg = write_config(tmp_path / "enc.yaml", [("key1", KEY1)])
    srv = start_server(data, extra=("--encryption-provider-config", str(cfg)))
    try:
        assert secret_value(srv, "old") == PLAIN  # through the trailing identity provider
    finally:
        srv.stop()
    rewrite(data, cfg)
    assert raw_value(data, "/registry/secrets/default/old").startswith(b"k8s:enc:aescbc:v1:key1:")

    bad = tmp_path / "bad.yaml"
    bad.write_text(write_config(tmp_path / "tmp.yaml", [("key1", base64.b64encode(b"short").decode())]).read_text())
    with pytest.raises(RuntimeError) as e:
        start_server(data, extra=("--encryption-provider-config", str(bad)), timeout=20)
    assert "secret is not of the expected length, got 5, expected one of [16 24 32]" in str(e.value)
