"""Bindings: the legacy create-only resource that binds a pod to a node."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class BindingStrategy(Strategy):
    """core/v1 Binding."""

    group = ""
    version = "v1"
    kind = "Binding"
    resource = "bindings"
    singular = "binding"
    verbs = ("create",)
