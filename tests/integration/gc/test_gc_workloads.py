"""Cascading deletion of real workload trees (Deployment -> ReplicaSet -> Pods, made by
the server's own controllers) with real kubectl: the collector follows the owner
references those controllers set."""

from __future__ import annotations

import json

from gc_helpers import wait_gone, wait_listed
from kybernetes.client import NotFound


def deployment(name: str, replicas: int = 2) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    })


def owned_by(uid: str):
    return lambda o: any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])


async def make_tree(kyb, client, namespace, name):
    kyb.kubectl("apply", "-n", namespace, "-f", "-", input=deployment(name))
    d = await client.resource("apps", "v1", "deployments").get(name, namespace)
    rs = await wait_listed(client.resource("apps", "v1", "replicasets"), namespace, owned_by(d["metadata"]["uid"]))
    pod = await wait_listed(client.resource("", "v1", "pods"), namespace, owned_by(rs["metadata"]["uid"]))
    return d, rs, pod


async def test_kubectl_delete_deployment_collects_replicasets_and_pods(kyb, client, namespace):
    d, rs, pod = await make_tree(kyb, client, namespace, "web")
    kyb.kubectl("delete", "deployment", "web", "-n", namespace)
    await wait_gone(client.resource("apps", "v1", "replicasets"), rs["metadata"]["name"], namespace)
    await wait_gone(client.resource("", "v1", "pods"), pod["metadata"]["name"], namespace)


async def test_kubectl_delete_deployment_foreground_waits_for_the_tree(kyb, client, namespace):
    d, rs, pod = await make_tree(kyb, client, namespace, "fg")
    # kubectl waits for the deployment itself to be gone: by then its blocking
    # dependents (the ReplicaSet, and the ReplicaSet's pods) are gone too
    kyb.kubectl("delete", "deployment", "fg", "-n", namespace, "--cascade=foreground", "--timeout=60s")
    for h, name in ((client.resource("apps", "v1", "replicasets"), rs["metadata"]["name"]),
                    (client.resource("", "v1", "pods"), pod["metadata"]["name"])):
        try:
            await h.get(name, namespace)
            raise AssertionError(f"{h.resource} {name} outlived its foreground-deleted owner")
        except NotFound:
            pass


async def test_kubectl_delete_deployment_orphan_keeps_replicaset_and_pods(kyb, client, namespace):
    d, rs, pod = await make_tree(kyb, client, namespace, "orph")
    kyb.kubectl("delete", "deployment", "orph", "-n", namespace, "--cascade=orphan")
    await wait_gone(client.resource("apps", "v1", "deployments"), "orph", namespace)
    pods = client.resource("", "v1", "pods")
    kept = await pods.get(pod["metadata"]["name"], namespace)
    assert not kept["metadata"].get("deletionTimestamp")
    rsets = client.resource("apps", "v1", "replicasets")
    kept_rs = await rsets.get(rs["metadata"]["name"], namespace)
    assert not kept_rs["metadata"].get("ownerReferences")
