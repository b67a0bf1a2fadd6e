"""Reading and writing kubeconfig files, and the TLS context a client builds from one.

Only the parts of the format a client of this project needs: the current (or a named)
context, its cluster's server and CA, and its user's client certificate or bearer token.
"""

from __future__ import annotations

import base64
import os
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import yaml

__all__ = [
    "KubeConfig",
    "KubeConfigError",
    "load_kubeconfig",
    "ssl_context",
    "write_admin_kubeconfig",
]

Bytes = Union[bytes, str]


class KubeConfigError(ValueError):
    """The kubeconfig is missing something the client needs, or is malformed."""


@dataclass
class KubeConfig:
    """What a client needs from a kubeconfig's selected context."""

    server: str
    ca_pem: Optional[bytes] = None
    cert_pem: Optional[bytes] = None
    key_pem: Optional[bytes] = None
    token: Optional[str] = None
    namespace: str = "default"
    insecure_skip_tls_verify: bool = False
    tls_server_name: Optional[str] = None


def _b(v: Bytes) -> bytes:
    return v.encode() if isinstance(v, str) else v


def _b64(v: Bytes) -> str:
    return base64.b64encode(_b(v)).decode("ascii")


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # Same scheme as kybernetes.auth.pki.write_atomic; kept local so the client package
    # does not depend on the server-side PKI module.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_admin_kubeconfig(
    path: Union[str, Path],
    server_url: str,
    ca_pem: Bytes,
    cert_pem: Bytes,
    key_pem: Bytes,
    *,
    cluster_name: str = "default",
    user: str = "default",
    namespace: Optional[str] = None,
) -> Path:
    """Write a self-contained kubeconfig (credentials embedded as base64 data) with its
    context selected; mode 0600 because it carries a private key.  Returns the path."""
    path = Path(path).expanduser()
    context_name = cluster_name if user == cluster_name else f"{user}@{cluster_name}"
    context: dict[str, Any] = {"cluster": cluster_name, "user": user}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server_url, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "contexts": [{"name": context_name, "context": context}],
        "current-context": context_name,
        "preferences": {},
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(cert_pem),
                    "client-key-data": _b64(key_pem),
                },
            }
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, yaml.safe_dump(doc, sort_keys=False).encode(), 0o600)
    return path


def _named(items: Any, name: str, what: str, key: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(key) or {}
    raise KubeConfigError(f'{what} "{name}" not found in kubeconfig')


def _data_or_file(section: dict[str, Any], field: str, base: Path) -> Optional[bytes]:
    """`<field>-data` (base64) wins over `<field>` (a path, relative to the kubeconfig's
    directory as client-go resolves it)."""
    data = section.get(f"{field}-data")
    if data:
        try:
            return base64.b64decode(data, validate=False)
        except ValueError as e:
            raise KubeConfigError(f"{field}-data is not valid base64: {e}") from None
    ref = section.get(field)
    if ref:
        p = Path(os.path.expanduser(ref))
        if not p.is_absolute():
            p = base / p
        return p.read_bytes()
    return None


def load_kubeconfig(path: Union[str, Path], *, context: Optional[str] = None) -> KubeConfig:
    """Read a kubeconfig and resolve its current (or the named) context."""
    path = Path(path).expanduser()
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise KubeConfigError(f"{path}: not a kubeconfig")
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise KubeConfigError(f"{path}: no current-context set")
    ctx = _named(doc.get("contexts"), ctx_name, "context", "context")
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster", "cluster")
    user: dict[str, Any] = {}
    if ctx.get("user"):
        user = _named(doc.get("users"), ctx["user"], "user", "user")
    server = cluster.get("server")
    if not server:
        raise KubeConfigError(f"{path}: cluster {ctx.get('cluster')!r} has no server")
    base = path.parent
    token = user.get("token")
    if not token and user.get("tokenFile"):
        tf = Path(os.path.expanduser(user["tokenFile"]))
        token = (tf if tf.is_absolute() else base / tf).read_text().strip()
    return KubeConfig(
        server=server,
        ca_pem=_data_or_file(cluster, "certificate-authority", base),
        cert_pem=_data_or_file(user, "client-certificate", base),
        key_pem=_data_or_file(user, "client-key", base),
        token=token or None,
        namespace=ctx.get("namespace") or "default",
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
    )


def ssl_context(cfg: KubeConfig) -> ssl.SSLContext:
    """A client TLS context for `cfg`: trusts exactly the kubeconfig's CA (not the
    system store or SSL_CERT_* variables) and presents its client certificate.

    With no CA in the kubeconfig the system roots are used, as client-go does.
    (`tls_server_name`, if set, must be passed as server_hostname by the caller.)"""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.insecure_skip_tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cfg.ca_pem:
        ctx.load_verify_locations(cadata=cfg.ca_pem.decode("ascii"))
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if cfg.cert_pem or cfg.key_pem:
        if not (cfg.cert_pem and cfg.key_pem):
            raise KubeConfigError("client certificate and key must be given together")
        _load_cert_chain_from_memory(ctx, cfg.cert_pem, cfg.key_pem)
    return ctx


def _load_cert_chain_from_memory(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # The ssl module only loads client certs from files.  An anonymous memfd keeps the
    # private key off any filesystem; elsewhere fall back to a private temp directory.
    data = cert_pem.rstrip(b"\n") + b"\n" + key_pem
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("kyb-client-cert", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            proc_path = f"/proc/self/fd/{fd}"
            if os.path.exists(proc_path):  # /proc may not be mounted
                ctx.load_cert_chain(proc_path)
                return
        finally:
            os.close(fd)
    with tempfile.TemporaryDirectory(prefix="kyb-tls-") as d:  # created 0700
        p = Path(d) / "client.pem"
        fd2 = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd2, "wb") as f:
            f.write(data)
        ctx.load_cert_chain(str(p))
