"""NodeResourcesFit: the node must have room for the pod's requests (cpu, memory,
ephemeral-storage, extended resources such as nvidia.com/gpu) and for one more pod;
scores with the LeastAllocated strategy (cpu and memory, weight 1 each).

NodeResourcesBalancedAllocation (a sibling plugin here, as upstream keeps both in the
noderesources package): favours nodes whose cpu and memory fractions stay balanced."""

from __future__ import annotations

from kybernetes.scheduler.framework import MAX_NODE_SCORE, PodInfo, Status, pod_info
from kybernetes.scheduler.resources import CPU, MEMORY

NAME = "NodeResourcesFit"
BALANCED = "NodeResourcesBalancedAllocation"
TOO_MANY_PODS = "Too many pods"

SCORE_RESOURCES = ((CPU, 1), (MEMORY, 1))


def _pod_info(state, pod) -> PodInfo:
    return pod_info(state, pod)


def insufficient(pi: PodInfo, ni) -> list[str]:
    """Upstream fitsRequest: every reason the pod does not fit the node."""
    reasons = []
    if len(ni.pods) + 1 > ni.allocatable.allowed_pods:
        reasons.append(TOO_MANY_PODS)
    req, alloc, used = pi.requests, ni.allocatable, ni.requested
    if req.milli_cpu == 0 and req.memory == 0 and req.ephemeral_storage == 0 and not any(req.scalar.values()):
        return reasons
    if req.milli_cpu > 0 and req.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        reasons.append("Insufficient cpu")
    if req.memory > 0 and req.memory > alloc.memory - used.memory:
        reasons.append("Insufficient memory")
    if req.ephemeral_storage > 0 and req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
        reasons.append("Insufficient ephemeral-storage")
    for name, q in sorted(req.scalar.items()):
        if q > 0 and q > alloc.scalar.get(name, 0) - used.scalar.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


class NodeResourcesFit:
    name = NAME

    def pre_filter(self, state, pod):
        _pod_info(state, pod)
        return None

    def filter(self, state, pod, ni):
        pi = state["__podinfo"]
        req, alloc, used = pi.requests, ni.allocatable, ni.requested
        # the common case (fits easily) without building a reasons list
        if (len(ni.pods) < alloc.allowed_pods and req.milli_cpu <= alloc.milli_cpu - used.milli_cpu
                and req.memory <= alloc.memory - used.memory and not req.ephemeral_storage and not req.scalar):
            return None
        reasons = insufficient(pi, ni)
        if reasons:
            return Status.unschedulable(*reasons)
        return None

    def filter_batch(self, state, pod, nodes):
        pi = state["__podinfo"]
        req = pi.requests
        if req.ephemeral_storage or req.scalar:
            return [self.filter(state, pod, ni) for ni in nodes]
        rc, rm = req.milli_cpu, req.memory
        out = []
        for ni in nodes:
            a, u = ni.allocatable, ni.requested
            if len(ni.pods) < a.allowed_pods and rc <= a.milli_cpu - u.milli_cpu and rm <= a.memory - u.memory:
                out.append(None)
            else:
                reasons = insufficient(pi, ni)
                out.append(Status.unschedulable(*reasons) if reasons else None)
        return out

    def score_nodes(self, state, pod, nodes):
        """LeastAllocated over cpu and memory (weight 1 each), for every node at once; the
        same pass leaves BalancedAllocation its scores (both read the same fractions)."""
        nz = pod_info(state, pod).non_zero
        pc, pm = nz.milli_cpu, nz.memory
        out = []
        balanced = []
        for ni in nodes:
            a, r = ni.allocatable, ni.non_zero_requested
            cc, rc = a.milli_cpu, r.milli_cpu + pc
            cm, rm = a.memory, r.memory + pm
            if cc and cm:
                s1 = (cc - rc) * MAX_NODE_SCORE // cc if rc <= cc else 0
                s2 = (cm - rm) * MAX_NODE_SCORE // cm if rm <= cm else 0
                fc = rc / cc if rc < cc else 1.0
                fm = rm / cm if rm < cm else 1.0
                balanced.append(int((1 - abs(fc - fm) / 2) * MAX_NODE_SCORE))
            else:
                s1 = (cc - rc) * MAX_NODE_SCORE // cc if cc and rc <= cc else 0
                s2 = (cm - rm) * MAX_NODE_SCORE // cm if cm and rm <= cm else 0
                balanced.append(None)
            out.append((s1 + s2) // 2)
        state[BALANCED] = (nodes, balanced)
        return out

    def score(self, state, pod, ni):
        """LeastAllocated: mean over resources of free fraction after placing the pod."""
        pi = _pod_info(state, pod)
        total = weights = 0
        for res, w in SCORE_RESOURCES:
            cap = ni.allocatable.get(res)
            requested = ni.non_zero_requested.get(res) + pi.non_zero.get(res)
            if cap == 0 or requested > cap:
                s = 0
            else:
                s = (cap - requested) * MAX_NODE_SCORE // cap
            total += s * w
            weights += w
        return total // weights if weights else 0


class NodeResourcesBalancedAllocation:
    name = BALANCED

    def score_nodes(self, state, pod, nodes):
        """With two resources the standard deviation is half their fractions' distance."""
        done = state.get(BALANCED)
        if done is not None and done[0] is nodes:
            return [self.score(state, pod, ni) if v is None else v for ni, v in zip(nodes, done[1])]
        nz = pod_info(state, pod).non_zero
        pc, pm = nz.milli_cpu, nz.memory
        out = []
        for ni in nodes:
            a, r = ni.allocatable, ni.non_zero_requested
            if not a.milli_cpu or not a.memory:
                out.append(self.score(state, pod, ni))
                continue
            fc = min((r.milli_cpu + pc) / a.milli_cpu, 1.0)
            fm = min((r.memory + pm) / a.memory, 1.0)
            out.append(int((1 - abs(fc - fm) / 2) * MAX_NODE_SCORE))
        return out

    def score(self, state, pod, ni):
        pi = _pod_info(state, pod)
        fractions = []
        for res, _w in SCORE_RESOURCES:
            cap = ni.allocatable.get(res)
            if cap == 0:
                continue
            f = (ni.non_zero_requested.get(res) + pi.non_zero.get(res)) / cap
            fractions.append(min(f, 1.0))
        if len(fractions) < 2:
            return MAX_NODE_SCORE
        mean = sum(fractions) / len(fractions)
        std = (sum((f - mean) ** 2 for f in fractions) / len(fractions)) ** 0.5
        return int((1 - std) * MAX_NODE_SCORE)
