"""CronJobs: Jobs on a schedule."""

from __future__ import annotations

import zoneinfo
from typing import Any

from kybernetes.registry.base import (
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    container_cells,
    dig,
    format_label_selector,
    invalid,
    nonnegative,
    not_supported,
    required,
    since,
)
from kybernetes.registry.batch.cron import schedule_error
from kybernetes.registry.batch.jobs import validate_job_spec
from kybernetes.registry.core import podspec

CONCURRENCY = ("Allow", "Forbid", "Replace")
MAX_NAME = 52  # Job names get an 11-character suffix and must stay within 63
_SPEC = "io.k8s.api.batch.v1.CronJobSpec"
_STATUS = "io.k8s.api.batch.v1.CronJobStatus"


def _bool_cell(value: Any) -> str:
    if value is None:
        return "<unset>"
    return "True" if value else "False"


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

    columns = (
        NAME_COLUMN,
        column("Schedule", doc=(_SPEC, "schedule")),
        column("Timezone", doc=(_SPEC, "timeZone")),
        column("Suspend", "boolean", (_SPEC, "suspend")),
        column("Active", "integer", (_STATUS, "active")),
        column("Last Schedule", doc=(_STATUS, "lastScheduleTime")),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        column("Selector", doc=("io.k8s.api.batch.v1.JobSpec", "selector"), priority=1),
    )

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        podspec.default_pod_template(dig(spec, "jobTemplate", "spec", "template"))

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        name = dig(obj, "metadata", "name", default="")
        if len(name) > MAX_NAME:
            causes.append(invalid("metadata.name", name, f"must be no more than {MAX_NAME} characters"))
        schedule = spec.get("schedule") or ""
        if not schedule:
            causes.append(required("spec.schedule"))
        elif "TZ=" in schedule:
            causes.append(invalid("spec.schedule", schedule,
                                  "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
        else:
            err = schedule_error(schedule)
            if err:
                causes.append(invalid("spec.schedule", schedule, err))
        tz = spec.get("timeZone")
        if tz is not None:
            if tz == "" or tz.lower() == "local":
                causes.append(invalid("spec.timeZone", tz, "timeZone must be an explicit time zone as defined in "
                                                           "https://www.iana.org/time-zones"))
            else:
                try:
                    zoneinfo.ZoneInfo(tz)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    causes.append(invalid("spec.timeZone", tz, f"unknown time zone {tz}"))
        cp = spec.get("concurrencyPolicy") or ""
        if not cp:
            causes.append(required("spec.concurrencyPolicy"))
        elif cp not in CONCURRENCY:
            causes.append(not_supported("spec.concurrencyPolicy", cp, CONCURRENCY))
        for k in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            causes += nonnegative(f"spec.{k}", spec.get(k))
        job_spec = dig(spec, "jobTemplate", "spec") or {}
        if job_spec.get("manualSelector"):
            causes.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
        causes += validate_job_spec(job_spec, "spec.jobTemplate.spec", template_spec_only=True)
        return causes

    def row(self, obj: Obj) -> list[Any]:
        spec = obj.get("spec") or {}
        names, images = container_cells(dig(spec, "jobTemplate", "spec", "template", "spec", "containers"))
        last = dig(obj, "status", "lastScheduleTime")
        return [
            obj["metadata"]["name"],
            spec.get("schedule") or "",
            spec.get("timeZone") if spec.get("timeZone") is not None else "<none>",
            _bool_cell(spec.get("suspend")),
            len(dig(obj, "status", "active", default=[]) or []),
            since(last) if last else "<none>",
            age_of(obj),
            names,
            images,
            format_label_selector(dig(spec, "jobTemplate", "spec", "selector")),
        ]
