"""The CronJob controller (upstream pkg/controller/cronjob, the v2 controller).

For each CronJob: find the most recent scheduled time that has not run yet (after
`status.lastScheduleTime`, or the creation time), skip it when it is older than
`startingDeadlineSeconds`, apply `concurrencyPolicy` (Allow / Forbid: skip while a job
runs / Replace: delete the running jobs first), and create the Job
`<cronjob>-<scheduled time in minutes since the epoch>` from `jobTemplate` with the
annotation `batch.kubernetes.io/cronjob-scheduled-timestamp`.  Status keeps `active`
(references to running jobs), `lastScheduleTime` and `lastSuccessfulTime`; finished
jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted oldest
first.  Schedules are standard five-field cron (names, ranges, steps, @descriptors,
@every) evaluated in `spec.timeZone` (UTC when unset).  The clock is injectable; the
controller requeues each CronJob for its next scheduled time and never polls.
"""

from __future__ import annotations

import copy
import re
import time
import zoneinfo
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Callable, Optional

from kybernetes.client.errors import AlreadyExists, APIStatusError, NotFound
from kybernetes.controllers import _pods
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100  # upstream: more missed start times than this is reported

_NAMES = {
    3: {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))},
    4: {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


# ---------------------------------------------------------------------- schedules
def _field(expr: str, i: int) -> tuple[set[int], bool]:
    """The values of one cron field and whether it was unrestricted ('*' or '?')."""
    lo, hi = _BOUNDS[i]
    names = _NAMES.get(i, {})
    out: set[int] = set()
    star = False

    def num(s: str) -> int:
        return names[s.lower()] if s.lower() in names else int(s)

    for part in expr.split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if rng in ("*", "?"):
            a, b = lo, hi
            star = star or not step_s
        elif "-" in rng:
            x, y = rng.split("-", 1)
            a, b = num(x), num(y)
        else:
            a = num(rng)
            b = hi if step_s else a
        if i == 4 and b == 7:  # Sunday as 7
            out.add(0)
            b = 6
        out.update(range(a, b + 1, step))
    return out, star


class Schedule:
    """A parsed cron schedule; `next(t)` is the first activation strictly after t."""

    def __init__(self, spec: str) -> None:
        s = spec.strip()
        self.every: Optional[float] = None
        if s.startswith("@every "):
            total = 0.0
            for num, unit in re.findall(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)", s[7:].strip()):
                total += float(num) * _UNITS[unit]
            self.every = max(1.0, float(int(total)))
            return
        s = _DESCRIPTORS.get(s, s)
        fields = s.split()
        if len(fields) != 5:
            raise ValueError(f"expected exactly 5 fields, found {len(fields)}: [{s}]")
        parsed = [_field(f, i) for i, f in enumerate(fields)]
        (self.minutes, _), (self.hours, _), (self.dom, self.dom_star), (self.months, _), (self.dow, self.dow_star) = parsed

    def _day_matches(self, t: datetime) -> bool:
        dom_ok = t.day in self.dom
        dow_ok = (t.isoweekday() % 7) in self.dow
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def next(self, after: datetime) -> Optional[datetime]:
        if self.every is not None:
            return (after + timedelta(seconds=self.every)).replace(microsecond=0)
        tz = after.tzinfo
        t = after.replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        limit = t.year + 5
        while t.year <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            return t.replace(tzinfo=tz)
        return None


def zone(name: Optional[str]) -> tzinfo:
    if not name:
        return timezone.utc
    return zoneinfo.ZoneInfo(name)


def most_recent_schedule(sched: Schedule, earliest: float, now: float,
                         tz: tzinfo = timezone.utc) -> tuple[Optional[float], int, Optional[float]]:
    """(most recent activation in (earliest, now], how many there were, next activation
    after now).  Upstream mostRecentScheduleTime."""
    t = datetime.fromtimestamp(earliest, tz)
    last: Optional[float] = None
    missed = 0
    while True:
        n = sched.next(t)
        if n is None:
            return last, missed, None
        ts = n.timestamp()
        if ts > now:
            return last, missed, ts
        last, missed, t = ts, missed + 1, n
        if missed > 10_000:  # a very old start: jump close to now
            t = datetime.fromtimestamp(now - 3600 * 24 * 2, tz)
            missed = MAX_MISSED + 1


def job_name(cronjob: str, scheduled: float) -> str:
    return f"{cronjob}-{int(scheduled // 60)}"


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_finished(job: Obj) -> Optional[str]:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def jobs_to_prune(jobs: list[Obj], successful_limit: Optional[int], failed_limit: Optional[int]) -> list[Obj]:
    """Finished jobs beyond the history limits, oldest first (by start, then creation)."""
    def age(j: Obj) -> tuple:
        st = j.get("status") or {}
        return (st.get("startTime") or j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"])

    out: list[Obj] = []
    for kind, limit in (("Complete", successful_limit), ("Failed", failed_limit)):
        if limit is None:
            continue
        done = sorted((j for j in jobs if job_finished(j) == kind), key=age)
        if len(done) > limit:
            out += done[:len(done) - limit]
    return out


def job_from_template(cj: Obj, scheduled: float, tz: tzinfo) -> Obj:
    tmpl = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = tmpl.get("metadata") or {}
    meta: Obj = {"name": job_name(cj["metadata"]["name"], scheduled), "namespace": cj["metadata"]["namespace"],
                 "labels": dict(tmeta.get("labels") or {}),
                 "annotations": {**(tmeta.get("annotations") or {}),
                                 SCHEDULED_TIMESTAMP_ANNOTATION: datetime.fromtimestamp(scheduled, tz).isoformat()},
                 "ownerReferences": [_pods.controller_ref(cj, "batch/v1", "CronJob")]}
    if not meta["labels"]:
        del meta["labels"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": copy.deepcopy(tmpl.get("spec") or {})}


def job_ref(job: Obj) -> Obj:
    m = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": m["name"], "namespace": m["namespace"],
            "uid": m["uid"], "resourceVersion": m.get("resourceVersion")}


# ---------------------------------------------------------------------- controller
class CronJobController(Controller):
    name = "cronjob"
    workers = 5

    def __init__(self, client: Any, informers: Any = None, *, clock: Callable[[], float] = time.time,
                 **kw: Any) -> None:
        self.clock = clock
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.cj_api = self.resource("batch", "v1", "cronjobs")
        self.jobs_api = self.resource("batch", "v1", "jobs")
        self.cronjobs = self.watch("batch", "v1", "cronjobs")
        self.jobs = self.watch("batch", "v1", "jobs", enqueue=self._owner_key)

    def _owner_key(self, job: Obj) -> Optional[str]:
        ref = _pods.get_controller_of(job)
        if ref is None or ref.get("kind") != "CronJob":
            return None
        return f"{job['metadata'].get('namespace')}/{ref.get('name')}"

    async def reconcile(self, key: str) -> None:
        cj = self.cronjobs.get(key)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return
        now = self.clock()
        spec = cj.get("spec") or {}
        uid = cj["metadata"]["uid"]
        ns = cj["metadata"]["namespace"]
        owned = [j for j in self.jobs.by_namespace(ns) if (_pods.get_controller_of(j) or {}).get("uid") == uid]
        status = copy.deepcopy(cj.get("status") or {})
        old = copy.deepcopy(status)

        # active list and lastSuccessfulTime from the owned jobs
        running = [j for j in owned if not job_finished(j) and not j["metadata"].get("deletionTimestamp")]
        by_uid = {j["metadata"]["uid"]: j for j in owned}
        last_ok = _pods.parse_time(status.get("lastSuccessfulTime"))
        was_active = {r.get("uid") for r in old.get("active") or []}
        for j in owned:
            if j["metadata"]["uid"] in was_active and job_finished(j):
                self.recorder.event(cj, "Normal", "SawCompletedJob",
                                    f"Saw completed job: {j['metadata']['name']}, condition: {job_finished(j)}",
                                    action="Observe", related=j)
            if job_finished(j) == "Complete":
                ct = _pods.parse_time((j.get("status") or {}).get("completionTime"))
                if ct is not None and (last_ok is None or ct > last_ok):
                    last_ok = ct
        if last_ok is not None:
            status["lastSuccessfulTime"] = rfc3339(last_ok)

        # history limits
        for j in jobs_to_prune(owned, spec.get("successfulJobsHistoryLimit"), spec.get("failedJobsHistoryLimit")):
            await self._delete_job(cj, j)

        try:
            tz = zone(spec.get("timeZone"))
            sched = Schedule(spec.get("schedule") or "")
        except (ValueError, zoneinfo.ZoneInfoNotFoundError) as e:
            self.log.warning("%s: unparseable schedule or time zone: %s", key, e)
            await self._write(cj, old, self._with_active(status, running))
            return

        requeue: Optional[float] = None
        if not spec.get("suspend"):
            earliest = _pods.parse_time(status.get("lastScheduleTime")) or \
                _pods.parse_time(cj["metadata"].get("creationTimestamp")) or now
            sds = spec.get("startingDeadlineSeconds")
            if sds is not None:
                earliest = max(earliest, now - int(sds))
            scheduled, missed, nxt = most_recent_schedule(sched, earliest, now, tz)
            if missed > MAX_MISSED:
                self.log.warning("%s: too many missed start times (%d)", key, missed)
                self.recorder.event(cj, "Warning", "TooManyMissedTimes",
                                    f"too many missed start times: {missed}. Set or decrease "
                                    ".spec.startingDeadlineSeconds or check clock skew", action="Schedule")
            if nxt is not None:
                requeue = max(0.0, nxt - now) + 0.001
            if scheduled is not None and not (sds is not None and scheduled < now - int(sds)):
                policy = spec.get("concurrencyPolicy") or "Allow"
                name = job_name(cj["metadata"]["name"], scheduled)
                if any(j["metadata"]["name"] == name for j in owned):
                    status["lastScheduleTime"] = rfc3339(scheduled)  # already created (maybe by a prior pass)
                elif policy == "Forbid" and running:
                    # skipped; the next schedule is tried in its time
                    self.recorder.event(cj, "Normal", "JobAlreadyActive", "Not starting job because prior execution is "
                                        "running and concurrency policy is Forbid", action="Schedule")
                else:
                    if policy == "Replace":
                        for j in running:
                            await self._delete_job(cj, j)
                        running = []
                    try:
                        created = await self.jobs_api.create(job_from_template(cj, scheduled, tz), ns)
                    except AlreadyExists:
                        created = None
                    except APIStatusError as e:
                        self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {e.message or e}",
                                            action="Create")
                        raise
                    if created is not None:
                        self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}",
                                            action="Create", related=created)
                        running.append(created)
                        by_uid[created["metadata"]["uid"]] = created
                    status["lastScheduleTime"] = rfc3339(scheduled)
        await self._write(cj, old, self._with_active(status, running))
        if requeue is not None:
            raise Requeue(after=requeue)

    async def _delete_job(self, cj: Obj, job: Obj) -> None:
        try:
            await self.jobs_api.delete(job["metadata"]["name"], cj["metadata"]["namespace"], propagation_policy="Background")
        except NotFound:
            return
        except APIStatusError as e:
            self.recorder.event(cj, "Warning", "FailedDelete", f"Deleted job: {e.message or e}", action="Delete")
            raise
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}",
                            action="Delete", related=job)

    @staticmethod
    def _with_active(status: Obj, running: list[Obj]) -> Obj:
        refs = sorted((job_ref(j) for j in running), key=lambda r: r["name"])
        for r in refs:
            r.pop("resourceVersion", None)
        if refs:
            status["active"] = refs
        else:
            status.pop("active", None)
        return status

    async def _write(self, cj: Obj, old: Obj, new: Obj) -> None:
        if old == new:
            return
        body = copy.deepcopy(cj)
        body["status"] = new
        try:
            await self.cj_api.update_status(body)
        except NotFound:
            pass
