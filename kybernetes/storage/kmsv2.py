"""The KMS v2 provider of encryption at rest: envelope encryption through a KMS plugin
listening on a unix socket (`kms: {apiVersion: v2, name, endpoint: unix:///..., timeout}`).

As upstream (with its KDF mode): the API server makes a random 32-byte DEK *seed*, has
the plugin encrypt it once (Encrypt), and for every write derives a fresh AES-256-GCM key
from the seed with HKDF-SHA256 over 32 random bytes (`info`).  The stored value is

    k8s:enc:kms:v2:<name>:  +  EncryptedObject{encryptedData = info + nonce + AES-GCM(data),
                                 keyID, encryptedDEKSource = plugin-encrypted seed,
                                 annotations, encryptedDEKSourceType = HKDF_SHA256_XNONCE_AES_GCM_SEED}

with the storage key as GCM additional data.  Reads look the plugin-encrypted seed up in
a cache and ask the plugin (Decrypt) only on a miss.  The plugin's Status is checked at
start (healthz "ok", version "v2", a key_id) and again at most once a minute after a
write; a new key_id makes a new seed, and values under another key_id read as stale (so
`kubectl replace` re-encrypts them, as with the local providers).

Transformers are synchronous, so a cache miss calls the plugin from the calling thread
with the configured timeout (by default 3 s).  That happens once per seed per process
(every object written in one seed period shares it); a missing or failing plugin makes
the read of that object fail with a clear error, other objects are unaffected.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
import time
import uuid
from typing import Any, Optional

import grpc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from . import kms_api as api

log = logging.getLogger("kybernetes.encryption")

PREFIX = "k8s:enc:kms:v2:"
INFO_SIZE = 32
NONCE_SIZE = 12
SEED_SIZE = 32
STATUS_INTERVAL = 60.0
MAX_KEY_ID = 1024
MAX_DEK_SOURCE = 1024
MAX_ANNOTATIONS = 32 * 1024
CACHE_SIZE = 1000
_FQDN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")


class KMSError(Exception):
    """The plugin failed or answered something unusable."""


class KMSClient:
    """Synchronous client of one plugin socket (thread-safe; calls carry `timeout`)."""

    def __init__(self, endpoint: str, timeout: float) -> None:
        if not endpoint.startswith("unix://"):
            raise ValueError(f'unsupported scheme "{endpoint.split("://")[0]}" for KMS provider, only unix is supported')
        self.endpoint = endpoint
        self.timeout = timeout
        self._channel = grpc.insecure_channel(endpoint)
        self._calls = {
            m: self._channel.unary_unary(api.method_path(m), request_serializer=req.SerializeToString,
                                         response_deserializer=resp.FromString)
            for m, (req, resp) in api.REQUEST_RESPONSE.items()}

    def _call(self, method: str, request: Any) -> Any:
        try:
            return self._calls[method](request, timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code().name if hasattr(e, "code") else "UNKNOWN"
            details = e.details() if hasattr(e, "details") else str(e)
            raise KMSError(f"rpc error: code = {code} desc = {details}") from None

    def status(self) -> Any:
        return self._call("Status", api.StatusRequest())

    def encrypt(self, plaintext: bytes) -> Any:
        return self._call("Encrypt", api.EncryptRequest(plaintext=plaintext, uid=str(uuid.uuid4())))

    def decrypt(self, ciphertext: bytes, key_id: str, annotations: dict[str, bytes]) -> bytes:
        req = api.DecryptRequest(ciphertext=ciphertext, uid=str(uuid.uuid4()), key_id=key_id)
        for k, v in annotations.items():
            req.annotations[k] = v
        return self._call("Decrypt", req).plaintext

    def close(self) -> None:
        self._channel.close()


def _check_status(resp: Any) -> str:
    if resp.healthz != "ok":
        raise KMSError(f"got unexpected healthz status: {resp.healthz}")
    if resp.version not in ("v2", "v2beta1"):
        raise KMSError(f"got unexpected version {resp.version}, expected v2")
    _check_key_id(resp.key_id)
    return resp.key_id


def _check_key_id(key_id: str) -> None:
    if not key_id:
        raise KMSError("keyID is empty")
    if len(key_id) > MAX_KEY_ID:
        raise KMSError(f"keyID is {len(key_id)} bytes, which exceeds the max size of {MAX_KEY_ID}")


def _check_annotations(annotations: dict[str, bytes]) -> None:
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS:
        raise KMSError(f"annotations exceeds size limit of {MAX_ANNOTATIONS} bytes")
    for k in annotations:
        if len(k) > 253 or not _FQDN.match(k):
            raise KMSError(f'annotation key "{k}" is not a fully qualified domain name')


def _derive(seed: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(seed)


class _State:
    """The current seed, its plugin-encrypted form, key_id and annotations."""

    def __init__(self, seed: bytes, encrypted: bytes, key_id: str, annotations: dict[str, bytes]) -> None:
        self.seed, self.encrypted, self.key_id, self.annotations = seed, encrypted, key_id, annotations


class KMSv2Transformer:
    """The `to_storage` / `from_storage` pair of one kms v2 provider (after its prefix)."""

    def __init__(self, name: str, client: KMSClient, *, status_interval: float = STATUS_INTERVAL) -> None:
        self.name = name
        self.client = client
        self.status_interval = status_interval
        self._seeds: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._refreshing = False
        self._checked_at = 0.0
        self.state = self._new_state(_check_status(client.status()))

    # ---- seeds
    def _new_state(self, key_id: str) -> _State:
        seed = os.urandom(SEED_SIZE)
        resp = self.client.encrypt(seed)
        _check_key_id(resp.key_id)
        annotations = dict(resp.annotations)
        _check_annotations(annotations)
        if not resp.ciphertext or len(resp.ciphertext) > MAX_DEK_SOURCE:
            raise KMSError(f"encryptedDEKSource is {len(resp.ciphertext)} bytes, expected 1 to {MAX_DEK_SOURCE}")
        self._remember(resp.ciphertext, seed)
        self._checked_at = time.monotonic()
        if resp.key_id != key_id:
            log.info("kms provider %s: Encrypt answered key_id %s while Status said %s", self.name, resp.key_id, key_id)
        return _State(seed, resp.ciphertext, resp.key_id, annotations)

    def _remember(self, encrypted: bytes, seed: bytes) -> None:
        with self._lock:
            self._seeds[encrypted] = seed
            self._seeds.move_to_end(encrypted)
            while len(self._seeds) > CACHE_SIZE:
                self._seeds.popitem(last=False)

    def refresh(self) -> bool:
        """Check the plugin's Status; a new key_id makes a new seed.  True when rotated."""
        key_id = _check_status(self.client.status())
        self._checked_at = time.monotonic()
        if key_id == self.state.key_id:
            return False
        self.state = self._new_state(key_id)
        log.info("kms provider %s: key_id changed to %s, new DEK seed in use", self.name, key_id)
        return True

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._checked_at < self.status_interval or self._refreshing:
            return
        self._refreshing = True

        def run() -> None:
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - keep writing with the current seed
                log.error("kms provider %s: status check failed: %s", self.name, e)
                self._checked_at = time.monotonic()
            finally:
                self._refreshing = False

        threading.Thread(target=run, name=f"kms-status-{self.name}", daemon=True).start()

    def check_health(self) -> None:
        """The plugin's Status must be healthy (raises KMSError); for /readyz."""
        _check_status(self.client.status())

    def close(self) -> None:
        self.client.close()

    # ---- transforms
    def to_storage(self, data: bytes, ad: bytes) -> bytes:
        from .encryption import TransformError

        st = self.state
        info, nonce = os.urandom(INFO_SIZE), os.urandom(NONCE_SIZE)
        try:
            sealed = AESGCM(_derive(st.seed, info)).encrypt(nonce, data, ad)
        except Exception as e:  # noqa: BLE001
            raise TransformError(f"failed to encrypt data: {e}") from None
        obj = api.EncryptedObject(encryptedData=info + nonce + sealed, keyID=st.key_id,
                                  encryptedDEKSource=st.encrypted,
                                  encryptedDEKSourceType=api.HKDF_SHA256_XNONCE_AES_GCM_SEED)
        for k, v in st.annotations.items():
            obj.annotations[k] = v
        self._maybe_refresh()
        return obj.SerializeToString()

    def from_storage(self, data: bytes, ad: bytes) -> tuple[bytes, bool]:
        from .encryption import TransformError

        try:
            obj = api.EncryptedObject.FromString(data)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise TransformError("failed to unmarshal encrypted object") from None
        if not obj.encryptedData:
            raise TransformError("encrypted data is empty")
        if obj.encryptedDEKSourceType != api.HKDF_SHA256_XNONCE_AES_GCM_SEED:
            raise TransformError(f"unsupported encryptedDEKSourceType {obj.encryptedDEKSourceType}")
        if not obj.encryptedDEKSource or len(obj.encryptedDEKSource) > MAX_DEK_SOURCE:
            raise TransformError("encryptedDEKSource is empty or too large")
        try:
            _check_key_id(obj.keyID)
        except KMSError as e:
            raise TransformError(str(e)) from None
        seed = self._seeds.get(obj.encryptedDEKSource)
        if seed is None:
            try:
                seed = self.client.decrypt(obj.encryptedDEKSource, obj.keyID, dict(obj.annotations))
            except KMSError as e:
                raise TransformError(f"failed to decrypt DEK, error: {e}") from None
            if len(seed) != SEED_SIZE:
                raise TransformError(f"KMS plugin returned a seed of {len(seed)} bytes, expected {SEED_SIZE}")
            self._remember(obj.encryptedDEKSource, seed)
        blob = obj.encryptedData
        if len(blob) < INFO_SIZE + NONCE_SIZE + 16:
            raise TransformError("the stored data was shorter than the required size")
        info, nonce, sealed = blob[:INFO_SIZE], blob[INFO_SIZE:INFO_SIZE + NONCE_SIZE], blob[INFO_SIZE + NONCE_SIZE:]
        try:
            plain = AESGCM(_derive(seed, info)).decrypt(nonce, sealed, ad)
        except InvalidTag:
            raise TransformError("cipher: message authentication failed") from None
        return plain, obj.keyID != self.state.key_id


def provider_prefix(name: str) -> bytes:
    return f"{PREFIX}{name}:".encode()


def new_transformer(name: str, endpoint: str, timeout: float,
                    status_interval: Optional[float] = None) -> KMSv2Transformer:
    """Connect to the plugin and make the first seed (raises KMSError when it is unusable)."""
    client = KMSClient(endpoint, timeout)
    try:
        return KMSv2Transformer(name, client, status_interval=status_interval or STATUS_INTERVAL)
    except Exception:
        client.close()
        raise
