"""AdmissionReview requests and responses, denials, patches and dry runs, without a network."""

from __future__ import annotations

import asyncio
import base64
import json
from types import SimpleNamespace

import pytest

from kybernetes.admission.webhooks import dispatch, review
from kybernetes.admission.webhooks.matching import GVRK, Attributes
from kybernetes.admission.webhooks.source import Hook
from kybernetes.apiserver.errors import APIError

PODS = GVRK("", "v1", "pods", "Pod")
CONFIGMAPS = GVRK("", "v1", "configmaps", "ConfigMap")


def attrs(**kw) -> Attributes:
    base = dict(operation="UPDATE", gvrk=PODS, subresource="status", namespace="ns", name="p",
                obj={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, old={"metadata": {"name": "p"}},
                user=SimpleNamespace(name="alice", groups=("dev",), uid="", extra={"scopes": ("a",)}),
                options={"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"})
    base.update(kw)
    return Attributes(**base)


def test_request_fields():
    body = review.build_request(attrs(), PODS, uid="u-1")
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    req = body["request"]
    assert req["uid"] == "u-1" and req["operation"] == "UPDATE"
    assert req["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert req["resource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert req["subResource"] == "status" and req["requestSubResource"] == "status"
    assert req["userInfo"] == {"username": "alice", "groups": ["dev"], "extra": {"scopes": ["a"]}}
    assert req["namespace"] == "ns" and req["name"] == "p" and req["dryRun"] is False
    assert req["object"]["kind"] == "Pod" and req["oldObject"] == {"metadata": {"name": "p"}}
    cluster = review.build_request(attrs(namespace="", subresource=""), PODS)["request"]
    assert "namespace" not in cluster and "subResource" not in cluster


def answer(**response) -> dict:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", **response}}


@pytest.mark.parametrize("body,mutating,message", [
    ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}, True, "webhook response was absent"),
    (answer() | {"response": {"uid": "other"}}, True, 'expected response.uid="u", got "other"'),
    (answer(allowed=True, patch="W10="), True, "webhook returned response.patch but not response.patchType"),
    (answer(allowed=True, patchType="JSONPatch", patch="W10="), False,
     "validating webhooks may not return response.patch or response.patchType"),
    (answer(allowed=True, patchType="MergePatch", patch="e30="), True,
     'webhook returned invalid response.patchType of "MergePatch"'),
    ({"apiVersion": "v1", "kind": "Status"}, True,
     "expected webhook response of AdmissionReview.admission.k8s.io, got Status"),
])
def test_unusable_responses(body, mutating, message):
    with pytest.raises(review.InvalidResponse) as e:
        review.parse_response(body, "u", mutating=mutating)
    assert str(e.value) == message


def test_usable_response():
    r = review.parse_response(answer(allowed=True, patchType="JSONPatch", patch=base64.b64encode(b"[]").decode(),
                                     warnings=["w"], auditAnnotations={"k": "v"}), "u", mutating=True)
    assert r.allowed and r.patch == b"[]" and r.warnings == ["w"] and r.audit_annotations == {"k": "v"}


@pytest.mark.parametrize("status,code,reason,message", [
    ({"code": 403, "reason": "Forbidden", "message": "no"}, 403, "Forbidden", 'admission webhook "h.x.y" denied the request: no'),
    ({"message": "no"}, 400, "", 'admission webhook "h.x.y" denied the request: no'),
    ({"code": 200, "reason": "Because"}, 400, "Because", 'admission webhook "h.x.y" denied the request: Because'),
    ({}, 400, "", 'admission webhook "h.x.y" denied the request without explanation'),
])
def test_denials(status, code, reason, message):
    e = dispatch.denied("h.x.y", status)
    assert (e.code, e.reason, e.message) == (code, reason, message)


def _resp(ops) -> review.Response:
    return review.Response(True, patch=json.dumps(ops).encode(), patch_type="JSONPatch")


HOOK = Hook("cfg", 0, {"name": "m.x.y"})


def test_patch_applied_in_place_and_unknown_fields_dropped():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    same = obj
    changed = dispatch.WebhookAdmission._apply_patch(HOOK, _resp([
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
        {"op": "add", "path": "/bogus", "value": 1}]), attrs(gvrk=CONFIGMAPS), obj)
    assert changed and same["metadata"]["labels"] == {"x": "y"} and "bogus" not in same
    assert not dispatch.WebhookAdmission._apply_patch(HOOK, _resp([{"op": "test", "path": "/data/a", "value": "1"}]),
                                                      attrs(gvrk=CONFIGMAPS), obj)


@pytest.mark.parametrize("ops,message", [
    ({"not": "a list"}, "Internal error occurred: json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
    ([{"op": "remove", "path": "/metadata/labels/none"}], "Internal error occurred: Unable to remove nonexistent key"),
])
def test_bad_patches_are_internal_errors_and_leave_the_object(ops, message):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {}}}
    with pytest.raises(APIError) as e:
        dispatch.WebhookAdmission._apply_patch(HOOK, _resp(ops), attrs(), obj)
    assert e.value.code == 500 and e.value.reason == "InternalError" and e.value.message.startswith(message)
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {}}}


def test_patch_on_delete_is_refused():
    with pytest.raises(APIError) as e:
        dispatch.WebhookAdmission._apply_patch(HOOK, _resp([{"op": "add", "path": "/x", "value": 1}]), attrs(), None)
    assert e.value.message == ('Internal error occurred: admission webhook "m.x.y" attempted to modify the object, '
                               'which is not supported for this operation')


@pytest.mark.parametrize("side_effects", ["Some", "Unknown"])
def test_dry_run_refused_by_webhooks_with_side_effects(side_effects):
    plugin = dispatch.WebhookAdmission.__new__(dispatch.WebhookAdmission)
    hook = Hook("cfg", 0, {"name": "side.x.y", "sideEffects": side_effects, "clientConfig": {"url": "https://127.0.0.1:1/"}})
    with pytest.raises(APIError) as e:
        asyncio.run(plugin._call(hook, attrs(dry_run=True), PODS, None, mutating=False))
    assert (e.value.code, e.value.reason, e.value.message) == (
        400, "BadRequest", 'admission webhook "side.x.y" does not support dry run')


def test_match_conditions():
    from kybernetes.admission import cel

    act = {"object": {"metadata": {"name": "a"}}, "oldObject": None, "request": {"operation": "CREATE"}}
    assert cel.match_conditions([{"expression": "request.operation == 'CREATE'"}], act) == (True, [])
    # a false condition decides, even next to one that errors
    assert cel.match_conditions([{"expression": "object.nope"}, {"expression": "oldObject != null"}], act) == (False, [])
    ok, errs = cel.match_conditions([{"expression": "object.nope"}], act)
    assert not ok and errs == ["expression 'object.nope' resulted in error: no such key: nope"]
    ok, errs = cel.match_conditions([{"expression": "object.metadata.name"}], act)
    assert errs == ["expression 'object.metadata.name' resulted in error: expected boolean result, got str"]
    assert cel.compile_error("object.(").startswith("compilation failed: ERROR: <input>:1:8: Syntax error")
    assert cel.compile_error("foo == 1", ("object",)) == \
        "compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')"
    assert cel.compile_error("object.x == 1", ("object",)) is None


def _request(strategy, *, namespace="", name="", subresource="", query=""):
    from multidict import MultiDict

    class Http(dict):
        pass

    http = Http(user=SimpleNamespace(name="bob", groups=(), uid="", extra={}))
    http.query = MultiDict([kv.split("=", 1) for kv in query.split("&") if kv])
    info = SimpleNamespace(namespace=namespace, name=name, subresource=subresource)
    return SimpleNamespace(http=http, info=info, strategy=strategy, warnings=[],
                           dry_run="All" in http.query.getall("dryRun", []))


def test_attributes_of_rest_requests():
    from kybernetes.api.catalog import default_catalog

    cat = default_catalog()
    pods, namespaces, nodes = (cat.lookup("", "v1", r) for r in ("pods", "namespaces", "nodes"))
    pod = {"metadata": {"name": "p", "namespace": "team"}}
    a = dispatch.attributes("UPDATE", _request(pods, namespace="team", name="p", subresource="status",
                                               query="dryRun=All&fieldManager=me"), pod, pod)
    assert (a.gvrk, a.subresource, a.namespace, a.name, a.dry_run) == (
        GVRK("", "v1", "pods", "Pod"), "status", "team", "p", True)
    assert a.options == {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "dryRun": ["All"],
                         "fieldManager": "me"}
    assert a.user.name == "bob"
    # a Namespace's own name is its request namespace; cluster-scoped objects have none
    ns = {"metadata": {"name": "team"}}
    assert dispatch.attributes("CREATE", _request(namespaces), ns, None).namespace == "team"
    node = {"metadata": {"name": "n1"}}
    assert dispatch.attributes("CREATE", _request(nodes), node, None).namespace == ""
    d = dispatch.attributes("DELETE", _request(pods, namespace="team", name="p", query="gracePeriodSeconds=0"),
                            None, pod)
    assert d.obj is None and d.old is pod and d.options == {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1",
                                                           "gracePeriodSeconds": 0}


def test_review_versions():
    assert review.review_version(["v2", "v1beta1", "v1"]) == "v1beta1"
    assert review.review_version(["v2"]) is None
    beta = {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
            "response": {"allowed": True, "patch": base64.b64encode(b"[]").decode()}}
    r = review.parse_response(beta, "u", mutating=True, version="v1beta1")  # no uid, no patchType needed
    assert r.allowed and r.patch_type == "JSONPatch"
    with pytest.raises(review.InvalidResponse):
        review.parse_response(beta, "u", mutating=True, version="v1")


def test_unknown_review_versions_are_a_call_failure():
    plugin = dispatch.WebhookAdmission.__new__(dispatch.WebhookAdmission)
    hook = Hook("cfg", 0, {"name": "v.x.y", "sideEffects": "None", "admissionReviewVersions": ["v9"],
                           "clientConfig": {"url": "https://127.0.0.1:1/"}})
    with pytest.raises(dispatch.CallFailure) as e:
        asyncio.run(plugin._call(hook, attrs(), PODS, None, mutating=False))
    assert str(e.value) == ('failed calling webhook "v.x.y": could not create admission objects: webhook does not '
                            'accept known AdmissionReview versions')
