"""Shared machinery for controllers that own pods (or other objects) through
controller ownerReferences: pod template -> pod, controller refs and claiming
(adopt/release, upstream's ControllerRefManager), expectations (upstream's
ControllerExpectations/UIDTrackingControllerExpectations), pod readiness and
availability, the deletion ranking (upstream's ActivePodsWithRanks) and slow-start
batches.  Pure helpers plus a few async calls through kybernetes.client.
"""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Iterable, Optional

from kybernetes.api.selectors import LabelSelector, from_label_selector
from kybernetes.client.errors import APIStatusError, Conflict, Forbidden, NotFound
from kybernetes.client.informer import object_key

Obj = dict[str, Any]

EXPECTATIONS_TIMEOUT = 5 * 60.0  # upstream ExpectationsTimeout
SLOW_START_INITIAL_BATCH = 1


# ---------------------------------------------------------------------- time
def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: Optional[str]) -> Optional[float]:
    if not s:
        return None
    try:
        return datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


# ---------------------------------------------------------------------- controller refs
def controller_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def get_controller_of(obj: Obj) -> Optional[Obj]:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = get_controller_of(obj)
    return ref is not None and ref.get("uid") == (owner.get("metadata") or {}).get("uid")


# ---------------------------------------------------------------------- pods from templates
def pod_from_template(template: Obj, owner: Obj, ref: Obj) -> Obj:
    """The pod a controller creates from its template (upstream GetPodFromTemplate):
    labels, annotations, finalizers and spec copied; name generated as `<owner>-XXXXX`."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": f"{owner['metadata']['name']}-",
                 "namespace": owner["metadata"].get("namespace"),
                 "ownerReferences": [ref]}
    for k in ("labels", "annotations", "finalizers"):
        if tmeta.get(k):
            meta[k] = copy.deepcopy(tmeta[k])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


# ---------------------------------------------------------------------- pod state
def is_pod_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _ready_condition(pod: Obj) -> Optional[Obj]:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_pod_ready(pod: Obj) -> bool:
    c = _ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: Optional[float] = None) -> bool:
    """Ready for at least minReadySeconds (upstream podutil.IsPodAvailable)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time((_ready_condition(pod) or {}).get("lastTransitionTime"))
    if since is None:
        return False
    return since + min_ready_seconds <= (now if now is not None else time.time())


def _restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or [])


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank_key(pod: Obj, rank: int = 0) -> tuple:
    """Sort key: pods sorting first are deleted first (upstream ActivePodsWithRanks.Less):
    unassigned < assigned; Pending < Unknown < Running; not ready < ready; higher rank
    (more related pods on the same node) first; ready for less time first; more restarts
    first; newer first."""
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    ready = is_pod_ready(pod)
    ready_since = parse_time((_ready_condition(pod) or {}).get("lastTransitionTime")) if ready else None
    created = parse_time(meta.get("creationTimestamp")) or 0.0
    return (
        1 if spec.get("nodeName") else 0,
        _PHASE_RANK.get(phase, 3),
        1 if ready else 0,
        -rank,
        -(ready_since or 0.0) if ready else 0.0,
        -_restarts(pod),
        -created,
    )


def pods_to_delete(filtered: list[Obj], related: list[Obj], diff: int) -> list[Obj]:
    """The `diff` pods to delete from `filtered`, ranked by how many `related` active pods
    share their node (upstream getPodsToDelete/getPodsRankedByRelatedPodsOnSameNode)."""
    if diff >= len(filtered):
        return list(filtered)
    per_node: dict[str, int] = {}
    for p in related:
        if is_pod_active(p):
            n = (p.get("spec") or {}).get("nodeName") or ""
            per_node[n] = per_node.get(n, 0) + 1
    def key(p: Obj) -> tuple:
        n = (p.get("spec") or {}).get("nodeName") or ""
        return deletion_rank_key(p, per_node.get(n, 0) if n else 0)
    return sorted(filtered, key=key)[:diff]


# ---------------------------------------------------------------------- expectations
class Expectations:
    """How many creations a controller still waits to see through its informer, and
    which pod keys it waits to see deleted, per controller key.  Until these are met
    (or EXPECTATIONS_TIMEOUT passes) the controller does not act again, so a slow
    watch never causes a double create or delete."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self._adds: dict[str, int] = {}
        self._dels: dict[str, set[str]] = {}
        self._stamp: dict[str, float] = {}

    def satisfied(self, key: str) -> bool:
        if key not in self._stamp:
            return True
        if self._adds.get(key, 0) <= 0 and not self._dels.get(key):
            return True
        return self.clock() - self._stamp[key] > self.timeout

    def expect_creations(self, key: str, n: int) -> None:
        self._adds[key] = n
        self._dels.setdefault(key, set())
        self._stamp[key] = self.clock()

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._dels[key] = set(pod_keys)
        self._adds.setdefault(key, 0)
        self._stamp[key] = self.clock()

    def creation_observed(self, key: str, n: int = 1) -> None:
        if key in self._adds:
            self._adds[key] -= n

    def deletion_observed(self, key: str, pod_key: str) -> None:
        s = self._dels.get(key)
        if s is not None:
            s.discard(pod_key)

    def pending(self, key: str) -> tuple[int, int]:
        return self._adds.get(key, 0), len(self._dels.get(key) or ())

    def delete(self, key: str) -> None:
        self._adds.pop(key, None)
        self._dels.pop(key, None)
        self._stamp.pop(key, None)


# ---------------------------------------------------------------------- slow start
async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[None]]) -> tuple[int, Optional[BaseException]]:
    """Call fn `count` times in batches of 1, 2, 4, ... (concurrently within a batch);
    stop after the first batch with an error.  Returns (successes, first error)."""
    remaining, batch, successes = count, min(count, initial), 0
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errs = [r for r in results if isinstance(r, BaseException)]
        successes += batch - len(errs)
        if errs:
            return successes, errs[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


# ---------------------------------------------------------------------- creating pods
def namespace_terminating(err: APIStatusError) -> bool:
    """Whether a create was refused because its namespace is being deleted: nothing to
    retry or report then."""
    return isinstance(err, Forbidden) and "being terminated" in str(err)


def record_create(recorder: Any, owner: Obj, pod: Obj, err: Optional[APIStatusError] = None) -> None:
    """Upstream PodControl's FailedCreate/SuccessfulCreate events on the owner."""
    if err is not None:
        recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {err.message or err}", action="Create")
    else:
        recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                       action="Create", related=pod)


async def create_pod(
    controller: Any,
    key: str,
    owner: Obj,
    body: Obj,
    *,
    skip: Callable[[APIStatusError], bool] = namespace_terminating,
    record: Optional[Callable[[Obj, Obj, Optional[APIStatusError]], None]] = None,
    observe_failure: bool = False,
) -> Optional[Obj]:
    """POST one pod `owner` controls through `controller.pods_api` and record the event
    (`record(owner, pod, err)`, by default record_create).  An error `skip` accepts
    counts the creation as observed and returns None; any other is recorded and
    raised, and counted as observed too when `observe_failure` (callers that expect
    one creation at a time; batch callers settle failures after the batch)."""
    if record is None:
        def record(o: Obj, p: Obj, e: Optional[APIStatusError]) -> None:
            record_create(controller.recorder, o, p, e)
    expectations = controller.expectations
    try:
        pod = await controller.pods_api.create(body, body["metadata"].get("namespace") or owner["metadata"]["namespace"])
    except APIStatusError as e:
        if skip(e):
            expectations.creation_observed(key)
            return None
        if observe_failure:
            expectations.creation_observed(key)
        record(owner, body, e)
        raise
    except BaseException:
        if observe_failure:
            expectations.creation_observed(key)
        raise
    record(owner, pod, None)
    return pod


async def create_pods(controller: Any, key: str, owner: Obj, count: int, make: Callable[[], Obj],
                      what: str = "pods") -> Optional[BaseException]:
    """Create `count` pods (bodies from `make()`, called once each, in order) in
    slow-start batches under expectations (upstream's create loop of the ReplicaSet,
    DaemonSet and Job controllers).  Returns the first error; the creations that
    failed or were never tried are counted as observed, since no watch will show them."""
    controller.expectations.expect_creations(key, count)

    async def one() -> None:
        await create_pod(controller, key, owner, make())

    ok, err = await slow_start_batch(count, SLOW_START_INITIAL_BATCH, one)
    if err is not None:
        controller.expectations.creation_observed(key, count - ok)
        controller.log.warning("%s: failed to create %s: %s", key, what, err)
    return err


async def delete_pods(controller: Any, key: str, owner: Optional[Obj], pods: list[Obj]) -> Optional[APIStatusError]:
    """Delete `pods` one by one (uid precondition) through `controller.pods_api`, the
    caller having expected their deletions; a delete that fails or finds the pod gone
    is counted as observed at once.  FailedDelete/SuccessfulDelete events go on `owner`
    (none when it is None).  Returns the first error other than NotFound."""
    first: Optional[APIStatusError] = None
    for p in pods:
        meta = p["metadata"]
        try:
            await controller.pods_api.delete(meta["name"], meta["namespace"], preconditions={"uid": meta["uid"]})
        except NotFound:
            controller.expectations.deletion_observed(key, object_key(p))
        except APIStatusError as e:
            controller.expectations.deletion_observed(key, object_key(p))
            if owner is not None:
                controller.recorder.event(owner, "Warning", "FailedDelete", f"Error deleting: {e.message or e}",
                                          action="Delete")
            first = first or e
        else:
            if owner is not None:
                controller.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}",
                                          action="Delete", related=p)
    return first


# ---------------------------------------------------------------------- claiming
async def claim(
    handle: Any,
    owner: Obj,
    selector: LabelSelector,
    candidates: list[Obj],
    ref: Obj,
    *,
    recheck: Optional[Callable[[], Awaitable[Optional[Obj]]]] = None,
) -> list[Obj]:
    """Upstream ControllerRefManager.Claim*: the objects `owner` controls after adopting
    matching orphans and releasing owned objects that no longer match."""
    uid = owner["metadata"]["uid"]
    deleting = bool(owner["metadata"].get("deletionTimestamp"))
    claimed: list[Obj] = []
    rechecked: Optional[bool] = None
    for obj in candidates:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        cref = get_controller_of(obj)
        if cref is not None:
            if cref.get("uid") != uid:
                continue  # someone else's
            if selector.matches(labels):
                claimed.append(obj)
                continue
            if deleting:
                continue
            try:  # release
                refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != uid]
                await handle.patch(meta["name"], {"metadata": {"ownerReferences": refs or None, "uid": meta["uid"],
                                                               "resourceVersion": meta.get("resourceVersion")}},
                                   namespace=meta.get("namespace"))
            except (NotFound, Conflict):
                pass
            continue
        # orphan
        if deleting or meta.get("deletionTimestamp") or not selector.matches(labels):
            continue
        if rechecked is None:
            # upstream RecheckDeletionTimestamp: never adopt for an owner being deleted
            fresh = await recheck() if recheck is not None else owner
            rechecked = bool(fresh and fresh["metadata"].get("uid") == uid
                             and not fresh["metadata"].get("deletionTimestamp"))
        if not rechecked:
            continue
        try:
            refs = list(meta.get("ownerReferences") or []) + [ref]
            adopted = await handle.patch(meta["name"], {"metadata": {"ownerReferences": refs, "uid": meta["uid"],
                                                                     "resourceVersion": meta.get("resourceVersion")}},
                                         namespace=meta.get("namespace"))
            claimed.append(adopted)
        except (NotFound, Conflict):
            pass  # gone or changed: the next sync sees it again
    return claimed


# ---------------------------------------------------------------------- pod event handlers
def _group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


class PodOwnerHandlers:
    """The pod event handlers of a controller that owns pods through controllerRefs
    (upstream's addPod/updatePod/deletePod of the ReplicaSet, StatefulSet and DaemonSet
    controllers): a pod with a controllerRef wakes its owner (if that owner is the
    object the cache holds, same uid) and counts against its expectations; an orphan
    wakes every owner whose selector matches, so one may adopt it.

    The controller sets `owner_kind` and `owner_group`, keeps its owners' informer in
    `self.sets` and its expectations in `self.expectations`, and overrides
    `owner_selects(owner, pod)` when more than the label selector decides."""

    owner_kind: str = ""
    owner_group: str = ""
    sets: Any
    expectations: Any
    enqueue: Callable[[str], None]  # Controller.enqueue

    def hook_pod_handlers(self, pods: Any) -> None:
        pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    def owner_selects(self, owner: Obj, pod: Obj) -> bool:
        """Whether an orphan `pod` is one `owner` could adopt (its selector matches)."""
        return from_label_selector((owner.get("spec") or {}).get("selector")).matches(
            pod["metadata"].get("labels") or {})

    def _owner_key(self, obj: Obj, ref: Optional[Obj] = None) -> Optional[str]:
        """The cache key of `obj`'s controller when it is one of ours and still the
        same object (uid), else None."""
        ref = ref if ref is not None else get_controller_of(obj)
        if ref is None or ref.get("kind") != self.owner_kind or _group_of(str(ref.get("apiVersion", ""))) != self.owner_group:
            return None
        key = f"{obj['metadata'].get('namespace')}/{ref.get('name')}"
        owner = self.sets.get(key)
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return key

    def _matching_owners(self, pod: Obj) -> list[str]:
        ns = pod["metadata"].get("namespace") or ""
        return [object_key(o) for o in self.sets.by_namespace(ns) if self.owner_selects(o, pod)]

    def _pod_added(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            # restarted informers may see a pod that is already being deleted
            self._pod_deleted(pod)
            return
        ref = get_controller_of(pod)
        if ref is not None:
            key = self._owner_key(pod, ref)
            if key is not None:
                self.expectations.creation_observed(key)
                self.enqueue(key)
            return
        for key in self._matching_owners(pod):
            self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return  # a resync: nothing changed
        old_ref, new_ref = get_controller_of(old), get_controller_of(new)
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            # a graceful delete counts as observed at once, as upstream does
            key = self._owner_key(new, new_ref)
            if key is not None:
                self.expectations.deletion_observed(key, object_key(new))
        ref_changed = old_ref != new_ref
        if ref_changed and old_ref is not None:
            key = self._owner_key(old, old_ref)
            if key is not None:
                self.enqueue(key)
        if new_ref is not None:
            key = self._owner_key(new, new_ref)
            if key is not None:
                self.enqueue(key)
            return
        if ref_changed or old["metadata"].get("labels") != new["metadata"].get("labels"):
            for key in self._matching_owners(new):
                self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.enqueue(key)
