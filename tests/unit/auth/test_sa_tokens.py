"""kybernetes.auth.serviceaccount_tokens: JWT signing/verification, bound and legacy
tokens, TokenRequest, OIDC discovery and JWKS."""

import base64
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kybernetes.auth import serviceaccount_tokens as sat
from kybernetes.auth.authorizer import StatusError

T0 = 1_900_000_000


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


class Lookup:
    def __init__(self):
        self.sas = {("ns", "default"): {"metadata": {"name": "default", "namespace": "ns", "uid": "sa-uid"}}}
        self.pods = {("ns", "p"): {"metadata": {"name": "p", "uid": "pod-uid"}, "spec": {"serviceAccountName": "default", "nodeName": "n1"}}}
        self.secrets = {("ns", "s"): {"metadata": {"name": "s", "uid": "sec-uid"}}}
        self.nodes = {"n1": {"metadata": {"name": "n1", "uid": "node-uid"}}}

    async def get_service_account(self, ns, name):
        return self.sas.get((ns, name))

    async def get_pod(self, ns, name):
        return self.pods.get((ns, name))

    async def get_secret(self, ns, name):
        return self.secrets.get((ns, name))

    async def get_node(self, name):
        return self.nodes.get(name)


SA = {"metadata": {"name": "default", "namespace": "ns", "uid": "sa-uid"}}


def verifier(key, lookup=None, now=T0 + 10, **kw):
    return sat.ServiceAccountTokenAuthenticator([key.public_key()], lookup=lookup, now=lambda: now, **kw)


# ---------------------------------------------------------------- JWS


def test_b64url():
    assert sat.b64url_encode(b"\xfb\xff") == "-_8"
    assert sat.b64url_decode("-_8") == b"\xfb\xff"
    for bad in ["a=", "a+b", "a/b", "a b", 5]:
        with pytest.raises(sat.JWTError):
            sat.b64url_decode(bad)
    with pytest.raises(sat.JWTError):
        sat.b64url_decode("a")  # impossible length


def test_key_id_is_sha256_of_der(rsa_key):
    der = rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    want = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert sat.key_id(rsa_key) == want == sat.key_id(rsa_key.public_key())


@pytest.mark.parametrize("curve,alg", [(ec.SECP256R1(), "ES256"), (ec.SECP384R1(), "ES384"), (ec.SECP521R1(), "ES512")])
def test_ec_sign_and_verify(curve, alg):
    key = ec.generate_private_key(curve)
    tok = sat.sign_jwt({"a": 1}, key)
    header, claims = sat.decode_unverified(tok)
    assert header == {"alg": alg, "kid": sat.key_id(key)} and claims == {"a": 1}
    assert sat.verify_jwt(tok, [key.public_key()]) == {"a": 1}


def test_rsa_sign_and_verify(rsa_key, ec_key):
    tok = sat.sign_jwt({"b": "x"}, rsa_key)
    assert sat.decode_unverified(tok)[0]["alg"] == "RS256"
    assert sat.verify_jwt(tok, [ec_key.public_key(), rsa_key.public_key()]) == {"b": "x"}
    with pytest.raises(sat.JWTError, match="error in cryptographic primitive"):
        sat.verify_jwt(tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB"), [rsa_key])
    with pytest.raises(sat.JWTError, match="unexpected signature algorithm"):
        sat.verify_jwt(tok, [ec_key])
    with pytest.raises(sat.JWTError, match="no public keys"):
        sat.verify_jwt(tok, [])


def test_tampering_and_malformed(rsa_key, ec_key):
    tok = sat.sign_jwt({"sub": "a"}, rsa_key)
    h, p, s = tok.split(".")
    forged = f"{h}.{sat.b64url_encode(json.dumps({'sub': 'b'}).encode())}.{s}"
    with pytest.raises(sat.JWTError):
        sat.verify_jwt(forged, [rsa_key])
    none_header = sat.b64url_encode(json.dumps({"alg": "none"}).encode())
    none_alg = f"{none_header}.{p}."
    with pytest.raises(sat.JWTError):
        sat.verify_jwt(none_alg, [rsa_key, ec_key])
    for bad in ["x", "a.b", "a.b.c.d", f"{sat.b64url_encode(b'[]')}.{p}.{s}", f"{h}.{sat.b64url_encode(b'nope')}.{s}"]:
        with pytest.raises(sat.JWTError):
            sat.verify_jwt(bad, [rsa_key])
    etok = sat.sign_jwt({"a": 1}, ec_key)
    with pytest.raises(sat.JWTError, match="cryptographic primitive"):
        sat.verify_jwt(etok.rsplit(".", 1)[0] + "." + sat.b64url_encode(b"short"), [ec_key])
    eh, ep, es = etok.split(".")
    sig = bytearray(sat.b64url_decode(es))
    sig[5] ^= 1
    with pytest.raises(sat.JWTError, match="cryptographic primitive"):
        sat.verify_jwt(f"{eh}.{ep}.{sat.b64url_encode(bytes(sig))}", [ec_key])


def test_unsupported_keys():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    k = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(sat.JWTError):
        sat.algorithm_for(k)
    with pytest.raises(sat.JWTError):
        sat.algorithm_for(ec.generate_private_key(ec.SECP256K1()))


def test_load_keys(tmp_path, rsa_key, ec_key):
    kp = tmp_path / "sa.key"
    kp.write_bytes(
        rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    assert sat.key_id(sat.load_private_key(kp)) == sat.key_id(rsa_key)
    issuer = sat.TokenIssuer.from_file(kp)
    assert issuer.kid == sat.key_id(rsa_key) and issuer.issuer == sat.DEFAULT_ISSUER
    pub = tmp_path / "keys.pem"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    import datetime as dt

    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ec_key.public_key())
        .serial_number(1).not_valid_before(dt.datetime(2020, 1, 1)).not_valid_after(dt.datetime(2040, 1, 1))
        .sign(ec_key, hashes.SHA256())
    )
    pub.write_bytes(
        rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        + rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        + cert.public_bytes(serialization.Encoding.PEM)
        + ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    keys = sat.load_public_keys(pub)
    assert [sat.key_id(k) for k in keys] == [sat.key_id(rsa_key)] * 2 + [sat.key_id(ec_key)] * 2
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"nothing here\n-----BEGIN X-----\n")
    with pytest.raises(ValueError, match="does not contain any valid RSA or ECDSA public keys"):
        sat.load_public_keys(empty)
    from cryptography.hazmat.primitives.asymmetric import ed25519

    ed = tmp_path / "ed.key"
    ed.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ValueError, match="unsupported private key type"):
        sat.load_private_key(ed)


# ---------------------------------------------------------------- bound tokens


def test_bound_claims(rsa_key):
    issuer = sat.TokenIssuer(rsa_key)
    tok, claims = issuer.issue(
        SA, ["api", "vault"], 3600,
        pod={"metadata": {"name": "p", "uid": "pod-uid"}},
        node={"metadata": {"name": "n1", "uid": "node-uid"}},
        warn_after_seconds=100, now=T0, jti="j1",
    )
    assert claims == {
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": "system:serviceaccount:ns:default",
        "aud": ["api", "vault"],
        "exp": T0 + 3600,
        "iat": T0,
        "nbf": T0,
        "jti": "j1",
        "kubernetes.io": {
            "namespace": "ns",
            "serviceaccount": {"name": "default", "uid": "sa-uid"},
            "pod": {"name": "p", "uid": "pod-uid"},
            "node": {"name": "n1", "uid": "node-uid"},
            "warnafter": T0 + 100,
        },
    }
    assert sat.decode_unverified(tok) == ({"alg": "RS256", "kid": issuer.kid}, claims)
    _, c2 = issuer.issue(SA, ["a"], secret={"metadata": {"name": "s", "uid": "u"}}, node={"metadata": {"name": "n"}})
    assert c2["kubernetes.io"]["secret"] == {"name": "s", "uid": "u"} and c2["kubernetes.io"]["node"] == {"name": "n"}
    assert len(c2["jti"]) == 36


async def test_bound_token_authenticates(rsa_key):
    issuer = sat.TokenIssuer(rsa_key)
    lookup = Lookup()
    tok, _ = issuer.issue(SA, [sat.DEFAULT_ISSUER], 3600, pod=lookup.pods[("ns", "p")],
                          node=lookup.nodes["n1"], now=T0, jti="j1")
    r = await verifier(rsa_key, lookup).authenticate_token(tok)
    assert r.ok and r.audiences == (sat.DEFAULT_ISSUER,)
    u = r.user
    assert u.name == "system:serviceaccount:ns:default" and u.uid == "sa-uid"
    assert u.groups == ("system:serviceaccounts", "system:serviceaccounts:ns")
    assert u.extra == {
        "authentication.kubernetes.io/pod-name": ["p"],
        "authentication.kubernetes.io/pod-uid": ["pod-uid"],
        "authentication.kubernetes.io/credential-id": ["JTI=j1"],
        "authentication.kubernetes.io/node-name": ["n1"],
        "authentication.kubernetes.io/node-uid": ["node-uid"],
    }


async def test_audiences(rsa_key):
    issuer = sat.TokenIssuer(rsa_key)
    tok, _ = issuer.issue(SA, ["vault", "other"], now=T0)
    v = verifier(rsa_key, Lookup())
    r = await v.authenticate_token(tok)
    assert r == sat.AuthResult(
        None, 'token audiences ["vault" "other"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local"]'
    )
    r = await v.authenticate_token(tok, audiences=["vault"])
    assert r.ok and r.audiences == ("vault",)
    # no api audiences configured: anything goes (upstream: only checked when implicit audiences exist)
    r = await verifier(rsa_key, Lookup(), api_audiences=[]).authenticate_token(tok)
    assert r.ok and r.audiences == ()
    # aud as a plain string is accepted; a bad aud is refused
    tok2 = sat.sign_jwt({"iss": sat.DEFAULT_ISSUER, "aud": sat.DEFAULT_ISSUER, "exp": T0 + 100,
                         "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "default", "uid": "sa-uid"}}}, rsa_key)
    assert (await v.authenticate_token(tok2)).ok
    tok3 = sat.sign_jwt({"iss": sat.DEFAULT_ISSUER, "aud": [1]}, rsa_key)
    assert (await v.authenticate_token(tok3)).reason == "invalid aud claim"


@pytest.mark.parametrize(
    "now,reason",
    [
        (T0 + 3600 + 61, "service account token has expired"),
        (T0 + 3600 + 59, None),  # leeway
        (T0 - 61, "service account token is not valid yet"),
    ],
)
async def test_time_claims(rsa_key, now, reason):
    tok, _ = sat.TokenIssuer(rsa_key).issue(SA, [sat.DEFAULT_ISSUER], 3600, now=T0)
    r = await verifier(rsa_key, Lookup(), now=now).authenticate_token(tok)
    assert r.reason == (reason or "") and r.ok is (reason is None)


async def test_issued_in_future_and_bad_claims(rsa_key):
    base = {"iss": sat.DEFAULT_ISSUER, "aud": [sat.DEFAULT_ISSUER]}
    v = verifier(rsa_key, None, now=T0)
    tok = sat.sign_jwt({**base, "iat": T0 + 100}, rsa_key)
    assert (await v.authenticate_token(tok)).reason == "service account token is issued in the future"
    tok = sat.sign_jwt({**base, "exp": "soon"}, rsa_key)
    assert (await v.authenticate_token(tok)).reason == (
        "service account token claims could not be validated due to unexpected validation error"
    )
    tok = sat.sign_jwt({**base, "exp": T0 + 100}, rsa_key)
    assert (await v.authenticate_token(tok)).reason == (
        "service account token claims could not be validated due to unexpected private claim"
    )


async def test_not_ours(rsa_key, ec_key):
    v = verifier(rsa_key, Lookup())
    assert await v.authenticate_token("not-a-jwt") == sat.AuthResult(None)
    other = sat.sign_jwt({"iss": "https://elsewhere"}, rsa_key)
    assert await v.authenticate_token(other) == sat.AuthResult(None)
    forged, _ = sat.TokenIssuer(ec_key).issue(SA, [sat.DEFAULT_ISSUER], now=T0)
    r = await v.authenticate_token(forged)
    assert not r.ok and "unexpected signature algorithm" in r.reason


async def test_bound_object_checks(rsa_key):
    issuer = sat.TokenIssuer(rsa_key)
    L = Lookup()
    aud = [sat.DEFAULT_ISSUER]
    pod_tok, _ = issuer.issue(SA, aud, pod=L.pods[("ns", "p")], now=T0)
    sec_tok, _ = issuer.issue(SA, aud, secret=L.secrets[("ns", "s")], now=T0)
    node_tok, _ = issuer.issue(SA, aud, node=L.nodes["n1"], now=T0)
    plain, _ = issuer.issue(SA, aud, now=T0)

    async def check(tok, lookup):
        return (await verifier(rsa_key, lookup).authenticate_token(tok)).reason

    assert await check(pod_tok, L) == "" and await check(sec_tok, L) == "" and await check(node_tok, L) == ""
    r = await verifier(rsa_key, L).authenticate_token(node_tok)
    assert r.user.extra["authentication.kubernetes.io/node-name"] == ["n1"]
    # deleting the pod invalidates the token
    L2 = Lookup(); del L2.pods[("ns", "p")]
    assert await check(pod_tok, L2) == "service account token has been invalidated"
    L2 = Lookup(); L2.pods[("ns", "p")]["metadata"]["uid"] = "new"
    assert await check(pod_tok, L2) == "pod UID (new) does not match service account pod ref claim (pod-uid)"
    L2 = Lookup(); L2.pods[("ns", "p")]["metadata"]["deletionTimestamp"] = "2000-01-01T00:00:00Z"
    assert await check(pod_tok, L2) == "service account token has been invalidated"
    L2 = Lookup(); L2.pods[("ns", "p")]["metadata"]["deletionTimestamp"] = "2099-01-01T00:00:00Z"  # graceful: still valid
    assert await check(pod_tok, L2) == ""
    L2 = Lookup(); del L2.secrets[("ns", "s")]
    assert await check(sec_tok, L2) == "service account token has been invalidated"
    L2 = Lookup(); L2.secrets[("ns", "s")]["metadata"]["uid"] = "x"
    assert await check(sec_tok, L2) == "secret UID (x) does not match service account secret ref claim (sec-uid)"
    L2 = Lookup(); del L2.nodes["n1"]
    assert await check(node_tok, L2) == "service account token has been invalidated"
    L2 = Lookup(); L2.nodes["n1"]["metadata"]["uid"] = "y"
    assert await check(node_tok, L2) == "node UID (y) does not match service account node ref claim (node-uid)"
    # the service account itself
    L2 = Lookup(); del L2.sas[("ns", "default")]
    assert await check(plain, L2) == 'serviceaccounts "default" not found'
    L2 = Lookup(); L2.sas[("ns", "default")]["metadata"]["uid"] = "other"
    assert await check(plain, L2) == "service account UID (other) does not match claim (sa-uid)"
    L2 = Lookup(); L2.sas[("ns", "default")]["metadata"]["deletionTimestamp"] = "garbage"
    assert await check(plain, L2) == "service account ns/default has been deleted"
    # without a lookup the claims are taken as they are
    r = await verifier(rsa_key, None).authenticate_token(node_tok)
    assert r.user.extra["authentication.kubernetes.io/node-uid"] == ["node-uid"]


# ---------------------------------------------------------------- legacy tokens


async def test_legacy_tokens(rsa_key):
    issuer = sat.TokenIssuer(rsa_key)
    tok = issuer.issue_legacy(SA, {"metadata": {"name": "default-token-abc"}})
    _, claims = sat.decode_unverified(tok)
    assert claims == {
        "iss": "kubernetes/serviceaccount",
        "sub": "system:serviceaccount:ns:default",
        "kubernetes.io/serviceaccount/namespace": "ns",
        "kubernetes.io/serviceaccount/secret.name": "default-token-abc",
        "kubernetes.io/serviceaccount/service-account.name": "default",
        "kubernetes.io/serviceaccount/service-account.uid": "sa-uid",
    }
    L = Lookup()
    L.secrets[("ns", "default-token-abc")] = {"metadata": {"name": "default-token-abc"}, "data": {"token": base64.b64encode(tok.encode()).decode()}}
    r = await verifier(rsa_key, L).authenticate_token(tok)
    assert r.ok and r.user.name == "system:serviceaccount:ns:default" and r.user.extra == {}
    assert r.audiences == (sat.DEFAULT_ISSUER,)
    assert await verifier(rsa_key, L, legacy=False).authenticate_token(tok) == sat.AuthResult(None)

    async def reason(lookup, token=tok):
        return (await verifier(rsa_key, lookup).authenticate_token(token)).reason

    L2 = Lookup()
    assert await reason(L2) == "token has been invalidated"
    L2.secrets[("ns", "default-token-abc")] = {"metadata": {"name": "x", "deletionTimestamp": "2020-01-01T00:00:00Z"}}
    assert await reason(L2) == "token has been invalidated"
    L2.secrets[("ns", "default-token-abc")] = {"metadata": {"name": "x"}, "data": {"token": base64.b64encode(b"other").decode()}}
    assert await reason(L2) == "token does not match server's copy"
    L2.secrets[("ns", "default-token-abc")] = {"metadata": {"name": "x"}, "data": {"token": "%%%"}}
    assert await reason(L2) == "token does not match server's copy"
    L2.secrets[("ns", "default-token-abc")] = L.secrets[("ns", "default-token-abc")]
    del L2.sas[("ns", "default")]
    assert await reason(L2) == 'serviceaccounts "default" not found'
    L2.sas[("ns", "default")] = {"metadata": {"uid": "sa-uid", "deletionTimestamp": "2020-01-01T00:00:00Z"}}
    assert await reason(L2) == "ServiceAccount ns/default has been deleted"
    L2.sas[("ns", "default")] = {"metadata": {"uid": "zzz"}}
    assert await reason(L2) == "ServiceAccount UID (zzz) does not match claim (sa-uid)"


@pytest.mark.parametrize(
    "drop,reason",
    [
        ("sub", "sub claim is missing"),
        ("kubernetes.io/serviceaccount/namespace", "namespace claim is missing"),
        ("kubernetes.io/serviceaccount/secret.name", "secretName claim is missing"),
        ("kubernetes.io/serviceaccount/service-account.name", "serviceAccountName claim is missing"),
        ("kubernetes.io/serviceaccount/service-account.uid", "serviceAccountUID claim is missing"),
    ],
)
async def test_legacy_claim_checks(rsa_key, drop, reason):
    tok = sat.TokenIssuer(rsa_key).issue_legacy(SA, {"metadata": {"name": "s"}})
    _, claims = sat.decode_unverified(tok)
    del claims[drop]
    r = await verifier(rsa_key).authenticate_token(sat.sign_jwt(claims, rsa_key))
    assert r.reason == reason


async def test_legacy_sub_mismatch(rsa_key):
    _, claims = sat.decode_unverified(sat.TokenIssuer(rsa_key).issue_legacy(SA, {"metadata": {"name": "s"}}))
    claims["sub"] = "system:serviceaccount:other:default"
    r = await verifier(rsa_key).authenticate_token(sat.sign_jwt(claims, rsa_key))
    assert r.reason == "sub claim is invalid"


# ---------------------------------------------------------------- TokenRequest


async def token_request(rsa_key, body, name="default", **kw):
    kw.setdefault("lookup", Lookup())
    kw.setdefault("api_audiences", [sat.DEFAULT_ISSUER])
    return await sat.create_token_request(sat.TokenIssuer(rsa_key), body, namespace="ns", name=name, now=T0, **kw)


async def test_token_request_defaults(rsa_key):
    out, warnings = await token_request(rsa_key, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"})
    assert warnings == []
    assert out["metadata"] == {"name": "default", "namespace": "ns", "creationTimestamp": "2030-03-17T17:46:40Z"}
    assert out["spec"] == {"audiences": [sat.DEFAULT_ISSUER], "expirationSeconds": 3600}
    assert out["status"]["expirationTimestamp"] == "2030-03-17T18:46:40Z"
    r = await verifier(rsa_key, Lookup()).authenticate_token(out["status"]["token"])
    assert r.ok and r.user.name == "system:serviceaccount:ns:default"


async def test_token_request_bound_to_pod_with_extension(rsa_key):
    body = {"spec": {"audiences": [sat.DEFAULT_ISSUER], "expirationSeconds": 3607,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "pod-uid"}}}
    out, _ = await token_request(rsa_key, body)
    _, claims = sat.decode_unverified(out["status"]["token"])
    assert claims["exp"] == T0 + 365 * 24 * 3600
    assert claims["kubernetes.io"]["warnafter"] == T0 + 3607
    assert claims["kubernetes.io"]["pod"] == {"name": "p", "uid": "pod-uid"}
    assert claims["kubernetes.io"]["node"] == {"name": "n1", "uid": "node-uid"}
    assert out["status"]["expirationTimestamp"] == "2030-03-17T18:46:47Z"
    out, _ = await token_request(rsa_key, body, extend_expiration=False)
    assert sat.decode_unverified(out["status"]["token"])[1]["exp"] == T0 + 3607
    # other audiences are not extended
    body["spec"]["audiences"] = ["vault"]
    out, _ = await token_request(rsa_key, body)
    assert sat.decode_unverified(out["status"]["token"])[1]["exp"] == T0 + 3607


async def test_token_request_bound_to_secret_and_node(rsa_key):
    out, _ = await token_request(rsa_key, {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "s"}}})
    assert sat.decode_unverified(out["status"]["token"])[1]["kubernetes.io"]["secret"] == {"name": "s", "uid": "sec-uid"}
    out, _ = await token_request(rsa_key, {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}})
    assert sat.decode_unverified(out["status"]["token"])[1]["kubernetes.io"]["node"] == {"name": "n1", "uid": "node-uid"}
    L = Lookup(); L.pods[("ns", "p")]["spec"].pop("nodeName")
    out, _ = await token_request(rsa_key, {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p"}}}, lookup=L)
    assert "node" not in sat.decode_unverified(out["status"]["token"])[1]["kubernetes.io"]


async def test_token_request_max_expiration(rsa_key):
    out, warnings = await token_request(rsa_key, {"spec": {"expirationSeconds": 7200}}, max_expiration_seconds=3600)
    assert warnings == ["requested expiration of 7200 seconds shortened to 3600 seconds"]
    assert out["spec"]["expirationSeconds"] == 3600


@pytest.mark.parametrize(
    "body,name,code,message",
    [
        ({"metadata": {"name": "x"}}, "default", 422,
         'TokenRequest.authentication.k8s.io "default" is invalid: metadata.name: Invalid value: "x": '
         "must match the service account name if specified"),
        ({"metadata": {"namespace": "x"}}, "default", 422,
         'TokenRequest.authentication.k8s.io "default" is invalid: metadata.namespace: Invalid value: "x": '
         "must match the service account namespace if specified"),
        ({}, "missing", 404, 'serviceaccounts "missing" not found'),
        ({"spec": {"expirationSeconds": 10}}, "default", 422,
         'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 10: '
         "may not specify a duration less than 10 minutes"),
        ({"spec": {"expirationSeconds": (1 << 32) + 1}}, "default", 422,
         'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 4294967297: '
         "may not specify a duration larger than 2^32 seconds"),
        ({"spec": {"expirationSeconds": "1h"}}, "default", 400,
         'TokenRequest in version "v1" cannot be handled as a TokenRequest: json: cannot unmarshal string into Go '
         "struct field TokenRequestSpec.spec.expirationSeconds of type int64"),
        ({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "gone"}}}, "default", 404, 'pods "gone" not found'),
        ({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "gone"}}}, "default", 404, 'secrets "gone" not found'),
        ({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Node", "name": "gone"}}}, "default", 404, 'nodes "gone" not found'),
        ({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}}}, "default", 400,
         "cannot bind token to object of type /v1, Kind=ConfigMap"),
        ({"spec": {"boundObjectRef": {"apiVersion": "apps/v1", "kind": "Pod", "name": "p"}}}, "default", 400,
         "cannot bind token to object of type apps/v1, Kind=Pod"),
        ({"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "old"}}}, "default", 409,
         'Operation cannot be fulfilled on Pod "p": the UID in the bound object reference (old) does not match the UID '
         "in record. The object might have been deleted and then recreated"),
    ],
)
async def test_token_request_errors(rsa_key, body, name, code, message):
    with pytest.raises(StatusError) as e:
        await token_request(rsa_key, body, name=name)
    assert (e.value.code, e.value.message) == (code, message)


async def test_token_request_pod_of_other_service_account(rsa_key):
    L = Lookup()
    L.sas[("ns", "other")] = {"metadata": {"name": "other", "namespace": "ns", "uid": "o"}}
    with pytest.raises(StatusError) as e:
        await token_request(rsa_key, {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p"}}},
                            name="other", lookup=L)
    assert e.value.code == 400
    assert e.value.message == 'cannot bind token for serviceaccount "other" to pod running with different serviceaccount name.'


# ---------------------------------------------------------------- OIDC


def test_openid_configuration_and_jwks(rsa_key, ec_key):
    doc = sat.openid_configuration("https://issuer", "https://issuer/openid/v1/jwks", [rsa_key.public_key(), ec_key])
    assert doc == {
        "issuer": "https://issuer",
        "jwks_uri": "https://issuer/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    }
    keys = sat.jwks([rsa_key.public_key(), ec_key])["keys"]
    r, e = keys
    assert r["kty"] == "RSA" and r["alg"] == "RS256" and r["use"] == "sig" and r["kid"] == sat.key_id(rsa_key)
    assert r["e"] == "AQAB"
    assert int.from_bytes(sat.b64url_decode(r["n"]), "big") == rsa_key.public_key().public_numbers().n
    assert e["kty"] == "EC" and e["crv"] == "P-256" and e["alg"] == "ES256" and e["kid"] == sat.key_id(ec_key)
    nums = ec_key.public_key().public_numbers()
    assert len(sat.b64url_decode(e["x"])) == 32
    assert int.from_bytes(sat.b64url_decode(e["x"]), "big") == nums.x
    assert int.from_bytes(sat.b64url_decode(e["y"]), "big") == nums.y
    assert sat.OPENID_CONFIG_PATH == "/.well-known/openid-configuration" and sat.JWKS_PATH == "/openid/v1/jwks"
