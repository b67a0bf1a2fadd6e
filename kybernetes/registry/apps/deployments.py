"""Deployments: declarative rollouts of ReplicaSets."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class DeploymentStrategy(Strategy):
    """apps/v1 Deployment."""

    group = "apps"
    version = "v1"
    kind = "Deployment"
    resource = "deployments"
    singular = "deployment"
    short_names = ("deploy",)
    categories = ("all",)
    subresources = ("status", "scale")
    has_status_split = True
