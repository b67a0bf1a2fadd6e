"""Which webhooks a request calls: rules, scope, subresources, matchPolicy, selectors."""

from __future__ import annotations

import asyncio

import pytest

from kybernetes.admission.webhooks.matching import (
    GVRK,
    Attributes,
    is_exempt,
    match_rules,
    namespace_selector_matches,
    object_selector_matches,
    rule_matches,
    should_call,
)
from kybernetes.apiserver.errors import APIError

PODS = GVRK("", "v1", "pods", "Pod")
NAMESPACES = GVRK("", "v1", "namespaces", "Namespace")
NODES = GVRK("", "v1", "nodes", "Node")
DEPLOY_V1 = GVRK("apps", "v1", "deployments", "Deployment")
DEPLOY_V2 = GVRK("apps", "v2", "deployments", "Deployment")


def attrs(gvrk=PODS, op="CREATE", sub="", ns="default", obj=None, old=None, equivalents=()) -> Attributes:
    return Attributes(op, gvrk, sub, ns, "x", obj, old, equivalents=equivalents)


def rule(resources=("pods",), groups=("",), versions=("v1",), ops=("CREATE",), scope="*") -> dict:
    return {"operations": list(ops), "apiGroups": list(groups), "apiVersions": list(versions),
            "resources": list(resources), "scope": scope}


@pytest.mark.parametrize("resources,sub,expected", [
    (["pods"], "", True),
    (["pods"], "status", False),
    (["pods/status"], "status", True),
    (["pods/status"], "", False),
    (["pods/*"], "status", True),
    (["pods/*"], "", True),  # as upstream: a "*" subresource also matches the main resource
    (["*"], "", True),
    (["*"], "status", False),
    (["*/status"], "status", True),
    (["*/*"], "", True),
    (["*/*"], "status", True),
    (["deployments"], "", False),
])
def test_resources_and_subresources(resources, sub, expected):
    assert rule_matches(rule(resources), attrs(sub=sub)) is expected


@pytest.mark.parametrize("r,expected", [
    (rule(ops=["*"]), True), (rule(ops=["UPDATE"]), False), (rule(ops=["UPDATE", "CREATE"]), True),
    (rule(groups=["*"]), True), (rule(groups=["apps"]), False),
    (rule(versions=["*"]), True), (rule(versions=["v2"]), False),
])
def test_operations_groups_versions(r, expected):
    assert rule_matches(r, attrs()) is expected


@pytest.mark.parametrize("scope,a,expected", [
    ("Namespaced", attrs(), True),
    ("Namespaced", attrs(NODES, ns=""), False),
    ("Cluster", attrs(NODES, ns=""), True),
    ("Cluster", attrs(), False),
    # a Namespace carries its own name as namespace, yet is cluster-scoped
    ("Cluster", attrs(NAMESPACES, ns="team"), True),
    ("Namespaced", attrs(NAMESPACES, ns="team"), False),
    ("*", attrs(NODES, ns=""), True),
])
def test_scope(scope, a, expected):
    assert rule_matches(rule(resources=["*"], scope=scope), a) is expected


def test_match_policy_equivalent_and_exact():
    a = attrs(DEPLOY_V1, equivalents=(DEPLOY_V2,))
    r = rule(["deployments"], groups=["apps"], versions=["v2"])
    assert match_rules({"rules": [r], "matchPolicy": "Equivalent"}, a) == DEPLOY_V2
    assert match_rules({"rules": [r]}, a) == DEPLOY_V2  # Equivalent is the default
    assert match_rules({"rules": [r], "matchPolicy": "Exact"}, a) is None
    exact = rule(["deployments"], groups=["apps"], versions=["v1"])
    assert match_rules({"rules": [r, exact], "matchPolicy": "Exact"}, a) == DEPLOY_V1


def test_object_selector_sees_new_and_old_labels():
    sel = {"objectSelector": {"matchLabels": {"app": "web"}}}
    web = {"metadata": {"labels": {"app": "web"}}}
    other = {"metadata": {"labels": {"app": "db"}}}
    assert object_selector_matches(sel, attrs(obj=web))
    assert not object_selector_matches(sel, attrs(obj=other))
    assert object_selector_matches(sel, attrs(op="UPDATE", obj=other, old=web))
    assert object_selector_matches(sel, attrs(op="DELETE", old=web))
    assert not object_selector_matches(sel, attrs(op="DELETE"))
    assert object_selector_matches({"objectSelector": {}}, attrs())  # empty selects all, even nothing
    expr = {"objectSelector": {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}}
    assert object_selector_matches(expr, attrs(obj={"metadata": {}}))
    assert not object_selector_matches(expr, attrs(obj=web))


def _labels(table):
    async def get(name):
        return table.get(name)
    return get


def test_namespace_selector():
    hook = {"namespaceSelector": {"matchLabels": {"env": "prod"}}}
    stored = _labels({"default": {"env": "prod"}, "dev": {"env": "dev"}})
    run = asyncio.run
    assert run(namespace_selector_matches(hook, attrs(ns="default"), stored))
    assert not run(namespace_selector_matches(hook, attrs(ns="dev"), stored))
    # cluster-scoped objects other than Namespaces are never exempted
    assert run(namespace_selector_matches(hook, attrs(NODES, ns=""), stored))
    # a Namespace being created or updated is judged by the labels it is written with
    ns_obj = {"metadata": {"name": "new", "labels": {"env": "prod"}}}
    assert run(namespace_selector_matches(hook, attrs(NAMESPACES, ns="new", obj=ns_obj), stored))
    assert not run(namespace_selector_matches(hook, attrs(NAMESPACES, ns="dev", op="UPDATE", obj={"metadata": {}}), stored))
    # deleting one: its stored labels
    assert not run(namespace_selector_matches(hook, attrs(NAMESPACES, op="DELETE", ns="dev"), stored))
    # an empty selector does not even look the namespace up
    assert run(namespace_selector_matches({"namespaceSelector": {}}, attrs(ns="missing"), stored))
    with pytest.raises(APIError) as e:
        run(namespace_selector_matches(hook, attrs(ns="missing"), stored))
    assert e.value.code == 404 and e.value.message == 'namespaces "missing" not found'


def test_should_call_combines_rules_and_selectors():
    hook = {"rules": [rule()], "namespaceSelector": {"matchLabels": {"env": "prod"}},
            "objectSelector": {"matchLabels": {"app": "web"}}}
    stored = _labels({"default": {"env": "prod"}})
    web = {"metadata": {"labels": {"app": "web"}}}
    assert asyncio.run(should_call(hook, attrs(obj=web), stored)) == PODS
    assert asyncio.run(should_call(hook, attrs(obj={"metadata": {}}), stored)) is None
    assert asyncio.run(should_call(hook, attrs(op="UPDATE", obj=web), stored)) is None


def test_webhook_configurations_are_exempt():
    cfg = GVRK("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration")
    assert is_exempt(attrs(cfg, ns=""))
    assert not is_exempt(attrs())
