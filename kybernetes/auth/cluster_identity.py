"""Shared cluster identity for servers on one datastore.

Servers that share a datastore (etcd) must share the cluster CA and the
service-account signing key, or kubeconfigs and tokens issued by one server would be
rejected by the others.  The first server stores that material in the datastore under
``/bootstrap/<sha256(token)[:16]>``, encrypted with a key derived from ``--token``
(scrypt, then AES-256-GCM); later servers with the same token load it into their
``DATA_DIR/tls`` before ``pki.ensure_pki`` runs, which then issues their own serving
and admin certificates from the shared CA.  A server whose token does not open the
stored data refuses to start.

The stored value is JSON: ``{"v": 1, "kdf": "scrypt", "n", "r", "p", "salt",
"nonce", "data"}`` (binary fields base64), where ``data`` is AES-GCM over the JSON map
``{file name: PEM}`` with the bootstrap key as associated data.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from kybernetes.auth import pki

__all__ = [
    "BOOTSTRAP_PREFIX",
    "BootstrapError",
    "TOKEN_FILE",
    "bootstrap_key",
    "decrypt",
    "encrypt",
    "new_token",
    "read_local_token",
    "sealed_identity_exists",
    "shared_datastore",
    "sync_identity",
    "write_local_token",
]

log = logging.getLogger("kybernetes.auth.cluster_identity")

BOOTSTRAP_PREFIX = "/bootstrap/"
# scrypt cost: ~50 ms per derivation; a start-up cost paid once per server start.
_N, _R, _P = 2**14, 8, 1


class BootstrapError(Exception):
    """The stored bootstrap data cannot be used (wrong token, corrupt data)."""


def bootstrap_key(token: str) -> str:
    return BOOTSTRAP_PREFIX + hashlib.sha256(token.encode()).hexdigest()[:16]


def _derive(token: str, salt: bytes, n: int = _N, r: int = _R, p: int = _P) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(token.encode())


def encrypt(token: str, files: dict[str, bytes]) -> bytes:
    salt, nonce = os.urandom(16), os.urandom(12)
    plain = json.dumps({k: v.decode() for k, v in sorted(files.items())}).encode()
    data = AESGCM(_derive(token, salt)).encrypt(nonce, plain, bootstrap_key(token).encode())
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return json.dumps({"v": 1, "kdf": "scrypt", "n": _N, "r": _R, "p": _P,
                       "salt": b64(salt), "nonce": b64(nonce), "data": b64(data)}).encode()


def decrypt(token: str, blob: bytes) -> dict[str, bytes]:
    try:
        doc = json.loads(blob)
        if doc.get("v") != 1 or doc.get("kdf") != "scrypt":
            raise BootstrapError(f"unsupported bootstrap data format (v={doc.get('v')}, kdf={doc.get('kdf')})")
        salt, nonce, data = (base64.b64decode(doc[k]) for k in ("salt", "nonce", "data"))
        key = _derive(token, salt, int(doc["n"]), int(doc["r"]), int(doc["p"]))
    except (ValueError, KeyError, TypeError) as e:
        raise BootstrapError(f"corrupt bootstrap data: {e}") from None
    try:
        plain = AESGCM(key).decrypt(nonce, data, bootstrap_key(token).encode())
    except InvalidTag:
        raise BootstrapError("bootstrap data cannot be decrypted with this --token") from None
    return {k: v.encode() for k, v in json.loads(plain).items()}


def _shared_paths(paths: pki.PKIPaths) -> dict[str, Path]:
    """The files every server of a cluster shares (leaf certs are per server)."""
    return {"ca.crt": paths.ca_cert, "ca.key": paths.ca_key, "sa.key": paths.sa_key, "sa.pub": paths.sa_pub}


def _read_local(paths: pki.PKIPaths) -> dict[str, bytes]:
    return {name: p.read_bytes() for name, p in _shared_paths(paths).items()}


def _write_local(paths: pki.PKIPaths, files: dict[str, bytes]) -> bool:
    """Write the shared files that differ; True when anything changed."""
    paths.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    changed = False
    for name, p in _shared_paths(paths).items():
        if name not in files:
            raise BootstrapError(f"bootstrap data lacks {name}")
        try:
            same = p.read_bytes() == files[name]
        except FileNotFoundError:
            same = False
        if not same:
            pki.write_atomic(p, files[name], 0o644 if name.endswith((".crt", ".pub")) else 0o600)
            changed = True
    return changed


async def sync_identity(store, data_dir: Path, token: str, *, sans_dns: list[str], sans_ip: list[str]) -> str:
    """Make DATA_DIR/tls hold the cluster's shared identity, publishing it first if this
    is the first server.  `store` is a started Store.  Returns "loaded" or "stored".
    Raises BootstrapError (wrong token, or data sealed with another token)."""
    import asyncio

    from kybernetes.storage.interface import KeyExistsError

    if not token:
        raise BootstrapError("a shared datastore needs --token to share the cluster identity")
    paths = pki.PKIPaths.under(Path(data_dir))
    key = bootstrap_key(token)
    for _ in range(3):
        kv = await store.get(key)
        if kv is not None:
            files = await asyncio.to_thread(decrypt, token, kv.value)
            changed = await asyncio.to_thread(_write_local, paths, files)
            log.info("cluster identity loaded from the datastore (%s)%s", key,
                     "; local CA and service-account key replaced" if changed else "")
            return "loaded"
        others = [k.key for k in (await store.list(BOOTSTRAP_PREFIX)).items]
        if others:
            raise BootstrapError("the datastore already holds this cluster's bootstrap data, sealed with a "
                                 "different --token; start this server with the cluster's token")
        # First server: make (or reuse) the local CA and SA key, then publish them.
        await asyncio.to_thread(pki.ensure_pki, paths.dir.parent, sans_dns=sans_dns, sans_ip=sans_ip)
        blob = await asyncio.to_thread(lambda: encrypt(token, _read_local(paths)))
        try:
            created = await store.create(key, blob)
        except KeyExistsError:
            continue  # another server won the race: load theirs
        # Two first servers with different tokens may both have stored theirs: the older
        # identity is the cluster's; the later one withdraws and refuses to start.
        rivals = [kv for kv in (await store.list(BOOTSTRAP_PREFIX)).items
                  if kv.key != key and kv.create_revision < created.create_revision]
        if rivals:
            try:
                await store.delete(key, created.mod_revision)
            except Exception as e:  # noqa: BLE001 - refusing matters more than tidying up
                log.warning("could not withdraw %s: %s", key, e)
            raise BootstrapError("another server stored this cluster's bootstrap data at the same time, sealed "
                                 "with a different --token; start this server with the cluster's token")
        log.info("cluster identity stored in the datastore (%s)", key)
        return "stored"
    raise BootstrapError("could not store or load the bootstrap data")


TOKEN_FILE = "token"


def read_local_token(data_dir: Path) -> str:
    """The token this server generated or was given before (DATA_DIR/token), or ''."""
    try:
        return (Path(data_dir) / TOKEN_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


def write_local_token(data_dir: Path, token: str) -> Path:
    path = Path(data_dir) / TOKEN_FILE
    pki.write_atomic(path, (token + "\n").encode(), 0o600)
    return path


async def sealed_identity_exists(store) -> bool:
    """Whether any server has stored a sealed cluster identity in the datastore."""
    return bool((await store.list(BOOTSTRAP_PREFIX, limit=1)).items)


def new_token() -> str:
    import secrets

    return "K" + secrets.token_hex(32)


def shared_datastore(url: str) -> bool:
    """Whether a datastore URL names a store other servers may share."""
    return url.split("://", 1)[0].lower() in ("etcd", "etcds", "etcd+https", "etcd+http")

