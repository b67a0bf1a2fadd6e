"""POST pods/<name>/eviction: a voluntary disruption that respects PodDisruptionBudgets,
as upstream's pkg/registry/core/pod/storage/eviction.go.

A pod that is not Running (Pending, Succeeded, Failed) or already terminating is
deleted without looking at budgets.  Otherwise the (single) PodDisruptionBudget
selecting the pod must allow a disruption: its `status.disruptionsAllowed` is
decremented and the pod recorded in `status.disruptedPods` (compare-and-swap on the
budget, retried on conflict), then the pod is deleted with the Eviction's
deleteOptions.  No budget allowing it -> 429 TooManyRequests; more than one budget
-> 500, as upstream.  An unready pod may go without using the budget when the budget
is healthy enough (IfHealthyBudget, the default) or under AlwaysAllow.

Note: pods on a node are deleted gracefully (the kubelet finishes them); with
simulated nodes and no kubelet they stay terminating unless the Eviction asks for
`deleteOptions.gracePeriodSeconds: 0`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from aiohttp import web

from kybernetes.api import meta as apimeta
from kybernetes.api.selectors import SelectorError, from_label_selector
from kybernetes.apiserver import errors
from kybernetes.apiserver.objects import collection_prefix, object_key
from kybernetes.registry.base import Strategy
from kybernetes.storage.interface import ConflictError

Obj = dict[str, Any]

EVICTION_KINDS = ("policy/v1", "policy/v1beta1")
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
MAX_DISRUPTED_POD_SIZE = 2000
_EVICTION_RETRIES = 20  # upstream EvictionsRetry: 20 steps of 10ms
_EVICTION_RETRY_DELAY = 0.01
VIOLATION_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


def too_many_requests(message: str, retry_after: int, cause: Optional[str] = None) -> errors.APIError:
    details: Obj = {}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    if cause is not None:
        details["causes"] = [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]
    return errors.APIError(429, "TooManyRequests", message, details=details or None,
                           headers={"Retry-After": str(retry_after)} if retry_after else None)


def can_ignore_pdb(pod: Obj) -> bool:
    """Upstream canIgnorePDB: pods not running, or already terminating."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


def is_pod_ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pdbs_for_pod(pdbs: list[Obj], pod: Obj) -> list[Obj]:
    """The budgets in the pod's namespace whose (non-empty) selector matches its labels."""
    labels = pod["metadata"].get("labels") or {}
    out = []
    for pdb in pdbs:
        sel = (pdb.get("spec") or {}).get("selector")
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            continue  # upstream: an empty selector selects nothing here
        try:
            if from_label_selector(sel).matches(labels):
                out.append(pdb)
        except SelectorError:
            continue
    return out


def check_and_decrement(pdb: Obj, pod_name: str, dry_run: bool) -> Obj:
    """Upstream checkAndDecrement: raise if the budget forbids the disruption, else return
    the budget with one disruption used and the pod recorded."""
    meta, status = pdb["metadata"], pdb.setdefault("status", {})
    name = meta["name"]
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise too_many_requests(VIOLATION_MESSAGE, 10, f"The disruption budget {name} is still being processed by the server.")
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.forbidden("poddisruptionbudget", "policy", name, "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        raise errors.forbidden("poddisruptionbudget", "policy", name,
                               "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise too_many_requests(VIOLATION_MESSAGE, 0,
                                f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy "
                                f"pods and has {int(status.get('currentHealthy') or 0)} currently")
    status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        set_disruption_allowed_condition(pdb)
    if not dry_run:
        status.setdefault("disruptedPods", {})
        if status["disruptedPods"] is None:
            status["disruptedPods"] = {}
        status["disruptedPods"][pod_name] = apimeta.now_rfc3339()
    return pdb


def set_disruption_allowed_condition(pdb: Obj) -> None:
    """Upstream pdbhelper.UpdateDisruptionAllowedCondition."""
    status = pdb.setdefault("status", {})
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    cond = {"type": "DisruptionAllowed", "status": "True" if allowed else "False",
            "reason": "SufficientPods" if allowed else "InsufficientPods", "message": "",
            "observedGeneration": status.get("observedGeneration") or 0}
    conds = status.get("conditions") or []
    old = next((c for c in conds if c.get("type") == "DisruptionAllowed"), None)
    if old is not None and old.get("status") == cond["status"]:
        cond["lastTransitionTime"] = old.get("lastTransitionTime") or apimeta.now_rfc3339()
    else:
        cond["lastTransitionTime"] = apimeta.now_rfc3339()
    status["conditions"] = [c for c in conds if c.get("type") != "DisruptionAllowed"] + [cond]


async def evict(h: Any, r: Any, body: Any, pdb_strategy: Optional[Strategy]) -> web.Response:
    """Handle one eviction; `h` is the ResourceHandlers, `r` the pods request."""
    from kybernetes.apiserver.rest import check_preconditions, delete_options

    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request was not a JSON object")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if kind and kind != "Eviction":
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind (Eviction)")
    if api_version and api_version not in EVICTION_KINDS:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected API version (policy/v1)")
    meta = body.get("metadata") or {}
    if meta.get("name") and meta["name"] != r.info.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    if meta.get("namespace") and r.info.namespace and meta["namespace"] != r.info.namespace:
        raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
    # an Eviction is admitted as a create of pods/eviction (NodeRestriction: a node
    # evicts only pods bound to itself), before anything is read or changed
    await h._admit(h.mutating, "CREATE", r, body, None)
    await h._admit(h.validating, "CREATE", r, body, None)
    raw_opts = body.get("deleteOptions")
    options = delete_options(r, dict(raw_opts) if isinstance(raw_opts, dict) else None)
    dry_run = r.dry_run

    kv = await h._get_current(r)
    pod = h.objects.decode(kv)
    check_preconditions(r.strategy, pod, options)

    if not can_ignore_pdb(pod) and pdb_strategy is not None:
        ns = r.info.namespace
        from kybernetes.apiserver.listing import cache_at

        cache = await cache_at(h.objects, pdb_strategy, None)
        listed = [h.objects.decode(x) for x in cache.list(prefix=collection_prefix(pdb_strategy, ns)).items]
        pdbs = pdbs_for_pod(listed, pod)
        if len(pdbs) > 1:
            raise errors.internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
        if pdbs:
            pdb = pdbs[0]
            spec = pdb.get("spec") or {}
            st = pdb.get("status") or {}
            healthy_enough = not is_pod_ready(pod) and (
                spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
                or (int(st.get("currentHealthy") or 0) >= int(st.get("desiredHealthy") or 0)
                    and int(st.get("desiredHealthy") or 0) > 0))
            if healthy_enough:
                # upstream: delete only the pod version that was checked
                options.setdefault("preconditions", {}).setdefault("resourceVersion", pod["metadata"]["resourceVersion"])
            else:
                await _decrement(h, pdb_strategy, ns, pdb["metadata"]["name"], r.info.name, dry_run)

    try:
        await h._delete_object(r, pod, kv.mod_revision, options)
    except errors.APIError as e:
        if e.code != 409:
            raise
        # the pod changed meanwhile: delete the current version (with the caller's preconditions)
        kv = await h._get_current(r)
        pod = h.objects.decode(kv)
        check_preconditions(r.strategy, pod, options)
        await h._delete_object(r, pod, kv.mod_revision, options)
    return h.respond(r, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}, 201)


async def _decrement(h: Any, s: Strategy, ns: str, name: str, pod_name: str, dry_run: bool) -> None:
    key = object_key(s, ns, name)
    for _ in range(_EVICTION_RETRIES):
        kv = await h.objects.read(s, key)
        if kv is None:
            return  # the budget went away meanwhile: nothing to respect
        pdb = check_and_decrement(h.objects.decode(kv), pod_name, dry_run)
        if dry_run:
            return
        try:
            await h.objects.store.update(key, h.objects.encode(key, pdb), kv.mod_revision)
            return
        except ConflictError:
            await asyncio.sleep(_EVICTION_RETRY_DELAY)
    raise errors.conflict("poddisruptionbudgets", "policy", name, errors.OBJECT_MODIFIED)
