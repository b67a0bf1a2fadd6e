"""The ReplicaSet controller (and, with another resource, the ReplicationController
manager): keep `spec.replicas` active pods matching the selector, as upstream's
pkg/controller/replicaset.

Pods are created from the template with a controller ownerReference and a generated
name `<rs>-XXXXX`, in slow-start batches (1, 2, 4, ...); matching orphans are adopted
and owned pods that stop matching are released; expectations keep a slow watch from
causing double creates/deletes; scale-down deletes the lowest-ranked pods first;
status goes through the status subresource.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from kybernetes.api.selectors import LabelSelector, from_label_selector
from kybernetes.client.errors import Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers import _pods
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]

BURST_REPLICAS = 500  # upstream BurstReplicas
REPLICA_FAILURE = "ReplicaFailure"


def selector_of(rs: Obj, kind: str) -> LabelSelector:
    sel = (rs.get("spec") or {}).get("selector")
    if kind == "ReplicationController":
        return from_label_selector({"matchLabels": sel or {}}) if sel else LabelSelector(nothing=True)
    return from_label_selector(sel)


def calculate_status(rs: Obj, pods: list[Obj], manage_error: Optional[BaseException], diff: int,
                     now: Optional[float] = None) -> Obj:
    """The new status (upstream calculateStatus)."""
    spec = rs.get("spec") or {}
    tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    mrs = int(spec.get("minReadySeconds") or 0)
    fully = ready = available = 0
    for p in pods:
        labels = (p.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in tlabels.items()):
            fully += 1
        if _pods.is_pod_ready(p):
            ready += 1
            if _pods.is_pod_available(p, mrs, now):
                available += 1
    old = rs.get("status") or {}
    conditions = [c for c in old.get("conditions") or [] if c.get("type") != REPLICA_FAILURE]
    failure = next((c for c in old.get("conditions") or [] if c.get("type") == REPLICA_FAILURE), None)
    if manage_error is not None:
        if failure is None:
            failure = {"type": REPLICA_FAILURE, "status": "True",
                       "reason": "FailedCreate" if diff < 0 else "FailedDelete",
                       "message": str(manage_error), "lastTransitionTime": _pods.now_rfc3339()}
        conditions.append(failure)
    status: Obj = {"replicas": len(pods), "fullyLabeledReplicas": fully, "readyReplicas": ready,
                   "availableReplicas": available,
                   "observedGeneration": (rs.get("metadata") or {}).get("generation")}
    if conditions:
        status["conditions"] = conditions
    return status


def _status_equal(old: Obj, new: Obj) -> bool:
    keys = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")
    return all(int(old.get(k) or 0) == int(new.get(k) or 0) for k in keys) and (
        (old.get("conditions") or []) == (new.get("conditions") or []))


class ReplicaSetController(Controller, _pods.PodOwnerHandlers):
    name = "replicaset"
    workers = 5
    group, version, plural = "apps", "v1", "replicasets"
    kind = "ReplicaSet"
    burst_replicas = BURST_REPLICAS

    def setup(self) -> None:
        self.api_version = f"{self.group}/{self.version}" if self.group else self.version
        self.expectations = _pods.Expectations()
        self.rs_api = self.resource(self.group, self.version, self.plural)
        self.pods_api = self.resource("", "v1", "pods")
        self.sets = self.watch(self.group, self.version, self.plural)
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.owner_kind, self.owner_group = self.kind, self.group
        self.hook_pod_handlers(self.pods)

    # ------------------------------------------------------------------ pod events
    def owner_selects(self, owner: Obj, pod: Obj) -> bool:
        return selector_of(owner, self.kind).matches(pod["metadata"].get("labels") or {})

    # ------------------------------------------------------------------ sync
    async def reconcile(self, key: str) -> None:
        rs = self.sets.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        ns = rs["metadata"].get("namespace") or ""
        selector = selector_of(rs, self.kind)
        needs_sync = self.expectations.satisfied(key)
        all_pods = self.pods.by_namespace(ns)
        active = [p for p in all_pods if _pods.is_pod_active(p)]
        ref = _pods.controller_ref(rs, self.api_version, self.kind)

        async def recheck() -> Optional[Obj]:
            try:
                return await self.rs_api.get(rs["metadata"]["name"], ns)
            except NotFound:
                return None

        pods = await _pods.claim(self.pods_api, rs, selector, active, ref, recheck=recheck)
        manage_error: Optional[BaseException] = None
        diff = len(pods) - int((rs.get("spec") or {}).get("replicas", 1) or 0)
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            manage_error = await self._manage(key, rs, pods, all_pods, ref)
        status = calculate_status(rs, pods, manage_error, diff)
        rs = await self._update_status(rs, status)
        if manage_error is not None:
            raise Requeue(reason=f"{key}: {manage_error}")
        mrs = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        st = rs.get("status") or {}
        if mrs > 0 and st.get("readyReplicas") == rs["spec"].get("replicas") and \
                st.get("availableReplicas") != rs["spec"].get("replicas"):
            raise Requeue(after=float(mrs))

    async def _manage(self, key: str, rs: Obj, pods: list[Obj], all_pods: list[Obj], ref: Obj) -> Optional[BaseException]:
        want = int((rs.get("spec") or {}).get("replicas", 1) or 0)
        diff = len(pods) - want
        if diff < 0:
            n = min(-diff, self.burst_replicas)
            template = (rs.get("spec") or {}).get("template") or {}
            return await _pods.create_pods(self, key, rs, n, lambda: _pods.pod_from_template(template, rs, ref))
        if diff > 0:
            n = min(diff, self.burst_replicas)
            victims = _pods.pods_to_delete(pods, [p for p in all_pods if p not in pods], n)
            self.expectations.expect_deletions(key, [object_key(p) for p in victims])
            return await _pods.delete_pods(self, key, rs, victims)
        return None

    async def _update_status(self, rs: Obj, status: Obj) -> Obj:
        old = rs.get("status") or {}
        if _status_equal(old, status):
            return rs
        body = copy.deepcopy(rs)
        for _ in range(2):
            body["status"] = {**(body.get("status") or {}), **status}
            if not status.get("conditions"):
                body["status"].pop("conditions", None)
            try:
                return await self.rs_api.update_status(body)
            except NotFound:
                return rs
            except Conflict:
                try:
                    body = await self.rs_api.get(rs["metadata"]["name"], rs["metadata"]["namespace"])
                except NotFound:
                    return rs
                status["observedGeneration"] = status.get("observedGeneration")
        raise Requeue(reason="status update conflicted")


class ReplicationManager(ReplicaSetController):
    """ReplicationControllers: the same controller over core/v1 (a map selector)."""

    name = "replicationcontroller"
    event_source = "replication-controller"
    group, version, plural = "", "v1", "replicationcontrollers"
    kind = "ReplicationController"
