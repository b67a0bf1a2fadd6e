"""Error responses are meta/v1 Status objects with upstream codes, reasons and details."""

from __future__ import annotations

import pytest

from apiserver_helpers import uniq


def cm_body(name: str, **extra) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **extra}, "data": {"a": "b"}}


async def test_get_missing_object_is_404_with_details(api, ns):
    st = (await api.get(f"/api/v1/namespaces/{ns}/configmaps/missing")).status_obj(404, "NotFound")
    assert st["message"] == 'configmaps "missing" not found'
    assert st["details"]["name"] == "missing" and st["details"]["kind"] == "configmaps"
    assert "group" not in st["details"] or st["details"]["group"] == ""


async def test_get_missing_grouped_object_names_the_group(api, ns):
    st = (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/missing")).status_obj(404, "NotFound")
    assert st["message"] == 'deployments.apps "missing" not found'
    assert st["details"] == {"name": "missing", "group": "apps", "kind": "deployments"}


async def test_unknown_resource_is_404(api, ns):
    (await api.get(f"/api/v1/namespaces/{ns}/widgets")).status_obj(404, "NotFound")
    (await api.get("/apis/apps/v1/widgets")).status_obj(404, "NotFound")
    # a cluster-scoped resource under a namespace path does not exist either
    (await api.get(f"/api/v1/namespaces/{ns}/nodes")).status_obj(404, "NotFound")


async def test_create_existing_is_409_already_exists(api, ns):
    name = uniq("dup")
    (await api.post(f"/api/v1/namespaces/{ns}/configmaps", cm_body(name))).expect(201)
    st = (await api.post(f"/api/v1/namespaces/{ns}/configmaps", cm_body(name))).status_obj(409, "AlreadyExists")
    assert st["message"] == f'configmaps "{name}" already exists'
    assert st["details"]["name"] == name and st["details"]["kind"] == "configmaps"


async def test_update_with_stale_resource_version_is_409_conflict(api, ns):
    cm = await api.configmap(ns)
    name = cm["metadata"]["name"]
    url = f"/api/v1/namespaces/{ns}/configmaps/{name}"
    fresh = dict(cm, data={"a": "1"})
    (await api.put(url, fresh)).expect(200)
    stale = dict(cm, data={"a": "2"})  # still carries the first resourceVersion
    st = (await api.put(url, stale)).status_obj(409, "Conflict")
    assert st["message"] == (f'Operation cannot be fulfilled on configmaps "{name}": the object has been modified; '
                             "please apply your changes to the latest version and try again")
    assert st["details"]["name"] == name and st["details"]["kind"] == "configmaps"
    assert (await api.get(url)).expect(200)["data"] == {"a": "1"}


async def test_invalid_object_is_422_with_causes(api, ns):
    st = (await api.post(f"/api/v1/namespaces/{ns}/configmaps", cm_body("Bad_Name"))).status_obj(422, "Invalid")
    assert st["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')
    d = st["details"]
    assert d["name"] == "Bad_Name" and d["kind"] == "ConfigMap"
    fields = [c["field"] for c in d["causes"]]
    assert "metadata.name" in fields
    cause = d["causes"][fields.index("metadata.name")]
    assert cause["reason"] == "FieldValueInvalid" and cause["message"].startswith('Invalid value: "Bad_Name"')


async def test_invalid_spec_field_is_422_with_field_path(api, ns):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": uniq("bad")},
           "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    st = (await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", dep)).status_obj(422, "Invalid")
    assert st["details"]["kind"] == "Deployment" and st["details"]["group"] == "apps"
    assert "spec.replicas" in [c["field"] for c in st["details"]["causes"]]
    assert "must be greater than or equal to 0" in st["message"]


async def test_malformed_json_is_400(api, ns):
    r = await api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", data=b'{"apiVersion": "v1", "kind": ',
                          content_type="application/json")
    r.status_obj(400, "BadRequest")


async def test_unsupported_content_type_is_415(api, ns):
    r = await api.request("POST", f"/api/v1/namespaces/{ns}/configmaps", data=b"name=x",
                          content_type="text/plain")
    st = r.status_obj(415, "UnsupportedMediaType")
    assert "application/json" in st["message"]


async def test_unsupported_patch_type_is_415(api, ns):
    cm = await api.configmap(ns)
    r = await api.patch(f"/api/v1/namespaces/{ns}/configmaps/{cm['metadata']['name']}", {"data": {"x": "y"}},
                        content_type="application/json")
    r.status_obj(415, "UnsupportedMediaType")


async def test_post_on_object_url_is_405(api, ns):
    cm = await api.configmap(ns)
    r = await api.post(f"/api/v1/namespaces/{ns}/configmaps/{cm['metadata']['name']}", cm_body("x"))
    st = r.status_obj(405, "MethodNotAllowed")
    assert st["message"] == "the server does not allow this method on the requested resource"


async def test_namespace_mismatch_is_400(api, ns):
    other = await api.namespace()
    body = cm_body(uniq("mm"), namespace=other)
    st = (await api.post(f"/api/v1/namespaces/{ns}/configmaps", body)).status_obj(400, "BadRequest")
    assert st["message"] == "the namespace of the provided object does not match the namespace sent on the request"
    # nothing was created in either namespace
    for n in (ns, other):
        (await api.get(f"/api/v1/namespaces/{n}/configmaps/{body['metadata']['name']}")).expect(404)


async def test_name_mismatch_on_update_is_400(api, ns):
    cm = await api.configmap(ns)
    body = dict(cm, metadata=dict(cm["metadata"], name="other"))
    (await api.put(f"/api/v1/namespaces/{ns}/configmaps/{cm['metadata']['name']}", body)).status_obj(400, "BadRequest")


async def test_kind_mismatch_is_400(api, ns):
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": uniq("k")}}
    (await api.post(f"/api/v1/namespaces/{ns}/configmaps", body)).status_obj(400, "BadRequest")


async def test_create_in_missing_namespace_is_404_for_the_namespace(api):
    missing = uniq("gone")
    st = (await api.post(f"/api/v1/namespaces/{missing}/configmaps", cm_body("x"))).status_obj(404, "NotFound")
    assert st["message"] == f'namespaces "{missing}" not found'
    assert st["details"]["name"] == missing and st["details"]["kind"] == "namespaces"


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
async def test_delete_immortal_namespace_is_403(api, name):
    st = (await api.delete(f"/api/v1/namespaces/{name}")).status_obj(403, "Forbidden")
    assert st["message"] == f'namespaces "{name}" is forbidden: this namespace may not be deleted'
    ns = (await api.get(f"/api/v1/namespaces/{name}")).expect(200)
    assert "deletionTimestamp" not in ns["metadata"]
    assert ns["status"]["phase"] == "Active"


async def test_delete_precondition_uid_mismatch_is_409(api, ns):
    cm = await api.configmap(ns)
    name, uid = cm["metadata"]["name"], cm["metadata"]["uid"]
    url = f"/api/v1/namespaces/{ns}/configmaps/{name}"
    wrong = "00000000-0000-0000-0000-000000000000"
    st = (await api.delete(url, {"apiVersion": "v1", "kind": "DeleteOptions",
                                 "preconditions": {"uid": wrong}})).status_obj(409, "Conflict")
    assert st["message"] == (f'Operation cannot be fulfilled on configmaps "{name}": Precondition failed: '
                             f"UID in precondition: {wrong}, UID in object meta: {uid}")
    (await api.get(url)).expect(200)
    # the matching precondition deletes
    st = (await api.delete(url, {"apiVersion": "v1", "kind": "DeleteOptions",
                                 "preconditions": {"uid": uid}})).expect(200)
    assert st["kind"] == "Status" and st["status"] == "Success"
    assert st["details"]["name"] == name and st["details"]["uid"] == uid
    (await api.get(url)).expect(404)


async def test_delete_precondition_resource_version_mismatch_is_409(api, ns):
    cm = await api.configmap(ns)
    url = f"/api/v1/namespaces/{ns}/configmaps/{cm['metadata']['name']}"
    (await api.delete(url, {"preconditions": {"resourceVersion": "1"}})).status_obj(409, "Conflict")
    (await api.get(url)).expect(200)


async def test_delete_missing_is_404(api, ns):
    (await api.delete(f"/api/v1/namespaces/{ns}/configmaps/nope")).status_obj(404, "NotFound")


async def test_bad_continue_token_is_400(api, ns):
    r = await api.get(f"/api/v1/namespaces/{ns}/configmaps", params={"limit": "1", "continue": "not-a-token!"})
    r.status_obj(400, "BadRequest")


async def test_bad_label_selector_is_400(api, ns):
    r = await api.get(f"/api/v1/namespaces/{ns}/configmaps", params={"labelSelector": "a in (b"})
    r.status_obj(400, "BadRequest")
