"""The MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins (upstream
apiserver/pkg/admission/plugin/webhook/{mutating,validating}/dispatcher.go).

Mutating webhooks run one after another after the built-in mutating plugins, each seeing
the object as the previous ones left it; their JSONPatch answers are applied in turn, and a
webhook with reinvocationPolicy IfNeeded is called once more when a later webhook changed
the object.  Validating webhooks run concurrently after field validation.  A webhook that
cannot be called (down, timed out, bad TLS, unusable answer) fails the request with 500
InternalError under failurePolicy Fail and is skipped under Ignore; a denial fails it with
the webhook's own status code and message, whatever the failurePolicy."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

import orjson

from kybernetes.admission import cel, lookup
from kybernetes.admission.webhooks import client, matching, review
from kybernetes.admission.webhooks.matching import GVRK, Attributes
from kybernetes.admission.webhooks.source import Hook, HookSource
from kybernetes.apiserver import errors
from kybernetes.apiserver.objects import ObjectStore

log = logging.getLogger(__name__)
Obj = dict[str, Any]

MUTATION_ANNOTATION = "mutation.webhook.admission.k8s.io/round_{round}_index_{index}"
NO_SIDE_EFFECTS = ("None", "NoneOnDryRun")


class CallFailure(Exception):
    """upstream ErrCallingWebhook: subject to the hook's failurePolicy."""

    def __init__(self, hook: str, reason: str) -> None:
        super().__init__(f'failed calling webhook "{hook}": {reason}')


def denied(hook: str, status: Obj) -> errors.APIError:
    """upstream webhookerrors.ToStatusErr: the webhook's Status, code at least 400."""
    denied_by = f'admission webhook "{hook}" denied the request'
    code = status.get("code") if isinstance(status.get("code"), int) else 0
    code = code if code >= 400 else 400
    if status.get("message"):
        message = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied_by}: {status['reason']}"
    else:
        message = f"{denied_by} without explanation"
    details = status.get("details") if isinstance(status.get("details"), dict) else None
    return errors.APIError(code, str(status.get("reason") or ""), message, details=details)


def internal(err: BaseException | str) -> errors.APIError:
    """upstream apierrors.NewInternalError: the error also as the one cause."""
    e = errors.internal(str(err))
    e.details = {"causes": [{"message": str(err)}]}
    return e


# ------------------------------------------------------------------ request attributes
def _options(op: str, r: Any) -> Optional[Obj]:
    q = r.http.query
    kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}.get(op)
    if kind is None:
        return None
    out: Obj = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    dry = q.getall("dryRun", [])
    if dry or r.dry_run:
        out["dryRun"] = dry or ["All"]
    if kind != "DeleteOptions":
        for k in ("fieldManager", "fieldValidation"):
            if q.get(k):
                out[k] = q[k]
    else:
        if q.get("propagationPolicy"):
            out["propagationPolicy"] = q["propagationPolicy"]
        if q.get("gracePeriodSeconds", "").lstrip("-").isdigit():
            out["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
    return out


def _equivalents(s: Any) -> tuple[GVRK, ...]:
    from kybernetes.api.catalog import default_catalog

    return tuple(GVRK(o.group, o.version, o.resource, o.kind) for o in default_catalog().strategies
                 if o.group == s.group and o.resource == s.resource and o.version != s.version)


def attributes(op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> Attributes:
    """The admission attributes of a REST request."""
    s = r.strategy
    obj = new if op != "DELETE" else None
    meta = ((obj if obj is not None else old) or {}).get("metadata") or {}
    name = r.info.name or meta.get("name", "")
    if s.group == "" and s.resource == "namespaces":
        namespace = name  # upstream's request info names a Namespace's own namespace so
    elif s.namespaced:
        namespace = r.info.namespace or meta.get("namespace", "")
    else:
        namespace = ""
    return Attributes(
        operation=op, gvrk=GVRK(s.group, s.version, s.resource, s.kind),
        subresource=lookup.subresource(r), namespace=namespace, name=name, obj=obj, old=old,
        dry_run=r.dry_run, user=r.http.get("user"), options=_options(op, r), equivalents=_equivalents(s))


# ------------------------------------------------------------------ the plugin
class WebhookAdmission:
    """Both webhook plugins over one object store: `admit` (mutating) and `validate`."""

    name = "Webhooks"

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self.mutating = HookSource(objects, "mutatingwebhookconfigurations")
        self.validating = HookSource(objects, "validatingwebhookconfigurations")

    # ---- look-ups
    async def _namespace_labels(self, name: str) -> Optional[dict[str, str]]:
        kv = await self.objects.namespace(name)
        if kv is None:
            return None
        return (self.objects.decode(kv).get("metadata") or {}).get("labels") or {}

    async def _service(self, namespace: str, name: str) -> tuple[Optional[Obj], Optional[Obj]]:
        svc = await lookup.get_object(self.objects, "", "v1", "services", namespace, name)
        eps = await lookup.get_object(self.objects, "", "v1", "endpoints", namespace, name)
        return svc, eps

    # ---- one call
    async def _call(self, hook: Hook, attrs: Attributes, called_as: GVRK, r: Any, *,
                    mutating: bool) -> Optional[review.Response]:
        """Call one webhook; None when its matchConditions leave it out.  Raises the
        webhook's denial, a dry-run refusal, or CallFailure."""
        spec = hook.spec
        req = review.build_request(attrs, called_as)
        if spec.get("matchConditions"):
            activation = {"object": req["request"]["object"], "oldObject": req["request"]["oldObject"],
                          "request": cel.request_value(req["request"])}
            matches, errs = cel.match_conditions(spec["matchConditions"], activation)
            if errs:
                raise CallFailure(hook.name, "failed to evaluate match conditions: " + (
                    errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"))
            if not matches:
                return None
        if attrs.dry_run:
            side_effects = spec.get("sideEffects")
            if side_effects is None:
                raise CallFailure(hook.name, "Webhook SideEffects is nil")
            if side_effects not in NO_SIDE_EFFECTS:
                raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        version = review.review_version(spec.get("admissionReviewVersions") or [])
        if version is None:
            raise CallFailure(hook.name, "could not create admission objects: webhook does not accept known "
                                         "AdmissionReview versions")
        req["apiVersion"] = f"admission.k8s.io/{version}"
        timeout = int(spec.get("timeoutSeconds") or 10)
        uid = req["request"]["uid"]
        try:
            target = await client.resolve(spec.get("clientConfig") or {}, self._service)
            body = await client.post_review(target, req, timeout)
        except client.CallError as e:
            raise CallFailure(hook.name, f"failed to call webhook: {e}") from None
        try:
            resp = review.parse_response(body, uid, mutating=mutating, version=version)
        except review.InvalidResponse as e:
            raise CallFailure(hook.name, f"received invalid webhook response: {e}") from None
        r.warnings.extend(resp.warnings)
        if resp.audit_annotations:
            audit = r.http.setdefault("audit_annotations", {}) if hasattr(r.http, "setdefault") else {}
            for k, v in resp.audit_annotations.items():
                audit[f"{hook.name}/{k}"] = v
        if not resp.allowed:
            raise denied(hook.name, resp.status)
        return resp

    @staticmethod
    def _fail_open(hook: Hook, e: CallFailure) -> bool:
        if (hook.spec.get("failurePolicy") or "Fail") == "Ignore":
            log.warning("Failed calling webhook, failing open %s: %s", hook.name, e)
            return True
        log.warning("Failed calling webhook, failing closed %s: %s", hook.name, e)
        return False

    # ---- mutating
    async def admit(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        if new is None:
            return  # DELETE: run from `validate`, where the REST handlers first hold the old object
        await self._mutate(op, r, new, old)

    async def _mutate(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        hooks = await self.mutating.hooks()
        if not hooks:
            return
        attrs = attributes(op, r, new, old)
        if matching.is_exempt(attrs):
            return
        reinvocable: set[int] = set()
        reinvoke: set[int] = set()
        for i, hook in enumerate(hooks):
            called_as = await matching.should_call(hook.spec, attrs, self._namespace_labels)
            if called_as is None:
                continue
            changed = await self._mutate_once(hook, attrs, called_as, r, new, 0, i)
            if changed:
                reinvoke |= reinvocable  # every earlier IfNeeded hook sees the change again
            if hook.spec.get("reinvocationPolicy") == "IfNeeded":
                reinvocable.add(i)
        for i in sorted(reinvoke):
            hook = hooks[i]
            called_as = await matching.should_call(hook.spec, attrs, self._namespace_labels)
            if called_as is not None:
                await self._mutate_once(hook, attrs, called_as, r, new, 1, i)

    async def _mutate_once(self, hook: Hook, attrs: Attributes, called_as: GVRK, r: Any, new: Optional[Obj],
                           round_: int, index: int) -> bool:
        try:
            resp = await self._call(hook, attrs, called_as, r, mutating=True)
        except CallFailure as e:
            if self._fail_open(hook, e):
                return False
            raise internal(e) from None
        if resp is None:
            return False
        changed = self._apply_patch(hook, resp, attrs, new)
        audit = r.http.setdefault("audit_annotations", {}) if hasattr(r.http, "setdefault") else {}
        audit[MUTATION_ANNOTATION.format(round=round_, index=index)] = orjson.dumps(
            {"configuration": hook.configuration, "webhook": hook.name, "mutated": changed}).decode()
        return changed

    @staticmethod
    def _apply_patch(hook: Hook, resp: review.Response, attrs: Attributes, new: Optional[Obj]) -> bool:
        """Apply the hook's JSONPatch to `new` in place; True when it changed the object.
        A patch that does not decode or apply is a 500 and nothing is written."""
        from kybernetes.api import patch as patchlib
        from kybernetes.api import validation

        if not resp.patch:
            return False
        try:
            ops = orjson.loads(resp.patch)
        except orjson.JSONDecodeError as e:
            raise internal(f'admission webhook "{hook.name}" returned a patch that is not JSON: {e}') from None
        if not isinstance(ops, list):
            raise internal("json: cannot unmarshal " + ("object" if isinstance(ops, dict) else type(ops).__name__)
                           + " into Go value of type jsonpatch.Patch")
        if not ops:
            return False
        if new is None:
            raise internal(f'admission webhook "{hook.name}" attempted to modify the object, which is not '
                           f'supported for this operation')
        try:
            patched = patchlib.apply_json_patch(new, ops)
        except patchlib.PatchError as e:
            raise internal(e.message) from None
        if not isinstance(patched, dict):
            raise internal(f'admission webhook "{hook.name}" patched the object into a non-object')
        g = attrs.gvrk
        patched["apiVersion"], patched["kind"] = new.get("apiVersion"), new.get("kind")
        if not isinstance(patched.get("metadata"), dict):
            raise internal(f'admission webhook "{hook.name}" removed the object\'s metadata')
        # decoding the patched object drops what the schema does not know, as upstream's does
        validation.prune_unknown(patched, g.group, g.version, g.kind)
        if patched == new:
            return False
        new.clear()
        new.update(patched)
        return True

    # ---- validating
    async def validate(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        if op == "DELETE":
            # upstream runs the mutating chain, then the validating one, on the object being
            # deleted (a mutating webhook may deny a delete but not patch anything)
            await self._mutate(op, r, None, old)
        hooks = await self.validating.hooks()
        if not hooks:
            return
        attrs = attributes(op, r, new, old)
        if matching.is_exempt(attrs):
            return
        calls = []
        for hook in hooks:
            called_as = await matching.should_call(hook.spec, attrs, self._namespace_labels)
            if called_as is not None:
                calls.append((hook, called_as))
        if not calls:
            return
        results = await asyncio.gather(*(self._call(h, attrs, g, r, mutating=False) for h, g in calls),
                                       return_exceptions=True)
        for (hook, _), result in zip(calls, results):
            if isinstance(result, CallFailure):
                if self._fail_open(hook, result):
                    continue
                raise internal(result)
            if isinstance(result, BaseException):
                raise result
