"""Unit tests of the VolumeRestrictions plugin: disk conflicts per node and
ReadWriteOncePod claims across the cluster (preemption's what-if included)."""

from __future__ import annotations

from kybernetes.scheduler.framework import Code, CycleState, PodInfo
from kybernetes.scheduler.plugins import volumerestrictions as vr
from kybernetes.scheduler.scheduler import FitError

from simcluster import SimCluster, node, pod

NS = "d"


def with_volumes(name, *volumes, **kw):
    return pod(name, NS, volumes=[dict(v, name=f"v{i}") for i, v in enumerate(volumes)], **kw)


def claim(name, modes=("ReadWriteOncePod",)):
    return {"metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": "1"},
            "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}}


def test_volume_conflict_rules():
    gce = lambda ro=False: {"gcePersistentDisk": {"pdName": "d1", "readOnly": ro}}  # noqa: E731
    other = with_volumes("o", gce())
    assert vr.volumes_conflict(gce(), other)
    assert vr.volumes_conflict(gce(True), other)
    assert not vr.volumes_conflict(gce(True), with_volumes("o", gce(True)))
    assert not vr.volumes_conflict({"gcePersistentDisk": {"pdName": "d2"}}, other)
    ebs = {"awsElasticBlockStore": {"volumeID": "vol-1", "readOnly": True}}
    assert vr.volumes_conflict(ebs, with_volumes("o", ebs))  # EBS: even read-only
    iscsi = lambda ro: {"iscsi": {"iqn": "iqn.x", "targetPortal": "t", "lun": 0, "readOnly": ro}}  # noqa: E731
    assert vr.volumes_conflict(iscsi(False), with_volumes("o", iscsi(True)))
    assert not vr.volumes_conflict(iscsi(True), with_volumes("o", iscsi(True)))
    rbd = lambda mons, pool=None: {"rbd": {"monitors": mons, "image": "img", **({"pool": pool} if pool else {})}}  # noqa: E731
    assert vr.volumes_conflict(rbd(["m1", "m2"]), with_volumes("o", rbd(["m2"], "rbd")))
    assert not vr.volumes_conflict(rbd(["m1"]), with_volumes("o", rbd(["m2"])))
    assert not vr.volumes_conflict(rbd(["m1"]), with_volumes("o", rbd(["m1"], "other")))


def test_disk_conflict_filters_the_node_with_the_disk():
    c = SimCluster(node("a"), node("b"))
    c.place(with_volumes("holder", {"awsElasticBlockStore": {"volumeID": "vol-1"}}), "a")
    for _ in range(4):
        assert c.schedule(with_volumes("p", {"awsElasticBlockStore": {"volumeID": "vol-1"}})) == "b"
    c.place(with_volumes("holder2", {"awsElasticBlockStore": {"volumeID": "vol-1"}}), "b")
    res = c.schedule(with_volumes("p", {"awsElasticBlockStore": {"volumeID": "vol-1"}}))
    assert isinstance(res, FitError)
    assert res.diagnosis.message().startswith("0/2 nodes are available: 2 node(s) had no available disk.")
    assert res.diagnosis.node_statuses["a"].code == Code.UNSCHEDULABLE


def test_pods_without_restricted_volumes_skip():
    c = SimCluster(node("a"))
    c.cache.volumes.set_pvc(claim("rwo", modes=("ReadWriteOnce",)))
    st = vr.VolumeRestrictions().pre_filter(CycleState(c.cache), with_volumes(
        "p", {"persistentVolumeClaim": {"claimName": "rwo"}}, {"emptyDir": {}}))
    assert st.code == Code.SKIP
    st = vr.VolumeRestrictions().pre_filter(CycleState(c.cache), with_volumes(
        "p", {"persistentVolumeClaim": {"claimName": "missing"}}))
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert st.message() == 'persistentvolumeclaim "missing" not found'


def test_read_write_once_pod_claim_in_use_anywhere_blocks_and_preemption_sees_it():
    c = SimCluster(node("a"), node("b"))
    c.cache.volumes.set_pvc(claim("solo"))
    user = c.place(with_volumes("user", {"persistentVolumeClaim": {"claimName": "solo"}}), "a")
    plugin = vr.VolumeRestrictions()
    p = with_volumes("p", {"persistentVolumeClaim": {"claimName": "solo"}})
    state = CycleState(c.cache)
    assert plugin.pre_filter(state, p) is None
    ni_b = c.cache.nodes["b"]
    st = plugin.filter(state, p, ni_b)
    assert st.code == Code.UNSCHEDULABLE and st.message() == vr.ERR_REASON_RWOP_CONFLICT
    # preemption's what-if: without the user the claim is free
    trial = state.clone()
    plugin.remove_pod(trial, p, PodInfo(user), c.cache.nodes["a"])
    assert plugin.filter(trial, p, ni_b) is None
    assert plugin.filter(state, p, ni_b).code == Code.UNSCHEDULABLE  # the original state is untouched
    # the same claim name in another namespace is another claim
    c2 = SimCluster(node("a"))
    c2.cache.volumes.set_pvc(claim("solo"))
    c2.place(dict(user, metadata=dict(user["metadata"], namespace="elsewhere")), "a")
    assert vr.VolumeRestrictions().pre_filter(CycleState(c2.cache), p).code == Code.SKIP
