"""Service-account tokens: JWTs signed by the API server, as upstream's
pkg/serviceaccount (jwt.go, claims.go, legacy.go, openidmetadata.go) and the
TokenRequest subresource (pkg/registry/core/serviceaccount/storage/token.go).

- Bound tokens (TokenRequest, projected volumes): ``iss`` (default
  ``https://kubernetes.default.svc.cluster.local``), ``sub``
  ``system:serviceaccount:<ns>:<name>``, ``aud`` (list), ``exp``/``iat``/``nbf``, ``jti``
  and ``kubernetes.io: {namespace, serviceaccount{name,uid}, pod{name,uid}?,
  secret{name,uid}?, node{name,uid}?, warnafter?}``.  Verification checks the
  signature, the issuer, the time claims (60 s leeway), the audience against the
  requested (or the API server's) audiences, and that the service account — and the
  pod, secret or node the token is bound to — still exist with the same uid.
- Legacy secret-based tokens: ``iss`` ``kubernetes/serviceaccount`` with the
  ``kubernetes.io/serviceaccount/*`` claims and no expiry; valid while the Secret still
  holds exactly that token and the service account still exists.
- Signing with RS256 (the RSA key at ``DIR/tls/sa.key``) or ES256/384/512 (EC keys),
  written directly on ``cryptography``; key ids are base64url(SHA-256(DER public key)).
- The OIDC discovery document and JWKS.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Protocol, Sequence, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .authorizer import StatusError, UserInfo, aggregate_errors, go_quote, go_quote_list
from .tokens import AuthResult

__all__ = [
    "DEFAULT_ISSUER",
    "LEGACY_ISSUER",
    "JWTError",
    "b64url_encode",
    "b64url_decode",
    "key_id",
    "load_private_key",
    "load_public_keys",
    "sign_jwt",
    "decode_unverified",
    "verify_jwt",
    "TokenIssuer",
    "ServiceAccountLookup",
    "ServiceAccountTokenAuthenticator",
    "create_token_request",
    "openid_configuration",
    "jwks",
    "OPENID_CONFIG_PATH",
    "JWKS_PATH",
]

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
OPENID_CONFIG_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
LEEWAY = 60  # seconds (go-jose's DefaultLeeway)
WARN_ONLY_EXPIRATION_SECONDS = 3607  # what kubelets ask for: warn, don't fail, after 1h
EXTENDED_EXPIRATION_SECONDS = 365 * 24 * 60 * 60

POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
POD_UID_KEY = "authentication.kubernetes.io/pod-uid"
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
NODE_UID_KEY = "authentication.kubernetes.io/node-uid"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey]

_EC_ALGS = {"secp256r1": ("ES256", hashes.SHA256, 32), "secp384r1": ("ES384", hashes.SHA384, 48), "secp521r1": ("ES512", hashes.SHA512, 66)}
_CRV = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class JWTError(Exception):
    pass


# ---------------------------------------------------------------------------
# JWS compact serialization


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    if not isinstance(s, str) or any(c in s for c in "=+/ \n\t"):
        raise JWTError("invalid base64url")
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except Exception:
        raise JWTError("invalid base64url") from None


def _public(key: Any) -> PublicKey:
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return key.public_key()
    return key


def key_id(key: Any) -> str:
    """base64url(SHA-256(DER SubjectPublicKeyInfo)), upstream's keyIDFromPublicKey."""
    der = _public(key).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url_encode(hashes_sha256(der))


def hashes_sha256(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def algorithm_for(key: Any) -> str:
    pub = _public(key)
    if isinstance(pub, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(pub, ec.EllipticCurvePublicKey):
        alg = _EC_ALGS.get(pub.curve.name)
        if alg is None:
            raise JWTError(f"unsupported curve {pub.curve.name}")
        return alg[0]
    raise JWTError(f"unsupported key type {type(pub).__name__}")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_jwt(claims: Mapping[str, Any], key: PrivateKey, kid: Optional[str] = None) -> str:
    alg = algorithm_for(key)
    header = {"alg": alg, "kid": key_id(key) if kid is None else kid}
    signing_input = f"{b64url_encode(json.dumps(header, separators=(',', ':')).encode())}.{b64url_encode(_json(claims))}"
    data = signing_input.encode("ascii")
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        _, hcls, size = _EC_ALGS[key.curve.name]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hcls())))
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return f"{signing_input}.{b64url_encode(sig)}"


@dataclass
class _Parsed:
    header: dict
    claims: dict
    signing_input: bytes
    signature: bytes


def _parse(token: str) -> _Parsed:
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError("compact JWS format must have three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise JWTError("invalid JSON in token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWTError("invalid token")
    return _Parsed(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), b64url_decode(parts[2]))


def decode_unverified(token: str) -> tuple[dict, dict]:
    """(header, claims) without checking the signature."""
    p = _parse(token)
    return p.header, p.claims


def _verify_sig(p: _Parsed, key: PublicKey) -> None:
    alg = p.header.get("alg")
    if isinstance(key, rsa.RSAPublicKey):
        if alg != "RS256":
            raise JWTError("go-jose/go-jose: unexpected signature algorithm in JWS header")
        try:
            key.verify(p.signature, p.signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise JWTError("go-jose/go-jose: error in cryptographic primitive") from None
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        spec = _EC_ALGS.get(key.curve.name)
        if spec is None or alg != spec[0]:
            raise JWTError("go-jose/go-jose: unexpected signature algorithm in JWS header")
        _, hcls, size = spec
        if len(p.signature) != 2 * size:
            raise JWTError("go-jose/go-jose: error in cryptographic primitive")
        r = int.from_bytes(p.signature[:size], "big")
        s = int.from_bytes(p.signature[size:], "big")
        try:
            key.verify(encode_dss_signature(r, s), p.signing_input, ec.ECDSA(hcls()))
        except InvalidSignature:
            raise JWTError("go-jose/go-jose: error in cryptographic primitive") from None
        return
    raise JWTError("unsupported key type")


def verify_jwt(token: str, public_keys: Sequence[PublicKey]) -> dict:
    """The claims of a token signed by one of the keys (those whose key id matches the
    header's ``kid`` are tried first); raises JWTError."""
    p = _parse(token)
    kid = p.header.get("kid")
    keys = list(public_keys)
    if kid:
        keys.sort(key=lambda k: key_id(k) != kid)
    errors = []
    for k in keys:
        try:
            _verify_sig(p, _public(k))
            return p.claims
        except JWTError as e:
            errors.append(str(e))
    raise JWTError(aggregate_errors(errors) or "no public keys to verify the token")


# ---------------------------------------------------------------------------
# keys


def load_private_key(path: Union[str, Path]) -> PrivateKey:
    data = Path(path).read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError(f"{path}: unsupported private key type {type(key).__name__}")
    return key


def load_public_keys(path: Union[str, Path]) -> list[PublicKey]:
    """Every public key in a PEM file: public keys, certificates, and private keys (their
    public halves) — what ``--service-account-key-file`` accepts."""
    text = Path(path).read_bytes()
    keys: list[PublicKey] = []
    for block in _pem_blocks(text):
        kind = block.split(b"\n", 1)[0]
        if b"CERTIFICATE" in kind:
            keys.append(x509.load_pem_x509_certificate(block).public_key())
        elif b"PRIVATE KEY" in kind:
            keys.append(serialization.load_pem_private_key(block, password=None).public_key())
        elif b"PUBLIC KEY" in kind:
            if b"RSA PUBLIC KEY" in kind:
                keys.append(serialization.load_pem_public_key(block))
            else:
                keys.append(serialization.load_pem_public_key(block))
    keys = [k for k in keys if isinstance(k, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey))]
    if not keys:
        raise ValueError(f"data does not contain any valid RSA or ECDSA public keys: {path}")
    return keys


def _pem_blocks(data: bytes) -> list[bytes]:
    out = []
    start = 0
    while True:
        i = data.find(b"-----BEGIN ", start)
        if i < 0:
            return out
        j = data.find(b"-----END ", i)
        if j < 0:
            return out
        k = data.find(b"-----", j + 9)
        if k < 0:
            return out
        out.append(data[i : k + 5] + b"\n")
        start = k + 5


# ---------------------------------------------------------------------------
# issuing


def _meta(obj: Optional[Mapping[str, Any]]) -> tuple[str, str]:
    md = (obj or {}).get("metadata") or {}
    return md.get("name") or "", md.get("uid") or ""


class TokenIssuer:
    """Signs service-account tokens with one private key."""

    def __init__(self, private_key: PrivateKey, issuer: str = DEFAULT_ISSUER) -> None:
        self.key = private_key
        self.issuer = issuer
        self.kid = key_id(private_key)

    @classmethod
    def from_file(cls, path: Union[str, Path], issuer: str = DEFAULT_ISSUER) -> "TokenIssuer":
        return cls(load_private_key(path), issuer)

    @property
    def public_key(self) -> PublicKey:
        return self.key.public_key()

    def issue(
        self,
        service_account: Mapping[str, Any],
        audiences: Sequence[str],
        expiration_seconds: int = 3600,
        *,
        pod: Optional[Mapping[str, Any]] = None,
        secret: Optional[Mapping[str, Any]] = None,
        node: Optional[Mapping[str, Any]] = None,
        warn_after_seconds: int = 0,
        now: Optional[float] = None,
        jti: Optional[str] = None,
    ) -> tuple[str, dict]:
        """A bound token for the service account (upstream token.Claims); returns
        (token, claims).  ``node`` may be a Node dict or {"metadata": {"name": ...}}."""
        md = service_account.get("metadata") or {}
        ns, name, uid = md.get("namespace") or "", md.get("name") or "", md.get("uid") or ""
        t = int(now if now is not None else time.time())
        k8s: dict = {"namespace": ns, "serviceaccount": {"name": name, "uid": uid}}
        if secret is not None:
            sname, suid = _meta(secret)
            k8s["secret"] = {"name": sname, "uid": suid}
        if pod is not None:
            pname, puid = _meta(pod)
            k8s["pod"] = {"name": pname, "uid": puid}
        if node is not None:
            nname, nuid = _meta(node)
            ref = {"name": nname}
            if nuid:
                ref["uid"] = nuid
            k8s["node"] = ref
        if warn_after_seconds:
            k8s["warnafter"] = t + int(warn_after_seconds)
        claims = {
            "iss": self.issuer,
            "sub": f"system:serviceaccount:{ns}:{name}",
            "aud": list(audiences),
            "exp": t + int(expiration_seconds),
            "iat": t,
            "nbf": t,
            "jti": jti or str(uuid.uuid4()),
            "kubernetes.io": k8s,
        }
        return sign_jwt(claims, self.key, self.kid), claims

    def issue_legacy(self, service_account: Mapping[str, Any], secret: Mapping[str, Any]) -> str:
        """A legacy, non-expiring token for a kubernetes.io/service-account-token Secret."""
        md = service_account.get("metadata") or {}
        ns, name, uid = md.get("namespace") or "", md.get("name") or "", md.get("uid") or ""
        sname, _ = _meta(secret)
        claims = {
            "iss": LEGACY_ISSUER,
            "sub": f"system:serviceaccount:{ns}:{name}",
            "kubernetes.io/serviceaccount/namespace": ns,
            "kubernetes.io/serviceaccount/secret.name": sname,
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
        }
        return sign_jwt(claims, self.key, self.kid)


# ---------------------------------------------------------------------------
# verifying


class ServiceAccountLookup(Protocol):
    """Current objects, as dicts, or None when absent (serve them from watch caches)."""

    async def get_service_account(self, namespace: str, name: str) -> Optional[Mapping[str, Any]]: ...

    async def get_secret(self, namespace: str, name: str) -> Optional[Mapping[str, Any]]: ...

    async def get_pod(self, namespace: str, name: str) -> Optional[Mapping[str, Any]]: ...

    async def get_node(self, name: str) -> Optional[Mapping[str, Any]]: ...


def _deleted_before(obj: Mapping[str, Any], cutoff: float) -> bool:
    ts = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not ts:
        return False
    try:
        t = _dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return True
    return t < cutoff


def _int_claim(claims: Mapping[str, Any], key: str) -> Optional[float]:
    v = claims.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise JWTError(f"invalid {key} claim")
    return float(v)


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if aud is None:
        return []
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return list(aud)
    raise JWTError("invalid aud claim")


_UNEXPECTED_PRIVATE_CLAIM = "service account token claims could not be validated due to unexpected private claim"


def _private_claims(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``kubernetes.io`` claim, checked to have the shape upstream decodes it into
    (strings, and objects with string name/uid); anything else is a JWTError, never a
    crash further down."""
    k8s = claims.get("kubernetes.io")
    if not isinstance(k8s, Mapping):
        raise JWTError(_UNEXPECTED_PRIVATE_CLAIM)
    if not isinstance(k8s.get("namespace", ""), str):
        raise JWTError(_UNEXPECTED_PRIVATE_CLAIM)
    for ref in ("serviceaccount", "pod", "secret", "node"):
        v = k8s.get(ref)
        if v is None:
            continue
        if not isinstance(v, Mapping) or not all(isinstance(v.get(f, ""), str) for f in ("name", "uid")):
            raise JWTError(_UNEXPECTED_PRIVATE_CLAIM)
    return k8s


def service_account_user(
    namespace: str, name: str, uid: str, *, pod: tuple[str, str] = ("", ""), node: tuple[str, str] = ("", ""), jti: str = ""
) -> UserInfo:
    """The user a service-account token authenticates as (ServiceAccountInfo.UserInfo)."""
    extra: dict[str, list[str]] = {}
    if pod[0] and pod[1]:
        extra[POD_NAME_KEY] = [pod[0]]
        extra[POD_UID_KEY] = [pod[1]]
    if jti:
        extra[CREDENTIAL_ID_KEY] = [f"JTI={jti}"]
    if node[0]:
        extra[NODE_NAME_KEY] = [node[0]]
        if node[1]:
            extra[NODE_UID_KEY] = [node[1]]
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"),
        uid,
        extra,
    )


class ServiceAccountTokenAuthenticator:
    """Authenticates bound and (when enabled) legacy service-account tokens.

    ``issuers``: accepted ``iss`` values of bound tokens (``--service-account-issuer``);
    ``api_audiences``: the API server's audiences (``--api-audiences``, default the
    first issuer), used when the request names none; ``lookup``: a
    ServiceAccountLookup (None skips the existence checks — tests only)."""

    accepts_audiences = True

    def __init__(
        self,
        public_keys: Sequence[PublicKey],
        *,
        issuers: Sequence[str] = (DEFAULT_ISSUER,),
        api_audiences: Optional[Sequence[str]] = None,
        lookup: Optional[ServiceAccountLookup] = None,
        legacy: bool = True,
        now=time.time,
    ) -> None:
        self.public_keys = [_public(k) for k in public_keys]
        self.issuers = set(issuers)
        self.api_audiences = list(api_audiences if api_audiences is not None else list(issuers)[:1])
        self.lookup = lookup
        self.legacy = legacy
        self._now = now

    async def authenticate_token(self, token: str, audiences: Optional[Sequence[str]] = None) -> AuthResult:
        """``audiences``: what the request is for (TokenReview spec.audiences); None means
        the API server's own.  ``AuthResult.audiences`` is the intersection."""
        try:
            _, unverified = decode_unverified(token)
        except JWTError:
            return AuthResult(None)
        iss = unverified.get("iss")
        legacy = iss == LEGACY_ISSUER and self.legacy
        if not legacy and iss not in self.issuers:
            return AuthResult(None)  # not one of ours
        try:
            claims = verify_jwt(token, self.public_keys)
        except JWTError as e:
            return AuthResult(None, str(e))
        if claims.get("iss") != iss:  # pragma: no cover - same bytes, checked for clarity
            return AuthResult(None, f"token issuer {go_quote(str(claims.get('iss')))} is invalid")
        try:
            token_auds = _audiences(claims)
        except JWTError as e:
            return AuthResult(None, str(e))
        if not token_auds:
            token_auds = list(self.api_audiences)
        requested = list(audiences) if audiences is not None else list(self.api_audiences)
        auds = [a for a in token_auds if a in requested]
        if not auds and self.api_audiences:
            return AuthResult(
                None,
                f"token audiences {go_quote_list(token_auds)} is invalid for the target audiences {go_quote_list(requested)}",
            )
        try:
            if legacy:
                user = await self._validate_legacy(token, claims)
            else:
                user = await self._validate_bound(claims)
        except JWTError as e:
            return AuthResult(None, str(e))
        return AuthResult(user, "", tuple(auds))

    async def _validate_bound(self, claims: Mapping[str, Any]) -> UserInfo:
        now = self._now()
        try:
            exp = _int_claim(claims, "exp")
            nbf = _int_claim(claims, "nbf")
            iat = _int_claim(claims, "iat")
        except JWTError:
            raise JWTError("service account token claims could not be validated due to unexpected validation error") from None
        if nbf is not None and now + LEEWAY < nbf:
            raise JWTError("service account token is not valid yet")
        if exp is not None and now - LEEWAY > exp:
            raise JWTError("service account token has expired")
        if iat is not None and now + LEEWAY < iat:
            raise JWTError("service account token is issued in the future")
        k8s = _private_claims(claims)
        namespace = str(k8s.get("namespace") or "")
        saref = k8s.get("serviceaccount") or {}
        podref = k8s.get("pod")
        secref = k8s.get("secret")
        noderef = k8s.get("node")
        sa_name, sa_uid = str(saref.get("name") or ""), str(saref.get("uid") or "")
        cutoff = now - LEEWAY
        pod_name = pod_uid = node_name = node_uid = ""
        if self.lookup is not None:
            sa = await self.lookup.get_service_account(namespace, sa_name)
            if sa is None:
                raise JWTError(f"serviceaccounts {go_quote(sa_name)} not found")
            if _deleted_before(sa, cutoff):
                raise JWTError(f"service account {namespace}/{sa_name} has been deleted")
            cur_uid = (sa.get("metadata") or {}).get("uid") or ""
            if cur_uid != sa_uid:
                raise JWTError(f"service account UID ({cur_uid}) does not match claim ({sa_uid})")
            if isinstance(secref, Mapping):
                sec = await self.lookup.get_secret(namespace, str(secref.get("name") or ""))
                if sec is None or _deleted_before(sec, cutoff):
                    raise JWTError("service account token has been invalidated")
                s_uid = (sec.get("metadata") or {}).get("uid") or ""
                if s_uid != (secref.get("uid") or ""):
                    raise JWTError(f"secret UID ({s_uid}) does not match service account secret ref claim ({secref.get('uid') or ''})")
            if isinstance(podref, Mapping):
                pod = await self.lookup.get_pod(namespace, str(podref.get("name") or ""))
                if pod is None or _deleted_before(pod, cutoff):
                    raise JWTError("service account token has been invalidated")
                p_uid = (pod.get("metadata") or {}).get("uid") or ""
                if p_uid != (podref.get("uid") or ""):
                    raise JWTError(f"pod UID ({p_uid}) does not match service account pod ref claim ({podref.get('uid') or ''})")
            if isinstance(noderef, Mapping) and not isinstance(podref, Mapping):
                node = await self.lookup.get_node(str(noderef.get("name") or ""))
                if node is None or _deleted_before(node, cutoff):
                    raise JWTError("service account token has been invalidated")
                n_uid = (node.get("metadata") or {}).get("uid") or ""
                if noderef.get("uid") and noderef.get("uid") != n_uid:
                    raise JWTError(f"node UID ({n_uid}) does not match service account node ref claim ({noderef.get('uid')})")
                node_name, node_uid = str(noderef.get("name") or ""), n_uid
        if isinstance(podref, Mapping):
            pod_name, pod_uid = str(podref.get("name") or ""), str(podref.get("uid") or "")
            if isinstance(noderef, Mapping):
                node_name, node_uid = str(noderef.get("name") or ""), str(noderef.get("uid") or "")
        elif isinstance(noderef, Mapping) and self.lookup is None:
            node_name, node_uid = str(noderef.get("name") or ""), str(noderef.get("uid") or "")
        jti = claims.get("jti") if isinstance(claims.get("jti"), str) else ""
        return service_account_user(
            namespace, sa_name, sa_uid, pod=(pod_name, pod_uid), node=(node_name, node_uid), jti=jti
        )

    async def _validate_legacy(self, token: str, claims: Mapping[str, Any]) -> UserInfo:
        for k, v in claims.items():
            if k.startswith("kubernetes.io/serviceaccount/") and not isinstance(v, str):
                raise JWTError(_UNEXPECTED_PRIVATE_CLAIM)
        sub = claims.get("sub") or ""
        if not sub:
            raise JWTError("sub claim is missing")
        namespace = claims.get("kubernetes.io/serviceaccount/namespace") or ""
        if not namespace:
            raise JWTError("namespace claim is missing")
        secret_name = claims.get("kubernetes.io/serviceaccount/secret.name") or ""
        if not secret_name:
            raise JWTError("secretName claim is missing")
        sa_name = claims.get("kubernetes.io/serviceaccount/service-account.name") or ""
        if not sa_name:
            raise JWTError("serviceAccountName claim is missing")
        sa_uid = claims.get("kubernetes.io/serviceaccount/service-account.uid") or ""
        if not sa_uid:
            raise JWTError("serviceAccountUID claim is missing")
        parts = str(sub).split(":")
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"] or parts[2] != namespace or parts[3] != sa_name:
            raise JWTError("sub claim is invalid")
        if self.lookup is not None:
            secret = await self.lookup.get_secret(namespace, secret_name)
            if secret is None or (secret.get("metadata") or {}).get("deletionTimestamp"):
                raise JWTError("token has been invalidated")
            stored = (secret.get("data") or {}).get("token") or ""
            try:
                stored_bytes = base64.b64decode(stored) if isinstance(stored, str) else bytes(stored)
            except Exception:
                stored_bytes = b""
            if not hmac.compare_digest(stored_bytes, token.encode()):
                raise JWTError("token does not match server's copy")
            sa = await self.lookup.get_service_account(namespace, sa_name)
            if sa is None:
                raise JWTError(f"serviceaccounts {go_quote(sa_name)} not found")
            if (sa.get("metadata") or {}).get("deletionTimestamp"):
                raise JWTError(f"ServiceAccount {namespace}/{sa_name} has been deleted")
            cur_uid = (sa.get("metadata") or {}).get("uid") or ""
            if cur_uid != sa_uid:
                raise JWTError(f"ServiceAccount UID ({cur_uid}) does not match claim ({sa_uid})")
        return service_account_user(namespace, sa_name, sa_uid)


# ---------------------------------------------------------------------------
# TokenRequest (POST .../serviceaccounts/<name>/token)


def _check_decodes(body: Any) -> None:
    """A body that would not decode into a TokenRequest is 400, as upstream's decoder
    answers (wrong JSON types anywhere, e.g. metadata as a list)."""
    from kybernetes.api import validation

    if not isinstance(body, Mapping):
        raise StatusError.bad_request(validation.cannot_handle_message(
            "TokenRequest", "v1", "json: cannot unmarshal non-object into Go value of type v1.TokenRequest"))
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind and kind != "TokenRequest":
        raise StatusError.bad_request(f"the kind in the data ({kind}) does not match the expected kind (TokenRequest)")
    if api_version and api_version != "authentication.k8s.io/v1":
        raise StatusError.bad_request(f"the API version in the data ({api_version}) does not match the expected API "
                                      "version (authentication.k8s.io/v1)")
    causes, _ = validation.validate_schema_for(dict(body), "authentication.k8s.io", "v1", "TokenRequest")
    decode = validation.decode_errors(causes)
    if decode:
        raise StatusError.bad_request(validation.cannot_handle_message("TokenRequest", "v1", decode[0].message))


def _rfc3339(t: float) -> str:
    return _dt.datetime.fromtimestamp(int(t), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def create_token_request(
    issuer: TokenIssuer,
    body: Mapping[str, Any],
    *,
    namespace: str,
    name: str,
    lookup: ServiceAccountLookup,
    api_audiences: Sequence[str],
    max_expiration_seconds: int = 0,
    extend_expiration: bool = True,
    now: Optional[float] = None,
) -> tuple[dict, list[str]]:
    """Handle a TokenRequest for service account `name` in `namespace` as upstream:
    returns (the TokenRequest with status.token and status.expirationTimestamp,
    warnings); raises StatusError (400, 404, 409, 422)."""
    warnings: list[str] = []
    _check_decodes(body)
    md = dict(body.get("metadata") or {})
    spec = dict(body.get("spec") or {})
    gk = ("TokenRequest", "authentication.k8s.io")
    if md.get("name") and md["name"] != name:
        raise StatusError.invalid(*gk, name, [("metadata.name", md["name"], "must match the service account name if specified")])
    if md.get("namespace") and md["namespace"] != namespace:
        raise StatusError.invalid(
            *gk, name, [("metadata.namespace", md["namespace"], "must match the service account namespace if specified")]
        )
    sa = await lookup.get_service_account(namespace, name)
    if sa is None:
        raise StatusError.not_found("serviceaccounts", name, group="")
    if not spec.get("audiences"):
        spec["audiences"] = list(api_audiences)
    if spec.get("expirationSeconds") is None:
        spec["expirationSeconds"] = 3600
    exp_req = spec["expirationSeconds"]
    if isinstance(exp_req, bool) or not isinstance(exp_req, int):
        raise StatusError.bad_request("spec.expirationSeconds must be an integer")
    t = float(now if now is not None else time.time())
    md["name"] = name
    md["namespace"] = namespace
    md["creationTimestamp"] = _rfc3339(t)
    errs = []
    if exp_req < 600:
        errs.append(("spec.expirationSeconds", exp_req, "may not specify a duration less than 10 minutes"))
    if exp_req > 1 << 32:
        errs.append(("spec.expirationSeconds", exp_req, "may not specify a duration larger than 2^32 seconds"))
    if errs:
        raise StatusError.invalid(*gk, "", errs)

    pod = secret = node = None
    ref = spec.get("boundObjectRef")
    if ref:
        api_version = ref.get("apiVersion") or ""
        group, _, version = api_version.rpartition("/")
        kind = ref.get("kind") or ""
        ref_name = ref.get("name") or ""
        if group == "" and kind == "Pod":
            pod = await lookup.get_pod(namespace, ref_name)
            if pod is None:
                raise StatusError.not_found("pods", ref_name, group="")
            if ((pod.get("spec") or {}).get("serviceAccountName") or "") != name:
                raise StatusError.bad_request(
                    f"cannot bind token for serviceaccount {go_quote(name)} to pod running with different serviceaccount name."
                )
            uid = (pod.get("metadata") or {}).get("uid") or ""
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            if node_name:
                n = await lookup.get_node(node_name)
                node = {"metadata": {"name": node_name, "uid": ((n or {}).get("metadata") or {}).get("uid") or ""}}
        elif group == "" and kind == "Node":
            node = await lookup.get_node(ref_name)
            if node is None:
                raise StatusError.not_found("nodes", ref_name, group="")
            uid = (node.get("metadata") or {}).get("uid") or ""
        elif group == "" and kind == "Secret":
            secret = await lookup.get_secret(namespace, ref_name)
            if secret is None:
                raise StatusError.not_found("secrets", ref_name, group="")
            uid = (secret.get("metadata") or {}).get("uid") or ""
        else:
            raise StatusError.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
        if ref.get("uid") and ref["uid"] != uid:
            raise StatusError.conflict(
                kind,
                ref_name,
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                "The object might have been deleted and then recreated",
                group=group,
            )

    if max_expiration_seconds > 0 and spec["expirationSeconds"] > max_expiration_seconds:
        warnings.append(
            f"requested expiration of {spec['expirationSeconds']} seconds shortened to {max_expiration_seconds} seconds"
        )
        spec["expirationSeconds"] = max_expiration_seconds
    exp = spec["expirationSeconds"]
    warn_after = 0
    if (
        extend_expiration
        and pod is not None
        and exp == WARN_ONLY_EXPIRATION_SECONDS
        and all(a in api_audiences for a in spec["audiences"])
    ):
        warn_after = exp
        exp = max(EXTENDED_EXPIRATION_SECONDS, max_expiration_seconds)
    token, _ = issuer.issue(
        sa, spec["audiences"], exp, pod=pod, secret=secret, node=node, warn_after_seconds=warn_after, now=t
    )
    out = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": md,
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": _rfc3339(t + spec["expirationSeconds"])},
    }
    return out, warnings


# ---------------------------------------------------------------------------
# OIDC discovery


def openid_configuration(issuer: str, jwks_uri: str, public_keys: Iterable[Any] = ()) -> dict:
    """The document served at /.well-known/openid-configuration."""
    algs = sorted({algorithm_for(k) for k in public_keys})
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
    }


def _int_b64(n: int, size: Optional[int] = None) -> str:
    if size is None:
        size = max(1, (n.bit_length() + 7) // 8)
    return b64url_encode(n.to_bytes(size, "big"))


def jwk(key: Any) -> dict:
    pub = _public(key)
    out: dict = {"use": "sig", "kid": key_id(pub), "alg": algorithm_for(pub)}
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        out.update({"kty": "RSA", "n": _int_b64(nums.n), "e": _int_b64(nums.e)})
    else:
        nums = pub.public_numbers()
        size = _EC_ALGS[pub.curve.name][2]
        out.update({"kty": "EC", "crv": _CRV[pub.curve.name], "x": _int_b64(nums.x, size), "y": _int_b64(nums.y, size)})
    return out


def jwks(public_keys: Iterable[Any]) -> dict:
    """The JSON Web Key Set served at /openid/v1/jwks."""
    return {"keys": [jwk(k) for k in public_keys]}
