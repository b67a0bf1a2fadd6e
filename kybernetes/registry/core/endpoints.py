"""Endpoints: the legacy list of addresses backing a service."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class EndpointsStrategy(Strategy):
    """core/v1 Endpoints."""

    group = ""
    version = "v1"
    kind = "Endpoints"
    resource = "endpoints"
    singular = "endpoints"
    short_names = ("ep",)
