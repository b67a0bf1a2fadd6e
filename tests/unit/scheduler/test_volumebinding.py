"""Unit tests of the VolumeBinding plugin: PV/claim matching, the PreFilter and Filter
verdicts (with upstream's messages), Reserve/Unreserve on the assume cache, PreBind's
writes and wait, and the queueing hints — on plain dict objects."""

from __future__ import annotations

import asyncio

import pytest

from kybernetes.api import storagehelpers as sh
from kybernetes.scheduler.framework import Code, CycleState
from kybernetes.scheduler.plugins import volumebinding as vb
from kybernetes.scheduler.queue import PVC_UPDATE, SchedulingQueue
from kybernetes.scheduler.scheduler import FitError
from kybernetes.scheduler.volumecache import AssumeCache

from simcluster import SimCluster, node, pod

NS = "d"


def pv(name, size="10Gi", cls="local", node_name=None, phase="Available", modes=("ReadWriteOnce",), claim=None,
       labels=None, rv="1", **spec):
    o = {"metadata": {"name": name, "resourceVersion": rv, "labels": labels or {}},
         "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls,
                  "local": {"path": f"/mnt/{name}"}, **spec},
         "status": {"phase": phase}}
    if node_name:
        o["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}]}]}}
    if claim:
        o["spec"]["claimRef"] = claim
    return o


def pvc(name, size="5Gi", cls="local", volume=None, bound=False, modes=("ReadWriteOnce",), rv="1", **spec):
    o = {"metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": rv},
         "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, **spec},
         "status": {"phase": "Bound" if bound else "Pending"}}
    if cls is not None:
        o["spec"]["storageClassName"] = cls
    if volume:
        o["spec"]["volumeName"] = volume
    if bound:
        o["metadata"]["annotations"] = {sh.ANN_BIND_COMPLETED: "yes"}
    return o


def sc(name, mode="WaitForFirstConsumer", provisioner=sh.NOT_SUPPORTED_PROVISIONER, **extra):
    return {"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode, **extra}


def claim_pod(name, *claims, **kw):
    return pod(name, NS, volumes=[{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                  for i, c in enumerate(claims)], **kw)


def cluster(*objs, nodes=("a", "b")):
    c = SimCluster(*(node(n) for n in nodes))
    vols = c.cache.volumes
    for o in objs:
        if "provisioner" in o:
            vols.set_class(o)
        elif "namespace" in o["metadata"]:
            vols.set_pvc(o)
        else:
            vols.set_pv(o)
    return c


def fit_message(res):
    assert isinstance(res, FitError), res
    return res.diagnosis.message()


# --------------------------------------------------------------------------- matching rules

def test_find_matching_volume_smallest_fitting_and_exclusions():
    claim = pvc("c", size="5Gi")
    n = node("a")
    vols = [pv("big", "100Gi"), pv("small", "6Gi"), pv("tiny", "1Gi"),
            pv("other-class", "5Gi", cls="fast"), pv("rwx-only", "5Gi", modes=("ReadWriteMany",)),
            pv("taken", "5Gi", claim={"namespace": NS, "name": "someone", "uid": "u1"}),
            pv("pending", "5Gi", phase="Pending"), pv("elsewhere", "5Gi", node_name="b"),
            pv("block", "5Gi", volumeMode="Block")]
    assert sh.find_matching_volume(claim, vols, n)["metadata"]["name"] == "small"
    assert sh.find_matching_volume(claim, vols, n, {"small": 1})["metadata"]["name"] == "big"
    gone = pv("dying", "5Gi")
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert sh.find_matching_volume(claim, [gone], n) is None
    # the PV controller's path (no node) leaves delayed-binding claims unmatched
    assert sh.find_matching_volume(claim, vols, None, delay_binding=True) is None


def test_find_matching_volume_selector_and_prebound():
    claim = pvc("c", selector={"matchLabels": {"disk": "ssd"}})
    n = node("a")
    assert sh.find_matching_volume(claim, [pv("plain")], n) is None
    assert sh.find_matching_volume(claim, [pv("plain"), pv("ssd", labels={"disk": "ssd"})], n)["metadata"]["name"] == "ssd"
    # a PV pre-bound to the claim wins even over a smaller one, whatever its phase or class
    pre = pv("pre", "50Gi", cls="other", phase="Pending", claim={"namespace": NS, "name": "c"})
    assert sh.find_matching_volume(pvc("c"), [pv("s", "5Gi"), pre], n)["metadata"]["name"] == "pre"
    # ... unless it does not accept the node: then nothing matches
    pre_b = pv("pre", claim={"namespace": NS, "name": "c", "uid": "uid-c"}, node_name="b")
    assert sh.find_matching_volume(pvc("c"), [pv("s", "5Gi"), pre_b], n) is None
    # a claimRef with another uid is someone else's
    old = pv("old", claim={"namespace": NS, "name": "c", "uid": "stale"})
    assert sh.find_matching_volume(pvc("c"), [old], n) is None


def test_check_node_affinity_uses_labels():
    n_labels = {"kubernetes.io/hostname": "a", "zone": "z1"}
    assert sh.check_node_affinity(pv("x"), n_labels)
    assert sh.check_node_affinity(pv("x", node_name="a"), n_labels)
    assert not sh.check_node_affinity(pv("x", node_name="b"), n_labels)
    two_terms = pv("y", nodeAffinity={"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]}})
    assert sh.check_node_affinity(two_terms, n_labels)
    assert not sh.check_node_affinity(two_terms, {})


def test_bind_volume_to_claim_sets_claim_ref_and_annotation():
    v = pv("x", rv="7")
    new, dirty = sh.bind_volume_to_claim(v, pvc("c", rv="3"))
    assert dirty and "claimRef" not in v["spec"]  # the cached object is left alone
    assert new["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": NS,
                                       "name": "c", "uid": "uid-c", "resourceVersion": "3"}
    assert new["metadata"]["annotations"][sh.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert new["metadata"]["resourceVersion"] == "7"
    # pre-bound by the user (name only): the uid is filled in, no bound-by-controller
    pre = pv("p", claim={"namespace": NS, "name": "c"})
    new, dirty = sh.bind_volume_to_claim(pre, pvc("c"))
    assert dirty and new["spec"]["claimRef"]["uid"] == "uid-c"
    assert sh.ANN_BOUND_BY_CONTROLLER not in (new["metadata"].get("annotations") or {})


def test_topology_terms():
    terms = [{"matchLabelExpressions": [{"key": "zone", "values": ["z1", "z2"]}]}]
    assert vb.match_topology_terms(None, {})
    assert vb.match_topology_terms(terms, {"zone": "z2"})
    assert not vb.match_topology_terms(terms, {"zone": "z3"})


def test_assume_cache_keeps_assumed_until_newer_version():
    c = AssumeCache("persistentvolume")
    c.add(pv("x", rv="5"))
    assumed = dict(pv("x", rv="5"), marker=True)
    c.assume(assumed)
    c.add(pv("x", rv="5"))  # a resync of the same version: the assumed one stays
    assert c.get("x") is assumed and c.get_api("x")["metadata"]["resourceVersion"] == "5"
    c.add(pv("x", rv="6"))
    assert "marker" not in c.get("x")
    with pytest.raises(ValueError):
        c.assume(pv("x", rv="4"))
    c.assume(assumed := dict(pv("x", rv="6"), marker=True))
    c.restore("x")
    assert "marker" not in c.get("x")
    with pytest.raises(LookupError):
        c.assume(pv("nope"))


# --------------------------------------------------------------------------- PreFilter / Filter

def test_pod_without_claims_skips_the_plugin():
    c = cluster()
    plugin = c.fwk.plugin("VolumeBinding")
    st = plugin.pre_filter(CycleState(c.cache), pod("p", NS, volumes=[{"name": "e", "emptyDir": {}}]))
    assert st.code == Code.SKIP
    assert c.schedule(pod("p", NS)) in ("a", "b")


def test_prefilter_rejections_and_messages():
    deleting = pvc("going", cls="local")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    c = cluster(sc("local"), sc("now", mode="Immediate"), deleting, pvc("imm", cls="now"), pvc("nocls", cls=None))
    assert fit_message(c.schedule(claim_pod("p", "missing"))) == \
        '0/2 nodes are available: persistentvolumeclaim "missing" not found.'
    assert 'persistentvolumeclaim "going" is being deleted' in fit_message(c.schedule(claim_pod("p", "going")))
    for name in ("imm", "nocls"):
        res = c.schedule(claim_pod("p", name))
        assert fit_message(res) == "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        assert res.diagnosis.node_statuses["a"].code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert res.diagnosis.node_statuses["a"].plugin == "VolumeBinding"


def test_ephemeral_volume_claims():
    c = cluster(sc("local"), pv("v1", node_name="b"))
    p = pod("web", NS, volumes=[{"name": "data", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}])
    assert 'waiting for ephemeral volume controller to create the persistentvolumeclaim "web-data"' in \
        fit_message(c.schedule(p))
    claim = pvc("web-data")
    c.cache.volumes.set_pvc(claim)
    assert "PVC d/web-data was not created for pod d/web (pod is not owner)" in fit_message(c.schedule(p))
    claim = dict(claim, metadata=dict(claim["metadata"], resourceVersion="2",
                                      ownerReferences=[{"kind": "Pod", "name": "web", "uid": "uid-web",
                                                        "controller": True}]))
    c.cache.volumes.set_pvc(claim)
    assert c.schedule(p) == "b"


def test_bound_claim_follows_pv_node_affinity():
    c = cluster(sc("local"), pv("pv-a", node_name="a", claim={"namespace": NS, "name": "c", "uid": "uid-c"}),
                pvc("c", volume="pv-a", bound=True))
    for _ in range(5):
        assert c.schedule(claim_pod("p", "c")) == "a"
    c.cache.add_node(node("a", labels={"kubernetes.io/hostname": "renamed"}))
    res = c.schedule(claim_pod("p", "c"))
    assert fit_message(res) == "0/2 nodes are available: 2 node(s) had volume node affinity conflict."


def test_bound_claim_with_missing_pv():
    c = cluster(sc("local"), pvc("c", volume="ghost", bound=True))
    plugin = c.fwk.plugin("VolumeBinding")
    state = CycleState(c.cache)
    assert plugin.pre_filter(state, claim_pod("p", "c")) is None
    st = plugin.filter(state, claim_pod("p", "c"), c.cache.nodes["a"])
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert st.message() == "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
    # in the whole profile VolumeZone's PreFilter speaks first, as upstream
    assert fit_message(c.schedule(claim_pod("p", "c"))) == '0/2 nodes are available: persistentvolume "ghost" not found.'


def test_unbound_wffc_claim_goes_where_a_pv_fits():
    c = cluster(sc("local"), pv("pv-b", node_name="b"), pvc("c"))
    for _ in range(5):
        assert c.schedule(claim_pod("p", "c")) == "b"
    c2 = cluster(sc("local"), pv("small", "1Gi", node_name="b"), pvc("c"))
    res = c2.schedule(claim_pod("p", "c"))
    assert fit_message(res) == "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."
    assert res.diagnosis.node_statuses["b"].code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_two_claims_of_one_pod_need_two_pvs():
    c = cluster(sc("local"), pv("only", node_name="b"), pvc("c1"), pvc("c2"))
    res = c.schedule(claim_pod("p", "c1", "c2"))
    assert "2 node(s) didn't find available persistent volumes to bind" in fit_message(res)
    c.cache.volumes.set_pv(pv("second", node_name="b"))
    state = CycleState(c.cache)
    assert c.s.schedule_pod(c.fwk, state, claim_pod("p", "c1", "c2")) == "b"
    chosen = state["VolumeBinding"].by_node["b"].static_bindings
    assert sorted(v["metadata"]["name"] for v, _ in chosen) == ["only", "second"]


def test_reserve_assumes_the_pv_and_unreserve_gives_it_back():
    c = cluster(sc("local"), pv("pv-b", node_name="b"), pvc("c1"), pvc("c2"))
    state = CycleState(c.cache)
    p1 = claim_pod("p1", "c1")
    assert c.s.schedule_pod(c.fwk, state, p1) == "b"
    assert c.fwk.run_reserve(state, p1, "b").is_success()
    assumed = c.cache.volumes.pv("pv-b")
    assert assumed["spec"]["claimRef"]["name"] == "c1"
    assert c.cache.volumes.pvs.get_api("pv-b").get("spec", {}).get("claimRef") is None
    # the next pod's claim cannot have it
    assert "didn't find available persistent volumes to bind" in fit_message(c.schedule(claim_pod("p2", "c2")))
    c.fwk.run_unreserve(state, p1, "b")
    assert "claimRef" not in c.cache.volumes.pv("pv-b")["spec"]
    assert c.schedule(claim_pod("p2", "c2")) == "b"


def test_provisioning_class_selects_node_and_respects_allowed_topologies():
    topo = [{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["a"]}]}]
    c = cluster(sc("dyn", provisioner="example.com/csi", allowedTopologies=topo), pvc("c", cls="dyn"))
    state = CycleState(c.cache)
    p = claim_pod("p", "c")
    assert c.s.schedule_pod(c.fwk, state, p) == "a"
    assert c.fwk.run_reserve(state, p, "a").is_success()
    assert c.cache.volumes.pvc(NS, "c")["metadata"]["annotations"][sh.ANN_SELECTED_NODE] == "a"
    # another pod sharing the claim now goes to the selected node only
    assert c.schedule(claim_pod("q", "c")) == "a"
    c.fwk.run_unreserve(state, p, "a")
    assert sh.ANN_SELECTED_NODE not in (c.cache.volumes.pvc(NS, "c")["metadata"].get("annotations") or {})


def test_missing_class_for_provisioning_is_an_error():
    c = cluster(sc("local"), pvc("c"))
    c.cache.volumes.remove_class(sc("local"))
    # without its class the claim counts as Immediate (upstream IsDelayBindingMode)
    assert "pod has unbound immediate PersistentVolumeClaims" in fit_message(c.schedule(claim_pod("p", "c")))


# --------------------------------------------------------------------------- PreBind

class _Res:
    def __init__(self, fake, plural):
        self.fake, self.plural = fake, plural

    async def update(self, obj, namespace=None):
        self.fake.writes.append((self.plural, obj))
        if self.fake.fail:
            raise RuntimeError("conflict")
        new = dict(obj, metadata=dict(obj["metadata"], resourceVersion=str(int(obj["metadata"]["resourceVersion"]) + 10)))
        return new


class _FakeClient:
    def __init__(self):
        self.writes = []
        self.fail = False

    def resource(self, group, version, plural):
        return _Res(self, plural)


def _reserved(c, p, node_name):
    state = CycleState(c.cache)
    assert c.s.schedule_pod(c.fwk, state, p) == node_name
    c.cache.assume_pod(dict(p, spec=dict(p["spec"], nodeName=node_name)))
    assert c.fwk.run_reserve(state, p, node_name).is_success()
    return state


async def test_prebind_writes_claim_ref_and_waits_for_the_binding():
    c = cluster(sc("local"), pv("pv-b", node_name="b", rv="4"), pvc("c", rv="5"))
    plugin = c.fwk.plugin("VolumeBinding")
    plugin.client = fake = _FakeClient()
    p = claim_pod("p", "c")
    state = _reserved(c, p, "b")
    task = asyncio.ensure_future(plugin.pre_bind(state, p, "b"))
    for _ in range(50):
        if fake.writes:
            break
        await asyncio.sleep(0)
    plural, written = fake.writes[0]
    assert plural == "persistentvolumes" and written["kind"] == "PersistentVolume"
    assert written["spec"]["claimRef"]["uid"] == "uid-c"
    assert written["metadata"]["annotations"][sh.ANN_BOUND_BY_CONTROLLER] == "yes"
    assert not task.done()
    # the PV controller's part: the PV comes back bound, then the claim
    vols = c.cache.volumes
    vols.set_pv(dict(written, metadata=dict(written["metadata"], resourceVersion="14"), status={"phase": "Bound"}))
    await asyncio.sleep(0)
    assert not task.done()
    vols.set_pvc(pvc("c", volume="pv-b", bound=True, rv="20"))
    assert await asyncio.wait_for(task, 5) is None


async def test_prebind_times_out_and_reports_errors():
    c = cluster(sc("local"), pv("pv-b", node_name="b"), pvc("c"))
    plugin = c.fwk.plugin("VolumeBinding")
    plugin.client = fake = _FakeClient()
    plugin.bind_timeout = 0.05
    p = claim_pod("p", "c")
    st = await plugin.pre_bind(_reserved(c, p, "b"), p, "b")
    assert st.code == Code.ERROR and st.message() == "binding volumes: timed out waiting for the condition"
    # a failed write is an error too, and the assumed PV is given back
    c2 = cluster(sc("local"), pv("pv-b", node_name="b"), pvc("c"))
    plugin2 = c2.fwk.plugin("VolumeBinding")
    plugin2.client = fake = _FakeClient()
    fake.fail = True
    st = await plugin2.pre_bind(_reserved(c2, p, "b"), p, "b")
    assert st.code == Code.ERROR and "conflict" in st.message()
    assert "claimRef" not in c2.cache.volumes.pv("pv-b")["spec"]


async def test_prebind_fails_when_the_claim_ref_is_reset():
    c = cluster(sc("local"), pv("pv-b", node_name="b", rv="4"), pvc("c"))
    plugin = c.fwk.plugin("VolumeBinding")
    plugin.client = _FakeClient()
    p = claim_pod("p", "c")
    state = _reserved(c, p, "b")
    task = asyncio.ensure_future(plugin.pre_bind(state, p, "b"))
    await asyncio.sleep(0)
    c.cache.volumes.set_pv(pv("pv-b", node_name="b", rv="30"))  # the controller unbound it
    st = await asyncio.wait_for(task, 5)
    assert st.message() == 'binding volumes: ClaimRef got reset for pv "pv-b"'


async def test_framework_prebind_wraps_the_message():
    c = cluster(sc("local"), pv("pv-b", node_name="b"), pvc("c"))
    plugin = c.fwk.plugin("VolumeBinding")
    plugin.client = _FakeClient()
    plugin.bind_timeout = 0.01
    p = claim_pod("p", "c")
    st = await c.fwk.run_pre_bind(_reserved(c, p, "b"), p, "b")
    assert st.message() == ('running PreBind plugin "VolumeBinding": '
                            "binding volumes: timed out waiting for the condition")
    # all bound: nothing to do
    c2 = cluster(sc("local"), pv("pv-a", node_name="a", claim={"namespace": NS, "name": "c", "uid": "uid-c"}),
                 pvc("c", volume="pv-a", bound=True))
    st = await c2.fwk.run_pre_bind(_reserved(c2, p, "a"), p, "a")
    assert st.is_success()


# --------------------------------------------------------------------------- queueing hints

async def test_claim_events_move_only_pods_using_the_claim():
    q = SchedulingQueue(initial_backoff=0.0, max_backoff=0.0)
    uses, other = claim_pod("uses", "c"), claim_pod("other", "x")
    for p in (uses, other):
        q.add(p)
        qpi = await q.pop()
        q.requeue_unschedulable(qpi, {"VolumeBinding"}, qpi.cycle)
    moved = q.move_all(PVC_UPDATE, lambda p: sh.pod_uses_claim(p, NS, "c"))
    assert moved == 1
    assert q.where(f"{NS}/uses") == "active" and q.where(f"{NS}/other") == "unschedulable"
    assert vb.storage_class_change_matters(None, sc("x"))
    assert not vb.storage_class_change_matters(sc("x"), sc("x", parameters={"a": "b"}))
    assert vb.storage_class_change_matters(sc("x"), sc("x", allowedTopologies=[{}]))


# --------------------------------------------------------------------------- what the scheduler may do

async def test_bootstrap_policy_lets_the_scheduler_bind_volumes():
    """system:kube-scheduler (+ system:volume-scheduler) as upstream: read PVs, claims,
    classes and CSINodes; update/patch PVs and claims; nothing more on them."""
    from kybernetes.auth import bootstrap_policy as bp
    from kybernetes.auth.authorizer import Attributes, Decision, UserInfo, build_authorizer
    from kybernetes.auth.rbac import InMemoryRBACSource, RBACAuthorizer

    chain = build_authorizer("Node,RBAC", rbac=RBACAuthorizer(InMemoryRBACSource(bp.desired_objects())))
    sched = UserInfo("system:kube-scheduler", ("system:authenticated",))

    async def may(verb, group, resource, ns=""):
        a = Attributes(sched, verb, ns, group, "v1", resource, "", "", True, "")
        return (await chain.authorize(a))[0] is Decision.ALLOW

    for verb in ("get", "list", "watch"):
        assert await may(verb, "", "persistentvolumes")
        assert await may(verb, "", "persistentvolumeclaims", "ns")
        assert await may(verb, "storage.k8s.io", "storageclasses")
        assert await may(verb, "storage.k8s.io", "csinodes")
    for verb in ("update", "patch"):
        assert await may(verb, "", "persistentvolumes")
        assert await may(verb, "", "persistentvolumeclaims", "ns")
    for verb in ("create", "delete"):
        assert not await may(verb, "", "persistentvolumes")
        assert not await may(verb, "", "persistentvolumeclaims", "ns")
    assert not await may("update", "storage.k8s.io", "storageclasses")


async def test_prebind_provisioning_path_annotates_the_claim_and_waits():
    c = cluster(sc("dyn", provisioner="example.com/csi"), pvc("c", cls="dyn", rv="5"), nodes=("a",))
    plugin = c.fwk.plugin("VolumeBinding")
    plugin.client = fake = _FakeClient()
    p = claim_pod("p", "c")
    state = _reserved(c, p, "a")
    chosen = c.cache.volumes.pvc(NS, "c")["metadata"]["annotations"][sh.ANN_SELECTED_NODE]
    assert chosen == "a"
    task = asyncio.ensure_future(plugin.pre_bind(state, p, chosen))
    for _ in range(50):
        if fake.writes:
            break
        await asyncio.sleep(0)
    plural, written = fake.writes[0]
    assert plural == "persistentvolumeclaims" and written["metadata"]["annotations"][sh.ANN_SELECTED_NODE] == chosen
    vols = c.cache.volumes
    vols.set_pvc(dict(written, metadata=dict(written["metadata"], resourceVersion="15")))
    await asyncio.sleep(0)
    assert not task.done()
    # the provisioner gives up: it drops the annotation, and the pod goes back to the queue
    vols.set_pvc(pvc("c", cls="dyn", rv="16"))
    st = await asyncio.wait_for(task, 5)
    assert st.message() == 'binding volumes: provisioning failed for PVC "c"'


async def test_scheduler_sends_the_pod_back_when_prebind_fails():
    """A PV write that conflicts ends the binding cycle before Bind: the pod goes back to
    the queue (backoff), its PodScheduled condition says why, and the PV is free again."""
    from kybernetes.client import Conflict
    from kybernetes.scheduler.framework import pod_key
    from kybernetes.scheduler.scheduler import Scheduler

    calls = []

    class Res:
        def __init__(self, plural):
            self.plural = plural

        async def update(self, obj, namespace=None):
            raise Conflict({"kind": "Status", "code": 409, "reason": "Conflict", "message": "stale"})

        async def patch(self, name, body, kind, namespace=None, subresource=None):
            calls.append((self.plural, name, body, subresource))
            return body

        async def create(self, body, namespace=None):
            return body

    class Client:
        def resource(self, group, version, plural):
            return Res(plural)

        async def request(self, method, path, body=None, **kw):
            calls.append(("request", method, path))
            return body

    s = Scheduler(Client())
    s.cache.add_node(node("b"))
    for o in (sc("local"), pv("pv-b", node_name="b"), pvc("c")):
        (s.cache.volumes.set_class if "provisioner" in o else
         s.cache.volumes.set_pvc if "namespace" in o["metadata"] else s.cache.volumes.set_pv)(o)
    p = claim_pod("p", "c")
    s.queue.add(p)
    qpi = await s.queue.pop()
    s.schedule_one(qpi)
    while s._tasks:
        await asyncio.gather(*list(s._tasks), return_exceptions=True)
    assert not [c for c in calls if c[0] == "request"]  # never got to Bind
    (status,) = [c for c in calls if c[0] == "pods" and c[3] == "status"]
    cond = status[2]["status"]["conditions"][0]
    assert cond["reason"] == "SchedulerError"
    assert cond["message"].startswith('running PreBind plugin "VolumeBinding": ')
    assert s.queue.where(pod_key(p)) == "backoff"
    assert not s.cache.is_assumed(p)
    assert "claimRef" not in s.cache.volumes.pv("pv-b")["spec"]
    await s.event_broadcaster.shutdown()
    s.queue.close()


async def test_pods_waiting_for_volumes_do_not_hold_up_binding():
    """With room for one Bind at a time, a pod whose PreBind waits on its claim does not
    stop the next pod from being bound."""
    from kybernetes.scheduler.scheduler import Scheduler

    binds = []

    class Res:
        async def update(self, obj, namespace=None):
            return dict(obj, metadata=dict(obj["metadata"], resourceVersion="99"))

        async def patch(self, *a, **k):
            return {}

        async def create(self, body, namespace=None):
            return body

    class Client:
        def resource(self, group, version, plural):
            return Res()

        async def request(self, method, path, body=None, **kw):
            binds.append(path)
            return body

    s = Scheduler(Client(), max_concurrent_binds=1, record_scheduled_events=False)
    s.cache.add_node(node("b"))
    for o in (sc("local"), pv("pv-b", node_name="b"), pvc("c")):
        (s.cache.volumes.set_class if "provisioner" in o else
         s.cache.volumes.set_pvc if "namespace" in o["metadata"] else s.cache.volumes.set_pv)(o)
    for p in (claim_pod("waits", "c"), pod("plain", NS)):
        s.queue.add(p)
        s.schedule_one(await s.queue.pop())
    deadline = asyncio.get_running_loop().time() + 5
    while not binds and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert binds == [f"/api/v1/namespaces/{NS}/pods/plain/binding"]
    assert s.cache.is_assumed(claim_pod("waits", "c"))  # still waiting for its claim
    for t in list(s._tasks):
        t.cancel()
    await asyncio.gather(*list(s._tasks), return_exceptions=True)
    await s.event_broadcaster.shutdown()
    s.queue.close()
