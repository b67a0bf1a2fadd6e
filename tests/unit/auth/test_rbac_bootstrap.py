"""kybernetes.auth.bootstrap_policy: the default roles and bindings, reconciliation,
aggregation — and what the policy actually grants, through the RBAC authorizer."""

import copy

import pytest

from kybernetes.auth import bootstrap_policy as bp
from kybernetes.auth.authorizer import Attributes, Decision, UserInfo, build_authorizer
from kybernetes.auth.rbac import InMemoryRBACSource, RBACAuthorizer

G = "rbac.authorization.k8s.io"


def by_name(objs):
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs}


def test_every_object_is_marked_as_upstream():
    objs = bp.desired_objects()
    assert len(by_name(objs)) == len(objs)  # no duplicates
    for o in objs:
        assert o["apiVersion"] == f"{G}/v1"
        assert o["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert o["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}
        for r in o.get("rules", []):
            for k, v in r.items():
                assert v == sorted(v), (o["metadata"]["name"], k)


def test_expected_roles_exist():
    names = {o["metadata"]["name"] for o in bp.cluster_roles() + bp.controller_roles()}
    for n in [
        "cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
        "system:public-info-viewer", "system:monitoring", "system:node-proxier", "system:kube-scheduler",
        "system:kube-controller-manager", "system:node", "system:node-bootstrapper", "system:auth-delegator",
        "system:heapster", "system:kube-dns", "system:volume-scheduler", "system:kubelet-api-admin",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:service-account-issuer-discovery",
        "system:aggregate-to-admin", "system:aggregate-to-edit", "system:aggregate-to-view",
    ] + [
        "system:controller:" + c
        for c in [
            "namespace-controller", "generic-garbage-collector", "deployment-controller", "replicaset-controller",
            "statefulset-controller", "daemon-set-controller", "job-controller", "cronjob-controller",
            "node-controller", "endpoint-controller", "endpointslice-controller", "service-account-controller",
            "root-ca-cert-publisher", "clusterrole-aggregation-controller", "resourcequota-controller",
            "certificate-controller", "ttl-after-finished-controller", "pod-garbage-collector", "disruption-controller",
        ]
    ]:
        assert n in names, n


def test_cluster_admin_and_aggregated_roles():
    roles = {o["metadata"]["name"]: o for o in bp.cluster_roles()}
    assert roles["cluster-admin"]["rules"] == [
        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
        {"verbs": ["*"], "nonResourceURLs": ["*"]},
    ]
    assert roles["admin"]["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]
    }
    assert roles["admin"]["rules"] == []
    assert roles["edit"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert roles["view"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert roles["system:aggregate-to-view"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert roles["system:public-info-viewer"]["rules"] == [
        {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]}
    ]


def test_bindings():
    b = {o["metadata"]["name"]: o for o in bp.cluster_role_bindings()}
    assert b["cluster-admin"]["subjects"] == [{"kind": "Group", "apiGroup": G, "name": "system:masters"}]
    assert b["cluster-admin"]["roleRef"] == {"apiGroup": G, "kind": "ClusterRole", "name": "cluster-admin"}
    assert [s["name"] for s in b["system:public-info-viewer"]["subjects"]] == ["system:authenticated", "system:unauthenticated"]
    assert [s["name"] for s in b["system:discovery"]["subjects"]] == ["system:authenticated"]
    assert [s["name"] for s in b["system:basic-user"]["subjects"]] == ["system:authenticated"]
    assert b["system:node"]["subjects"] == []
    assert b["system:kube-dns"]["subjects"] == [{"kind": "ServiceAccount", "name": "kube-dns", "namespace": "kube-system"}]
    cb = {o["metadata"]["name"]: o for o in bp.controller_role_bindings()}
    assert cb["system:controller:job-controller"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "job-controller", "namespace": "kube-system"}
    ]
    assert len(cb) == len(bp.controller_roles())
    nrb = bp.namespace_role_bindings()
    names = {o["metadata"]["name"]: o for o in nrb["kube-system"]}
    assert names["system::extension-apiserver-authentication-reader"]["roleRef"]["name"] == "extension-apiserver-authentication-reader"
    assert set(bp.namespace_roles()) == {"kube-system", "kube-public"}


# ---------------------------------------------------------------- aggregation


def test_aggregate_fills_admin_edit_view():
    crs = bp.cluster_roles()
    agg = bp.aggregate(crs)
    assert set(agg) == {"admin", "edit", "view"}
    roles = {o["metadata"]["name"]: o for o in crs}
    assert agg["view"] == roles["system:aggregate-to-view"]["rules"]
    # matching roles in name order: edit = aggregate-to-edit + view; admin = edit + aggregate-to-admin
    assert agg["edit"] == roles["system:aggregate-to-edit"]["rules"] + agg["view"]
    assert agg["admin"] == agg["edit"] + roles["system:aggregate-to-admin"]["rules"]


def test_aggregate_selectors_dedup_and_expressions():
    crs = [
        {"kind": "ClusterRole", "metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"a": "1"}},
            {"matchExpressions": [{"key": "b", "operator": "Exists"}]},
            {"matchExpressions": [{"key": "c", "operator": "Bogus"}]},
        ]}, "rules": []},
        {"kind": "ClusterRole", "metadata": {"name": "x", "labels": {"a": "1", "b": "y"}}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]},
        {"kind": "ClusterRole", "metadata": {"name": "y", "labels": {"b": "z"}}, "rules": [
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"], "nonResourceURLs": ["/x"]},
        ]},
        {"kind": "ClusterRole", "metadata": {"name": "z"}, "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]},
    ]
    assert bp.aggregate(crs) == {"agg": [
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
        {"verbs": ["get"], "nonResourceURLs": ["/x"]},
    ]}
    assert bp.aggregation_updates(crs) == bp.aggregate(crs)
    crs[0]["rules"] = bp.aggregate(crs)["agg"]
    assert bp.aggregation_updates(crs) == {}


def test_aggregated_role_does_not_include_itself():
    crs = [{"kind": "ClusterRole", "metadata": {"name": "self", "labels": {"a": "1"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "1"}}]},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}]
    assert bp.aggregate(crs) == {"self": []}


# ---------------------------------------------------------------- reconciliation


def test_reconcile_creates_everything_on_an_empty_cluster():
    desired = bp.desired_objects()
    plan = bp.reconcile([], desired)
    assert len(plan.create) == len(desired) and not plan.update and not plan.recreate and not plan.skipped


def test_reconcile_is_idempotent():
    desired = bp.desired_objects()
    existing = copy.deepcopy(desired)
    for o in existing:
        o["metadata"]["resourceVersion"] = "7"
    plan = bp.reconcile(existing, desired)
    assert plan.create == [] and plan.update == [] and plan.recreate == [] and plan.skipped == []


def test_reconcile_aggregated_roles_keep_their_filled_rules():
    desired = bp.cluster_roles()
    existing = copy.deepcopy(desired)
    agg = bp.aggregate(existing)
    for o in existing:
        if o["metadata"]["name"] in agg:
            o["rules"] = agg[o["metadata"]["name"]]
    plan = bp.reconcile(existing, desired)
    assert plan.update == []


def test_reconcile_adds_missing_rules_labels_and_keeps_extras():
    want = bp.cluster_roles()[0]  # cluster-admin
    have = copy.deepcopy(want)
    have["rules"] = [{"verbs": ["get"], "apiGroups": ["extra"], "resources": ["things"]}]
    have["metadata"]["labels"] = {"mine": "yes"}
    have["metadata"]["annotations"] = {"note": "x"}
    have["metadata"]["resourceVersion"] = "5"
    res = bp.reconcile_role(have, want)
    assert res.operation == "update" and not res.skip
    assert res.obj["metadata"]["resourceVersion"] == "5"
    assert res.obj["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults", "mine": "yes"}
    assert res.obj["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true", "note": "x"}
    assert res.obj["rules"][0] == have["rules"][0]
    assert {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]} in res.obj["rules"]
    assert {"nonResourceURLs": ["*"], "verbs": ["*"]} in res.obj["rules"]
    assert res.missing_rules and not res.extra_rules  # cluster-admin covers anything
    # remove_extra stomps to the expected rules
    res = bp.reconcile_role(have, want, remove_extra=True)
    assert res.obj["rules"] == want["rules"]


def test_reconcile_extra_rules():
    want = {o["metadata"]["name"]: o for o in bp.cluster_roles()}["system:basic-user"]
    have = copy.deepcopy(want)
    have["rules"].append({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]})
    res = bp.reconcile_role(have, want)
    assert res.operation == "none" and res.extra_rules == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    res = bp.reconcile_role(have, want, remove_extra=True)
    assert res.operation == "update" and res.obj["rules"] == want["rules"]


def test_reconcile_respects_autoupdate_false():
    want = bp.cluster_roles()[0]
    have = copy.deepcopy(want)
    have["rules"] = []
    have["metadata"]["annotations"] = {"rbac.authorization.kubernetes.io/autoupdate": "false"}
    plan = bp.reconcile([have], [want])
    assert plan.skipped and not plan.update
    assert plan.results[("ClusterRole", "", "cluster-admin")].protected


def test_reconcile_aggregation_rule_changes():
    want = {o["metadata"]["name"]: o for o in bp.cluster_roles()}["admin"]
    have = copy.deepcopy(want)
    del have["aggregationRule"]
    assert bp.reconcile_role(have, want).obj["aggregationRule"] == want["aggregationRule"]
    have = copy.deepcopy(want)
    have["aggregationRule"]["clusterRoleSelectors"].append({"matchLabels": {"extra": "1"}})
    assert bp.reconcile_role(have, want).operation == "none"
    # as upstream, extra selectors are not computed, so even remove_extra keeps them
    assert bp.reconcile_role(have, want, remove_extra=True).operation == "none"
    have["aggregationRule"]["clusterRoleSelectors"] = [{"matchLabels": {"other": "1"}}]
    res = bp.reconcile_role(have, want, remove_extra=True)
    assert res.obj["aggregationRule"] == want["aggregationRule"]
    # a role that should not aggregate loses its aggregationRule
    plain = bp.cluster_roles()[0]
    have = copy.deepcopy(plain)
    have["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}
    res = bp.reconcile_role(have, plain)
    assert res.operation == "update" and "aggregationRule" not in res.obj


def test_reconcile_bindings():
    want = bp.cluster_role_bindings()[0]  # cluster-admin -> system:masters
    have = copy.deepcopy(want)
    have["subjects"] = [{"kind": "User", "apiGroup": G, "name": "me"}]
    res = bp.reconcile_binding(have, want)
    assert res.operation == "update"
    assert res.obj["subjects"] == have["subjects"] + want["subjects"]
    assert res.extra_subjects == have["subjects"] and res.missing_subjects == want["subjects"]
    assert bp.reconcile_binding(have, want, remove_extra=True).obj["subjects"] == want["subjects"]
    other = copy.deepcopy(want)
    other["roleRef"]["name"] = "view"
    plan = bp.reconcile([other], [want])
    assert plan.recreate == [want]
    other["metadata"]["annotations"] = {"rbac.authorization.kubernetes.io/autoupdate": "false"}
    plan = bp.reconcile([other], [want])
    assert plan.recreate == [] and plan.skipped == [want]
    assert bp.reconcile_binding(None, want).operation == "create"


# ---------------------------------------------------------------- what it grants


@pytest.fixture
def cluster():
    objs = bp.desired_objects()
    crs = [o for o in objs if o["kind"] == "ClusterRole"]
    for name, rules in bp.aggregate(crs).items():
        next(o for o in crs if o["metadata"]["name"] == name)["rules"] = rules
    src = InMemoryRBACSource(objs)
    rbac = RBACAuthorizer(src)
    return src, build_authorizer("Node,RBAC", rbac=rbac)


def bind(src, ns, role, user):
    src.add({"kind": "RoleBinding", "metadata": {"name": f"{role}-{user}", "namespace": ns},
             "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": role},
             "subjects": [{"kind": "User", "apiGroup": G, "name": user}]})


def A(user, verb, ns="", group="", resource="", sub="", name="", path=""):
    if path:
        return Attributes(user, verb, path=path, is_resource_request=False)
    return Attributes(user, verb, ns, group, "v1", resource, sub, name, True, "")


async def allowed(chain, attrs):
    return (await chain.authorize(attrs))[0] is Decision.ALLOW


async def test_policy_grants(cluster):
    src, chain = cluster
    viewer = UserInfo("viewer", ("system:authenticated",))
    editor = UserInfo("editor", ("system:authenticated",))
    boss = UserInfo("boss", ("system:authenticated",))
    bind(src, "team", "view", "viewer")
    bind(src, "team", "edit", "editor")
    bind(src, "team", "admin", "boss")
    anon = UserInfo("system:anonymous", ("system:unauthenticated",))
    admin = UserInfo("kyb-admin", ("system:masters", "system:authenticated"))

    assert await allowed(chain, A(viewer, "list", "team", resource="pods"))
    assert await allowed(chain, A(viewer, "get", "team", resource="pods", sub="log", name="p"))
    assert await allowed(chain, A(viewer, "list", "team", "apps", "deployments"))
    assert not await allowed(chain, A(viewer, "list", "other", resource="pods"))
    assert not await allowed(chain, A(viewer, "get", "team", resource="secrets", name="s"))
    assert not await allowed(chain, A(viewer, "create", "team", resource="pods"))
    assert await allowed(chain, A(editor, "get", "team", resource="secrets", name="s"))
    assert await allowed(chain, A(editor, "create", "team", "apps", "deployments"))
    assert await allowed(chain, A(editor, "create", "team", resource="pods", sub="exec", name="p"))
    assert not await allowed(chain, A(editor, "create", "team", G, "rolebindings"))
    assert await allowed(chain, A(boss, "create", "team", G, "rolebindings"))
    assert not await allowed(chain, A(boss, "update", "team", resource="resourcequotas", name="q"))
    assert not await allowed(chain, A(boss, "list", "", resource="nodes"))

    assert await allowed(chain, A(viewer, "get", path="/apis/apps/v1"))
    assert await allowed(chain, A(viewer, "create", "", "authorization.k8s.io", "selfsubjectaccessreviews"))
    assert await allowed(chain, A(viewer, "create", "", "authentication.k8s.io", "selfsubjectreviews"))
    assert await allowed(chain, A(anon, "get", path="/readyz"))
    assert await allowed(chain, A(anon, "get", path="/version"))
    assert not await allowed(chain, A(anon, "get", path="/api"))
    assert not await allowed(chain, A(anon, "list", "default", resource="pods"))
    assert await allowed(chain, A(admin, "delete", "", resource="nodes", name="n"))

    sched = UserInfo("system:kube-scheduler", ("system:authenticated",))
    assert await allowed(chain, A(sched, "create", "ns", resource="pods", sub="binding", name="p"))
    assert await allowed(chain, A(sched, "update", "kube-system", "coordination.k8s.io", "leases", name="kube-scheduler"))
    assert not await allowed(chain, A(sched, "update", "kube-system", "coordination.k8s.io", "leases", name="other"))
    gc = UserInfo("system:serviceaccount:kube-system:generic-garbage-collector", ("system:serviceaccounts", "system:serviceaccounts:kube-system"))
    assert await allowed(chain, A(gc, "delete", "x", "apps", "replicasets", name="r"))
    d, reason = await chain.authorize(A(gc, "create", "x", "apps", "replicasets"))
    assert d is Decision.NO_OPINION and reason == ""
    sa = UserInfo("system:serviceaccount:default:x", ("system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"))
    assert await allowed(chain, A(sa, "get", path="/openid/v1/jwks"))
    # nodes get nothing from RBAC (the Node authorizer decides)
    node = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
    assert not await allowed(chain, A(node, "get", "ns", resource="secrets", name="s"))


def test_reconcile_plan_sorts_updates():
    desired = bp.desired_objects()
    existing = copy.deepcopy(desired)
    for o in existing:
        if o["metadata"]["name"] == "system:basic-user" and o["kind"] == "ClusterRole":
            o["rules"] = []
        if o["metadata"]["name"] == "system:discovery" and o["kind"] == "ClusterRoleBinding":
            o["subjects"] = []
    plan = bp.reconcile(existing, desired)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in plan.update) == [
        ("ClusterRole", "system:basic-user"), ("ClusterRoleBinding", "system:discovery"),
    ]
    assert plan.create == plan.recreate == plan.skipped == []


async def test_kubelet_bootstrap_bindings(cluster):
    src, chain = cluster
    for o in bp.kubelet_bootstrap_bindings():
        assert "annotations" not in o["metadata"]
        src.add(o)
    joiner = UserInfo("system:bootstrap:abcdef", ("system:bootstrappers", "system:bootstrappers:kyb:default-node-token", "system:authenticated"))
    assert await allowed(chain, A(joiner, "create", "", "certificates.k8s.io", "certificatesigningrequests"))
    assert await allowed(chain, A(joiner, "create", "", "certificates.k8s.io", "certificatesigningrequests", "nodeclient"))
    assert not await allowed(chain, A(joiner, "list", "", resource="secrets"))
    node = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
    assert await allowed(chain, A(node, "create", "", "certificates.k8s.io", "certificatesigningrequests", "selfnodeclient"))
