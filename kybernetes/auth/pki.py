"""The cluster PKI: a CA, the API server's serving cert, the admin client cert and
the service-account signing key, kept under ``DATA_DIR/tls/``.

Everything here is synchronous and CPU-light (ECDSA P-256 for all X.509 keys); callers
on the event loop run it in a thread.  Files are written atomically (temp file + rename)
so a crash never leaves a half-written key behind, and private keys are mode 0600.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import ipaddress
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA",
    "PKIPaths",
    "ensure_pki",
    "load_ca",
    "issue_client_cert",
    "issue_serving_cert",
    "sign_csr",
    "ensure_client_cert",
    "CONTROLLER_MANAGER_USER",
    "SCHEDULER_USER",
    "NODES_GROUP",
    "node_user",
    "write_atomic",
    "DEFAULT_SERVING_DNS",
    "DEFAULT_SERVING_IPS",
    "ADMIN_CN",
    "ADMIN_ORG",
]

# Names every in-cluster client may use to reach the API server; kubeadm and k3s put
# the same set into the serving cert.
DEFAULT_SERVING_DNS = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]
DEFAULT_SERVING_IPS = ["127.0.0.1"]

ADMIN_CN = "kyb-admin"
ADMIN_ORG = "system:masters"
SERVING_CN = "kube-apiserver"
# The identities of the control-plane components (upstream's bootstrap policy binds its
# system:kube-controller-manager and system:kube-scheduler roles to these users).
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"
NODES_GROUP = "system:nodes"


def node_user(node_name: str) -> str:
    """The user a kubelet runs as, which the Node authorizer and NodeRestriction govern."""
    return f"system:node:{node_name}"

CA_VALIDITY = _dt.timedelta(days=3650)
LEAF_VALIDITY = _dt.timedelta(days=365)
# A leaf this close to expiry is reissued at startup rather than left to lapse.
RENEW_BEFORE = _dt.timedelta(days=30)
# Certificates start slightly in the past so that nodes whose clocks lag a little
# still accept them (upstream's CSR signer backdates by the same amount).
BACKDATE = _dt.timedelta(minutes=5)

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]
IPAddr = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


@dataclass(frozen=True)
class PKIPaths:
    """Where each piece of the cluster PKI lives."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path

    @classmethod
    def under(cls, data_dir: Path) -> "PKIPaths":
        d = Path(data_dir) / "tls"
        return cls(
            dir=d,
            ca_cert=d / "ca.crt",
            ca_key=d / "ca.key",
            serving_cert=d / "apiserver.crt",
            serving_key=d / "apiserver.key",
            admin_cert=d / "admin.crt",
            admin_key=d / "admin.key",
            sa_key=d / "sa.key",
            sa_pub=d / "sa.pub",
        )


@dataclass(frozen=True)
class CA:
    """A signing CA: its certificate and private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------------------
# small helpers


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` via a temp file in the same directory and a rename,
    so readers see either the old or the new content, never a torn file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL + explicit mode: the key is never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed the mode given to open()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: PrivateKey) -> bytes:
    # SEC1 ("EC PRIVATE KEY") / PKCS#1 ("RSA PRIVATE KEY"): what kubeadm and client-go
    # write, and what every TLS stack reads.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, orgs: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _serial() -> int:
    # 127 random bits: positive and within the 20-octet limit of RFC 5280.
    return secrets.randbits(127) | 1


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    data_encipherment: bool = False,
    key_agreement: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
    encipher_only: bool = False,
    decipher_only: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=data_encipherment,
        key_agreement=key_agreement,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=encipher_only,
        decipher_only=decipher_only,
    )


def _leaf_builder(
    ca: CA,
    subject: x509.Name,
    public_key,
    not_before: _dt.datetime,
    not_after: _dt.datetime,
) -> x509.CertificateBuilder:
    # A leaf must not outlive its CA; clients would reject the chain at that point anyway.
    not_after = min(not_after, ca.cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )


def _sans(dns: Iterable[str], ips: Iterable[str]) -> tuple[list[str], list[IPAddr]]:
    """Defaults plus the requested names, deduplicated, order kept."""
    out_dns: list[str] = []
    for name in [*DEFAULT_SERVING_DNS, *dns]:
        name = name.strip().lower()
        if name and name not in out_dns:
            out_dns.append(name)
    out_ips: list[IPAddr] = []
    for raw in [*DEFAULT_SERVING_IPS, *ips]:
        ip = ipaddress.ip_address(raw.strip())  # ValueError on garbage: the caller's bug
        if ip not in out_ips:
            out_ips.append(ip)
    return out_dns, out_ips


def _load_pem_cert(path: Path) -> Optional[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def _load_pem_key(path: Path) -> Optional[PrivateKey]:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        return key
    return None


def _same_public_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _issued_by(cert: x509.Certificate, ca: CA) -> bool:
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _fresh(cert: x509.Certificate, margin: _dt.timedelta = RENEW_BEFORE) -> bool:
    return cert.not_valid_after_utc - margin > _now()


# ---------------------------------------------------------------------------
# issuing


def _new_ca() -> CA:
    key = _new_ec_key()
    now = _now()
    subject = _name(f"kybernetes-ca@{int(time.time())}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CA(cert=cert, key=key)


def issue_serving_cert(
    ca: CA,
    cn: str,
    dns: Iterable[str],
    ips: Iterable[Union[str, IPAddr]],
    days: int = 365,
) -> tuple[bytes, bytes]:
    """A TLS server certificate (EKU serverAuth) for `dns`/`ips`: (cert_pem, key_pem)."""
    key = _new_ec_key()
    now = _now()
    alt: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        _leaf_builder(ca, _name(cn), key.public_key(), now - BACKDATE, now + _dt.timedelta(days=days))
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def issue_client_cert(ca: CA, cn: str, orgs: Iterable[str], days: int) -> tuple[bytes, bytes]:
    """A client certificate (EKU clientAuth) for user `cn` in groups `orgs`:
    (cert_pem, key_pem).  The API server maps CN to the user name and O to groups."""
    key = _new_ec_key()
    now = _now()
    cert = (
        _leaf_builder(ca, _name(cn, orgs), key.public_key(), now - BACKDATE, now + _dt.timedelta(days=days))
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


# certificates.k8s.io/v1 usage strings -> X.509 (same table as upstream's CSR signer).
_KEY_USAGES = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
_EXT_KEY_USAGES = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}


def sign_csr(
    ca: CA,
    csr_pem: Union[bytes, str],
    usages: Iterable[str],
    duration: Union[_dt.timedelta, int, float],
) -> bytes:
    """Sign a PEM CSR as the cluster signer does: subject and SANs from the CSR, key
    usages from certificates.k8s.io usage strings, valid for `duration` (a timedelta or
    seconds) but never beyond the CA.  Raises ValueError for a bad CSR or usage."""
    if isinstance(csr_pem, str):
        csr_pem = csr_pem.encode()
    csr = x509.load_pem_x509_csr(csr_pem)
    if not csr.is_signature_valid:
        raise ValueError("CSR signature is not valid")
    if not isinstance(duration, _dt.timedelta):
        duration = _dt.timedelta(seconds=duration)
    if duration <= _dt.timedelta(0):
        raise ValueError("duration must be positive")

    ku: dict[str, bool] = {}
    eku: list[x509.ObjectIdentifier] = []
    for u in usages:
        if u in _KEY_USAGES:
            ku[_KEY_USAGES[u]] = True
        elif u in _EXT_KEY_USAGES:
            if _EXT_KEY_USAGES[u] not in eku:
                eku.append(_EXT_KEY_USAGES[u])
        else:
            raise ValueError(f"unsupported key usage: {u}")

    now = _now()
    if now < ca.cert.not_valid_before_utc:
        raise ValueError(f"the signer is not valid until {ca.cert.not_valid_before_utc}")
    # A very short certificate is backdated less so that it is not already expired.
    backdate = min(BACKDATE, duration / 2)
    builder = _leaf_builder(ca, csr.subject, csr.public_key(), now - backdate, now + duration)
    if ku:
        if (ku.get("encipher_only") or ku.get("decipher_only")) and not ku.get("key_agreement"):
            raise ValueError("'encipher only' and 'decipher only' require 'key agreement'")
        builder = builder.add_extension(_key_usage(**ku), critical=True)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        san = None
    if san is not None and len(san.value) > 0:
        builder = builder.add_extension(san.value, critical=False)
    return _cert_pem(builder.sign(ca.key, hashes.SHA256()))


# ---------------------------------------------------------------------------
# the cluster PKI on disk


def load_ca(data_dir: Path) -> CA:
    """The cluster CA from `DATA_DIR/tls/`; FileNotFoundError/ValueError if absent or broken."""
    paths = PKIPaths.under(data_dir)
    cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{paths.ca_key}: CA key must be an EC private key")
    if not _same_public_key(cert, key):
        raise ValueError(f"{paths.ca_key} does not match {paths.ca_cert}")
    return CA(cert=cert, key=key)


def _load_ca_or_none(paths: PKIPaths) -> Optional[CA]:
    cert = _load_pem_cert(paths.ca_cert)
    key = _load_pem_key(paths.ca_key)
    if cert is None or not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if not _same_public_key(cert, key):
        return None
    return CA(cert=cert, key=key)


def _leaf_ok(cert_path: Path, key_path: Path, ca: CA) -> Optional[x509.Certificate]:
    """The stored leaf cert if it is usable as is: present, matching its key, issued by
    this CA and not about to expire; else None."""
    cert = _load_pem_cert(cert_path)
    key = _load_pem_key(key_path)
    if cert is None or key is None:
        return None
    if not _same_public_key(cert, key) or not _issued_by(cert, ca) or not _fresh(cert):
        return None
    return cert


def _covers(cert: x509.Certificate, dns: list[str], ips: list[IPAddr]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_dns = {d.lower() for d in san.get_values_for_type(x509.DNSName)}
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    return set(dns) <= have_dns and set(ips) <= have_ips


def ensure_pki(data_dir: Path, *, sans_dns: list[str], sans_ip: list[str]) -> PKIPaths:
    """Create whatever is missing of the cluster PKI under `DATA_DIR/tls/` and return
    its paths.  Existing material is reused; the serving cert is reissued only when its
    SANs miss a requested name, it expires within 30 days or it no longer matches the CA.
    A missing or broken CA means a new CA and therefore new leaf certs."""
    paths = PKIPaths.under(Path(data_dir))
    paths.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Two processes sharing a data dir (server restarting while an old one exits) must
    # not each mint a CA; an exclusive lock serialises them.
    lock_fd = os.open(paths.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        _ensure_locked(paths, sans_dns, sans_ip)
    finally:
        os.close(lock_fd)  # closing drops the lock
    return paths


def _ensure_locked(paths: PKIPaths, sans_dns: list[str], sans_ip: list[str]) -> None:
    ca = _load_ca_or_none(paths)
    if ca is None:
        ca = _new_ca()
        # Key first: a crash between the two writes leaves an unmatched pair, which the
        # next start detects and replaces, rather than a cert whose key is lost.
        write_atomic(paths.ca_key, _key_pem(ca.key), 0o600)
        write_atomic(paths.ca_cert, ca.cert_pem, 0o644)

    dns, ips = _sans(sans_dns, sans_ip)
    serving = _leaf_ok(paths.serving_cert, paths.serving_key, ca)
    if serving is None or not _covers(serving, dns, ips):
        cert_pem, key_pem = issue_serving_cert(ca, SERVING_CN, dns, ips, LEAF_VALIDITY.days)
        write_atomic(paths.serving_key, key_pem, 0o600)
        write_atomic(paths.serving_cert, cert_pem, 0o644)

    if _leaf_ok(paths.admin_cert, paths.admin_key, ca) is None:
        cert_pem, key_pem = issue_client_cert(ca, ADMIN_CN, [ADMIN_ORG], LEAF_VALIDITY.days)
        write_atomic(paths.admin_key, key_pem, 0o600)
        write_atomic(paths.admin_cert, cert_pem, 0o644)

    sa_key = _load_pem_key(paths.sa_key)
    if not isinstance(sa_key, rsa.RSAPrivateKey):
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_atomic(paths.sa_key, _key_pem(sa_key), 0o600)
        write_atomic(paths.sa_pub, _sa_pub_pem(sa_key), 0o644)
    elif _load_pub(paths.sa_pub) != _sa_pub_pem(sa_key):
        # The public half is derived data; rewrite it rather than trust a stale copy.
        write_atomic(paths.sa_pub, _sa_pub_pem(sa_key), 0o644)


def _sa_pub_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_pub(path: Path) -> Optional[bytes]:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def ensure_client_cert(data_dir: Path, name: str, cn: str, orgs: Iterable[str] = (),
                       ca: Optional[CA] = None) -> tuple[Path, Path]:
    """A client certificate for `cn`/`orgs` at `DATA_DIR/tls/<name>.crt|.key`, issued by
    the cluster CA unless a fresh one for the same subject is already there.  Returns
    (cert_path, key_path)."""
    paths = PKIPaths.under(Path(data_dir))
    ca = ca or load_ca(data_dir)
    cert_path, key_path = paths.dir / f"{name}.crt", paths.dir / f"{name}.key"
    orgs = list(orgs)
    have = _leaf_ok(cert_path, key_path, ca)
    if have is None or have.subject != _name(cn, orgs):
        cert_pem, key_pem = issue_client_cert(ca, cn, orgs, LEAF_VALIDITY.days)
        write_atomic(key_path, key_pem, 0o600)
        write_atomic(cert_path, cert_pem, 0o644)
    return cert_path, key_path
