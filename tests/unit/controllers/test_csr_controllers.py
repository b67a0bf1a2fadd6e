"""The CSR approver's recognition rules, the cleaner's deadlines and the signer's duration
rule, on plain objects (no server)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kybernetes.auth import pki
from kybernetes.controllers import csrapproving as ap
from kybernetes.controllers.clientbuilder import service_account_for
from kybernetes.controllers.csrcleaner import deletion_due
from kybernetes.controllers.csrsigning import MIN_DURATION, signing_duration
from kybernetes.controllers.manager import default_controllers

KEY = ec.generate_private_key(ec.SECP256R1())
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def req(cn="system:node:n1", orgs=("system:nodes",), sans=()) -> x509.CertificateSigningRequest:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(KEY, hashes.SHA256())


def csr_obj(r, username="system:bootstrap:abcdef", usages=("digital signature", "client auth"),
            signer=ap.KUBELET_CLIENT_SIGNER) -> dict:
    pem = r.public_bytes(serialization.Encoding.PEM)
    return {"metadata": {"name": "c"}, "spec": {"request": base64.b64encode(pem).decode(), "username": username,
                                                "signerName": signer, "usages": list(usages)}}


@pytest.mark.parametrize("kw,usages,why", [
    ({}, ["digital signature", "client auth"], None),
    ({}, ["digital signature", "key encipherment", "client auth"], None),
    ({}, ["client auth", "digital signature"], None),
    ({"orgs": ("system:nodes", "extra")}, ["digital signature", "client auth"], "subject organization is not system:nodes"),
    ({"orgs": ()}, ["digital signature", "client auth"], "subject organization is not system:nodes"),
    ({"cn": "node:n1"}, ["digital signature", "client auth"], "subject common name does not begin with system:node:"),
    ({"sans": (x509.DNSName("n1"),)}, ["digital signature", "client auth"], "DNS subjectAltNames are not allowed"),
    ({"sans": (x509.IPAddress(ipaddress.ip_address("10.0.0.1")),)}, ["digital signature", "client auth"],
     "IP subjectAltNames are not allowed"),
    ({"sans": (x509.RFC822Name("a@b.c"),)}, ["digital signature", "client auth"], "Email subjectAltNames are not allowed"),
    ({}, ["digital signature", "client auth", "server auth"],
     "usages did not match [client auth digital signature key encipherment]"),
    ({}, ["client auth"], "usages did not match [client auth digital signature key encipherment]"),
])
def test_kubelet_client_recognition(kw, usages, why):
    assert ap.kubelet_client_violation(req(**kw), usages) == why


def test_recognizers_self_renewal_only_when_cn_is_the_requester():
    r = req()
    boot = csr_obj(r)
    selfr = csr_obj(r, username="system:node:n1")
    other = csr_obj(r, username="system:node:n2")
    by_sub = {x.subresource: x for x in ap.RECOGNIZERS}
    assert [x.subresource for x in ap.RECOGNIZERS] == ["selfnodeclient", "nodeclient"]
    assert not by_sub["selfnodeclient"].recognize(boot, r) and by_sub["nodeclient"].recognize(boot, r)
    assert by_sub["selfnodeclient"].recognize(selfr, r)
    assert not by_sub["selfnodeclient"].recognize(other, r) and by_sub["nodeclient"].recognize(other, r)
    # another signer is never auto-approved
    serving = csr_obj(r, signer="kubernetes.io/kubelet-serving")
    assert not any(x.recognize(serving, r) for x in ap.RECOGNIZERS)


def test_decided():
    assert not ap.decided({"status": {}})
    assert ap.decided({"status": {"conditions": [{"type": "Denied"}]}})
    assert ap.decided({"status": {"conditions": [{"type": "Approved"}]}})
    assert ap.decided({"status": {"certificate": "eA=="}})
    assert not ap.decided({"status": {"conditions": [{"type": "Failed"}]}})


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_cleaner_deadlines():
    created = {"metadata": {"creationTimestamp": _ts(NOW)}}
    assert deletion_due(dict(created, status={})) == NOW + dt.timedelta(hours=24)
    denied = dict(created, status={"conditions": [{"type": "Denied", "lastUpdateTime": _ts(NOW)}]})
    assert deletion_due(denied) == NOW + dt.timedelta(hours=1)
    failed = dict(created, status={"conditions": [{"type": "Failed", "lastUpdateTime": _ts(NOW)}]})
    assert deletion_due(failed) == NOW + dt.timedelta(hours=1)
    # approved but not issued: the cleaner waits (upstream deletes approved CSRs only once issued)
    approved = dict(created, status={"conditions": [{"type": "Approved", "lastUpdateTime": _ts(NOW)}]})
    assert deletion_due(approved) is None


def test_cleaner_issued_certificate_expiry_comes_first_when_sooner():
    ca = pki._new_ca()
    csr_pem = req().public_bytes(serialization.Encoding.PEM)
    cert = pki.sign_csr(ca, csr_pem, ["digital signature", "client auth"], dt.timedelta(minutes=20))
    not_after = x509.load_pem_x509_certificate(cert).not_valid_after_utc
    issued_at = dt.datetime.now(dt.timezone.utc)
    obj = {"metadata": {"creationTimestamp": _ts(issued_at)},
           "status": {"certificate": base64.b64encode(cert).decode(),
                      "conditions": [{"type": "Approved", "lastUpdateTime": _ts(issued_at)}]}}
    assert deletion_due(obj) == min(not_after, issued_at.replace(microsecond=0) + dt.timedelta(hours=1))
    assert deletion_due(obj) == not_after


def test_signing_duration_follows_upstream():
    ttl = dt.timedelta(hours=8760)
    assert signing_duration(ttl, None) == ttl
    assert signing_duration(ttl, 3600) == dt.timedelta(hours=1)
    assert signing_duration(ttl, 10 ** 9) == ttl
    assert signing_duration(ttl, 60) == MIN_DURATION  # below the floor (validation forbids it anyway)
    short = dt.timedelta(seconds=30)
    assert signing_duration(short, None) == short
    assert signing_duration(short, 600) == short  # a short --cluster-signing-duration stays short


def test_every_default_controller_has_an_upstream_service_account():
    from functools import partial

    from kybernetes.controllers.csrsigning import CSRSigningController

    specs = default_controllers(root_ca=b"x") + [partial(CSRSigningController, ca=None)]
    sas = {service_account_for(s) for s in specs}
    assert None not in sas
    assert {"certificate-controller", "node-controller", "generic-garbage-collector",
            "root-ca-cert-publisher"} <= sas
    # every one of them has a system:controller:* role in the bootstrap policy
    from kybernetes.auth.bootstrap_policy import controller_roles

    roles = {r["metadata"]["name"] for r in controller_roles()}
    assert {f"system:controller:{sa}" for sa in sas} <= roles
