"""Shared cluster identity sealed with --token (logic, on a SQLite store)."""

from __future__ import annotations

import pytest

from kybernetes.auth import cluster_identity as ci
from kybernetes.auth import pki
from kybernetes.storage import open_store

SANS = dict(sans_dns=["localhost"], sans_ip=["127.0.0.1"])


def test_encrypt_roundtrip_and_wrong_token():
    blob = ci.encrypt("s3cret", {"ca.crt": b"A", "ca.key": b"B"})
    assert b"s3cret" not in blob and b'"A"' not in blob
    assert ci.decrypt("s3cret", blob) == {"ca.crt": b"A", "ca.key": b"B"}
    with pytest.raises(ci.BootstrapError, match="--token"):
        ci.decrypt("other", blob)
    with pytest.raises(ci.BootstrapError, match="unsupported|corrupt"):
        ci.decrypt("s3cret", b"{}")
    assert ci.bootstrap_key("s3cret").startswith("/bootstrap/") and ci.bootstrap_key("s3cret") != ci.bootstrap_key("x")
    assert ci.shared_datastore("etcd://127.0.0.1:2379") and not ci.shared_datastore("sqlite:///tmp/x.db")


async def test_first_server_stores_later_server_loads_wrong_token_refused(tmp_path):
    store = open_store(f"sqlite://{tmp_path / 'state.db'}")
    await store.start()
    try:
        a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
        assert await ci.sync_identity(store, a, "tok", **SANS) == "stored"
        pki.ensure_pki(b, **SANS)  # b already has a CA of its own: it is replaced
        assert await ci.sync_identity(store, b, "tok", **SANS) == "loaded"
        for name in ("ca.crt", "ca.key", "sa.key", "sa.pub"):
            assert (a / "tls" / name).read_bytes() == (b / "tls" / name).read_bytes()
        # ensure_pki then reissues b's own leaves from the shared CA
        paths = pki.ensure_pki(b, **SANS)
        assert pki._issued_by(pki._load_pem_cert(paths.admin_cert), pki.load_ca(a))
        assert (a / "tls" / "apiserver.crt").read_bytes() != paths.serving_cert.read_bytes()
        assert await ci.sync_identity(store, a, "tok", **SANS) == "loaded"  # restart: idempotent
        with pytest.raises(ci.BootstrapError, match="different --token"):
            await ci.sync_identity(store, c, "wrong", **SANS)
        assert not (c / "tls" / "ca.key").exists()
    finally:
        await store.close()


async def test_concurrent_first_servers_with_different_tokens_later_one_withdraws(tmp_path):
    """Both saw an empty datastore and stored their identity: the older one stands."""
    store = open_store(f"sqlite://{tmp_path / 'state.db'}")
    await store.start()

    class Blind:  # the first list() sees nothing, as if the rival stored just after it
        def __init__(self, inner) -> None:
            self.inner, self.blind = inner, True

        def __getattr__(self, name):
            return getattr(self.inner, name)

        async def list(self, prefix, **kw):
            res = await self.inner.list(prefix, **kw)
            if self.blind:
                self.blind = False
                return type(res)([], res.revision, False, 0)
            return res

    try:
        assert await ci.sync_identity(store, tmp_path / "a", "tok-a", **SANS) == "stored"
        with pytest.raises(ci.BootstrapError, match="at the same time"):
            await ci.sync_identity(Blind(store), tmp_path / "b", "tok-b", **SANS)
        keys = [kv.key for kv in (await store.list(ci.BOOTSTRAP_PREFIX)).items]
        assert keys == [ci.bootstrap_key("tok-a")]  # b's identity withdrawn
        assert await ci.sealed_identity_exists(store)
    finally:
        await store.close()


def test_local_token_file(tmp_path):
    assert ci.read_local_token(tmp_path) == ""
    tok = ci.new_token()
    assert len(tok) > 32 and tok != ci.new_token()
    path = ci.write_local_token(tmp_path, tok)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ci.read_local_token(tmp_path) == tok
