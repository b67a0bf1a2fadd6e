"""The CSR signer for the built-in Kubernetes signers (upstream
pkg/controller/certificates/signer): approved CertificateSigningRequests for
kubernetes.io/kube-apiserver-client, kube-apiserver-client-kubelet and kubelet-serving
get a certificate from the cluster CA in `status.certificate`; requests a signer may not
issue are marked Failed."""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
from typing import Any, Optional

from cryptography import x509
from cryptography.x509.oid import NameOID

from kybernetes.auth import pki
from kybernetes.client.errors import NotFound
from kybernetes.controllers.base import Controller, InformerFactory

Obj = dict[str, Any]

CLIENT = "kubernetes.io/kube-apiserver-client"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
SIGNERS = (CLIENT, KUBELET_CLIENT, KUBELET_SERVING)
DEFAULT_DURATION = _dt.timedelta(days=365)  # upstream --cluster-signing-duration default (8760h)
MIN_DURATION = _dt.timedelta(minutes=10)


def _conditions(csr: Obj) -> dict[str, Obj]:
    return {c.get("type"): c for c in (csr.get("status") or {}).get("conditions") or []}


def signer_violation(signer: str, csr_pem: bytes, usages: list[str]) -> Optional[str]:
    """Why `signer` may not issue this request (upstream's per-signer rules), or None."""
    req = x509.load_pem_x509_csr(csr_pem)
    cn = [a.value for a in req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    allowed = set(usages)
    if signer == CLIENT:
        if "server auth" in allowed:
            return "invalid usage for client certificate: server auth"
        return None
    if signer == KUBELET_CLIENT:
        if orgs != ["system:nodes"]:
            return 'subject organization is not system:nodes'
        if not cn or not cn[0].startswith("system:node:"):
            return 'subject common name does not begin with "system:node:"'
        if not allowed <= {"digital signature", "key encipherment", "client auth"} or "client auth" not in allowed:
            return "usages did not match [digital signature client auth] or [digital signature key encipherment client auth]"
        return None
    if signer == KUBELET_SERVING:
        if orgs != ["system:nodes"]:
            return 'subject organization is not system:nodes'
        if not cn or not cn[0].startswith("system:node:"):
            return 'subject common name does not begin with "system:node:"'
        if not allowed <= {"digital signature", "key encipherment", "server auth"} or "server auth" not in allowed:
            return "usages did not match [digital signature server auth] or [digital signature key encipherment server auth]"
        return None
    return f"unknown signer {signer}"


def signing_duration(ttl: _dt.timedelta, expiration_seconds: Optional[int]) -> _dt.timedelta:
    """upstream's rule: the signer's TTL (--cluster-signing-duration), or the requested
    expirationSeconds when shorter, but never below 10 minutes; the lower bound applies
    to the request only, so a short TTL stays short."""
    if not expiration_seconds:
        return ttl
    requested = _dt.timedelta(seconds=int(expiration_seconds))
    if requested > ttl:
        return ttl
    return max(requested, MIN_DURATION)


class CSRSigningController(Controller):
    """Signs approved CSRs of the built-in signers with the cluster CA."""

    name = "csrsigning"
    workers = 2

    def __init__(self, client: Any, informers: Optional[InformerFactory] = None, *, ca: pki.CA,
                 duration: _dt.timedelta = DEFAULT_DURATION, **kw: Any) -> None:
        self.ca = ca
        self.duration = duration
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.api = self.client.resource("certificates.k8s.io", "v1", "certificatesigningrequests", namespaced=False)
        self.csrs = self.watch("certificates.k8s.io", "v1", "certificatesigningrequests")

    async def reconcile(self, key: str) -> None:
        csr = self.csrs.get(key)
        if csr is None:
            return
        spec, status = csr.get("spec") or {}, csr.get("status") or {}
        signer = spec.get("signerName", "")
        conds = _conditions(csr)
        if signer not in SIGNERS or status.get("certificate") or "Approved" not in conds \
                or "Denied" in conds or "Failed" in conds:
            return
        pem = base64.b64decode(spec.get("request", ""))
        usages = list(spec.get("usages") or [])
        try:
            why = signer_violation(signer, pem, usages)
        except ValueError as e:
            why = f"unable to parse csr: {e}"
        if why:
            status.setdefault("conditions", []).append({
                "type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": why,
                "lastUpdateTime": _now(), "lastTransitionTime": _now()})
        else:
            duration = signing_duration(self.duration, spec.get("expirationSeconds"))
            cert = await asyncio.to_thread(pki.sign_csr, self.ca, pem, usages, duration)
            status["certificate"] = base64.b64encode(cert).decode()
        csr["status"] = status
        try:
            await self.api.update_status(csr)
        except NotFound:
            return  # deleted meanwhile
        # a Conflict propagates: the work queue retries the key with backoff


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
