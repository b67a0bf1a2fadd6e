"""Controllers record Events through events.k8s.io/v1 (kybernetes/client/events.py) and
core/v1 readers see them, since both APIs serve one stored resource: kubectl shows them
(`kubectl events`, `kubectl get events`), against a real `kyb server`."""

from __future__ import annotations

import json

from fixtures.waits import wait_until

EVENTS = ("", "v1", "events")


def deployment(name: str, replicas: int = 2) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}


async def test_deployment_and_replicaset_events(kyb, client, namespace):
    d = await client.resource("apps", "v1", "deployments").create(deployment("web"), namespace)
    events = client.resource(*EVENTS)

    async def recorded():
        items = (await events.list(namespace))["items"]
        scaled = [e for e in items if e["reason"] == "ScalingReplicaSet"]
        created = [e for e in items if e["reason"] == "SuccessfulCreate"]
        return (scaled, created) if scaled and len(created) == 2 else None

    scaled, created = await wait_until(client, [(EVENTS, namespace)], recorded, what="deployment events")
    [ev] = scaled
    assert ev["involvedObject"]["kind"] == "Deployment" and ev["involvedObject"]["uid"] == d["metadata"]["uid"]
    assert ev["reportingComponent"] == "deployment-controller"
    assert ev["reportingInstance"].startswith("deployment-controller-")
    assert ev["type"] == "Normal" and ev["action"] == "Scale" and ev["eventTime"]
    assert ev["message"].startswith("Scaled up replica set web-") and ev["message"].endswith(" from 0 to 2")
    assert all(e["involvedObject"]["kind"] == "ReplicaSet" and e["reportingComponent"] == "replicaset-controller"
               and e["message"].startswith("Created pod: web-") and e["related"]["kind"] == "Pod" for e in created)

    out = kyb.kubectl("events", "-n", namespace).stdout
    assert "ScalingReplicaSet" in out and "Deployment/web" in out and "Scaled up replica set web-" in out
    got = json.loads(kyb.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    assert {e["reason"] for e in got["items"]} >= {"ScalingReplicaSet", "SuccessfulCreate"}
    table = kyb.kubectl("get", "events", "-n", namespace, "--field-selector", "reason=SuccessfulCreate").stdout
    assert "replicaset/web-" in table.lower() and "Created pod: web-" in table


async def test_pdb_without_pods_and_without_controllers(client, namespace):
    pdbs = client.resource("policy", "v1", "poddisruptionbudgets")
    await pdbs.create({"metadata": {"name": "none"}, "spec": {"selector": {"matchLabels": {"app": "none"}},
                                                             "minAvailable": 1}}, namespace)
    # a pod controlled by something without a scale (the GC keeps it: its owner exists),
    # and a percent budget over it
    owner = await client.resource("", "v1", "configmaps").create({"metadata": {"name": "boss"}}, namespace)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "boss", "uid": owner["metadata"]["uid"], "controller": True}
    await client.resource("", "v1", "pods").create({"metadata": {"name": "stray", "labels": {"app": "stray"},
                                                                 "ownerReferences": [ref]},
                                                    "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}},
                                                   namespace)
    await pdbs.create({"metadata": {"name": "pct"}, "spec": {"selector": {"matchLabels": {"app": "stray"}},
                                                            "minAvailable": "50%"}}, namespace)
    events = client.resource(*EVENTS)

    async def recorded():
        by = {(e["involvedObject"]["name"], e["reason"]): e for e in (await events.list(namespace))["items"]}
        return by if ("none", "NoPods") in by and ("pct", "CalculateExpectedPodCountFailed") in by else None

    by = await wait_until(client, [(EVENTS, namespace)], recorded, what="disruption events")
    assert by[("none", "NoPods")]["message"] == "No matching pods found"
    assert by[("none", "NoPods")]["reportingComponent"] == "controllermanager"
    failed = by[("pct", "CalculateExpectedPodCountFailed")]
    assert failed["type"] == "Warning"
    assert failed["message"] == 'Failed to calculate the number of expected pods: found no controllers for pod "stray"'
