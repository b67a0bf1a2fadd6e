"""The ValidatingAdmissionPolicy plugin over a real SQLite-backed store: bindings, params by
name and by selector, parameterNotFoundAction, namespaceObject, Deny/Warn."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from multidict import MultiDict

from admission_helpers import put
from kybernetes.admission import lookup
from kybernetes.admission.policy import ValidatingAdmissionPolicy
from kybernetes.apiserver.errors import APIError

ADM = ("admissionregistration.k8s.io", "v1")
RULE = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["secrets"], "scope": "*"}


def request(ns: str = "ns1"):
    http = {"user": SimpleNamespace(name="u", groups=(), uid="", extra={})}
    http_obj = type("Http", (dict,), {})(http)
    http_obj.query = MultiDict()
    return SimpleNamespace(strategy=lookup.strategy("", "v1", "secrets"), http=http_obj, warnings=[], dry_run=False,
                           info=SimpleNamespace(namespace=ns, name="s", subresource=""))


def secret(keys: int) -> dict:
    return {"metadata": {"name": "s", "namespace": "ns1"}, "data": {f"k{i}": "dg==" for i in range(keys)}}


async def setup(objects, *, param_ref: dict, validations: list[dict], actions=("Deny",), param_kind=True):
    spec = {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [RULE], "namespaceSelector": {},
                                                          "objectSelector": {}, "matchPolicy": "Equivalent"},
            "validations": validations}
    if param_kind:
        spec["paramKind"] = {"apiVersion": "v1", "kind": "ConfigMap"}
    await put(objects, *ADM, "validatingadmissionpolicies", {"metadata": {"name": "p"}, "spec": spec})
    bspec = {"policyName": "p", "validationActions": list(actions)}
    if param_ref is not None:
        bspec["paramRef"] = param_ref
    await put(objects, *ADM, "validatingadmissionpolicybindings", {"metadata": {"name": "b"}, "spec": bspec})
    await put(objects, "", "v1", "namespaces", {"metadata": {"name": "ns1", "labels": {"tier": "gold"}}})


@pytest.mark.asyncio
async def test_params_by_name_and_not_found_actions(objects):
    await setup(objects, param_ref={"name": "limits", "parameterNotFoundAction": "Deny"},
                validations=[{"expression": "size(object.data) <= int(params.data.max)", "message": "too many"}])
    plugin = ValidatingAdmissionPolicy(objects)
    with pytest.raises(APIError) as e:
        await plugin.validate("CREATE", request(), secret(1), None)
    assert e.value.message.endswith("failed to configure binding: no params found for policy binding with `Deny` "
                                    "parameterNotFoundAction")
    # the param is looked up in the request's namespace when paramRef names none
    await put(objects, "", "v1", "configmaps", {"metadata": {"name": "limits", "namespace": "ns1"},
                                                "data": {"max": "1"}})
    await plugin.validate("CREATE", request(), secret(1), None)
    with pytest.raises(APIError) as e:
        await plugin.validate("CREATE", request(), secret(2), None)
    assert (e.value.code, e.value.reason) == (422, "Invalid")
    assert e.value.message == ("secrets \"s\" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied "
                               "request: too many")


@pytest.mark.asyncio
async def test_params_by_selector_each_must_pass_and_allow_when_none(objects):
    await setup(objects, param_ref={"selector": {"matchLabels": {"limit": "yes"}}, "parameterNotFoundAction": "Allow"},
                validations=[{"expression": "size(object.data) <= int(params.data.max)",
                              "messageExpression": "'limit ' + params.metadata.name"}])
    plugin = ValidatingAdmissionPolicy(objects)
    await plugin.validate("CREATE", request(), secret(5), None)  # no params, Allow: not evaluated
    for name, mx in (("a", "3"), ("b", "1")):
        await put(objects, "", "v1", "configmaps", {"metadata": {"name": name, "namespace": "ns1",
                                                                 "labels": {"limit": "yes"}}, "data": {"max": mx}})
    await put(objects, "", "v1", "configmaps", {"metadata": {"name": "c", "namespace": "ns1"}, "data": {"max": "0"}})
    with pytest.raises(APIError) as e:
        await plugin.validate("CREATE", request(), secret(2), None)
    assert e.value.message.endswith("denied request: limit b")


@pytest.mark.asyncio
async def test_namespace_object_and_warn(objects):
    await setup(objects, param_ref=None, param_kind=False, actions=("Warn",),
                validations=[{"expression": "namespaceObject.metadata.labels.tier == 'silver'",
                              "message": "silver namespaces only"}])
    r = request()
    await ValidatingAdmissionPolicy(objects).validate("CREATE", r, secret(1), None)
    assert r.warnings == ["Validation failed for ValidatingAdmissionPolicy 'p' with binding 'b': silver namespaces only"]
