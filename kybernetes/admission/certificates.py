"""CertificateApproval, CertificateSigning and CertificateSubjectRestriction admission
(upstream plugin/pkg/admission/certificates): approving or denying a
CertificateSigningRequest through `/approval` needs the `approve` verb on `signers` named
after its signerName, and writing `status.certificate` through `/status` needs `sign`
(a grant on `<domain>/*` covers every signer of that domain); and no one may ask the
kube-apiserver-client signer for a certificate in the system:masters group."""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.admission.lookup import forbidden, subresource
from kybernetes.auth.authorizer import Attributes, Decision

GROUP = "certificates.k8s.io"


async def authorized_for_signer(authorizer: Any, user: Any, verb: str, signer: str) -> bool:
    """May `user` `verb` the signer (by exact name, or by its domain wildcard)?"""
    names = [signer]
    if "/" in signer:
        names.append(signer.split("/", 1)[0] + "/*")
    for name in names:
        decision, _ = await authorizer.authorize(Attributes(user=user, verb=verb, api_group=GROUP,
                                                            resource="signers", name=name))
        if decision == Decision.ALLOW:
            return True
    return False


KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"


def subject_restriction(csr: dict) -> Optional[str]:
    """CertificateSubjectRestriction: why this request may not be created, or None."""
    import base64

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBE_APISERVER_CLIENT:
        return None
    try:
        req = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
        orgs = [a.value for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    except ValueError as e:
        return f"failed to parse CSR: {e}"
    if "system:masters" in orgs:
        return f"use of {KUBE_APISERVER_CLIENT} signer with system:masters group is not allowed"
    return None


def admission(authorizer: Any):
    """A validating admission step for CertificateSigningRequest subresource updates."""

    async def check(op: str, r: Any, new: Optional[dict], old: Optional[dict]) -> None:
        s = r.strategy
        if s.group != GROUP or s.resource != "certificatesigningrequests" or new is None:
            return
        sub = subresource(r)
        if op == "CREATE" and not sub:
            why = subject_restriction(new)
            if why:
                raise forbidden(r, (new.get("metadata") or {}).get("name", ""), why)
            return
        if op != "UPDATE":
            return
        signer = (new.get("spec") or {}).get("signerName", "")
        name = (new.get("metadata") or {}).get("name", "")
        if sub == "approval":
            verb = "approve"
        elif sub == "status":
            # only a change of the issued certificate needs `sign`
            old_cert = ((old or {}).get("status") or {}).get("certificate")
            if (new.get("status") or {}).get("certificate") == old_cert:
                return
            verb = "sign"
        else:
            return
        if not await authorized_for_signer(authorizer, r.http["user"], verb, signer):
            raise forbidden(r, name, f"user not permitted to {verb} requests with signerName {_q(signer)}")

    return check


def _q(s: str) -> str:
    from kybernetes.api.goformat import go_quote

    return go_quote(s)
