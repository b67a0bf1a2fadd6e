"""An in-memory cluster for scheduler unit tests: a real Scheduler (cache, default
profile) whose client is never used, fed nodes and pods directly."""

from __future__ import annotations

from kybernetes.scheduler.framework import CycleState
from kybernetes.scheduler.scheduler import FitError, Scheduler


class _Handle:
    group, version, resource = "", "v1", "x"


class _NoClient:
    def resource(self, *a, **k):
        return _Handle()


def node(name, cpu="4", memory="8Gi", pods="110", labels=None, taints=None, **extra):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or []},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **extra}}}


def pod(name, ns="d", labels=None, cpu=None, node_name=None, priority=None, **spec):
    req = {"cpu": cpu} if cpu else {}
    p = {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {}},
         "spec": {"containers": [{"name": "c", "resources": {"requests": req}}], **spec}, "status": {}}
    if node_name:
        p["spec"]["nodeName"] = node_name
    if priority is not None:
        p["spec"]["priority"] = priority
    return p


class SimCluster:
    def __init__(self, *nodes):
        self.s = Scheduler(_NoClient())
        self.fwk = self.s.profiles["default-scheduler"]
        self.s._rand.seed(1)
        for n in nodes:
            self.s.cache.add_node(n)

    @property
    def cache(self):
        return self.s.cache

    def place(self, p, node_name):
        p = dict(p, spec=dict(p["spec"], nodeName=node_name))
        self.s.cache.add_pod(p)
        return p

    def schedule(self, p):
        """The chosen node name, or the FitError."""
        state = CycleState(self.s.cache)
        try:
            return self.s.schedule_pod(self.fwk, state, p)
        except FitError as e:
            e.state = state
            return e

    def feasible(self, p):
        """Names of every node that passes the filters, and the per-node statuses."""
        state = CycleState(self.s.cache)
        st = self.fwk.run_pre_filter(state, p)
        assert st.is_success(), st
        ok, bad = [], {}
        for ni in self.s.cache.node_infos():
            r = self.fwk.run_filter(state, p, ni)
            if r.is_success():
                ok.append(ni.name)
            else:
                bad[ni.name] = r
        return sorted(ok), bad

    def scores(self, p, plugin):
        state = CycleState(self.s.cache)
        self.fwk.run_pre_filter(state, p)
        nodes = self.s.cache.node_infos()
        pl = self.fwk.plugin(plugin)
        if pl.pre_score(state, p, nodes) is not None:
            return None
        sc = {ni.name: pl.score(state, p, ni) for ni in nodes}
        pl.normalize_score(state, p, sc)
        return sc
