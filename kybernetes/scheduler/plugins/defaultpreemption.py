"""DefaultPreemption (PostFilter): when no node fits a pod, find a node where evicting
lower-priority pods would make it fit, evict the fewest and least important of them
(sparing pods whose PodDisruptionBudget allows no disruption where it can), and nominate
that node for the pod (status.nominatedNodeName).

Per node (upstream SelectVictimsOnNode): remove every lower-priority pod, check that the
pod then fits, and add pods back one by one, most important first, PDB-protected ones
before the others, keeping each that still leaves room.  Among the nodes that work, pick
(in order) the fewest PDB violations, the lowest highest-priority victim, the smallest
sum of victim priorities, the fewest victims, and the latest start among the most
important victims.  Victims get a DisruptionTarget condition and are deleted through the
API with their own grace period."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timezone
from typing import Any, Optional

from kybernetes.api.selectors import SelectorError, from_label_selector
from kybernetes.client.events import object_reference
from kybernetes.scheduler.framework import Code, Diagnosis, NodeInfo, PodInfo, Status, pod_info

log = logging.getLogger("kybernetes.scheduler.preemption")

NAME = "DefaultPreemption"
MIN_CANDIDATE_NODES_PERCENTAGE = 10
MIN_CANDIDATE_NODES_ABSOLUTE = 100
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."
MAX_INT32 = 2 ** 31 - 1


def _start_time(pi: PodInfo) -> str:
    # pods not started yet count as starting now (upstream GetPodStartTime)
    return (pi.pod.get("status") or {}).get("startTime") or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _importance(pi: PodInfo):
    """Sort key, most important first: higher priority, then earlier start."""
    return (-pi.priority, _start_time(pi))


def split_by_pdb(pods: list[PodInfo], pdbs: list[dict]) -> tuple[list[PodInfo], list[PodInfo]]:
    """Upstream filterPodsWithPDBViolation: (pods whose eviction would exceed some PDB's
    disruptionsAllowed, the others); order kept."""
    allowed: dict[int, int] = {}
    selectors = []
    for i, pdb in enumerate(pdbs):
        allowed[i] = int((pdb.get("status") or {}).get("disruptionsAllowed") or 0)
        try:
            sel = from_label_selector((pdb.get("spec") or {}).get("selector"))
        except SelectorError:
            sel = None
        selectors.append(sel)
    violating, ok = [], []
    for pi in pods:
        bad = False
        name = (pi.pod.get("metadata") or {}).get("name")
        if pi.labels:
            for i, pdb in enumerate(pdbs):
                sel = selectors[i]
                if (pdb.get("metadata") or {}).get("namespace") != pi.namespace or sel is None:
                    continue
                if sel.empty() or not sel.matches(pi.labels):
                    continue
                if name in ((pdb.get("status") or {}).get("disruptedPods") or {}):
                    continue  # already counted as disrupted by the PDB controller
                allowed[i] -= 1
                if allowed[i] < 0:
                    bad = True
        (violating if bad else ok).append(pi)
    return violating, ok


class Candidate:
    __slots__ = ("node", "victims", "num_pdb_violations")

    def __init__(self, node: str, victims: list[PodInfo], num_pdb_violations: int) -> None:
        self.node, self.victims, self.num_pdb_violations = node, victims, num_pdb_violations


def pick_one(cands: list[Candidate]) -> Candidate:
    """Upstream pickOneNodeForPreemption, criteria applied in order."""
    for c in cands:
        if not c.victims:
            return c

    def narrow(cs: list[Candidate], key) -> list[Candidate]:
        best = min(key(c) for c in cs)
        return [c for c in cs if key(c) == best]

    cs = narrow(cands, lambda c: c.num_pdb_violations)
    cs = narrow(cs, lambda c: c.victims[0].priority)
    cs = narrow(cs, lambda c: sum(v.priority + MAX_INT32 + 1 for v in c.victims))
    cs = narrow(cs, lambda c: len(c.victims))
    if len(cs) > 1:
        def earliest_top(c: Candidate) -> str:
            top = c.victims[0].priority
            return min(_start_time(v) for v in c.victims if v.priority == top)
        latest = max(earliest_top(c) for c in cs)
        cs = [c for c in cs if earliest_top(c) == latest]
    return cs[0]


class DefaultPreemption:
    name = NAME

    def __init__(self, client: Any = None, *, rand: Optional[random.Random] = None) -> None:
        self.client = client
        self.fwk: Any = None
        self.rand = rand or random.Random()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.preempted: list[tuple[str, str, list[str]]] = []  # (pod, node, victims): tests and metrics

    def set_framework(self, fwk: Any) -> None:
        self.fwk = fwk

    # -- eligibility
    def _eligible(self, state, pod, statuses: dict[str, Status]) -> Optional[str]:
        spec = pod.get("spec") or {}
        if spec.get("preemptionPolicy") == "Never":
            return NEVER
        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated:
            st = statuses.get(nominated)
            if st is not None and st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return None
            ni = state.snapshot.nodes.get(nominated)
            prio = int(spec.get("priority") or 0)
            if ni is not None and any(p.priority < prio and p.terminating for p in ni.pods.values()):
                return TERMINATING
        return None

    # -- the extension point
    def post_filter(self, state, pod, statuses: dict[str, Status]):
        why = self._eligible(state, pod, statuses)
        if why:
            return None, Status.unschedulable("preemption: " + why)
        snap = state.snapshot
        nodes = snap.node_infos()
        diag = Diagnosis(num_all_nodes=len(nodes))
        potential = []
        for ni in nodes:
            st = statuses.get(ni.name)
            if st is not None and st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                diag.node_statuses[ni.name] = Status.unresolvable(NOT_HELPFUL)
            else:
                potential.append(ni)
        if not potential:
            return None, Status.unschedulable("preemption: " + diag.message())
        pdbs = list(getattr(snap, "pdbs", {}).values())
        want = max(len(nodes) * MIN_CANDIDATE_NODES_PERCENTAGE // 100, MIN_CANDIDATE_NODES_ABSOLUTE)
        want = min(want, len(potential))
        offset = self.rand.randrange(len(potential))
        cands: list[Candidate] = []
        non_violating = 0
        for i in range(len(potential)):
            ni = potential[(offset + i) % len(potential)]
            victims, nviol, st = self.select_victims(state, pod, ni, pdbs)
            if victims is None:
                diag.node_statuses[ni.name] = st
                continue
            cands.append(Candidate(ni.name, victims, nviol))
            if nviol == 0:
                non_violating += 1
            if non_violating and len(cands) >= want:
                break
        if not cands:
            return None, Status.unschedulable("preemption: " + diag.message())
        best = pick_one(cands)
        prio = pod_info(state, pod).priority
        me = pod_info(state, pod).key
        nominated = getattr(snap, "nominated_on", None)
        displaced = [p for p in (nominated(best.node) if nominated else ()) if p.priority < prio and p.key != me]
        self._spawn(self._prepare(pod, best, displaced))
        return best.node, Status()

    def select_victims(self, state, pod, ni: NodeInfo, pdbs: list[dict]):
        """(victims most important first, PDB violations, None) or (None, 0, why not)."""
        fwk = self.fwk
        pi = pod_info(state, pod)
        lower = [p for p in ni.pods.values() if p.priority < pi.priority]
        if not lower:
            return None, 0, Status.unresolvable(NO_VICTIMS)
        st = state.clone()
        trial = ni.clone()
        ext = [p for p in fwk.pre_filter_plugins if callable(getattr(p, "remove_pod", None))]
        for p in lower:
            trial.remove_pod(p.key)
            for pl in ext:
                pl.remove_pod(st, pod, p, trial)
        fit = fwk.run_filter(st, pod, trial)
        if not fit.is_success():
            return None, 0, fit
        lower.sort(key=_importance)
        violating, ok = split_by_pdb(lower, pdbs)
        victims: list[PodInfo] = []
        nviol = 0

        def reprieve(p: PodInfo) -> bool:
            trial.add_pod(p)
            for pl in ext:
                pl.add_pod(st, pod, p, trial)
            if fwk.run_filter(st, pod, trial).is_success():
                return True
            trial.remove_pod(p.key)
            for pl in ext:
                pl.remove_pod(st, pod, p, trial)
            victims.append(p)
            return False

        for p in violating:
            if not reprieve(p):
                nviol += 1
        for p in ok:
            reprieve(p)
        victims.sort(key=_importance)
        return victims, nviol, None

    # -- acting on the choice
    def _spawn(self, coro) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # unit tests call post_filter without a loop: nothing to evict
            coro.close()
            return
        t = loop.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _prepare(self, pod, cand: Candidate, displaced: list[PodInfo]) -> None:
        meta = pod["metadata"]
        self.preempted.append((f"{meta.get('namespace')}/{meta['name']}", cand.node, [v.key for v in cand.victims]))
        if self.client is None:
            return
        pods = self.client.resource("", "v1", "pods")
        sched = (pod.get("spec") or {}).get("schedulerName") or "default-scheduler"
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        async def evict(v: PodInfo) -> None:
            vm = v.pod["metadata"]
            ns, name = vm.get("namespace", "default"), vm["name"]
            cond = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                    "message": f"{sched}: preempting to accommodate a higher priority pod",
                    "lastProbeTime": None, "lastTransitionTime": now}
            try:
                await pods.patch(name, {"status": {"conditions": [cond]}}, "strategic", namespace=ns, subresource="status")
                await pods.delete(name, namespace=ns, preconditions={"uid": vm.get("uid")} if vm.get("uid") else None)
            except Exception as e:  # noqa: BLE001 - a victim already gone is fine
                log.info("preemption: evicting %s/%s: %s", ns, name, e)
                return
            recorder = getattr(self.fwk, "recorder", None)
            if recorder is not None:
                recorder.event(object_reference(v.pod, "v1", "Pod"), "Normal", "Preempted",
                               f"Preempted by pod {meta.get('uid')} on node {cand.node}",
                               action="Preempting", related=object_reference(pod, "v1", "Pod"))

        async def unnominate(p: PodInfo) -> None:
            # lower-priority pods nominated to this node must look for room again
            pm = p.pod["metadata"]
            try:
                await pods.patch(pm["name"], {"status": {"nominatedNodeName": None}}, "merge",
                                 namespace=pm.get("namespace"), subresource="status")
            except Exception:  # noqa: BLE001
                pass

        await asyncio.gather(*(evict(v) for v in cand.victims), *(unnominate(p) for p in displaced))

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
