"""ValidatingAdmissionPolicy end to end: policies in CEL, bindings with Deny / Warn / Audit,
params, through kubectl and the official client.  Every policy is scoped to the test's own
namespace by a namespaceSelector."""

from __future__ import annotations

import json
import secrets

import pytest
from admission_e2e import deleted_after, labelled_namespace, refused, until
from kubernetes import client

GROUP = "admissionregistration.k8s.io"


@pytest.fixture
def ns(api):
    with labelled_namespace(api, "vap", "vap-test") as name:
        yield name


@pytest.fixture
def made(api):
    """Create policies and bindings (dicts); delete them after the test."""
    adm = client.AdmissionregistrationV1Api(api)
    with deleted_after() as later:
        def policy(name: str, spec: dict) -> None:
            adm.create_validating_admission_policy({"metadata": {"name": name}, "spec": spec})
            later(lambda: adm.delete_validating_admission_policy(name))

        def binding(name: str, spec: dict) -> None:
            adm.create_validating_admission_policy_binding({"metadata": {"name": name}, "spec": spec})
            later(lambda: adm.delete_validating_admission_policy_binding(name))

        yield policy, binding


def constraints(ns: str) -> dict:
    return {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                               "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"vap-test": ns}}}


def cm(name: str, data: dict) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)


def test_deny_with_messages_reasons_and_codes(api, kyb, ns, made):
    policy, binding = made
    policy(f"limits-{ns}", {
        "matchConstraints": constraints(ns),
        "variables": [{"name": "keys", "expression": "has(object.data) ? size(object.data) : 0"}],
        "validations": [
            {"expression": "variables.keys <= 2", "message": "at most two keys"},
            {"expression": "object.metadata.name != 'reserved'", "reason": "Forbidden",
             "messageExpression": "'the name ' + object.metadata.name + ' is reserved'"},
            {"expression": "!has(object.data) || !('x' in object.data) || object.data.x != 'bad'"},
        ]})
    binding(f"limits-{ns}", {"policyName": f"limits-{ns}", "validationActions": ["Deny"]})
    core = client.CoreV1Api(api)
    e = until(lambda: refused(lambda: core.create_namespaced_config_map(ns, cm("many", {"a": "1", "b": "2", "c": "3"}),
                                                                          dry_run="All")), "the policy to take effect")
    status = json.loads(e.body)
    assert e.status == 422 and status["reason"] == "Invalid"
    assert status["message"] == (f'configmaps "many" is forbidden: ValidatingAdmissionPolicy \'limits-{ns}\' with '
                                 f"binding 'limits-{ns}' denied request: at most two keys")
    e = refused(lambda: core.create_namespaced_config_map(ns, cm("reserved", {})))
    assert e.status == 403 and json.loads(e.body)["reason"] == "Forbidden"
    assert json.loads(e.body)["message"].endswith("denied request: the name reserved is reserved")
    p = kyb.kubectl("create", "configmap", "xbad", "-n", ns, "--from-literal=x=bad", check=False)
    assert p.returncode != 0 and p.stderr.strip() == (
        f'error: failed to create configmap: configmaps "xbad" is forbidden: ValidatingAdmissionPolicy '
        f"'limits-{ns}' with binding 'limits-{ns}' denied request: failed expression: "
        "!has(object.data) || !('x' in object.data) || object.data.x != 'bad'")
    for name in ("many", "reserved", "xbad"):
        assert refused(lambda: core.read_namespaced_config_map(name, ns)).status == 404
    # within the limits: written; an update past them is refused and changes nothing
    core.create_namespaced_config_map(ns, cm("ok", {"a": "1"}))
    e = refused(lambda: core.patch_namespaced_config_map("ok", ns, {"data": {"b": "2", "c": "3"}}))
    assert e.status == 422 and core.read_namespaced_config_map("ok", ns).data == {"a": "1"}


def test_warn_and_audit_actions(api, kyb, ns, made):
    policy, binding = made
    policy(f"warn-{ns}", {"matchConstraints": constraints(ns),
                          "validations": [{"expression": "object.metadata.name.startsWith('app-')",
                                           "message": "names should start with app-"}]})
    binding(f"warn-{ns}", {"policyName": f"warn-{ns}", "validationActions": ["Warn", "Audit"]})
    core = client.CoreV1Api(api)

    def warned():
        p = kyb.kubectl("create", "configmap", f"probe-{secrets.token_hex(2)}", "-n", ns, "--dry-run=server")
        return "Warning:" in p.stderr and p.stderr

    stderr = until(warned, "the policy to take effect")
    assert (f"Warning: Validation failed for ValidatingAdmissionPolicy 'warn-{ns}' with binding 'warn-{ns}': "
            "names should start with app-") in stderr
    kyb.kubectl("create", "configmap", "free", "-n", ns)  # warned, not denied
    assert core.read_namespaced_config_map("free", ns).metadata.name == "free"


def test_params_from_a_configmap(api, kyb, ns, made):
    policy, binding = made
    core = client.CoreV1Api(api)
    policy(f"params-{ns}", {
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "matchConstraints": {**constraints(ns), "resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["secrets"]}]},
        "validations": [{"expression": "size(object.data) <= int(params.data.maxKeys)",
                         "messageExpression": "'at most ' + params.data.maxKeys + ' keys'"}]})
    binding(f"params-{ns}", {"policyName": f"params-{ns}", "validationActions": ["Deny"],
                             "paramRef": {"name": "secret-limits", "namespace": ns}})
    sec = client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"a": "1", "b": "2"})
    # no params object yet: parameterNotFoundAction defaults to Deny
    e = until(lambda: refused(lambda: core.create_namespaced_secret(ns, sec, dry_run="All")), "the policy to take effect")
    assert json.loads(e.body)["message"].endswith(
        "denied request: failed to configure binding: no params found for policy binding with `Deny` "
        "parameterNotFoundAction")
    core.create_namespaced_config_map(ns, cm("secret-limits", {"maxKeys": "1"}))
    e = refused(lambda: core.create_namespaced_secret(ns, sec))
    assert e.status == 422 and json.loads(e.body)["message"].endswith("denied request: at most 1 keys")
    core.patch_namespaced_config_map("secret-limits", ns, {"data": {"maxKeys": "2"}})
    core.create_namespaced_secret(ns, sec)
    table = kyb.kubectl("get", "validatingadmissionpolicies", f"params-{ns}").stdout.splitlines()
    assert table[0].split() == ["NAME", "VALIDATIONS", "PARAMKIND", "AGE"]
    assert table[1].split()[:3] == [f"params-{ns}", "1", "v1/ConfigMap"]
    table = kyb.kubectl("get", "validatingadmissionpolicybindings", f"params-{ns}").stdout.splitlines()
    assert table[0].split() == ["NAME", "POLICYNAME", "PARAMREF", "AGE"]
    assert table[1].split()[:3] == [f"params-{ns}", f"params-{ns}", f"{ns}/secret-limits"]


def test_invalid_policies_and_bindings_are_refused(api, kyb):
    adm = client.AdmissionregistrationV1Api(api)
    e = refused(lambda: adm.create_validating_admission_policy({"metadata": {"name": "bad"}, "spec": {
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                                "resources": ["pods"]}]},
        "validations": [{"expression": "object.(", "reason": "Teapot"}]}}))
    causes = {c["field"]: c["message"] for c in json.loads(e.body)["details"]["causes"]}
    assert e.status == 422
    assert causes["spec.validations[0].expression"].startswith('Invalid value: "object.(": compilation failed: ')
    assert causes["spec.validations[0].reason"] == ('Unsupported value: "Teapot": supported values: "Forbidden", '
                                                    '"Invalid", "RequestEntityTooLarge", "Unauthorized"')
    e = refused(lambda: adm.create_validating_admission_policy_binding({"metadata": {"name": "bad"}, "spec": {
        "policyName": "p", "validationActions": ["Deny", "Warn"]}}))
    assert e.status == 422 and "must not contain both Deny and Warn" in json.loads(e.body)["message"]
    p = kyb.kubectl("create", "--validate=false", "-f", "-", check=False, input=json.dumps(
        {"apiVersion": f"{GROUP}/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "bad"},
         "spec": {"policyName": "p", "validationActions": []}}))
    assert p.returncode != 0 and \
        "spec.validationActions: Required value: at least one validation action is required" in p.stderr
