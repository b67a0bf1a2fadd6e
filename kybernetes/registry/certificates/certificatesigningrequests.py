"""CertificateSigningRequests: ask a signer for a certificate.

The spec is fixed at create (updates keep the stored spec, as upstream), status moves through
the status subresource, and approval conditions through the approval subresource
(`prepare_for_approval_update`). Who asked (spec.username/uid/groups/extra) is filled by the
API server from the request's user.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kybernetes.api.meta import human_duration
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    duplicate,
    invalid,
    not_supported,
    required,
)
from kybernetes.registry._checks import domain_prefixed_path_causes

LEGACY_SIGNER = "kubernetes.io/legacy-unknown"
MIN_EXPIRATION_SECONDS = 600
KEY_USAGES = (
    "any", "cert sign", "client auth", "code signing", "content commitment", "crl sign", "data encipherment",
    "decipher only", "digital signature", "email protection", "encipher only", "ipsec end system",
    "ipsec tunnel", "ipsec user", "key agreement", "key encipherment", "microsoft sgc", "netscape sgc",
    "ocsp signing", "s/mime", "server auth", "signing", "timestamping",
)
CONDITION_TYPES = ("Approved", "Denied", "Failed")
_SPEC = "io.k8s.api.certificates.v1.CertificateSigningRequestSpec"


def csr_condition_cell(obj: Obj) -> str:
    """Pending/Approved/Denied, then ",Failed" and ",Issued" as they apply."""
    types = {c.get("type") for c in dig(obj, "status", "conditions", default=[]) or []}
    status = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        status += ",Failed"
    if dig(obj, "status", "certificate"):
        status += ",Issued"
    return status


def _is_pem_csr(request: Any) -> bool:
    try:
        pem = base64.b64decode(request or "", validate=True)
    except (binascii.Error, ValueError):
        return False
    return b"-----BEGIN CERTIFICATE REQUEST-----" in pem or b"-----BEGIN NEW CERTIFICATE REQUEST-----" in pem


class CertificateSigningRequestStrategy(Strategy):
    """certificates.k8s.io/v1 CertificateSigningRequest."""

    group = "certificates.k8s.io"
    version = "v1"
    kind = "CertificateSigningRequest"
    resource = "certificatesigningrequests"
    singular = "certificatesigningrequest"
    namespaced = False
    short_names = ("csr",)
    subresources = ("status", "approval")
    name_format = "path-segment"
    has_status_split = True
    tracks_generation = False

    columns = (
        NAME_COLUMN,
        AGE_COLUMN,
        column("SignerName", doc=(_SPEC, "signerName")),
        column("Requestor", doc=(_SPEC, "request")),
        column("RequestedDuration", doc=(_SPEC, "expirationSeconds")),
        column("Condition", doc=("io.k8s.api.certificates.v1.CertificateSigningRequestStatus", "conditions")),
    )
    field_selectors = {"spec.signerName": lambda o: dig(o, "spec", "signerName", default="")}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """The spec and status never change through the main resource."""
        for k in ("spec", "status"):
            if k in old:
                new[k] = old[k]
            else:
                new.pop(k, None)

    def prepare_for_approval_update(self, new: Obj, old: Obj) -> None:
        """The approval subresource changes status.conditions only."""
        conditions = dig(new, "status", "conditions")
        self.prepare_for_status_update(new, old)
        status = dict(old.get("status") or {})
        if conditions is not None:
            status["conditions"] = conditions
        else:
            status.pop("conditions", None)
        new["status"] = status

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        if not spec.get("request"):
            causes.append(required("spec.request"))
        elif not _is_pem_csr(spec["request"]):
            causes.append(Cause("FieldValueInvalid", "spec.request",
                                "Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST"))
        signer = spec.get("signerName") or ""
        if not signer:
            causes.append(required("spec.signerName"))
        elif signer == LEGACY_SIGNER:
            causes.append(invalid("spec.signerName", signer, "the legacy signerName is not allowed via this API version"))
        else:
            causes += domain_prefixed_path_causes(signer, "spec.signerName")
        exp = spec.get("expirationSeconds")
        if exp is not None and exp < MIN_EXPIRATION_SECONDS:
            causes.append(invalid("spec.expirationSeconds", exp,
                                  "may not specify a duration less than 600 seconds (10 minutes)"))
        usages = spec.get("usages")
        if not usages:
            causes.append(required("spec.usages"))
        seen: set[str] = set()
        for i, u in enumerate(usages or []):
            if u not in KEY_USAGES:
                causes.append(not_supported(f"spec.usages[{i}]", u, KEY_USAGES))
            if u in seen:
                causes.append(duplicate(f"spec.usages[{i}]", u))
            seen.add(u)
        for i, c in enumerate(dig(obj, "status", "conditions", default=[]) or []):
            t = c.get("type") or ""
            if not t:
                causes.append(required(f"status.conditions[{i}].type"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        types = [c.get("type") for c in dig(new, "status", "conditions", default=[]) or []]
        if "Approved" in types and "Denied" in types:
            causes.append(invalid("status.conditions", "", "Approved and Denied conditions are mutually exclusive"))
        for t in ("Approved", "Denied"):
            if types.count(t) > 1:
                causes.append(duplicate("status.conditions", t))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        exp = spec.get("expirationSeconds")
        return [obj["metadata"]["name"], age_of(obj), spec.get("signerName") or "<none>", spec.get("username") or "",
                human_duration(exp) if exp is not None else "<none>", csr_condition_cell(obj)]
