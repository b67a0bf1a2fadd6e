"""The Job controller (upstream pkg/controller/job): run pods to completion.

* NonIndexed jobs keep min(parallelism, completions - succeeded) pods running; a job
  without `completions` (a work queue) is done once any pod succeeded and none run.
* Indexed jobs give every pod an index (annotation and label
  `batch.kubernetes.io/job-completion-index`, env JOB_COMPLETION_INDEX, hostname
  `<job>-<index>`, generateName `<job>-<index>-`) and track `status.completedIndexes`.
* Pods carry the `batch.kubernetes.io/job-tracking` finalizer.  A finished pod is first
  recorded by UID in `status.uncountedTerminatedPods`, then its finalizer is removed,
  then it moves into the succeeded/failed counters, so no pod counts twice or is lost.
* Failures: pods are re-created after an exponential back-off (10s doubling, at most
  6 min; `backoff_base` is injectable); `backoffLimit`, `activeDeadlineSeconds` and
  `podFailurePolicy` (FailJob / Ignore / Count on exit codes and pod conditions) first
  set the FailureTarget condition, delete the remaining pods, then Failed.  Success sets
  SuccessCriteriaMet first, then Complete with `completionTime`.
* `suspend` deletes active pods and sets Suspended; resuming resets `startTime`.
* `ttlSecondsAfterFinished`: a finished job is deleted (foreground) once its TTL passes
  (upstream's ttl-after-finished controller, done here on the same informer).
"""

from __future__ import annotations

import copy
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional

from kybernetes.api.selectors import from_label_selector
from kybernetes.client.errors import Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers import _pods
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]

JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
DEFAULT_BACKOFF = 10.0  # upstream DefaultJobPodFailureBackOff
MAX_BACKOFF = 360.0  # six minutes, as the Job documentation says

COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"
FAILURE_TARGET, SUCCESS_CRITERIA_MET = "FailureTarget", "SuccessCriteriaMet"


# ---------------------------------------------------------------------- pure helpers
def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def backoff_delay(failures_after_last_success: int, base: float = DEFAULT_BACKOFF,
                  cap: float = MAX_BACKOFF) -> float:
    """Delay before the next pod after n consecutive failures: base * 2^(n-1), capped."""
    if failures_after_last_success <= 0:
        return 0.0
    return min(cap, base * (2 ** min(failures_after_last_success - 1, 30)))


def parse_indexes(s: Optional[str]) -> set[int]:
    """'1,3-5,7' -> {1, 3, 4, 5, 7}."""
    out: set[int] = set()
    for part in (s or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        else:
            out.add(int(part))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """{1, 3, 4, 5, 7} -> '1,3-5,7' (upstream's compressed interval list)."""
    xs = sorted(set(indexes))
    parts: list[str] = []
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        parts.append(str(xs[i]) if i == j else f"{xs[i]}-{xs[j]}")
        i = j + 1
    return ",".join(parts)


def pod_index(pod: Obj) -> Optional[int]:
    meta = pod.get("metadata") or {}
    v = (meta.get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    if v is None:
        v = (meta.get("labels") or {}).get(COMPLETION_INDEX_LABEL)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _terminated_states(pod: Obj) -> list[tuple[str, int]]:
    st = pod.get("status") or {}
    out = []
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        term = (cs.get("state") or {}).get("terminated")
        if term is not None and term.get("exitCode") is not None:
            out.append((cs.get("name") or "", int(term["exitCode"])))
    return out


def match_pod_failure_policy(policy: Optional[Obj], pod: Obj) -> tuple[Optional[str], Optional[str]]:
    """(action, message) of the first podFailurePolicy rule matching a failed pod, or
    (None, None).  Exit code rules look at terminated containers with a non-zero exit
    code (optionally one container by name); condition rules at pod conditions."""
    if not policy:
        return None, None
    meta = pod.get("metadata") or {}
    conds = (pod.get("status") or {}).get("conditions") or []
    for i, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        ec = rule.get("onExitCodes")
        if ec is not None:
            values = set(int(v) for v in ec.get("values") or [])
            op = ec.get("operator")
            for name, code in _terminated_states(pod):
                if code == 0 or (ec.get("containerName") and ec["containerName"] != name):
                    continue
                if (op == "In" and code in values) or (op == "NotIn" and code not in values):
                    return action, (f"Container {name} for pod {meta.get('namespace')}/{meta.get('name')} "
                                    f"failed with exit code {code} matching {action} rule at index {i}")
            continue
        for pattern in rule.get("onPodConditions") or []:
            want = pattern.get("status") or "True"
            for c in conds:
                if c.get("type") == pattern.get("type") and c.get("status") == want:
                    return action, (f"Pod {meta.get('namespace')}/{meta.get('name')} has condition "
                                    f"{c.get('type')} matching {action} rule at index {i}")
    return None, None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """Upstream isPodFailed: Failed pods; unless only failed pods are replaced, pods
    being deleted before they succeeded count as failed too."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed":
        return True
    if (job.get("spec") or {}).get("podReplacementPolicy") == "Failed":
        return False
    return bool((pod.get("metadata") or {}).get("deletionTimestamp")) and phase != "Succeeded"


def find_condition(job: Obj, ctype: str) -> Optional[Obj]:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def has_condition(job: Obj, ctype: str) -> bool:
    c = find_condition(job, ctype)
    return c is not None and c.get("status") == "True"


def is_finished(job: Obj) -> bool:
    return has_condition(job, COMPLETE) or has_condition(job, FAILED)


def set_condition(status: Obj, ctype: str, cstatus: str, reason: str, message: str, now: str) -> bool:
    """Add or update a condition; True when something changed.  lastTransitionTime moves
    only when the status does."""
    conds = status.setdefault("conditions", [])
    for c in conds:
        if c.get("type") == ctype:
            if c.get("status") == cstatus and c.get("reason") == reason and c.get("message") == message:
                return False
            if c.get("status") != cstatus:
                c["lastTransitionTime"] = now
            c.update(status=cstatus, reason=reason, message=message, lastProbeTime=now)
            return True
    conds.append({"type": ctype, "status": cstatus, "reason": reason, "message": message,
                  "lastProbeTime": now, "lastTransitionTime": now})
    return True


def finish_time(job: Obj) -> Optional[float]:
    st = job.get("status") or {}
    if st.get("completionTime"):
        return _pods.parse_time(st["completionTime"])
    for t in (COMPLETE, FAILED):
        c = find_condition(job, t)
        if c is not None and c.get("status") == "True":
            return _pods.parse_time(c.get("lastTransitionTime"))
    return None


# ---------------------------------------------------------------------- controller
class JobController(Controller):
    name = "job"
    workers = 5

    def __init__(self, client: Any, informers: Any = None, *, clock: Callable[[], float] = time.time,
                 backoff_base: float = DEFAULT_BACKOFF, backoff_cap: float = MAX_BACKOFF, **kw: Any) -> None:
        self.clock = clock
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.expectations = _pods.Expectations()
        # pod UIDs whose finalizer we removed but the informer has not shown yet
        self._finalizers_removed: set[str] = set()
        # job key -> (failures after the last success, time of the last failure)
        self._backoff: dict[str, tuple[int, float]] = {}
        self.jobs_api = self.resource("batch", "v1", "jobs")
        self.pods_api = self.resource("", "v1", "pods")
        self.jobs = self.watch("batch", "v1", "jobs")
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    # ------------------------------------------------------------------ pod events
    def _job_key(self, pod: Obj) -> Optional[str]:
        ref = _pods.get_controller_of(pod)
        if ref is None or ref.get("kind") != "Job" or not str(ref.get("apiVersion", "")).startswith("batch/"):
            return None
        key = f"{pod['metadata'].get('namespace')}/{ref.get('name')}"
        job = self.jobs.get(key)
        if job is None or job["metadata"].get("uid") != ref.get("uid"):
            return None
        return key

    def _pod_added(self, pod: Obj) -> None:
        key = self._job_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
        self._seen_finalizer_state(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._seen_finalizer_state(new)
        for p in (old, new):
            key = self._job_key(p)
            if key is not None:
                self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        self._finalizers_removed.discard(pod["metadata"].get("uid"))
        key = self._job_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.enqueue(key)

    def _seen_finalizer_state(self, pod: Obj) -> None:
        if JOB_TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
            self._finalizers_removed.discard(pod["metadata"].get("uid"))

    # ------------------------------------------------------------------ sync
    async def reconcile(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None:
            self.expectations.delete(key)
            self._backoff.pop(key, None)
            return
        if job["metadata"].get("deletionTimestamp"):
            await self._release_all(job)
            return
        now = self.clock()
        if is_finished(job):
            await self._release_all(job)
            await self._ttl(job, now)
            return
        ns = job["metadata"]["namespace"]
        spec = job.get("spec") or {}
        ref = _pods.controller_ref(job, "batch/v1", "Job")
        selector = from_label_selector(spec.get("selector"))
        candidates = [p for p in self.pods.by_namespace(ns)]

        async def recheck() -> Optional[Obj]:
            try:
                return await self.jobs_api.get(job["metadata"]["name"], ns)
            except NotFound:
                return None

        pods = await _pods.claim(self.pods_api, job, selector, candidates, ref, recheck=recheck)
        status = copy.deepcopy(job.get("status") or {})
        old_status = copy.deepcopy(status)
        nows = rfc3339(now)
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        suspended = bool(spec.get("suspend"))

        # ---- 1. newly finished pods -> uncountedTerminatedPods
        unc = status.get("uncountedTerminatedPods") or {}
        unc_succ, unc_fail = set(unc.get("succeeded") or []), set(unc.get("failed") or [])
        policy = spec.get("podFailurePolicy")
        failure_target: Optional[tuple[str, str]] = None
        ignored: list[Obj] = []
        to_release: list[Obj] = []
        new_succ = new_fail = 0
        for p in pods:
            uid = p["metadata"]["uid"]
            if JOB_TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or []) or uid in self._finalizers_removed:
                continue
            phase = (p.get("status") or {}).get("phase")
            if uid in unc_succ or uid in unc_fail:
                to_release.append(p)
                continue
            if phase == "Succeeded":
                unc_succ.add(uid)
                new_succ += 1
                to_release.append(p)
            elif is_pod_failed(p, job):
                action, msg = (match_pod_failure_policy(policy, p) if phase == "Failed" else (None, None))
                if action == "Ignore":
                    ignored.append(p)
                    to_release.append(p)
                    continue
                if action == "FailJob" and failure_target is None:
                    failure_target = ("PodFailurePolicy", msg or "")
                unc_fail.add(uid)
                new_fail += 1
                to_release.append(p)

        # back-off bookkeeping (in memory, as upstream's backoff store)
        fails, last = self._backoff.get(key, (0, 0.0))
        if new_succ:
            fails = 0
        if new_fail:
            fails, last = fails + new_fail, now
        self._backoff[key] = (fails, last)

        # ---- 2. counters and completion
        succeeded = int(status.get("succeeded") or 0) + len(unc_succ)
        failed = int(status.get("failed") or 0) + len(unc_fail)
        completed = parse_indexes(status.get("completedIndexes")) if indexed else set()
        if indexed:
            by_uid = {p["metadata"]["uid"]: p for p in pods}
            for uid in unc_succ:
                p = by_uid.get(uid)
                idx = pod_index(p) if p is not None else None
                if idx is not None and completions is not None and idx < int(completions):
                    completed.add(idx)
        active = [p for p in pods if _pods.is_pod_active(p)]
        terminating = [p for p in pods if p["metadata"].get("deletionTimestamp")
                       and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]

        if status.get("startTime") is None and not suspended:
            status["startTime"] = nows

        if failure_target is None and not has_condition(job, FAILURE_TARGET) and not has_condition(job, SUCCESS_CRITERIA_MET):
            backoff_limit = spec.get("backoffLimit")
            if backoff_limit is not None and failed > int(backoff_limit):
                failure_target = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            else:
                ads = spec.get("activeDeadlineSeconds")
                started = _pods.parse_time(status.get("startTime"))
                if ads is not None and started is not None and not suspended and now >= started + int(ads):
                    failure_target = ("DeadlineExceeded", "Job was active longer than specified deadline")
        if failure_target is not None:
            set_condition(status, FAILURE_TARGET, "True", failure_target[0], failure_target[1], nows)

        if not has_condition({"status": status}, FAILURE_TARGET) and not has_condition({"status": status}, SUCCESS_CRITERIA_MET):
            if indexed:
                done = completions is not None and len(completed) >= int(completions)
            elif completions is None:
                done = succeeded > 0 and not active
            else:
                done = succeeded >= int(completions)
            if done:
                set_condition(status, SUCCESS_CRITERIA_MET, "True", "CompletionsReached",
                              "Reached expected number of succeeded pods", nows)

        finishing = has_condition({"status": status}, FAILURE_TARGET) or has_condition({"status": status}, SUCCESS_CRITERIA_MET)

        # ---- 3. suspend / resume condition
        if not finishing:
            if suspended:
                set_condition(status, SUSPENDED, "True", "JobSuspended", "Job suspended", nows)
            elif has_condition({"status": status}, SUSPENDED):
                set_condition(status, SUSPENDED, "False", "JobResumed", "Job resumed", nows)
                status["startTime"] = nows

        # ---- 4. write uncounted UIDs before touching finalizers
        status["uncountedTerminatedPods"] = {k: v for k, v in
                                             (("succeeded", sorted(unc_succ)), ("failed", sorted(unc_fail))) if v}
        requeue_after: Optional[float] = None
        manage_err: Optional[BaseException] = None
        if not finishing and self.expectations.satisfied(key):
            if suspended:
                await self._delete_pods(key, active, job)
            else:
                requeue_after, manage_err = await self._manage(key, job, active, succeeded, completed, now)
        elif finishing:
            await self._delete_pods(key, active, job)

        status["active"] = len(active) if not (finishing or suspended) else 0
        status["ready"] = sum(1 for p in active if _pods.is_pod_ready(p)) if not (finishing or suspended) else 0
        status["terminating"] = len(terminating) + (len(active) if (finishing or suspended) else 0)
        status["succeeded"], status["failed"] = int(old_status.get("succeeded") or 0), int(old_status.get("failed") or 0)
        if indexed:
            status["completedIndexes"] = format_indexes(parse_indexes(old_status.get("completedIndexes")))
        job = await self._write_status(job, old_status, status)

        # ---- 5. remove finalizers, then count
        released = await self._remove_finalizers(to_release)
        tracked = {p["metadata"]["uid"] for p in pods
                   if JOB_TRACKING_FINALIZER in (p["metadata"].get("finalizers") or [])
                   and p["metadata"]["uid"] not in self._finalizers_removed}
        released |= (unc_succ | unc_fail) - tracked  # gone, or released earlier
        if released or ignored:
            st = copy.deepcopy(job.get("status") or {})
            before = copy.deepcopy(st)
            moved_s = {u for u in unc_succ if u in released}
            moved_f = {u for u in unc_fail if u in released}
            st["succeeded"] = int(st.get("succeeded") or 0) + len(moved_s)
            st["failed"] = int(st.get("failed") or 0) + len(moved_f)
            if indexed:
                st["completedIndexes"] = format_indexes(completed)
            rest = {"succeeded": sorted(unc_succ - moved_s), "failed": sorted(unc_fail - moved_f)}
            st["uncountedTerminatedPods"] = {k: v for k, v in rest.items() if v}
            job = await self._write_status(job, before, st)

        # ---- 6. terminal conditions once nothing runs and everything is counted
        st = copy.deepcopy(job.get("status") or {})
        unc_left = st.get("uncountedTerminatedPods") or {}
        if finishing and not active and not terminating and not unc_left.get("succeeded") and not unc_left.get("failed"):
            before = copy.deepcopy(st)
            ft = find_condition(job, FAILURE_TARGET)
            if ft is not None and ft.get("status") == "True":
                set_condition(st, FAILED, "True", ft.get("reason") or "", ft.get("message") or "", nows)
            else:
                set_condition(st, COMPLETE, "True", "CompletionsReached", "Reached expected number of succeeded pods",
                              nows)
                st["completionTime"] = nows
            st["active"] = st["ready"] = st["terminating"] = 0
            job = await self._write_status(job, before, st)
            if ft is not None and ft.get("status") == "True":
                self.recorder.event(job, "Warning", ft.get("reason") or "Failed", ft.get("message") or "", action="Finish")
            else:
                self.recorder.event(job, "Normal", "Completed", "Job completed", action="Finish")
            await self._ttl(job, now)
            return
        if manage_err is not None:
            raise Requeue(reason=f"{key}: {manage_err}")
        deadline_left: Optional[float] = None
        ads = spec.get("activeDeadlineSeconds")
        started = _pods.parse_time((job.get("status") or {}).get("startTime"))
        if ads is not None and started is not None and not finishing and not suspended:
            deadline_left = max(0.0, started + int(ads) - now) + 0.001
        waits = [w for w in (requeue_after, deadline_left) if w is not None]
        if waits:
            raise Requeue(after=min(waits))

    async def _manage(self, key: str, job: Obj, active: list[Obj], succeeded: int, completed: set[int],
                      now: float) -> tuple[Optional[float], Optional[BaseException]]:
        spec = job.get("spec") or {}
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism") if spec.get("parallelism") is not None else 1)
        indexed = spec.get("completionMode") == "Indexed"
        if indexed:
            running = {pod_index(p) for p in active}
            missing = [i for i in range(int(completions or 0)) if i not in completed and i not in running]
            want = max(0, min(parallelism, int(completions or 0) - len(completed)) - len(active))
            to_create: list[Optional[int]] = missing[:want]
            # duplicated or out-of-range indexes go
            seen: set[int] = set()
            extra = []
            for p in sorted(active, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
                i = pod_index(p)
                if i is None or i in seen or i in completed or i >= int(completions or 0):
                    extra.append(p)
                elif i is not None:
                    seen.add(i)
        else:
            if completions is None:
                want_active = len(active) if succeeded > 0 else parallelism
            else:
                want_active = max(0, min(parallelism, int(completions) - succeeded))
            extra = []
            if len(active) > want_active:
                extra = _pods.pods_to_delete(active, [], len(active) - want_active)
            to_create = [None] * max(0, want_active - len(active))
        if extra:
            await self._delete_pods(key, extra, job)
        if not to_create:
            return None, None
        fails, last = self._backoff.get(key, (0, 0.0))
        delay = backoff_delay(fails, self.backoff_base, self.backoff_cap)
        if fails and now < last + delay:
            return last + delay - now, None
        template = spec.get("template") or {}
        ref = _pods.controller_ref(job, "batch/v1", "Job")
        queue = list(to_create)
        err = await _pods.create_pods(self, key, job, len(to_create),
                                      lambda: self.pod_for(job, template, ref, queue.pop(0)))
        return None, err

    @staticmethod
    def pod_for(job: Obj, template: Obj, ref: Obj, index: Optional[int]) -> Obj:
        """The pod for one slot of the job (index None: NonIndexed)."""
        pod = _pods.pod_from_template(template, job, ref)
        meta = pod["metadata"]
        meta["finalizers"] = list(meta.get("finalizers") or []) + [JOB_TRACKING_FINALIZER]
        if index is not None:
            name = job["metadata"]["name"]
            meta["generateName"] = f"{name}-{index}-"
            meta.setdefault("annotations", {})[COMPLETION_INDEX_ANNOTATION] = str(index)
            meta.setdefault("labels", {})[COMPLETION_INDEX_LABEL] = str(index)
            spec = pod["spec"]
            if not spec.get("hostname"):
                spec["hostname"] = f"{name}-{index}"
            env = {"name": COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.labels['{COMPLETION_INDEX_LABEL}']"}}}
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                if not any(e.get("name") == COMPLETION_INDEX_ENV for e in c.get("env") or []):
                    c["env"] = [env] + list(c.get("env") or [])
        return pod

    async def _delete_pods(self, key: str, pods: list[Obj], job: Optional[Obj] = None) -> None:
        if not pods:
            return
        self.expectations.expect_deletions(key, [object_key(p) for p in pods])
        await _pods.delete_pods(self, key, job, pods)  # failures are seen again on the next sync

    async def _remove_finalizers(self, pods: list[Obj]) -> set[str]:
        """Remove the tracking finalizer; the UIDs that no longer carry it."""
        done: set[str] = set()
        for p in pods:
            meta = p["metadata"]
            rest = [f for f in meta.get("finalizers") or [] if f != JOB_TRACKING_FINALIZER]
            try:
                await self.pods_api.patch(meta["name"], {"metadata": {
                    "finalizers": rest or None, "resourceVersion": meta.get("resourceVersion")}},
                    namespace=meta["namespace"])
            except NotFound:
                pass
            except Conflict:
                try:
                    fresh = await self.pods_api.get(meta["name"], meta["namespace"])
                except NotFound:
                    pass
                else:
                    if fresh["metadata"].get("uid") == meta["uid"] and \
                            JOB_TRACKING_FINALIZER in (fresh["metadata"].get("finalizers") or []):
                        continue  # next sync retries
            self._finalizers_removed.add(meta["uid"])
            done.add(meta["uid"])
        return done

    async def _release_all(self, job: Obj) -> None:
        """A finished or deleted job keeps no finalizer on its pods."""
        uid = job["metadata"]["uid"]
        mine = [p for p in self.pods.by_namespace(job["metadata"].get("namespace") or "")
                if (_pods.get_controller_of(p) or {}).get("uid") == uid
                and JOB_TRACKING_FINALIZER in (p["metadata"].get("finalizers") or [])
                and p["metadata"]["uid"] not in self._finalizers_removed]
        await self._remove_finalizers(mine)

    async def _ttl(self, job: Obj, now: float) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        done = finish_time(job)
        if done is None:
            return
        left = done + int(ttl) - now
        if left > 0:
            raise Requeue(after=left)
        try:
            await self.jobs_api.delete(job["metadata"]["name"], job["metadata"]["namespace"],
                                       propagation_policy="Foreground",
                                       preconditions={"uid": job["metadata"]["uid"]})
        except NotFound:
            pass

    async def _write_status(self, job: Obj, old: Obj, new: Obj) -> Obj:
        if old == new:
            return job
        body = copy.deepcopy(job)
        body["status"] = new
        try:
            return await self.jobs_api.update_status(body)
        except NotFound:
            return job
        except Conflict:
            raise Requeue(after=0.0, reason="job status update conflicted") from None
