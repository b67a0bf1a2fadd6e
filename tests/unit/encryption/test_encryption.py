"""Encryption at rest: providers, prefix selection, configuration validation, rewrite."""

from __future__ import annotations

import asyncio
import base64
import json

import orjson
import pytest

from kybernetes.apiserver.errors import APIError
from kybernetes.storage import encryption as enc
from kybernetes.storage.encryption import (AESCBC, AESGCM, EncryptionConfigError, EncryptionTransformers, Identity,
                                           Secretbox, TransformError, parse_encryption_config)

K16 = base64.b64encode(b"0123456789abcdef").decode()
K32 = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
K32B = base64.b64encode(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345").decode()
SECRET_KEY = "/registry/secrets/default/s1"


def cfg(providers, resources=("secrets",)) -> str:
    return json.dumps({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
                       "resources": [{"resources": list(resources), "providers": providers}]})


def transformers(providers, resources=("secrets",)) -> EncryptionTransformers:
    return EncryptionTransformers(parse_encryption_config(cfg(providers, resources)))


# ----------------------------------------------------------------- providers


@pytest.mark.parametrize("ctor,key", [(AESCBC, b"k" * 16), (AESCBC, b"k" * 24), (AESCBC, b"k" * 32),
                                      (AESGCM, b"k" * 16), (AESGCM, b"k" * 32), (Secretbox, b"k" * 32)])
@pytest.mark.parametrize("plain", [b"", b"x", b"0123456789abcdef", b"a" * 1000])
def test_round_trip(ctor, key, plain):
    t = ctor(key)
    stored = t.to_storage(plain, b"/registry/secrets/a/b")
    assert plain not in stored or len(plain) < 8
    assert t.to_storage(plain, b"ad") != t.to_storage(plain, b"ad")  # random IV / nonce
    assert t.from_storage(stored, b"/registry/secrets/a/b") == (plain, False)


def test_aescbc_layout_pkcs7():
    t = AESCBC(b"k" * 32)
    stored = t.to_storage(b"0123456789abcdef", b"")
    assert len(stored) == 16 + 32  # IV + data + a full block of padding
    assert len(t.to_storage(b"abc", b"")) == 16 + 16


def test_aesgcm_uses_key_as_authenticated_data():
    t = AESGCM(b"k" * 32)
    stored = t.to_storage(b"hello", b"/registry/secrets/ns/a")
    assert len(stored) == 12 + 5 + 16
    with pytest.raises(TransformError, match="message authentication failed"):
        t.from_storage(stored, b"/registry/secrets/ns/b")


def test_secretbox_layout_matches_go():
    t = Secretbox(b"k" * 32)
    stored = t.to_storage(b"hello", b"")
    assert len(stored) == 24 + 16 + 5


@pytest.mark.parametrize("ctor,ks", [(AESCBC, 32), (AESGCM, 32), (Secretbox, 32)])
def test_wrong_key_and_tamper(ctor, ks):
    t, other = ctor(b"a" * ks), ctor(b"b" * ks)
    plain = b'{"kind":"Secret","data":{"x":"eQ=="}}'
    stored = t.to_storage(plain, b"ad")
    if ctor is AESCBC:
        # CBC is unauthenticated: a wrong key gives garbage or a padding error, never the plaintext
        try:
            out, _ = other.from_storage(stored, b"ad")
            assert out != plain
        except TransformError as e:
            assert "padding" in str(e) or "PKCS7" in str(e)
    else:
        with pytest.raises(TransformError):
            other.from_storage(stored, b"ad")
        bad = bytearray(stored)
        bad[-1] ^= 1
        with pytest.raises(TransformError):
            t.from_storage(bytes(bad), b"ad")


@pytest.mark.parametrize("ctor,msg", [(AESCBC, "shorter than the required size"),
                                      (AESGCM, "shorter than the required size"),
                                      (Secretbox, "shorter than the required size")])
def test_short_data(ctor, msg):
    with pytest.raises(TransformError, match=msg):
        ctor(b"k" * 32).from_storage(b"abc", b"")


def test_aescbc_not_multiple_of_block():
    with pytest.raises(TransformError, match="not a multiple of the block size"):
        AESCBC(b"k" * 32).from_storage(b"x" * 20, b"")


def test_identity_refuses_encrypted():
    assert Identity().from_storage(b"{}", b"") == (b"{}", False)
    with pytest.raises(TransformError, match="identity transformer tried to read encrypted data"):
        Identity().from_storage(b"k8s:enc:aescbc:v1:key1:xxx", b"")


# ----------------------------------------------------------------- prefixes & chains


def test_stored_prefix_and_reads_by_prefix():
    t = transformers([{"aescbc": {"keys": [{"name": "key1", "secret": K32}]}}, {"identity": {}}])
    stored = t.encode(SECRET_KEY, b'{"a":1}')
    assert stored.startswith(b"k8s:enc:aescbc:v1:key1:")
    assert t.decode(SECRET_KEY, stored) == b'{"a":1}'
    # plaintext written before encryption was on: read through the trailing identity
    assert t.decode(SECRET_KEY, b'{"old":true}') == b'{"old":true}'


@pytest.mark.parametrize("ptype,prefix", [("aesgcm", b"k8s:enc:aesgcm:v1:k:"), ("secretbox", b"k8s:enc:secretbox:v1:k:")])
def test_other_provider_prefixes(ptype, prefix):
    t = transformers([{ptype: {"keys": [{"name": "k", "secret": K32}]}}])
    stored = t.encode(SECRET_KEY, b"hi")
    assert stored.startswith(prefix)
    assert t.decode(SECRET_KEY, stored) == b"hi"


def test_without_identity_plaintext_is_no_matching_prefix():
    t = transformers([{"aescbc": {"keys": [{"name": "key1", "secret": K32}]}}])
    with pytest.raises(APIError) as e:
        t.decode(SECRET_KEY, b'{"old":true}')
    assert e.value.code == 500 and e.value.reason == "InternalError"
    assert e.value.message == ('Internal error occurred: unable to transform key "/registry/secrets/default/s1": '
                               "no matching prefix found")


def _msg(err: APIError) -> str:
    return err.message


def test_identity_first_writes_plaintext_and_reads_encrypted():
    t1 = transformers([{"aescbc": {"keys": [{"name": "key1", "secret": K32}]}}])
    stored = t1.encode(SECRET_KEY, b"secret!")
    t2 = transformers([{"identity": {}}, {"aescbc": {"keys": [{"name": "key1", "secret": K32}]}}])
    assert t2.encode(SECRET_KEY, b"plain") == b"plain"
    assert t2.decode(SECRET_KEY, stored) == b"secret!"
    assert t2.is_stale(SECRET_KEY, stored) and not t2.is_stale(SECRET_KEY, b"plain")


def test_key_rotation_old_key_still_decrypts():
    old = transformers([{"aescbc": {"keys": [{"name": "key1", "secret": K32}]}}])
    stored = old.encode(SECRET_KEY, b"v")
    new = transformers([{"aescbc": {"keys": [{"name": "key2", "secret": K32B}, {"name": "key1", "secret": K32}]}}])
    assert new.decode(SECRET_KEY, stored) == b"v"
    assert new.is_stale(SECRET_KEY, stored)
    fresh = new.encode(SECRET_KEY, b"v")
    assert fresh.startswith(b"k8s:enc:aescbc:v1:key2:") and not new.is_stale(SECRET_KEY, fresh)
    # key1 removed: its data no longer decrypts, with upstream's message
    only2 = transformers([{"aescbc": {"keys": [{"name": "key2", "secret": K32B}]}}])
    with pytest.raises(APIError) as e:
        only2.decode(SECRET_KEY, stored)
    assert "no matching key was found for the provided AES transformer" in _msg(e.value)


def test_same_key_name_wrong_secret_is_internal_error():
    a = transformers([{"aesgcm": {"keys": [{"name": "key1", "secret": K32}]}}])
    b = transformers([{"aesgcm": {"keys": [{"name": "key1", "secret": K32B}]}}])
    with pytest.raises(APIError) as e:
        b.decode(SECRET_KEY, a.encode(SECRET_KEY, b"x"))
    assert _msg(e.value) == ('Internal error occurred: unable to transform key "/registry/secrets/default/s1": '
                             'cipher: message authentication failed')


def test_resource_mapping_and_wildcards():
    c = json.dumps({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration", "resources": [
        {"resources": ["events"], "providers": [{"identity": {}}]},
        {"resources": ["secrets", "configmaps"], "providers": [{"aescbc": {"keys": [{"name": "k1", "secret": K32}]}}]},
        {"resources": ["*.apps"], "providers": [{"aesgcm": {"keys": [{"name": "k2", "secret": K16}]}}]},
        {"resources": ["*.*"], "providers": [{"secretbox": {"keys": [{"name": "k3", "secret": K32}]}}]},
    ]})
    t = EncryptionTransformers(parse_encryption_config(c))
    assert t.group_resource("/registry/secrets/ns/a") == ("", "secrets")
    assert t.group_resource("/registry/apps/deployments/ns/a") == ("apps", "deployments")
    assert t.group_resource("/registry/namespaces/default") == ("", "namespaces")
    assert t.encode("/registry/events/ns/e", b"x") == b"x"
    assert t.encode("/registry/configmaps/ns/c", b"x").startswith(b"k8s:enc:aescbc:v1:k1:")
    assert t.encode("/registry/apps/deployments/ns/d", b"x").startswith(b"k8s:enc:aesgcm:v1:k2:")
    assert t.encode("/registry/pods/ns/p", b"x").startswith(b"k8s:enc:secretbox:v1:k3:")
    assert t.encode("/registry/batch/jobs/ns/j", b"x").startswith(b"k8s:enc:secretbox:v1:k3:")


def test_unlisted_resource_is_plaintext_and_refuses_encrypted():
    t = transformers([{"aescbc": {"keys": [{"name": "key1", "secret": K32}]}}])
    assert t.encode("/registry/configmaps/ns/c", b'{"x":1}') == b'{"x":1}'
    assert t.decode("/registry/configmaps/ns/c", b'{"x":1}') == b'{"x":1}'
    with pytest.raises(APIError) as e:
        t.decode("/registry/configmaps/ns/c", b"k8s:enc:aescbc:v1:key1:zzz")
    assert "identity transformer tried to read encrypted data" in _msg(e.value)


def test_masked_rule_rejected():
    c = json.dumps({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration", "resources": [
        {"resources": ["*.*"], "providers": [{"identity": {}}]},
        {"resources": ["secrets"], "providers": [{"identity": {}}]}]})
    with pytest.raises(EncryptionConfigError, match='resource "secrets" is masked by earlier rule "\\*.\\*"'):
        EncryptionTransformers(parse_encryption_config(c))


# ----------------------------------------------------------------- config validation


def test_yaml_config_from_docs(tmp_path):
    p = tmp_path / "enc.yaml"
    p.write_text(f"""
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
      - configmaps
      - pandas.awesome.bears.example
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: {K32}
      - identity: {{}}
""")
    c = enc.load_encryption_config(p)
    assert c.resources[0].resources == ["secrets", "configmaps", "pandas.awesome.bears.example"]
    assert [pr.type for pr in c.resources[0].providers] == ["aescbc", "identity"]
    assert enc.transformer_from_file(p) is not None and enc.transformer_from_file("") is None


@pytest.mark.parametrize("providers,msg", [
    ([{"aescbc": {"keys": [{"name": "key1", "secret": base64.b64encode(b"short").decode()}]}}],
     'resources[0].providers[0].aescbc.keys[0].secret: Invalid value: "REDACTED": '
     "secret is not of the expected length, got 5, expected one of [16 24 32]"),
    ([{"secretbox": {"keys": [{"name": "key1", "secret": K16}]}}],
     'resources[0].providers[0].secretbox.keys[0].secret: Invalid value: "REDACTED": '
     "secret is not of the expected length, got 16, expected one of [32]"),
    ([{"aesgcm": {"keys": [{"name": "key1", "secret": "not base64!!"}]}}],
     'resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: "REDACTED": secrets must be base64 encoded'),
    ([{"aesgcm": {"keys": [{"secret": K32}]}}],
     "resources[0].providers[0].aesgcm.keys[0].name: Required value: name is a mandatory field for a key"),
    ([{"aesgcm": {"keys": [{"name": "k"}]}}],
     "resources[0].providers[0].aesgcm.keys[0].secret: Required value: secret is a mandatory field for a key"),
    ([{"aesgcm": {"keys": []}}],
     "resources[0].providers[0].aesgcm.keys: Required value: at least one keys is required"),
    ([{"aesgcm": {"keys": [{"name": "k", "secret": K32}]}, "identity": {}}],
     "more than one provider specified in a single element, should split into different list elements"),
    ([{}], "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity"),
    ([], "resources[0].providers: Required value: at least one resources[0].providers is required"),
    ([{"kms": {"name": "myKms", "endpoint": "unix:///tmp/k.sock"}}],
     'resources[0].providers[0].kms.apiVersion: Invalid value: "v1": KMSv1 is deprecated'),
    ([{"kms": {"apiVersion": "v2", "name": "a:b", "endpoint": "unix:///tmp/k.sock"}}],
     "resources[0].providers[0].kms.name: Invalid value: \"a:b\": invalid KMS provider name a:b, must not contain ':'"),
    ([{"kms": {"apiVersion": "v2", "endpoint": "unix:///tmp/k.sock"}}],
     "resources[0].providers[0].kms.name: Required value: name is a mandatory field for a provider"),
    ([{"kms": {"apiVersion": "v2", "name": "k", "endpoint": "tcp://127.0.0.1:1"}}],
     'resources[0].providers[0].kms.endpoint: Invalid value: "tcp://127.0.0.1:1": unsupported scheme "tcp" for KMS provider, only unix is supported'),
    ([{"kms": {"apiVersion": "v2", "name": "k", "endpoint": "unix:///s", "cachesize": 10}}],
     "resources[0].providers[0].kms.cachesize: Invalid value: 10: cachesize is not supported in v2"),
    ([{"kms": {"apiVersion": "v2", "name": "k", "endpoint": "unix:///s", "timeout": "-1s"}}],
     'resources[0].providers[0].kms.timeout: Invalid value: "-1s": timeout should be a positive value'),
    ([{"kms": {"apiVersion": "v2", "name": "k", "endpoint": "unix:///s"}},
      {"kms": {"apiVersion": "v2", "name": "k", "endpoint": "unix:///t"}}],
     'resources[0].providers[1].kms.name: Invalid value: "k": duplicate KMS provider name k, names must be unique'),
])
def test_validation_messages(providers, msg):
    with pytest.raises(EncryptionConfigError) as e:
        parse_encryption_config(cfg(providers))
    assert str(e.value).startswith("error while parsing file: ")
    assert msg in str(e.value)


def test_validation_top_level():
    with pytest.raises(EncryptionConfigError, match="resources: Required value: at least one resources is required"):
        parse_encryption_config('{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration"}')
    with pytest.raises(EncryptionConfigError, match='no kind "Foo" is registered for version "apiserver.config.k8s.io/v1"'):
        parse_encryption_config('{"apiVersion":"apiserver.config.k8s.io/v1","kind":"Foo","resources":[]}')
    with pytest.raises(EncryptionConfigError, match="resources\\[0\\].resources: Required value"):
        parse_encryption_config(cfg([{"identity": {}}], resources=()))
    with pytest.raises(EncryptionConfigError, match="use '\\*.' to encrypt all the resources from core API group"):
        parse_encryption_config(cfg([{"identity": {}}], resources=("*",)))
    with pytest.raises(EncryptionConfigError, match="the same resource cannot be specified multiple times"):
        parse_encryption_config(cfg([{"identity": {}}], resources=("secrets", "secrets")))
    with pytest.raises(EncryptionConfigError, match="is empty"):
        enc.load_encryption_config(_empty_file())
    with pytest.raises(EncryptionConfigError, match="error reading encryption provider configuration file"):
        enc.load_encryption_config("/nonexistent/enc.yaml")


def _empty_file():
    import tempfile

    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    f.close()
    return f.name


def test_multiple_errors_aggregate():
    with pytest.raises(EncryptionConfigError) as e:
        parse_encryption_config(cfg([{"aescbc": {"keys": [{"name": "", "secret": "eA=="}]}}]))
    s = str(e.value)
    assert s.startswith("error while parsing file: [") and "name is a mandatory field" in s and "got 1" in s


# ----------------------------------------------------------------- rewrite_all


class _KV:
    def __init__(self, key, value, rev):
        self.key, self.value, self.mod_revision = key, value, rev


class _MemStore:
    def __init__(self):
        self.data: dict[str, _KV] = {}
        self.rev = 0

    async def list(self, prefix, *, revision=0, limit=0, start_after=None):
        keys = sorted(k for k in self.data if k.startswith(prefix) and (start_after is None or k > start_after))
        page = keys[:limit] if limit else keys

        class R:
            pass
        r = R()
        r.items, r.revision, r.more = [self.data[k] for k in page], self.rev, len(page) < len(keys)
        return r

    async def update(self, key, value, expected):
        assert self.data[key].mod_revision == expected
        self.rev += 1
        self.data[key] = _KV(key, value, self.rev)
        return self.data[key]

    def put(self, key, value):
        self.rev += 1
        self.data[key] = _KV(key, value, self.rev)


def test_rewrite_all_reencrypts_with_current_key():
    old = transformers([{"aescbc": {"keys": [{"name": "key1", "secret": K32}]}}, {"identity": {}}])
    new = transformers([{"aescbc": {"keys": [{"name": "key2", "secret": K32B}, {"name": "key1", "secret": K32}]}},
                        {"identity": {}}])
    st = _MemStore()
    for i in range(7):
        st.put(f"/registry/secrets/ns/s{i}", old.encode(f"/registry/secrets/ns/s{i}", orjson.dumps({"i": i})))
    st.put("/registry/secrets/ns/plain", b'{"plain":1}')
    st.put("/registry/secrets/ns/fresh", new.encode("/registry/secrets/ns/fresh", b'{"f":1}'))
    counts = asyncio.run(enc.rewrite_all(st, ["/registry/secrets/"], new, page=3))
    assert counts == {"rewritten": 8, "current": 1, "failed": 0, "conflicts": 0}
    for k, kv in st.data.items():
        assert kv.value.startswith(b"k8s:enc:aescbc:v1:key2:"), k
        new.decode(k, kv.value)
    assert orjson.loads(new.decode("/registry/secrets/ns/s3", st.data["/registry/secrets/ns/s3"].value)) == {"i": 3}


def test_rewrite_all_via_objectstore_hook():
    new = transformers([{"secretbox": {"keys": [{"name": "k", "secret": K32}]}}, {"identity": {}}])

    class Objects:
        store = _MemStore()
        _transformer = new.hook()
    Objects.store.put("/registry/secrets/a/b", b'{"x":1}')
    assert asyncio.run(enc.rewrite_all(Objects, ["/registry/secrets/"]))["rewritten"] == 1
    assert Objects.store.data["/registry/secrets/a/b"].value.startswith(b"k8s:enc:secretbox:v1:k:")
