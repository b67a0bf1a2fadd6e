"""List continue tokens: upstream's wire format, round trip, and rejection of bad ones."""

from __future__ import annotations

import base64
import json

import pytest

from kybernetes.api.continuetoken import ContinueTokenError, decode_continue, encode_continue

PREFIX = "/registry/pods/"


def _raw(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_round_trip() -> None:
    token = encode_continue("/registry/pods/ns1/web-0", PREFIX, 1234)
    assert "=" not in token and "+" not in token and "/" not in token
    assert json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == {
        "v": "meta.k8s.io/v1", "rv": 1234, "start": "ns1/web-0\x00"}
    c = decode_continue(token, PREFIX)
    assert c.resource_version == 1234
    assert c.start_key == "/registry/pods/ns1/web-0\x00"
    assert c.start_after == "/registry/pods/ns1/web-0"


def test_upstream_token_without_nul() -> None:
    c = decode_continue(_raw({"v": "meta.k8s.io/v1", "rv": 9, "start": "ns/b"}), PREFIX)
    assert (c.resource_version, c.start_key, c.start_after) == (9, "/registry/pods/ns/b", None)


def test_prefix_without_trailing_slash() -> None:
    token = encode_continue("/registry/pods/ns/a", "/registry/pods", 5)
    assert decode_continue(token, "/registry/pods").start_after == "/registry/pods/ns/a"


def test_encode_rejects_foreign_key() -> None:
    with pytest.raises(ValueError):
        encode_continue("/registry/secrets/ns/a", PREFIX, 5)


BAD = [
    ("%%%", "continue key is not valid: illegal base64 data at input byte 0"),
    ("abc=", "continue key is not valid: illegal base64 data at input byte 3"),
    (base64.urlsafe_b64encode(b"not json").decode().rstrip("="), "continue key is not valid: "),
    (_raw([1]), "continue key is not valid: not a JSON object"),
    (_raw({"v": "meta.k8s.io/v2", "rv": 1, "start": "a"}),
     "continue key is not valid: server does not recognize this encoded version meta.k8s.io/v2"),
    (_raw({"v": "meta.k8s.io/v1", "rv": 0, "start": "a"}),
     "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"),
    (_raw({"v": "meta.k8s.io/v1", "rv": "7", "start": "a"}),
     "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"),
    (_raw({"v": "meta.k8s.io/v1", "rv": 7, "start": ""}),
     "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)"),
    (_raw({"v": "meta.k8s.io/v1", "rv": 7, "start": "../secrets/ns/a"}),
     "continue key is not valid: ../secrets/ns/a"),
    (_raw({"v": "meta.k8s.io/v1", "rv": 7, "start": "ns//a"}), "continue key is not valid: ns//a"),
    (_raw({"v": "meta.k8s.io/v1", "rv": 7, "start": "//ns/a"}), "continue key is not valid: //ns/a"),
]


@pytest.mark.parametrize("token,message", BAD)
def test_bad_tokens(token: str, message: str) -> None:
    with pytest.raises(ContinueTokenError) as exc:
        decode_continue(token, PREFIX)
    assert exc.value.message.startswith(message)
    assert exc.value.message.startswith("continue key is not valid")
