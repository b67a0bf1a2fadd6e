"""Kubelet TLS bootstrap and client certificate rotation (upstream pkg/kubelet/certificate
and client-go's util/certificate manager).

Bootstrap: with no usable certificate, the kubelet authenticates with a bootstrap token
(or bootstrap kubeconfig), creates a CertificateSigningRequest for `system:node:<name>`
in `system:nodes` with signer `kubernetes.io/kube-apiserver-client-kubelet`, waits until it
is approved and issued, and stores key and certificate in `<pki>/kubelet-client-<ts>.pem`
with `kubelet-client-current.pem` pointing at it.

Rotation: at a jittered 70-84% of the certificate's lifetime (upstream's deadline) the
manager asks for a new certificate with its current identity (the approver recognises a
node renewing itself, `selfnodeclient`), stores it, and swaps the client's TLS transport so
that every new connection uses it; open connections are closed so watches reconnect with
the new certificate, as the Go kubelet does.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import hashlib
import logging
import os
import random
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kybernetes.client.errors import AlreadyExists
from kybernetes.client.kubeconfig import KubeConfig, ssl_context
from kybernetes.client.rest import Client
from kybernetes.client.transport import AiohttpTransport

log = logging.getLogger("kybernetes.kubelet.certificate")

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
NODES_GROUP = "system:nodes"
# ECDSA keys: no key encipherment (upstream adds it only for RSA keys)
CLIENT_USAGES = ["digital signature", "client auth"]
SERVING_USAGES = ["digital signature", "server auth"]
CURRENT = "current"


class BootstrapError(Exception):
    """The certificate request was denied, failed, or not answered in time."""


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def make_csr(key: ec.EllipticCurvePrivateKey, node_name: str, *, dns: tuple[str, ...] = (),
             ips: tuple[str, ...] = ()) -> bytes:
    """A PEM certificate request for `system:node:<name>` in `system:nodes` (with SANs for
    a serving certificate)."""
    import ipaddress

    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODES_GROUP),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    alt: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def rotation_deadline(cert: x509.Certificate, rand: Callable[[], float] = random.random) -> _dt.datetime:
    """When to ask for a new certificate: 70% of its lifetime plus up to 20% of that
    (upstream's jittered deadline, 70-84% of the way)."""
    total = cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_before_utc + total * 0.7 * (1 + 0.2 * rand())


@dataclass
class Credentials:
    """A key pair and its certificate, as PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def valid(self, at: Optional[_dt.datetime] = None) -> bool:
        at = at or _now()
        c = self.cert
        return c.not_valid_before_utc <= at < c.not_valid_after_utc


class CertificateStore:
    """`<dir>/<prefix>-<ts>.pem` (certificate then key) and `<prefix>-current.pem`, a
    symlink to the newest — upstream's kubelet-client-current.pem layout."""

    def __init__(self, directory: Path, prefix: str = "kubelet-client") -> None:
        self.dir = Path(directory)
        self.prefix = prefix

    @property
    def current_path(self) -> Path:
        return self.dir / f"{self.prefix}-{CURRENT}.pem"

    def load(self) -> Optional[Credentials]:
        try:
            data = self.current_path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            cert = x509.load_pem_x509_certificate(data)
            key = serialization.load_pem_private_key(data, password=None)
        except ValueError:
            log.warning("%s is not a certificate and key; ignoring it", self.current_path)
            return None
        return Credentials(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))  # type: ignore[arg-type]

    def save(self, creds: Credentials) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = _now().strftime("%Y-%m-%d-%H-%M-%S") + f"-{secrets.token_hex(2)}"
        path = self.dir / f"{self.prefix}-{stamp}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(creds.cert_pem.rstrip(b"\n") + b"\n" + creds.key_pem)
            f.flush()
            os.fsync(f.fileno())
        # swap the symlink atomically: a reader sees the old or the new pair, never none
        tmp = self.dir / f".{self.prefix}-{CURRENT}.{secrets.token_hex(4)}"
        os.symlink(path.name, tmp)
        os.replace(tmp, self.current_path)
        return path


def _client_context(base: KubeConfig, creds: Optional[Credentials]) -> ssl.SSLContext:
    cfg = KubeConfig(server=base.server, ca_pem=base.ca_pem, insecure_skip_tls_verify=base.insecure_skip_tls_verify,
                     tls_server_name=base.tls_server_name,
                     cert_pem=creds.cert_pem if creds else None, key_pem=creds.key_pem if creds else None)
    return ssl_context(cfg)


async def request_certificate(client: Client, csr_pem: bytes, *, signer: str, usages: list[str],
                              name: Optional[str] = None, expiration_seconds: Optional[int] = None,
                              timeout: float = 3600.0) -> bytes:
    """Create a CertificateSigningRequest and wait for its certificate (PEM).  Raises
    BootstrapError when it is denied or fails, or nothing is issued within `timeout`."""
    api = client.resource("certificates.k8s.io", "v1", "certificatesigningrequests", namespaced=False)
    meta: dict[str, Any] = {"name": name} if name else {"generateName": "csr-"}
    spec: dict[str, Any] = {"request": base64.b64encode(csr_pem).decode(), "signerName": signer, "usages": usages}
    if expiration_seconds:
        spec["expirationSeconds"] = expiration_seconds
    obj = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": meta, "spec": spec}
    try:
        csr = await api.create(obj)
    except AlreadyExists:
        # the same key asked before (a restart during bootstrap): wait for that request,
        # as upstream does, provided it asks for the same thing
        csr = await api.get(name or "")
        if (csr.get("spec") or {}).get("request") != spec["request"]:
            raise BootstrapError(f"certificate signing request {name} exists with a different request") from None
    csr_name = csr["metadata"]["name"]
    try:
        return await asyncio.wait_for(_wait_issued(api, csr), timeout)
    except asyncio.TimeoutError:
        raise BootstrapError(f"timed out waiting for certificate signing request {csr_name} "
                             "to be approved and issued") from None


def _outcome(csr: dict) -> Optional[bytes]:
    status = csr.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("type") == "Denied":
            raise BootstrapError(f"certificate signing request {csr['metadata']['name']} is denied, "
                                 f"reason: {c.get('reason', '')}, message: {c.get('message', '')}")
        if c.get("type") == "Failed":
            raise BootstrapError(f"certificate signing request {csr['metadata']['name']} failed, "
                                 f"reason: {c.get('reason', '')}, message: {c.get('message', '')}")
    if status.get("certificate"):
        return base64.b64decode(status["certificate"])
    return None


async def _wait_issued(api: Any, csr: dict) -> bytes:
    name = csr["metadata"]["name"]
    while True:
        got = _outcome(csr)
        if got is not None:
            return got
        rv = csr["metadata"].get("resourceVersion")
        async with api.watch(resource_version=rv, name=name, timeout_seconds=300) as stream:
            async for typ, obj in stream:
                if typ == "DELETED":
                    raise BootstrapError(f"certificate signing request {name} was deleted")
                if typ in ("ADDED", "MODIFIED"):
                    csr = obj
                    got = _outcome(csr)
                    if got is not None:
                        return got
        csr = await api.get(name)  # the watch timed out: read it again and keep waiting


def _bootstrap_csr_name(key: ec.EllipticCurvePrivateKey, node_name: str) -> str:
    # derived from the key and subject, so a kubelet restarted mid-bootstrap with the same
    # key finds its earlier request instead of filing another
    pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(pub + f"system:node:{node_name}".encode()).digest()
    return "node-csr-" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


class ClientCertificateManager:
    """The kubelet's client certificate: obtained by TLS bootstrap when missing or expired,
    then rotated before it expires.  `client` is the API client that uses it."""

    def __init__(self, base: KubeConfig, node_name: str, pki_dir: Path, *,
                 bootstrap_token: Optional[str] = None, bootstrap: Optional[KubeConfig] = None,
                 expiration_seconds: Optional[int] = None, timeout: float = 3600.0) -> None:
        self.base = base
        self.node_name = node_name
        self.store = CertificateStore(pki_dir, "kubelet-client")
        self.bootstrap_token = bootstrap_token
        self.bootstrap_cfg = bootstrap
        self.expiration_seconds = expiration_seconds
        self.timeout = timeout
        self.creds: Optional[Credentials] = None
        self.client: Optional[Client] = None
        self._task: Optional[asyncio.Task[None]] = None
        self.rotations = 0
        self.rotated = asyncio.Event()

    async def _bootstrap_client(self) -> Client:
        if self.bootstrap_cfg is not None:
            cfg = self.bootstrap_cfg
            return Client(cfg.server, ssl_context(cfg), cfg.token, tls_server_name=cfg.tls_server_name)
        if not self.bootstrap_token:
            raise BootstrapError("no valid client certificate and no bootstrap token or bootstrap kubeconfig")
        return Client(self.base.server, _client_context(self.base, None), self.bootstrap_token,
                      tls_server_name=self.base.tls_server_name)

    async def _issue(self, client: Client, *, name_from_key: bool) -> Credentials:
        key = await asyncio.to_thread(_new_key)
        csr_pem = await asyncio.to_thread(make_csr, key, self.node_name)
        name = _bootstrap_csr_name(key, self.node_name) if name_from_key else None
        cert = await request_certificate(client, csr_pem, signer=CLIENT_SIGNER, usages=CLIENT_USAGES, name=name,
                                         expiration_seconds=self.expiration_seconds, timeout=self.timeout)
        creds = Credentials(cert, _key_pem(key))
        await asyncio.to_thread(self.store.save, creds)
        return creds

    async def start(self) -> Client:
        """A client authenticated as `system:node:<name>`: the stored certificate if it is
        still valid, else one from TLS bootstrap.  Rotation then runs in the background."""
        creds = await asyncio.to_thread(self.store.load)
        if creds is None or not creds.valid():
            log.info("no valid client certificate for node %s: requesting one (TLS bootstrap)", self.node_name)
            boot = await self._bootstrap_client()
            try:
                creds = await self._issue(boot, name_from_key=True)
            finally:
                await boot.close()
            log.info("node %s: client certificate issued, valid until %s", self.node_name,
                     creds.cert.not_valid_after_utc.isoformat())
        self.creds = creds
        self.client = Client(self.base.server, _client_context(self.base, creds),
                             tls_server_name=self.base.tls_server_name, user_agent="kubelet/kybernetes")
        self._task = asyncio.get_running_loop().create_task(self._rotate_loop(), name=f"cert rotation {self.node_name}")
        return self.client

    async def rotate(self) -> None:
        """Ask for a new certificate as the node itself and switch the client to it."""
        assert self.client is not None
        creds = await self._issue(self.client, name_from_key=False)
        self.creds = creds
        old = self.client.transport
        server_hostname = getattr(old, "server_hostname", None)
        self.client.transport = AiohttpTransport(self.client.server, _client_context(self.base, creds),
                                                 server_hostname=server_hostname)
        # open connections (watches) still use the old certificate: close them so they
        # reconnect with the new one
        await old.close()
        self.rotations += 1
        self.rotated.set()
        log.info("node %s: client certificate rotated, valid until %s", self.node_name,
                 creds.cert.not_valid_after_utc.isoformat())

    async def _rotate_loop(self) -> None:
        backoff = 1.0
        while True:
            assert self.creds is not None
            wait = (rotation_deadline(self.creds.cert) - _now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.rotate()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep the current certificate, try again
                log.warning("node %s: rotating the client certificate failed: %s", self.node_name, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 128.0)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


async def request_serving_certificate(client: Client, node_name: str, pki_dir: Path, *, dns: tuple[str, ...],
                                      ips: tuple[str, ...], timeout: float = 3600.0) -> Path:
    """A kubelet serving certificate (`kubernetes.io/kubelet-serving`) for the node's names
    and addresses, stored as `<pki>/kubelet-server-current.pem`.  Nothing approves these
    automatically (as upstream): an administrator or an approver must."""
    key = await asyncio.to_thread(_new_key)
    csr_pem = await asyncio.to_thread(make_csr, key, node_name, dns=dns, ips=ips)
    cert = await request_certificate(client, csr_pem, signer=SERVING_SIGNER, usages=SERVING_USAGES, timeout=timeout)
    store = CertificateStore(pki_dir, "kubelet-server")
    await asyncio.to_thread(store.save, Credentials(cert, _key_pem(key)))
    return store.current_path


class ServingCertificateManager:
    """The kubelet's serving certificate from kubelet-serving CSRs (`--rotate-server-certificates`):
    requested when missing or expired, and again at the rotation deadline (70-84% of its
    lifetime); `on_rotated` (e.g. the HTTPS server's reload) runs after each new one."""

    def __init__(self, client: Client, node_name: str, pki_dir: Path, *, dns: tuple[str, ...],
                 ips: tuple[str, ...], on_rotated: Optional[Callable[[], Any]] = None,
                 retry: float = 30.0, timeout: float = 3600.0) -> None:
        self.client, self.node_name, self.pki_dir = client, node_name, Path(pki_dir)
        self.dns, self.ips = dns, ips
        self.on_rotated = on_rotated
        self.retry, self.timeout = retry, timeout
        self.store = CertificateStore(pki_dir, "kubelet-server")
        self.rotations = 0
        self._task: Optional[asyncio.Task[None]] = None

    def due(self, creds: Optional[Credentials], now: Optional[_dt.datetime] = None) -> Optional[float]:
        """Seconds until the next request is due (0: now)."""
        now = now or _now()
        if creds is None or not creds.valid(now):
            return 0.0
        return max(0.0, (rotation_deadline(creds.cert) - now).total_seconds())

    async def rotate(self) -> Path:
        """Request a new serving certificate now, store it and tell `on_rotated`."""
        path = await request_serving_certificate(self.client, self.node_name, self.pki_dir, dns=self.dns,
                                                 ips=self.ips, timeout=self.timeout)
        self.rotations += 1
        log.info("node %s: serving certificate stored at %s", self.node_name, path)
        if self.on_rotated is not None:
            res = self.on_rotated()
            if asyncio.iscoroutine(res):
                await res
        return path

    async def _loop(self) -> None:
        while True:
            wait = self.due(await asyncio.to_thread(self.store.load))
            if wait:
                await asyncio.sleep(wait)
                continue
            try:
                await self.rotate()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the server keeps its current certificate
                log.warning("node %s: serving certificate not obtained: %s", self.node_name, e)
                await asyncio.sleep(self.retry)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"serving cert {self.node_name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
