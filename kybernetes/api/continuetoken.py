"""List continue tokens in upstream's format.

A token is unpadded URL-safe base64 of ``{"v":"meta.k8s.io/v1","rv":<int>,"start":"<key
suffix>"}``: the revision the first page was read at, and where the next page starts,
relative to the list's key prefix.  As upstream does, ``start`` is the last returned key
followed by a NUL byte, i.e. the smallest key after it, so the next page begins there.

The caller owns the rest of the protocol: answering 410 Expired when ``rv`` has been
compacted, rejecting ``resourceVersion`` together with ``continue``, and computing
``remainingItemCount``.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from dataclasses import dataclass
from typing import Optional

__all__ = ["ContinueTokenError", "ContinueToken", "encode_continue", "decode_continue"]

TOKEN_VERSION = "meta.k8s.io/v1"
_GO_JSON_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


class ContinueTokenError(ValueError):
    """A continue token that cannot be used; the message is what the API returns in a
    400 BadRequest ("continue key is not valid: ...")."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ContinueToken:
    """A decoded token: list from `start_key` (inclusive, a full key) at revision
    `resource_version`."""

    resource_version: int
    start_key: str

    @property
    def start_after(self) -> Optional[str]:
        """The same position as an exclusive bound (for `Store.list(start_after=...)`):
        the last key already returned.  None when the token's start key is not of
        the `last + NUL` form and so has no exclusive equivalent."""
        if self.start_key.endswith("\0"):
            return self.start_key[:-1]
        return None


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")


def _b64url_decode(s: str) -> bytes:
    # RawURLEncoding: no padding, nothing outside the URL-safe alphabet, and no
    # length that leaves a dangling 6 bits.
    m = _B64URL_RE.match(s)
    bad_at = m.end() if m else 0
    if bad_at < len(s):
        raise ContinueTokenError(f"continue key is not valid: illegal base64 data at input byte {bad_at}")
    if len(s) % 4 == 1:
        raise ContinueTokenError(f"continue key is not valid: illegal base64 data at input byte {len(s) - 1}")
    try:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError) as e:
        raise ContinueTokenError(f"continue key is not valid: illegal base64 data: {e}") from None


def encode_continue(last_key: str, key_prefix: str, resource_version: int) -> str:
    """The token for the page after `last_key` (the last key returned) of a list under
    `key_prefix` read at `resource_version`."""
    if not key_prefix or not last_key.startswith(key_prefix):
        raise ValueError("unable to encode next field: the key and key prefix do not match")
    suffix = last_key[len(key_prefix):] + "\0"
    body = json.dumps(
        {"v": TOKEN_VERSION, "rv": int(resource_version), "start": suffix},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # Go's encoding/json escapes these too; doing the same keeps tokens byte-identical.
    for ch, esc in _GO_JSON_ESCAPES:
        body = body.replace(ch, esc)
    return _b64url_encode(body.encode("utf-8"))


def decode_continue(token: str, key_prefix: str) -> ContinueToken:
    """Decode and check a token against the list's `key_prefix`.
    Raises ContinueTokenError with upstream-like messages."""
    raw = _b64url_decode(token)
    try:
        c = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ContinueTokenError(f"continue key is not valid: {e}") from None
    if not isinstance(c, dict):
        raise ContinueTokenError("continue key is not valid: not a JSON object")
    version = c.get("v")
    if version != TOKEN_VERSION:
        raise ContinueTokenError(
            f"continue key is not valid: server does not recognize this encoded version {version}"
        )
    rv = c.get("rv")
    if not isinstance(rv, int) or isinstance(rv, bool) or not 0 < rv < 2**63:
        raise ContinueTokenError(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        )
    start = c.get("start")
    if not isinstance(start, str) or not start:
        raise ContinueTokenError("continue key is not valid: encoded start key empty (version meta.k8s.io/v1)")
    # The start key comes from the client: refuse anything that would climb out of
    # the list's prefix ("../other-namespace/...") or is not in canonical form.
    key = start if start.startswith("/") else "/" + start
    if _clean(key) != key:
        raise ContinueTokenError(f"continue key is not valid: {start}")
    # A prefix without a trailing "/" yields suffixes that start with one; keep it.
    return ContinueToken(
        resource_version=rv, start_key=key_prefix + (start if start.startswith("/") else key[1:])
    )


def _clean(p: str) -> str:
    """Go's path.Clean for an absolute path.  posixpath.normpath agrees except that it
    keeps a leading "//" (which POSIX permits), where Go collapses it."""
    cleaned = posixpath.normpath(p)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned
