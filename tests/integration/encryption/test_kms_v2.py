"""KMS v2 encryption at rest against a real KMS plugin process on a unix socket
(tests/fixtures/kms_plugin.py): envelope format, seed caching, key rotation, a plugin
outage, and a real `kyb server` on etcd whose Secrets are `k8s:enc:kms:v2:<name>:` values."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.etcd import EtcdCluster, _http, require_etcd
from fixtures.server import REPO, start_server

from kybernetes.storage import kms_api
from kybernetes.storage.encryption import (EncryptionConfigError, EncryptionTransformers, TransformError,
                                           parse_encryption_config)

KEY = "/registry/secrets/default/s1"
PLUGIN = REPO / "tests" / "fixtures" / "kms_plugin.py"


class Plugin:
    def __init__(self, tmp: Path) -> None:
        self.socket = tmp / "kms.sock"
        self.key_file = tmp / "key-id"
        self.log_path = tmp / "kms.log"
        self.key_file.write_text("key-1\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Plugin":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(PLUGIN), str(self.socket), str(self.key_file)],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 20
        while "serving" not in self.log():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, "KMS plugin did not start"
            time.sleep(0.02)
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def calls(self, what: str) -> int:
        return sum(1 for line in self.log().splitlines() if line.startswith(what))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def plugin(tmp_path):
    p = Plugin(tmp_path).start()
    try:
        yield p
    finally:
        p.stop()


def config(plugin: Plugin, extra: str = "") -> str:
    return (f"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
            f"  - resources: [secrets]\n    providers:\n"
            f"      - kms: {{apiVersion: v2, name: myKms, endpoint: 'unix://{plugin.socket}', timeout: 2s}}\n"
            f"{extra}      - identity: {{}}\n")


def transformers(plugin: Plugin) -> EncryptionTransformers:
    return EncryptionTransformers(parse_encryption_config(config(plugin)))


def envelope(value: bytes) -> object:
    prefix = b"k8s:enc:kms:v2:myKms:"
    assert value.startswith(prefix), value[:40]
    return kms_api.EncryptedObject.FromString(value[len(prefix):])


def test_envelope_seed_cache_and_restart(plugin):
    t = transformers(plugin)
    assert plugin.calls("Status") == 1 and plugin.calls("Encrypt") == 1  # one seed, not one per write
    a = t.encode(KEY, b'{"data":"secret-a"}')
    b = t.encode("/registry/secrets/default/s2", b'{"data":"secret-b"}')
    assert plugin.calls("Encrypt") == 1
    obj = envelope(a)
    assert obj.keyID == "key-1"
    assert obj.encryptedDEKSourceType == kms_api.HKDF_SHA256_XNONCE_AES_GCM_SEED
    assert obj.encryptedDEKSource == envelope(b).encryptedDEKSource  # shared seed
    assert dict(obj.annotations) == {"key-version.kms.kybernetes.test": b"1"}
    assert b"secret-a" not in a and len(obj.encryptedData) == 32 + 12 + len(b'{"data":"secret-a"}') + 16
    assert t.decode(KEY, a) == b'{"data":"secret-a"}'
    assert plugin.calls("Decrypt") == 0  # own seed: cached
    # the storage key is authenticated: a value moved to another key does not decrypt
    with pytest.raises(Exception, match="message authentication failed"):
        t.decode("/registry/secrets/default/other", a)

    restarted = transformers(plugin)  # a new process: one Decrypt for the old seed, then cached
    assert restarted.decode(KEY, a) == b'{"data":"secret-a"}'
    assert restarted.decode("/registry/secrets/default/s2", b) == b'{"data":"secret-b"}'
    assert plugin.calls("Decrypt") == 1
    assert not restarted.is_stale(KEY, a)  # same key_id: current


def test_key_rotation_and_plugin_outage(plugin):
    t = transformers(plugin)
    old = t.encode(KEY, b"v1")
    plugin.key_file.write_text("key-2\n")
    kms = t.for_resource(("", "secrets")).items[0][1]
    assert kms.refresh() is True and plugin.calls("Encrypt") == 2
    new = t.encode(KEY, b"v2")
    assert envelope(new).keyID == "key-2" and envelope(old).keyID == "key-1"
    assert t.is_stale(KEY, old) and not t.is_stale(KEY, new)
    assert t.decode(KEY, old) == b"v1" and t.decode(KEY, new) == b"v2"

    fresh = transformers(plugin)  # knows neither seed yet
    plugin.stop()
    assert t.decode(KEY, old) == b"v1"  # cached seeds keep working without the plugin
    with pytest.raises(Exception) as e:
        fresh.decode(KEY, old)
    assert 'unable to transform key "/registry/secrets/default/s1": failed to decrypt DEK' in str(e.value)
    with pytest.raises(EncryptionConfigError, match='kms provider "myKms"'):
        transformers(plugin)


def test_corrupt_envelope_is_a_clear_error(plugin):
    t = transformers(plugin)
    kms = t.for_resource(("", "secrets")).items[0][1]
    with pytest.raises(TransformError, match="failed to unmarshal encrypted object|encrypted data is empty"):
        kms.from_storage(b"\xff\xff\xff", b"k")


def readyz(srv) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(srv.url + "/readyz?verbose", context=srv.ssl_context(), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.mark.slow
def test_server_on_etcd_with_kms_v2(plugin, tmp_path):
    require_etcd()
    cfg = tmp_path / "enc.yaml"
    cfg.write_text(config(plugin))
    etcd = EtcdCluster(tmp_path / "etcd").start()
    srv = None
    extra = ("--datastore-endpoint", etcd.url, "--token", "kms", "--disable-controllers", "--disable-scheduler",
             "--encryption-provider-config", str(cfg))
    try:
        srv = start_server(tmp_path / "srv", timeout=60, extra=extra)
        srv.kubectl("create", "secret", "generic", "s1", "--from-literal=password=TopSecretValue123")
        doc = _http(etcd.members[0].client_url + "/v3/kv/range",
                    {"key": base64.b64encode(b"/registry/secrets/default/s1").decode()})
        raw = base64.b64decode(doc["kvs"][0]["value"])
        obj = envelope(raw)
        assert obj.keyID == "key-1" and b"TopSecretValue123" not in raw
        assert base64.b64encode(b"TopSecretValue123") not in raw
        srv.stop()
        decrypts = plugin.calls("Decrypt")
        srv = start_server(tmp_path / "srv", timeout=60, extra=extra)
        out = srv.kubectl("get", "secret", "s1", "-o", "jsonpath={.data.password}").stdout
        assert base64.b64decode(out) == b"TopSecretValue123"
        assert plugin.calls("Decrypt") == decrypts + 1  # the restarted server unwrapped the seed once
        assert "[+]kms-provider-0 ok\n" in readyz(srv)[1]
        plugin.stop()  # the plugin goes away: /readyz says so; the cached seed still serves reads
        deadline = time.monotonic() + 20
        while (r := readyz(srv))[0] != 500:
            assert time.monotonic() < deadline, r
            time.sleep(0.1)
        assert "[-]kms-provider-0 failed: reason withheld\n" in r[1] and "[+]etcd ok\n" in r[1], r
        out = srv.kubectl("get", "secret", "s1", "-o", "jsonpath={.data.password}").stdout
        assert base64.b64decode(out) == b"TopSecretValue123"
    finally:
        if srv is not None:
            srv.stop()
        etcd.kill()
