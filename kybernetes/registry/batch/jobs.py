"""Jobs: run pods to completion."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class JobStrategy(Strategy):
    """batch/v1 Job."""

    group = "batch"
    version = "v1"
    kind = "Job"
    resource = "jobs"
    singular = "job"
    categories = ("all",)
    subresources = ("status",)
    has_status_split = True
