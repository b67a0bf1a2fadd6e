"""PodDisruptionBudgets: limits on voluntary disruptions."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class PodDisruptionBudgetStrategy(Strategy):
    """policy/v1 PodDisruptionBudget."""

    group = "policy"
    version = "v1"
    kind = "PodDisruptionBudget"
    resource = "poddisruptionbudgets"
    singular = "poddisruptionbudget"
    short_names = ("pdb",)
    subresources = ("status",)
    has_status_split = True
