"""NodeRestriction admission: what a node may write, with upstream's messages."""

from __future__ import annotations

import pytest

from kybernetes.admission.noderestriction import NodeRestriction, forbidden_labels
from kybernetes.apiserver.errors import APIError
from kybernetes.auth.authorizer import UserInfo

N1 = UserInfo("system:node:n1", ("system:nodes",))
ALICE = UserInfo("alice", ())

PODS = {
    ("default", "mine"): {"metadata": {"name": "mine", "uid": "u-mine"}, "spec": {"nodeName": "n1"}},
    ("default", "theirs"): {"metadata": {"name": "theirs", "uid": "u-theirs"}, "spec": {"nodeName": "n2"}},
}
NODES = {"n1": {"metadata": {"name": "n1", "uid": "node-uid-1"}}}


async def _pod(ns, name):
    return PODS.get((ns, name))


async def _node(name):
    return NODES.get(name)


@pytest.fixture
def nr():
    return NodeRestriction(_pod, _node)


def mirror(**over):
    p = {"metadata": {"name": "static", "namespace": "default",
                      "annotations": {"kubernetes.io/config.mirror": "hash"},
                      "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "node-uid-1",
                                           "controller": True}]},
         "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}
    for k, v in over.items():
        p["spec"][k] = v
    return p


async def deny(coro) -> str:
    with pytest.raises(APIError) as e:
        await coro
    assert e.value.code == 403, e.value.message
    return e.value.message


async def test_pods(nr):
    c = nr.check
    await c(N1, "CREATE", "", "pods", "", "default", "", mirror(), None)
    await c(ALICE, "CREATE", "", "pods", "", "default", "", {"metadata": {"name": "x"}, "spec": {}}, None)
    plain = mirror()
    del plain["metadata"]["annotations"]
    assert await deny(c(N1, "CREATE", "", "pods", "", "default", "", plain, None)) == (
        'pods "static" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, '
        'node "n1" can only create mirror pods')
    assert await deny(c(N1, "CREATE", "", "pods", "", "default", "", mirror(nodeName="n2"), None)) == (
        'pods "static" is forbidden: node "n1" can only create pods with spec.nodeName set to itself')
    assert (await deny(c(N1, "CREATE", "", "pods", "", "default", "", mirror(serviceAccountName="default"), None))
            ).endswith('node "n1" can not create pods that reference a service account')
    vol = [{"name": "s", "secret": {"secretName": "s"}}]
    assert (await deny(c(N1, "CREATE", "", "pods", "", "default", "", mirror(volumes=vol), None))
            ).endswith('node "n1" can not create pods that reference secrets')
    vol = [{"name": "c", "configMap": {"name": "c"}}]
    assert (await deny(c(N1, "CREATE", "", "pods", "", "default", "", mirror(volumes=vol), None))
            ).endswith('node "n1" can not create pods that reference configmaps')
    vol = [{"name": "c", "persistentVolumeClaim": {"claimName": "c"}}]
    assert (await deny(c(N1, "CREATE", "", "pods", "", "default", "", mirror(volumes=vol), None))
            ).endswith('node "n1" can not create pods that reference persistentvolumeclaims')
    bad_uid = mirror()
    bad_uid["metadata"]["ownerReferences"][0]["uid"] = "nope"
    assert (await deny(c(N1, "CREATE", "", "pods", "", "default", "", bad_uid, None))
            ).endswith("node n1 UID mismatch: expected nope got node-uid-1")
    no_owner = mirror()
    no_owner["metadata"]["ownerReferences"] = []
    assert (await deny(c(N1, "CREATE", "", "pods", "", "default", "", no_owner, None))
            ).endswith('node "n1" can only create pods with an owner reference set to itself')
    # delete: only own pods
    await c(N1, "DELETE", "", "pods", "", "default", "mine", None, PODS[("default", "mine")])
    assert await deny(c(N1, "DELETE", "", "pods", "", "default", "theirs", None, None)) == (
        'pods "theirs" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself')
    assert await deny(c(N1, "UPDATE", "", "pods", "", "default", "mine", PODS[("default", "mine")], PODS[("default", "mine")])) == (
        'pods "mine" is forbidden: unexpected operation "UPDATE", node "n1" can only create and delete mirror pods')
    # status
    old = PODS[("default", "mine")]
    await c(N1, "UPDATE", "", "pods", "status", "default", "mine", dict(old, status={"phase": "Running"}), old)
    assert await deny(c(N1, "UPDATE", "", "pods", "status", "default", "theirs", PODS[("default", "theirs")],
                        PODS[("default", "theirs")])) == (
        'pods "theirs" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself')
    relabel = {"metadata": {"name": "mine", "labels": {"a": "b"}}, "spec": {"nodeName": "n1"}}
    assert (await deny(c(N1, "UPDATE", "", "pods", "status", "default", "mine", relabel, old))
            ).endswith('node "n1" cannot update labels through pod status')
    # eviction
    await c(N1, "CREATE", "", "pods", "eviction", "default", "mine", {"metadata": {"name": "mine"}}, None)
    assert await deny(c(N1, "CREATE", "", "pods", "eviction", "default", "theirs", {"metadata": {"name": "theirs"}},
                        None)) == 'pods "theirs" is forbidden: node n1 can only evict pods with spec.nodeName set to itself'
    assert await deny(c(N1, "UPDATE", "", "pods", "log", "default", "mine", {}, {})) == (
        'pods "mine" is forbidden: unexpected pod subresource "log", only \'status\' and \'eviction\' are allowed')
    with pytest.raises(APIError) as e:
        await c(N1, "DELETE", "", "pods", "", "default", "ghost", None, None)
    assert e.value.code == 404


async def test_nodes(nr):
    c = nr.check
    node = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "example.com/x": "y"}}, "spec": {}}
    await c(N1, "CREATE", "", "nodes", "", "", "", node, None)
    await c(N1, "UPDATE", "", "nodes", "status", "", "n1", node, node)
    assert await deny(c(N1, "UPDATE", "", "nodes", "status", "", "n2", node, node)) == (
        'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"')
    labelled = {"metadata": {"name": "n1", "labels": {"node-restriction.kubernetes.io/pool": "a",
                                                      "node-role.kubernetes.io/master": ""}}, "spec": {}}
    assert await deny(c(N1, "CREATE", "", "nodes", "", "", "", labelled, None)) == (
        'nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: '
        "node-restriction.kubernetes.io/pool, node-role.kubernetes.io/master")
    assert await deny(c(N1, "UPDATE", "", "nodes", "", "", "n1", labelled, node)) == (
        'nodes "n1" is forbidden: is not allowed to modify labels: '
        "node-restriction.kubernetes.io/pool, node-role.kubernetes.io/master")
    tainted = {"metadata": node["metadata"], "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
    assert await deny(c(N1, "UPDATE", "", "nodes", "", "", "n1", node, tainted)) == (
        'nodes "n1" is forbidden: node "n1" is not allowed to modify taints')


def test_forbidden_labels():
    assert forbidden_labels({"kubernetes.io/hostname", "node.kubernetes.io/instance-type", "kubelet.kubernetes.io/x",
                             "example.com/a", "plain"}) == []
    assert forbidden_labels({"a.node-restriction.kubernetes.io/x", "k8s.io/x", "foo.kubernetes.io/y"}) == [
        "a.node-restriction.kubernetes.io/x", "foo.kubernetes.io/y", "k8s.io/x"]


async def test_leases_tokens_csinodes_pvcs(nr):
    c = nr.check
    await c(N1, "CREATE", "coordination.k8s.io", "leases", "", "kube-node-lease", "", {"metadata": {"name": "n1"}}, None)
    assert await deny(c(N1, "CREATE", "coordination.k8s.io", "leases", "", "kube-node-lease", "",
                        {"metadata": {"name": "n2"}}, None)) == (
        'leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same name as the requesting node')
    tr = {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "mine", "uid": "u-mine"}}}
    await c(N1, "CREATE", "", "serviceaccounts", "token", "default", "sa", tr, None)
    tr2 = {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "theirs", "uid": "u-theirs"}}}
    assert await deny(c(N1, "CREATE", "", "serviceaccounts", "token", "default", "sa", tr2, None)) == (
        'serviceaccounts "sa" is forbidden: node requested token bound to a pod scheduled on a different node')
    assert (await deny(c(N1, "CREATE", "", "serviceaccounts", "token", "default", "sa", {"spec": {}}, None))
            ).endswith("node requested token not bound to a pod")
    assert (await deny(c(N1, "UPDATE", "storage.k8s.io", "csinodes", "", "", "n2", {}, {}))
            ).endswith("can only access CSINode with the same name as the requesting node")
    pvc = {"metadata": {"name": "c"}, "spec": {"x": 1}, "status": {"phase": "Bound"}}
    await c(N1, "UPDATE", "", "persistentvolumeclaims", "status", "default", "c",
            dict(pvc, status={"phase": "Bound", "capacity": {"storage": "2Gi"}}), pvc)
    assert (await deny(c(N1, "UPDATE", "", "persistentvolumeclaims", "", "default", "c", pvc, pvc))
            ).endswith("may only update PVC status")
