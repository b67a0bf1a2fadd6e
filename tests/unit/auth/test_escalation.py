"""kybernetes.auth.escalation: covering, compaction, messages and the role/binding checks."""

import pytest

from kybernetes.auth import escalation as esc
from kybernetes.auth.authorizer import Decision, StatusError, UserInfo
from kybernetes.auth.rbac import InMemoryRBACSource, RBACAuthorizer

G = "rbac.authorization.k8s.io"
ALICE = UserInfo("alice", ("dev", "system:authenticated"))
ROOT = UserInfo("root", ("system:masters",))


def R(verbs, groups=("",), resources=(), names=(), urls=()):
    r = {"verbs": list(verbs)}
    if resources:
        r["apiGroups"] = list(groups)
        r["resources"] = list(resources)
    if names:
        r["resourceNames"] = list(names)
    if urls:
        r["nonResourceURLs"] = list(urls)
    return r


# ---------------------------------------------------------------- covers


def test_breakdown_rule():
    assert esc.breakdown_rule(R(["get", "list"], groups=["", "apps"], resources=["pods"], names=["a", "b"])) == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["b"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["a"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["b"]},
        {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["a"]},
        {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["b"]},
        {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["a"]},
        {"apiGroups": ["apps"], "resources": ["pods"], "verbs": ["list"], "resourceNames": ["b"]},
    ]
    assert esc.breakdown_rule(R(["get"], urls=["/a", "/b"])) == [
        {"nonResourceURLs": ["/a"], "verbs": ["get"]},
        {"nonResourceURLs": ["/b"], "verbs": ["get"]},
    ]
    assert esc.breakdown_rule({"verbs": []}) == []


@pytest.mark.parametrize(
    "owner,servant,ok",
    [
        ([R(["*"], groups=["*"], resources=["*"])], [R(["get", "delete"], groups=["apps"], resources=["deployments"])], True),
        ([R(["get"], resources=["pods"])], [R(["get"], resources=["pods"])], True),
        ([R(["get"], resources=["pods"])], [R(["get", "list"], resources=["pods"])], False),
        ([R(["get"], resources=["pods"])], [R(["get"], resources=["pods/log"])], False),
        ([R(["get"], resources=["*/log"])], [R(["get"], resources=["pods/log"])], True),
        ([R(["get"], resources=["*/log"])], [R(["get"], resources=["pods"])], False),
        ([R(["get"], groups=["*"], resources=["pods"])], [R(["get"], groups=["x"], resources=["pods"])], True),
        ([R(["get"], groups=["apps"], resources=["pods"])], [R(["get"], groups=["x"], resources=["pods"])], False),
        # resourceNames: an unrestricted owner covers named servants; a named owner only the same names
        ([R(["get"], resources=["pods"])], [R(["get"], resources=["pods"], names=["a"])], True),
        ([R(["get"], resources=["pods"], names=["a", "b"])], [R(["get"], resources=["pods"], names=["a"])], True),
        ([R(["get"], resources=["pods"], names=["a"])], [R(["get"], resources=["pods"], names=["c"])], False),
        ([R(["get"], resources=["pods"], names=["a"])], [R(["get"], resources=["pods"])], False),
        # non-resource URLs
        ([R(["get"], urls=["/api/*"])], [R(["get"], urls=["/api/v1"])], True),
        ([R(["get"], urls=["/api"])], [R(["get"], urls=["/api/v1"])], False),
        ([R(["get"], urls=["*"])], [R(["get"], urls=["/anything"])], True),
        ([R(["*"], groups=["*"], resources=["*"])], [R(["get"], urls=["/healthz"])], False),
        ([], [{"verbs": []}], True),
    ],
)
def test_covers(owner, servant, ok):
    assert esc.covers(owner, servant)[0] is ok


def test_covers_reports_missing_subrules():
    ok, missing = esc.covers([R(["get"], resources=["pods"])], [R(["get", "list"], resources=["pods", "secrets"])])
    assert not ok
    assert missing == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
    ]


def test_compact_rules_and_strings():
    rules = [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["p"]},
        {"nonResourceURLs": ["/x"], "verbs": ["get"]},
    ]
    out = esc.compact_rules(rules)
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"], "resourceNames": [], "nonResourceURLs": []} in out
    assert len(out) == 3
    assert sorted(esc.compact_string(r) for r in out) == [
        '{APIGroups:[""], Resources:["pods"], ResourceNames:["p"], Verbs:["get"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}',
        '{NonResourceURLs:["/x"], Verbs:["get"]}',
    ]
    assert esc.compact_string({}) == "{}"


def test_escalation_allowed():
    assert esc.escalation_allowed(ROOT)
    assert not esc.escalation_allowed(ALICE)
    assert not esc.escalation_allowed(None)


# ---------------------------------------------------------------- confirm_no_escalation


def rules_fn(rules, errors=()):
    async def fn(user, namespace):
        fn.asked = (user.name, namespace)
        return list(rules), list(errors)

    return fn


async def test_confirm_no_escalation_message():
    fn = rules_fn([R(["get"], resources=["pods"])])
    await esc.confirm_no_escalation(fn, ALICE, "ns", [R(["get"], resources=["pods"])])
    with pytest.raises(esc.EscalationError) as e:
        await esc.confirm_no_escalation(fn, ALICE, "ns", [R(["get", "delete"], resources=["pods", "secrets"])])
    assert str(e.value) == (
        'user "alice" (groups=["dev" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}'
    )
    assert fn.asked == ("alice", "ns")


async def test_confirm_no_escalation_with_resolution_errors():
    fn = rules_fn([], ['clusterrole.rbac.authorization.k8s.io "x" not found'])
    with pytest.raises(esc.EscalationError) as e:
        await esc.confirm_no_escalation(fn, UserInfo("u"), "", [R(["get"], urls=["/x"])])
    assert str(e.value) == (
        'user "u" (groups=[]) is attempting to grant RBAC permissions not currently held:\n'
        '{NonResourceURLs:["/x"], Verbs:["get"]}'
        '; resolution errors: [clusterrole.rbac.authorization.k8s.io "x" not found]'
    )


# ---------------------------------------------------------------- the write checks


def cr(name, *rules, aggregation=False):
    o = {"kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}
    if aggregation:
        o["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"x": "true"}}]}
    return o


def binding(kind, name, role_kind, role_name, ns=None):
    md = {"name": name}
    if ns:
        md["namespace"] = ns
    return {
        "kind": kind,
        "metadata": md,
        "roleRef": {"apiGroup": G, "kind": role_kind, "name": role_name},
        "subjects": [{"kind": "User", "apiGroup": G, "name": "someone"}],
    }


def world(*extra):
    """alice may read pods everywhere and manage roles/bindings in ns1."""
    objs = [
        cr("pod-reader", R(["get", "list"], resources=["pods"])),
        # explicit verbs: "*" would include escalate and bind
        cr("rbac-manager", R(["get", "list", "create", "update", "patch", "delete"], groups=[G], resources=["roles", "rolebindings"])),
        cr("secret-reader", R(["get"], resources=["secrets"])),
        cr("god", R(["*"], groups=["*"], resources=["*"]), R(["*"], urls=["*"])),
        binding("ClusterRoleBinding", "alice-pods", "ClusterRole", "pod-reader"),
        binding("RoleBinding", "alice-rbac", "ClusterRole", "rbac-manager", "ns1"),
    ]
    objs[4]["subjects"] = objs[5]["subjects"] = [{"kind": "User", "apiGroup": G, "name": "alice"}]
    for o in extra:
        objs.append(o)
    a = RBACAuthorizer(InMemoryRBACSource(objs))
    return a


async def check_role(a, obj, **kw):
    return await esc.check_role_write(authorizer=a, user_rules_fn=a.rules_for_user, user=kw.pop("user", ALICE), obj=obj, **kw)


async def test_role_within_own_rights_is_allowed():
    a = world()
    role = {"kind": "Role", "metadata": {"name": "r", "namespace": "ns1"}, "rules": [R(["get"], resources=["pods"])]}
    await check_role(a, role, namespace="ns1")


async def test_role_escalation_is_forbidden():
    a = world()
    role = {"kind": "Role", "metadata": {"name": "r", "namespace": "ns1"}, "rules": [R(["get"], resources=["secrets"])]}
    with pytest.raises(StatusError) as e:
        await check_role(a, role, namespace="ns1")
    assert e.value.code == 403 and e.value.reason == "Forbidden"
    assert e.value.message == (
        'roles.rbac.authorization.k8s.io "r" is forbidden: user "alice" (groups=["dev" "system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'
    )
    assert e.value.details == {"name": "r", "group": G, "kind": "roles"}
    # masters may do it
    await check_role(a, role, namespace="ns1", user=ROOT)


async def test_star_verb_includes_escalate_and_bind():
    star = cr("star", R(["*"], groups=[G], resources=["roles", "rolebindings"]))
    b = binding("RoleBinding", "star", "ClusterRole", "star", "ns1")
    b["subjects"] = [{"kind": "User", "apiGroup": G, "name": "alice"}]
    a = world(star, b)
    role = {"kind": "Role", "metadata": {"name": "r", "namespace": "ns1"}, "rules": [R(["*"], resources=["secrets"])]}
    await check_role(a, role, namespace="ns1")


async def test_escalate_verb_permits_escalation():
    grant = cr("escalator", R(["escalate"], groups=[G], resources=["roles"]))
    b = binding("RoleBinding", "esc", "ClusterRole", "escalator", "ns1")
    b["subjects"] = [{"kind": "User", "apiGroup": G, "name": "alice"}]
    a = world(grant, b)
    role = {"kind": "Role", "metadata": {"name": "r", "namespace": "ns1"}, "rules": [R(["*"], resources=["secrets"])]}
    await check_role(a, role, namespace="ns1")
    # escalate in ns1 does not help in ns2
    with pytest.raises(StatusError):
        await check_role(a, {**role, "metadata": {"name": "r", "namespace": "ns2"}}, namespace="ns2")


async def test_escalate_with_resource_names_only_on_update():
    grant = cr("escalator", R(["escalate"], groups=[G], resources=["clusterroles"], names=["mine"]))
    b = binding("ClusterRoleBinding", "esc", "ClusterRole", "escalator")
    b["subjects"] = [{"kind": "User", "apiGroup": G, "name": "alice"}]
    a = world(grant, b)
    obj = cr("mine", R(["get"], resources=["secrets"]))
    with pytest.raises(StatusError):  # create: the request has no name
        await check_role(a, obj)
    await check_role(a, obj, old=cr("mine"), request_name="mine")


async def test_gc_only_update_skips_check():
    a = world()
    old = cr("big", R(["*"], resources=["secrets"]))
    new = cr("big", R(["*"], resources=["secrets"]))
    new["metadata"]["finalizers"] = ["x"]
    new["metadata"]["ownerReferences"] = [{"name": "o"}]
    await check_role(a, new, old=old, request_name="big")
    new["metadata"]["labels"] = {"changed": "yes"}
    with pytest.raises(StatusError):
        await check_role(a, new, old=old, request_name="big")


def test_is_only_mutating_gc_fields():
    old = {"kind": "Role", "metadata": {"name": "r", "resourceVersion": "1"}, "rules": []}
    assert esc.is_only_mutating_gc_fields({"kind": "Role", "metadata": {"name": "r", "finalizers": ["f"]}}, old)
    assert not esc.is_only_mutating_gc_fields({"kind": "Role", "metadata": {"name": "r"}, "rules": [{"verbs": ["get"]}]}, old)
    assert not esc.is_only_mutating_gc_fields(old, None)
    assert esc.is_only_mutating_gc_fields({"kind": "Role", "metadata": None}, {"kind": "Role"})


async def test_aggregation_rule_needs_full_authority():
    a = world()
    obj = cr("agg", aggregation=True)
    with pytest.raises(StatusError) as e:
        await check_role(a, obj)
    assert e.value.message == (
        'clusterroles.rbac.authorization.k8s.io "agg" is forbidden: '
        "must have cluster-admin privileges to use the aggregationRule"
    )
    # removing it on update needs the same
    with pytest.raises(StatusError):
        await check_role(a, cr("agg"), old=cr("agg", aggregation=True), request_name="agg")
    god = binding("ClusterRoleBinding", "g", "ClusterRole", "god")
    god["subjects"] = [{"kind": "User", "apiGroup": G, "name": "alice"}]
    await check_role(world(god), obj)


async def test_role_escalation_authorized_guards():
    class Allow:
        async def authorize(self, attrs):
            Allow.attrs = attrs
            return Decision.ALLOW, ""

    assert await esc.role_escalation_authorized(Allow(), ALICE, resource="roles", namespace="n", name="x")
    assert (Allow.attrs.verb, Allow.attrs.api_version, Allow.attrs.name) == ("escalate", "*", "x")
    assert not await esc.role_escalation_authorized(None, ALICE, resource="roles")
    assert not await esc.role_escalation_authorized(Allow(), None, resource="roles")
    assert not await esc.role_escalation_authorized(Allow(), ALICE, resource="pods")
    assert not await esc.role_escalation_authorized(Allow(), ALICE, resource="roles", api_group="other")
    assert not await esc.binding_authorized(None, ALICE, {"kind": "Role"}, "ns")
    assert not await esc.binding_authorized(Allow(), ALICE, {"kind": "Other"}, "ns")
    assert await esc.binding_authorized(Allow(), ALICE, {"kind": "Role", "name": "r", "apiGroup": G}, "ns")
    assert (Allow.attrs.verb, Allow.attrs.resource, Allow.attrs.namespace) == ("bind", "roles", "ns")


async def check_binding(a, obj, **kw):
    return await esc.check_binding_write(
        authorizer=a, user_rules_fn=a.rules_for_user, role_ref_rules_fn=a.role_ref_rules,
        user=kw.pop("user", ALICE), obj=obj, **kw,
    )


async def test_binding_to_held_permissions_is_allowed():
    a = world()
    await check_binding(a, binding("RoleBinding", "b", "ClusterRole", "pod-reader", "ns1"), namespace="ns1")


async def test_binding_escalation_is_forbidden():
    a = world()
    with pytest.raises(StatusError) as e:
        await check_binding(a, binding("RoleBinding", "b", "ClusterRole", "secret-reader", "ns1"), namespace="ns1")
    assert e.value.message == (
        'rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "alice" (groups=["dev" "system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n"
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}'
    )
    with pytest.raises(StatusError) as e:
        await check_binding(a, binding("ClusterRoleBinding", "cb", "ClusterRole", "secret-reader"))
    assert e.value.message.startswith('clusterrolebindings.rbac.authorization.k8s.io "cb" is forbidden: user "alice"')
    await check_binding(a, binding("ClusterRoleBinding", "cb", "ClusterRole", "secret-reader"), user=ROOT)


async def test_bind_verb_permits_binding():
    grant = cr("binder", R(["bind"], groups=[G], resources=["clusterroles"], names=["secret-reader"]))
    b = binding("RoleBinding", "bind", "ClusterRole", "binder", "ns1")
    b["subjects"] = [{"kind": "User", "apiGroup": G, "name": "alice"}]
    a = world(grant, b)
    await check_binding(a, binding("RoleBinding", "b", "ClusterRole", "secret-reader", "ns1"), namespace="ns1")
    with pytest.raises(StatusError):
        await check_binding(a, binding("RoleBinding", "b", "ClusterRole", "secret-reader", "ns2"), namespace="ns2")


async def test_binding_to_missing_role_is_not_found():
    a = world()
    with pytest.raises(StatusError) as e:
        await check_binding(a, binding("RoleBinding", "b", "Role", "nope", "ns1"), namespace="ns1")
    assert (e.value.code, e.value.message) == (404, 'roles.rbac.authorization.k8s.io "nope" not found')
    with pytest.raises(StatusError) as e:
        await check_binding(a, binding("ClusterRoleBinding", "b", "ClusterRole", "nope"))
    assert e.value.message == 'clusterroles.rbac.authorization.k8s.io "nope" not found'
    with pytest.raises(StatusError) as e:
        await check_binding(a, binding("ClusterRoleBinding", "b", "Weird", "nope"))
    assert e.value.code == 500


async def test_binding_gc_only_update():
    a = world()
    old = binding("RoleBinding", "b", "ClusterRole", "secret-reader", "ns1")
    new = binding("RoleBinding", "b", "ClusterRole", "secret-reader", "ns1")
    new["metadata"]["finalizers"] = ["f"]
    await check_binding(a, new, old=old, namespace="ns1")
