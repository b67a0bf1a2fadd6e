"""The Node authorizer: the graph of what each node's pods reference, and its decisions."""

from __future__ import annotations

import pytest

from kybernetes.auth.authorizer import Attributes, Decision, UserInfo, build_authorizer
from kybernetes.auth.node_authorizer import Graph, NodeAuthorizer, node_identity, pod_secret_names

N1 = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
N2 = UserInfo("system:node:n2", ("system:nodes", "system:authenticated"))


def pod(name, node="", ns="default", **spec):
    p = {"metadata": {"name": name, "namespace": ns}, "spec": dict(spec)}
    if node:
        p["spec"]["nodeName"] = node
    return p


RICH = dict(
    serviceAccountName="sa1",
    imagePullSecrets=[{"name": "pull"}],
    initContainers=[{"name": "i", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "init-env", "key": "k"}}}]}],
    containers=[{
        "name": "c",
        "envFrom": [{"secretRef": {"name": "envfrom-s"}}, {"configMapRef": {"name": "envfrom-cm"}}],
        "env": [{"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}],
    }],
    volumes=[
        {"name": "s", "secret": {"secretName": "vol-s"}},
        {"name": "c", "configMap": {"name": "vol-cm"}},
        {"name": "p", "projected": {"sources": [{"secret": {"name": "proj-s"}}, {"configMap": {"name": "proj-cm"}}]}},
        {"name": "pvc", "persistentVolumeClaim": {"claimName": "claim1"}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
        {"name": "csi", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-s"}}},
    ],
)


def attrs(user, verb, resource, name="", ns="default", group="", sub=""):
    return Attributes(user=user, verb=verb, namespace=ns, api_group=group, resource=resource, subresource=sub,
                      name=name)


def test_node_identity():
    assert node_identity(N1) == ("n1", True)
    assert node_identity(UserInfo("system:node:n1", ())) == ("", False)
    assert node_identity(UserInfo("alice", ("system:nodes",))) == ("", False)
    assert node_identity(UserInfo("system:node:", ("system:nodes",))) == ("", True)


def test_pod_references():
    p = pod("p", "n1", **RICH)
    assert pod_secret_names(p) == {"pull", "init-env", "envfrom-s", "vol-s", "proj-s", "csi-s"}


def test_graph_paths_follow_pods():
    g = Graph()
    g.set_pod(pod("p", "n1", **RICH))
    for res, name in [("secrets", "vol-s"), ("secrets", "pull"), ("secrets", "proj-s"), ("secrets", "init-env"),
                      ("configmaps", "env-cm"), ("configmaps", "proj-cm"), ("configmaps", "envfrom-cm"),
                      ("persistentvolumeclaims", "claim1"), ("persistentvolumeclaims", "p-eph"),
                      ("serviceaccounts", "sa1"), ("pods", "p")]:
        assert g.has_path("n1", res, "default", name), (res, name)
        assert not g.has_path("n2", res, "default", name), (res, name)
        assert not g.has_path("n1", res, "other", name), (res, name)
    # PV bound to the claim, and the secret the PV references
    g.set_pv({"metadata": {"name": "pv1"}, "spec": {"claimRef": {"namespace": "default", "name": "claim1"},
                                                    "csi": {"driver": "d", "nodeStageSecretRef": {"name": "pvs", "namespace": "kube-system"}}}})
    assert g.has_path("n1", "persistentvolumes", "", "pv1")
    assert g.has_path("n1", "secrets", "kube-system", "pvs")
    assert not g.has_path("n2", "persistentvolumes", "", "pv1")
    # two pods share a secret: it stays reachable until the last one goes
    g.set_pod(pod("q", "n1", volumes=[{"name": "s", "secret": {"secretName": "vol-s"}}]))
    g.delete_pod("default", "p")
    assert g.has_path("n1", "secrets", "default", "vol-s")
    assert not g.has_path("n1", "secrets", "default", "pull")
    assert not g.has_path("n1", "persistentvolumes", "", "pv1")
    g.delete_pod("default", "q")
    assert not g.has_path("n1", "secrets", "default", "vol-s")
    # an unscheduled pod grants nothing; rescheduling moves access
    g.set_pod(pod("r", "", volumes=[{"name": "s", "secret": {"secretName": "x"}}]))
    assert not g.has_path("n1", "secrets", "default", "x")
    g.set_pod(pod("r", "n2", volumes=[{"name": "s", "secret": {"secretName": "x"}}]))
    assert g.has_path("n2", "secrets", "default", "x")
    g.set_volume_attachment({"metadata": {"name": "va"}, "spec": {"nodeName": "n2"}})
    assert g.has_path("n2", "volumeattachments", "", "va") and not g.has_path("n1", "volumeattachments", "", "va")


@pytest.fixture
def authz():
    g = Graph()
    g.set_pod(pod("p", "n1", **RICH))
    return NodeAuthorizer(g)


async def test_graph_decisions(authz):
    a = authz.authorize
    assert await a(attrs(N1, "get", "secrets", "vol-s")) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "watch", "secrets", "vol-s")) == (Decision.ALLOW, "")
    assert await a(attrs(N2, "get", "secrets", "vol-s")) == (
        Decision.NO_OPINION, "no relationship found between node 'n2' and this object")
    assert await a(attrs(N1, "list", "secrets")) == (Decision.NO_OPINION, "No Object name found")
    assert await a(attrs(N1, "update", "secrets", "vol-s")) == (Decision.NO_OPINION, "can only read resources of this type")
    assert await a(attrs(N1, "get", "configmaps", "env-cm")) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "get", "persistentvolumeclaims", "claim1")) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "list", "persistentvolumeclaims", "claim1")) == (
        Decision.NO_OPINION, "can only get individual resources of this type")
    assert await a(attrs(N1, "update", "persistentvolumeclaims", "claim1", sub="status")) == (Decision.ALLOW, "")
    assert (await a(attrs(N1, "create", "serviceaccounts", "sa1", sub="token")))[0] is Decision.ALLOW
    assert await a(attrs(N2, "create", "serviceaccounts", "sa1", sub="token")) == (
        Decision.NO_OPINION, "no relationship found between node 'n2' and this object")
    assert await a(attrs(N1, "get", "serviceaccounts", "sa1")) == (
        Decision.NO_OPINION, "can only create tokens for individual service accounts")


async def test_static_and_name_checks(authz):
    a = authz.authorize
    lease = dict(group="coordination.k8s.io", ns="kube-node-lease")
    assert await a(attrs(N1, "update", "leases", "n1", **lease)) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "create", "leases", "", **lease)) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "update", "leases", "n2", **lease)) == (
        Decision.NO_OPINION, "can only access node lease with the same name as the requesting node")
    assert await a(attrs(N1, "get", "leases", "n1", group="coordination.k8s.io", ns="default")) == (
        Decision.NO_OPINION, 'can only access leases in the "kube-node-lease" system namespace')
    assert await a(attrs(N1, "get", "nodes", "n1", ns="")) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "get", "nodes", "n2", ns="")) == (
        Decision.NO_OPINION, "node 'n1' cannot read 'n2', only its own Node object")
    assert await a(attrs(N1, "patch", "nodes", "n2", ns="", sub="status")) == (Decision.ALLOW, "")  # admission narrows
    assert await a(attrs(N1, "create", "events", "")) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "list", "pods", "")) == (
        Decision.NO_OPINION, "can only list/watch pods with spec.nodeName field selector")
    assert await a(attrs(N1, "create", "pods", "")) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "update", "pods", "p", sub="status")) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "create", "certificatesigningrequests", "", ns="", group="certificates.k8s.io")) == (
        Decision.ALLOW, "")
    assert await a(attrs(N1, "delete", "nodes", "n1", ns="")) == (Decision.NO_OPINION, "")
    assert await a(attrs(N1, "create", "deployments", "", group="apps")) == (Decision.NO_OPINION, "")
    # not a node: no opinion at all
    assert await a(attrs(UserInfo("alice", ("system:authenticated",)), "get", "secrets", "vol-s")) == (
        Decision.NO_OPINION, "")
    assert await a(attrs(UserInfo("system:node:", ("system:nodes",)), "get", "secrets", "x")) == (
        Decision.NO_OPINION, 'unknown node for user "system:node:"')


async def test_in_chain_and_rules_review(authz):
    chain = build_authorizer("Node,RBAC", rbac=_NoRBAC(), node=authz)
    assert (await chain.authorize(attrs(N1, "get", "secrets", "vol-s")))[0] is Decision.ALLOW
    assert (await chain.authorize(attrs(N2, "get", "secrets", "vol-s")))[0] is Decision.NO_OPINION
    r = await authz.rules_for(N1, "default")
    assert r.incomplete and r.evaluation_error == "node authorizer does not support user rule resolution"


class _NoRBAC:
    async def authorize(self, attrs):
        return Decision.NO_OPINION, ""


def sel_attrs(user, verb, resource, *, fields="", labels="", name="", ns=""):
    from kybernetes.auth.authorizer import attributes_from_dict

    return attributes_from_dict(user, {"resource_request": True, "verb": verb, "namespace": ns, "group": "",
                                       "version": "v1", "resource": resource, "subresource": "", "name": name,
                                       "field_selector": fields, "label_selector": labels})


async def test_pods_list_watch_need_own_node_field_selector(authz):
    a = authz.authorize
    for verb in ("list", "watch"):
        assert await a(sel_attrs(N1, verb, "pods", fields="spec.nodeName=n1")) == (Decision.ALLOW, "")
        assert await a(sel_attrs(N1, verb, "pods", fields="spec.nodeName==n1,status.phase=Running")) == (
            Decision.ALLOW, "")
        for bad in ("spec.nodeName=n2", "spec.nodeName!=n1", "", "status.phase=Running"):
            assert await a(sel_attrs(N1, verb, "pods", fields=bad, ns="default")) == (
                Decision.NO_OPINION, "can only list/watch pods with spec.nodeName field selector"), bad
        # a label selector does not narrow to the node
        assert (await a(sel_attrs(N1, verb, "pods", labels="app=x")))[0] is Decision.NO_OPINION
    # a named list/watch (metadata.name field selector) is allowed for a pod bound to the node
    assert await a(sel_attrs(N1, "watch", "pods", name="p", ns="default")) == (Decision.ALLOW, "")
    assert await a(sel_attrs(N2, "watch", "pods", name="p", ns="default")) == (
        Decision.NO_OPINION, "no relationship found between node 'n2' and this object")
    assert await a(attrs(N1, "get", "pods", "p")) == (Decision.ALLOW, "")
    assert await a(attrs(N2, "get", "pods", "p")) == (
        Decision.NO_OPINION, "no relationship found between node 'n2' and this object")
    assert await a(attrs(N1, "update", "pods", "p")) == (Decision.NO_OPINION, "")
    assert await a(attrs(N1, "create", "pods", "p", sub="eviction")) == (Decision.ALLOW, "")
    assert await a(attrs(N1, "deletecollection", "pods", "")) == (Decision.NO_OPINION, "")
    # an unparsable selector grants nothing
    bad = sel_attrs(N1, "list", "pods", fields="spec.nodeName")
    assert bad.field_selector == () and bad.field_selector_error
    assert (await a(bad))[0] is Decision.NO_OPINION


async def test_nodes_read_only_themselves(authz):
    a = authz.authorize
    for verb in ("get", "list", "watch"):
        assert await a(sel_attrs(N1, verb, "nodes", name="n1")) == (Decision.ALLOW, "")
        assert await a(sel_attrs(N1, verb, "nodes", name="n2")) == (
            Decision.NO_OPINION, "node 'n1' cannot read 'n2', only its own Node object")
    for verb in ("list", "watch"):
        assert await a(sel_attrs(N1, verb, "nodes")) == (
            Decision.NO_OPINION, "node 'n1' cannot read all nodes, only its own Node object")
    assert await a(sel_attrs(N1, "create", "nodes")) == (Decision.ALLOW, "")  # NodeRestriction narrows


def test_request_info_names_and_selectors():
    from kybernetes.apiserver.requestinfo import parse

    i = parse("GET", "/api/v1/nodes", {"fieldSelector": "metadata.name=n1"})
    assert (i.verb, i.name, i.field_selector) == ("list", "n1", "metadata.name=n1")
    i = parse("GET", "/api/v1/nodes", {"fieldSelector": "metadata.name=n1", "watch": "true"})
    assert (i.verb, i.name) == ("watch", "n1")
    i = parse("GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName=n1", "labelSelector": "a=b"})
    assert (i.verb, i.name, i.field_selector, i.label_selector) == ("list", "", "spec.nodeName=n1", "a=b")
    assert parse("GET", "/api/v1/nodes", {"fieldSelector": "metadata.name!=n1"}).name == ""
    assert parse("GET", "/api/v1/nodes", {"fieldSelector": "metadata.name=a/b"}).name == ""  # not a path segment
    assert parse("GET", "/api/v1/nodes/n1", {"fieldSelector": "x=y"}).field_selector == ""  # a get has none
    assert parse("DELETE", "/api/v1/namespaces/d/pods", {"labelSelector": "a"}).label_selector == "a"


async def test_subject_access_review_with_selectors(authz):
    from kybernetes.auth.authorizer import attributes_from_subject_access_review as from_sar

    def sar(**ra):
        return from_sar({"user": "system:node:n1", "groups": ["system:nodes"],
                         "resourceAttributes": {"verb": "list", "resource": "pods", **ra}})

    assert (await authz.authorize(sar(fieldSelector={"rawSelector": "spec.nodeName=n1"})))[0] is Decision.ALLOW
    req = {"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["n1"]}]}
    assert (await authz.authorize(sar(fieldSelector=req)))[0] is Decision.ALLOW
    notin = {"requirements": [{"key": "spec.nodeName", "operator": "NotIn", "values": ["n1"]}]}
    assert (await authz.authorize(sar(fieldSelector=notin)))[0] is Decision.NO_OPINION
    a = sar(fieldSelector={"requirements": [{"key": "spec.nodeName", "operator": "In", "values": ["n1", "n2"]},
                                             {"key": "x", "operator": "Exists"}]})
    assert a.field_selector == ()
    assert a.field_selector_error == "[fieldSelectors do not yet support multiple values, fieldSelectors do not yet support Exists]"
    lab = sar(labelSelector={"requirements": [{"key": "app", "operator": "In", "values": ["web"]},
                                              {"key": "tier", "operator": "Bogus"}]})
    assert [(r.key, r.operator, r.values) for r in lab.label_selector] == [("app", "in", ("web",))]
    assert lab.label_selector_error == '"Bogus" is not a valid label selector operator'
