"""ValidatingAdmissionPolicy without a server: match resources, evaluation, messages."""

from __future__ import annotations

import asyncio

from kybernetes.admission.policy import evaluate, matching
from kybernetes.admission.policy.plugin import denied
from kybernetes.admission.webhooks.matching import GVRK, Attributes

CM = GVRK("", "v1", "configmaps", "ConfigMap")


def attrs(name="c", op="CREATE", obj=None) -> Attributes:
    return Attributes(op, CM, "", "default", name, obj or {"metadata": {"name": name}}, None)


async def _labels(ns):
    return {"team": "a"}


def rules(**kw) -> dict:
    r = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}
    r.update(kw)
    return r


def test_match_resources():
    run = asyncio.run
    assert run(matching.matches({"resourceRules": [rules()]}, attrs(), _labels))
    assert not run(matching.matches({"resourceRules": [rules(operations=["UPDATE"])]}, attrs(), _labels))
    assert run(matching.matches({"resourceRules": [rules(resourceNames=["c"])]}, attrs(), _labels))
    assert not run(matching.matches({"resourceRules": [rules(resourceNames=["d"])]}, attrs(), _labels))
    assert not run(matching.matches({"resourceRules": [rules()], "excludeResourceRules": [rules(resourceNames=["c"])]},
                                    attrs(), _labels))
    assert run(matching.matches({}, attrs(), _labels))  # a binding without rules narrows nothing
    assert not run(matching.matches({"namespaceSelector": {"matchLabels": {"team": "b"}}}, attrs(), _labels))
    assert not run(matching.matches({"objectSelector": {"matchLabels": {"x": "y"}}}, attrs(), _labels))


def policy(**spec) -> dict:
    return {"metadata": {"name": "p"}, "spec": {"failurePolicy": "Fail", **spec}}


ACT = {"object": {"metadata": {"name": "c"}, "data": {"a": "1"}}, "oldObject": None, "request": {}, "params": None,
       "namespaceObject": None}


def test_validations_messages_and_reasons():
    r = evaluate.evaluate(policy(validations=[
        {"expression": "size(object.data) > 1", "message": "need two"},
        {"expression": "object.metadata.name == 'x'", "messageExpression": "'not ' + object.metadata.name",
         "reason": "Forbidden"},
        {"expression": "false", "messageExpression": "1"},  # not a string: falls back
        {"expression": " true && false "},
        {"expression": "true"},
    ]), ACT)
    assert [(d.message, d.reason, d.expression_index) for d in r.denials] == [
        ("need two", "Invalid", 0), ("not c", "Forbidden", 1), ("failed expression: false", "Invalid", 2),
        ("failed expression: true && false", "Invalid", 3)]


def test_errors_follow_failure_policy():
    p = policy(validations=[{"expression": "object.spec.replicas > 1"}])
    assert [d.message for d in evaluate.evaluate(p, ACT).denials] == [
        "expression 'object.spec.replicas > 1' resulted in error: no such key: spec"]
    p["spec"]["failurePolicy"] = "Ignore"
    assert evaluate.evaluate(p, ACT).denials == []


def test_variables_match_conditions_and_audit_annotations():
    p = policy(variables=[{"name": "n", "expression": "size(object.data)"}],
               matchConditions=[{"name": "big", "expression": "variables.n > 5"}],
               validations=[{"expression": "false"}])
    assert evaluate.evaluate(p, ACT).denials == []  # the condition leaves the request out
    p["spec"]["matchConditions"][0]["expression"] = "variables.n == 1"
    assert len(evaluate.evaluate(p, ACT).denials) == 1
    p = policy(auditAnnotations=[{"key": "size", "valueExpression": "string(size(object.data))"}])
    assert evaluate.evaluate(p, ACT).audit_annotations == {"p/size": "1"}


def test_denial_error():
    e = denied(attrs("c"), "p", "b", evaluate.Decision("nope", "Forbidden"))
    assert (e.code, e.reason) == (403, "Forbidden")
    assert e.message == "configmaps \"c\" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: nope"
    assert e.details["causes"] == [{"message": e.message.split(" is forbidden: ", 1)[1]}]
    assert denied(attrs(), "p", "b", evaluate.Decision("x")).code == 422
