"""CronJobs: Jobs on a schedule."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class CronJobStrategy(Strategy):
    """batch/v1 CronJob."""

    group = "batch"
    version = "v1"
    kind = "CronJob"
    resource = "cronjobs"
    singular = "cronjob"
    short_names = ("cj",)
    categories = ("all",)
    subresources = ("status",)
    has_status_split = True
