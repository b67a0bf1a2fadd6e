"""The cluster PKI: creation, reuse across restarts, SANs, chains and CSR signing."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kybernetes.auth import pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(san.get_values_for_type(x509.DNSName)),
        {str(i) for i in san.get_values_for_type(x509.IPAddress)},
    )


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_creates_everything(data_dir: Path) -> None:
    paths = pki.ensure_pki(data_dir, sans_dns=["node1.example"], sans_ip=["10.0.0.5"])
    assert paths.dir == data_dir / "tls"
    for p in (paths.ca_cert, paths.ca_key, paths.serving_cert, paths.serving_key,
              paths.admin_cert, paths.admin_key, paths.sa_key, paths.sa_pub):
        assert p.is_file(), p
    for key in (paths.ca_key, paths.serving_key, paths.admin_key, paths.sa_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert not [p for p in paths.dir.iterdir() if p.name.endswith(".tmp")]

    ca = _cert(paths.ca_cert)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.startswith("kybernetes-ca@")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > dt.timedelta(days=3640)

    serving = _cert(paths.serving_cert)
    serving.verify_directly_issued_by(ca)
    dns, ips = _sans(serving)
    assert {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local", "node1.example"} <= dns
    assert {"127.0.0.1", "10.0.0.5"} <= ips
    assert _eku(serving) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert dt.timedelta(days=360) < serving.not_valid_after_utc - serving.not_valid_before_utc < dt.timedelta(days=370)

    admin = _cert(paths.admin_cert)
    admin.verify_directly_issued_by(ca)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kyb-admin"
    assert _eku(admin) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    sa = serialization.load_pem_private_key(paths.sa_key.read_bytes(), None)
    assert isinstance(sa, rsa.RSAPrivateKey) and sa.key_size == 2048
    assert serialization.load_pem_public_key(paths.sa_pub.read_bytes()).public_numbers() == \
        sa.public_key().public_numbers()


def test_reuses_existing_material(data_dir: Path) -> None:
    paths = pki.ensure_pki(data_dir, sans_dns=[], sans_ip=[])
    before = {p: p.read_bytes() for p in paths.dir.iterdir() if p.is_file()}
    again = pki.ensure_pki(data_dir, sans_dns=[], sans_ip=["127.0.0.1"])
    assert again == paths
    after = {p: p.read_bytes() for p in paths.dir.iterdir() if p.is_file()}
    assert before == after
    # load_ca sees the same CA
    assert pki.load_ca(data_dir).cert_pem == before[paths.ca_cert]


def test_new_san_reissues_only_serving_cert(data_dir: Path) -> None:
    paths = pki.ensure_pki(data_dir, sans_dns=[], sans_ip=[])
    ca_bytes, admin_bytes, sa_bytes = (paths.ca_cert.read_bytes(), paths.admin_cert.read_bytes(),
                                       paths.sa_key.read_bytes())
    old_serving = paths.serving_cert.read_bytes()
    pki.ensure_pki(data_dir, sans_dns=["api.example"], sans_ip=["192.0.2.7"])
    assert paths.serving_cert.read_bytes() != old_serving
    assert (paths.ca_cert.read_bytes(), paths.admin_cert.read_bytes(), paths.sa_key.read_bytes()) == \
        (ca_bytes, admin_bytes, sa_bytes)
    dns, ips = _sans(_cert(paths.serving_cert))
    assert "api.example" in dns and "192.0.2.7" in ips
    # covered names (in any case) do not cause another reissue
    current = paths.serving_cert.read_bytes()
    pki.ensure_pki(data_dir, sans_dns=["API.example"], sans_ip=[])
    assert paths.serving_cert.read_bytes() == current


def test_expiring_serving_cert_is_reissued_with_same_ca(data_dir: Path) -> None:
    paths = pki.ensure_pki(data_dir, sans_dns=[], sans_ip=[])
    ca = pki.load_ca(data_dir)
    # Replace the serving cert with one that expires in 10 days.
    cert_pem, key_pem = pki.issue_serving_cert(ca, "kube-apiserver", pki.DEFAULT_SERVING_DNS,
                                               pki.DEFAULT_SERVING_IPS, days=10)
    pki.write_atomic(paths.serving_key, key_pem, 0o600)
    pki.write_atomic(paths.serving_cert, cert_pem)
    pki.ensure_pki(data_dir, sans_dns=[], sans_ip=[])
    renewed = _cert(paths.serving_cert)
    assert paths.serving_cert.read_bytes() != cert_pem
    assert renewed.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=300)
    assert pki.load_ca(data_dir).cert_pem == ca.cert_pem


def test_missing_ca_regenerates_leaves(data_dir: Path) -> None:
    paths = pki.ensure_pki(data_dir, sans_dns=[], sans_ip=[])
    sa_before = paths.sa_key.read_bytes()
    paths.ca_key.unlink()
    pki.ensure_pki(data_dir, sans_dns=[], sans_ip=[])
    ca = _cert(paths.ca_cert)
    _cert(paths.serving_cert).verify_directly_issued_by(ca)
    _cert(paths.admin_cert).verify_directly_issued_by(ca)
    assert paths.sa_key.read_bytes() == sa_before  # tokens stay valid


def test_bad_ip_is_rejected(data_dir: Path) -> None:
    with pytest.raises(ValueError):
        pki.ensure_pki(data_dir, sans_dns=[], sans_ip=["not-an-ip"])


def test_issue_client_cert(data_dir: Path) -> None:
    pki.ensure_pki(data_dir, sans_dns=[], sans_ip=[])
    ca = pki.load_ca(data_dir)
    cert_pem, key_pem = pki.issue_client_cert(ca, "system:node:n1", ["system:nodes"], 30)
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(ca.cert)
    assert cert.subject.rfc4514_string() == "CN=system:node:n1,O=system:nodes"
    key = serialization.load_pem_private_key(key_pem, None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_sign_csr(data_dir: Path) -> None:
    pki.ensure_pki(data_dir, sans_dns=[], sans_ip=[])
    ca = pki.load_ca(data_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, "system:node:n1"),
        ]))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("n1"), x509.IPAddress(ipaddress.ip_address("10.1.2.3"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM)
    cert = x509.load_pem_x509_certificate(
        pki.sign_csr(ca, pem, ["digital signature", "key encipherment", "server auth"], 3600))
    cert.verify_directly_issued_by(ca.cert)
    assert cert.subject == csr.subject
    assert _sans(cert) == ({"n1"}, {"10.1.2.3"})
    assert _eku(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    life = cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=59) < life <= dt.timedelta(hours=1)

    # never beyond the CA
    long = x509.load_pem_x509_certificate(
        pki.sign_csr(ca, pem, ["client auth"], dt.timedelta(days=100000)))
    assert long.not_valid_after_utc == ca.cert.not_valid_after_utc

    with pytest.raises(ValueError, match="unsupported key usage"):
        pki.sign_csr(ca, pem, ["flying"], 3600)
    with pytest.raises(ValueError):
        pki.sign_csr(ca, b"not a csr", ["client auth"], 3600)


def test_write_atomic_mode_ignores_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        pki.write_atomic(tmp_path / "f", b"x", 0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644
