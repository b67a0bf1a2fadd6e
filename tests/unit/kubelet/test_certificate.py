"""The kubelet certificate manager's pieces that need no server: the CSR it files, the
rotation deadline, and the on-disk store."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kybernetes.auth import pki
from kybernetes.controllers.csrapproving import kubelet_client_violation
from kybernetes.kubelet import certificate as kc


def _issue(seconds: int) -> kc.Credentials:
    ca = pki._new_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.sign_csr(ca, kc.make_csr(key, "n1"), kc.CLIENT_USAGES, dt.timedelta(seconds=seconds))
    return kc.Credentials(cert, kc._key_pem(key))


def test_client_csr_is_what_the_approver_recognises():
    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.load_pem_x509_csr(kc.make_csr(key, "n1"))
    assert req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
    assert kubelet_client_violation(req, kc.CLIENT_USAGES) is None


def test_serving_csr_carries_the_node_addresses():
    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.load_pem_x509_csr(kc.make_csr(key, "n1", dns=("n1",), ips=("10.0.0.5",)))
    san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["n1"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]


def test_rotation_deadline_is_70_to_84_percent_of_the_lifetime():
    cert = _issue(1000).cert
    start, total = cert.not_valid_before_utc, cert.not_valid_after_utc - cert.not_valid_before_utc
    assert kc.rotation_deadline(cert, rand=lambda: 0.0) == start + total * 0.7
    assert kc.rotation_deadline(cert, rand=lambda: 1.0) == start + total * 0.84
    mid = kc.rotation_deadline(cert)
    assert start + total * 0.7 <= mid <= start + total * 0.84


def test_store_keeps_history_and_points_current_at_the_newest(tmp_path):
    store = kc.CertificateStore(tmp_path / "pki")
    assert store.load() is None
    first, second = _issue(3600), _issue(3600)
    p1 = store.save(first)
    assert store.load() == first
    p2 = store.save(second)
    assert p1 != p2 and p1.exists() and p2.exists()
    assert store.current_path.resolve() == p2
    assert store.load() == second
    assert oct(p2.stat().st_mode & 0o777) == "0o600"
    assert second.valid() and not kc.Credentials(second.cert_pem, second.key_pem).valid(
        at=second.cert.not_valid_after_utc + dt.timedelta(seconds=1))


def test_store_ignores_garbage(tmp_path):
    store = kc.CertificateStore(tmp_path)
    store.current_path.write_text("not a pem")
    assert store.load() is None


def test_outcome():
    import pytest

    assert kc._outcome({"metadata": {"name": "c"}, "status": {}}) is None
    assert kc._outcome({"metadata": {"name": "c"}, "status": {"certificate": "aGk="}}) == b"hi"
    with pytest.raises(kc.BootstrapError, match="c is denied, reason: R, message: M"):
        kc._outcome({"metadata": {"name": "c"},
                     "status": {"conditions": [{"type": "Denied", "reason": "R", "message": "M"}]}})
    with pytest.raises(kc.BootstrapError, match="failed"):
        kc._outcome({"metadata": {"name": "c"}, "status": {"conditions": [{"type": "Failed"}]}})


def test_serving_manager_due():
    m = kc.ServingCertificateManager(None, "n1", "/nonexistent", dns=("n1",), ips=())
    assert m.due(None) == 0.0
    creds = _issue(1000)
    cert = creds.cert
    start, life = cert.not_valid_before_utc, cert.not_valid_after_utc - cert.not_valid_before_utc
    # before 70% of the lifetime: wait; past 84%: due now; expired: due now
    assert m.due(creds, start + life * 0.1) >= (life * 0.6).total_seconds()
    assert m.due(creds, start + life * 0.85) == 0.0
    assert m.due(creds, start + life * 1.5) == 0.0


def test_csr_cert_source(tmp_path):
    from kybernetes.kubelet.server.app import csr_cert_source

    with pytest.raises(FileNotFoundError):
        csr_cert_source(tmp_path)()
    fb = (tmp_path / "a.crt", tmp_path / "a.key")
    assert csr_cert_source(tmp_path, fallback=lambda: fb)() == fb
    kc.CertificateStore(tmp_path, "kubelet-server").save(_issue(1000))
    cur = tmp_path / "kubelet-server-current.pem"
    assert csr_cert_source(tmp_path, fallback=lambda: fb)() == (cur, cur)
