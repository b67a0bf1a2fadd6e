"""The CSR approving controller (upstream pkg/controller/certificates/approver): kubelet
client certificate requests (`kubernetes.io/kube-apiserver-client-kubelet`) are approved
when the requester may create `certificatesigningrequests/nodeclient` (a bootstrap token's
group bound to the nodeclient ClusterRole) or, for a node renewing its own certificate
(CN equals the requesting user), `certificatesigningrequests/selfnodeclient`.  The check is
a SubjectAccessReview as the requester; anything else is left for a human to approve."""

from __future__ import annotations

import base64
import datetime as _dt
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

from cryptography import x509
from cryptography.x509.oid import NameOID

from kybernetes.client.errors import NotFound
from kybernetes.controllers.base import Controller, InformerFactory, ReconcileError

log = logging.getLogger("kybernetes.controllers.csrapproving")

Obj = dict[str, Any]

KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
_CLIENT_USAGES = frozenset({"digital signature", "key encipherment", "client auth"})
_CLIENT_USAGES_NO_RSA = frozenset({"digital signature", "client auth"})


def kubelet_client_violation(req: x509.CertificateSigningRequest, usages: list[str]) -> Optional[str]:
    """Why this is not a kubelet client certificate request (upstream's
    validateKubeletClientCSR, same order and wording), or None."""
    orgs = [a.value for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if orgs != ["system:nodes"]:
        return "subject organization is not system:nodes"
    try:
        san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        if san.get_values_for_type(x509.DNSName):
            return "DNS subjectAltNames are not allowed"
        if san.get_values_for_type(x509.RFC822Name):
            return "Email subjectAltNames are not allowed"
        if san.get_values_for_type(x509.IPAddress):
            return "IP subjectAltNames are not allowed"
        if san.get_values_for_type(x509.UniformResourceIdentifier):
            return "URI subjectAltNames are not allowed"
    if not common_name(req).startswith("system:node:"):
        return "subject common name does not begin with system:node:"
    if frozenset(usages) not in (_CLIENT_USAGES, _CLIENT_USAGES_NO_RSA):
        return "usages did not match [client auth digital signature key encipherment]"
    return None


def common_name(req: x509.CertificateSigningRequest) -> str:
    cns = req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


def _is_node_client(csr: Obj, req: x509.CertificateSigningRequest) -> bool:
    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBELET_CLIENT_SIGNER:
        return False
    why = kubelet_client_violation(req, list(spec.get("usages") or []))
    if why:
        log.warning("couldn't validate kubelet client csr %s: %s", csr["metadata"]["name"], why)
    return why is None


def _is_self_node_client(csr: Obj, req: x509.CertificateSigningRequest) -> bool:
    return (csr.get("spec") or {}).get("username") == common_name(req) and _is_node_client(csr, req)


@dataclass(frozen=True)
class Recognizer:
    recognize: Callable[[Obj, x509.CertificateSigningRequest], bool]
    subresource: str
    message: str


# tried in this order, as upstream: a node renewing itself first
RECOGNIZERS = (
    Recognizer(_is_self_node_client, "selfnodeclient",
               "Auto approving self kubelet client certificate after SubjectAccessReview."),
    Recognizer(_is_node_client, "nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview."),
)


def decided(csr: Obj) -> bool:
    """Issued, approved or denied already: nothing for the approver to do."""
    status = csr.get("status") or {}
    if status.get("certificate"):
        return True
    types = {c.get("type") for c in status.get("conditions") or []}
    return "Approved" in types or "Denied" in types


class CSRApprovingController(Controller):
    """Auto-approves kubelet client CSRs the requester is allowed to have approved."""

    name = "csrapproving"
    workers = 2

    def __init__(self, client: Any, informers: Optional[InformerFactory] = None, **kw: Any) -> None:
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.api = self.client.resource("certificates.k8s.io", "v1", "certificatesigningrequests", namespaced=False)
        self.sars = self.client.resource("authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False)
        self.csrs = self.watch("certificates.k8s.io", "v1", "certificatesigningrequests")

    async def authorize(self, csr: Obj, subresource: str) -> bool:
        spec = csr.get("spec") or {}
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {"user": spec.get("username", ""), "uid": spec.get("uid", ""),
                        "groups": spec.get("groups") or [], "extra": spec.get("extra") or {},
                        "resourceAttributes": {"group": "certificates.k8s.io", "version": "*",
                                               "resource": "certificatesigningrequests",
                                               "subresource": subresource, "verb": "create"}}}
        out = await self.sars.create(sar)
        return bool((out.get("status") or {}).get("allowed"))

    async def reconcile(self, key: str) -> None:
        csr = self.csrs.get(key)
        if csr is None or decided(csr):
            return
        try:
            req = x509.load_pem_x509_csr(base64.b64decode((csr.get("spec") or {}).get("request", "")))
        except ValueError as e:
            raise ReconcileError(f"unable to parse csr {key!r}: {e}") from None
        tried: list[str] = []
        for r in RECOGNIZERS:
            if not r.recognize(csr, req):
                continue
            tried.append(r.subresource)
            if await self.authorize(csr, r.subresource):
                now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                status = dict(csr.get("status") or {})
                status["conditions"] = list(status.get("conditions") or []) + [{
                    "type": "Approved", "status": "True", "reason": "AutoApproved", "message": r.message,
                    "lastUpdateTime": now, "lastTransitionTime": now}]
                csr = dict(csr, status=status)
                try:
                    await self.api.update(csr, subresource="approval")
                except NotFound:
                    return
                log.info("approved %s (%s)", key, r.subresource)
                return
        if tried:
            # upstream treats this as ignorable: it waits for the next change of the CSR
            log.info("recognized csr %r as %s but subject access review was not approved", key, tried)
