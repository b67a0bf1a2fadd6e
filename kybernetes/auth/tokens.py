"""Bearer-token authentication: the Authorization header, the static token file
(``--token-auth-file``) and bootstrap tokens — as upstream's
staging/src/k8s.io/apiserver/pkg/authentication/request/bearertoken,
plugin/pkg/authenticator/token/tokenfile and
plugin/pkg/auth/authenticator/token/bootstrap.

Every token authenticator has ``async authenticate_token(token) -> AuthResult``:
``AuthResult.user`` is the UserInfo (None when the token is not accepted) and
``AuthResult.reason`` says why a token that looked like one of ours was refused (for
the server log; the client only ever sees 401 ``Unauthorized``).
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import hashlib
import hmac
import io
import re
import secrets
from typing import Any, Awaitable, Callable, Iterable, Mapping, NamedTuple, Optional

from .authorizer import ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, UserInfo, aggregate_errors

__all__ = [
    "AuthResult",
    "TokenAuthenticator",
    "bearer_token",
    "websocket_bearer_token",
    "INVALID_BEARER_TOKEN",
    "TokenFileError",
    "TokenFileAuthenticator",
    "BootstrapTokenAuthenticator",
    "UnionTokenAuthenticator",
    "as_token_check",
    "with_authenticated_group",
    "parse_bootstrap_token",
    "generate_bootstrap_token",
    "bootstrap_token_secret",
    "BOOTSTRAP_TOKEN_SECRET_TYPE",
    "BOOTSTRAP_DEFAULT_GROUP",
]


class AuthResult(NamedTuple):
    user: Optional[Any]
    reason: str = ""
    audiences: tuple = ()

    @property
    def ok(self) -> bool:
        return self.user is not None


NOT_MINE = AuthResult(None)
INVALID_BEARER_TOKEN = "invalid bearer token"

TokenAuthenticator = Any  # anything with async authenticate_token(token) -> AuthResult


# ---------------------------------------------------------------------------
# where tokens come from


def bearer_token(authorization: Optional[str]) -> tuple[Optional[str], str]:
    """The token of an ``Authorization: Bearer <token>`` header, and a warning.

    (None, "") when there is no bearer token; (None, warning) for ``Bearer  x`` (a
    space before the token), as upstream which then does not authenticate."""
    auth = (authorization or "").strip()
    if not auth:
        return None, ""
    parts = auth.split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None, ""
    token = parts[1]
    if not token:
        if len(parts) == 3:
            return None, "the provided Authorization header contains extra space before the bearer token, and is ignored"
        return None, ""
    return token, ""


WS_PROTOCOL_PREFIX = "base64url.bearer.authorization.k8s.io."


def websocket_bearer_token(protocols: Optional[str]) -> tuple[Optional[str], str]:
    """A bearer token carried in ``Sec-WebSocket-Protocol`` as
    ``base64url.bearer.authorization.k8s.io.<base64url token>`` (the WebSocket API
    cannot set headers).  Returns (token, error)."""
    if not protocols:
        return None, ""
    token = None
    for p in protocols.split(","):
        p = p.strip()
        if not p.startswith(WS_PROTOCOL_PREFIX):
            continue
        if token is not None:
            return None, "multiple base64.bearer.authorization tokens specified"
        enc = p[len(WS_PROTOCOL_PREFIX):]
        try:
            if "=" in enc:
                raise ValueError("padded")
            raw = base64.b64decode(enc + "=" * (-len(enc) % 4), altchars=b"-_", validate=True)
            token = raw.decode("utf-8")
        except Exception:
            return None, "invalid base64.bearer.authorization token encoding"
        if not token:
            return None, "invalid base64.bearer.authorization token"
    return token, ""


def with_authenticated_group(user: Any) -> Any:
    """Add system:authenticated to an authenticated user, as upstream's
    AuthenticatedGroupAdder (unless it already has it or system:unauthenticated)."""
    groups = tuple(user.groups or ())
    if ALL_AUTHENTICATED in groups or ALL_UNAUTHENTICATED in groups:
        return user
    return UserInfo(user.name, groups + (ALL_AUTHENTICATED,), user.uid, dict(user.extra or {}))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


# ---------------------------------------------------------------------------
# static token file


class TokenFileError(ValueError):
    pass


class TokenFileAuthenticator:
    """``--token-auth-file``: CSV lines ``token,user,uid[,"group1,group2"]``.

    Tokens are kept as SHA-256 digests and compared in constant time, so neither the
    table nor the comparison leaks a token."""

    def __init__(self, entries: Mapping[str, UserInfo]) -> None:
        self._by_digest: dict[bytes, UserInfo] = {_digest(t): u for t, u in entries.items()}
        self.warnings: list[str] = []

    def __len__(self) -> int:
        return len(self._by_digest)

    @classmethod
    def from_csv(cls, text: str, path: str = "") -> "TokenFileAuthenticator":
        entries: dict[str, UserInfo] = {}
        warnings: list[str] = []
        record_num = 0
        try:
            rows = list(csv.reader(io.StringIO(text), strict=True))
        except csv.Error as e:
            raise TokenFileError(f"parse error in token file '{path}': {e}") from None
        for record in rows:
            if not record:  # Go's csv reader skips empty lines
                continue
            if len(record) < 3:
                raise TokenFileError(
                    f"token file '{path}' must have at least 3 columns (token, user name, user uid), found {len(record)}"
                )
            record_num += 1
            token = record[0]
            if token == "":
                warnings.append(f"empty token has been found in token file '{path}', record number '{record_num}'")
                continue
            if token in entries:
                warnings.append(f"duplicate token has been found in token file '{path}', record number '{record_num}'")
            groups: tuple[str, ...] = ()
            if len(record) >= 4:
                groups = tuple(record[3].split(","))
            entries[token] = UserInfo(record[1], groups, record[2], {})
        auth = cls(entries)
        auth.warnings = warnings
        return auth

    @classmethod
    def from_file(cls, path: str) -> "TokenFileAuthenticator":
        try:
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read()
        except OSError as e:
            raise TokenFileError(f"open {path}: {e.strerror or e}") from None
        return cls.from_csv(text, str(path))

    async def authenticate_token(self, token: str) -> AuthResult:
        # The lookup is keyed by a digest: its timing tells nothing about the token.
        user = self._by_digest.get(_digest(token))
        if user is None:
            return NOT_MINE
        return AuthResult(user)


# ---------------------------------------------------------------------------
# bootstrap tokens

BOOTSTRAP_TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token"
BOOTSTRAP_SECRET_PREFIX = "bootstrap-token-"
BOOTSTRAP_USER_PREFIX = "system:bootstrap:"
BOOTSTRAP_DEFAULT_GROUP = "system:bootstrappers"
BOOTSTRAP_GROUP_PATTERN = r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z"
_BOOTSTRAP_GROUP_RE = re.compile(r"system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]")
_TOKEN_RE = re.compile(r"([a-z0-9]{6})\.([a-z0-9]{16})")

SecretGetter = Callable[[str, str], Awaitable[Optional[Mapping[str, Any]]]]


def parse_bootstrap_token(token: str) -> Optional[tuple[str, str]]:
    """(token id, token secret) of ``[a-z0-9]{6}.[a-z0-9]{16}``, or None."""
    m = _TOKEN_RE.fullmatch(token)
    if m is None:
        return None
    return m.group(1), m.group(2)


def generate_bootstrap_token() -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    pick = lambda n: "".join(secrets.choice(alphabet) for _ in range(n))  # noqa: E731
    return f"{pick(6)}.{pick(16)}"


def bootstrap_token_secret(
    token: str,
    *,
    expiration: Optional[_dt.datetime] = None,
    usages: Iterable[str] = ("authentication", "signing"),
    groups: Iterable[str] = ("system:bootstrappers:kyb:default-node-token",),
    description: str = "",
) -> dict:
    """The kube-system Secret that makes `token` a bootstrap token (as kubeadm writes it)."""
    parsed = parse_bootstrap_token(token)
    if parsed is None:
        raise ValueError("bootstrap token must match [a-z0-9]{6}.[a-z0-9]{16}")
    tid, tsecret = parsed
    data = {"token-id": tid, "token-secret": tsecret}
    for u in usages:
        data[f"usage-bootstrap-{u}"] = "true"
    groups = list(groups)
    if groups:
        data["auth-extra-groups"] = ",".join(groups)
    if expiration is not None:
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=_dt.timezone.utc)
        data["expiration"] = expiration.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if description:
        data["description"] = description
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": BOOTSTRAP_SECRET_PREFIX + tid, "namespace": "kube-system"},
        "type": BOOTSTRAP_TOKEN_SECRET_TYPE,
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def _secret_data(secret: Mapping[str, Any], key: str) -> str:
    """A data value of a Secret dict (base64 in JSON); stringData is honoured too."""
    data = secret.get("data") or {}
    if key in data:
        v = data[key]
        if isinstance(v, (bytes, bytearray)):
            return bytes(v).decode("utf-8", "replace")
        try:
            return base64.b64decode(v or "", validate=True).decode("utf-8", "replace")
        except Exception:
            return ""
    sd = secret.get("stringData") or {}
    return str(sd.get(key) or "")


def _parse_rfc3339(s: str) -> Optional[_dt.datetime]:
    try:
        t = _dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return t


class BootstrapTokenAuthenticator:
    """Bootstrap tokens ``<id>.<secret>`` backed by Secrets
    ``kube-system/bootstrap-token-<id>`` of type ``bootstrap.kubernetes.io/token``.

    ``get_secret(namespace, name)`` returns the Secret dict or None.  The user is
    ``system:bootstrap:<id>`` in ``system:bootstrappers`` plus the secret's
    ``auth-extra-groups`` (each must match ``system:bootstrappers:...``); the secret
    must have ``usage-bootstrap-authentication: "true"`` and must not be expired."""

    def __init__(self, get_secret: SecretGetter, *, now: Callable[[], _dt.datetime] = None) -> None:
        self._get = get_secret
        self._now = now or (lambda: _dt.datetime.now(_dt.timezone.utc))

    async def authenticate_token(self, token: str) -> AuthResult:
        parsed = parse_bootstrap_token(token)
        if parsed is None:
            return NOT_MINE  # not a bootstrap token
        token_id, token_secret = parsed
        name = BOOTSTRAP_SECRET_PREFIX + token_id
        secret = await self._get("kube-system", name)
        if secret is None:
            return AuthResult(None, f"No secret of name {name} to match bootstrap bearer token")
        md = secret.get("metadata") or {}
        prefix = f"Bootstrap secret {md.get('namespace') or 'kube-system'}/{md.get('name') or name} matching bearer token "
        if md.get("deletionTimestamp"):
            return AuthResult(None, prefix + "is deleted and awaiting removal")
        if secret.get("type") != BOOTSTRAP_TOKEN_SECRET_TYPE or not (secret.get("data") or secret.get("stringData")):
            return AuthResult(None, prefix + f"has invalid type, expected {BOOTSTRAP_TOKEN_SECRET_TYPE}.")
        stored = _secret_data(secret, "token-secret")
        if not hmac.compare_digest(stored.encode(), token_secret.encode()):
            return AuthResult(None, prefix + "has invalid value for key token-secret.")
        if _secret_data(secret, "token-id") != token_id:
            return AuthResult(None, prefix + "has invalid value for key token-id.")
        exp = _secret_data(secret, "expiration")
        if exp:
            t = _parse_rfc3339(exp)
            ns_name = f"{md.get('namespace') or 'kube-system'}/{md.get('name') or name}"
            if t is None:
                return AuthResult(None, f"Unparseable expiration time ({exp}) in {ns_name} Secret. Treating as expired.")
            if self._now() > t:
                return AuthResult(None, f"Expired bootstrap token in {ns_name} Secret: {exp}")
        if _secret_data(secret, "usage-bootstrap-authentication") != "true":
            return AuthResult(None, prefix + "not marked usage-bootstrap-authentication=true.")
        groups = {BOOTSTRAP_DEFAULT_GROUP}
        extra = _secret_data(secret, "auth-extra-groups")
        if extra:
            for g in extra.split(","):
                if not _BOOTSTRAP_GROUP_RE.fullmatch(g):
                    return AuthResult(
                        None,
                        prefix
                        + f'has invalid value for key auth-extra-groups: bootstrap group "{g}" is invalid '
                        f"(must match {BOOTSTRAP_GROUP_PATTERN}).",
                    )
                groups.add(g)
        return AuthResult(UserInfo(BOOTSTRAP_USER_PREFIX + token_id, tuple(sorted(groups)), "", {}))


# ---------------------------------------------------------------------------
# several


class UnionTokenAuthenticator:
    """Try each authenticator in order; the first that accepts the token wins.  When
    none does, the reasons are aggregated (upstream's union: ``[a, b]``) and, if none
    gave one, the reason is ``invalid bearer token``.

    ``audiences`` (TokenReview spec.audiences; None = the API server's own) is passed
    to authenticators that understand audiences (``accepts_audiences = True``, e.g.
    service-account tokens).  The others are audience-agnostic, as upstream's
    WrapAudienceAgnosticToken: they only answer when the requested audiences include
    one of ``api_audiences``, and report that intersection."""

    accepts_audiences = True

    def __init__(self, authenticators: Iterable[Any], api_audiences: Iterable[str] = ()) -> None:
        self.authenticators = list(authenticators)
        self.api_audiences = list(api_audiences)

    async def authenticate_token(self, token: str, audiences: Optional[Iterable[str]] = None) -> AuthResult:
        requested = None if audiences is None else list(audiences)
        reasons: list[str] = []
        for a in self.authenticators:
            if getattr(a, "accepts_audiences", False):
                r = await a.authenticate_token(token, audiences=requested)
            else:
                wanted = self.api_audiences if not requested else requested
                common = tuple(x for x in self.api_audiences if x in wanted)
                if requested and self.api_audiences and not common:
                    continue
                r = await a.authenticate_token(token)
                if r.user is not None:
                    r = AuthResult(r.user, r.reason, common)
            if r.user is not None:
                return r
            if r.reason:
                reasons.append(r.reason)
        return AuthResult(None, aggregate_errors(reasons) if reasons else INVALID_BEARER_TOKEN)


def as_token_check(authenticator: Any) -> Callable[[str, list], Awaitable[tuple[Optional[Any], list, str]]]:
    """Adapt a token authenticator to the API server's TokenReview hook
    ``(token, audiences) -> (user | None, audiences, error)``; the user gets
    system:authenticated as for any authenticated request."""

    async def check(token: str, audiences: list) -> tuple[Optional[Any], list, str]:
        if getattr(authenticator, "accepts_audiences", False):
            r = await authenticator.authenticate_token(token, audiences=audiences or None)
        else:
            r = await authenticator.authenticate_token(token)
        if r.user is None:
            return None, [], r.reason or INVALID_BEARER_TOKEN
        return with_authenticated_group(r.user), list(r.audiences), ""

    return check
