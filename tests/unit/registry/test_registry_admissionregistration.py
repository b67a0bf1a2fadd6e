"""Webhook configurations: defaults and validation with upstream's field paths."""

from __future__ import annotations

import copy

import pytest

from kybernetes.registry.admissionregistration.mutatingwebhookconfigurations import (
    MutatingWebhookConfigurationStrategy,
)
from kybernetes.registry.admissionregistration.validatingwebhookconfigurations import (
    ValidatingWebhookConfigurationStrategy,
)

MUT, VAL = MutatingWebhookConfigurationStrategy(), ValidatingWebhookConfigurationStrategy()


def webhook(**kw) -> dict:
    h = {"name": "a.kyb.test", "sideEffects": "None", "admissionReviewVersions": ["v1"],
         "clientConfig": {"url": "https://127.0.0.1:8443/hook"},
         "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}
    h.update(kw)
    return h


def config(*hooks) -> dict:
    return {"metadata": {"name": "c"}, "webhooks": list(hooks)}


def causes(s, obj, old=None) -> set[tuple[str, str]]:
    s.default(obj)
    out = s.validate(obj) if old is None else s.validate_update(obj, old)
    return {(c.field, c.message) for c in out}


def test_defaults():
    obj = config(webhook(clientConfig={"service": {"namespace": "ns", "name": "svc"}}))
    MUT.default(obj)
    h = obj["webhooks"][0]
    assert h["failurePolicy"] == "Fail" and h["matchPolicy"] == "Equivalent" and h["timeoutSeconds"] == 10
    assert h["namespaceSelector"] == {} and h["objectSelector"] == {} and h["reinvocationPolicy"] == "Never"
    assert h["rules"][0]["scope"] == "*" and h["clientConfig"]["service"]["port"] == 443
    obj = config(webhook())
    VAL.default(obj)
    assert "reinvocationPolicy" not in obj["webhooks"][0]


def test_valid_configurations_pass():
    assert causes(MUT, config(webhook(), webhook(name="b.kyb.test", reinvocationPolicy="IfNeeded"))) == set()
    assert causes(VAL, config(webhook(clientConfig={"service": {"namespace": "n", "name": "s", "path": "/a/b"}}))) == set()


@pytest.mark.parametrize("hook,field,message", [
    (webhook(name="ab.c"), "webhooks[0].name",
     'Invalid value: "ab.c": should be a domain with at least three segments separated by dots'),
    (webhook(name=""), "webhooks[0].name", "Required value"),
    (webhook(failurePolicy="Maybe"), "webhooks[0].failurePolicy",
     'Unsupported value: "Maybe": supported values: "Fail", "Ignore"'),
    (webhook(matchPolicy="Loose"), "webhooks[0].matchPolicy",
     'Unsupported value: "Loose": supported values: "Equivalent", "Exact"'),
    (webhook(sideEffects="Unknown"), "webhooks[0].sideEffects",
     'Unsupported value: "Unknown": supported values: "None", "NoneOnDryRun"'),
    (webhook(timeoutSeconds=0), "webhooks[0].timeoutSeconds",
     "Invalid value: 0: the timeout value must be between 1 and 30 seconds"),
    (webhook(clientConfig={}), "webhooks[0].clientConfig", "Required value: exactly one of url or service is required"),
    (webhook(clientConfig={"url": "https://a.b/c", "service": {"namespace": "n", "name": "s"}}),
     "webhooks[0].clientConfig", "Required value: exactly one of url or service is required"),
    (webhook(clientConfig={"url": "https://u:p@a.b/c"}), "webhooks[0].clientConfig.url",
     'Invalid value: "u:p": user information is not permitted in the URL'),
    (webhook(clientConfig={"url": "https://a.b/c#frag"}), "webhooks[0].clientConfig.url",
     'Invalid value: "frag": fragments are not permitted in the URL'),
    (webhook(clientConfig={"service": {"name": "s"}}), "webhooks[0].clientConfig.service.namespace",
     "Required value: service namespace is required"),
    (webhook(clientConfig={"service": {"namespace": "n", "name": "s", "port": 70000}}),
     "webhooks[0].clientConfig.service.port",
     "Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive"),
    (webhook(clientConfig={"service": {"namespace": "n", "name": "s", "path": "a"}}),
     "webhooks[0].clientConfig.service.path", "Invalid value: \"a\": must start with a '/'"),
    (webhook(clientConfig={"service": {"namespace": "n", "name": "s", "path": "/a//b"}}),
     "webhooks[0].clientConfig.service.path", 'Invalid value: "/a//b": segment[1] may not be empty'),
    (webhook(admissionReviewVersions=["v1", "v1"]), "webhooks[0].admissionReviewVersions[1]",
     'Invalid value: "v1": duplicate version'),
    (webhook(admissionReviewVersions=["v2"]), "webhooks[0].admissionReviewVersions",
     'Invalid value: []string{"v2"}: must include at least one of v1, v1beta1'),
    (webhook(rules=[{"operations": ["PATCH"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]),
     "webhooks[0].rules[0].operations[0]",
     'Unsupported value: "PATCH": supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"'),
    (webhook(rules=[{"operations": ["*"], "apiGroups": ["*", "apps"], "apiVersions": ["v1"], "resources": ["pods"]}]),
     "webhooks[0].rules[0].apiGroups", 'Invalid value: []string{"*", "apps"}: if \'*\' is present, must not specify other API groups'),
    (webhook(rules=[{"operations": ["*"], "apiGroups": [""], "apiVersions": [], "resources": ["pods"]}]),
     "webhooks[0].rules[0].apiVersions", "Required value"),
    (webhook(rules=[{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/*", "pods/status"]}]),
     "webhooks[0].rules[0].resources[1]", 'Invalid value: "pods/status": if \'pods/*\' is present, must not specify pods/status'),
    (webhook(rules=[{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*/x", "pods/x"]}]),
     "webhooks[0].rules[0].resources[1]", 'Invalid value: "pods/x": if \'*/x\' is present, must not specify pods/x'),
    (webhook(rules=[{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Global"}]),
     "webhooks[0].rules[0].scope", 'Unsupported value: "Global": supported values: "*", "Cluster", "Namespaced"'),
    (webhook(objectSelector={"matchExpressions": [{"key": "a", "operator": "In"}]}),
     "webhooks[0].objectSelector.matchExpressions[0].values",
     "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    (webhook(matchConditions=[{"name": "c", "expression": "true"}, {"name": "c", "expression": "true"}]),
     "webhooks[0].matchConditions[1].name", 'Duplicate value: "c"'),
])
def test_invalid(hook, field, message):
    assert (field, message) in causes(MUT, config(hook))


def test_reinvocation_policy_is_mutating_only():
    assert ("webhooks[0].reinvocationPolicy", 'Unsupported value: "Always": supported values: "IfNeeded", "Never"') \
        in causes(MUT, config(webhook(reinvocationPolicy="Always")))


def test_unique_names_required_on_create_and_on_updates_of_unique_objects():
    dup = config(webhook(), webhook())
    assert ("webhooks[1].name", 'Duplicate value: "a.kyb.test"') in causes(VAL, copy.deepcopy(dup))
    # an old object that already had duplicates (stored before the rule) may keep them
    assert causes(VAL, copy.deepcopy(dup), old=copy.deepcopy(dup)) == set()
    assert ("webhooks[1].name", 'Duplicate value: "a.kyb.test"') in causes(VAL, copy.deepcopy(dup), old=config(webhook()))


def test_generation_moves_with_webhooks_and_table_row():
    old = config(webhook())
    new = config(webhook(timeoutSeconds=5))
    assert MUT.generation_changes(new, old) and not MUT.generation_changes(copy.deepcopy(old), old)
    assert [c.name for c in VAL.columns] == ["Name", "Webhooks", "Age"]
    assert VAL.row(config(webhook(), webhook(name="b.kyb.test")))[:2] == ["c", 2]


# ---------------------------------------------------------------------- policies and bindings
from kybernetes.registry.admissionregistration.validatingadmissionpolicies import (  # noqa: E402
    ValidatingAdmissionPolicyStrategy,
)
from kybernetes.registry.admissionregistration.validatingadmissionpolicybindings import (  # noqa: E402
    ValidatingAdmissionPolicyBindingStrategy,
)

VAP, VAPB = ValidatingAdmissionPolicyStrategy(), ValidatingAdmissionPolicyBindingStrategy()
RULE = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}


def test_policy_defaults_and_validation():
    obj = {"metadata": {"name": "p"}, "spec": {"matchConstraints": {"resourceRules": [dict(RULE)]},
                                               "validations": [{"expression": "true"}]}}
    assert causes(VAP, obj) == set()
    mc = obj["spec"]["matchConstraints"]
    assert obj["spec"]["failurePolicy"] == "Fail" and mc["matchPolicy"] == "Equivalent"
    assert mc["namespaceSelector"] == {} and mc["objectSelector"] == {} and mc["resourceRules"][0]["scope"] == "*"
    bad = {"metadata": {"name": "p"}, "spec": {"paramKind": {"kind": "ConfigMap"},
                                               "variables": [{"name": "1x", "expression": "true"}]}}
    got = causes(VAP, bad)
    assert ("spec.matchConstraints", "Required value") in got
    assert ("spec.paramKind.apiVersion", "Required value") in got
    assert ("spec.validations", "Required value: validations or auditAnnotations must contain at least one item") in got
    assert ("spec.variables[0].name", 'Invalid value: "1x": name is not a valid CEL identifier') in got
    msg = {"metadata": {"name": "p"}, "spec": {"matchConstraints": {"resourceRules": [dict(RULE)]},
                                               "validations": [{"expression": "true", "message": "a\nb"}]}}
    assert ("spec.validations[0].message", 'Invalid value: "a\\nb": message must not contain line breaks') \
        in causes(VAP, msg)


def test_binding_defaults_and_validation():
    obj = {"metadata": {"name": "b"}, "spec": {"policyName": "p", "validationActions": ["Deny"],
                                               "paramRef": {"name": "x"}}}
    assert causes(VAPB, obj) == set() and obj["spec"]["paramRef"]["parameterNotFoundAction"] == "Deny"
    got = causes(VAPB, {"metadata": {"name": "b"}, "spec": {"validationActions": ["Deny", "Deny", "Log"],
                                                            "paramRef": {}}})
    assert ("spec.policyName", "Required value") in got
    assert ("spec.validationActions[1]", 'Duplicate value: "Deny"') in got
    assert ("spec.validationActions[2]", 'Unsupported value: "Log": supported values: "Audit", "Deny", "Warn"') in got
    assert ("spec.paramRef", "Required value: one of name or selector must be specified") in got
    assert VAPB.row({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": {"name": "x"}}})[:3] == \
        ["b", "p", "*/x"]
