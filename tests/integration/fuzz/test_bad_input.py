"""Bad input against one real `kyb server`: foreign and expired client certificates,
garbage bearer tokens, bad and huge headers, malformed bodies (JSON, YAML, protobuf) on
create/update/patch, malformed review bodies, bad query parameters and bad patch
documents.  Every request must get a clear client error (a meta/v1 Status where the
answer is JSON), never a 5xx; rejected writes leave the store unchanged; /readyz stays
`ok` after each batch.  The cases come from a seeded generator (KYB_FUZZ_SEED overrides
the seed) so a failure can be replayed exactly."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest

from kybernetes.auth import pki
from kybernetes.auth.serviceaccount_tokens import b64url_encode, load_private_key, sign_jwt

SEED = int(os.environ.get("KYB_FUZZ_SEED", "20261128"))
CLIENT_ERRORS = {400, 401, 403, 404, 405, 406, 409, 410, 413, 415, 422, 431}

pytestmark = pytest.mark.slow


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes


@dataclass
class Fuzzer:
    srv: Any
    rng: random.Random
    failures: list = field(default_factory=list)
    count: int = 0

    # ------------------------------------------------------------ transport
    def context(self, cert: Optional[tuple[str, str]] = "admin") -> ssl.SSLContext:
        tls = self.srv.data_dir / "tls"
        ctx = ssl.create_default_context(cafile=str(tls / "ca.crt"))
        if cert == "admin":
            ctx.load_cert_chain(str(tls / "admin.crt"), str(tls / "admin.key"))
        elif cert is not None:
            ctx.load_cert_chain(*cert)
        return ctx

    def send(self, method: str, path: str, body: bytes = b"", headers: Optional[list] = None,
             cert: Any = "admin", timeout: float = 30) -> Reply:
        conn = http.client.HTTPSConnection("127.0.0.1", self.srv.port, context=self.context(cert), timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            hdrs = list(headers or [])
            if body or method in ("POST", "PUT", "PATCH"):
                hdrs.append(("Content-Length", str(len(body))))
            for k, v in hdrs:
                conn.putheader(k, v)
            conn.endheaders(body if body else None)
            r = conn.getresponse()
            return Reply(r.status, r.getheader("Content-Type", ""), r.read())
        finally:
            conn.close()

    # ------------------------------------------------------------ verdicts
    def check(self, label: str, reply: Reply, allowed: set = CLIENT_ERRORS, ok_2xx: bool = False) -> None:
        """A client error with a Status body (or, where the input may be valid, a 2xx)."""
        self.count += 1
        if 200 <= reply.status < 300 and ok_2xx:
            return
        if reply.status not in allowed:
            self.failures.append(f"{label}: HTTP {reply.status} {reply.body[:300]!r}")
            return
        if reply.content_type.startswith("application/json"):
            try:
                st = json.loads(reply.body)
            except ValueError:
                self.failures.append(f"{label}: HTTP {reply.status} with a non-JSON body {reply.body[:200]!r}")
                return
            if not (st.get("kind") == "Status" and st.get("status") == "Failure" and st.get("code") == reply.status
                    and isinstance(st.get("message"), str) and st["message"] and st.get("reason")):
                self.failures.append(f"{label}: HTTP {reply.status} without a proper Status: {st!r}"[:400])

    def request(self, label: str, method: str, path: str, body: bytes = b"", headers: Optional[list] = None,
                allowed: set = CLIENT_ERRORS, ok_2xx: bool = False, cert: Any = "admin") -> Reply:
        try:
            reply = self.send(method, path, body, headers, cert=cert)
        except (OSError, http.client.HTTPException) as e:
            self.failures.append(f"{label}: connection failed: {type(e).__name__}: {e}")
            return Reply(0, "", b"")
        self.check(label, reply, allowed, ok_2xx)
        return reply

    def healthy(self, batch: str) -> None:
        reply = self.send("GET", "/readyz", cert=None)
        assert (reply.status, reply.body) == (200, b"ok"), f"after {batch}: /readyz {reply.status} {reply.body!r}"
        assert self.srv.proc.poll() is None, f"the server died during {batch}:\n{self.srv.log()[-3000:]}"

    def done(self, batch: str) -> None:
        self.healthy(batch)
        assert not self.failures, f"seed {SEED}, batch {batch}: {len(self.failures)} of {self.count} bad answers:\n" + \
            "\n".join(f[:240] for f in self.failures[:100])

    # ------------------------------------------------------------ generators
    def noise(self, n: int) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(n))

    def text(self, n: int, alphabet: str = "abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%#[]{}\"\\ é☃\t") -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def mutate(self, obj: Any, depth: int = 0) -> Any:
        """Replace one nested value with a value of a random wrong type."""
        junk = [None, True, -1, 2 ** 70, 1.5e308, "", "x" * 300, [], {}, [1, "a", None], {"": {"": []}},
                self.text(12)]
        if isinstance(obj, dict) and obj and depth < 6:
            k = self.rng.choice(sorted(obj))
            out = dict(obj)
            out[k] = self.mutate(obj[k], depth + 1) if self.rng.random() < 0.6 else self.rng.choice(junk)
            return out
        if isinstance(obj, list) and obj and depth < 6:
            i = self.rng.randrange(len(obj))
            out = list(obj)
            out[i] = self.mutate(obj[i], depth + 1) if self.rng.random() < 0.6 else self.rng.choice(junk)
            return out
        return self.rng.choice(junk)


@pytest.fixture(autouse=True)
def _fresh_verdicts(request):
    """Each test reports only its own bad answers."""
    if "fz" in request.fixturenames:
        fz = request.getfixturevalue("fz")
        fz.failures.clear()
        fz.count = 0
        # one generator per test, so a test replays the same cases whatever ran before it
        fz.rng = random.Random(f"{SEED}:{request.node.name}")


@pytest.fixture(scope="module")
def fz(kyb):
    kyb.kubectl("create", "namespace", "fuzz")
    kyb.kubectl("create", "configmap", "cm", "-n", "fuzz", "--from-literal=a=b")
    kyb.kubectl("create", "deployment", "dep", "-n", "fuzz", "--image=busybox")
    kyb.kubectl("create", "serviceaccount", "bot", "-n", "fuzz")
    return Fuzzer(kyb, random.Random(SEED))


# ---------------------------------------------------------------- certificates
def _write_cert(d, name: str, cert: bytes, key: bytes) -> tuple[str, str]:
    (d / f"{name}.crt").write_bytes(cert)
    (d / f"{name}.key").write_bytes(key)
    return str(d / f"{name}.crt"), str(d / f"{name}.key")


def _expired_cert(ca_cert: bytes, ca_key: bytes) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca = x509.load_pem_x509_certificate(ca_cert)
    ca_priv = serialization.load_pem_private_key(ca_key, None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "late"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=10)).not_valid_after(now - dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_priv, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _foreign_ca() -> pki.CA:
    """A CA the server has never heard of (same shape as the cluster's)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-the-cluster-ca")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return pki.CA(cert=cert, key=key)


def test_bad_client_certificates(fz, tmp_path):
    """A certificate from another CA (even claiming system:masters) or an expired one from
    the cluster CA never authenticates: the handshake is refused or the request is 401."""
    from cryptography.hazmat.primitives import serialization

    foreign = _write_cert(tmp_path, "foreign", *pki.issue_client_cert(_foreign_ca(), "kyb-admin", ["system:masters"], 1))
    ca = pki.load_ca(fz.srv.data_dir)
    ca_key = ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    expired = _write_cert(tmp_path, "expired", *_expired_cert(ca.cert_pem, ca_key))
    garbage = _write_cert(tmp_path, "garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"")
    for label, cert in (("foreign CA", foreign), ("expired", expired)):
        try:
            reply = fz.send("GET", "/api/v1/namespaces/fuzz/secrets", cert=cert)
        except (ssl.SSLError, ConnectionError, OSError):
            fz.count += 1  # refused during the handshake
            continue
        fz.check(label, reply, allowed={401})
    with pytest.raises(ssl.SSLError):
        fz.context(garbage)  # a malformed certificate never reaches the server
    # a client that sends garbage instead of a TLS ClientHello
    import socket

    for junk in (fz.noise(300), b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello"):
        with socket.create_connection(("127.0.0.1", fz.srv.port), timeout=10) as sock:
            sock.sendall(junk)
            try:
                sock.recv(1024)
            except OSError:
                pass
    fz.done("client certificates")


# ---------------------------------------------------------------- tokens
def test_garbage_bearer_tokens(fz):
    key = load_private_key(fz.srv.data_dir / "tls" / "sa.key")
    real = fz.srv.kubectl("create", "token", "bot", "-n", "fuzz").stdout.strip()
    header, claims, sig = real.split(".")
    good_claims = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    now = int(time.time())

    def signed(**changes):
        c = dict(good_claims, **changes)
        return sign_jwt({k: v for k, v in c.items() if v is not None}, key)

    none_header = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    tokens = {
        "alg none": f"{none_header}.{claims}.",
        "alg none, no signature part": f"{none_header}.{claims}",
        "truncated": real[: len(real) // 2],
        "signature cut": real[:-10],
        "flipped payload": f"{header}.{claims[::-1]}.{sig}",
        "wrong audience": signed(aud=["https://elsewhere.example"]),
        "expired": signed(exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "not yet valid": signed(nbf=now + 3600),
        "wrong issuer": signed(iss="https://evil.example"),
        "no kubernetes claims": signed(**{"kubernetes.io": None}),
        "kubernetes claim is a string": signed(**{"kubernetes.io": "x"}),
        "serviceaccount claim is a list": signed(**{"kubernetes.io": {"namespace": "fuzz", "serviceaccount": ["bot"]}}),
        "exp is a string": signed(exp="tomorrow"),
        "aud is a number": signed(aud=7),
        "HS256 with the public key": _hs256(good_claims, fz.srv.data_dir / "tls" / "sa.pub"),
        "three dots": "a.b.c",
        "bad base64": "!!!.@@@.###",
        "non-ascii": "jwt.é☃.x",
        "empty parts": "..",
        "bootstrap-shaped, no secret": "abcdef.0123456789abcdef",
        "bootstrap-shaped, bad charset": "ABCDEF.0123456789ABCDEF",
        "huge": "a" * 60000,
    }
    for i in range(40):
        tokens[f"random {i}"] = fz.noise(fz.rng.randrange(1, 200)).decode("latin-1").replace("\r", "").replace(
            "\n", "").strip() or "x"
        tokens[f"random b64 {i}"] = ".".join(b64url_encode(fz.noise(fz.rng.randrange(1, 80))) for _ in range(3))
    for label, tok in tokens.items():
        fz.request(f"token {label}", "GET", "/api/v1/namespaces/fuzz/configmaps",
                   headers=[("Authorization", f"Bearer {tok}".encode())], cert=None, allowed={400, 401, 431})
    # the same garbage through a TokenReview is answered "not authenticated", never an error
    for label, tok in tokens.items():
        if label == "huge":
            continue
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": tok}}
        reply = fz.send("POST", "/apis/authentication.k8s.io/v1/tokenreviews", json.dumps(review).encode(),
                        [("Content-Type", "application/json")])
        fz.count += 1
        if reply.status != 201 or json.loads(reply.body)["status"].get("authenticated"):
            fz.failures.append(f"TokenReview {label}: HTTP {reply.status} {reply.body[:200]!r}")
    # odd schemes are not tokens: the request is anonymous, so 403 (or 401 for a malformed bearer)
    for value in ("Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "bearer  x y", "Negotiate " + "A" * 100,
                  "Bearer\tx"):
        fz.request(f"authorization {value[:20]!r}", "GET", "/api/v1/namespaces/fuzz/configmaps",
                   headers=[("Authorization", value)], cert=None, allowed={401, 403})
    fz.done("bearer tokens")


def _hs256(claims: dict, pub_path) -> str:
    import hashlib
    import hmac

    h = b64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64url_encode(json.dumps(claims).encode())
    mac = hmac.new(pub_path.read_bytes(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url_encode(mac)}"


# ---------------------------------------------------------------- headers
def test_bad_and_huge_headers(fz):
    path = "/api/v1/namespaces/fuzz/configmaps"
    cm = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hdr"}}).encode()
    cases: list[tuple[str, str, list, bytes]] = [
        ("huge header", "GET", [("X-Junk", "a" * 200_000)], b""),
        ("many headers", "GET", [(f"X-H{i}", "v") for i in range(300)], b""),
        ("huge audit id", "GET", [("Audit-ID", "x" * 60_000)], b""),
        ("bad accept", "GET", [("Accept", "application/json;as=Table;g=nope;v=v9")], b""),
        ("unknown accept", "GET", [("Accept", "text/x-nothing")], b""),
        ("accept garbage", "GET", [("Accept", ";;,,;=;")], b""),
        ("content type garbage", "POST", [("Content-Type", "}{;;=")], cm),
        ("content type unknown", "POST", [("Content-Type", "application/x-www-form-urlencoded")], cm),
        ("no content type", "POST", [], cm),
        ("impersonate group only", "GET", [("Impersonate-Group", "system:masters")], b""),
        ("impersonate uid only", "GET", [("Impersonate-Uid", "1")], b""),
        ("impersonate extra only", "GET", [("Impersonate-Extra-%zz", "v")], b""),
        ("impersonate huge user", "GET", [("Impersonate-User", "u" * 7000)], b""),
    ]
    for i in range(80):
        name = fz.rng.choice(["Accept", "Content-Type", "Impersonate-User", "Impersonate-Group", "Audit-ID",
                              "Impersonate-Extra-" + fz.text(6, "abcxyz%09-_"), "Impersonate-Uid", "User-Agent",
                              "X-Forwarded-For", "Accept-Encoding", "Upgrade", "Authorization"])
        raw = fz.noise(fz.rng.randrange(1, 120))
        if i % 2:  # only bytes >= 0x80: no control characters, so the HTTP parser lets them through
            raw = bytes(b | 0x80 for b in raw)
        value = raw.decode("latin-1").replace("\r", "").replace("\n", "").strip()
        headers = [(name, (value or "x").encode("latin-1")), ("Content-Type", "application/json")]
        if name.startswith("Impersonate-") and name != "Impersonate-User" and i % 3 == 0:
            headers.append(("Impersonate-User", "bob"))
        cases.append((f"random {name}", fz.rng.choice(["GET", "POST"]), headers, cm))
    for label, method, headers, body in cases:
        # impersonation the admin may do turns a request valid; everything else must fail cleanly
        fz.request(f"header {label}", method, path, body, headers, ok_2xx=True)
    fz.srv.kubectl("delete", "configmap", "hdr", "-n", "fuzz", "--ignore-not-found")
    fz.done("headers")


# ---------------------------------------------------------------- bodies
TEMPLATES = {
    "/api/v1/namespaces/fuzz/configmaps": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fz"},
                                           "data": {"a": "b"}},
    "/api/v1/namespaces/fuzz/secrets": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fz"},
                                        "type": "Opaque", "data": {"a": "Yg=="}},
    "/api/v1/namespaces/fuzz/pods": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fz", "labels": {"a": "b"}},
                                     "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [
                                         {"containerPort": 80}], "resources": {"limits": {"cpu": "1"}}}]}},
    "/api/v1/namespaces/fuzz/services": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fz"},
                                         "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}},
    "/apis/apps/v1/namespaces/fuzz/deployments": {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fz"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
    "/apis/rbac.authorization.k8s.io/v1/namespaces/fuzz/roles": {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "fz"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
    "/apis/batch/v1/namespaces/fuzz/cronjobs": {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "fz"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}}},
    "/api/v1/namespaces": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fz-ns"}},
}
TARGETS = {"/api/v1/namespaces/fuzz/configmaps": "cm", "/apis/apps/v1/namespaces/fuzz/deployments": "dep",
           "/api/v1/namespaces/fuzz/serviceaccounts": "bot"}


def _malformed_bodies(fz: Fuzzer, template: dict) -> list[tuple[str, str, bytes]]:
    """(label, content type, body) — each one surely not a valid object."""
    js = json.dumps(template).encode()
    out = [
        ("empty", "application/json", b""),
        ("truncated", "application/json", js[: len(js) // 2]),
        ("array", "application/json", b"[1,2,3]"),
        ("string", "application/json", b'"pod"'),
        ("null", "application/json", b"null"),
        ("deep nesting", "application/json", b"[" * 100_000 + b"]" * 100_000),
        ("deep objects", "application/json", b'{"a":' * 5000 + b"1" + b"}" * 5000),
        ("nan", "application/json", js.replace(b"{", b'{"n": NaN, ', 1)),
        ("duplicate metadata", "application/json", js[:-1] + b', "metadata": 5}'),
        ("wrong kind", "application/json", json.dumps(dict(template, kind="Nope")).encode()),
        ("wrong apiVersion", "application/json", json.dumps(dict(template, apiVersion="nope/v9")).encode()),
        ("metadata is a list", "application/json", json.dumps(dict(template, metadata=[1])).encode()),
        ("name is a number", "application/json", json.dumps(dict(template, metadata={"name": 5})).encode()),
        ("invalid utf-8", "application/json", js[:1] + b'"\xff\xfe": 1, ' + js[1:]),
        ("yaml garbage", "application/yaml", b"a: [b\n  - c: {\n::"),
        ("yaml tabs", "application/yaml", b"\tkind: Pod\n\t\tapiVersion: v1"),
        ("yaml python tag", "application/yaml", b"!!python/object/apply:os.system ['true']"),
        ("yaml alias bomb", "application/yaml",
         b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
         b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
         b"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\nkind: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"),
        ("yaml multi doc", "application/yaml", b"kind: Pod\n---\nkind: Pod\n"),
        ("protobuf garbage", "application/vnd.kubernetes.protobuf", fz.noise(64)),
        ("protobuf magic + garbage", "application/vnd.kubernetes.protobuf", b"k8s\x00" + fz.noise(80)),
        ("protobuf truncated unknown", "application/vnd.kubernetes.protobuf",
         b"k8s\x00\x0a\x0a\x0a\x02v1\x12\x04Pod\x12\xff\xff\xff\xff\x0f"),
    ]
    for i in range(12):
        out.append((f"random bytes {i}", fz.rng.choice(["application/json", "application/yaml"]),
                    fz.noise(fz.rng.randrange(1, 300))))
    return out


def test_malformed_bodies_on_create_update_patch(fz):
    for coll, template in TEMPLATES.items():
        before = _names(fz, coll)
        for label, ctype, body in _malformed_bodies(fz, template):
            fz.request(f"POST {coll} {label}", "POST", coll, body, [("Content-Type", ctype)])
        assert _names(fz, coll) == before, f"a rejected create wrote to {coll}"
        fz.healthy(f"bodies for {coll}")
    for coll, name in TARGETS.items():
        url = f"{coll}/{name}"
        current = json.loads(fz.send("GET", url).body)
        before = _content(current)
        for label, ctype, body in _malformed_bodies(fz, current):
            fz.request(f"PUT {url} {label}", "PUT", url, body, [("Content-Type", ctype)])
            for ptype in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                          "application/json-patch+json", "application/apply-patch+yaml"):
                # a strategic merge patch of `null` is an empty patch upstream too
                fz.request(f"PATCH {url} {ptype} {label}", "PATCH", url + "?fieldManager=fuzz", body,
                           [("Content-Type", ptype)], ok_2xx=(label == "null" and "strategic" in ptype))
        # (controllers may write status meanwhile; what the requests could change may not move)
        assert _content(json.loads(fz.send("GET", url).body)) == before, f"a rejected write changed {url}"
        # random wrong-typed fields: each either fails cleanly or is a real, valid update
        for i in range(40):
            bad = fz.mutate(current)
            if isinstance(bad.get("metadata"), dict):
                bad["metadata"].pop("resourceVersion", None)  # no conflicts with controllers
            fz.request(f"PUT {url} mutated {i}", "PUT", url, json.dumps(bad).encode(),
                       [("Content-Type", "application/json")], ok_2xx=True)
            current = json.loads(fz.send("GET", url).body)
    fz.done("bodies")


def _content(obj: dict) -> dict:
    """What a write may change (not status, not the bookkeeping controllers touch)."""
    meta = obj.get("metadata") or {}
    return {"spec": obj.get("spec"), "data": obj.get("data"), "labels": meta.get("labels"),
            "generation": meta.get("generation"), "secrets": obj.get("secrets")}


def _names(fz: Fuzzer, coll: str) -> list[str]:
    r = fz.send("GET", coll)
    return sorted(i["metadata"]["name"] for i in json.loads(r.body)["items"])


def _rv(fz: Fuzzer, url: str) -> str:
    return json.loads(fz.send("GET", url).body)["metadata"]["resourceVersion"]


# ---------------------------------------------------------------- patches
def test_bad_patch_documents(fz):
    url = "/api/v1/namespaces/fuzz/configmaps/cm"
    # a known starting point (the body fuzzing before may have changed it validly)
    reset = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}})
    assert fz.send("PUT", url, reset.encode(), [("Content-Type", "application/json")]).status == 200
    rv = _rv(fz, url)
    cases = {
        "application/json-patch+json": [
            b"{}", b"[{}]", b'[{"op": "bogus", "path": "/data/a"}]', b'[{"op": "add"}]',
            b'[{"op": "add", "path": "data/a", "value": 1}]', b'[{"op": "remove", "path": "/data/zzz"}]',
            b'[{"op": "test", "path": "/data/a", "value": "nope"}]', b'[{"op": "move", "from": "/nope", "path": "/data/b"}]',
            b'[{"op": "add", "path": "/data/999999999999999999999", "value": 1}]',
            b'[{"op": "replace", "path": "/metadata", "value": "x"}]', b'[{"op": "add", "path": "/data/a~2b", "value": "x"}]',
            b'[{"op": "copy", "from": "/data", "path": "/data/x/y"}]', b'[{"op": "replace", "path": "/kind", "value": 3}]',
            b'[{"op": "add", "path": "/metadata/name", "value": "other"}]', b'[{"op": "add", "path": "/data/-", "value": 1}]',
        ],
        "application/merge-patch+json": [
            b"[]", b'"x"', b"5", b'{"metadata": []}', b'{"data": [1]}', b'{"kind": "Secret"}',
            b'{"apiVersion": "v9"}', b'{"metadata": {"name": "other"}}', b'{"data": {"a": {"b": 1}}}',
        ],
        "application/strategic-merge-patch+json": [
            b"[]", b'{"$patch": "bogus"}', b'{"data": {"$patch": "replace", "a": 5}}',
            b'{"$setElementOrder/data": 5}', b'{"$retainKeys": "x"}',
            b'{"metadata": {"labels": {"$patch": "delete"}, "name": 5}}', b'{"data": null, "kind": 1}',
        ],
        "application/apply-patch+yaml": [
            b"kind: ConfigMap", b"apiVersion: v1\nkind: Secret\nmetadata: {name: cm}",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}", b"- a\n- b", b"apiVersion: v1\nkind: ConfigMap\nmetadata: []",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: [1]}",
        ],
    }
    for ctype, docs in cases.items():
        for i, doc in enumerate(docs):
            q = "?fieldManager=fuzz" if "apply" in ctype else ""
            fz.request(f"PATCH {ctype} #{i} {doc[:40]!r}", "PATCH", url + q, doc, [("Content-Type", ctype)])
    fz.request("apply without fieldManager", "PATCH", url,
               b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}", [("Content-Type", "application/apply-patch+yaml")])
    fz.request("unknown patch type", "PATCH", url, b"{}", [("Content-Type", "application/x-patch")])
    fz.request("patch missing object", "PATCH", "/api/v1/namespaces/fuzz/configmaps/nope", b"{}",
               [("Content-Type", "application/merge-patch+json")])
    assert _rv(fz, url) == rv, "a rejected patch changed the object"
    fz.done("patches")


# ---------------------------------------------------------------- reviews
def test_malformed_review_bodies(fz):
    reviews = {
        "/apis/authentication.k8s.io/v1/tokenreviews": ("TokenReview", [
            {}, {"spec": None}, {"spec": {"token": 5}}, {"spec": {"token": ["a"]}}, {"spec": {"audiences": "x"}},
            {"spec": {"token": "x", "audiences": [1, None]}}, {"spec": "token"},
        ]),
        "/apis/authorization.k8s.io/v1/subjectaccessreviews": ("SubjectAccessReview", [
            {}, {"spec": {}}, {"spec": {"user": "u"}}, {"spec": {"user": 5, "resourceAttributes": {}}},
            {"spec": {"user": "u", "resourceAttributes": []}}, {"spec": {"groups": "g", "nonResourceAttributes": {}}},
            {"spec": {"user": "u", "resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/"}}},
            {"spec": {"user": "u", "extra": {"k": "v"}, "resourceAttributes": {"verb": "get"}}},
            {"spec": {"user": "u", "resourceAttributes": {"verb": "get", "labelSelector": {}}}},
            {"spec": {"user": "u", "resourceAttributes": {"verb": "list", "fieldSelector": {
                "rawSelector": "a=b", "requirements": [{"key": "a", "operator": "In", "values": ["b"]}]}}}},
        ]),
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews": ("SelfSubjectAccessReview", [
            {}, {"spec": {}}, {"spec": {"resourceAttributes": "x"}}, {"spec": {"resourceAttributes": {"verb": 1}}},
        ]),
        "/apis/authorization.k8s.io/v1/namespaces/fuzz/localsubjectaccessreviews": ("LocalSubjectAccessReview", [
            {}, {"spec": {"user": "u", "resourceAttributes": {"verb": "get", "namespace": "other"}}},
            {"spec": {"user": "u", "nonResourceAttributes": {"path": "/x", "verb": "get"}}},
        ]),
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews": ("SelfSubjectRulesReview", [
            {"spec": {}}, {"spec": {"namespace": 5}}, {"spec": []},
        ]),
        "/apis/authentication.k8s.io/v1/selfsubjectreviews": ("SelfSubjectReview", [
            {"status": 5, "kind": "Nope"},
        ]),
    }
    for path, (kind, bodies) in reviews.items():
        api_version = path.split("/")[2] + "/v1"
        for i, spec in enumerate(bodies):
            body = {"apiVersion": api_version, "kind": kind, **spec}
            fz.request(f"{kind} #{i} {json.dumps(spec)[:60]}", "POST", path, json.dumps(body).encode(),
                       [("Content-Type", "application/json")])
        for label, ctype, raw in _malformed_bodies(fz, {"apiVersion": api_version, "kind": kind}):
            fz.request(f"{kind} {label}", "POST", path, raw, [("Content-Type", ctype)])
    # well-formed reviews of garbage are answered, not refused (as upstream): a token that
    # is no token is "not authenticated"; a selector that does not parse, or an operator
    # this server does not know, still gets a decision
    answered = [
        ("/apis/authentication.k8s.io/v1/tokenreviews",
         {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "é" * 5000}},
         lambda st: st["status"].get("authenticated") is not True),
        ("/apis/authorization.k8s.io/v1/subjectaccessreviews",
         {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
             "user": "u", "resourceAttributes": {"verb": "get", "labelSelector": {"rawSelector": "a in ("}}}},
         lambda st: st["status"]["allowed"] is False),
        ("/apis/authorization.k8s.io/v1/subjectaccessreviews",
         {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
             "user": "u", "resourceAttributes": {"verb": "list", "fieldSelector": {
                 "requirements": [{"key": "a", "operator": "Bogus"}]}}}},
         lambda st: st["status"]["allowed"] is False),
    ]
    for path, body, ok in answered:
        reply = fz.send("POST", path, json.dumps(body).encode(), [("Content-Type", "application/json")])
        assert reply.status == 201 and ok(json.loads(reply.body)), (path, reply.status, reply.body[:300])
    fz.done("reviews")


# ---------------------------------------------------------------- query parameters
# every value here is refused upstream (conversion errors are 400, option validation 422)
BAD_QUERIES = {
    "labelSelector": ["a in (", "!=", "a=b=c", "x,,y", "a notin", "a in (b", "=b", "a!b", "a in (b))", "é=1",
                      "a" * 300 + "=b", "a=" + "b" * 70, "!", "a,!"],
    "fieldSelector": ["metadata.name", "spec.nope=x", "a==b==c", "=x", "metadata.name in (a)",
                      "metadata.name!=a!=b"],
    "limit": ["abc", "1e9", "9" * 30, " 5", "0x10"],
    "continue": ["garbage", "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "%%%", "e30", base64.b64encode(b'{"v":"meta.k8s.io/v1","rv":-5,"start":"x"}').decode()],
    "resourceVersion": ["abc", "-1", "9" * 40, "1.5"],
    "timeoutSeconds": ["abc", "1e3", "9" * 30, "+-1"],
    "resourceVersionMatch": ["Exact", "Bogus", "NotOlderThan"],
    "sendInitialEvents": ["true", "sure"],
    "gracePeriodSeconds": ["soon", "9" * 30],
    "propagationPolicy": ["Everything"],
}
# accepted upstream on a list, and so here: odd booleans are true, unknown options ignored
LENIENT_QUERIES = {"limit": ["-1"], "timeoutSeconds": ["-1"], "fieldSelector": ["metadata.name=", ","],
                   "labelSelector": ["a in ()"], "allowWatchBookmarks": ["perhaps"], "dryRun": ["Bogus"],
                   "fieldValidation": ["Loose"], "pretty": ["very"]}


def test_bad_query_parameters(fz):
    from urllib.parse import quote

    lists = ["/api/v1/namespaces/fuzz/configmaps", "/api/v1/pods", "/apis/apps/v1/namespaces/fuzz/deployments"]
    for param, values in BAD_QUERIES.items():
        for value in values:
            for path in lists:
                q = f"{param}={quote(value, safe='')}"
                method = "DELETE" if param in ("gracePeriodSeconds", "propagationPolicy") else "GET"
                target = path + "/nope" if method == "DELETE" else path
                extra = "&timeoutSeconds=1" if param not in ("timeoutSeconds",) and "watch" in q else ""
                # a watch with an invalid companion parameter must still fail fast
                fz.request(f"{method} {target}?{q}", method, f"{target}?{q}{extra}")
    for param, values in LENIENT_QUERIES.items():
        for value in values:
            reply = fz.send("GET", f"{lists[0]}?{param}={quote(value, safe='')}")
            assert reply.status == 200, (param, value, reply.status, reply.body[:300])
    # any value but 0/false turns a list into a watch, as upstream's boolean conversion does
    reply = fz.send("GET", f"{lists[0]}?watch=maybe&timeoutSeconds=1")
    assert reply.status == 200 and b'"type":"ADDED"' in reply.body, reply.body[:300]
    # write options are checked on writes
    cm = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "opt"}}).encode()
    for q in ("dryRun=Bogus", "fieldValidation=Loose", "fieldManager=" + "m" * 200):
        fz.request(f"POST ?{q}", "POST", f"{lists[0]}?{q}", cm, [("Content-Type", "application/json")])
    assert "opt" not in _names(fz, lists[0])
    # random bytes as parameter values (any verdict but a 5xx; lists time out at once)
    for i in range(60):
        param = fz.rng.choice(sorted(BAD_QUERIES))
        value = quote(fz.noise(fz.rng.randrange(1, 40)).decode("latin-1"), safe="")
        fz.request(f"GET random {param}", "GET", f"/api/v1/namespaces/fuzz/configmaps?{param}={value}&timeoutSeconds=1",
                   ok_2xx=True)
    fz.request("raw non-ascii path", "GET", "/api/v1/namespaces/f%ffuzz/configmaps/x")
    fz.request("double encoded path", "GET", "/api/v1/namespaces/fuzz/configmaps/%252e%252e")
    fz.request("dot segment", "GET", "/api/v1/namespaces/../../apis")
    fz.done("query parameters")


# ---------------------------------------------------------------- subresources and special endpoints
def test_subresources_and_special_endpoints(fz):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert fz.send("POST", "/api/v1/namespaces/fuzz/pods", json.dumps(pod).encode(),
                   [("Content-Type", "application/json")]).status == 201
    token_url = "/api/v1/namespaces/fuzz/serviceaccounts/bot/token"
    token_bodies = [
        {"spec": {"expirationSeconds": "soon"}}, {"spec": {"expirationSeconds": -5}}, {"spec": {"expirationSeconds": 2 ** 70}},
        {"spec": {"audiences": "api"}}, {"spec": {"audiences": [1]}}, {"spec": {"boundObjectRef": "pod"}},
        {"spec": {"boundObjectRef": {"kind": "Pod", "name": "nope", "apiVersion": "v1"}}},
        {"spec": {"boundObjectRef": {"kind": "Deployment", "name": "dep", "apiVersion": "apps/v1"}}},
        {"metadata": {"name": "other"}}, {"metadata": {"namespace": "elsewhere"}},
    ]
    for i, spec in enumerate(token_bodies):
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", **spec}
        fz.request(f"TokenRequest #{i} {json.dumps(spec)[:60]}", "POST", token_url, json.dumps(body).encode(),
                   [("Content-Type", "application/json")])
    for label, ctype, raw in _malformed_bodies(fz, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}):
        fz.request(f"TokenRequest {label}", "POST", token_url, raw, [("Content-Type", ctype)])
    scale = "/apis/apps/v1/namespaces/fuzz/deployments/dep/scale"
    for i, body in enumerate([{"spec": {"replicas": -1}}, {"spec": {"replicas": "two"}}, {"spec": {"replicas": 2 ** 40}},
                              {"spec": []}, {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "other"},
                                             "spec": {"replicas": 1}}]):
        fz.request(f"scale PUT #{i}", "PUT", scale, json.dumps(body).encode(), [("Content-Type", "application/json")])
        fz.request(f"scale PATCH #{i}", "PATCH", scale, json.dumps(body).encode(),
                   [("Content-Type", "application/merge-patch+json")])
    status = "/api/v1/namespaces/fuzz/pods/victim/status"
    for i, body in enumerate([b'{"status": {"phase": 5}}', b'{"status": {"conditions": "x"}}',
                              b'{"status": {"podIP": "not-an-ip"}}', b'{"status": []}']):
        fz.request(f"status PATCH #{i}", "PATCH", status, body, [("Content-Type", "application/merge-patch+json")])
    eviction = "/api/v1/namespaces/fuzz/pods/victim/eviction"
    for i, body in enumerate([{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}},
                              {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "victim"},
                               "deleteOptions": {"gracePeriodSeconds": "x"}},
                              {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "victim"},
                               "deleteOptions": {"preconditions": {"uid": "wrong"}}}, {}]):
        # an empty Eviction names no one else: it is a valid eviction of the pod in the URL
        fz.request(f"eviction #{i}", "POST", eviction, json.dumps(body).encode(), [("Content-Type", "application/json")],
                   ok_2xx=(i == 3))
    for q in ("labelSelector=a%20in%20(", "fieldSelector=spec.nope%3Dx", "gracePeriodSeconds=x", "dryRun=Maybe"):
        fz.request(f"deletecollection ?{q}", "DELETE", f"/api/v1/namespaces/fuzz/configmaps?{q}")
    assert "cm" in _names(fz, "/api/v1/namespaces/fuzz/configmaps")
    for i, body in enumerate([b"[]", b'{"kind": "DeleteOptions", "propagationPolicy": 5}', b'{"dryRun": ["Maybe"]}',
                              b'{"preconditions": {"resourceVersion": "1"}}', b'{"gracePeriodSeconds": -7}x']):
        fz.request(f"delete with body #{i}", "DELETE", "/api/v1/namespaces/fuzz/configmaps/cm", body,
                   [("Content-Type", "application/json")])
    assert "cm" in _names(fz, "/api/v1/namespaces/fuzz/configmaps")
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.fuzz.example"},
           "spec": {"group": "fuzz.example", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    for i in range(30):
        bad = fz.mutate(crd)
        if isinstance(bad.get("metadata"), dict) and bad["metadata"].get("name") == crd["metadata"]["name"]:
            bad["metadata"]["name"] = f"w{i}.fuzz.example"
        fz.request(f"CRD mutated {i}", "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                   json.dumps(bad).encode(), [("Content-Type", "application/json")], ok_2xx=True)
    crds = json.loads(fz.send("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions").body)
    for name in crds.get("items", []):  # (no items where this server serves no CRDs yet)
        if name["metadata"]["name"].endswith(".fuzz.example"):
            fz.send("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name['metadata']['name']}")
    fz.send("DELETE", "/api/v1/namespaces/fuzz/pods/victim?gracePeriodSeconds=0")
    fz.done("subresources")
