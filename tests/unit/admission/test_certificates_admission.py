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
