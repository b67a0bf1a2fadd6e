"""Service-account keys from flags, and legacy token Secrets filled only when requested
(a Secret of type kubernetes.io/service-account-token naming its account), with real kubectl."""

from __future__ import annotations

import base64
import json
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fixtures.server import start_server
from kybernetes.auth.serviceaccount_tokens import verify_jwt


def _until(fn, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _secret(kyb, ns: str, name: str):
    p = kyb.kubectl("get", "secret", name, "-n", ns, "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def _whoami(kyb, token: str) -> str:
    # kubectl with only a server, the CA and the token: no client certificate mixed in
    p = kyb.kubectl("--kubeconfig", "/dev/null", "--server", kyb.url,
                    "--certificate-authority", str(kyb.data_dir / "tls" / "ca.crt"), "--token", token,
                    "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", check=False)
    return p.stdout.strip() if p.returncode == 0 else f"error: {p.stderr.strip()}"


def test_requested_legacy_token_is_filled_and_dies_with_its_account(kyb):
    ns = "legacy-tokens"
    kyb.kubectl("create", "namespace", ns)
    kyb.kubectl("create", "serviceaccount", "bot", "-n", ns)
    kyb.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "bot-token", "annotations": {"kubernetes.io/service-account.name": "bot"}}}))
    secret = _until(lambda: (s := _secret(kyb, ns, "bot-token")) and (s.get("data") or {}).get("token") and s,
                    "the token to be filled")
    sa = json.loads(kyb.kubectl("get", "sa", "bot", "-n", ns, "-o", "json").stdout)
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == sa["metadata"]["uid"]
    assert base64.b64decode(secret["data"]["namespace"]).decode() == ns
    assert base64.b64decode(secret["data"]["ca.crt"]).startswith(b"-----BEGIN CERTIFICATE-----")
    token = base64.b64decode(secret["data"]["token"]).decode()
    assert _whoami(kyb, token) == f"system:serviceaccount:{ns}:bot"

    # a token Secret for an account that does not exist is removed, as upstream
    kyb.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "ghost-token", "annotations": {"kubernetes.io/service-account.name": "ghost"}}}))
    _until(lambda: _secret(kyb, ns, "ghost-token") is None, "the orphan token secret to be deleted")

    # deleting the account deletes its token secret and the token stops working
    kyb.kubectl("delete", "sa", "bot", "-n", ns)
    _until(lambda: _secret(kyb, ns, "bot-token") is None, "the token secret to follow its account")
    assert _whoami(kyb, token).startswith("error:")


def test_signing_and_verifying_keys_from_flags(tmp_path):
    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "sign.key").write_bytes(signing.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    # the verifying file holds another key too (an old one kept during rotation)
    (tmp_path / "verify.pub").write_bytes(b"".join(k.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo) for k in (other, signing)))
    s = start_server(tmp_path / "data", extra=(
        "--service-account-signing-key-file", str(tmp_path / "sign.key"),
        "--service-account-key-file", str(tmp_path / "verify.pub"), "--disable-controllers"))
    try:
        s.kubectl("create", "serviceaccount", "signer-test")
        token = s.kubectl("create", "token", "signer-test").stdout.strip()
        # signed with the flag's key, not a generated one
        claims = verify_jwt(token, [signing.public_key()])
        assert claims["sub"] == "system:serviceaccount:default:signer-test"
        assert _whoami(s, token) == "system:serviceaccount:default:signer-test"
    finally:
        s.stop()
