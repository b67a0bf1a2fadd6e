"""Unit tests of the VolumeZone plugin: bound PVs' zone/region labels against nodes'."""

from __future__ import annotations

from kybernetes.scheduler.framework import Code, CycleState
from kybernetes.scheduler.plugins import volumezone as vz
from kybernetes.scheduler.scheduler import FitError

from simcluster import SimCluster, node, pod

NS = "d"


def pv(name, **labels):
    return {"metadata": {"name": name, "resourceVersion": "1", "labels": labels},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "std"},
            "status": {"phase": "Bound"}}


def bound_claim(name, volume):
    return {"metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": "1",
                         "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": volume, "storageClassName": "std",
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound"}}


def claim_pod(*claims):
    return pod("p", NS, volumes=[{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                 for i, c in enumerate(claims)])


def test_label_zones():
    assert vz.label_zones("z1") == {"z1"}
    assert vz.label_zones("z1__z2") == {"z1", "z2"}
    assert vz.label_zones("z1____z2") is None


def test_pv_zone_picks_the_node_in_that_zone():
    c = SimCluster(node("a", labels={vz.ZONE: "z1", vz.REGION: "r"}), node("b", labels={vz.ZONE: "z2", vz.REGION: "r"}),
                   node("plain"))
    vols = c.cache.volumes
    vols.set_pv(pv("in-z2", **{vz.ZONE: "z2"}))
    vols.set_pvc(bound_claim("c", "in-z2"))
    got = {c.schedule(claim_pod("c")) for _ in range(8)}
    assert got <= {"b", "plain"} and "b" in got  # a node without zone labels fits too
    # the beta key on the PV matches the GA key on the node; several zones in one value
    vols.set_pv(pv("beta", **{vz.BETA_ZONE: "z1__z3"}))
    vols.set_pvc(bound_claim("d", "beta"))
    c.cache.remove_node(node("plain"))
    assert c.schedule(claim_pod("d")) == "a"
    res = c.schedule(claim_pod("c", "d"))
    assert isinstance(res, FitError)
    assert res.diagnosis.message().startswith("0/2 nodes are available: 2 node(s) had no available volume zone.")


def test_prefilter_skips_and_rejections():
    c = SimCluster(node("a"))
    vols = c.cache.volumes
    plugin = vz.VolumeZone()
    assert plugin.pre_filter(CycleState(c.cache), pod("p", NS)).code == Code.SKIP
    vols.set_pv(pv("nolabels"))
    vols.set_pvc(bound_claim("c", "nolabels"))
    assert plugin.pre_filter(CycleState(c.cache), claim_pod("c")).code == Code.SKIP
    vols.set_pvc(bound_claim("ghost", "missing-pv"))
    st = plugin.pre_filter(CycleState(c.cache), claim_pod("ghost"))
    assert st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE and st.message() == 'persistentvolume "missing-pv" not found'
    unbound = bound_claim("wffc", "")
    vols.set_pvc(unbound)
    st = plugin.pre_filter(CycleState(c.cache), claim_pod("wffc"))
    assert st.message() == 'storageclass.storage.k8s.io "std" not found'
    vols.set_class({"metadata": {"name": "std"}, "provisioner": "x", "volumeBindingMode": "WaitForFirstConsumer"})
    assert plugin.pre_filter(CycleState(c.cache), claim_pod("wffc")).code == Code.SKIP
