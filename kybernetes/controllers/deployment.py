"""The Deployment controller, as upstream's pkg/controller/deployment: rolls a
Deployment's pod template out through ReplicaSets named `<deploy>-<pod-template-hash>`.

RollingUpdate (maxSurge rounds up, maxUnavailable rounds down), Recreate, proportional
scaling of every active ReplicaSet when the Deployment is scaled mid-rollout, revision
annotations (so `kubectl rollout history/undo` work: kubectl rolls back client-side by
copying an old ReplicaSet's template), revisionHistoryLimit cleanup, pause, the
Progressing condition with progressDeadlineSeconds and the Available condition.
"""

from __future__ import annotations

import copy
import math
import struct
import time
from typing import Any, Optional

import orjson

from kybernetes.api.selectors import from_label_selector
from kybernetes.client.errors import AlreadyExists, Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers import _pods
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
               DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"}
MAX_INT32 = 2**31 - 1

PROGRESSING, AVAILABLE, REPLICA_FAILURE = "Progressing", "Available", "ReplicaFailure"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_CREATE_ERROR = "ReplicaSetCreateError"
PAUSED, RESUMED = "DeploymentPaused", "DeploymentResumed"

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# ---------------------------------------------------------------------- hashing
def safe_encode(s: str) -> str:
    """Upstream rand.SafeEncodeString: each byte mapped into a vowel-free alphabet."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in s.encode())


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Obj, collision_count: Optional[int] = None) -> str:
    """FNV-32a over the template (canonical JSON here, where upstream hashes the Go
    struct's dump), then the collision count as 8 little-endian bytes, rendered as
    the decimal string through the safe alphabet (upstream controller.ComputeHash)."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF) + b"\0\0\0\0"
    return safe_encode(str(fnv32a(data)))


def equal_ignore_hash(t1: Obj, t2: Obj) -> bool:
    a, b = copy.deepcopy(t1 or {}), copy.deepcopy(t2 or {})
    for t in (a, b):
        labels = (t.get("metadata") or {}).get("labels")
        if labels is not None:
            labels.pop(HASH_LABEL, None)
            if not labels:
                t["metadata"].pop("labels")
        if t.get("metadata") == {}:
            t.pop("metadata")
    return a == b


# ---------------------------------------------------------------------- rollout math
def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        v = int(s[:-1]) * total / 100
        return int(math.ceil(v)) if round_up else int(math.floor(v))
    return int(s)


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    surge = int_or_percent(max_surge, desired, True)
    unavailable = int_or_percent(max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # upstream: never deadlock a rollout
    return surge, unavailable


def _replicas(obj: Optional[Obj]) -> int:
    if obj is None:
        return 0
    return int((obj.get("spec") or {}).get("replicas", 1) or 0)


def _st(obj: Optional[Obj], field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    ru = d["spec"]["strategy"].get("rollingUpdate") or {}
    return resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), _replicas(d))[0]


def max_unavailable(d: Obj) -> int:
    n = _replicas(d)
    if not is_rolling(d) or n == 0:
        return 0
    ru = d["spec"]["strategy"].get("rollingUpdate") or {}
    mu = resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"), n)[1]
    return min(mu, n)


def revision(rs: Obj) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION) or 0)
    except ValueError:
        return 0


def _created(rs: Obj) -> tuple[float, str]:
    return (_pods.parse_time(rs["metadata"].get("creationTimestamp")) or 0.0, rs["metadata"].get("name", ""))


def _annotation_int(rs: Obj, key: str) -> Optional[int]:
    v = ((rs.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def new_rs_new_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """How many replicas the new ReplicaSet may have now (upstream NewRSNewReplicas)."""
    if not is_rolling(d):
        return _replicas(d)
    surge = int_or_percent((d["spec"]["strategy"].get("rollingUpdate") or {}).get("maxSurge", "25%"),
                           _replicas(d), True)
    current = sum(_replicas(rs) for rs in all_rss)
    max_total = _replicas(d) + surge
    if current >= max_total:
        return _replicas(new_rs)
    scale_up = min(max_total - current, _replicas(d) - _replicas(new_rs))
    return _replicas(new_rs) + scale_up


def rs_fraction(rs: Obj, d: Obj) -> int:
    if _replicas(d) == 0:
        return -_replicas(rs)
    deployment_replicas = _replicas(d) + max_surge(d)
    annotated = _annotation_int(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = _st(d, "replicas")
    if not annotated:
        return 0
    size = _replicas(rs) * deployment_replicas / annotated
    return int(math.floor(size + 0.5)) - _replicas(rs)  # math.Round (non-negative here)


def get_proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    if rs is None or _replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    frac = rs_fraction(rs, d)
    allowed = to_add - added
    return min(frac, allowed) if to_add > 0 else max(frac, allowed)


def proportional_sizes(d: Obj, active: list[Obj]) -> dict[str, int]:
    """New sizes of the active ReplicaSets when a rolling Deployment is scaled
    mid-rollout (upstream DeploymentController.scale, the proportional part)."""
    total = sum(_replicas(rs) for rs in active)
    allowed = _replicas(d) + max_surge(d) if _replicas(d) > 0 else 0
    to_add = allowed - total
    if to_add > 0:  # larger first, newer first on ties
        ordered = sorted(active, key=lambda rs: (-_replicas(rs), -_created(rs)[0]))
    else:  # larger first, older first on ties
        ordered = sorted(active, key=lambda rs: (-_replicas(rs), _created(rs)))
    sizes: dict[str, int] = {}
    added = 0
    for rs in ordered:
        name = rs["metadata"]["name"]
        if to_add != 0:
            p = get_proportion(rs, d, to_add, added)
            sizes[name] = _replicas(rs) + p
            added += p
        else:
            sizes[name] = _replicas(rs)
    if to_add != 0 and ordered:
        first = ordered[0]["metadata"]["name"]
        sizes[first] = max(0, sizes[first] + to_add - added)
    return sizes


def old_scale_down_plan(d: Obj, all_rss: list[Obj], old_rss: list[Obj], new_rs: Optional[Obj]) -> dict[str, int]:
    """How far to scale the old ReplicaSets down now (upstream reconcileOldReplicaSets:
    first unhealthy replicas, then down to the availability floor).  name -> new size."""
    old_count = sum(_replicas(rs) for rs in old_rss)
    if old_count == 0:
        return {}
    all_count = sum(_replicas(rs) for rs in all_rss)
    min_available = _replicas(d) - max_unavailable(d)
    new_unavailable = _replicas(new_rs) - _st(new_rs, "availableReplicas")
    max_scaled_down = all_count - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    sizes = {rs["metadata"]["name"]: _replicas(rs) for rs in old_rss}
    # 1. unhealthy replicas of old ReplicaSets, oldest first
    total = 0
    for rs in sorted(old_rss, key=_created):
        if total >= max_scaled_down:
            break
        n = sizes[rs["metadata"]["name"]]
        if n == 0 or n == _st(rs, "availableReplicas"):
            continue
        down = min(max_scaled_down - total, n - _st(rs, "availableReplicas"))
        sizes[rs["metadata"]["name"]] = n - down
        total += down
    # 2. down to minAvailable by availability
    available = sum(_st(rs, "availableReplicas") for rs in old_rss) + _st(new_rs, "availableReplicas")
    if available > min_available:
        todo = available - min_available
        done = 0
        for rs in sorted(old_rss, key=_created):
            if done >= todo:
                break
            n = sizes[rs["metadata"]["name"]]
            if n == 0:
                continue
            down = min(n, todo - done)
            sizes[rs["metadata"]["name"]] = n - down
            done += down
    return {k: v for k, v in sizes.items() if v != next(_replicas(r) for r in old_rss if r["metadata"]["name"] == k)}


# ---------------------------------------------------------------------- conditions
def get_condition(status: Obj, ctype: str) -> Optional[Obj]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def new_condition(ctype: str, status: str, reason: str, message: str) -> Obj:
    now = _pods.now_rfc3339()
    return {"type": ctype, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime")
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: Obj, ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != ctype]


def has_progress_deadline(d: Obj) -> bool:
    pds = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return pds is not None and pds != MAX_INT32


def deployment_complete(d: Obj, st: Obj) -> bool:
    n = _replicas(d)
    return (int(st.get("updatedReplicas") or 0) == n and int(st.get("replicas") or 0) == n
            and int(st.get("availableReplicas") or 0) == n
            and int(st.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0))


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = d.get("status") or {}
    g = lambda s, k: int(s.get(k) or 0)  # noqa: E731
    return (g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas"))


def deployment_timed_out(d: Obj, st: Obj, now: Optional[float] = None) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(st, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = _pods.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + d["spec"]["progressDeadlineSeconds"] < (now if now is not None else time.time())


def calculate_status(d: Obj, all_rss: list[Obj], new_rs: Optional[Obj]) -> Obj:
    available = sum(_st(rs, "availableReplicas") for rs in all_rss)
    total = sum(_replicas(rs) for rs in all_rss)
    old = d.get("status") or {}
    st: Obj = {
        "observedGeneration": d["metadata"].get("generation"),
        "replicas": sum(_st(rs, "replicas") for rs in all_rss),
        "updatedReplicas": _st(new_rs, "replicas"),
        "readyReplicas": sum(_st(rs, "readyReplicas") for rs in all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
        "conditions": copy.deepcopy(old.get("conditions") or []),
    }
    if old.get("collisionCount") is not None:
        st["collisionCount"] = old["collisionCount"]
    if available >= _replicas(d) - max_unavailable(d):
        set_condition(st, new_condition(AVAILABLE, "True", "MinimumReplicasAvailable", "Deployment has minimum availability."))
    else:
        set_condition(st, new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable",
                                        "Deployment does not have minimum availability."))
    return st


def _status_equal(a: Obj, b: Obj) -> bool:
    keys = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
            "unavailableReplicas", "collisionCount")
    return all((a.get(k) or 0) == (b.get(k) or 0) for k in keys) and (a.get("conditions") or []) == (b.get("conditions") or [])


# ---------------------------------------------------------------------- the controller
class DeploymentController(Controller):
    name = "deployment"
    workers = 5

    def setup(self) -> None:
        self.d_api = self.resource("apps", "v1", "deployments")
        self.rs_api = self.resource("apps", "v1", "replicasets")
        self.deployments = self.watch("apps", "v1", "deployments")
        self.sets = self.watch("apps", "v1", "replicasets", enqueue=None)
        self.sets.add_handlers(on_add=self._rs_event, on_update=lambda o, n: self._rs_changed(o, n),
                               on_delete=self._rs_event)
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.pods.add_handlers(on_delete=self._pod_deleted)

    # ------------------------------------------------------------------ events
    def _owner(self, obj: Obj) -> Optional[str]:
        ref = _pods.get_controller_of(obj)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        key = f"{obj['metadata'].get('namespace')}/{ref.get('name')}"
        d = self.deployments.get(key)
        return key if d is not None and d["metadata"].get("uid") == ref.get("uid") else None

    def _rs_event(self, rs: Obj) -> None:
        key = self._owner(rs)
        if key is not None:
            self.enqueue(key)
        elif _pods.get_controller_of(rs) is None:
            labels = rs["metadata"].get("labels") or {}
            for d in self.deployments.by_namespace(rs["metadata"].get("namespace") or ""):
                if from_label_selector((d.get("spec") or {}).get("selector")).matches(labels):
                    self.enqueue(object_key(d))

    def _rs_changed(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        if _pods.get_controller_of(old) != _pods.get_controller_of(new):
            self._rs_event(old)
        self._rs_event(new)

    def _pod_deleted(self, pod: Obj) -> None:
        ref = _pods.get_controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.sets.get(f"{pod['metadata'].get('namespace')}/{ref.get('name')}")
        if rs is not None:
            key = self._owner(rs)
            if key is not None:
                d = self.deployments.get(key)
                if d is not None and not is_rolling(d):
                    self.enqueue(key)

    # ------------------------------------------------------------------ sync
    async def reconcile(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        sel = (d.get("spec") or {}).get("selector") or {}
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            if int((d.get("status") or {}).get("observedGeneration") or 0) < int(d["metadata"].get("generation") or 0):
                d.setdefault("status", {})["observedGeneration"] = d["metadata"].get("generation")
                await self._write_status(d)
            return
        rs_list = await self._claim_replicasets(d)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old = self._split(d, rs_list)
            await self._sync_status(d, old + ([new_rs] if new_rs else []), new_rs)
            return
        d = await self._check_paused(d)
        if d["spec"].get("paused"):
            await self._sync(d, rs_list)
            return
        if self._is_scaling_event(d, rs_list):
            await self._sync(d, rs_list)
            return
        if is_rolling(d):
            await self._rollout_rolling(d, rs_list)
        else:
            await self._rollout_recreate(d, rs_list)

    async def _claim_replicasets(self, d: Obj) -> list[Obj]:
        ns = d["metadata"]["namespace"]
        ref = _pods.controller_ref(d, "apps/v1", "Deployment")

        async def recheck() -> Optional[Obj]:
            try:
                return await self.d_api.get(d["metadata"]["name"], ns)
            except NotFound:
                return None

        candidates = [rs for rs in self.sets.by_namespace(ns)]
        return await _pods.claim(self.rs_api, d, from_label_selector(d["spec"].get("selector")), candidates, ref,
                                 recheck=recheck)

    def _split(self, d: Obj, rs_list: list[Obj]) -> tuple[Optional[Obj], list[Obj]]:
        template = d["spec"].get("template") or {}
        new = next((rs for rs in sorted(rs_list, key=_created)
                    if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template)), None)
        return new, [rs for rs in rs_list if rs is not new]

    def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        new, old = self._split(d, rs_list)
        for rs in [r for r in ([new] if new else []) + old if _replicas(r) > 0]:
            desired = _annotation_int(rs, DESIRED_REPLICAS)
            if desired is not None and desired != _replicas(d):
                return True
        return False

    # ------------------------------------------------------------------ new RS
    def _new_rs_annotations(self, d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
        ann = rs["metadata"].setdefault("annotations", {})
        changed = False
        for k, v in ((d["metadata"].get("annotations") or {}).items()):
            if k in _NOT_COPIED or ann.get(k) == v:
                continue
            ann[k] = v
            changed = True
        old_rev = ann.get(REVISION)
        try:
            old_int = int(old_rev) if old_rev else 0
        except ValueError:
            old_int = 0
        if old_int < new_revision:
            ann[REVISION] = str(new_revision)
            changed = True
            if old_rev and exists:
                hist = ann.get(REVISION_HISTORY)
                ann[REVISION_HISTORY] = f"{hist},{old_rev}" if hist else old_rev
        if not exists:
            ann[DESIRED_REPLICAS] = str(_replicas(d))
            ann[MAX_REPLICAS] = str(_replicas(d) + max_surge(d))
            changed = True
        return changed

    async def _get_all(self, d: Obj, rs_list: list[Obj], create: bool) -> tuple[Obj, Optional[Obj], list[Obj]]:
        """(deployment, new RS or None, old RSes), syncing revisions (upstream
        getAllReplicaSetsAndSyncRevision)."""
        new, old = self._split(d, rs_list)
        new_revision = max([revision(rs) for rs in old] or [0]) + 1
        if new is not None:
            rs = copy.deepcopy(new)
            changed = self._new_rs_annotations(d, rs, new_revision, True)
            if changed or int(rs["spec"].get("minReadySeconds") or 0) != int(d["spec"].get("minReadySeconds") or 0):
                rs["spec"]["minReadySeconds"] = d["spec"].get("minReadySeconds") or 0
                return d, await self.rs_api.update(rs), old
            needs = self._set_revision(d, rs["metadata"]["annotations"].get(REVISION, ""))
            st = d.setdefault("status", {})
            if has_progress_deadline(d) and get_condition(st, PROGRESSING) is None:
                set_condition(st, new_condition(PROGRESSING, "True", FOUND_NEW_RS, f'Found new replica set "{rs["metadata"]["name"]}"'))
                needs = True
            if needs:
                d = await self._write_status(d)
            return d, rs, old
        if not create:
            return d, None, old
        template = copy.deepcopy(d["spec"]["template"])
        collision = (d.get("status") or {}).get("collisionCount")
        h = compute_hash(d["spec"]["template"], collision)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{h}", "namespace": d["metadata"]["namespace"],
                           "ownerReferences": [_pods.controller_ref(d, "apps/v1", "Deployment")],
                           "labels": dict(template["metadata"]["labels"])},
              "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds") or 0,
                       "selector": selector, "template": template}}
        rs["spec"]["replicas"] = new_rs_new_replicas(d, old, rs)
        self._new_rs_annotations(d, rs, new_revision, False)
        already = False
        try:
            created = await self.rs_api.create(rs)
        except AlreadyExists:
            existing = await self.rs_api.get(rs["metadata"]["name"], d["metadata"]["namespace"])
            if _pods.is_controlled_by(existing, d) and equal_ignore_hash(existing["spec"]["template"], d["spec"]["template"]):
                created, already = existing, True
            else:
                st = d.setdefault("status", {})
                st["collisionCount"] = int(st.get("collisionCount") or 0) + 1
                await self._write_status(d)
                raise Requeue(reason=f"hash collision for {rs['metadata']['name']}")
        except Conflict:
            raise
        except Exception as e:  # noqa: BLE001 - reported in Progressing, then retried
            if has_progress_deadline(d):
                set_condition(d.setdefault("status", {}), new_condition(
                    PROGRESSING, "False", RS_CREATE_ERROR, f"Failed to create new replica set \"{rs['metadata']['name']}\": {e}"))
                await self._write_status(d)
            raise
        if not already and _replicas(created) > 0:
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {created['metadata']['name']} from 0 to {_replicas(created)}",
                                action="Scale")
        needs = self._set_revision(d, str(new_revision))
        if not already and has_progress_deadline(d):
            set_condition(d.setdefault("status", {}), new_condition(
                PROGRESSING, "True", NEW_RS_CREATED, f'Created new replica set "{created["metadata"]["name"]}"'))
            needs = True
        if needs:
            d = await self._write_status(d)
        return d, created, old

    @staticmethod
    def _set_revision(d: Obj, rev: str) -> bool:
        ann = d["metadata"].setdefault("annotations", {})
        if not rev or ann.get(REVISION) == rev:
            return False
        try:
            if ann.get(REVISION) and int(ann[REVISION]) >= int(rev):
                return False
        except ValueError:
            pass
        ann[REVISION] = rev
        return True

    # ------------------------------------------------------------------ writes
    async def _write_status(self, d: Obj) -> Obj:
        """Status and the revision annotation in one write through the status subresource
        (as upstream: it keeps spec and labels, takes annotations, moves no generation)."""
        try:
            return await self.d_api.update_status(d)
        except NotFound:
            raise Requeue(after=0.0) from None
        except Conflict:
            raise Requeue(reason="deployment changed") from None

    async def _scale_rs(self, rs: Obj, size: int, d: Obj) -> Obj:
        ann = (rs["metadata"].get("annotations") or {})
        want_desired, want_max = str(_replicas(d)), str(_replicas(d) + max_surge(d))
        if _replicas(rs) == size and ann.get(DESIRED_REPLICAS) == want_desired and ann.get(MAX_REPLICAS) == want_max:
            return rs
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = size
        a = body["metadata"].setdefault("annotations", {})
        a[DESIRED_REPLICAS], a[MAX_REPLICAS] = want_desired, want_max
        try:
            updated = await self.rs_api.update(body)
        except Conflict:
            raise Requeue(reason="replicaset changed") from None
        if _replicas(rs) != size:
            how = "up" if size > _replicas(rs) else "down"
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {how} replica set {rs['metadata']['name']} from {_replicas(rs)} to {size}",
                                action="Scale")
        return updated

    # ------------------------------------------------------------------ strategies
    async def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> None:
        d, new, old = await self._get_all(d, rs_list, True)
        assert new is not None
        all_rss = old + [new]
        # scale the new RS up (or down to the desired count)
        if _replicas(new) != _replicas(d):
            target = _replicas(d) if _replicas(new) > _replicas(d) else new_rs_new_replicas(d, all_rss, new)
            if target != _replicas(new):
                new = await self._scale_rs(new, target, d)
                await self._sync_rollout_status(d, old + [new], new)
                return
        plan = old_scale_down_plan(d, all_rss, [r for r in old if _replicas(r) > 0], new)
        if plan:
            changed = []
            for rs in old:
                if rs["metadata"]["name"] in plan:
                    rs = await self._scale_rs(rs, plan[rs["metadata"]["name"]], d)
                changed.append(rs)
            await self._sync_rollout_status(d, changed + [new], new)
            return
        st = calculate_status(d, all_rss, new)
        if deployment_complete(d, st):
            await self._cleanup(d, old)
        await self._sync_rollout_status(d, all_rss, new)

    async def _rollout_recreate(self, d: Obj, rs_list: list[Obj]) -> None:
        d, new, old = await self._get_all(d, rs_list, False)
        active_old = [rs for rs in old if _replicas(rs) > 0]
        if active_old:
            scaled = [await self._scale_rs(rs, 0, d) if _replicas(rs) else rs for rs in old]
            await self._sync_rollout_status(d, scaled + ([new] if new else []), new)
            return
        if self._old_pods_running(new, old):
            await self._sync_rollout_status(d, old + ([new] if new else []), new)
            return
        if new is None:
            d, new, old = await self._get_all(d, rs_list, True)
        assert new is not None
        if _replicas(new) != _replicas(d):
            new = await self._scale_rs(new, _replicas(d), d)
        all_rss = old + [new]
        if deployment_complete(d, calculate_status(d, all_rss, new)):
            await self._cleanup(d, old)
        await self._sync_rollout_status(d, all_rss, new)

    def _old_pods_running(self, new: Optional[Obj], old: list[Obj]) -> bool:
        if any(_st(rs, "replicas") > 0 for rs in old):
            return True
        uids = {rs["metadata"]["uid"] for rs in old}
        ns = old[0]["metadata"]["namespace"] if old else None
        if ns is None:
            return False
        for p in self.pods.by_namespace(ns):
            ref = _pods.get_controller_of(p)
            if ref is not None and ref.get("uid") in uids and (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
        return False

    async def _sync(self, d: Obj, rs_list: list[Obj]) -> None:
        """Scaling (and paused) sync: no new RS is created (upstream sync)."""
        d, new, old = await self._get_all(d, rs_list, False)
        await self._scale(d, new, old)
        d2, new, old = d, new, old
        fresh = [self.sets.get(object_key(rs)) or rs for rs in old]
        if d["spec"].get("paused"):
            await self._cleanup(d, fresh)
        await self._sync_status(d2, fresh + ([new] if new else []), new)

    async def _scale(self, d: Obj, new: Optional[Obj], old: list[Obj]) -> None:
        active = [rs for rs in ([new] if new else []) + old if _replicas(rs) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new if new is not None else
                                               (sorted(old, key=_created, reverse=True)[0] if old else None))
            if target is not None and _replicas(target) != _replicas(d):
                await self._scale_rs(target, _replicas(d), d)
            return
        if new is not None and _annotation_int(new, DESIRED_REPLICAS) == _replicas(d) and \
                _replicas(new) == _replicas(d) and _st(new, "availableReplicas") == _replicas(d):
            for rs in old:
                if _replicas(rs):
                    await self._scale_rs(rs, 0, d)
            return
        if is_rolling(d):
            sizes = proportional_sizes(d, active)
            for rs in active:
                await self._scale_rs(rs, sizes[rs["metadata"]["name"]], d)

    async def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
        diff = len(alive) - int(limit)
        if diff <= 0:
            return
        for rs in sorted(alive, key=lambda r: (revision(r), _created(r)))[:diff]:
            if _st(rs, "replicas") or _replicas(rs) or int(rs["metadata"].get("generation") or 0) > _st(rs, "observedGeneration"):
                continue
            try:
                await self.rs_api.delete(rs["metadata"]["name"], rs["metadata"]["namespace"],
                                         preconditions={"uid": rs["metadata"]["uid"]})
            except (NotFound, Conflict):
                pass

    async def _check_paused(self, d: Obj) -> Obj:
        st = d.setdefault("status", {})
        cond = get_condition(st, PROGRESSING)
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return d
        paused_cond = cond is not None and cond.get("reason") == PAUSED
        if d["spec"].get("paused") and not paused_cond:
            set_condition(st, new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused"))
        elif not d["spec"].get("paused") and paused_cond:
            set_condition(st, new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed"))
        else:
            return d
        return await self._write_status(d)

    async def _sync_status(self, d: Obj, all_rss: list[Obj], new: Optional[Obj]) -> None:
        st = calculate_status(d, all_rss, new)
        if not _status_equal(d.get("status") or {}, st):
            d["status"] = st
            await self._write_status(d)

    async def _sync_rollout_status(self, d: Obj, all_rss: list[Obj], new: Optional[Obj]) -> None:
        st = calculate_status(d, all_rss, new)
        if not has_progress_deadline(d):
            remove_condition(st, PROGRESSING)
        cur = get_condition(st, PROGRESSING)
        complete = (st["replicas"] == st["updatedReplicas"] and cur is not None and cur.get("reason") == NEW_RS_AVAILABLE)
        if has_progress_deadline(d) and not complete:
            if deployment_complete(d, st):
                msg = f'ReplicaSet "{new["metadata"]["name"]}" has successfully progressed.' if new else \
                    f'Deployment "{d["metadata"]["name"]}" has successfully progressed.'
                set_condition(st, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg))
            elif deployment_progressing(d, st):
                msg = f'ReplicaSet "{new["metadata"]["name"]}" is progressing.' if new else \
                    f'Deployment "{d["metadata"]["name"]}" is progressing.'
                c = new_condition(PROGRESSING, "True", RS_UPDATED, msg)
                if cur is not None and cur.get("status") == "True":
                    c["lastTransitionTime"] = cur.get("lastTransitionTime")
                remove_condition(st, PROGRESSING)
                st.setdefault("conditions", []).append(c)
            elif deployment_timed_out(d, st):
                msg = f'ReplicaSet "{new["metadata"]["name"]}" has timed out progressing.' if new else \
                    f'Deployment "{d["metadata"]["name"]}" has timed out progressing.'
                set_condition(st, new_condition(PROGRESSING, "False", TIMED_OUT, msg))
        failure = next((c for rs in all_rss for c in (rs.get("status") or {}).get("conditions") or []
                        if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
        if failure is not None:
            set_condition(st, new_condition(REPLICA_FAILURE, "True", failure.get("reason", ""), failure.get("message", "")))
        else:
            remove_condition(st, REPLICA_FAILURE)
        if not _status_equal(d.get("status") or {}, st):
            d["status"] = st
            await self._write_status(d)
        # wake up at the progress deadline (upstream requeueStuckDeployment)
        cur = get_condition(st, PROGRESSING)
        if not has_progress_deadline(d) or cur is None or deployment_complete(d, st) or cur.get("reason") == TIMED_OUT:
            return
        since = _pods.parse_time(cur.get("lastUpdateTime"))
        if since is not None:
            after = since + d["spec"]["progressDeadlineSeconds"] - time.time()
            raise Requeue(after=max(after, 0.0) + 1.0)
