"""Secrets: sensitive data, typed."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class SecretStrategy(Strategy):
    """core/v1 Secret."""

    group = ""
    version = "v1"
    kind = "Secret"
    resource = "secrets"
    singular = "secret"
