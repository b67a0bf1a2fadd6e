"""kybernetes.auth.authorizer: attributes, unions, the privileged group, mode chains,
upstream's 403 wording and the SubjectAccessReview helpers."""

import pytest

from kybernetes.auth import authorizer as az
from kybernetes.auth.authorizer import (
    ANONYMOUS,
    AlwaysAllow,
    AlwaysDeny,
    Attributes,
    Decision,
    NoOpinion,
    PrivilegedGroups,
    RulesResult,
    StatusError,
    Union,
    UserInfo,
)

ALICE = UserInfo("alice", ("dev", "system:authenticated"))
ADMIN = UserInfo("kyb-admin", ("system:masters", "system:authenticated"))


class Fixed:
    def __init__(self, decision, reason="", rules=None):
        self.decision, self.reason, self.rules = decision, reason, rules
        self.calls = 0

    async def authorize(self, attrs):
        self.calls += 1
        return self.decision, self.reason


class FixedRules(Fixed):
    async def rules_for(self, user, namespace):
        return self.rules


def res(verb="get", ns="", group="", resource="pods", sub="", name="", user=ALICE, version="v1"):
    return Attributes(user, verb, ns, group, version, resource, sub, name, True, "")


def nonres(path, verb="get", user=ALICE):
    return Attributes(user, verb, path=path, is_resource_request=False)


# ---------------------------------------------------------------- forbidden text


@pytest.mark.parametrize(
    "attrs,reason,want",
    [
        (
            res("list", "ns", resource="pods"),
            "",
            'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "ns"',
        ),
        (
            res("get", "ns", resource="pods", sub="log", name="p1"),
            "",
            'pods "p1" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "ns"',
        ),
        (
            res("list", "", "apps", "deployments"),
            "",
            'deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope',
        ),
        (
            res("update", "", "apps", "deployments", "scale", "d"),
            "RBAC: x",
            'deployments.apps "d" is forbidden: User "alice" cannot update resource "deployments/scale" in API group '
            '"apps" at the cluster scope: RBAC: x',
        ),
        (nonres("/x"), "", 'forbidden: User "alice" cannot get path "/x"'),
        (nonres("/metrics", user=ANONYMOUS), "nope", 'forbidden: User "system:anonymous" cannot get path "/metrics": nope'),
        (
            Attributes(ALICE, "get", api_group="apps", is_resource_request=True),
            "",
            '.apps is forbidden: User "alice" cannot get resource "" in API group "apps" at the cluster scope',
        ),
        (
            Attributes(None, "get", resource="pods"),
            "",
            'pods is forbidden: User "" cannot get resource "pods" in API group "" at the cluster scope',
        ),
        (
            Attributes(ALICE, "get", is_resource_request=True),
            "",
            'forbidden: User "alice" cannot get resource "" in API group "" at the cluster scope',
        ),
    ],
)
def test_forbidden_message(attrs, reason, want):
    assert az.forbidden_message(attrs, reason) == want


def test_forbidden_status_details():
    st = az.forbidden_status(res("get", "ns", "apps", "deployments", "", "d"), "")
    assert st["code"] == 403 and st["reason"] == "Forbidden" and st["status"] == "Failure"
    assert st["details"] == {"name": "d", "group": "apps", "kind": "deployments"}
    assert az.forbidden_status(nonres("/x"))["details"] == {}
    assert az.forbidden_status(res("list", resource="pods"))["details"] == {"kind": "pods"}


def test_go_quote_and_lists():
    assert az.go_quote('a"b\\c\n\t\r\x01\x7f') == '"a\\"b\\\\c\\n\\t\\r\\x01\\x7f"'
    assert az.go_quote_list(["a", ""]) == '["a" ""]'
    assert az.go_quote_list([]) == "[]"


def test_aggregate_errors():
    assert az.aggregate_errors([]) == ""
    assert az.aggregate_errors(["a"]) == "a"
    assert az.aggregate_errors(["a", "a"]) == "a"
    assert az.aggregate_errors(["a", "b", "a"]) == "[a, b]"


# ---------------------------------------------------------------- authorizers


async def test_always_allow_and_deny():
    assert await AlwaysAllow().authorize(res()) == (Decision.ALLOW, "")
    assert await AlwaysDeny().authorize(res()) == (Decision.NO_OPINION, "Everything is forbidden.")
    assert await NoOpinion().authorize(res()) == (Decision.NO_OPINION, "")
    full = await AlwaysAllow().rules_for(ALICE, "ns")
    assert full.resource_rules[0]["verbs"] == ["*"] and full.non_resource_rules[0]["nonResourceURLs"] == ["*"]
    assert await AlwaysDeny().rules_for(ALICE, "ns") == RulesResult([], [], False)


async def test_privileged_groups():
    p = PrivilegedGroups()
    assert await p.authorize(res(user=ADMIN)) == (Decision.ALLOW, "")
    assert await p.authorize(res(user=ALICE)) == (Decision.NO_OPINION, "")
    assert await p.authorize(Attributes(None, "get")) == (Decision.NO_OPINION, "Error")
    assert await PrivilegedGroups(["dev"]).authorize(res(user=ALICE)) == (Decision.ALLOW, "")


async def test_union_first_decision_wins_and_reasons_join():
    a, b, c = Fixed(Decision.NO_OPINION, "one"), Fixed(Decision.DENY, "no!"), Fixed(Decision.ALLOW)
    assert await Union([a, b, c]).authorize(res()) == (Decision.DENY, "no!")
    assert c.calls == 0
    assert await Union([a, Fixed(Decision.ALLOW, "yes")]).authorize(res()) == (Decision.ALLOW, "yes")
    u = Union([a, Fixed(Decision.NO_OPINION, ""), Fixed(Decision.NO_OPINION, "two")])
    assert await u.authorize(res()) == (Decision.NO_OPINION, "one\ntwo")
    assert await Union([]).authorize(res()) == (Decision.NO_OPINION, "")


async def test_union_rules_for():
    r1 = FixedRules(Decision.NO_OPINION, rules=RulesResult([{"verbs": ["get"]}], [], False, "e1"))
    r2 = FixedRules(Decision.NO_OPINION, rules=RulesResult([], [{"verbs": ["get"], "nonResourceURLs": ["/x"]}], True, "e2"))
    out = await Union([Fixed(Decision.NO_OPINION), r1, r2]).rules_for(ALICE, "ns")
    assert out.resource_rules == [{"verbs": ["get"]}]
    assert out.non_resource_rules == [{"verbs": ["get"], "nonResourceURLs": ["/x"]}]
    assert out.incomplete is True
    assert out.evaluation_error == "[e1, e2]"


async def test_build_authorizer_modes():
    rbac = Fixed(Decision.NO_OPINION, "RBAC: missing")
    chain = az.build_authorizer("Node,RBAC", rbac=rbac)
    assert isinstance(chain.authorizers[0], PrivilegedGroups)
    assert isinstance(chain.authorizers[1], NoOpinion)  # the Node seam, until it lands
    assert chain.authorizers[2] is rbac
    assert await chain.authorize(res(user=ADMIN)) == (Decision.ALLOW, "")
    assert await chain.authorize(res()) == (Decision.NO_OPINION, "RBAC: missing")
    node = Fixed(Decision.ALLOW)
    chain = az.build_authorizer(["Node", "RBAC"], rbac=rbac, node=node)
    assert chain.authorizers[1] is node
    assert await chain.authorize(res()) == (Decision.ALLOW, "")
    assert isinstance(az.build_authorizer("AlwaysAllow").authorizers[1], AlwaysAllow)
    assert isinstance(az.build_authorizer("AlwaysDeny").authorizers[1], AlwaysDeny)
    with pytest.raises(ValueError, match="more than once"):
        az.build_authorizer("RBAC,RBAC", rbac=rbac)
    with pytest.raises(ValueError, match="unknown authorization mode Foo specified"):
        az.build_authorizer("Foo")
    with pytest.raises(ValueError, match="needs an RBAC authorizer"):
        az.build_authorizer("RBAC")
    with pytest.raises(ValueError, match="at least one"):
        az.build_authorizer("")


def test_attributes_from_request_info():
    from kybernetes.apiserver.requestinfo import parse

    info = parse("GET", "/api/v1/namespaces/ns/pods/p/log", {})
    a = Attributes.from_request_info(ALICE, info)
    assert (a.verb, a.namespace, a.resource, a.subresource, a.name, a.api_version) == ("get", "ns", "pods", "log", "p", "v1")
    assert a.is_resource_request and a.path == "/api/v1/namespaces/ns/pods/p/log"
    info = parse("GET", "/healthz", {})
    a = Attributes.from_request_info(ALICE, info)
    assert not a.is_resource_request and a.path == "/healthz" and a.verb == "get"


# ---------------------------------------------------------------- SAR helpers


def test_attributes_from_subject_access_review():
    spec = {
        "user": "bob",
        "groups": ["g1"],
        "uid": "u1",
        "extra": {"k": ["v"]},
        "resourceAttributes": {"namespace": "ns", "verb": "get", "resource": "pods", "subresource": "log", "name": "p"},
    }
    a = az.attributes_from_subject_access_review(spec)
    assert a.user == UserInfo("bob", ("g1",), "u1", {"k": ["v"]})
    assert (a.verb, a.namespace, a.api_group, a.api_version, a.resource, a.subresource, a.name) == (
        "get", "ns", "", "*", "pods", "log", "p",
    )
    a = az.attributes_from_subject_access_review(
        {"resourceAttributes": {"verb": "list", "group": "apps", "version": "v1", "resource": "deployments"}}, user=ALICE
    )
    assert a.user is ALICE and a.api_version == "v1" and a.api_group == "apps"
    a = az.attributes_from_subject_access_review({"user": "bob", "nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
    assert not a.is_resource_request and a.path == "/healthz" and a.verb == "get"


def test_validate_subject_access_review():
    v = az.validate_subject_access_review
    assert v({"user": "u", "resourceAttributes": {}}) == []
    assert v({"groups": ["g"], "nonResourceAttributes": {}}) == []
    assert v({"resourceAttributes": {}, "nonResourceAttributes": {}, "user": "u"}) == [
        ("spec.nonResourceAttributes", {}, "cannot be specified in combination with resourceAttributes")
    ]
    assert v({"user": "u"}) == [
        ("spec.resourceAttributes", None, "exactly one of nonResourceAttributes or resourceAttributes must be specified")
    ]
    assert v({"resourceAttributes": {}}) == [("spec.user", "", "at least one of user or group must be specified")]
    assert v({"resourceAttributes": {}}, "SelfSubjectAccessReview") == []
    assert v({"user": "u", "resourceAttributes": {"namespace": "a"}}, "LocalSubjectAccessReview", "a") == []
    assert v({"user": "u", "resourceAttributes": {"namespace": "b"}}, "LocalSubjectAccessReview", "a") == [
        ("spec.resourceAttributes.namespace", "b", "must match metadata.namespace")
    ]
    assert v({"user": "u", "nonResourceAttributes": {}}, "LocalSubjectAccessReview", "a") == [
        ("spec.nonResourceAttributes", {}, "disallowed on this kind of request")
    ]


def test_rules_review_status():
    st = az.rules_review_status(
        RulesResult(
            [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": []}],
            [{"verbs": ["get"], "nonResourceURLs": ["/api"]}],
            False,
            "oops",
        )
    )
    assert st == {
        "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
        "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api"]}],
        "incomplete": False,
        "evaluationError": "oops",
    }
    assert "evaluationError" not in az.rules_review_status(RulesResult([], [], True))


# ---------------------------------------------------------------- StatusError


def test_status_errors():
    e = StatusError.forbidden("roles", "r", "why")
    assert e.message == 'roles.rbac.authorization.k8s.io "r" is forbidden: why'
    assert e.status()["details"] == {"name": "r", "group": "rbac.authorization.k8s.io", "kind": "roles"}
    assert StatusError.forbidden("pods", "", "why", group="").message == "pods is forbidden: why"
    nf = StatusError.not_found("serviceaccounts", "x", group="")
    assert (nf.code, nf.reason, nf.message) == (404, "NotFound", 'serviceaccounts "x" not found')
    c = StatusError.conflict("Pod", "p", "changed")
    assert (c.code, c.message, c.details) == (409, 'Operation cannot be fulfilled on Pod "p": changed', {"name": "p", "kind": "Pod"})
    inv = StatusError.invalid("TokenRequest", "authentication.k8s.io", "", [("spec.expirationSeconds", 10, "too short")])
    assert inv.message == 'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 10: too short'
    assert inv.details["causes"] == [
        {"reason": "FieldValueInvalid", "message": "Invalid value: 10: too short", "field": "spec.expirationSeconds"}
    ]
    two = StatusError.invalid("K", "", "n", [("a", "x", "d1"), ("b", 1, "d2")])
    assert two.message == 'K "n" is invalid: [a: Invalid value: "x": d1, b: Invalid value: 1: d2]'
    assert StatusError.bad_request("bad").status()["code"] == 400


# ---------------------------------------------------------------- API server adapters


def test_attributes_from_dict():
    a = az.attributes_from_dict(ALICE, {"resource_request": True, "verb": "get", "namespace": "ns", "group": "apps",
                                        "version": "", "resource": "deployments", "subresource": "scale", "name": "d"})
    assert a == Attributes(ALICE, "get", "ns", "apps", "*", "deployments", "scale", "d", True, "")
    a = az.attributes_from_dict(ALICE, {"resource_request": False, "verb": "get", "path": "/healthz"})
    assert a == Attributes(ALICE, "get", path="/healthz", is_resource_request=False)


async def test_as_access_check_and_rules_check():
    check = az.as_access_check(Union([PrivilegedGroups(), Fixed(Decision.DENY, "nope")]))
    assert await check(ADMIN, {"resource_request": False, "verb": "get", "path": "/x"}) == (True, False, "")
    assert await check(ALICE, {"resource_request": False, "verb": "get", "path": "/x"}) == (False, True, "nope")
    rules = az.as_rules_check(FixedRules(Decision.NO_OPINION, rules=RulesResult(
        [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}], [], False, "e")))
    assert await rules(ALICE, "ns") == ([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}], [], False, "e")
    rules = az.as_rules_check(AlwaysDeny())
    assert await rules(ALICE, "ns") == ([], [], False, "")
