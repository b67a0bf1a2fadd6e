"""CertificateSigningRequests: ask a signer for a certificate."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


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
