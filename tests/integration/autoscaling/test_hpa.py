"""The HorizontalPodAutoscaler controller on a real `kyb server` without a metrics API:
it reads the target's scale, reports the missing metrics exactly as upstream does, never
scales on guesses, and clamps into [minReplicas, maxReplicas] as upstream does without
metrics."""

from __future__ import annotations

import yaml

from fixtures.waits import wait_until

HPA = ("autoscaling", "v2", "horizontalpodautoscalers")
DEPLOY = ("apps", "v1", "deployments")
EVENTS = ("", "v1", "events")
NO_METRICS = ("unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API: "
              "the server could not find the requested resource (get pods.metrics.k8s.io)")


def deployment(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}


def hpa(name: str, target: str, lo: int, hi: int) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "minReplicas": lo, "maxReplicas": hi,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 80}}}]}}


def cond(obj: dict, ctype: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


async def events_with(client, ns: str, reasons: set[str]) -> list[dict]:
    items = (await client.resource(*EVENTS).list(ns))["items"]
    return [e for e in items if e["reason"] in reasons]


async def test_missing_metrics_are_reported_and_nothing_scales(kyb, client, namespace):
    await client.resource(*DEPLOY).create(deployment("web", 2), namespace)
    kyb.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(hpa("web", "web", 1, 5)))
    hpas = client.resource(*HPA)

    async def reported():
        h = await hpas.get("web", namespace)
        return h if cond(h, "ScalingActive").get("reason") == "FailedGetResourceMetric" else None

    h = await wait_until(client, [(HPA, namespace)], reported, what="ScalingActive=False")
    able, active = cond(h, "AbleToScale"), cond(h, "ScalingActive")
    assert (able["status"], able["reason"], able["message"]) == (
        "True", "SucceededGetScale", "the HPA controller was able to get the target's current scale")
    assert active["status"] == "False"
    assert active["message"] == f"the HPA was unable to compute the replica count: {NO_METRICS}"
    assert h["status"]["currentReplicas"] == 2 and h["status"]["desiredReplicas"] == 0
    assert h["status"]["currentMetrics"] == [{"type": ""}]
    assert "lastScaleTime" not in h["status"]
    assert (await client.resource(*DEPLOY).get("web", namespace))["spec"]["replicas"] == 2

    async def both_events():
        evs = await events_with(client, namespace, {"FailedGetResourceMetric", "FailedComputeMetricsReplicas"})
        return evs if len({e["reason"] for e in evs}) == 2 else None

    evs = await wait_until(client, [(EVENTS, namespace)], both_events, what="HPA warning events")
    by = {e["reason"]: e for e in evs}
    assert by["FailedGetResourceMetric"]["message"] == NO_METRICS
    assert by["FailedComputeMetricsReplicas"]["message"] == (
        f"invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: "
        f"failed to get cpu utilization: {NO_METRICS}")
    assert all(e["type"] == "Warning" and e["reportingComponent"] == "horizontal-pod-autoscaler" for e in evs)

    table = kyb.kubectl("get", "hpa", "web", "-n", namespace).stdout
    assert "cpu: <unknown>/80%" in table and "Deployment/web" in table
    described = kyb.kubectl("describe", "hpa", "web", "-n", namespace).stdout
    assert "FailedGetResourceMetric" in described and "SucceededGetScale" in described


async def test_clamped_into_min_max_without_metrics(kyb, client, namespace):
    await client.resource(*DEPLOY).create(deployment("small", 1), namespace)

    async def settled():  # the deployment controller's first status writes are done
        d = await client.resource(*DEPLOY).get("small", namespace)
        st = d.get("status") or {}
        return st.get("observedGeneration") == 1 and st.get("replicas") == 1 and st.get("updatedReplicas") == 1

    await wait_until(client, [(DEPLOY, namespace)], settled, what="deployment status settled")
    await client.resource(*HPA).create(hpa("small", "small", 3, 5), namespace)

    async def scaled():
        d = await client.resource(*DEPLOY).get("small", namespace)
        return d if d["spec"]["replicas"] == 3 else None

    await wait_until(client, [(DEPLOY, namespace)], scaled, what="clamp to minReplicas")

    async def recorded():
        h = await client.resource(*HPA).get("small", namespace)
        return h if cond(h, "AbleToScale").get("reason") == "SucceededRescale" else None

    h = await wait_until(client, [(HPA, namespace)], recorded, what="SucceededRescale")
    assert cond(h, "AbleToScale")["message"] == "the HPA controller was able to update the target scale to 3"
    assert h["status"]["desiredReplicas"] == 3 and h["status"]["lastScaleTime"]
    # the recorder writes events in the background: wait for it like any other watcher
    async def rescale_event():
        return await events_with(client, namespace, {"SuccessfulRescale"}) or None

    [ev] = await wait_until(client, [(EVENTS, namespace)], rescale_event, what="SuccessfulRescale event")
    assert ev["message"] == "New size: 3; reason: Current number of replicas below Spec.MinReplicas"


async def test_missing_target(client, namespace):
    await client.resource(*HPA).create(hpa("lost", "nope", 1, 3), namespace)

    async def failed():
        h = await client.resource(*HPA).get("lost", namespace)
        return h if cond(h, "AbleToScale").get("status") == "False" else None

    h = await wait_until(client, [(HPA, namespace)], failed, what="FailedGetScale")
    c = cond(h, "AbleToScale")
    assert c["reason"] == "FailedGetScale"
    assert c["message"] == 'the HPA controller was unable to get the target\'s current scale: deployments.apps "nope" not found'
