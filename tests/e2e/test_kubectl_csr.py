"""CertificateSigningRequests: the requester is recorded, `kubectl certificate approve`
works through the approval subresource, and the signer issues a certificate from the
cluster CA that then authenticates as the requested user."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_csr(cn: str, orgs: list[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


def csr_manifest(name: str, pem: bytes, signer: str, usages: list[str]) -> str:
    return json.dumps({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                       "metadata": {"name": name},
                       "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer,
                                "usages": usages, "expirationSeconds": 3600}})


def wait_csr(kyb, name, pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = json.loads(kyb.kubectl("get", "csr", name, "-o", "json").stdout)
        if pred(obj):
            return obj
        time.sleep(0.1)
    raise AssertionError(f"csr {name} never reached the condition: {obj.get('status')}")


def test_approve_and_sign_client_certificate(kyb, tmp_path):
    pem, key = make_csr("carol", ["dev"])
    kyb.kubectl("create", "-f", "-", input=csr_manifest("carol", pem, "kubernetes.io/kube-apiserver-client",
                                                        ["digital signature", "client auth"]))
    obj = json.loads(kyb.kubectl("get", "csr", "carol", "-o", "json").stdout)
    assert obj["spec"]["username"] == "kyb-admin"  # the requester, not something the client chose
    assert "certificate" not in (obj.get("status") or {})
    kyb.kubectl("certificate", "approve", "carol")
    obj = wait_csr(kyb, "carol", lambda o: (o.get("status") or {}).get("certificate"))
    cert = x509.load_pem_x509_certificate(base64.b64decode(obj["status"]["certificate"]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "carol"
    # the issued certificate authenticates as carol
    (tmp_path / "c.crt").write_bytes(base64.b64decode(obj["status"]["certificate"]))
    (tmp_path / "c.key").write_bytes(key)
    who = kyb.kubectl("--kubeconfig=/dev/null", f"--server={kyb.url}",
                      f"--certificate-authority={kyb.data_dir / 'tls' / 'ca.crt'}",
                      f"--client-certificate={tmp_path / 'c.crt'}", f"--client-key={tmp_path / 'c.key'}",
                      "auth", "whoami", "-o", "json").stdout
    assert json.loads(who)["status"]["userInfo"]["username"] == "carol"


def test_signer_refuses_what_it_may_not_issue(kyb):
    pem, _ = make_csr("not-a-node", ["dev"])
    kyb.kubectl("create", "-f", "-", input=csr_manifest("bad-kubelet", pem, "kubernetes.io/kube-apiserver-client-kubelet",
                                                        ["digital signature", "client auth"]))
    kyb.kubectl("certificate", "approve", "bad-kubelet")
    obj = wait_csr(kyb, "bad-kubelet", lambda o: any(c["type"] == "Failed" for c in (o.get("status") or {}).get("conditions", [])))
    assert "certificate" not in obj["status"]


def test_denied_is_never_signed(kyb):
    pem, _ = make_csr("dave", [])
    kyb.kubectl("create", "-f", "-", input=csr_manifest("dave", pem, "kubernetes.io/kube-apiserver-client",
                                                        ["digital signature", "client auth"]))
    kyb.kubectl("certificate", "deny", "dave")
    obj = json.loads(kyb.kubectl("get", "csr", "dave", "-o", "json").stdout)
    assert [c["type"] for c in obj["status"]["conditions"]] == ["Denied"]
    p = kyb.kubectl("certificate", "approve", "dave", check=False)
    assert p.returncode != 0 or "certificate" not in json.loads(
        kyb.kubectl("get", "csr", "dave", "-o", "json").stdout).get("status", {})
