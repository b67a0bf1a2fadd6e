"""kybernetes.auth.rbac: rule matching, subjects, bindings, reasons, indexes, sources."""

import pytest

from kybernetes.auth import rbac
from kybernetes.auth.authorizer import Attributes, Decision, UserInfo
from kybernetes.auth.rbac import InMemoryRBACSource, RBACAuthorizer, RoleRefError, rule_allows

G = "rbac.authorization.k8s.io"
ALICE = UserInfo("alice", ("dev", "system:authenticated"))
BOB = UserInfo("bob", ("system:authenticated",))
SA = UserInfo("system:serviceaccount:ns1:builder", ("system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"))


def res(verb, ns="", group="", resource="pods", sub="", name="", user=ALICE):
    return Attributes(user, verb, ns, group, "v1", resource, sub, name, True, "")


def url(path, verb="get", user=ALICE):
    return Attributes(user, verb, path=path, is_resource_request=False)


def cr(name, *rules, labels=None):
    md = {"name": name}
    if labels:
        md["labels"] = labels
    return {"kind": "ClusterRole", "metadata": md, "rules": list(rules)}


def role(ns, name, *rules):
    return {"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": list(rules)}


def crb(name, role_name, *subjects, kind="ClusterRole"):
    return {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": G, "kind": kind, "name": role_name},
        "subjects": list(subjects),
    }


def rb(ns, name, role_name, *subjects, kind="Role"):
    return {
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": G, "kind": kind, "name": role_name},
        "subjects": list(subjects),
    }


def user(n):
    return {"kind": "User", "apiGroup": G, "name": n}


def group(n):
    return {"kind": "Group", "apiGroup": G, "name": n}


def sa(name, ns=None):
    s = {"kind": "ServiceAccount", "name": name}
    if ns:
        s["namespace"] = ns
    return s


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


# ---------------------------------------------------------------- rule matching


@pytest.mark.parametrize(
    "rule,attrs,want",
    [
        (R(["get"], resources=["pods"]), res("get", resource="pods"), True),
        (R(["get"], resources=["pods"]), res("list", resource="pods"), False),
        (R(["*"], resources=["pods"]), res("deletecollection", resource="pods"), True),
        (R(["get"], groups=["apps"], resources=["pods"]), res("get", resource="pods"), False),
        (R(["get"], groups=["*"], resources=["deployments"]), res("get", group="apps", resource="deployments"), True),
        (R(["get"], resources=["*"]), res("get", resource="pods", sub="log"), True),
        (R(["get"], resources=["pods"]), res("get", resource="pods", sub="log"), False),
        (R(["get"], resources=["pods/log"]), res("get", resource="pods", sub="log"), True),
        (R(["get"], resources=["pods/log"]), res("get", resource="pods"), False),
        (R(["get"], resources=["*/scale"]), res("get", group="", resource="replicationcontrollers", sub="scale"), True),
        (R(["get"], resources=["*/scale"]), res("get", resource="deployments"), False),
        (R(["get"], resources=["*/scale"]), res("get", resource="pods", sub="status"), False),
        (R(["get"], resources=["*/sca"]), res("get", resource="pods", sub="scale"), False),
        # resourceNames restrict by name; requests without a name never match
        (R(["get"], resources=["pods"], names=["p1"]), res("get", resource="pods", name="p1"), True),
        (R(["get"], resources=["pods"], names=["p1"]), res("get", resource="pods", name="p2"), False),
        (R(["list"], resources=["pods"], names=["p1"]), res("list", resource="pods"), False),
        (R(["create"], resources=["pods"], names=["p1"]), res("create", resource="pods"), False),
        (R(["watch"], resources=["pods"], names=["p1"]), res("watch", resource="pods"), False),
        (R(["deletecollection"], resources=["pods"], names=["p1"]), res("deletecollection", resource="pods"), False),
        # non-resource URLs
        (R(["get"], urls=["/healthz"]), url("/healthz"), True),
        (R(["get"], urls=["/healthz"]), url("/healthz/etcd"), False),
        (R(["get"], urls=["/healthz*"]), url("/healthz/etcd"), True),
        (R(["get"], urls=["/healthz/*"]), url("/healthz/etcd"), True),
        (R(["get"], urls=["/healthz/*"]), url("/healthz"), False),
        (R(["get"], urls=["/api/**"]), url("/api/v1"), True),
        (R(["get"], urls=["*"]), url("/anything"), True),
        (R(["post"], urls=["*"]), url("/anything"), False),
        # kinds don't mix
        (R(["*"], urls=["*"]), res("get", resource="pods"), False),
        (R(["*"], groups=["*"], resources=["*"]), url("/api"), False),
    ],
)
def test_rule_allows(rule, attrs, want):
    assert rule_allows(attrs, rule) is want


def test_normalize_rule():
    assert rbac.normalize_rule({"verbs": ["get"], "apiGroups": None}) == {
        "verbs": ["get"], "apiGroups": [], "resources": [], "resourceNames": [], "nonResourceURLs": [],
    }


def test_service_account_names():
    assert rbac.service_account_username("ns", "n") == "system:serviceaccount:ns:n"
    assert rbac.split_service_account_username("system:serviceaccount:ns:n") == ("ns", "n")
    assert rbac.split_service_account_username("system:serviceaccount:ns") is None
    assert rbac.split_service_account_username("system:serviceaccount::n") is None
    assert rbac.split_service_account_username("alice") is None
    assert rbac.service_account_groups("ns") == ("system:serviceaccounts", "system:serviceaccounts:ns")


# ---------------------------------------------------------------- the authorizer


def make(*objs):
    src = InMemoryRBACSource(objs)
    return src, RBACAuthorizer(src)


async def test_cluster_role_binding_to_group_allows_everywhere():
    _, a = make(cr("reader", R(["get", "list"], resources=["pods"])), crb("readers", "reader", group("dev")))
    assert await a.authorize(res("list", "any")) == (
        Decision.ALLOW,
        'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "reader" to Group "dev"',
    )
    assert (await a.authorize(res("list")))[0] is Decision.ALLOW  # cluster scope too
    assert await a.authorize(res("delete", "any", name="p")) == (Decision.NO_OPINION, "")
    assert await a.authorize(res("list", "any", user=BOB)) == (Decision.NO_OPINION, "")


async def test_role_binding_applies_only_in_its_namespace():
    _, a = make(
        role("ns1", "r", R(["get"], resources=["configmaps"])),
        rb("ns1", "b", "r", user("alice")),
    )
    assert await a.authorize(res("get", "ns1", resource="configmaps", name="c")) == (
        Decision.ALLOW,
        'RBAC: allowed by RoleBinding "b/ns1" of Role "r" to User "alice"',
    )
    assert (await a.authorize(res("get", "ns2", resource="configmaps", name="c")))[0] is Decision.NO_OPINION
    assert (await a.authorize(res("get", "", resource="configmaps", name="c")))[0] is Decision.NO_OPINION


async def test_role_binding_to_cluster_role_is_namespaced():
    _, a = make(
        cr("view", R(["get", "list", "watch"], resources=["pods"])),
        rb("ns1", "viewers", "view", user("alice"), kind="ClusterRole"),
    )
    assert await a.authorize(res("list", "ns1")) == (
        Decision.ALLOW,
        'RBAC: allowed by RoleBinding "viewers/ns1" of ClusterRole "view" to User "alice"',
    )
    assert (await a.authorize(res("list", "ns2")))[0] is Decision.NO_OPINION
    assert (await a.authorize(res("list")))[0] is Decision.NO_OPINION


async def test_service_account_subjects():
    _, a = make(
        cr("c", R(["get"], resources=["secrets"])),
        rb("ns1", "implicit-ns", "c", sa("builder"), kind="ClusterRole"),
        crb("needs-ns", "c", sa("builder")),  # no namespace in a CRB: matches nothing
        crb("explicit", "c", sa("other", "ns2")),
    )
    assert await a.authorize(res("get", "ns1", resource="secrets", name="s", user=SA)) == (
        Decision.ALLOW,
        'RBAC: allowed by RoleBinding "implicit-ns/ns1" of ClusterRole "c" to ServiceAccount "builder/ns1"',
    )
    assert (await a.authorize(res("get", "ns2", resource="secrets", name="s", user=SA)))[0] is Decision.NO_OPINION
    other = UserInfo("system:serviceaccount:ns2:other", ("system:serviceaccounts",))
    assert await a.authorize(res("get", "ns9", resource="secrets", name="s", user=other)) == (
        Decision.ALLOW,
        'RBAC: allowed by ClusterRoleBinding "explicit" of ClusterRole "c" to ServiceAccount "other/ns2"',
    )


async def test_service_account_groups_are_groups():
    _, a = make(
        cr("c", R(["list"], resources=["pods"])),
        crb("all-sas", "c", group("system:serviceaccounts:ns1")),
    )
    assert await a.authorize(res("list", "x", user=SA)) == (
        Decision.ALLOW,
        'RBAC: allowed by ClusterRoleBinding "all-sas" of ClusterRole "c" to Group "system:serviceaccounts:ns1"',
    )


async def test_first_applying_subject_is_reported():
    _, a = make(
        cr("c", R(["list"], resources=["pods"])),
        crb("b", "c", user("zed"), group("system:authenticated"), user("alice")),
    )
    assert (await a.authorize(res("list")))[1].endswith('to Group "system:authenticated"')


async def test_unknown_subject_kinds_and_bad_objects_grant_nothing():
    _, a = make(
        cr("c", R(["list"], resources=["pods"])),
        crb("b", "c", {"kind": "Robot", "name": "alice"}, "junk"),
        {"kind": "RoleBinding", "metadata": {"name": "nons"}, "roleRef": {"kind": "ClusterRole", "name": "c"},
         "subjects": [user("alice")]},
    )
    assert await a.authorize(res("list", "ns")) == (Decision.NO_OPINION, "")


async def test_missing_roles_become_reasons():
    _, a = make(
        crb("b1", "missing", user("alice")),
        rb("ns1", "b2", "gone", user("alice")),
        rb("ns1", "b3", "gone", group("dev")),
        crb("b4", "weird", user("alice"), kind="Policy"),
    )
    d, reason = await a.authorize(res("get", "ns1", name="p"))
    assert d is Decision.NO_OPINION
    assert reason == (
        'RBAC: [clusterrole.rbac.authorization.k8s.io "missing" not found, '
        'unsupported role reference kind: "Policy", role.rbac.authorization.k8s.io "gone" not found]'
    )
    d, reason = await a.authorize(res("get", "", name="p"))
    assert reason == 'RBAC: [clusterrole.rbac.authorization.k8s.io "missing" not found, unsupported role reference kind: "Policy"]'
    _, a = make(crb("b1", "missing", user("alice")))
    assert await a.authorize(res("get")) == (Decision.NO_OPINION, 'RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found')


async def test_allowed_despite_errors():
    _, a = make(
        crb("a-broken", "missing", user("alice")),
        cr("ok", R(["get"], resources=["pods"])),
        crb("b-ok", "ok", user("alice")),
    )
    assert await a.authorize(res("get", name="p")) == (
        Decision.ALLOW, 'RBAC: allowed by ClusterRoleBinding "b-ok" of ClusterRole "ok" to User "alice"',
    )


async def test_non_resource_urls():
    _, a = make(
        cr("d", R(["get"], urls=["/api", "/api/*", "/healthz"])),
        crb("d", "d", group("system:authenticated")),
    )
    assert (await a.authorize(url("/api/v1")))[0] is Decision.ALLOW
    assert (await a.authorize(url("/metrics")))[0] is Decision.NO_OPINION
    assert (await a.authorize(url("/api", "post")))[0] is Decision.NO_OPINION


async def test_no_user_no_opinion():
    _, a = make()
    assert await a.authorize(Attributes(None, "get")) == (Decision.NO_OPINION, "")


async def test_indexes_rebuild_only_when_revision_moves():
    src, a = make(cr("c", R(["get"], resources=["pods"])), crb("b", "c", user("alice")))
    for _ in range(5):
        assert (await a.authorize(res("get", name="p")))[0] is Decision.ALLOW
    assert a.rebuilds == 1
    src.remove("ClusterRoleBinding", "b")
    assert (await a.authorize(res("get", name="p")))[0] is Decision.NO_OPINION
    assert a.rebuilds == 2
    src.add(crb("b", "c", user("alice")))
    assert (await a.authorize(res("get", name="p")))[0] is Decision.ALLOW
    # role rules change: the memo of applicable rules must not survive
    src.add(cr("c", R(["list"], resources=["pods"])))
    assert (await a.authorize(res("get", name="p")))[0] is Decision.NO_OPINION
    assert (await a.authorize(res("list")))[0] is Decision.ALLOW
    a.invalidate()
    assert (await a.authorize(res("list")))[0] is Decision.ALLOW
    assert a.rebuilds == 5


async def test_memo_is_bounded():
    src = InMemoryRBACSource([cr("c", R(["get"], resources=["pods"])), crb("b", "c", group("g"))])
    a = RBACAuthorizer(src, memo_size=2)
    for i in range(5):
        u = UserInfo(f"u{i}", ("g",))
        assert (await a.authorize(res("get", name="p", user=u)))[0] is Decision.ALLOW
    assert len(a._memo) == 2
    # hit path
    assert (await a.authorize(res("get", name="p", user=UserInfo("u4", ("g",)))))[0] is Decision.ALLOW


async def test_async_revision_source():
    class AsyncRev(InMemoryRBACSource):
        async def revision(self):  # type: ignore[override]
            return self._rev

    src = AsyncRev([cr("c", R(["get"], resources=["pods"])), crb("b", "c", user("alice"))])
    a = RBACAuthorizer(src)
    assert (await a.authorize(res("get", name="p")))[0] is Decision.ALLOW
    assert (await a.authorize(res("get", name="p")))[0] is Decision.ALLOW
    assert a.rebuilds == 1


def test_in_memory_source_rejects_other_kinds():
    with pytest.raises(ValueError):
        InMemoryRBACSource([{"kind": "Pod", "metadata": {"name": "x"}}])


async def test_rules_for():
    _, a = make(
        cr("c", R(["get"], resources=["pods"], names=["p"]), R(["get"], urls=["/healthz"])),
        role("ns1", "r", R(["list"], groups=["apps"], resources=["deployments"])),
        crb("b", "c", user("alice")),
        rb("ns1", "rb", "r", user("alice")),
        rb("ns1", "broken", "nope", user("alice")),
    )
    out = await a.rules_for(ALICE, "ns1")
    assert out.resource_rules == [
        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["p"]},
        {"verbs": ["list"], "apiGroups": ["apps"], "resources": ["deployments"]},
    ]
    assert out.non_resource_rules == [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]
    assert out.incomplete is False
    assert out.evaluation_error == 'role.rbac.authorization.k8s.io "nope" not found'
    rules, errors = await a.rules_for_user(ALICE, "")
    assert len(rules) == 2 and errors == []


async def test_role_ref_rules():
    _, a = make(cr("c", R(["get"], resources=["pods"])), role("ns", "r", R(["list"], resources=["pods"])))
    assert (await a.role_ref_rules({"kind": "ClusterRole", "name": "c"}, ""))[0]["verbs"] == ["get"]
    assert (await a.role_ref_rules({"kind": "Role", "name": "r"}, "ns"))[0]["verbs"] == ["list"]
    with pytest.raises(RoleRefError) as e:
        await a.role_ref_rules({"kind": "Role", "name": "r"}, "other")
    assert e.value.not_found and e.value.storage_message() == 'roles.rbac.authorization.k8s.io "r" not found'
    assert str(e.value) == 'role.rbac.authorization.k8s.io "r" not found'
    with pytest.raises(RoleRefError) as e:
        await a.role_ref_rules({"kind": "Thing", "name": "r"}, "")
    assert not e.value.not_found and e.value.storage_message() == 'unsupported role reference kind: "Thing"'


def test_describe_subjects():
    assert rbac.describe_subjects([user("u"), group("g"), sa("s", "ns"), {"kind": "X", "name": "n"}]) == (
        ["u"], ["g"], ["ns/s"], ["X//n"],
    )


# ---------------------------------------------------------------- watch-cache source


class KV:
    def __init__(self, key, obj, rev):
        self.key, self.value, self.mod_revision = key, obj, rev


class FakeList:
    def __init__(self, items):
        self.items = items


class FakeCache:
    def __init__(self):
        self.items = {}
        self.revision = 0
        self.lists = 0

    def put(self, key, obj, rev):
        self.items[key] = KV(key, obj, rev)
        self.revision = rev

    def delete(self, key, rev):
        self.items.pop(key)
        self.revision = rev

    def list(self):
        self.lists += 1
        return FakeList(sorted(self.items.values(), key=lambda kv: kv.key))


async def test_watch_cache_source():
    caches = {k: FakeCache() for k in rbac.WatchCacheRBACSource.KEYS}
    decoded = []

    def decode(kv):
        if kv.value == "garbage":
            raise ValueError("undecodable")
        decoded.append(kv.key)
        return kv.value

    src = rbac.WatchCacheRBACSource(caches, decode)
    caches["clusterroles"].put("/c/c", cr("c", R(["get"], resources=["pods"])), 1)
    caches["clusterrolebindings"].put("/b/b", crb("b", "c", user("alice")), 2)
    caches["clusterrolebindings"].put("/b/junk", "garbage", 3)
    a = RBACAuthorizer(src)
    assert (await a.authorize(res("get", name="p")))[0] is Decision.ALLOW
    n = len(decoded)
    # progress without content change: fingerprint unchanged, nothing rebuilt or decoded
    caches["clusterroles"].revision = 10
    assert (await a.authorize(res("get", name="p")))[0] is Decision.ALLOW
    assert a.rebuilds == 1 and len(decoded) == n
    caches["clusterrolebindings"].delete("/b/b", 11)
    assert (await a.authorize(res("get", name="p")))[0] is Decision.NO_OPINION
    assert a.rebuilds == 2
    assert await src.roles() == [] and await src.role_bindings() == []
    with pytest.raises(ValueError, match="missing caches"):
        rbac.WatchCacheRBACSource({}, decode)


async def test_rbac_source_from_objects():
    class Objects:
        def __init__(self):
            self.asked = []

        async def cache(self, strategy):
            self.asked.append(strategy.resource)
            return FakeCache()

        def decode(self, kv):
            return kv.value

    objs = Objects()
    src = await rbac.rbac_source_from_objects(objs)
    assert sorted(objs.asked) == ["clusterrolebindings", "clusterroles", "rolebindings", "roles"]
    assert src.revision() == ((0, 0),) * 4
