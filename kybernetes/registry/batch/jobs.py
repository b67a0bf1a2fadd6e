"""Jobs: run pods to completion.

Unless `manualSelector` is true, create generates the selector from the job's UID and labels
the template to match, as upstream does.
"""

from __future__ import annotations

import copy
from typing import Any

from kybernetes.api.meta import human_duration, parse_time
from kybernetes.registry import _workloads, base
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
    immutable,
    invalid,
    nonnegative,
    not_supported,
    required,
)
from kybernetes.registry.core import podspec

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_MODES = ("NonIndexed", "Indexed")
MAX_INT32 = 2**31 - 1


def default_job_spec(spec: Obj) -> None:
    """SetDefaults_Job's spec part (CronJob templates do not get it)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    for rule in dig(spec, "podFailurePolicy", "rules", default=[]) or []:
        for pattern in rule.get("onPodConditions") or []:
            pattern.setdefault("status", "True")
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"


def generate_selector(job: Obj) -> None:
    """Label the template with the job's name and UID and select on the UID."""
    meta = job.get("metadata") or {}
    uid, name = meta.get("uid", ""), meta.get("name", "")
    spec = job.setdefault("spec", {})
    template = spec.setdefault("template", {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)  # user-set labels stay; a conflict fails validation
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = spec.get("selector") or {}
    selector.setdefault("matchLabels", {}).setdefault(CONTROLLER_UID_LABEL, uid)
    spec["selector"] = selector


def validate_job_spec(spec: Obj, path: str, *, template_spec_only: bool = False) -> list[Cause]:
    causes: list[Cause] = []
    for k in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
              "backoffLimitPerIndex", "maxFailedIndexes"):
        causes += nonnegative(f"{path}.{k}", spec.get(k))
    mode = spec.get("completionMode")
    if mode is not None and mode not in COMPLETION_MODES:
        causes.append(not_supported(f"{path}.completionMode", mode, COMPLETION_MODES))
    if mode == "Indexed" and spec.get("completions") is None:
        causes.append(required(f"{path}.completions", "when completion mode is Indexed"))
    prp = spec.get("podReplacementPolicy")
    if prp is not None:
        allowed = ("Failed",) if spec.get("podFailurePolicy") else ("Failed", "TerminatingOrFailed")
        if prp not in allowed:
            causes.append(not_supported(f"{path}.podReplacementPolicy", prp, allowed))
    selector = spec.get("selector")
    if selector is not None:
        causes += _workloads.validate_label_selector(selector, f"{path}.selector")
    elif spec.get("manualSelector") and not template_spec_only:
        causes.append(required(f"{path}.selector"))
    causes += _workloads.validate_template(spec, path, selector=selector, restart_policies=("OnFailure", "Never"),
                                           kind_name=None)
    return causes


def job_status_cell(job: Obj) -> str:
    conditions = dig(job, "status", "conditions", default=[]) or []

    def has(t: str) -> bool:
        for c in conditions:
            if c.get("type") == t:
                return c.get("status") == "True"
        return False

    if has("Complete"):
        return "Complete"
    if has("Failed"):
        return "Failed"
    if dig(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    if has("Suspended"):
        return "Suspended"
    if has("FailureTarget"):
        return "FailureTarget"
    return "Running"


def completions_cell(job: Obj) -> str:
    succeeded = dig(job, "status", "succeeded", default=0) or 0
    completions = dig(job, "spec", "completions")
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = dig(job, "spec", "parallelism", default=0) or 0
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def duration_cell(job: Obj) -> str:
    start = parse_time(dig(job, "status", "startTime", default="") or "")
    if start is None:
        return ""
    # base.now through the module, so a frozen clock (tests) applies
    end = parse_time(dig(job, "status", "completionTime", default="") or "") or base.now()
    return human_duration((end - start).total_seconds())


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

    columns = (
        NAME_COLUMN,
        column("Status", doc="Status of the job."),
        column("Completions", doc=("io.k8s.api.batch.v1.JobStatus", "succeeded")),
        column("Duration", doc="Time required to complete the job."),
        AGE_COLUMN,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        column("Selector", doc=("io.k8s.api.batch.v1.JobSpec", "selector"), priority=1),
    )
    field_selectors = {"status.successful": lambda o: str(dig(o, "status", "succeeded", default=0) or 0)}

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        default_job_spec(spec)
        _workloads.copy_template_labels(obj, spec.get("template"))
        podspec.default_pod_template(spec.get("template"))

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        if not dig(obj, "spec", "manualSelector") and dig(obj, "metadata", "uid"):
            generate_selector(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = validate_job_spec(spec, "spec")
        uid = dig(obj, "metadata", "uid")
        if not spec.get("manualSelector") and uid and spec.get("selector") is not None:
            if dig(spec, "selector", "matchLabels", CONTROLLER_UID_LABEL) != uid:
                causes.append(Cause("FieldValueInvalid", "spec.selector",
                                    f"Invalid value: &{_workloads.go_label_selector(spec['selector'])}: "
                                    "`selector` not auto-generated"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """upstream ValidateJobSpecUpdate, in its order: completions (elastic for Indexed jobs),
        selector, template (scheduling directives mutable while suspended and never started),
        then the fields fixed at creation."""
        causes = self.validate(new)
        ns, os_ = new.get("spec") or {}, old.get("spec") or {}
        if ns.get("completions") != os_.get("completions"):
            if ns.get("completionMode") != "Indexed":
                causes.append(immutable("spec.completions", ns.get("completions")))
            elif ns.get("completions") is not None and ns.get("completions") != ns.get("parallelism"):
                causes.append(invalid("spec.completions", ns.get("completions"),
                                      "can only be modified in tandem with spec.parallelism"))
        causes += _workloads.selector_immutable(new, old)
        if ns.get("template") != os_.get("template"):
            nt, ot = ns.get("template") or {}, copy.deepcopy(os_.get("template") or {})
            if os_.get("suspend") and not dig(old, "status", "startTime"):
                _allow_scheduling_directives(nt, ot)
            if nt != ot:
                causes.append(Cause("FieldValueInvalid", "spec.template",
                                    "Invalid value: core.PodTemplateSpec{...}: field is immutable"))
        for k in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
            if ns.get(k) != os_.get(k):
                causes.append(immutable(f"spec.{k}", ns.get(k)))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        names, images = container_cells(dig(obj, "spec", "template", "spec", "containers"))
        return [obj["metadata"]["name"], job_status_cell(obj), completions_cell(obj), duration_cell(obj),
                age_of(obj), names, images, format_label_selector(dig(obj, "spec", "selector"))]



def _allow_scheduling_directives(new_t: Obj, old_t: Obj) -> None:
    """Copy what a suspended, never-started job may change (node affinity, node selector,
    tolerations, scheduling gates, template labels and annotations) from `new_t` into `old_t`."""
    nspec, ospec = new_t.get("spec") or {}, old_t.setdefault("spec", {})
    naff, oaff = nspec.get("affinity"), ospec.get("affinity")
    if naff is None and oaff is not None:
        oaff.pop("nodeAffinity", None)
        if not oaff:
            ospec.pop("affinity")
    elif naff is not None:
        merged = dict(oaff or {})
        merged.pop("nodeAffinity", None)
        if "nodeAffinity" in naff:
            merged["nodeAffinity"] = naff["nodeAffinity"]
        ospec["affinity"] = merged
    for k in ("nodeSelector", "tolerations", "schedulingGates"):
        ospec.pop(k, None)
        if k in nspec:
            ospec[k] = nspec[k]
    ometa, nmeta = old_t.setdefault("metadata", {}), new_t.get("metadata") or {}
    for k in ("labels", "annotations"):
        ometa.pop(k, None)
        if k in nmeta:
            ometa[k] = nmeta[k]
    if not ometa and "metadata" not in new_t:
        old_t.pop("metadata")
