"""Update semantics through the official Python client and kubectl: immutability rules (422 with
upstream causes), empty metadata lists dropped after patches, and field ownership through /scale."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

NS = "updsem"
pytestmark = pytest.mark.usefixtures("module_namespace")


def causes_of(exc: ApiException) -> list[tuple[str, str]]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["reason"] == "Invalid", body
    return [(c["field"], c["reason"]) for c in body["details"]["causes"]]


def invalid(fn, *args, **kwargs) -> ApiException:
    with pytest.raises(ApiException) as e:
        fn(*args, **kwargs)
    assert e.value.status == 422, e.value.body
    return e.value


# ------------------------------------------------------------------ immutability (422)
def test_immutable_configmap_and_secret(api):
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": True})
    e = invalid(core.patch_namespaced_config_map, "frozen", NS, {"data": {"a": "2"}})
    assert causes_of(e) == [("data", "FieldValueForbidden")]
    assert "field is immutable when `immutable` is set" in json.loads(e.body)["message"]
    e = invalid(core.patch_namespaced_config_map, "frozen", NS, {"immutable": False})
    assert causes_of(e) == [("immutable", "FieldValueForbidden")]
    assert core.read_namespaced_config_map("frozen", NS).data == {"a": "1"}  # nothing written
    core.patch_namespaced_config_map("frozen", NS, {"metadata": {"labels": {"ok": "yes"}}})  # metadata may change

    core.create_namespaced_secret(NS, {"metadata": {"name": "s"}, "type": "Opaque", "stringData": {"a": "1"}})
    e = invalid(core.patch_namespaced_secret, "s", NS, {"type": "example.com/other"})
    assert causes_of(e) == [("type", "FieldValueInvalid")]


def test_statefulset_spec_fields_forbidden(api):
    apps = client.AppsV1Api(api)
    tmpl = {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    apps.create_namespaced_stateful_set(NS, {"metadata": {"name": "db"}, "spec": {
        "serviceName": "db", "replicas": 0, "selector": {"matchLabels": {"app": "db"}}, "template": tmpl}})
    e = invalid(apps.patch_namespaced_stateful_set, "db", NS, {"spec": {"serviceName": "other"}})
    assert causes_of(e) == [("spec", "FieldValueForbidden")]
    assert "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template'" in e.body
    apps.patch_namespaced_stateful_set("db", NS, {"spec": {"replicas": 0, "minReadySeconds": 3}})


def test_pvc_spec_and_storageclass(api):
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    core.create_namespaced_persistent_volume_claim(NS, {"metadata": {"name": "c"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "nothing-here",
        "resources": {"requests": {"storage": "1Gi"}}}})
    # not bound: even the storage request is frozen
    e = invalid(core.patch_namespaced_persistent_volume_claim, "c", NS,
                {"spec": {"resources": {"requests": {"storage": "2Gi"}}}})
    assert causes_of(e) == [("spec", "FieldValueForbidden")]
    e = invalid(core.patch_namespaced_persistent_volume_claim, "c", NS, {"spec": {"volumeMode": "Block"}})
    assert ("volumeMode", "FieldValueInvalid") in causes_of(e)

    storage.create_storage_class({"metadata": {"name": "upd-sc"}, "provisioner": "example.com/p"})
    try:
        e = invalid(storage.patch_storage_class, "upd-sc", {"provisioner": "example.com/q", "parameters": {"a": "b"}})
        assert causes_of(e) == [("parameters", "FieldValueForbidden"), ("provisioner", "FieldValueForbidden")]
    finally:
        storage.delete_storage_class("upd-sc")


def test_service_cluster_ip_and_job_template(api):
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    svc = core.create_namespaced_service(NS, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    ip = svc.spec.cluster_ip
    other = ip.rsplit(".", 1)[0] + "." + str((int(ip.rsplit(".", 1)[1]) % 250) + 2)
    e = invalid(core.patch_namespaced_service, "web", NS, {"spec": {"clusterIP": other}})
    assert causes_of(e) == [("spec.clusterIPs[0]", "FieldValueInvalid")]
    assert "may not change once set" in e.body
    assert core.read_namespaced_service("web", NS).spec.cluster_ip == ip

    batch.create_namespaced_job(NS, {"metadata": {"name": "j"}, "spec": {"suspend": True, "template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})
    # suspended and never started: scheduling directives may change, the containers may not
    batch.patch_namespaced_job("j", NS, {"spec": {"template": {"spec": {"nodeSelector": {"zone": "a"}}}}})
    e = invalid(batch.patch_namespaced_job, "j", NS,
                {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "other"}]}}}})
    assert causes_of(e) == [("spec.template", "FieldValueInvalid")]


# ------------------------------------------------------------------ empty metadata lists
def test_patch_leaving_empty_owner_references_drops_them(api):
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(NS, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(NS, {"metadata": {"name": "dep", "ownerReferences": [ref],
                                                        "finalizers": ["example.com/hold"]}})
    out = core.patch_namespaced_config_map("dep", NS, {"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": owner.metadata.uid}],
        "$deleteFromPrimitiveList/finalizers": ["example.com/hold"]}})
    assert out.metadata.owner_references is None and out.metadata.finalizers is None
    raw = core.read_namespaced_config_map("dep", NS, _preload_content=False)
    meta = json.loads(raw.data)["metadata"]
    assert "ownerReferences" not in meta and "finalizers" not in meta
    out = core.replace_namespaced_config_map("dep", NS, {"metadata": {
        "name": "dep", "labels": {}, "annotations": {}, "ownerReferences": []}})
    raw = json.loads(core.read_namespaced_config_map("dep", NS, _preload_content=False).data)["metadata"]
    assert not {"labels", "annotations", "ownerReferences"} & set(raw)


# ------------------------------------------------------------------ field ownership through /scale
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sc", "namespace": NS}, "spec": {
    "replicas": 1, "selector": {"matchLabels": {"app": "sc"}},
    "template": {"metadata": {"labels": {"app": "sc"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def entries(api, name="sc"):
    d = client.AppsV1Api(api).read_namespaced_deployment(name, NS, _preload_content=False)
    return json.loads(d.data)["metadata"]["managedFields"]


def owners_of_replicas(mfs):
    return [(e["manager"], e["operation"], e.get("subresource", "")) for e in mfs
            if "f:replicas" in (e.get("fieldsV1") or {}).get("f:spec", {})]


APPLY = "application/apply-patch+yaml"


def test_kubectl_scale_takes_replicas_and_apply_conflicts(api, kyb):
    apps = client.AppsV1Api(api)
    apps.patch_namespaced_deployment("sc", NS, DEPLOY, field_manager="deployer", _content_type=APPLY)
    assert owners_of_replicas(entries(api)) == [("deployer", "Apply", "")]
    kyb.kubectl("scale", "-n", NS, "deploy/sc", "--replicas=3")
    mfs = entries(api)
    assert owners_of_replicas(mfs) == [("kubectl", "Update", "scale")]
    scale_entry = next(e for e in mfs if e.get("subresource") == "scale")
    assert scale_entry["apiVersion"] == "apps/v1" and scale_entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    # the applier lost replicas; applying its old value now conflicts with the scale manager
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment("sc", NS, DEPLOY, field_manager="deployer", _content_type=APPLY)
    assert e.value.status == 409
    body = json.loads(e.value.body)
    assert body["details"]["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                          "message": 'conflict with "kubectl" with subresource "scale" using apps/v1'}]
    assert apps.read_namespaced_deployment("sc", NS).spec.replicas == 3
    # kubectl's own server-side apply reports the same owner
    doc = json.loads(json.dumps(DEPLOY))
    doc["spec"]["replicas"] = 5
    p = kyb.kubectl("apply", "--server-side", "--field-manager=deployer", "-f", "-", input=json.dumps(doc), check=False)
    assert p.returncode != 0
    assert 'conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas' in p.stderr, p.stderr
    kyb.kubectl("apply", "--server-side", "--field-manager=deployer", "--force-conflicts", "-f", "-", input=json.dumps(doc))
    assert owners_of_replicas(entries(api)) == [("deployer", "Apply", "")]
    assert apps.read_namespaced_deployment("sc", NS).spec.replicas == 5


def test_apply_patch_to_scale(api):
    apps = client.AppsV1Api(api)
    doc = dict(DEPLOY, metadata={"name": "sc2", "namespace": NS})
    apps.create_namespaced_deployment(NS, doc, field_manager="creator")
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "sc2"}, "spec": {"replicas": 4}}
    with pytest.raises(ApiException) as e:  # the creator (an Update manager) owns replicas
        apps.patch_namespaced_deployment_scale("sc2", NS, scale, field_manager="autoscaler", _content_type=APPLY)
    assert e.value.status == 409
    assert json.loads(e.value.body)["details"]["causes"] == [{
        "reason": "FieldManagerConflict", "field": ".spec.replicas",
        "message": 'conflict with "creator" using autoscaling/v1'}]
    out = apps.patch_namespaced_deployment_scale("sc2", NS, scale, field_manager="autoscaler", force=True,
                                                 _content_type=APPLY)
    assert out.kind == "Scale" and out.spec.replicas == 4
    assert apps.read_namespaced_deployment("sc2", NS).spec.replicas == 4
    assert owners_of_replicas(entries(api, "sc2")) == [("autoscaler", "Apply", "scale")]
    # the same manager applying again owns it already: no conflict; a new value is taken
    out = apps.patch_namespaced_deployment_scale("sc2", NS, dict(scale, spec={"replicas": 2}),
                                                 field_manager="autoscaler", _content_type=APPLY)
    assert out.spec.replicas == 2 and apps.read_namespaced_deployment("sc2", NS).spec.replicas == 2
