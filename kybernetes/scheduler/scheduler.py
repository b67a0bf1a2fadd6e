"""The scheduler: watches pods and nodes through kybernetes.client, keeps the cache and the
queue, and runs scheduling cycles (synchronous, on the cache) then binding cycles
(asynchronous, concurrent), as upstream's scheduleOne / bindingCycle.

Leader election is a seam: `Scheduler.run_with(elector)` takes the same LeaderElector as
the controller manager; `start()` alone runs without election."""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from kybernetes.api.storagehelpers import pod_uses_claim
from kybernetes.client import APIStatusError, Client, Conflict, Informer, NotFound
from kybernetes.client.events import WARNING, EventBroadcaster, object_reference
from kybernetes.scheduler import queue as q_
from kybernetes.scheduler.cache import Cache
from kybernetes.scheduler.framework import Code, CycleState, Diagnosis, Framework, NodeInfo, Status, pod_key
from kybernetes.scheduler.plugins.volumebinding import storage_class_change_matters
from kybernetes.scheduler.profile import DEFAULT_SCHEDULER_NAME, default_profile
from kybernetes.scheduler.queue import QueuedPodInfo, SchedulingQueue

log = logging.getLogger("kybernetes.scheduler")
Obj = dict[str, Any]

ERR_NO_NODES = "no nodes available to schedule pods"
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
FILTER_CHUNK = 64


def num_feasible_nodes_to_find(num_all: int, percentage: int = 0) -> int:
    """Upstream's adaptive percentageOfNodesToScore."""
    if num_all < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all
    pct = percentage
    if pct <= 0:
        pct = max(50 - num_all // 125, MIN_FEASIBLE_NODES_PERCENTAGE)
    if pct >= 100:
        return num_all
    return max(num_all * pct // 100, MIN_FEASIBLE_NODES_TO_FIND)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _assigned(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


class FitError(Exception):
    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(diagnosis.message())
        self.diagnosis = diagnosis


class Scheduler:
    def __init__(self, client: Client, *, profiles: Optional[Sequence[Framework]] = None,
                 max_concurrent_binds: int = 64, record_scheduled_events: bool = True,
                 queue: Optional[SchedulingQueue] = None, close_client: bool = False,
                 percentage_of_nodes_to_score: int = 0) -> None:
        self.client = client
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score  # 0: upstream's adaptive default
        profiles = list(profiles) if profiles is not None else [default_profile(client)]
        self.profiles = {p.scheduler_name: p for p in profiles}
        self.cache = Cache()
        self.queue = queue or SchedulingQueue()
        self.pods = client.resource("", "v1", "pods")
        # events.k8s.io/v1 through the shared recorder, as upstream: one recorder per profile
        # whose reportingController is the profile's scheduler name
        self.event_broadcaster = EventBroadcaster(client)
        for fwk in self.profiles.values():
            fwk.recorder = self.event_broadcaster.recorder(fwk.scheduler_name)
        self.recorder = (self.profiles.get(DEFAULT_SCHEDULER_NAME) or next(iter(self.profiles.values()))).recorder
        self.pod_informer = Informer(self.pods, name="scheduler pods")
        self.node_informer = Informer(client.resource("", "v1", "nodes"), name="scheduler nodes")
        self.ns_informer = Informer(client.resource("", "v1", "namespaces"), name="scheduler namespaces")
        self.pdb_informer = Informer(client.resource("policy", "v1", "poddisruptionbudgets"), name="scheduler pdbs")
        # what selects pods: PodTopologySpread's system default constraints spread by it
        self.service_informer = Informer(client.resource("", "v1", "services"), name="scheduler services")
        self.workload_informers = {
            kind: Informer(client.resource(group, "v1", plural), name=f"scheduler {plural}")
            for kind, group, plural in (("ReplicationController", "", "replicationcontrollers"),
                                        ("ReplicaSet", "apps", "replicasets"),
                                        ("StatefulSet", "apps", "statefulsets"))}
        # storage the VolumeBinding plugin matches pods' claims against
        self.pv_informer = Informer(client.resource("", "v1", "persistentvolumes"), name="scheduler pvs")
        self.pvc_informer = Informer(client.resource("", "v1", "persistentvolumeclaims"), name="scheduler pvcs")
        self.sc_informer = Informer(client.resource("storage.k8s.io", "v1", "storageclasses"),
                                    name="scheduler storageclasses")
        self._bind_sem = asyncio.Semaphore(max_concurrent_binds)
        self.record_scheduled_events = record_scheduled_events
        self.close_client = close_client
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: Optional[asyncio.Task[None]] = None
        self._flush_task: Optional[asyncio.Task[None]] = None
        self._next_start = 0
        self.scheduled = 0
        self.attempts = 0
        self.latencies: list[float] = []  # queue-add to bound, seconds (bench/metrics)
        self._rand = random.Random()

    # ------------------------------------------------------------------ lifecycle
    async def start(self, *, sync_timeout: Optional[float] = 60) -> None:
        self.node_informer.add_handlers(self._on_node_add, self._on_node_update, self._on_node_delete)
        self.pod_informer.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        self.ns_informer.add_handlers(self.cache.set_namespace, lambda old, new: self._on_ns_update(new),
                                      self.cache.remove_namespace)
        self.pdb_informer.add_handlers(self._on_pdb, lambda old, new: self._on_pdb(new), self._on_pdb_delete)
        self.service_informer.add_handlers(self.cache.set_service, lambda old, new: self.cache.set_service(new),
                                           self.cache.remove_service)
        for kind, inf in self.workload_informers.items():
            inf.add_handlers(lambda o, k=kind: self.cache.set_workload(k, o),
                             lambda old, new, k=kind: self.cache.set_workload(k, new),
                             lambda o, k=kind: self.cache.remove_workload(k, o))
        vols = self.cache.volumes
        self.pv_informer.add_handlers(lambda o: self._on_volume(vols.set_pv, o, q_.PV_ADD),
                                      lambda old, new: self._on_volume(vols.set_pv, new, q_.PV_UPDATE),
                                      vols.remove_pv)
        self.pvc_informer.add_handlers(lambda o: self._on_pvc(o, q_.PVC_ADD),
                                       lambda old, new: self._on_pvc(new, q_.PVC_UPDATE),
                                       vols.remove_pvc)
        self.sc_informer.add_handlers(lambda o: self._on_volume(vols.set_class, o, q_.STORAGE_CLASS_ADD),
                                      self._on_storage_class_update, vols.remove_class)
        informers = (self.ns_informer, self.pdb_informer, self.service_informer, *self.workload_informers.values(),
                     self.sc_informer, self.pv_informer, self.pvc_informer, self.node_informer, self.pod_informer)
        for inf in informers:
            inf.start()
        for inf in informers:
            if not await inf.wait_synced(sync_timeout):
                raise TimeoutError(f"scheduler: informer {inf.name} did not sync")
        loop = asyncio.get_running_loop()
        self._loop_task = loop.create_task(self._run(), name="scheduler loop")
        self._flush_task = loop.create_task(self._flush_loop(), name="scheduler unschedulable flush")
        log.info("scheduler: running profiles %s", ", ".join(self.profiles))

    async def stop(self) -> None:
        self.queue.close()
        for t in (self._loop_task, self._flush_task):
            if t is not None:
                t.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*(t for t in (self._loop_task, self._flush_task, *self._tasks) if t is not None),
                             return_exceptions=True)
        for fwk in self.profiles.values():
            for p in fwk.plugins:
                stop = getattr(p, "stop", None)
                if stop is not None:
                    await stop()
        for inf in (self.pod_informer, self.node_informer, self.ns_informer, self.pdb_informer,
                    self.service_informer, *self.workload_informers.values(),
                    self.pv_informer, self.pvc_informer, self.sc_informer):
            await inf.stop()
        await self.event_broadcaster.shutdown()
        if self.close_client:
            await self.client.close()

    async def run_with(self, elector) -> None:
        """Run while `elector` (a controllers.manager.LeaderElector) says we lead."""
        await elector.run(self.start, self.stop)

    def _spawn(self, coro) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ event handlers
    def _responsible(self, pod: Obj) -> bool:
        return (pod.get("spec") or {}).get("schedulerName", DEFAULT_SCHEDULER_NAME) in self.profiles

    def _on_ns_update(self, ns: Obj) -> None:
        self.cache.set_namespace(ns)
        self.queue.move_all(q_.NAMESPACE_UPDATE)

    def _on_pdb(self, pdb: Obj) -> None:
        m = pdb["metadata"]
        self.cache.pdbs[(m.get("namespace"), m["name"])] = pdb

    def _on_pdb_delete(self, pdb: Obj) -> None:
        m = pdb["metadata"]
        self.cache.pdbs.pop((m.get("namespace"), m["name"]), None)

    def _on_volume(self, store, obj: Obj, event: q_.ClusterEvent) -> None:
        store(obj)
        self.queue.move_all(event)

    def _on_pvc(self, pvc: Obj, event: q_.ClusterEvent) -> None:
        self.cache.volumes.set_pvc(pvc)
        m = pvc["metadata"]
        self.queue.move_all(event, lambda pod: pod_uses_claim(pod, m.get("namespace") or "", m["name"]))

    def _on_storage_class_update(self, old: Obj, new: Obj) -> None:
        self.cache.volumes.set_class(new)
        if storage_class_change_matters(old, new):
            self.queue.move_all(q_.STORAGE_CLASS_UPDATE)

    def _on_node_add(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.queue.move_all(q_.NODE_ADD)

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        self.cache.update_node(new)
        if _node_changed(old, new):
            self.queue.move_all(q_.NODE_UPDATE)

    def _on_node_delete(self, node: Obj) -> None:
        self.cache.remove_node(node)

    def _on_pod_add(self, pod: Obj) -> None:
        if _terminal(pod):
            return
        if _assigned(pod):
            self.cache.add_pod(pod)
            self.queue.move_all(q_.ASSIGNED_POD_ADD)
        elif self._responsible(pod) and not pod["metadata"].get("deletionTimestamp") and not self.cache.is_assumed(pod):
            self.cache.set_nominated(pod, (pod.get("status") or {}).get("nominatedNodeName"))
            self.queue.add(pod)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if _assigned(new):
            if not _assigned(old):
                self.queue.delete(new)
                self.cache.set_nominated(new, None)
            if _terminal(new):
                self.cache.remove_pod(new)
                self.queue.move_all(q_.ASSIGNED_POD_DELETE)
            else:
                self.cache.update_pod(new)
                if old is not new and _assigned(old):
                    self.queue.move_all(q_.ASSIGNED_POD_UPDATE)
            return
        if not self._responsible(new) or new["metadata"].get("deletionTimestamp") or _terminal(new):
            self.queue.delete(new)
            self.cache.set_nominated(new, None)
            return
        self.cache.set_nominated(new, (new.get("status") or {}).get("nominatedNodeName"))
        if self.cache.is_assumed(new):
            return  # decided already; the bound pod is on its way
        self.queue.update(old, new)

    def _on_pod_delete(self, pod: Obj) -> None:
        self.cache.set_nominated(pod, None)
        if _assigned(pod) or self.cache.is_assumed(pod):
            self.cache.remove_pod(pod)
            self.queue.move_all(q_.ASSIGNED_POD_DELETE)
        self.queue.delete(pod)

    # ------------------------------------------------------------------ the loop
    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(30)
            self.queue.flush_unschedulable_leftover()

    async def _run(self) -> None:
        n = 0
        while True:
            qpi = await self.queue.pop()
            try:
                self.schedule_one(qpi)
            except Exception:  # noqa: BLE001
                log.exception("scheduler: scheduling %s failed", qpi.key)
                self.queue.requeue_error(qpi)
            n += 1
            if n % 8 == 0:
                await asyncio.sleep(0)  # let watch events and bindings run

    def schedule_one(self, qpi: QueuedPodInfo) -> None:
        pod = qpi.pod
        fwk = self.profiles.get((pod.get("spec") or {}).get("schedulerName", DEFAULT_SCHEDULER_NAME))
        if fwk is None or pod["metadata"].get("deletionTimestamp") or self.cache.is_assumed(pod):
            self.queue.done(qpi)
            return
        self.attempts += 1
        state = CycleState(self.cache)
        try:
            node = self.schedule_pod(fwk, state, pod)
        except FitError as e:
            nominated, post = None, None
            if fwk.post_filter_plugins:
                nominated, post = fwk.run_post_filter(state, pod, e.diagnosis.node_statuses)
                if post is not None and post.reasons and not post.is_success():
                    e.diagnosis.post_filter_msg = post.message()
                if nominated:
                    self.cache.set_nominated(pod, nominated)
            plugins = {st.plugin for st in e.diagnosis.node_statuses.values() if st.plugin}
            self.queue.requeue_unschedulable(qpi, plugins, qpi.cycle)
            self._spawn(self._record_failure(pod, "Unschedulable", e.diagnosis.message(), nominated))
            return
        except _NoNodes:
            self.queue.requeue_unschedulable(qpi, (), qpi.cycle)
            self._spawn(self._record_failure(pod, "Unschedulable", ERR_NO_NODES, None))
            return
        except _SchedError as e:
            self.queue.requeue_error(qpi)
            self._spawn(self._record_failure(pod, "SchedulerError", str(e), None))
            return

        assumed = copy.copy(pod)
        assumed["spec"] = dict(pod["spec"], nodeName=node)
        pi = state.get("__podinfo")
        if pi is not None:
            pi.pod = assumed  # the same pod as far as the cache counts; saves a rebuild
        self.cache.assume_pod(assumed, pi)
        st = fwk.run_reserve(state, assumed, node)
        if st.is_success():
            st = fwk.run_permit(state, assumed, node)
            if not st.is_success():
                fwk.run_unreserve(state, assumed, node)
        if not st.is_success():
            self.cache.forget_pod(assumed)
            self.queue.requeue_error(qpi)
            self._spawn(self._record_failure(pod, "SchedulerError", st.message(), None))
            return
        self.queue.done(qpi)
        self._spawn(self._binding_cycle(fwk, state, qpi, assumed, node))

    def schedule_pod(self, fwk: Framework, state: CycleState, pod: Obj) -> str:
        nodes = self.cache.node_infos()
        if not nodes:
            raise _NoNodes()
        diag = Diagnosis(num_all_nodes=len(nodes))
        st = fwk.run_pre_filter(state, pod)
        if not st.is_success():
            if st.is_rejected():
                diag.pre_filter_msg = st.message()
                for ni in nodes:
                    diag.node_statuses[ni.name] = st
                raise FitError(diag)
            raise _SchedError(st.message())
        feasible = self._find_feasible(fwk, state, pod, nodes, diag)
        if not feasible:
            raise FitError(diag)
        if len(feasible) == 1:
            return feasible[0].name
        st = fwk.run_pre_score(state, pod, feasible)
        if not st.is_success():
            raise _SchedError(st.message())
        scores = fwk.run_score(state, pod, feasible)
        return self._select_host(scores)

    def _find_feasible(self, fwk: Framework, state: CycleState, pod: Obj, nodes: list[NodeInfo],
                       diag: Diagnosis) -> list[NodeInfo]:
        n = len(nodes)
        want = num_feasible_nodes_to_find(n, self.percentage_of_nodes_to_score)
        feasible: list[NodeInfo] = []
        start = self._next_start % n
        processed = 0
        nominated: dict[str, list] = {}
        if self.cache.nominated:
            me, prio = pod_key(pod), int((pod.get("spec") or {}).get("priority") or 0)
            for key, (node, npi) in self.cache.nominated.items():
                if key != me and npi.priority >= prio:
                    nominated.setdefault(node, []).append(npi)
        filters = fwk.filters(state)
        order = nodes[start:] + nodes[:start]
        # nodes go through the filters a chunk at a time: a plugin with filter_batch judges
        # a whole chunk in one call (no Python call per node and plugin on the hot path)
        for c0 in range(0, n, FILTER_CHUNK):
            chunk = order[c0:c0 + FILTER_CHUNK]
            verdicts: list[Optional[Status]] = [None] * len(chunk)
            if nominated:
                for j, ni in enumerate(chunk):
                    noms = nominated.get(ni.name)
                    if noms:
                        st = fwk.run_filter_with_nominated(state, pod, ni, noms)
                        verdicts[j] = st if st.code != Code.SUCCESS else None
            for name, f, batch in filters:
                idx = [j for j, v in enumerate(verdicts) if v is None and not (nominated and chunk[j].name in nominated)]
                if not idx:
                    break
                alive = [chunk[j] for j in idx]
                results = batch(state, pod, alive) if batch is not None else [f(state, pod, ni) for ni in alive]
                for j, r in zip(idx, results):
                    if r is not None and r.code != Code.SUCCESS:
                        r.plugin = name
                        verdicts[j] = r
            for j, ni in enumerate(chunk):
                processed = c0 + j + 1
                st = verdicts[j]
                if st is None:
                    feasible.append(ni)
                    if len(feasible) >= want:
                        break
                elif st.is_rejected():
                    diag.node_statuses[ni.name] = st
                else:
                    raise _SchedError(st.message())
            if len(feasible) >= want:
                break
        self._next_start = (start + processed) % n
        return feasible

    def _select_host(self, scores: dict[str, int]) -> str:
        """Highest total; ties broken uniformly at random (as upstream's reservoir sampling)."""
        top = max(scores.values())
        ties = [name for name, s in scores.items() if s == top]
        return ties[0] if len(ties) == 1 else ties[self._rand.randrange(len(ties))]

    # ------------------------------------------------------------------ binding cycle
    async def _binding_cycle(self, fwk: Framework, state: CycleState, qpi: QueuedPodInfo, assumed: Obj, node: str) -> None:
        # PreBind (volume binding) may wait minutes for other controllers: outside the
        # semaphore, which only bounds concurrent Bind calls
        prebind_failed = False
        try:
            st = await fwk.run_pre_bind(state, assumed, node)
        except Exception as e:  # noqa: BLE001
            st = Status.as_error(e)
        if not st.is_success():
            prebind_failed = True
        else:
            async with self._bind_sem:
                try:
                    st = await fwk.run_bind(state, assumed, node)
                except Exception as e:  # noqa: BLE001
                    st = Status.as_error(e)
        if st.is_success():
            self.cache.finish_binding(assumed)
            self.scheduled += 1
            self.latencies.append(time.monotonic() - (qpi.initial_attempt or time.monotonic()))
            if self.record_scheduled_events:
                meta = assumed["metadata"]
                self._recorder_for(fwk).event(object_reference(assumed, "v1", "Pod"), "Normal", "Scheduled",
                                              f"Successfully assigned {meta.get('namespace')}/{meta['name']} to {node}",
                                              action="Binding")
            return
        fwk.run_unreserve(state, assumed, node)
        still_assumed = self.cache.is_assumed(assumed)
        self.cache.forget_pod(assumed)
        if not still_assumed:
            return  # deleted (or bound elsewhere) meanwhile: nothing to retry
        err = None if prebind_failed else st.error  # a PreBind conflict (a PV taken) retries
        if isinstance(err, NotFound):
            return
        if isinstance(err, APIStatusError) and err.code == 409:
            # already bound (or being deleted): the watch will tell us
            return
        log.info("scheduler: binding %s to %s failed: %s", qpi.key, node, st.message())
        self.queue.requeue_after_bind_failure(qpi)
        msg = st.message() if prebind_failed else f"Binding rejected: {st.message()}"
        await self._record_failure(assumed, "SchedulerError", msg, None)

    # ------------------------------------------------------------------ failure reporting
    async def _record_failure(self, pod: Obj, reason: str, message: str, nominated: Optional[str]) -> None:
        meta = pod["metadata"]
        ns, name = meta.get("namespace", "default"), meta["name"]
        fwk = self.profiles.get((pod.get("spec") or {}).get("schedulerName", DEFAULT_SCHEDULER_NAME))
        self._recorder_for(fwk).event(object_reference(pod, "v1", "Pod"), WARNING, "FailedScheduling", message,
                                      action="Scheduling")
        cond = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message}
        current = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if current is not None and all(current.get(k) == v for k, v in cond.items()) and not nominated:
            return
        cond["lastProbeTime"] = None
        cond["lastTransitionTime"] = (current or {}).get("lastTransitionTime") if current and current.get("status") == "False" else _now()
        status: Obj = {"conditions": [cond]}
        if nominated:
            status["nominatedNodeName"] = nominated
        # pinned to the version the decision was made on: a pod bound (or changed) meanwhile
        # keeps its newer state, and its update event brings it back to the queue
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": status}
        try:
            await self.pods.patch(name, body, "strategic", namespace=ns, subresource="status")
        except (NotFound, Conflict):
            pass
        except Exception as e:  # noqa: BLE001
            log.warning("scheduler: updating status of %s/%s failed: %s", ns, name, e)

    def _recorder_for(self, fwk: Optional[Framework]):
        """The recorder of the pod's profile (upstream names the profile's scheduler as the
        reporting controller)."""
        return fwk.recorder if fwk is not None and fwk.recorder is not None else self.recorder


class _NoNodes(Exception):
    pass


class _SchedError(Exception):
    pass


def _node_changed(old: Obj, new: Obj) -> bool:
    os_, ns_ = old.get("status") or {}, new.get("status") or {}
    return (old.get("spec") != new.get("spec")
            or (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels")
            or os_.get("allocatable") != ns_.get("allocatable")
            or [c.get("status") for c in os_.get("conditions") or [] if c.get("type") == "Ready"]
            != [c.get("status") for c in ns_.get("conditions") or [] if c.get("type") == "Ready"])


async def start_scheduler(source: Union[Client, str, Path], **kwargs: Any) -> Scheduler:
    """What `kyb server` calls: a running Scheduler for a kubeconfig path (it then owns and
    closes its client) or a Client.  `await s.stop()` ends it."""
    if isinstance(source, Client):
        client, own = source, False
    else:
        client, own = Client.from_kubeconfig(source), True
    s = Scheduler(client, close_client=own, **kwargs)
    try:
        await s.start()
    except BaseException:
        await s.stop()
        raise
    return s
