"""EndpointSlices: scalable lists of a service's endpoints."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class EndpointSliceStrategy(Strategy):
    """discovery.k8s.io/v1 EndpointSlice."""

    group = "discovery.k8s.io"
    version = "v1"
    kind = "EndpointSlice"
    resource = "endpointslices"
    singular = "endpointslice"
