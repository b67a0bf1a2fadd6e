"""Encryption at rest: `--encryption-provider-config` (apiserver.config.k8s.io/v1 EncryptionConfiguration).

The configuration lists, per set of resources, providers in order.  The first provider
encrypts every write; a read picks the provider (and the key) from the prefix of the
stored value, as upstream's value transformers do:

    identity    the plaintext itself (no prefix); refuses data starting with `k8s:enc:`
    aescbc      k8s:enc:aescbc:v1:<key>:  + 16-byte random IV + AES-CBC(PKCS#7 padded)
    aesgcm      k8s:enc:aesgcm:v1:<key>:  + 12-byte random nonce + AES-GCM(ciphertext+tag),
                with the storage key (`/registry/secrets/ns/name`) as additional data
    secretbox   k8s:enc:secretbox:v1:<key>: + 24-byte random nonce + XSalsa20-Poly1305

Resources not covered by the configuration are stored in plaintext and read through an
identity transformer that refuses encrypted data.  Resources are named as upstream:
`secrets`, `configmaps`, `deployments.apps`, `*.apps` (all of a group), `*.` (all of
the core group), `*.*` (everything).  Store keys map to group/resources as
`/registry/<resource>/...` (core) and `/registry/<group>/<resource>/...`.

`EncryptionTransformers.hook()` is the `(encode, decode)` pair that
`kybernetes.apiserver.objects.ObjectStore` takes; `rewrite_all` re-encrypts stored values
with the current write key (the last step of a key rotation).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, Union

log = logging.getLogger("kybernetes.encryption")

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"

ENCRYPTED_PREFIX = b"k8s:enc:"
AESCBC_PREFIX = "k8s:enc:aescbc:v1:"
AESGCM_PREFIX = "k8s:enc:aesgcm:v1:"
SECRETBOX_PREFIX = "k8s:enc:secretbox:v1:"

AES_KEY_SIZES = (16, 24, 32)
SECRETBOX_KEY_SIZES = (32,)

PROVIDER_NAMES = ("kms", "aesgcm", "aescbc", "secretbox", "identity")


class EncryptionConfigError(ValueError):
    """The configuration file cannot be loaded (upstream: `error while parsing file: ...`)."""


class TransformError(Exception):
    """A stored value cannot be transformed (decrypted) or a value cannot be encrypted."""


# --------------------------------------------------------------------------- providers


class Identity:
    """Plaintext.  Refuses to return data that carries the `k8s:enc:` prefix."""

    def to_storage(self, data: bytes, ad: bytes) -> bytes:
        return data

    def from_storage(self, data: bytes, ad: bytes) -> tuple[bytes, bool]:
        if data.startswith(ENCRYPTED_PREFIX):
            raise TransformError("identity transformer tried to read encrypted data")
        return data, False


class AESCBC:
    """AES-CBC with PKCS#7 padding and a random IV in front; no authentication (as upstream)."""

    BLOCK = 16

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers import algorithms

        self._alg = algorithms.AES(key)

    def _cipher(self, iv: bytes):
        from cryptography.hazmat.primitives.ciphers import Cipher, modes

        return Cipher(self._alg, modes.CBC(iv))

    def to_storage(self, data: bytes, ad: bytes) -> bytes:
        pad = self.BLOCK - len(data) % self.BLOCK
        iv = os.urandom(self.BLOCK)
        enc = self._cipher(iv).encryptor()
        return iv + enc.update(data + bytes([pad]) * pad) + enc.finalize()

    def from_storage(self, data: bytes, ad: bytes) -> tuple[bytes, bool]:
        if len(data) < self.BLOCK:
            raise TransformError("the stored data was shorter than the required size")
        iv, body = data[: self.BLOCK], data[self.BLOCK:]
        if len(body) % self.BLOCK != 0:
            raise TransformError("the stored data is not a multiple of the block size")
        if not body:
            # upstream would index past the end here; an empty body holds no padding
            raise TransformError("invalid PKCS7 data (empty or not padded)")
        dec = self._cipher(iv).decryptor()
        out = dec.update(body) + dec.finalize()
        pad = out[-1]
        if pad == 0 or pad > len(out):
            raise TransformError("invalid PKCS7 data (empty or not padded)")
        if out[-pad:] != bytes([pad]) * pad:
            raise TransformError("invalid padding on input")
        return out[:-pad], False


class AESGCM:
    """AES-GCM with a random 12-byte nonce in front; the storage key is the additional data."""

    NONCE = 12

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _GCM

        self._aead = _GCM(key)

    def to_storage(self, data: bytes, ad: bytes) -> bytes:
        nonce = os.urandom(self.NONCE)
        return nonce + self._aead.encrypt(nonce, data, ad)

    def from_storage(self, data: bytes, ad: bytes) -> tuple[bytes, bool]:
        from cryptography.exceptions import InvalidTag

        if len(data) < self.NONCE:
            raise TransformError("the stored data was shorter than the required size")
        try:
            return self._aead.decrypt(data[: self.NONCE], data[self.NONCE:], ad), False
        except InvalidTag:
            raise TransformError("cipher: message authentication failed") from None


class Secretbox:
    """NaCl secretbox (XSalsa20-Poly1305), random 24-byte nonce in front; no additional data."""

    NONCE = 24
    OVERHEAD = 16

    def __init__(self, key: bytes) -> None:
        import nacl.secret

        self._box = nacl.secret.SecretBox(key)

    def to_storage(self, data: bytes, ad: bytes) -> bytes:
        # nonce || poly1305 tag || ciphertext: the layout of Go's secretbox.Seal after the nonce
        return bytes(self._box.encrypt(data, os.urandom(self.NONCE)))

    def from_storage(self, data: bytes, ad: bytes) -> tuple[bytes, bool]:
        import nacl.exceptions

        if len(data) < self.OVERHEAD + self.NONCE:
            raise TransformError("the stored data was shorter than the required size")
        try:
            return self._box.decrypt(data[self.NONCE:], data[: self.NONCE]), False
        except nacl.exceptions.CryptoError:
            # upstream's message for a failed secretbox.Open
            raise TransformError("output array was not large enough for encryption") from None


class PrefixTransformers:
    """Upstream's prefix transformer list: write with the first; read with the one whose
    prefix the data carries.  An empty prefix (identity) that fails lets later ones try."""

    def __init__(self, no_match: str, items: Sequence[tuple[bytes, Any]]) -> None:
        if not items:
            raise ValueError("no transformers")
        self.no_match = no_match
        self.items = list(items)

    def to_storage(self, data: bytes, ad: bytes) -> bytes:
        prefix, t = self.items[0]
        return prefix + t.to_storage(data, ad)

    def from_storage(self, data: bytes, ad: bytes) -> tuple[bytes, bool]:
        errs: list[str] = []
        for i, (prefix, t) in enumerate(self.items):
            if data.startswith(prefix):
                try:
                    out, stale = t.from_storage(data[len(prefix):], ad)
                except TransformError as e:
                    if not prefix:
                        errs.append(str(e))
                        continue
                    raise
                return out, stale or i != 0
        if errs:
            raise TransformError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
        raise TransformError(self.no_match)


# --------------------------------------------------------------------------- configuration


@dataclass
class Key:
    name: str
    secret: bytes


@dataclass
class Provider:
    type: str  # identity | aescbc | aesgcm | secretbox | kms
    keys: list[Key] = field(default_factory=list)
    # kms (apiVersion v2) only
    name: str = ""
    endpoint: str = ""
    timeout: float = 3.0


@dataclass
class ResourceConfig:
    resources: list[str]
    providers: list[Provider]


@dataclass
class EncryptionConfig:
    resources: list[ResourceConfig]


def _field_required(path: str, detail: str) -> str:
    return f"{path}: Required value: {detail}"


def _field_invalid(path: str, value: Any, detail: str) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return f'{path}: Invalid value: "{shown}": {detail}' if isinstance(value, str) else f"{path}: Invalid value: {shown}: {detail}"


def _aggregate(errs: list[str]) -> str:
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


def _size_list(sizes: Iterable[int]) -> str:
    return "[" + " ".join(str(s) for s in sizes) + "]"


_NON_REST_RESOURCES = ("apiserveripinfo", "serviceipallocations", "servicenodeportallocations")


def _validate_resources(resources: list[Any], path: str) -> list[str]:
    errs: list[str] = []
    seen: set[str] = set()
    for j, res in enumerate(resources):
        p = f"{path}[{j}]"
        if not isinstance(res, str) or not res:
            errs.append(_field_invalid(p, res, "resource name must be a non-empty string"))
            continue
        if res.lower() != res:
            errs.append(_field_invalid(p, res, "resource name should not contain capital letters"))
        if res == "*":
            errs.append(_field_invalid(p, res, "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"))
        if res == "*.events.k8s.io":
            errs.append(_field_invalid(p, res, "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file"))
        if res == "extensions" or res.endswith(".extensions"):
            errs.append(_field_invalid(p, res, "'extensions' group has been removed and cannot be used for encryption"))
        if res in _NON_REST_RESOURCES:
            errs.append(_field_invalid(p, res, "resources which do not have REST API/s cannot be encrypted"))
        if res in seen:
            errs.append(_field_invalid(p, res, "the same resource cannot be specified multiple times"))
        seen.add(res)
    strs = [r for r in resources if isinstance(r, str)]
    if len(strs) > 1 and ("*.*" in strs or any(
            r.startswith("*.") and any(o != r and parse_group_resource(o)[0] == r[2:] for o in strs) for r in strs)):
        errs.append(_field_invalid(path, strs, "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"))
    return errs


def _validate_keys(keys: Any, path: str, sizes: Sequence[int]) -> tuple[list[str], list[Key]]:
    errs: list[str] = []
    out: list[Key] = []
    if not keys:
        return [_field_required(path, "at least one keys is required")], out
    if not isinstance(keys, list):
        return [_field_invalid(path, keys, "keys must be a list")], out
    for i, k in enumerate(keys):
        p = f"{path}[{i}]"
        if not isinstance(k, dict):
            errs.append(_field_invalid(p, k, "key must be an object with name and secret"))
            continue
        unknown = set(k) - {"name", "secret"}
        if unknown:
            errs.append(f'{p}: unknown field "{sorted(unknown)[0]}"')
        name = k.get("name") or ""
        secret = k.get("secret") or ""
        if not name:
            errs.append(_field_required(f"{p}.name", "name is a mandatory field for a key"))
        if not secret:
            errs.append(_field_required(f"{p}.secret", "secret is a mandatory field for a key"))
            continue
        try:
            raw = base64.b64decode(str(secret), validate=True)
        except (binascii.Error, ValueError):
            errs.append(_field_invalid(f"{p}.secret", "REDACTED", "secrets must be base64 encoded"))
            continue
        if len(raw) not in sizes:
            errs.append(_field_invalid(f"{p}.secret", "REDACTED",
                                       f"secret is not of the expected length, got {len(raw)}, expected one of {_size_list(sizes)}"))
            continue
        if name:
            out.append(Key(str(name), raw))
    return errs, out


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _go_duration(v: Any) -> float:
    """Seconds in a Go duration string ("3s", "1m30s", "500ms"); ValueError if malformed."""
    s = str(v).strip()
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f'time: invalid duration "{v}"')
    return sign * total


def _validate_kms(body: Any, path: str, names: set[str]) -> tuple[list[str], Optional[Provider]]:
    """Upstream's KMS provider rules; only apiVersion v2 is served (KMSv1 is off upstream too)."""
    if not isinstance(body, dict):
        return [_field_invalid(path, body, "kms must be an object")], None
    errs: list[str] = []
    unknown = set(body) - {"apiVersion", "name", "endpoint", "cachesize", "timeout"}
    if unknown:
        errs.append(f'{path}: unknown field "{sorted(unknown)[0]}"')
    version = body.get("apiVersion") or "v1"
    name = str(body.get("name") or "")
    endpoint = str(body.get("endpoint") or "")
    if not name:
        errs.append(_field_required(f"{path}.name", "name is a mandatory field for a provider"))
    if version != "v1" and ":" in name:
        errs.append(_field_invalid(f"{path}.name", name, f"invalid KMS provider name {name}, must not contain ':'"))
    if name and name in names:
        errs.append(_field_invalid(f"{path}.name", name, f"duplicate KMS provider name {name}, names must be unique"))
    names.add(name)
    try:
        timeout = _go_duration(body["timeout"]) if body.get("timeout") is not None else 3.0
    except ValueError as e:
        errs.append(_field_invalid(f"{path}.timeout", str(body.get("timeout")), str(e)))
        timeout = 3.0
    if timeout <= 0:
        errs.append(_field_invalid(f"{path}.timeout", str(body.get("timeout")), "timeout should be a positive value"))
    if not endpoint:
        errs.append(_field_invalid(f"{path}.endpoint", "", "endpoint is a mandatory field for a kms"))
    elif endpoint.split("://", 1)[0] != "unix" or "://" not in endpoint:
        scheme = endpoint.split("://", 1)[0] if "://" in endpoint else ""
        errs.append(_field_invalid(f"{path}.endpoint", endpoint,
                                   f'unsupported scheme "{scheme}" for KMS provider, only unix is supported'))
    if version != "v1" and body.get("cachesize") is not None:
        errs.append(_field_invalid(f"{path}.cachesize", body["cachesize"], "cachesize is not supported in v2"))
    if version not in ("v1", "v2"):
        errs.append(_field_invalid(f"{path}.apiVersion", version,
                                   "unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported"))
    elif version == "v1":
        errs.append(_field_invalid(f"{path}.apiVersion", version,
                                   "KMSv1 is deprecated and will only receive security updates going forward. "
                                   "Use KMSv2 instead. KMSv1 is not served by kybernetes"))
    if errs:
        return errs, None
    return [], Provider("kms", name=name, endpoint=endpoint, timeout=timeout)


def parse_encryption_config(data: Union[bytes, str], source: str = "") -> EncryptionConfig:
    """Decode and validate an EncryptionConfiguration (YAML or JSON).  Raises
    EncryptionConfigError with upstream's messages."""
    import yaml

    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if not data.strip():
        raise EncryptionConfigError(f"error while parsing file: error while loading file: encryption provider configuration file {source!r} is empty".replace("'", '"'))
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise EncryptionConfigError(f'error while parsing file: error decoding encryption provider configuration file "{source}": {e}') from None
    if not isinstance(doc, dict):
        raise EncryptionConfigError(f'error while parsing file: error decoding encryption provider configuration file "{source}": not an object')
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if not kind:
        raise EncryptionConfigError(f"error while parsing file: error decoding encryption provider configuration file \"{source}\": Object 'Kind' is missing")
    if api_version != API_VERSION or kind != KIND:
        raise EncryptionConfigError(
            f'error while parsing file: error decoding encryption provider configuration file "{source}": '
            f'no kind "{kind}" is registered for version "{api_version}"')
    unknown = set(doc) - {"kind", "apiVersion", "resources"}
    if unknown:
        raise EncryptionConfigError(
            f'error while parsing file: error decoding encryption provider configuration file "{source}": '
            f'strict decoding error: unknown field "{sorted(unknown)[0]}"')

    errs: list[str] = []
    resources = doc.get("resources") or []
    if not resources:
        raise EncryptionConfigError("error while parsing file: " + _field_required("resources", "at least one resources is required"))
    out: list[ResourceConfig] = []
    kms_names: set[str] = set()
    for i, conf in enumerate(resources):
        rpath, ppath = f"resources[{i}].resources", f"resources[{i}].providers"
        if not isinstance(conf, dict):
            errs.append(_field_invalid(f"resources[{i}]", conf, "must be an object with resources and providers"))
            continue
        names = conf.get("resources") or []
        provs = conf.get("providers") or []
        if not names:
            errs.append(_field_required(rpath, f"at least one {rpath} is required"))
        else:
            errs.extend(_validate_resources(names, rpath))
        if not provs:
            errs.append(_field_required(ppath, f"at least one {ppath} is required"))
        providers: list[Provider] = []
        for j, prov in enumerate(provs):
            p = f"{ppath}[{j}]"
            found = [k for k in PROVIDER_NAMES if isinstance(prov, dict) and prov.get(k) is not None]
            if not found:
                errs.append(_field_invalid(p, prov, "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity"))
                continue
            if len(found) > 1:
                errs.append(_field_invalid(p, prov, "more than one provider specified in a single element, should split into different list elements"))
                continue
            kind_ = found[0]
            body = prov[kind_]
            if kind_ == "kms":
                kerrs, kms = _validate_kms(body, f"{p}.kms", kms_names)
                errs.extend(kerrs)
                if kms is not None:
                    providers.append(kms)
                continue
            if kind_ == "identity":
                providers.append(Provider("identity"))
                continue
            sizes = SECRETBOX_KEY_SIZES if kind_ == "secretbox" else AES_KEY_SIZES
            kerrs, keys = _validate_keys(body.get("keys") if isinstance(body, dict) else None, f"{p}.{kind_}.keys", sizes)
            errs.extend(kerrs)
            providers.append(Provider(kind_, keys))
        out.append(ResourceConfig([str(n) for n in names], providers))
    if errs:
        raise EncryptionConfigError("error while parsing file: " + _aggregate(errs))
    return EncryptionConfig(out)


def load_encryption_config(path: Union[str, Path]) -> EncryptionConfig:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise EncryptionConfigError(
            f'error while parsing file: error while loading file: error reading encryption provider configuration file "{path}": {e.strerror}') from None
    if not data.strip():
        raise EncryptionConfigError(
            f'error while parsing file: error while loading file: encryption provider configuration file "{path}" is empty')
    return parse_encryption_config(data, str(path))


# --------------------------------------------------------------------------- transformers


def parse_group_resource(s: str) -> tuple[str, str]:
    """Upstream's schema.ParseGroupResource: `secrets` -> ("", "secrets"), `*.apps` ->
    ("apps", "*"), `*.` -> ("", "*"), `a.b.c` -> ("b.c", "a")."""
    if "." in s:
        res, group = s.split(".", 1)
        return group, res
    return "", s


def _provider_transformer(p: Provider) -> tuple[bytes, Any]:
    if p.type == "identity":
        return b"", Identity()
    if p.type == "kms":
        from . import kmsv2

        try:  # connects to the plugin and makes the first DEK seed
            return kmsv2.provider_prefix(p.name), kmsv2.new_transformer(p.name, p.endpoint, p.timeout)
        except (kmsv2.KMSError, ValueError) as e:
            raise EncryptionConfigError(f'error while building transformers: kms provider "{p.name}": {e}') from None
    ctor, prefix, what = {
        "aescbc": (AESCBC, AESCBC_PREFIX, "AES"),
        "aesgcm": (AESGCM, AESGCM_PREFIX, "AES"),
        "secretbox": (Secretbox, SECRETBOX_PREFIX, "Secretbox"),
    }[p.type]
    keyed = [(f"{k.name}:".encode(), ctor(k.secret)) for k in p.keys]
    return prefix.encode(), PrefixTransformers(f"no matching key was found for the provided {what} transformer", keyed)


def _yaml_gr(gr: tuple[str, str]) -> str:
    group, res = gr
    if group == "" and res == "*":
        return "*."
    return f"{res}.{group}" if group else res


class EncryptionTransformers:
    """Per group/resource transformer chains built from an EncryptionConfig."""

    def __init__(self, config: EncryptionConfig, core_resources: Optional[Iterable[str]] = None) -> None:
        chains: dict[tuple[str, str], list[tuple[bytes, Any]]] = {}
        for rc in config.resources:
            items = [_provider_transformer(p) for p in rc.providers]
            for name in rc.resources:
                gr = parse_group_resource(name)
                for mask in ((gr[0], "*"), ("*", "*")):
                    if mask in chains:
                        raise EncryptionConfigError(
                            f'error while building transformers: resource "{_yaml_gr(gr)}" is masked by earlier rule "{_yaml_gr(mask)}"')
                chains.setdefault(gr, []).extend(items)
        self._chains = {gr: PrefixTransformers("no matching prefix found", items) for gr, items in chains.items()}
        self._identity = PrefixTransformers("no matching prefix found", [(b"", Identity())])
        self._core = set(core_resources) if core_resources is not None else _core_resources()

    # --- resolution
    def group_resource(self, key: str) -> tuple[str, str]:
        """The (group, resource) a store key belongs to."""
        parts = key.split("/")
        # ['', 'registry', <resource or group>, <resource>, ...]
        if len(parts) < 3:
            return "", ""
        first = parts[2]
        if first in self._core or len(parts) < 4:
            return "", first
        return first, parts[3]

    def for_resource(self, gr: tuple[str, str]) -> PrefixTransformers:
        c = self._chains
        return c.get(gr) or c.get((gr[0], "*")) or c.get(("*", "*")) or self._identity

    def kms_providers(self) -> list[Any]:
        """The KMS v2 transformers in configuration order (each once)."""
        out: list[Any] = []
        for chain in self._chains.values():
            for _, t in chain.items:
                if hasattr(t, "client") and t not in out:
                    out.append(t)
        return out

    def covers(self, gr: tuple[str, str]) -> bool:
        c = self._chains
        return gr in c or (gr[0], "*") in c or ("*", "*") in c

    # --- transforms
    def encode(self, key: str, data: bytes) -> bytes:
        t = self.for_resource(self.group_resource(key))
        try:
            return t.to_storage(data, key.encode())
        except TransformError as e:
            raise _internal(f"unable to transform key {json.dumps(key)}: {e}") from None

    def decode_with_staleness(self, key: str, stored: bytes) -> tuple[bytes, bool]:
        t = self.for_resource(self.group_resource(key))
        out, stale = t.from_storage(stored, key.encode())
        if not stale:
            # written by a provider or key that is no longer first?
            first_prefix, first = t.items[0]
            if isinstance(first, PrefixTransformers):
                stale = not stored.startswith(first_prefix + first.items[0][0])
            elif first_prefix:  # kms: its own from_storage judged the key id
                stale = not stored.startswith(first_prefix)
            else:
                stale = stored.startswith(ENCRYPTED_PREFIX)
        return out, stale

    def decode(self, key: str, stored: bytes) -> bytes:
        t = self.for_resource(self.group_resource(key))
        try:
            return t.from_storage(stored, key.encode())[0]
        except TransformError as e:
            log.error("failed to decrypt data for key %s: %s", key, e)
            raise _internal(f"unable to transform key {json.dumps(key)}: {e}") from None

    def is_stale(self, key: str, stored: bytes) -> bool:
        """True when `stored` was not written with the current write provider and key."""
        try:
            return self.decode_with_staleness(key, stored)[1]
        except TransformError:
            return False

    def hook(self) -> tuple[Callable[[str, bytes], bytes], Callable[[str, bytes], bytes]]:
        """The Transformer pair for ObjectStore(store, transformer=...)."""
        return self.encode, self.decode


def _internal(message: str) -> Exception:
    try:
        from kybernetes.apiserver import errors

        return errors.internal(message)
    except Exception:  # pragma: no cover - the apiserver package is always there
        return TransformError(message)


def _core_resources() -> set[str]:
    from kybernetes.api.catalog import default_catalog

    cat = default_catalog()
    out: set[str] = set()
    for version in cat.groups.get("", ["v1"]):
        for s in cat.resources_in("", version):
            out.add(s.resource)
    return out


def transformer_from_file(path: Union[str, Path]):
    """The ObjectStore transformer hook for `--encryption-provider-config PATH` (None for '')."""
    if not path:
        return None
    return EncryptionTransformers(load_encryption_config(path)).hook()


# --------------------------------------------------------------------------- rewrite


async def rewrite_all(objects_or_store, prefixes: Sequence[str] = ("/registry/secrets/",),
                      transformers: Optional[EncryptionTransformers] = None, *,
                      only_stale: bool = True, page: int = 500) -> dict[str, int]:
    """Re-encrypt every stored value under `prefixes` with the current write provider/key.

    `objects_or_store` is an ObjectStore (its transformer is used when `transformers` is
    not given) or a plain Store (then `transformers` is required).  Each value is read,
    decrypted with whatever key it was written with and written back compare-and-swap on
    its mod revision (a concurrent write wins and is already current).  Values that
    cannot be decrypted are counted in `failed` and left alone.  Returns counts
    {"rewritten", "current", "failed", "conflicts"}."""
    from kybernetes.storage.interface import ConflictError, KeyNotFoundError

    store = getattr(objects_or_store, "store", objects_or_store)
    if transformers is None:
        hook = getattr(objects_or_store, "_transformer", None)
        owner = getattr(hook[0], "__self__", None) if hook else None
        if not hasattr(owner, "decode_with_staleness"):  # EncryptionTransformers or a reloading set
            raise ValueError("rewrite_all needs EncryptionTransformers (pass transformers=...)")
        transformers = owner
    counts = {"rewritten": 0, "current": 0, "failed": 0, "conflicts": 0}
    for prefix in prefixes:
        start_after: Optional[str] = None
        revision = 0
        while True:
            res = await store.list(prefix, revision=revision, limit=page, start_after=start_after)
            items = res.items if hasattr(res, "items") else res[0]
            revision = res.revision if hasattr(res, "revision") else res[1]
            more = res.more if hasattr(res, "more") else res[2]
            for kv in items:
                start_after = kv.key
                try:
                    plain, stale = transformers.decode_with_staleness(kv.key, kv.value)
                except TransformError as e:
                    log.error("rewrite: cannot decrypt %s: %s", kv.key, e)
                    counts["failed"] += 1
                    continue
                if only_stale and not stale:
                    counts["current"] += 1
                    continue
                try:
                    await store.update(kv.key, transformers.encode(kv.key, plain), kv.mod_revision)
                    counts["rewritten"] += 1
                except (ConflictError, KeyNotFoundError):
                    counts["conflicts"] += 1
            if not more or not items:
                break
    return counts
