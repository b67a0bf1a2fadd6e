"""The disruption controller: keeps PodDisruptionBudget status, as upstream's
pkg/controller/disruption.

For each budget it finds the pods its selector matches in its namespace, counts the
healthy ones (Ready, not terminating, not recently evicted), derives the desired
number of healthy pods from `minAvailable` / `maxUnavailable` (ints, or percents of
the expected count, which comes from the scale of the pods' controllers:
ReplicationController, ReplicaSet, Deployment, StatefulSet), and writes
currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed, disruptedPods,
observedGeneration and the DisruptionAllowed condition through the status
subresource.  Entries the eviction subresource adds to `disruptedPods` are dropped
once the pod is gone, or after DELETION_TIMEOUT when it never went.

Not done (yet): the generic scale subresource lookup for arbitrary controllers
(those pods fail the sync as "found no controllers"), the UnmanagedPods and NotDeleted
events and the stale DisruptionTarget pod condition cleanup.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from kybernetes.api.selectors import SelectorError, from_label_selector
from kybernetes.apiserver.eviction import set_disruption_allowed_condition
from kybernetes.client.errors import Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers import _pods
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]

DELETION_TIMEOUT = 2 * 60.0  # upstream DeletionTimeout


class NoControllers(Exception):
    pass


def scaled_value(value: Any, total: int, round_up: bool = True) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, bool):
        raise ValueError(f"invalid value {value!r}")
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        pct = int(s[:-1])
        q, r = divmod(pct * total, 100)
        return q + (1 if round_up and r else 0)
    raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")


def pdb_selects(pdb: Obj) -> Any:
    """The budget's selector (None: it selects nothing)."""
    sel = (pdb.get("spec") or {}).get("selector")
    if sel is None:
        return None
    return from_label_selector(sel)


def count_healthy(pods: list[Obj], disrupted: dict[str, str], now: float) -> int:
    n = 0
    for p in pods:
        if p["metadata"].get("deletionTimestamp"):
            continue
        t = _pods.parse_time(disrupted.get(p["metadata"]["name"]))
        if t is not None and t + DELETION_TIMEOUT > now:
            continue
        if _pods.is_pod_ready(p):
            n += 1
    return n


def build_disrupted(pods: list[Obj], disrupted: dict[str, str], now: float) -> tuple[dict[str, str], Optional[float]]:
    """The disruptedPods entries still pending (pod present, not terminating, within the
    timeout) and when the earliest of them expires."""
    out: dict[str, str] = {}
    recheck: Optional[float] = None
    for p in pods:
        name = p["metadata"]["name"]
        if p["metadata"].get("deletionTimestamp") or name not in disrupted:
            continue
        t = _pods.parse_time(disrupted[name])
        if t is None:
            continue
        expected = t + DELETION_TIMEOUT
        if expected < now:
            continue  # expected to be deleted but it wasn't
        out[name] = disrupted[name]
        recheck = expected if recheck is None else min(recheck, expected)
    return out, recheck


def desired_status(pdb: Obj, pods: list[Obj], expected_count: int, desired_healthy: int, now: float) -> tuple[Obj, Optional[float]]:
    status = pdb.get("status") or {}
    disrupted, recheck = build_disrupted(pods, status.get("disruptedPods") or {}, now)
    healthy = count_healthy(pods, disrupted, now)
    allowed = healthy - desired_healthy
    if expected_count <= 0 or allowed <= 0:
        allowed = 0
    new: Obj = {"currentHealthy": healthy, "desiredHealthy": desired_healthy, "expectedPods": expected_count,
                "disruptionsAllowed": allowed, "observedGeneration": pdb["metadata"].get("generation") or 0}
    if disrupted:
        new["disruptedPods"] = disrupted
    if status.get("conditions"):
        new["conditions"] = [dict(c) for c in status["conditions"]]
    shell = {"status": new}
    set_disruption_allowed_condition(shell)
    return shell["status"], recheck


def status_equal(old: Obj, new: Obj) -> bool:
    for k in ("currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed", "observedGeneration"):
        if int(old.get(k) or 0) != int(new.get(k) or 0):
            return False
    if (old.get("disruptedPods") or {}) != (new.get("disruptedPods") or {}):
        return False

    def conds(s: Obj) -> list:
        return sorted(((c.get("type"), c.get("status"), c.get("reason"), c.get("message") or "",
                        int(c.get("observedGeneration") or 0)) for c in s.get("conditions") or []))
    return conds(old) == conds(new)


class DisruptionController(Controller):
    name = "disruption"
    event_source = "controllermanager"  # upstream's event source for this controller
    workers = 2

    def setup(self) -> None:
        self.pdb_api = self.resource("policy", "v1", "poddisruptionbudgets")
        self.pdbs = self.watch("policy", "v1", "poddisruptionbudgets")
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.pods.add_handlers(on_add=self._pod_changed, on_update=lambda old, new: (self._pod_changed(old), self._pod_changed(new)),
                               on_delete=self._pod_changed)
        self.rcs = self.watch("", "v1", "replicationcontrollers", enqueue=None)
        self.rss = self.watch("apps", "v1", "replicasets", enqueue=None)
        self.deployments = self.watch("apps", "v1", "deployments", enqueue=None)
        self.statefulsets = self.watch("apps", "v1", "statefulsets", enqueue=None)
        for inf in (self.rcs, self.rss, self.deployments, self.statefulsets):
            inf.add_handlers(on_add=self._controller_changed, on_update=lambda old, new: self._controller_changed(new),
                             on_delete=self._controller_changed)

    # ------------------------------------------------------------------ events
    def _pdbs_in(self, namespace: str) -> list[Obj]:
        return self.pdbs.by_namespace(namespace)

    def _pod_changed(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        for pdb in self._pdbs_in(meta.get("namespace") or ""):
            try:
                sel = pdb_selects(pdb)
            except SelectorError:
                continue
            if sel is not None and sel.matches(labels):
                self.enqueue(object_key(pdb))

    def _controller_changed(self, obj: Obj) -> None:
        # a scale change moves percent-based budgets: look at every budget in the namespace
        for pdb in self._pdbs_in((obj.get("metadata") or {}).get("namespace") or ""):
            self.enqueue(object_key(pdb))

    # ------------------------------------------------------------------ expected scale
    def _scale_of(self, ns: str, ref: Obj) -> Optional[tuple[str, int]]:
        """(controller uid, replicas) for a pod's controllerRef (upstream's finders)."""
        kind, group = ref.get("kind"), (ref.get("apiVersion") or "").rpartition("/")[0]
        name, uid = ref.get("name"), ref.get("uid")
        if kind == "ReplicationController" and group == "":
            rc = self.rcs.get(f"{ns}/{name}")
            if rc is not None and rc["metadata"].get("uid") == uid:
                return uid, int((rc.get("spec") or {}).get("replicas", 1))
            return None
        if kind == "StatefulSet" and group == "apps":
            ss = self.statefulsets.get(f"{ns}/{name}")
            if ss is not None and ss["metadata"].get("uid") == uid:
                return uid, int((ss.get("spec") or {}).get("replicas", 1))
            return None
        if kind == "ReplicaSet" and group == "apps":
            rs = self.rss.get(f"{ns}/{name}")
            if rs is None or rs["metadata"].get("uid") != uid:
                return None
            owner = _pods.get_controller_of(rs)
            if owner is not None and owner.get("kind") == "Deployment" and \
                    (owner.get("apiVersion") or "").startswith("apps/"):
                d = self.deployments.get(f"{ns}/{owner.get('name')}")
                if d is None or d["metadata"].get("uid") != owner.get("uid"):
                    return None
                return owner["uid"], int((d.get("spec") or {}).get("replicas", 1))
            return uid, int((rs.get("spec") or {}).get("replicas", 1))
        return None

    def expected_scale(self, ns: str, pods: list[Obj]) -> tuple[int, list[str]]:
        counted: dict[str, int] = {}
        unmanaged: list[str] = []
        for p in pods:
            ref = _pods.get_controller_of(p)
            if ref is None:
                unmanaged.append(p["metadata"]["name"])
                continue
            if ref.get("uid") in counted:
                continue
            found = self._scale_of(ns, ref)
            if found is None:
                raise NoControllers(f'found no controllers for pod "{p["metadata"]["name"]}"')
            counted[found[0]] = found[1]
        return sum(counted.values()), unmanaged

    def expected_counts(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int]:
        """(expectedCount, desiredHealthy) as upstream getExpectedPodCount."""
        spec = pdb.get("spec") or {}
        ns = pdb["metadata"].get("namespace") or ""
        if spec.get("maxUnavailable") is not None:
            expected, _ = self.expected_scale(ns, pods)
            desired = max(0, expected - scaled_value(spec["maxUnavailable"], expected, True))
            return expected, desired
        mn = spec.get("minAvailable")
        if mn is not None:
            if isinstance(mn, int) and not isinstance(mn, bool):
                return len(pods), mn
            expected, _ = self.expected_scale(ns, pods)
            return expected, scaled_value(mn, expected, True)
        return 0, 0

    # ------------------------------------------------------------------ reconcile
    def pods_for(self, pdb: Obj) -> list[Obj]:
        sel = pdb_selects(pdb)
        if sel is None:
            return []
        return [p for p in self.pods.by_namespace(pdb["metadata"].get("namespace") or "")
                if sel.matches((p.get("metadata") or {}).get("labels") or {})]

    async def reconcile(self, key: str) -> None:
        pdb = self.pdbs.get(key)
        if pdb is None:
            return
        now = time.time()
        recheck: Optional[float] = None
        try:
            pods = self.pods_for(pdb)
            if not pods:
                self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found", action="Sync")
            try:
                expected, desired = self.expected_counts(pdb, pods)
            except (NoControllers, ValueError) as e:
                self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                    f"Failed to calculate the number of expected pods: {e}", action="Sync")
                raise
            status, recheck = desired_status(pdb, pods, expected, desired, now)
        except (NoControllers, SelectorError, ValueError) as e:
            status = dict(pdb.get("status") or {})
            status["disruptionsAllowed"] = 0
            shell = {"status": status}
            set_disruption_allowed_condition(shell)
            cond = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
            cond.update(reason="SyncFailed", message=str(e))
            self.log.info("pdb %s: %s", key, e)
        if not status_equal(pdb.get("status") or {}, status):
            new = {**pdb, "status": status}
            try:
                await self.pdb_api.update_status(new)
            except (Conflict, NotFound):
                raise Requeue(None, "pdb changed meanwhile")
        if recheck is not None:
            raise Requeue(max(0.0, recheck - now) + 0.5)
