"""The StatefulSet controller, as upstream's pkg/controller/statefulset.

Pods have stable identities `<set>-<ordinal>` (from `spec.ordinals.start`), the labels
`statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, hostname = pod
name and subdomain = `spec.serviceName`; every `volumeClaimTemplates` entry becomes a PVC
`<claim>-<set>-<ordinal>` created before its pod and kept (or owned for garbage collection)
as `persistentVolumeClaimRetentionPolicy` says.

OrderedReady creates pods one at a time in ordinal order, each after its predecessors are
Running and Ready, and removes them in reverse order; Parallel does both at once.

Template changes are recorded as ControllerRevisions (kybernetes.controllers.history;
the data is the patch `{"spec": {"template": {..., "$patch": "replace"}}}` that `kubectl
rollout undo` applies); pods carry their revision's name in `controller-revision-hash`.
RollingUpdate deletes out-of-date pods from the highest ordinal down to `partition`,
at most `maxUnavailable` unhealthy at a time; a deleted pod below the partition comes back
at the current revision.  OnDelete replaces only pods someone deleted.  Status carries
currentRevision/updateRevision and the replica counts `kubectl rollout status` reads.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any, Optional

from kybernetes.api.selectors import from_label_selector
from kybernetes.client.errors import AlreadyExists, APIStatusError, Conflict, Forbidden, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers import _pods, history
from kybernetes.controllers.base import Controller, ReconcileError, Requeue

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = history.HASH_LABEL
API_VERSION, KIND = "apps/v1", "StatefulSet"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


# ---------------------------------------------------------------------- identity
def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    m = _ORDINAL.match((pod.get("metadata") or {}).get("name") or "")
    if not m:
        return "", -1
    return m.group(1), int(m.group(2))


def get_ordinal(pod: Obj) -> int:
    return parent_and_ordinal(pod)[1]


def start_ordinal(sts: Obj) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def replicas_of(sts: Obj) -> int:
    r = (sts.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def end_ordinal(sts: Obj) -> int:
    return start_ordinal(sts) + replicas_of(sts) - 1


def in_ordinal_range(pod: Obj, sts: Obj) -> bool:
    o = get_ordinal(pod)
    return start_ordinal(sts) <= o <= end_ordinal(sts)


def is_member_of(sts: Obj, pod: Obj) -> bool:
    return parent_and_ordinal(pod)[0] == sts["metadata"]["name"]


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def claim_name(sts: Obj, template: Obj, ordinal: int) -> str:
    return f"{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"


def pod_revision(pod: Obj) -> str:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, "")


def claims_for(sts: Obj, ordinal: int) -> list[Obj]:
    """The PVCs pod `ordinal` uses (upstream getPersistentVolumeClaims), in template order."""
    match = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    out = []
    for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        c = copy.deepcopy(t)
        c.pop("status", None)
        meta = c.setdefault("metadata", {})
        tname = meta.get("name")
        meta["name"] = claim_name(sts, t, ordinal)
        meta["namespace"] = sts["metadata"].get("namespace")
        meta["labels"] = {**(meta.get("labels") or {}), **match}
        for k in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
            meta.pop(k, None)
        c["apiVersion"], c["kind"] = "v1", "PersistentVolumeClaim"
        c["_template"] = tname
        out.append(c)
    return out


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    labels = pod["metadata"].get("labels") or {}
    return (ordinal >= 0 and parent == sts["metadata"]["name"] and pod["metadata"]["name"] == pod_name(sts, ordinal)
            and pod["metadata"].get("namespace") == sts["metadata"].get("namespace")
            and labels.get(POD_NAME_LABEL) == pod["metadata"]["name"]
            and labels.get(POD_INDEX_LABEL) == str(ordinal))


def storage_matches(sts: Obj, pod: Obj) -> bool:
    ordinal = get_ordinal(pod)
    if ordinal < 0:
        return False
    vols = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        v = vols.get(t["metadata"]["name"])
        if not v or (v.get("persistentVolumeClaim") or {}).get("claimName") != claim_name(sts, t, ordinal):
            return False
    return True


def new_pod(sts: Obj, ordinal: int) -> Obj:
    """Upstream newStatefulSetPod: the template, a controller ref, identity and storage."""
    ref = _pods.controller_ref(sts, API_VERSION, KIND)
    pod = _pods.pod_from_template((sts.get("spec") or {}).get("template") or {}, sts, ref)
    meta = pod["metadata"]
    meta.pop("generateName", None)
    meta["name"] = pod_name(sts, ordinal)
    labels = meta.setdefault("labels", {})
    labels[POD_NAME_LABEL] = meta["name"]
    labels[POD_INDEX_LABEL] = str(ordinal)
    spec = pod["spec"]
    spec["hostname"] = meta["name"]
    if (sts.get("spec") or {}).get("serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    claims = claims_for(sts, ordinal)
    names = {c["_template"] for c in claims}
    spec["volumes"] = [{"name": c["_template"], "persistentVolumeClaim": {"claimName": c["metadata"]["name"]}}
                       for c in claims] + [v for v in spec.get("volumes") or [] if v.get("name") not in names]
    if not spec["volumes"]:
        spec.pop("volumes")
    return pod


def revision_patch(sts: Obj) -> Obj:
    """Upstream getPatch: the revision data, a strategic merge patch replacing the template."""
    template = copy.deepcopy((sts.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def apply_revision(sts: Obj, revision: Obj) -> Obj:
    """Upstream ApplyRevision: the set with the revision's template."""
    out = copy.deepcopy(sts)
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    out.setdefault("spec", {})["template"] = template
    return out


def new_versioned_pod(current_set: Obj, update_set: Obj, current_rev: str, update_rev: str, ordinal: int) -> Obj:
    """Upstream newVersionedStatefulSetPod: below the partition (or, with a RollingUpdate
    lacking rollingUpdate, below currentReplicas) pods come back at the current revision."""
    us = (current_set.get("spec") or {}).get("updateStrategy") or {}
    ru = us.get("rollingUpdate")
    start = start_ordinal(current_set)
    if us.get("type", "RollingUpdate") == "RollingUpdate" and (
            (ru is None and ordinal < start + int((current_set.get("status") or {}).get("currentReplicas") or 0))
            or (ru is not None and ordinal < start + int(ru.get("partition") or 0))):
        pod, rev = new_pod(current_set, ordinal), current_rev
    else:
        pod, rev = new_pod(update_set, ordinal), update_rev
    pod["metadata"]["labels"][REVISION_LABEL] = rev
    return pod


# ---------------------------------------------------------------------- pod state
def phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_created(pod: Obj) -> bool:
    return bool(pod["metadata"].get("uid"))


def is_terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and _pods.is_pod_ready(pod)


def is_running_and_available(pod: Obj, min_ready: int) -> bool:
    return phase(pod) == "Running" and _pods.is_pod_available(pod, min_ready)


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def max_unavailable(sts: Obj) -> int:
    """Upstream getStatefulSetMaxUnavailable: int or percent of replicas (rounded down), at least 1."""
    ru = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    v = ru.get("maxUnavailable", 1)
    if v is None:
        v = 1
    if isinstance(v, str) and v.endswith("%"):
        n = int(math.floor(int(v[:-1]) * replicas_of(sts) / 100))
    else:
        n = int(v)
    return max(n, 1)


def replica_status(pods: list[Obj], min_ready: int, current_rev: str, update_rev: str) -> Obj:
    """Upstream computeReplicaStatus over the pods (created ones only)."""
    st = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0}
    for p in pods:
        if is_created(p):
            st["replicas"] += 1
        if is_running_and_ready(p):
            st["readyReplicas"] += 1
            if is_running_and_available(p, min_ready):
                st["availableReplicas"] += 1
        if is_created(p) and not is_terminating(p):
            if pod_revision(p) == current_rev:
                st["currentReplicas"] += 1
            if pod_revision(p) == update_rev:
                st["updatedReplicas"] += 1
    return st


# ---------------------------------------------------------------------- PVC retention
def _has_ref(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"].get("uid")
    return any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])


def retention(sts: Obj) -> tuple[str, str]:
    p = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return p.get("whenDeleted") or "Retain", p.get("whenScaled") or "Retain"


def claim_owner_matches(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """Upstream claimOwnerMatchesSetAndPod."""
    when_deleted, when_scaled = retention(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    has_set, has_pod = _has_ref(claim, sts), bool(pod["metadata"].get("uid")) and _has_ref(claim, pod)
    if when_scaled == "Retain" and when_deleted == "Retain":
        return not has_set and not has_pod
    if when_scaled == "Retain" and when_deleted == "Delete":
        return has_set and not has_pod
    if when_scaled == "Delete" and when_deleted == "Retain":
        return not has_set and scaled_down == has_pod
    return scaled_down != has_set and scaled_down == has_pod


def update_claim_owner_refs(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """Upstream updateClaimOwnerRefForSetAndPod: set/remove the (non-controller) owner refs
    of the set and the pod as the retention policy says; True if the claim changed."""
    when_deleted, when_scaled = retention(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    refs = list(claim["metadata"].get("ownerReferences") or [])
    before = copy.deepcopy(refs)

    def set_ref(owner: Obj, api_version: str, kind: str) -> None:
        if owner["metadata"].get("uid") and not any(r.get("uid") == owner["metadata"]["uid"] for r in refs):
            refs.append({"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"],
                         "uid": owner["metadata"]["uid"]})

    def remove_ref(owner: Obj) -> None:
        refs[:] = [r for r in refs if r.get("uid") != owner["metadata"].get("uid")]

    want_set = when_deleted == "Delete" and not (when_scaled == "Delete" and scaled_down)
    want_pod = when_scaled == "Delete" and scaled_down
    if want_set:
        set_ref(sts, API_VERSION, KIND)
    else:
        remove_ref(sts)
    if want_pod:
        set_ref(pod, "v1", "Pod")
    elif pod["metadata"].get("uid"):
        remove_ref(pod)
    claim["metadata"]["ownerReferences"] = refs
    return refs != before


def has_stale_owner_ref(claim: Obj, pod: Obj) -> bool:
    """A claim owned by an earlier pod of the same name (its UID differs)."""
    for r in claim["metadata"].get("ownerReferences") or []:
        if r.get("kind") == "Pod" and r.get("name") == pod["metadata"]["name"] and \
                r.get("uid") != pod["metadata"].get("uid"):
            return True
    return False


class _Expectations(_pods.Expectations):
    """The shared expectations, counted up one create/delete at a time."""

    def add_creation(self, key: str) -> None:
        self.expect_creations(key, self.pending(key)[0] + 1)

    def add_deletion(self, key: str, pod_key: str) -> None:
        current = set(self._dels.get(key) or ())
        current.add(pod_key)
        self.expect_deletions(key, current)


class StatefulSetController(Controller, _pods.PodOwnerHandlers):
    name = "statefulset"
    workers = 5
    owner_kind, owner_group = KIND, "apps"

    def setup(self) -> None:
        self.expectations = _Expectations()
        self.sts_api = self.resource("apps", "v1", "statefulsets")
        self.pods_api = self.resource("", "v1", "pods")
        self.pvc_api = self.resource("", "v1", "persistentvolumeclaims")
        self.sets = self.watch("apps", "v1", "statefulsets")
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.hook_pod_handlers(self.pods)
        self.revs = self.watch("apps", "v1", "controllerrevisions", enqueue=None)
        self.pvcs = self.watch("", "v1", "persistentvolumeclaims", enqueue=self._claim_owner)

    # ------------------------------------------------------------------ events
    def owner_selects(self, owner: Obj, pod: Obj) -> bool:
        # a set adopts only pods named as its members
        return is_member_of(owner, pod) and super().owner_selects(owner, pod)

    def _claim_owner(self, pvc: Obj) -> Optional[str]:
        # a claim `<template>-<set>-<ordinal>`: wake its set (stale claims being removed)
        ns = pvc["metadata"].get("namespace") or ""
        for s in self.sets.by_namespace(ns):
            if f"-{s['metadata']['name']}-" in pvc["metadata"]["name"]:
                self.enqueue(object_key(s))
        return None

    # ------------------------------------------------------------------ sync
    async def reconcile(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None:
            self.expectations.delete(key)
            return
        if not self.expectations.satisfied(key):
            return  # the awaited pod events enqueue the set again
        sts = copy.deepcopy(sts)
        ns = sts["metadata"].get("namespace") or ""
        selector = from_label_selector((sts.get("spec") or {}).get("selector"))
        ref = _pods.controller_ref(sts, API_VERSION, KIND)

        async def recheck() -> Optional[Obj]:
            try:
                return await self.sts_api.get(sts["metadata"]["name"], ns)
            except NotFound:
                return None

        candidates = [p for p in self.pods.by_namespace(ns) if is_member_of(sts, p)]
        pods = await _pods.claim(self.pods_api, sts, selector, candidates, ref, recheck=recheck)
        revs = history.owned_revisions(sts, self.revs.by_namespace(ns))
        result = await history.ensure_revision(self.client, sts, revision_patch(sts), revisions=revs,
                                               kind=KIND, api_version=API_VERSION)
        current, update = result
        status: Obj = {}
        err: Optional[BaseException] = None
        try:
            status = await self._update_set(key, sts, current, update, result.collision_count, pods)
        except (Conflict, NotFound, Forbidden, ReconcileError) as e:
            err = e
        finally:
            if status:
                await self._write_status(sts, status)
        live = {current["metadata"]["name"], update["metadata"]["name"]} | {pod_revision(p) for p in pods}
        await history.truncate_history(self.client, result.all, (sts.get("spec") or {}).get("revisionHistoryLimit"),
                                       live)
        if err is not None:
            raise Requeue(reason=f"{key}: {err}")
        mrs = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if mrs > 0 and status and status.get("availableReplicas") != replicas_of(sts):
            raise Requeue(after=float(mrs))

    async def _update_set(self, key: str, sts: Obj, current: Obj, update: Obj, collisions: int,
                          pods: list[Obj]) -> Obj:
        """Upstream updateStatefulSet; returns the status to write.  Its progress is written
        into `status` as it goes, so an early exit still reports what was seen."""
        current_set, update_set = apply_revision(sts, current), apply_revision(sts, update)
        cur_name, upd_name = current["metadata"]["name"], update["metadata"]["name"]
        spec = sts.get("spec") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        status: Obj = {"observedGeneration": sts["metadata"].get("generation"), "currentRevision": cur_name,
                       "updateRevision": upd_name, "collisionCount": collisions}
        start, n = start_ordinal(sts), replicas_of(sts)
        replicas: list[Optional[Obj]] = [None] * n
        condemned: list[Obj] = []
        for p in pods:
            o = get_ordinal(p)
            if start <= o < start + n:
                replicas[o - start] = p
            elif o >= 0:
                condemned.append(p)
        for i in range(n):
            if replicas[i] is None:
                replicas[i] = new_versioned_pod(current_set, update_set, cur_name, upd_name, start + i)
        reps: list[Obj] = replicas  # type: ignore[assignment]
        condemned.sort(key=get_ordinal, reverse=True)

        def refresh() -> Obj:
            status.update(replica_status(reps + condemned, mrs, cur_name, upd_name))
            return status

        refresh()
        first_unhealthy = next((p for p in reps if not is_healthy(p)), None)
        if first_unhealthy is None:
            first_unhealthy = next((p for p in reversed(condemned) if not is_healthy(p)), None)
        if sts["metadata"].get("deletionTimestamp"):
            return status
        monotonic = (spec.get("podManagementPolicy") or "OrderedReady") != "Parallel"

        # 1. every replica exists, is healthy (monotonic) and has its identity
        for i in range(n):
            if await self._process_replica(key, sts, current_set, update_set, cur_name, upd_name, monotonic, reps, i):
                return refresh()
        # 2. claims of condemned pods follow the retention policy
        for p in condemned:
            await self._fix_claims(update_set, p)
        # 3. scale down, highest ordinal first
        for p in condemned:
            if is_terminating(p):
                if monotonic:
                    return refresh()
                continue
            if monotonic and p is not first_unhealthy and not is_running_and_available(p, mrs):
                return refresh()
            await self._delete_pod(key, sts, p)
            if monotonic:
                return refresh()
        refresh()
        us = spec.get("updateStrategy") or {}
        if us.get("type", "RollingUpdate") == "OnDelete":
            return status
        # 4. rolling update (upstream updateStatefulSetAfterInvariantEstablished)
        update_min = int((us.get("rollingUpdate") or {}).get("partition") or 0)
        unavailable = sum(1 for p in reps if not is_healthy(p))
        budget = max_unavailable(sts) - unavailable
        target = n - 1
        while target >= update_min and budget > 0:
            p = reps[target]
            if pod_revision(p) != upd_name and not is_terminating(p):
                await self._delete_pod(key, sts, p)
                status["currentReplicas"] -= 1
                budget -= 1
            target -= 1
        return status

    async def _process_replica(self, key: str, sts: Obj, current_set: Obj, update_set: Obj, cur_name: str,
                               upd_name: str, monotonic: bool, reps: list[Obj], i: int) -> bool:
        """Upstream processReplica; True means stop this round."""
        ordinal = start_ordinal(sts) + i
        pod = reps[i]
        if phase(pod) in ("Failed", "Succeeded"):
            await self._delete_pod(key, sts, pod)
            reps[i] = pod = new_versioned_pod(current_set, update_set, cur_name, upd_name, ordinal)
            if monotonic:
                return True
        if not is_created(pod):
            if await self._claims_stale(sts, pod):
                return True
            await self._create_pod(key, sts, pod)
            return monotonic
        if phase(pod) == "Pending":
            await self._create_claims(sts, get_ordinal(pod))
        if monotonic and (is_terminating(pod) or not is_running_and_ready(pod) or
                          not is_running_and_available(pod, int(sts["spec"].get("minReadySeconds") or 0))):
            return True
        retention_ok = await self._claims_match(update_set, pod)
        if identity_matches(sts, pod) and retention_ok:
            return False
        if not identity_matches(sts, pod):
            o = get_ordinal(pod)
            labels = {**(pod["metadata"].get("labels") or {}), POD_NAME_LABEL: pod["metadata"]["name"],
                      POD_INDEX_LABEL: str(o)}
            try:
                reps[i] = await self.pods_api.patch(pod["metadata"]["name"], {"metadata": {
                    "labels": labels, "resourceVersion": pod["metadata"].get("resourceVersion")}},
                    namespace=pod["metadata"]["namespace"])
            except (Conflict, NotFound):
                return True
        if not retention_ok:
            await self._fix_claims(update_set, pod)
        return False

    # ------------------------------------------------------------------ pods and claims
    async def _create_claims(self, sts: Obj, ordinal: int) -> dict[str, Obj]:
        """Upstream createPersistentVolumeClaims: create the missing claims; a claim being
        deleted blocks the pod.  Answers the claims it created, by name (fresher than
        the informer, which may not have seen them yet)."""
        created: dict[str, Obj] = {}
        for c in claims_for(sts, ordinal):
            c.pop("_template", None)
            have = self.pvcs.get(f"{c['metadata']['namespace']}/{c['metadata']['name']}")
            if have is None:
                try:
                    have = await self.pvc_api.get(c["metadata"]["name"], c["metadata"]["namespace"])
                except NotFound:
                    claim = c["metadata"]["name"]
                    # the set's own reference (whenDeleted=Delete) goes on at creation, so a
                    # claim is never without it; the pod's reference needs the pod's uid
                    update_claim_owner_refs(c, sts, {"metadata": {"name": pod_name(sts, ordinal)}})
                    if not c["metadata"].get("ownerReferences"):
                        c["metadata"].pop("ownerReferences", None)
                    try:
                        made = await self.pvc_api.create(c, c["metadata"]["namespace"])
                        created[made["metadata"]["name"]] = made
                    except AlreadyExists:
                        pass
                    except APIStatusError as e:
                        self.recorder.event(sts, "Warning", "FailedCreate",
                                            f"create Claim {claim} for Pod {sts['metadata']['name']}-{ordinal} in "
                                            f"StatefulSet {sts['metadata']['name']} failed error: {e.message or e}",
                                            action="Create")
                        raise
                    else:
                        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                            f"create Claim {claim} Pod {sts['metadata']['name']}-{ordinal} in "
                                            f"StatefulSet {sts['metadata']['name']} success", action="Create")
                    continue
            if have["metadata"].get("deletionTimestamp"):
                raise ReconcileError(f"pvc {c['metadata']['name']} is being deleted")
        return created

    def _claims_of(self, sts: Obj, pod: Obj) -> list[Obj]:
        ns = sts["metadata"].get("namespace")
        out = []
        for c in claims_for(sts, get_ordinal(pod)):
            have = self.pvcs.get(f"{ns}/{c['metadata']['name']}")
            if have is not None:
                out.append(have)
        return out

    async def _claims_stale(self, sts: Obj, pod: Obj) -> bool:
        return any(has_stale_owner_ref(c, pod) for c in self._claims_of(sts, pod))

    async def _claims_match(self, sts: Obj, pod: Obj) -> bool:
        return all(claim_owner_matches(c, sts, pod) for c in self._claims_of(sts, pod))

    async def _update_claim(self, claim: Obj) -> None:
        """Write a claim's owner references with an update (upstream's UpdateClaim): the
        controller's role may update claims, not patch them."""
        if not claim["metadata"].get("ownerReferences"):
            claim["metadata"].pop("ownerReferences", None)
        await self.pvc_api.update(claim, claim["metadata"]["namespace"])

    async def _fix_claims(self, sts: Obj, pod: Obj) -> None:
        """Upstream UpdatePodClaimForRetentionPolicy."""
        for c in self._claims_of(sts, pod):
            c = copy.deepcopy(c)
            if update_claim_owner_refs(c, sts, pod):
                try:
                    await self._update_claim(c)
                except (Conflict, NotFound):
                    pass  # seen again on the next sync

    async def _create_pod(self, key: str, sts: Obj, pod: Obj) -> None:
        """Upstream CreateStatefulPod: the claims first, then the pod, then claim owner refs."""
        fresh = await self._create_claims(sts, get_ordinal(pod))
        self.expectations.add_creation(key)
        created = await _pods.create_pod(self, key, sts, pod, skip=lambda e: isinstance(e, AlreadyExists),
                                         record=lambda o, p, e: self._pod_event(o, p, "create", e),
                                         observe_failure=True)
        if created is None:
            return
        ns = sts["metadata"].get("namespace")
        claims = [fresh.get(c["metadata"]["name"]) or self.pvcs.get(f"{ns}/{c['metadata']['name']}")
                  for c in claims_for(sts, get_ordinal(created))]
        for c in claims:
            if c is None:
                continue  # not seen yet: the next sync sets its owner references
            c = copy.deepcopy(c)
            if update_claim_owner_refs(c, sts, created):
                try:
                    await self._update_claim(c)
                except (Conflict, NotFound):
                    pass  # a claim that changed meanwhile is fixed on the next sync

    async def _delete_pod(self, key: str, sts: Obj, pod: Obj) -> None:
        pk = object_key(pod)
        self.expectations.add_deletion(key, pk)
        try:
            await self.pods_api.delete(pod["metadata"]["name"], pod["metadata"]["namespace"],
                                       preconditions={"uid": pod["metadata"]["uid"]})
        except (NotFound, Conflict):
            self.expectations.deletion_observed(key, pk)
            return
        except BaseException as e:
            self.expectations.deletion_observed(key, pk)
            if isinstance(e, APIStatusError):
                self._pod_event(sts, pod, "delete", e)
            raise
        self._pod_event(sts, pod, "delete")

    def _pod_event(self, sts: Obj, pod: Obj, verb: str, err: Optional[APIStatusError] = None) -> None:
        """Upstream recordPodEvent's wording."""
        what = f"{verb} Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']}"
        reason = ("Failed" if err else "Successful") + verb.capitalize()
        note = f"{what} failed error: {err.message or err}" if err else f"{what} successful"
        self.recorder.event(sts, "Warning" if err else "Normal", reason, note, action=verb.capitalize(), related=pod)

    # ------------------------------------------------------------------ status
    async def _write_status(self, sts: Obj, status: Obj) -> None:
        """Upstream updateStatefulSetStatus: finish a rolling update whose pods are all
        updated and ready, then write status if it changed."""
        us = (sts.get("spec") or {}).get("updateStrategy") or {}
        if us.get("type", "RollingUpdate") == "RollingUpdate" and \
                status.get("updatedReplicas") == status.get("replicas") and \
                status.get("readyReplicas") == status.get("replicas"):
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = status["updateRevision"]
        old = sts.get("status") or {}
        if all(old.get(k, 0 if isinstance(v, int) else None) == v for k, v in status.items()):
            return
        body = copy.deepcopy(sts)
        for _ in range(3):
            body["status"] = {**(body.get("status") or {}), **status}
            try:
                await self.sts_api.update_status(body)
                return
            except NotFound:
                return
            except Conflict:
                try:
                    body = await self.sts_api.get(sts["metadata"]["name"], sts["metadata"]["namespace"])
                except NotFound:
                    return
                if body["metadata"].get("generation") != sts["metadata"].get("generation"):
                    return  # a newer spec: the next sync writes its status
        raise Requeue(reason="status update conflicted")
