"""Update (immutability) rules of the workload, service, config and storage kinds, one rule a test,
with upstream's field paths and messages."""

from __future__ import annotations

import copy

from kybernetes.registry.apps.statefulsets import StatefulSetStrategy
from kybernetes.registry.batch.jobs import JobStrategy
from kybernetes.registry.core.configmaps import ConfigMapStrategy
from kybernetes.registry.core.persistentvolumeclaims import PersistentVolumeClaimStrategy
from kybernetes.registry.core.persistentvolumes import PersistentVolumeStrategy
from kybernetes.registry.core.resourcequotas import ResourceQuotaStrategy
from kybernetes.registry.core.secrets import SecretStrategy
from kybernetes.registry.core.services import ServiceStrategy
from kybernetes.registry.storage.csinodes import CSINodeStrategy
from kybernetes.registry.storage.storageclasses import StorageClassStrategy

IMMUTABLE_SET = "field is immutable when `immutable` is set"


def update_causes(strategy, new, old) -> list[tuple[str, str, str]]:
    return [(c.field, c.reason, c.message) for c in strategy.validate_update(new, old)]


def changed(obj: dict, fn) -> dict:
    new = copy.deepcopy(obj)
    fn(new)
    return new


# ------------------------------------------------------------------ statefulsets
STS = StatefulSetStrategy()
STS_OBJ = {"metadata": {"name": "db", "namespace": "default"}, "spec": {
    "replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
    "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate"},
    "template": {"metadata": {"labels": {"app": "db"}},
                 "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Always"}}}}


def test_statefulset_allowed_fields_change_freely() -> None:
    def edit(o):
        o["spec"].update(replicas=3, minReadySeconds=5, revisionHistoryLimit=2, ordinals={"start": 1},
                         persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"},
                         updateStrategy={"type": "OnDelete"})
        o["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    assert update_causes(STS, changed(STS_OBJ, edit), STS_OBJ) == []


def test_statefulset_other_spec_fields_are_forbidden() -> None:
    for edit in (lambda o: o["spec"].update(serviceName="other"),
                 lambda o: o["spec"].update(podManagementPolicy="Parallel"),
                 lambda o: o["spec"].update(volumeClaimTemplates=[{"metadata": {"name": "d"}}])):
        got = [c for c in update_causes(STS, changed(STS_OBJ, edit), STS_OBJ) if c[0] == "spec"]
        assert got == [("spec", "FieldValueForbidden",
                        "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                        "'template', 'updateStrategy', 'revisionHistoryLimit', "
                        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")]


# ------------------------------------------------------------------ jobs
JOB = JobStrategy()
JOB_OBJ = {"metadata": {"name": "j", "namespace": "default", "uid": "u1"}, "spec": {
    "completions": 2, "parallelism": 2, "backoffLimit": 6, "completionMode": "NonIndexed", "suspend": False,
    "manualSelector": True, "selector": {"matchLabels": {"app": "j"}},
    "template": {"metadata": {"labels": {"app": "j"}},
                 "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}}}


def test_job_template_is_immutable_once_running() -> None:
    new = changed(JOB_OBJ, lambda o: o["spec"]["template"]["spec"].update(nodeSelector={"zone": "a"}))
    assert update_causes(JOB, new, JOB_OBJ) == [
        ("spec.template", "FieldValueInvalid", "Invalid value: core.PodTemplateSpec{...}: field is immutable")]


def test_suspended_unstarted_job_may_change_scheduling_directives_only() -> None:
    old = changed(JOB_OBJ, lambda o: o["spec"].update(suspend=True))

    def sched(o):
        t = o["spec"]["template"]
        t["metadata"]["annotations"] = {"a": "b"}
        t["spec"].update(nodeSelector={"zone": "a"}, tolerations=[{"key": "k", "operator": "Exists"}],
                         affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                             "nodeSelectorTerms": [{"matchExpressions": [
                                 {"key": "z", "operator": "In", "values": ["a"]}]}]}}})
    assert update_causes(JOB, changed(old, sched), old) == []
    image = changed(old, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="other"))
    assert [c[0] for c in update_causes(JOB, image, old)] == ["spec.template"]
    started = changed(old, lambda o: o.update(status={"startTime": "2026-01-01T00:00:00Z"}))
    assert [c[0] for c in update_causes(JOB, changed(started, sched), started)] == ["spec.template"]


def test_job_selector_completion_fields_and_managed_by_are_immutable() -> None:
    new = changed(JOB_OBJ, lambda o: o["spec"].update(completions=3, managedBy="example.com/x"))
    got = update_causes(JOB, new, JOB_OBJ)
    assert ("spec.completions", "FieldValueInvalid", "Invalid value: 3: field is immutable") in got
    assert ("spec.managedBy", "FieldValueInvalid", 'Invalid value: "example.com/x": field is immutable') in got


def test_indexed_job_completions_change_only_with_parallelism() -> None:
    old = changed(JOB_OBJ, lambda o: o["spec"].update(completionMode="Indexed"))
    both = changed(old, lambda o: o["spec"].update(completions=4, parallelism=4))
    assert update_causes(JOB, both, old) == []
    alone = changed(old, lambda o: o["spec"].update(completions=4))
    assert update_causes(JOB, alone, old) == [
        ("spec.completions", "FieldValueInvalid", "Invalid value: 4: can only be modified in tandem with spec.parallelism")]


# ------------------------------------------------------------------ persistentvolumeclaims
PVC = PersistentVolumeClaimStrategy()
PVC_OBJ = {"metadata": {"name": "c", "namespace": "default"},
           "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem", "storageClassName": "local",
                    "resources": {"requests": {"storage": "1Gi"}}},
           "status": {"phase": "Pending"}}


def test_pvc_storage_request_grows_only_when_bound() -> None:
    grow = changed(PVC_OBJ, lambda o: o["spec"]["resources"]["requests"].update(storage="2Gi"))
    got = update_causes(PVC, grow, PVC_OBJ)
    assert [c[:2] for c in got] == [("spec", "FieldValueForbidden")]
    assert got[0][2].startswith("Forbidden: spec is immutable after creation except resources.requests and "
                                "volumeAttributesClassName for bound claims\n")
    bound = changed(PVC_OBJ, lambda o: o.update(status={"phase": "Bound", "capacity": {"storage": "1Gi"}}))
    assert update_causes(PVC, changed(bound, lambda o: o["spec"]["resources"]["requests"].update(storage="2Gi")),
                         bound) == []


def test_pvc_may_not_shrink_to_its_capacity() -> None:
    old = changed(PVC_OBJ, lambda o: (o["spec"]["resources"]["requests"].update(storage="2Gi"),
                                      o.update(status={"phase": "Bound", "capacity": {"storage": "1Gi"}})))
    shrink = changed(old, lambda o: o["spec"]["resources"]["requests"].update(storage="1Gi"))
    assert update_causes(PVC, shrink, old) == [
        ("spec.resources.requests.storage", "FieldValueForbidden", "Forbidden: field can not be less than status.capacity")]


def test_pvc_other_spec_fields_and_volume_mode() -> None:
    new = changed(PVC_OBJ, lambda o: o["spec"].update(volumeMode="Block", storageClassName="other"))
    got = update_causes(PVC, new, PVC_OBJ)
    assert [c[0] for c in got] == ["spec", "volumeMode"]
    assert got[1] == ("volumeMode", "FieldValueInvalid", 'Invalid value: "Block": field is immutable')


def test_pvc_volume_name_set_once_and_class_from_unset() -> None:
    unset = changed(PVC_OBJ, lambda o: o["spec"].pop("storageClassName"))
    new = changed(unset, lambda o: o["spec"].update(volumeName="pv1", storageClassName="fast"))
    assert update_causes(PVC, new, unset) == []
    again = changed(new, lambda o: o["spec"].update(volumeName="pv2"))
    assert [c[0] for c in update_causes(PVC, again, new)] == ["spec"]


def test_pvc_attributes_class_may_not_be_cleared() -> None:
    old = changed(PVC_OBJ, lambda o: o["spec"].update(volumeAttributesClassName="gold"))
    assert update_causes(PVC, changed(old, lambda o: o["spec"].update(volumeAttributesClassName="silver")), old) == []
    assert update_causes(PVC, changed(old, lambda o: o["spec"].pop("volumeAttributesClassName")), old) == [
        ("spec.volumeAttributesClassName", "FieldValueForbidden", "Forbidden: update from non-nil value to nil is forbidden")]


# ------------------------------------------------------------------ persistentvolumes
PV = PersistentVolumeStrategy()
PV_OBJ = {"metadata": {"name": "pv1"}, "spec": {
    "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
    "volumeMode": "Filesystem", "csi": {"driver": "d.example.com", "volumeHandle": "h"}}}


def test_pv_source_is_immutable_but_csi_may_gain_expand_secret() -> None:
    new = changed(PV_OBJ, lambda o: o["spec"]["csi"].update(volumeHandle="other"))
    got = update_causes(PV, new, PV_OBJ)
    assert [c[:2] for c in got] == [("spec.persistentvolumesource", "FieldValueForbidden")]
    assert got[0][2].startswith("Forbidden: spec.persistentvolumesource is immutable after creation\n")
    secret = changed(PV_OBJ, lambda o: o["spec"]["csi"].update(controllerExpandSecretRef={"name": "s", "namespace": "n"}))
    assert update_causes(PV, secret, PV_OBJ) == []
    capacity = changed(PV_OBJ, lambda o: o["spec"].update(capacity={"storage": "2Gi"}))
    assert update_causes(PV, capacity, PV_OBJ) == []


def test_pv_volume_mode_and_node_affinity() -> None:
    aff = {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "Exists"}]}]}}
    old = changed(PV_OBJ, lambda o: o["spec"].update(nodeAffinity=aff))
    new = changed(old, lambda o: (o["spec"].update(volumeMode="Block"), o["spec"].pop("nodeAffinity")))
    assert [(c[0], c[1]) for c in update_causes(PV, new, old)] == [
        ("volumeMode", "FieldValueInvalid"), ("nodeAffinity", "FieldValueInvalid")]
    assert update_causes(PV, old, PV_OBJ) == []  # setting it the first time is fine


# ------------------------------------------------------------------ storageclasses
SC = StorageClassStrategy()
SC_OBJ = {"metadata": {"name": "fast"}, "provisioner": "example.com/p", "parameters": {"a": "1"},
          "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}


def test_storageclass_fixed_fields() -> None:
    new = changed(SC_OBJ, lambda o: o.update(provisioner="example.com/q", parameters={"a": "2"}, reclaimPolicy="Retain",
                                             volumeBindingMode="WaitForFirstConsumer", allowVolumeExpansion=True))
    assert update_causes(SC, new, SC_OBJ) == [
        ("parameters", "FieldValueForbidden", "Forbidden: updates to parameters are forbidden."),
        ("provisioner", "FieldValueForbidden", "Forbidden: updates to provisioner are forbidden."),
        ("reclaimPolicy", "FieldValueForbidden", "Forbidden: updates to reclaimPolicy are forbidden."),
        ("volumeBindingMode", "FieldValueInvalid", 'Invalid value: "WaitForFirstConsumer": field is immutable')]


# ------------------------------------------------------------------ services
SVC = ServiceStrategy()
SVC_OBJ = {"metadata": {"name": "web", "namespace": "default"}, "spec": {
    "type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"], "ipFamilies": ["IPv4"],
    "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
    "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}}


def prepared(new: dict, old: dict) -> dict:
    SVC.prepare_for_update(new, old)
    SVC.default(new)
    return new


def test_service_cluster_ip_may_not_change() -> None:
    new = prepared(changed(SVC_OBJ, lambda o: o["spec"].update(clusterIP="10.43.0.11")), SVC_OBJ)
    assert new["spec"]["clusterIPs"] == ["10.43.0.11"]  # normalized from the singular field
    assert update_causes(SVC, new, SVC_OBJ) == [
        ("spec.clusterIPs[0]", "FieldValueInvalid", 'Invalid value: []string{"10.43.0.11"}: may not change once set')]


def test_service_omitting_cluster_ips_keeps_them() -> None:
    new = prepared(changed(SVC_OBJ, lambda o: (o["spec"].pop("clusterIP"), o["spec"].pop("clusterIPs"))), SVC_OBJ)
    assert new["spec"]["clusterIPs"] == ["10.43.0.10"]
    assert update_causes(SVC, new, SVC_OBJ) == []


def test_service_secondary_release_needs_single_stack() -> None:
    old = changed(SVC_OBJ, lambda o: o["spec"].update(clusterIPs=["10.43.0.10", "fd00::10"],
                                                      ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="PreferDualStack"))
    new = changed(old, lambda o: o["spec"].update(clusterIPs=["10.43.0.10"], ipFamilies=["IPv4"]))
    got = update_causes(SVC, new, old)
    assert ("spec.clusterIPs[0]", "FieldValueInvalid", 'Invalid value: []string{"10.43.0.10"}: '
            "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP") in got
    single = changed(new, lambda o: o["spec"].update(ipFamilyPolicy="SingleStack"))
    assert update_causes(SVC, single, old) == []


def test_service_ip_family_may_not_change() -> None:
    new = changed(SVC_OBJ, lambda o: o["spec"].update(ipFamilies=["IPv6"]))
    assert ("spec.ipFamilies[0]", "FieldValueInvalid",
            'Invalid value: []core.IPFamily{"IPv6"}: may not change once set') in update_causes(SVC, new, SVC_OBJ)


def test_service_to_external_name_drops_the_address_rules() -> None:
    new = changed(SVC_OBJ, lambda o: o["spec"].update(type="ExternalName", externalName="example.com",
                                                      clusterIP="", clusterIPs=[]))
    assert [c for c in update_causes(SVC, new, SVC_OBJ) if c[0].startswith("spec.clusterIPs")] == []


def test_service_load_balancer_class_is_fixed() -> None:
    old = changed(SVC_OBJ, lambda o: o["spec"].update(type="LoadBalancer", loadBalancerClass="example.com/a"))
    new = changed(old, lambda o: o["spec"].update(loadBalancerClass="example.com/b"))
    assert ("spec.loadBalancerClass", "FieldValueInvalid", 'Invalid value: "example.com/b": may not change once set') \
        in update_causes(SVC, new, old)


# ------------------------------------------------------------------ configmaps and secrets
CM = ConfigMapStrategy()
SECRET = SecretStrategy()


def test_immutable_configmap_rejects_data_and_flag_changes() -> None:
    old = {"metadata": {"name": "c", "namespace": "default"}, "immutable": True, "data": {"a": "1"}}
    new = changed(old, lambda o: o.update(immutable=False, data={"a": "2"}, binaryData={"b": "AA=="}))
    assert update_causes(CM, new, old) == [("immutable", "FieldValueForbidden", "Forbidden: " + IMMUTABLE_SET),
                                           ("data", "FieldValueForbidden", "Forbidden: " + IMMUTABLE_SET),
                                           ("binaryData", "FieldValueForbidden", "Forbidden: " + IMMUTABLE_SET)]
    labels = changed(old, lambda o: o["metadata"].update(labels={"x": "y"}))
    assert update_causes(CM, labels, old) == []
    mutable = dict(old, immutable=False)
    assert update_causes(CM, changed(mutable, lambda o: o.update(immutable=True, data={"a": "3"})), mutable) == []


def test_secret_type_and_immutable_data() -> None:
    old = {"metadata": {"name": "s", "namespace": "default"}, "type": "Opaque", "immutable": True,
           "data": {"a": "MQ=="}}
    new = changed(old, lambda o: o.update(type="example.com/x", data={"a": "Mg=="}))
    assert update_causes(SECRET, new, old) == [
        ("type", "FieldValueInvalid", 'Invalid value: "example.com/x": field is immutable'),
        ("data", "FieldValueForbidden", "Forbidden: " + IMMUTABLE_SET)]


# ------------------------------------------------------------------ resource quotas, csinodes
def test_resource_quota_scopes_are_fixed() -> None:
    rq = ResourceQuotaStrategy()
    old = {"metadata": {"name": "q", "namespace": "default"}, "spec": {"hard": {"pods": "1"}, "scopes": ["Terminating"]}}
    new = changed(old, lambda o: o["spec"].update(scopes=["NotTerminating"], hard={"pods": "2"}))
    assert update_causes(rq, new, old) == [
        ("spec.scopes", "FieldValueInvalid",
         'Invalid value: []core.ResourceQuotaScope{"NotTerminating"}: field is immutable')]
    assert update_causes(rq, changed(old, lambda o: o["spec"].update(hard={"pods": "5"})), old) == []


def test_csinode_driver_entries_are_fixed_but_allocatable() -> None:
    cs = CSINodeStrategy()
    old = {"metadata": {"name": "n1"}, "spec": {"drivers": [{"name": "d", "nodeID": "n1", "topologyKeys": ["z"]}]}}
    assert update_causes(cs, changed(old, lambda o: o["spec"]["drivers"][0].update(allocatable={"count": 3})), old) == []
    got = update_causes(cs, changed(old, lambda o: o["spec"]["drivers"][0].update(nodeID="n2")), old)
    assert [c[:2] for c in got] == [("CSINodeDriver", "FieldValueInvalid")]
    added = changed(old, lambda o: o["spec"]["drivers"].append({"name": "e", "nodeID": "n1"}))
    assert update_causes(cs, added, old) == []


def test_csidriver_attach_required_and_lifecycle_modes_are_fixed() -> None:
    from kybernetes.registry.storage.csidrivers import CSIDriverStrategy

    cd = CSIDriverStrategy()
    old = {"metadata": {"name": "d.example.com"}, "spec": {
        "attachRequired": True, "podInfoOnMount": False, "volumeLifecycleModes": ["Persistent"]}}
    assert update_causes(cd, changed(old, lambda o: o["spec"].update(podInfoOnMount=True, fsGroupPolicy="File")), old) == []
    new = changed(old, lambda o: o["spec"].update(attachRequired=False, volumeLifecycleModes=["Ephemeral"]))
    assert update_causes(cd, new, old) == [
        ("spec.attachedRequired", "FieldValueInvalid", "Invalid value: false: field is immutable"),
        ("spec.volumeLifecycleModes", "FieldValueInvalid",
         'Invalid value: []storage.VolumeLifecycleMode{"Ephemeral"}: field is immutable')]


def test_gated_pod_may_only_add_node_selector_terms() -> None:
    from kybernetes.registry.core.podspec import validate_pod_spec_update

    old = {"containers": [{"name": "c", "image": "busybox"}], "nodeSelector": {"a": "1"},
           "schedulingGates": [{"name": "example.com/wait"}]}
    assert validate_pod_spec_update(changed(old, lambda s: s["nodeSelector"].update(b="2")), old) == []
    got = validate_pod_spec_update(changed(old, lambda s: s.update(nodeSelector={"a": "9"})), old)
    assert [(c.field, c.reason, c.message) for c in got] == [
        ("spec.nodeSelector", "FieldValueInvalid", 'Invalid value: map[string]string{"a":"9"}: '
         "only additions to spec.nodeSelector are allowed (no mutations or deletions)")]
    ungated = changed(old, lambda s: s.pop("schedulingGates"))
    got = validate_pod_spec_update(changed(ungated, lambda s: s["nodeSelector"].update(b="2")), ungated)
    assert [c.field for c in got] == ["spec"]
