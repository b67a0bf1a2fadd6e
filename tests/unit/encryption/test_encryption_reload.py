"""--encryption-provider-config-automatic-reload: the reloader on a real file (no server)."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from kybernetes.apiserver.objects import ObjectStore
from kybernetes.storage.encryption import EncryptionConfigError, rewrite_all
from kybernetes.storage.encryption_reload import METRIC_RELOADS, automatic_reload
from kybernetes.storage.sqlite import SQLiteStore

K1 = base64.b64encode(b"1" * 32).decode()
K2 = base64.b64encode(b"2" * 32).decode()
KEY = "/registry/secrets/default/s1"
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}, "data": {"p": "eA=="}}


def write(path, providers) -> None:
    path.write_text(json.dumps({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
                                "resources": [{"resources": ["secrets"], "providers": providers}]}))


def aescbc(*names_keys):
    return {"aescbc": {"keys": [{"name": n, "secret": k} for n, k in names_keys]}}


def samples(reloader) -> dict[str, float]:
    return {lab["status"]: v for name, lab, v in reloader.metrics() if name == METRIC_RELOADS}


async def test_reload_swaps_transformers_only_for_a_valid_changed_file(tmp_path, caplog):
    cfg = tmp_path / "enc.yaml"
    write(cfg, [aescbc(("key1", K1)), {"identity": {}}])
    dynamic, reloader = automatic_reload(cfg, interval=3600, apiserver_id="kube-apiserver-test")
    encode, decode = dynamic.hook()
    old = encode(KEY, b"payload")
    assert old.startswith(b"k8s:enc:aescbc:v1:key1:")

    assert await reloader.check() is False  # unchanged content: nothing to do
    cfg.write_text(cfg.read_text() + "\n")  # same configuration, different bytes: reloaded (hash-based)
    assert await reloader.check() is True

    write(cfg, [aescbc(("key2", K2), ("key1", K1)), {"identity": {}}])
    assert await reloader.check() is True
    new = encode(KEY, b"payload")
    assert new.startswith(b"k8s:enc:aescbc:v1:key2:")
    assert decode(KEY, old) == b"payload"  # key1 still listed: old data readable
    assert dynamic.is_stale(KEY, old) and not dynamic.is_stale(KEY, new)

    # an invalid file: logged, counted, the previous configuration stays in force
    cfg.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: [{}]\n")
    with caplog.at_level(logging.ERROR, logger="kybernetes.encryption"):
        assert await reloader.check() is False
    assert f"error processing encryption config file {cfg}: " in caplog.text
    assert "resources[0]" in reloader.last_error
    assert encode(KEY, b"x").startswith(b"k8s:enc:aescbc:v1:key2:")
    cfg.unlink()
    assert await reloader.check() is False
    assert "error reading encryption provider configuration file" in reloader.last_error
    assert samples(reloader) == {"success": 2.0, "failure": 2.0}
    labels = {lab["apiserver_id_hash"] for _, lab, _ in reloader.metrics()}
    assert labels == {"sha256:" + __import__("hashlib").sha256(b"kube-apiserver-test").hexdigest()}

    write(cfg, [aescbc(("key2", K2)), {"identity": {}}])  # fixed again
    assert await reloader.check() is True
    assert reloader.last_error == "" and samples(reloader)["success"] == 3.0


def test_invalid_file_at_start_is_an_error(tmp_path):
    cfg = tmp_path / "enc.yaml"
    cfg.write_text("")
    with pytest.raises(EncryptionConfigError, match="is empty"):
        automatic_reload(cfg)


async def test_object_store_and_rewrite_follow_the_reloaded_keys(tmp_path):
    cfg = tmp_path / "enc.yaml"
    write(cfg, [aescbc(("key1", K1))])
    dynamic, reloader = automatic_reload(cfg, interval=3600)
    store = SQLiteStore(str(tmp_path / "s.db"), compact_interval=0)
    await store.start()
    try:
        objects = ObjectStore(store, dynamic.hook())
        await store.create(KEY, objects.encode(KEY, SECRET))
        write(cfg, [aescbc(("key2", K2), ("key1", K1))])
        assert await reloader.check()
        kv = await store.get(KEY)
        assert objects.is_stale(kv) and objects.decode(kv)["data"] == SECRET["data"]
        counts = await rewrite_all(objects)
        assert counts["rewritten"] == 1
        assert (await store.get(KEY)).value.startswith(b"k8s:enc:aescbc:v1:key2:")
    finally:
        await store.close()
