"""The DaemonSet controller: one daemon pod on every eligible node, as upstream's
pkg/controller/daemon.

A node is eligible when the pod the DaemonSet would put there fits it: the template's
nodeName (if any), nodeSelector and required node affinity match, and the node's
NoSchedule/NoExecute taints are tolerated, counting the tolerations every daemon pod
gets automatically (not-ready/unreachable NoExecute; disk-, memory-, pid-pressure and
unschedulable NoSchedule; network-unavailable for hostNetwork pods).  A pod already on
a node that only fails NoSchedule taints keeps running.

Pods are not bound by the controller: since 1.12 each pod carries a required node
affinity `matchFields metadata.name In [<node>]` and the default scheduler places it.

Every distinct template is a ControllerRevision `<ds>-<hash>` whose `data` is the
strategic-merge patch `{"spec": {"template": {..., "$patch": "replace"}}}` (so that
`kubectl rollout undo daemonset --to-revision=N` simply applies it), labelled with the
template's labels plus `controller-revision-hash`; pods carry the same label.  The
newest revision number is the current one; old revisions beyond revisionHistoryLimit
and not used by live pods are deleted, oldest first.  Hash collisions bump
status.collisionCount.

Updates: RollingUpdate deletes old pods within maxUnavailable (and the manage loop
recreates them), or with maxSurge > 0 starts new pods next to old ones and deletes an
old pod once its replacement is available; OnDelete leaves old pods until someone
deletes them.

(The generic ControllerRevision helpers in controllers/history.py were not there when
this was written; the few this controller needs are private to this module.)
"""

from __future__ import annotations

import copy
from typing import Any, Iterable, Optional

from kybernetes.api.selectors import from_label_selector
from kybernetes.client.errors import AlreadyExists, APIStatusError, Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers import _pods
from kybernetes.controllers.base import Controller, Requeue
from kybernetes.controllers.deployment import compute_hash, int_or_percent
from kybernetes.scheduler.plugins.helpers import find_untolerated, match_node_selector_terms

Obj = dict[str, Any]

HASH_LABEL = "controller-revision-hash"  # apps.ControllerRevisionHashLabelKey
TEMPLATE_GENERATION_LABEL = "pod-template-generation"  # deprecated, still written by upstream
BURST_REPLICAS = 250  # upstream BurstReplicas for DaemonSets
API_VERSION, KIND = "apps/v1", "DaemonSet"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


# ---------------------------------------------------------------------- daemon pods
def _toleration_matches(a: Obj, b: Obj) -> bool:
    """Toleration.MatchToleration: same key, operator, value and effect."""
    return ((a.get("key") or "") == (b.get("key") or "") and (a.get("effect") or "") == (b.get("effect") or "")
            and (a.get("operator") or "Equal") == (b.get("operator") or "Equal")
            and (a.get("value") or "") == (b.get("value") or ""))


def add_or_update_toleration(spec: Obj, toleration: Obj) -> None:
    """upstream AddOrUpdateTolerationInPodSpec."""
    out, updated = [], False
    for t in spec.get("tolerations") or []:
        if _toleration_matches(toleration, t):
            if t == toleration:
                return
            out.append(dict(toleration))
            updated = True
            continue
        out.append(t)
    if not updated:
        out.append(dict(toleration))
    spec["tolerations"] = out


def add_daemon_tolerations(spec: Obj) -> None:
    """upstream util.AddOrUpdateDaemonPodTolerations."""
    for key, effect in ((TAINT_NOT_READY, "NoExecute"), (TAINT_UNREACHABLE, "NoExecute"),
                        (TAINT_DISK_PRESSURE, "NoSchedule"), (TAINT_MEMORY_PRESSURE, "NoSchedule"),
                        (TAINT_PID_PRESSURE, "NoSchedule"), (TAINT_UNSCHEDULABLE, "NoSchedule")):
        add_or_update_toleration(spec, {"key": key, "operator": "Exists", "effect": effect})
    if spec.get("hostNetwork"):
        add_or_update_toleration(spec, {"key": TAINT_NETWORK_UNAVAILABLE, "operator": "Exists", "effect": "NoSchedule"})


def node_name_affinity(affinity: Optional[Obj], node_name: str) -> Obj:
    """upstream util.ReplaceDaemonSetPodNodeNameNodeAffinity: the required node
    affinity becomes exactly `matchFields metadata.name In [node]`; the rest stays."""
    affinity = copy.deepcopy(affinity) if affinity else {}
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    na = affinity.setdefault("nodeAffinity", {})
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not req:
        na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    else:
        req["nodeSelectorTerms"] = [term]
    return affinity


def target_node_name(pod: Obj) -> Optional[str]:
    """upstream util.GetTargetNodeName: spec.nodeName, else the node named by the
    matchFields node affinity the controller put on the pod."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in req.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None


def create_pod_template(ds: Obj, hash_: str) -> Obj:
    """upstream util.CreatePodTemplate: the template plus the daemon tolerations, the
    template-generation and revision-hash labels."""
    t = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    spec = t.setdefault("spec", {})
    add_daemon_tolerations(spec)
    labels = t.setdefault("metadata", {}).setdefault("labels", {})
    gen = (ds.get("metadata") or {}).get("generation")
    if gen is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(gen)
    if hash_:
        labels[HASH_LABEL] = hash_
    return t


def node_should_run_daemon_pod(node: Obj, ds: Obj) -> tuple[bool, bool]:
    """upstream NodeShouldRunDaemonPod: (should run a pod there, may keep running one)."""
    tspec = copy.deepcopy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    name = node["metadata"]["name"]
    if tspec.get("nodeName") and tspec["nodeName"] != name:
        return False, False
    add_daemon_tolerations(tspec)
    labels = node["metadata"].get("labels") or {}
    for k, v in (tspec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False, False
    req = (((tspec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if req and not match_node_selector_terms(req.get("nodeSelectorTerms") or [], node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tols = tspec.get("tolerations") or []
    if find_untolerated(taints, tols, ("NoSchedule", "NoExecute")) is not None:
        return False, find_untolerated(taints, tols, ("NoExecute",)) is None
    return True, True


def is_pod_updated(pod: Obj, hash_: str, generation: Optional[int] = None) -> bool:
    """upstream util.IsPodUpdated."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == str(generation):
        return True
    return bool(hash_) and labels.get(HASH_LABEL) == hash_


def _by_creation_and_phase(pod: Obj) -> tuple:
    """podByCreationTimestampAndPhase: scheduled first, then oldest, then by name."""
    meta = pod.get("metadata") or {}
    return (0 if (pod.get("spec") or {}).get("nodeName") else 1,
            _pods.parse_time(meta.get("creationTimestamp")) or 0.0, meta.get("name") or "")


def find_updated_pods_on_node(pods: Iterable[Obj], hash_: str) -> tuple[Optional[Obj], Optional[Obj], bool]:
    """upstream findUpdatedPodsOnNode: (new pod, old pod, ok) — not ok when a node has
    two new or two old pods (the manage loop cleans that up first)."""
    new = old = None
    for p in pods:
        if p["metadata"].get("deletionTimestamp"):
            continue
        if is_pod_updated(p, hash_):
            if new is not None:
                return None, None, False
            new = p
        else:
            if old is not None:
                return None, None, False
            old = p
    return new, old, True


def surge_and_unavailable(ds: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against the desired count, both rounding up;
    an impossible 0/0 means maxUnavailable 1 (upstream updatedDesiredNodeCounts)."""
    us = (ds.get("spec") or {}).get("updateStrategy") or {}
    surge = unavailable = 0
    if us.get("type") == "RollingUpdate":
        ru = us.get("rollingUpdate") or {}
        unavailable = int_or_percent(ru.get("maxUnavailable", 1), desired, True)
        surge = int_or_percent(ru.get("maxSurge", 0), desired, True)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def allows_surge(ds: Obj) -> bool:
    us = (ds.get("spec") or {}).get("updateStrategy") or {}
    if us.get("type") != "RollingUpdate":
        return False
    v = (us.get("rollingUpdate") or {}).get("maxSurge")
    return int_or_percent(v, 100, True) > 0 if v is not None else False


# ---------------------------------------------------------------------- history
def revision_patch(ds: Obj) -> Obj:
    """upstream getPatch: what a ControllerRevision stores — the template, replacing."""
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_matches(ds: Obj, rev: Obj) -> bool:
    return rev.get("data") == revision_patch(ds)


def max_revision(revs: Iterable[Obj]) -> int:
    return max((int(r.get("revision") or 0) for r in revs), default=0)


# ---------------------------------------------------------------------- status
def calculate_status(ds: Obj, nodes: list[Obj], node_to_pods: dict[str, list[Obj]], hash_: str,
                     now: Optional[float] = None) -> Obj:
    """upstream updateDaemonSetStatus's counting."""
    mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    desired = current = mis = ready = updated = available = 0
    for node in nodes:
        should_run, _ = node_should_run_daemon_pod(node, ds)
        pods = node_to_pods.get(node["metadata"]["name"]) or []
        if should_run:
            desired += 1
            if not pods:
                continue
            current += 1
            pod = sorted(pods, key=_by_creation_and_phase)[0]
            if _pods.is_pod_ready(pod):
                ready += 1
                if _pods.is_pod_available(pod, mrs, now):
                    available += 1
            if is_pod_updated(pod, hash_):
                updated += 1
        elif pods:
            mis += 1
    return {"desiredNumberScheduled": desired, "currentNumberScheduled": current, "numberMisscheduled": mis,
            "numberReady": ready, "updatedNumberScheduled": updated, "numberAvailable": available,
            "numberUnavailable": desired - available}


_STATUS_KEYS = ("desiredNumberScheduled", "currentNumberScheduled", "numberMisscheduled", "numberReady",
                "updatedNumberScheduled", "numberAvailable", "numberUnavailable", "observedGeneration")


class DaemonSetController(Controller, _pods.PodOwnerHandlers):
    name = "daemonset"
    workers = 2
    owner_kind, owner_group = KIND, "apps"
    burst_replicas = BURST_REPLICAS

    def setup(self) -> None:
        self.expectations = _pods.Expectations()
        self.ds_api = self.resource("apps", "v1", "daemonsets")
        self.pods_api = self.resource("", "v1", "pods")
        self.revs_api = self.resource("apps", "v1", "controllerrevisions")
        self.sets = self.watch("apps", "v1", "daemonsets")
        self.pods = self.watch("", "v1", "pods", enqueue=None)
        self.hook_pod_handlers(self.pods)
        self.nodes = self.watch("", "v1", "nodes", enqueue=None)
        self.nodes.add_handlers(on_add=lambda n: self._enqueue_all(), on_update=self._node_updated,
                                on_delete=lambda n: self._enqueue_all())
        self.revisions = self.watch("apps", "v1", "controllerrevisions", enqueue=self._revision_owner)

    # ------------------------------------------------------------------ events
    def _enqueue_all(self) -> None:
        for ds in self.sets.list():
            self.enqueue(object_key(ds))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        # upstream shouldIgnoreNodeUpdate: only what decides eligibility matters
        if (old["metadata"].get("labels") != new["metadata"].get("labels")
                or (old.get("spec") or {}) != (new.get("spec") or {})):
            self._enqueue_all()

    def _revision_owner(self, rev: Obj) -> Optional[str]:
        return self._owner_key(rev)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> None:
        ds = self.sets.get(key)
        if ds is None:
            self.expectations.delete(key)
            return
        ds = copy.deepcopy(ds)
        spec = ds.get("spec") or {}
        if spec.get("selector") == {}:
            return  # selects everything: upstream refuses (SelectingAll)
        if ds["metadata"].get("deletionTimestamp"):
            return  # owned history may be half gone: leave status alone, as upstream
        nodes = self.nodes.list()
        cur, old = await self._construct_history(ds)
        hash_ = (cur["metadata"].get("labels") or {}).get(HASH_LABEL) or ""
        if not self.expectations.satisfied(key):
            await self._update_status(ds, nodes, hash_, update_generation=False)
            return
        err: Optional[BaseException] = None
        try:
            await self._manage(key, ds, nodes, hash_)
            if self.expectations.satisfied(key):
                if (spec.get("updateStrategy") or {}).get("type") == "RollingUpdate":
                    await self._rolling_update(key, ds, nodes, hash_)
            await self._cleanup_history(ds, old)
        except (APIStatusError, Requeue) as e:
            err = e
        ds = await self._update_status(ds, nodes, hash_, update_generation=True)
        if err is not None:
            raise err
        mrs = int(spec.get("minReadySeconds") or 0)
        st = ds.get("status") or {}
        if mrs > 0 and st.get("numberReady") != st.get("numberAvailable"):
            raise Requeue(after=float(mrs))

    # ------------------------------------------------------------------ pods
    async def _daemon_pods(self, ds: Obj) -> list[Obj]:
        """The pods this DaemonSet controls, after adopting matching orphans and
        releasing owned pods that stopped matching."""
        sel = from_label_selector((ds.get("spec") or {}).get("selector"))
        ns = ds["metadata"]["namespace"]
        candidates = [p for p in self.pods.by_namespace(ns)]
        ref = _pods.controller_ref(ds, API_VERSION, KIND)

        async def recheck() -> Optional[Obj]:
            try:
                return await self.ds_api.get(ds["metadata"]["name"], ns)
            except NotFound:
                return None

        return await _pods.claim(self.pods_api, ds, sel, candidates, ref, recheck=recheck)

    async def _nodes_to_daemon_pods(self, ds: Obj, include_deleted_terminal: bool = False) -> dict[str, list[Obj]]:
        out: dict[str, list[Obj]] = {}
        for p in await self._daemon_pods(ds):
            if (not include_deleted_terminal and p["metadata"].get("deletionTimestamp")
                    and (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")):
                continue
            node = target_node_name(p)
            if node is None:
                continue
            out.setdefault(node, []).append(p)
        return out

    def _pods_should_be_on_node(self, node: Obj, node_to_pods: dict[str, list[Obj]], ds: Obj,
                                hash_: str) -> tuple[list[str], list[Obj]]:
        """upstream podsShouldBeOnNode: (nodes needing a pod, pods to delete)."""
        should_run, should_continue = node_should_run_daemon_pod(node, ds)
        name = node["metadata"]["name"]
        pods = node_to_pods.get(name)
        need: list[str] = []
        delete: list[Obj] = []
        if should_run and not pods:
            need.append(name)
        elif should_continue and pods:
            running = []
            for p in pods:
                if p["metadata"].get("deletionTimestamp"):
                    continue
                phase = (p.get("status") or {}).get("phase")
                if phase in ("Failed", "Succeeded"):
                    delete.append(p)
                else:
                    running.append(p)
            running.sort(key=_by_creation_and_phase)
            if not allows_surge(ds):
                delete += running[1:]
            elif len(running) <= 1:
                if not running and should_run:
                    need.append(name)
            else:
                oldest_new = oldest_old = None
                for p in running:
                    if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == hash_:
                        if oldest_new is None:
                            oldest_new = p
                            continue
                    elif oldest_old is None:
                        oldest_old = p
                        continue
                    delete.append(p)
                if oldest_new is not None and oldest_old is not None:
                    if not _pods.is_pod_ready(oldest_old) or _pods.is_pod_ready(oldest_new):
                        delete.append(oldest_old)
        elif not should_continue and pods:
            delete += [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return need, delete

    async def _manage(self, key: str, ds: Obj, nodes: list[Obj], hash_: str) -> None:
        node_to_pods = await self._nodes_to_daemon_pods(ds)
        need: list[str] = []
        delete: list[Obj] = []
        for node in nodes:
            n, d = self._pods_should_be_on_node(node, node_to_pods, ds, hash_)
            need += n
            delete += d
        # pods aimed at nodes that no longer exist and never got scheduled
        names = {n["metadata"]["name"] for n in nodes}
        for node_name, pods in node_to_pods.items():
            if node_name not in names:
                delete += [p for p in pods if not (p.get("spec") or {}).get("nodeName")
                           and not p["metadata"].get("deletionTimestamp")]
        await self._sync_nodes(key, ds, delete, need, hash_)

    async def _sync_nodes(self, key: str, ds: Obj, delete: list[Obj], create_on: list[str], hash_: str) -> None:
        """upstream syncNodes: create a pod on each node (slow-start batches) and delete
        the given pods, within burstReplicas, under expectations."""
        create_on = create_on[:self.burst_replicas]
        delete = delete[:self.burst_replicas]
        self.expectations.expect_deletions(key, [object_key(p) for p in delete])
        ref = _pods.controller_ref(ds, API_VERSION, KIND)
        template = create_pod_template(ds, hash_)
        pending = list(create_on)

        def make() -> Obj:
            t = copy.deepcopy(template)
            t["spec"]["affinity"] = node_name_affinity(t["spec"].get("affinity"), pending.pop(0))
            return _pods.pod_from_template(t, ds, ref)

        create_err = await _pods.create_pods(self, key, ds, len(create_on), make, "daemon pods")
        delete_err = await _pods.delete_pods(self, key, ds, delete)
        if create_err is not None or delete_err is not None:
            raise create_err or delete_err

    async def _rolling_update(self, key: str, ds: Obj, nodes: list[Obj], hash_: str) -> None:
        """upstream rollingUpdate (with and without surge)."""
        node_to_pods = await self._nodes_to_daemon_pods(ds)
        by_name = {n["metadata"]["name"]: n for n in nodes}
        desired = sum(1 for n in nodes if node_should_run_daemon_pod(n, ds)[0])
        max_surge, max_unavailable = surge_and_unavailable(ds, desired)
        mrs = int((ds.get("spec") or {}).get("minReadySeconds") or 0)

        def available(p: Obj) -> bool:
            return _pods.is_pod_available(p, mrs)

        if max_surge == 0:
            num_unavailable = 0
            replace: list[Obj] = []
            candidates: list[Obj] = []
            for node_name in sorted(node_to_pods):
                new, old, ok = find_updated_pods_on_node(node_to_pods[node_name], hash_)
                if not ok:
                    num_unavailable += 1
                    continue
                if (old is None and new is None) or (old is not None and new is not None):
                    num_unavailable += 1
                elif new is not None:
                    if not available(new):
                        num_unavailable += 1
                elif old is not None:
                    if not available(old):
                        replace.append(old)
                    elif num_unavailable < max_unavailable:
                        candidates.append(old)
            remaining = max(0, min(max_unavailable - num_unavailable, len(candidates)))
            await self._sync_nodes(key, ds, replace + candidates[:remaining], [], hash_)
            return

        to_delete: list[Obj] = []
        should_not_run: list[Obj] = []
        candidate_nodes: list[str] = []
        allowed_nodes: list[str] = []
        num_surge = num_available = 0
        for node_name in sorted(node_to_pods):
            new, old, ok = find_updated_pods_on_node(node_to_pods[node_name], hash_)
            if not ok:
                num_surge += 1
                continue
            if old is not None:
                num_available += available(old)
            elif new is not None:
                num_available += available(new)
            if old is None:
                continue
            node = by_name.get(node_name)
            should_run = node is not None and node_should_run_daemon_pod(node, ds)[0]
            if new is None:
                if not available(old):
                    if not should_run:
                        to_delete.append(old)
                        continue
                    allowed_nodes.append(node_name)
                else:
                    if not should_run:
                        should_not_run.append(old)
                        continue
                    if num_surge >= max_surge:
                        continue
                    candidate_nodes.append(node_name)
            else:
                if not available(new):
                    num_surge += 1
                    continue
                to_delete.append(old)
        remaining = max(0, min(max_surge - num_surge, len(candidate_nodes)))
        create_on = allowed_nodes + candidate_nodes[:remaining]
        if should_not_run:
            remaining_unavailable = max_unavailable - (desired - num_available)
            if remaining_unavailable > 0:
                to_delete += should_not_run[:remaining_unavailable]
        await self._sync_nodes(key, ds, to_delete, create_on, hash_)

    # ------------------------------------------------------------------ history
    def _controlled_revisions(self, ds: Obj) -> list[Obj]:
        sel = from_label_selector((ds.get("spec") or {}).get("selector"))
        uid = ds["metadata"]["uid"]
        out = []
        for r in self.revisions.by_namespace(ds["metadata"]["namespace"]):
            ref = _pods.get_controller_of(r)
            if ref is not None and ref.get("uid") == uid:
                out.append(r)
            elif ref is None and sel.matches(r["metadata"].get("labels") or {}):
                out.append(r)  # an orphan we adopt below
        return out

    async def _construct_history(self, ds: Obj) -> tuple[Obj, list[Obj]]:
        """upstream constructHistory: (the current revision, the old ones), creating or
        renumbering the current one as needed."""
        ns = ds["metadata"]["namespace"]
        current: list[Obj] = []
        old: list[Obj] = []
        for r in self._controlled_revisions(ds):
            r = copy.deepcopy(r)
            meta = r["metadata"]
            changed = False
            if _pods.get_controller_of(r) is None:
                meta["ownerReferences"] = list(meta.get("ownerReferences") or []) + [
                    _pods.controller_ref(ds, API_VERSION, KIND)]
                changed = True
            if HASH_LABEL not in (meta.get("labels") or {}):
                meta.setdefault("labels", {})[HASH_LABEL] = meta["name"]
                changed = True
            if changed:
                try:
                    r = await self.revs_api.update(r, ns)
                except (Conflict, NotFound):
                    raise Requeue(reason="controllerrevision changed") from None
            (current if revision_matches(ds, r) else old).append(r)
        next_rev = max_revision(old) + 1
        if not current:
            cur = await self._snapshot(ds, next_rev)
        else:
            current.sort(key=lambda r: int(r.get("revision") or 0))
            cur = current[-1]
            for dup in current[:-1]:  # upstream dedupCurHistories: relabel pods, drop dups
                await self._relabel_pods(ds, (dup["metadata"].get("labels") or {}).get(HASH_LABEL),
                                         (cur["metadata"].get("labels") or {}).get(HASH_LABEL))
                try:
                    await self.revs_api.delete(dup["metadata"]["name"], ns)
                except NotFound:
                    pass
            if int(cur.get("revision") or 0) < next_rev:
                body = copy.deepcopy(cur)
                body["revision"] = next_rev
                try:
                    cur = await self.revs_api.update(body, ns)
                except (Conflict, NotFound):
                    raise Requeue(reason="controllerrevision changed") from None
        return cur, old

    async def _relabel_pods(self, ds: Obj, old_hash: Optional[str], new_hash: Optional[str]) -> None:
        if not old_hash or not new_hash:
            return
        for p in await self._daemon_pods(ds):
            if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == old_hash:
                try:
                    await self.pods_api.patch(p["metadata"]["name"], {"metadata": {"labels": {HASH_LABEL: new_hash}}},
                                              namespace=p["metadata"]["namespace"])
                except NotFound:
                    pass

    async def _snapshot(self, ds: Obj, revision: int) -> Obj:
        ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
        collision = (ds.get("status") or {}).get("collisionCount")
        hash_ = compute_hash((ds.get("spec") or {}).get("template") or {}, collision)
        labels = dict(((ds.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {})
        labels[HASH_LABEL] = hash_
        meta: Obj = {"name": f"{name}-{hash_}", "namespace": ns, "labels": labels,
                     "ownerReferences": [_pods.controller_ref(ds, API_VERSION, KIND)]}
        if ds["metadata"].get("annotations"):
            meta["annotations"] = dict(ds["metadata"]["annotations"])
        body = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
                "data": revision_patch(ds), "revision": revision}
        try:
            return await self.revs_api.create(body, ns)
        except AlreadyExists:
            existing = await self.revs_api.get(meta["name"], ns)
            if revision_matches(ds, existing):
                return existing
            fresh = await self.ds_api.get(name, ns)
            if (fresh.get("status") or {}).get("collisionCount") != collision:
                raise Requeue(reason="stale collisionCount") from None
            fresh.setdefault("status", {})["collisionCount"] = int(collision or 0) + 1
            await self.ds_api.update_status(fresh)
            raise Requeue(reason=f"hash collision on {meta['name']}") from None

    async def _cleanup_history(self, ds: Obj, old: list[Obj]) -> None:
        limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        to_kill = len(old) - limit
        if to_kill <= 0:
            return
        live = {(p["metadata"].get("labels") or {}).get(HASH_LABEL)
                for pods in (await self._nodes_to_daemon_pods(ds, include_deleted_terminal=True)).values()
                for p in pods}
        for r in sorted(old, key=lambda r: int(r.get("revision") or 0)):
            if to_kill <= 0:
                break
            if (r["metadata"].get("labels") or {}).get(HASH_LABEL) in live:
                continue
            try:
                await self.revs_api.delete(r["metadata"]["name"], ds["metadata"]["namespace"])
            except NotFound:
                pass
            to_kill -= 1

    # ------------------------------------------------------------------ status
    async def _update_status(self, ds: Obj, nodes: list[Obj], hash_: str, *, update_generation: bool) -> Obj:
        node_to_pods = await self._nodes_to_daemon_pods(ds)
        status = calculate_status(ds, nodes, node_to_pods, hash_)
        body = ds
        for _ in range(2):
            old = body.get("status") or {}
            new = {**old, **status}
            if update_generation:
                new["observedGeneration"] = body["metadata"].get("generation")
            if all(old.get(k) == new.get(k) for k in _STATUS_KEYS):
                return body
            body = {**body, "status": new}
            try:
                return await self.ds_api.update_status(body)
            except NotFound:
                return ds
            except Conflict:
                try:
                    body = await self.ds_api.get(ds["metadata"]["name"], ds["metadata"]["namespace"])
                except NotFound:
                    return ds
        raise Requeue(reason="status update conflicted")
