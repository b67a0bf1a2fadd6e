"""The CSR cleaner (upstream pkg/controller/certificates/cleaner): deletes
CertificateSigningRequests that are done with — issued or denied or failed more than an
hour ago, pending for more than a day, or whose issued certificate has expired.

Upstream lists every CSR once an hour; here each CSR is requeued for the moment it
becomes due, so nothing polls."""

from __future__ import annotations

import base64
import datetime as _dt
import logging
from typing import Any, Optional

from cryptography import x509

from kybernetes.client.errors import NotFound
from kybernetes.controllers.base import Controller, InformerFactory, Requeue

log = logging.getLogger("kybernetes.controllers.csrcleaner")

Obj = dict[str, Any]

APPROVED_EXPIRATION = _dt.timedelta(hours=1)
DENIED_EXPIRATION = _dt.timedelta(hours=1)
PENDING_EXPIRATION = _dt.timedelta(hours=24)


def _ts(raw: Optional[str]) -> Optional[_dt.datetime]:
    if not raw:
        return None
    try:
        return _dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def _cert_not_after(csr: Obj) -> Optional[_dt.datetime]:
    raw = (csr.get("status") or {}).get("certificate")
    if not raw:
        return None
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(raw))
    except ValueError:
        return None  # upstream logs and keeps a CSR whose certificate it cannot read
    return cert.not_valid_after_utc


def deletion_due(csr: Obj, *, approved: _dt.timedelta = APPROVED_EXPIRATION,
                 denied: _dt.timedelta = DENIED_EXPIRATION,
                 pending: _dt.timedelta = PENDING_EXPIRATION) -> Optional[_dt.datetime]:
    """When the cleaner deletes this CSR (the earliest rule that applies), or None."""
    status = csr.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    issued = bool(status.get("certificate"))
    due: list[_dt.datetime] = []

    def after(cond: Obj, ttl: _dt.timedelta) -> None:
        t = _ts(cond.get("lastUpdateTime"))
        if t is not None:
            due.append(t + ttl)

    if issued and "Approved" in conds:
        after(conds["Approved"], approved)
    if "Denied" in conds:
        after(conds["Denied"], denied)
    if "Failed" in conds:
        after(conds["Failed"], denied)
    if not conds and not issued:  # pending: no decision yet
        created = _ts((csr.get("metadata") or {}).get("creationTimestamp"))
        if created is not None:
            due.append(created + pending)
    not_after = _cert_not_after(csr)
    if not_after is not None:
        due.append(not_after)
    return min(due) if due else None


class CSRCleanerController(Controller):
    """Garbage-collects finished or stale CertificateSigningRequests."""

    name = "csrcleaner"
    workers = 1

    def __init__(self, client: Any, informers: Optional[InformerFactory] = None, *,
                 approved: _dt.timedelta = APPROVED_EXPIRATION, denied: _dt.timedelta = DENIED_EXPIRATION,
                 pending: _dt.timedelta = PENDING_EXPIRATION, **kw: Any) -> None:
        self.ttls = {"approved": approved, "denied": denied, "pending": pending}
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.api = self.client.resource("certificates.k8s.io", "v1", "certificatesigningrequests", namespaced=False)
        self.csrs = self.watch("certificates.k8s.io", "v1", "certificatesigningrequests")

    async def reconcile(self, key: str) -> None:
        csr = self.csrs.get(key)
        if csr is None:
            return
        due = deletion_due(csr, **self.ttls)
        if due is None:
            return
        wait = (due - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
        if wait > 0:
            raise Requeue(after=wait + 0.5)
        uid = csr["metadata"].get("uid")
        try:
            await self.api.delete(csr["metadata"]["name"], preconditions={"uid": uid} if uid else None)
        except NotFound:
            return
        log.info("deleted certificate signing request %s", key)
