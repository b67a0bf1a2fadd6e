"""The Node authorizer and NodeRestriction against a real `kyb server`, with two node
identities (client certificates system:node:n1 / system:node:n2 in system:nodes)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from fixtures.server import start_server
from kybernetes.auth.pki import issue_client_cert, load_ca


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data = tmp_path_factory.mktemp("nodeauth")
    srv = start_server(data, extra=("--disable-controllers", "--disable-scheduler"))
    try:
        ca = load_ca(data)
        ctxs = {}
        for n in ("n1", "n2"):
            cert, key = issue_client_cert(ca, f"system:node:{n}", ["system:nodes"], 1)
            (data / f"{n}.crt").write_bytes(cert)
            (data / f"{n}.key").write_bytes(key)
            ctx = ssl.create_default_context(cafile=str(data / "tls" / "ca.crt"))
            ctx.load_cert_chain(str(data / f"{n}.crt"), str(data / f"{n}.key"))
            ctxs[n] = ctx
        ctxs["admin"] = srv.ssl_context()
        yield srv, ctxs
    finally:
        srv.stop()


def call(srv, ctx, method, path, body=None, ctype="application/json"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(srv.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def ok(res):
    code, body = res
    assert code in (200, 201), body
    return body


def denied(res, code=403):
    c, body = res
    assert c == code, body
    return body["message"]


def pod(name, node, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}], **spec}}


def test_secret_follows_pod_binding(cluster):
    srv, c = cluster
    a, n1, n2 = c["admin"], c["n1"], c["n2"]
    ok(call(srv, a, "POST", "/api/v1/namespaces/default/secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}, "data": {"k": "dg=="}}))
    ok(call(srv, a, "POST", "/api/v1/namespaces/default/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"}, "data": {"k": "v"}}))
    path = "/api/v1/namespaces/default/secrets/s1"
    assert denied(call(srv, n1, "GET", path)) == (
        'secrets "s1" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the '
        "namespace \"default\": no relationship found between node 'n1' and this object")
    # bind a pod referencing it to n1: readable by n1 immediately, never by n2
    ok(call(srv, a, "POST", "/api/v1/namespaces/default/pods", pod(
        "p1", "n1", volumes=[{"name": "s", "secret": {"secretName": "s1"}}],
        containers=[{"name": "c", "image": "busybox", "envFrom": [{"configMapRef": {"name": "cm1"}}]}])))
    assert ok(call(srv, n1, "GET", path))["data"] == {"k": "dg=="}
    assert ok(call(srv, n1, "GET", "/api/v1/namespaces/default/configmaps/cm1"))["data"] == {"k": "v"}
    denied(call(srv, n2, "GET", path))
    denied(call(srv, n2, "GET", "/api/v1/namespaces/default/configmaps/cm1"))
    # a node may not list all secrets, nor write one
    denied(call(srv, n1, "GET", "/api/v1/namespaces/default/secrets"))
    denied(call(srv, n1, "PUT", path, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}}))
    # n2 may not delete n1's pod; n1 may, and then loses the secret at once
    assert denied(call(srv, n2, "DELETE", "/api/v1/namespaces/default/pods/p1")) == (
        'pods "p1" is forbidden: node "n2" can only delete pods with spec.nodeName set to itself')
    ok(call(srv, n1, "DELETE", "/api/v1/namespaces/default/pods/p1",
            {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}))
    # the pod may linger with a deletionTimestamp; force it out as admin if so
    code, _ = call(srv, a, "GET", "/api/v1/namespaces/default/pods/p1")
    if code == 200:
        ok(call(srv, a, "DELETE", "/api/v1/namespaces/default/pods/p1",
                {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}))
    assert call(srv, a, "GET", "/api/v1/namespaces/default/pods/p1")[0] == 404
    denied(call(srv, n1, "GET", path))


def test_nodes_leases_events_csrs(cluster):
    srv, c = cluster
    a, n1, n2 = c["admin"], c["n1"], c["n2"]
    ok(call(srv, n1, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                               "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}))
    assert denied(call(srv, n1, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                          "metadata": {"name": "n3"}})) == (
        'nodes "n3" is forbidden: node "n1" is not allowed to modify node "n3"')
    assert "is not allowed to set the following labels: node-restriction.kubernetes.io/pool" in denied(call(
        srv, n2, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": "n2", "labels": {"node-restriction.kubernetes.io/pool": "x"}}}))
    ok(call(srv, a, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}}))
    ok(call(srv, n1, "GET", "/api/v1/nodes/n1"))
    assert denied(call(srv, n1, "GET", "/api/v1/nodes/n2")).endswith(
        "node 'n1' cannot read 'n2', only its own Node object")
    merge = "application/merge-patch+json"
    ok(call(srv, n1, "PATCH", "/api/v1/nodes/n1/status",
            {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, merge))
    ok(call(srv, n1, "PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {"kubernetes.io/arch": "amd64"}}}, merge))
    assert denied(call(srv, n2, "PATCH", "/api/v1/nodes/n1/status", {"status": {}}, merge)) == (
        'nodes "n1" is forbidden: node "n2" is not allowed to modify node "n1"')
    assert denied(call(srv, n1, "PATCH", "/api/v1/nodes/n1",
                       {"metadata": {"labels": {"node-restriction.kubernetes.io/pool": "a"}}}, merge)) == (
        'nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool')
    assert denied(call(srv, n1, "PATCH", "/api/v1/nodes/n1",
                       {"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}, merge)).endswith(
        'node "n1" is not allowed to modify taints')
    denied(call(srv, n1, "DELETE", "/api/v1/nodes/n1"))
    # leases: own name in kube-node-lease only
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    ok(call(srv, n1, "POST", lease, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                     "metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}}))
    ok(call(srv, n1, "GET", lease + "/n1"))
    assert denied(call(srv, n2, "GET", lease + "/n1")).endswith(
        "can only access node lease with the same name as the requesting node")
    assert denied(call(srv, n2, "POST", lease, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                                "metadata": {"name": "n1"}})).endswith(
        "can only access node lease with the same name as the requesting node")
    # events: static node rules; other resources: no opinion, so RBAC decides (forbidden)
    ok(call(srv, n1, "POST", "/api/v1/namespaces/default/events", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Node", "name": "n1"}, "reason": "Starting", "message": "m", "type": "Normal"}))
    denied(call(srv, n1, "GET", "/apis/apps/v1/namespaces/default/deployments"))


def test_pods_mirror_status_tokens(cluster):
    srv, c = cluster
    a, n1, n2 = c["admin"], c["n1"], c["n2"]
    for n in ("n1", "n2"):
        if call(srv, a, "GET", f"/api/v1/nodes/{n}")[0] == 404:
            ok(call(srv, a, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}))
    uid = ok(call(srv, a, "GET", "/api/v1/nodes/n1"))["metadata"]["uid"]
    pods = "/api/v1/namespaces/default/pods"
    mirror = pod("static-n1", "n1")
    mirror["metadata"].update(annotations={"kubernetes.io/config.mirror": "h"}, ownerReferences=[
        {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": uid, "controller": True}])
    ok(call(srv, n1, "POST", pods, mirror))
    assert denied(call(srv, n1, "POST", pods, pod("plain", "n1"))).endswith(
        'pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods')
    other = json.loads(json.dumps(mirror))
    other["metadata"]["name"] = "static-x"
    other["spec"]["nodeName"] = "n2"
    assert denied(call(srv, n1, "POST", pods, other)).endswith(
        'node "n1" can only create pods with spec.nodeName set to itself')
    sec = json.loads(json.dumps(mirror))
    sec["metadata"]["name"] = "static-s"
    sec["spec"]["volumes"] = [{"name": "s", "secret": {"secretName": "s1"}}]
    # (the ServiceAccount admission plugin, when installed, refuses this first, as upstream)
    assert denied(call(srv, n1, "POST", pods, sec)).endswith((
        'node "n1" can not create pods that reference secrets', "a mirror pod may not reference secrets"))
    # status updates of own pods only
    ok(call(srv, a, "POST", pods, pod("work", "n2", serviceAccountName="default")))
    merge = "application/merge-patch+json"
    ok(call(srv, n2, "PATCH", pods + "/work/status", {"status": {"phase": "Running"}}, merge))
    assert denied(call(srv, n1, "PATCH", pods + "/work/status", {"status": {"phase": "Failed"}}, merge)).endswith(
        'node "n1" can only update pod status for pods with spec.nodeName set to itself')
    ok(call(srv, n2, "GET", pods + "/work"))
    # 1.37 (AuthorizeNodeWithSelectors): a node reads only pods bound to it
    assert denied(call(srv, n1, "GET", pods + "/work")).endswith(
        "no relationship found between node 'n1' and this object")
    # TokenRequest: only for service accounts of the node's pods
    tr = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"audiences": []}}
    code, _ = call(srv, n2, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token", tr)
    assert code != 403
    assert denied(call(srv, n1, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token", tr)).endswith(
        "no relationship found between node 'n1' and this object")
    # deletes: own pods only
    denied(call(srv, n1, "DELETE", pods + "/work"))
    ok(call(srv, n2, "DELETE", pods + "/work"))


def test_list_watch_narrowed_by_selectors(cluster):
    """1.37's selector-aware Node authorizer: a node lists/watches pods only with
    spec.nodeName=<itself> and nodes only with metadata.name=<itself>."""
    srv, c = cluster
    a, n1, n2 = c["admin"], c["n1"], c["n2"]
    ok(call(srv, a, "POST", "/api/v1/namespaces/default/pods", pod("sel-1", "n1")))
    ok(call(srv, a, "POST", "/api/v1/namespaces/default/pods", pod("sel-2", "n2")))
    try:
        mine = ok(call(srv, n1, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1"))
        names = {p["metadata"]["name"] for p in mine["items"]}
        assert "sel-1" in names and "sel-2" not in names
        ok(call(srv, n1, "GET", "/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3Dn1"))
        msg = ('pods is forbidden: User "system:node:n1" cannot list resource "pods" in API group "" at the '
               "cluster scope: can only list/watch pods with spec.nodeName field selector")
        assert denied(call(srv, n1, "GET", "/api/v1/pods")) == msg
        assert denied(call(srv, n1, "GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn2")) == msg
        assert denied(call(srv, n1, "GET", "/api/v1/pods?labelSelector=app%3Dx")) == msg
        assert denied(call(srv, n1, "GET", "/api/v1/pods?watch=true")).startswith(
            'pods is forbidden: User "system:node:n1" cannot watch resource "pods"')
        # a watch narrowed to the node is served (read the first event, then let go)
        req = urllib.request.Request(srv.url + "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1")
        with urllib.request.urlopen(req, context=n1, timeout=10) as r:
            assert r.status == 200
            first = json.loads(r.readline())
            assert first["type"] == "ADDED" and first["object"]["spec"]["nodeName"] == "n1"
        # one pod by name: only the node it is bound to
        ok(call(srv, n1, "GET", "/api/v1/namespaces/default/pods/sel-1"))
        assert denied(call(srv, n1, "GET", "/api/v1/namespaces/default/pods/sel-2")).endswith(
            "no relationship found between node 'n1' and this object")
        ok(call(srv, n1, "GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dsel-1"))
        assert denied(call(srv, n1, "GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dsel-2")) == (
            'pods "sel-2" is forbidden: User "system:node:n1" cannot list resource "pods" in API group "" in the '
            "namespace \"default\": no relationship found between node 'n1' and this object")
        # nodes: only itself, by URL or by metadata.name
        for n in ("n1", "n2"):
            if call(srv, a, "GET", f"/api/v1/nodes/{n}")[0] == 404:
                ok(call(srv, a, "POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}))
        got = ok(call(srv, n1, "GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dn1"))
        assert [x["metadata"]["name"] for x in got["items"]] == ["n1"]
        assert denied(call(srv, n1, "GET", "/api/v1/nodes")) == (
            'nodes is forbidden: User "system:node:n1" cannot list resource "nodes" in API group "" at the cluster '
            "scope: node 'n1' cannot read all nodes, only its own Node object")
        assert denied(call(srv, n1, "GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dn2")) == (
            'nodes "n2" is forbidden: User "system:node:n1" cannot list resource "nodes" in API group "" at the '
            "cluster scope: node 'n1' cannot read 'n2', only its own Node object")
        assert denied(call(srv, n1, "GET", "/api/v1/nodes?watch=1&fieldSelector=metadata.name%3Dn2")).startswith(
            'nodes "n2" is forbidden: User "system:node:n1" cannot watch resource "nodes"')
    finally:
        for p in ("sel-1", "sel-2"):
            call(srv, a, "DELETE", f"/api/v1/namespaces/default/pods/{p}",
                 {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})


def test_eviction_only_of_own_pods(cluster):
    """NodeRestriction on pods/eviction: a node evicts pods bound to itself, is
    forbidden for another node's pods (upstream wording), and gets 404 for none."""
    srv, c = cluster
    a, n1, n2 = c["admin"], c["n1"], c["n2"]
    ok(call(srv, a, "POST", "/api/v1/namespaces/default/pods", pod("ev-1", "n1")))
    ok(call(srv, a, "POST", "/api/v1/namespaces/default/pods", pod("ev-2", "n2")))

    def evict(ctx, name, body_name=None):
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": body_name if body_name is not None else name, "namespace": "default"},
                "deleteOptions": {"gracePeriodSeconds": 0}}
        return call(srv, ctx, "POST", f"/api/v1/namespaces/default/pods/{name}/eviction", body)

    try:
        assert denied(evict(n1, "ev-2")) == (
            'pods "ev-2" is forbidden: node n1 can only evict pods with spec.nodeName set to itself')
        ok(call(srv, a, "GET", "/api/v1/namespaces/default/pods/ev-2"))  # untouched
        code, body = evict(n1, "ev-1")
        assert code == 201 and body["status"] == "Success", body
        code, got = call(srv, a, "GET", "/api/v1/namespaces/default/pods/ev-1")
        assert code == 404 or got["metadata"].get("deletionTimestamp"), got
        c404, body = evict(n1, "ev-missing")
        assert c404 == 404 and body["message"] == 'pods "ev-missing" not found', body
        ok(evict(n2, "ev-2"))
    finally:
        for p in ("ev-1", "ev-2"):
            call(srv, a, "DELETE", f"/api/v1/namespaces/default/pods/{p}",
                 {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
