"""The HorizontalPodAutoscaler controller, as upstream's pkg/controller/podautoscaler, up
to the point where metrics are needed.

Every `sync_period` seconds (upstream: 15; a new HPA at once) it reads each HPA's target through the scale
subresource (AbleToScale), clamps the target into [minReplicas, maxReplicas] exactly as
upstream does without consulting metrics, and otherwise asks the metrics APIs for the
HPA's metrics.  This cluster serves no metrics API yet, so that fails the way it fails
upstream when metrics-server is absent: ScalingActive=False with FailedGetResourceMetric
(or FailedGetPodsMetric, FailedGetObjectMetric, FailedGetExternalMetric,
FailedGetContainerResourceMetric), Warning events of the same reasons and
FailedComputeMetricsReplicas, `currentMetrics` entries of empty type, and the target left
alone.  Should a metrics API answer, the replica calculation is still to be written: the
controller then leaves the target alone too and says so in the log.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from kybernetes.api.selectors import SelectorError, parse_label_selector
from kybernetes.client.discovery import APIResource, server_resources
from kybernetes.client.errors import APIStatusError, ClientError, Conflict, NotFound
from kybernetes.client.informer import object_key
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]

SYNC_PERIOD = 15.0  # upstream --horizontal-pod-autoscaler-sync-period
ABLE_TO_SCALE, SCALING_ACTIVE = "AbleToScale", "ScalingActive"

# metric type -> (condition/event reason, wording of the per-metric error)
_METRIC_FAILURES = {
    "Resource": "FailedGetResourceMetric",
    "ContainerResource": "FailedGetContainerResourceMetric",
    "Pods": "FailedGetPodsMetric",
    "Object": "FailedGetObjectMetric",
    "External": "FailedGetExternalMetric",
}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(status: Obj, ctype: str, value: str, reason: str, message: str, now: str) -> None:
    """Upstream setConditionInList: the transition time moves only when the status does."""
    conds = status.setdefault("conditions", [])
    for c in conds:
        if c.get("type") == ctype:
            if c.get("status") != value:
                c["lastTransitionTime"] = now
            c.update(status=value, reason=reason, message=message)
            return
    conds.append({"type": ctype, "status": value, "lastTransitionTime": now, "reason": reason, "message": message})


def _not_found_text(err: APIStatusError, resource: str) -> str:
    """client-go's wording of a 404 from a group the server does not serve."""
    return f"{err.message or 'the server could not find the requested resource'} (get {resource})"


class MetricsUnavailable(Exception):
    """A metric could not be read; str() is upstream's wording of the failure."""

    def __init__(self, reason: str, message: str, event: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.event = event  # what the per-metric Warning event says


class HorizontalPodAutoscalerController(Controller):
    name = "horizontalpodautoscaler"
    event_source = "horizontal-pod-autoscaler"
    workers = 2

    def __init__(self, client: Any, informers: Any = None, *, sync_period: float = SYNC_PERIOD,
                 now: Callable[[], str] = _now, **kw: Any) -> None:
        self.sync_period = sync_period
        self.now = now
        self._mappings: dict[tuple[str, str], APIResource] = {}
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.hpas = self.watch("autoscaling", "v2", "horizontalpodautoscalers", enqueue=None)
        # upstream processes each HPA once per sync period whatever happens to it (its own
        # status writes included); only a new HPA is looked at at once here
        self.hpas.add_handlers(on_add=lambda h: self.enqueue(object_key(h)),
                               on_update=lambda old, new: self.queue.add_after(object_key(new), self.sync_period))
        self.hpa_api = self.resource("autoscaling", "v2", "horizontalpodautoscalers")

    # ------------------------------------------------------------------ scale target
    async def _mapping(self, api_version: str, kind: str) -> APIResource:
        group = api_version.split("/")[0] if "/" in api_version else ""
        hit = self._mappings.get((group, kind))
        if hit is None:
            resources = await server_resources(self.client, preferred_only=True)
            self._mappings = {(r.group, r.kind): r for r in resources if "/" not in r.resource}
            hit = self._mappings.get((group, kind))
        if hit is None:
            raise LookupError(f'no matches for kind "{kind}" in group "{group}"')
        return hit

    async def _get_scale(self, ns: str, ref: Obj) -> tuple[APIResource, Obj]:
        r = await self._mapping(ref.get("apiVersion") or "", ref.get("kind") or "")
        handle = self.client.resource(r.group, r.version, r.resource)
        return r, await handle.get(ref["name"], ns, subresource="scale")

    # ------------------------------------------------------------------ metrics
    async def _metric(self, ns: str, spec: Obj, selector: str) -> None:
        """Read one metric; raises MetricsUnavailable (always, for now: no metrics API)."""
        t = spec.get("type") or ""
        reason = _METRIC_FAILURES.get(t, "FailedGetResourceMetric")
        if t in ("Resource", "ContainerResource"):
            src = spec.get("resource" if t == "Resource" else "containerResource") or {}
            name = src.get("name", "")
            try:
                await self.client.request("GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
                                          params={"labelSelector": selector})
            except NotFound as e:
                inner = (f"unable to get metrics for resource {name}: unable to fetch metrics from resource "
                         f"metrics API: {_not_found_text(e, 'pods.metrics.k8s.io')}")
            except APIStatusError as e:
                inner = (f"unable to get metrics for resource {name}: unable to fetch metrics from resource "
                         f"metrics API: {e.message or e}")
            else:
                raise NotImplementedError("replica calculation from resource metrics")
            usage = "utilization" if (src.get("target") or {}).get("averageUtilization") is not None else "usage"
            what = "resource" if t == "Resource" else "container"
            raise MetricsUnavailable(reason, f"failed to get {name} {what} metric value: failed to get {name} "
                                             f"{usage}: {inner}", inner)
        if t in ("Pods", "Object"):
            metric = ((spec.get("pods" if t == "Pods" else "object") or {}).get("metric") or {}).get("name", "")
            inner = (f"unable to get metric {metric}: unable to fetch metrics from custom metrics API: "
                     "no custom metrics API (custom.metrics.k8s.io) registered")
            raise MetricsUnavailable(reason, f"failed to get {t.lower()} metric value: {inner}", inner)
        if t == "External":
            metric = ((spec.get("external") or {}).get("metric") or {}).get("name", "")
            inner = (f"unable to get external metric {ns}/{metric}: unable to fetch metrics from external metrics "
                     "API: no external metrics API (external.metrics.k8s.io) registered")
            raise MetricsUnavailable(reason, f"failed to get external metric value: {inner}", inner)
        raise MetricsUnavailable(reason, f'unknown metric source type "{t}"', f'unknown metric source type "{t}"')

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> None:
        hpa = self.hpas.get(key)
        if hpa is None or hpa["metadata"].get("deletionTimestamp"):
            return
        await self._reconcile(hpa)
        raise Requeue(after=self.sync_period)  # upstream's fixed resync interval

    async def _reconcile(self, hpa: Obj) -> None:
        ns = hpa["metadata"]["namespace"]
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        old = copy.deepcopy(hpa.get("status") or {})
        status = copy.deepcopy(old)
        now = self.now()
        try:
            mapping, scale = await self._get_scale(ns, ref)
        except (ClientError, LookupError) as e:
            text = e.message if isinstance(e, APIStatusError) and e.message else str(e)
            set_condition(status, ABLE_TO_SCALE, "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {text}", now)
            self.recorder.event(hpa, "Warning", "FailedGetScale", text, action="GetScale")
            await self._write(hpa, old, status)
            return
        set_condition(status, ABLE_TO_SCALE, "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale", now)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        lo, hi = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 0)
        desired = int(old.get("desiredReplicas") or 0)
        metrics = old.get("currentMetrics")
        rescale_reason = ""
        if current == 0 and lo != 0:
            desired = 0
            set_condition(status, SCALING_ACTIVE, "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", now)
        elif current > hi:
            desired, rescale_reason = hi, "Current number of replicas above Spec.MaxReplicas"
        elif current < lo:
            desired, rescale_reason = lo, "Current number of replicas below Spec.MinReplicas"
        else:
            outcome = await self._from_metrics(hpa, ns, scale, status, now)
            if outcome is None:  # nothing to go on: the target stays as it is
                status.update(currentReplicas=current, desiredReplicas=desired)
                await self._write(hpa, old, status)
                return
            desired = outcome
        if rescale_reason and desired != current:
            handle = self.client.resource(mapping.group, mapping.version, mapping.resource)
            try:
                await self._update_scale(handle, ns, scale, desired)
            except APIStatusError as e:
                self.recorder.event(hpa, "Warning", "FailedRescale",
                                    f"New size: {desired}; reason: {rescale_reason}; error: {e.message or e}",
                                    action="Rescale")
                set_condition(status, ABLE_TO_SCALE, "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {e.message or e}", now)
                status.update(currentReplicas=current, desiredReplicas=desired)
                await self._write(hpa, old, status)
                return
            set_condition(status, ABLE_TO_SCALE, "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}", now)
            self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}",
                                action="Rescale")
            status["lastScaleTime"] = now
        status.update(currentReplicas=current, desiredReplicas=desired)
        if metrics is not None:
            status["currentMetrics"] = metrics
        await self._write(hpa, old, status)

    @staticmethod
    async def _update_scale(handle: Any, ns: str, scale: Obj, replicas: int) -> None:
        """Write the target's new size; a conflict with its own controller's status write
        is retried once on a fresh read (upstream would wait a sync period)."""
        for attempt in (1, 2):
            body = copy.deepcopy(scale)
            body["spec"]["replicas"] = replicas
            try:
                await handle.update(body, ns, subresource="scale")
                return
            except Conflict:
                if attempt == 2:
                    raise
                scale = await handle.get(scale["metadata"]["name"], ns, subresource="scale")

    async def _from_metrics(self, hpa: Obj, ns: str, scale: Obj, status: Obj, now: str) -> Optional[int]:
        """Upstream computeReplicasForMetrics, as far as it goes without metrics: None
        when no replica count could be computed (conditions and events recorded)."""
        selector = (scale.get("status") or {}).get("selector") or ""
        status.pop("currentMetrics", None)
        if not selector:
            self.recorder.event(hpa, "Warning", "SelectorRequired", "selector is required", action="ComputeReplicas")
            set_condition(status, SCALING_ACTIVE, "False", "InvalidSelector",
                          "the HPA target's scale is missing a selector", now)
            return None
        try:
            parse_label_selector(selector)
        except SelectorError as e:
            self.recorder.event(hpa, "Warning", "InvalidSelector", f"couldn't convert selector into a corresponding "
                                f"internal selector object: {e}", action="ComputeReplicas")
            set_condition(status, SCALING_ACTIVE, "False", "InvalidSelector",
                          f"the HPA target's scale has an invalid selector: {e}", now)
            return None
        specs = (hpa.get("spec") or {}).get("metrics") or []
        # upstream reports a status per metric; one it could not read has an empty type
        status["currentMetrics"] = [{"type": ""} for _ in specs] or None
        first: Optional[MetricsUnavailable] = None
        invalid = 0
        for m in specs:
            try:
                await self._metric(ns, m, selector)
            except MetricsUnavailable as e:
                self.recorder.event(hpa, "Warning", e.reason, e.event, action="GetMetric")
                invalid += 1
                first = first or e
            except NotImplementedError:
                self.log.warning("%s/%s: a metrics API answers but scaling on metrics is not implemented yet",
                                 ns, hpa["metadata"]["name"])
                return None
        if first is not None:
            set_condition(status, SCALING_ACTIVE, "False", first.reason,
                          f"the HPA was unable to compute the replica count: {first.event}", now)
            self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas",
                                f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first}",
                                action="ComputeReplicas")
        return None

    async def _write(self, hpa: Obj, old: Obj, status: Obj) -> None:
        status = {k: v for k, v in status.items() if v is not None}
        if status == old:
            return
        body = copy.deepcopy(hpa)
        body["status"] = status
        try:
            await self.hpa_api.update(body, hpa["metadata"]["namespace"], subresource="status")
        except (NotFound, Conflict):
            pass  # deleted or changed meanwhile: the informer brings it back
