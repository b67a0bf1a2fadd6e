"""Nodes: the machines pods run on."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class NodeStrategy(Strategy):
    """core/v1 Node."""

    group = ""
    version = "v1"
    kind = "Node"
    resource = "nodes"
    singular = "node"
    namespaced = False
    short_names = ("no",)
    subresources = ("status",)
    future_subresources = ("proxy",)
    has_status_split = True
