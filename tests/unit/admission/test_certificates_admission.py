"""CertificateApproval / CertificateSigning admission with a recording authorizer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kybernetes.admission.certificates import admission, authorized_for_signer
from kybernetes.apiserver.errors import APIError
from kybernetes.auth.authorizer import Decision


class Authz:
    def __init__(self, allowed: set[tuple[str, str]]):
        self.allowed = allowed
        self.asked: list[tuple[str, str, str, str]] = []

    async def authorize(self, attrs):
        self.asked.append((attrs.verb, attrs.api_group, attrs.resource, attrs.name))
        ok = (attrs.verb, attrs.name) in self.allowed
        return (Decision.ALLOW if ok else Decision.NO_OPINION), ""


def _r(sub: str):
    strategy = SimpleNamespace(group="certificates.k8s.io", resource="certificatesigningrequests")
    return SimpleNamespace(strategy=strategy, info=SimpleNamespace(subresource=sub), http={"user": "u"})


def _csr(signer="example.com/a", cert=None):
    return {"metadata": {"name": "c1"}, "spec": {"signerName": signer}, "status": {"certificate": cert} if cert else {}}


async def test_exact_name_then_domain_wildcard():
    a = Authz({("approve", "example.com/*")})
    assert await authorized_for_signer(a, "u", "approve", "example.com/a")
    assert a.asked == [("approve", "certificates.k8s.io", "signers", "example.com/a"),
                       ("approve", "certificates.k8s.io", "signers", "example.com/*")]
    assert not await authorized_for_signer(Authz(set()), "u", "approve", "example.com/a")


async def test_approval_without_approve_is_forbidden():
    check = admission(Authz(set()))
    with pytest.raises(APIError) as e:
        await check("UPDATE", _r("approval"), _csr(), _csr())
    assert e.value.code == 403
    assert e.value.message == ('certificatesigningrequests.certificates.k8s.io "c1" is forbidden: '
                               'user not permitted to approve requests with signerName "example.com/a"')
    await admission(Authz({("approve", "example.com/a")}))("UPDATE", _r("approval"), _csr(), _csr())


async def test_status_needs_sign_only_when_the_certificate_changes():
    check = admission(Authz(set()))
    await check("UPDATE", _r("status"), _csr(cert="eA=="), _csr(cert="eA=="))  # unchanged: no check
    with pytest.raises(APIError, match="user not permitted to sign requests"):
        await check("UPDATE", _r("status"), _csr(cert="eQ=="), _csr())
    await admission(Authz({("sign", "example.com/*")}))("UPDATE", _r("status"), _csr(cert="eQ=="), _csr())


async def test_other_writes_are_not_checked():
    a = Authz(set())
    await admission(a)("UPDATE", _r(""), _csr(), _csr())
    await admission(a)("CREATE", _r(""), _csr(), None)
    assert a.asked == []


def _with_orgs(orgs, signer="kubernetes.io/kube-apiserver-client"):
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, "pooh"))
    req = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(
        ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    pem = req.public_bytes(serialization.Encoding.PEM)
    return {"metadata": {"name": "pooh"}, "spec": {"signerName": signer, "request": base64.b64encode(pem).decode()}}


async def test_no_masters_certificates_from_the_client_signer():
    check = admission(Authz(set()))
    with pytest.raises(APIError) as e:
        await check("CREATE", _r(""), _with_orgs(["team", "system:masters"]), None)
    assert e.value.code == 403
    assert e.value.message == ('certificatesigningrequests.certificates.k8s.io "pooh" is forbidden: use of '
                               'kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed')
    await check("CREATE", _r(""), _with_orgs(["system:notmasters"]), None)
    await check("CREATE", _r(""), _with_orgs(["system:masters"], signer="example.com/x"), None)
