"""The ValidatingAdmissionPolicy plugin (upstream admission/plugin/policy/validating):
for each binding whose policy and match resources select the request, resolve the params,
evaluate the policy, and act on its failures by the binding's validationActions — Deny
(the request fails with the validation's reason and code), Warn (a `Warning:` header),
Audit (the `validation.policy.admission.k8s.io/validation_failure` audit annotation).
Runs after the mutating phase and field validation, before the validating webhooks."""

from __future__ import annotations

import json
from typing import Any, Optional

from kybernetes.admission import cel, lookup
from kybernetes.admission.policy import evaluate, matching
from kybernetes.admission.webhooks import review
from kybernetes.admission.webhooks.dispatch import attributes
from kybernetes.admission.webhooks.matching import Attributes, is_exempt
from kybernetes.admission.webhooks.source import CachedObjects
from kybernetes.apiserver import errors
from kybernetes.apiserver.objects import ObjectStore
from kybernetes.registry.base import selector_matches

Obj = dict[str, Any]
AUDIT_FAILURE = "validation.policy.admission.k8s.io/validation_failure"
REASON_CODES = {"Unauthorized": 401, "Forbidden": 403, "RequestEntityTooLarge": 413, "Invalid": 422}


class ConfigError(Exception):
    """A binding that cannot be applied (missing params, unknown paramKind)."""


class ValidatingAdmissionPolicy:
    name = "ValidatingAdmissionPolicy"

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self.policies = CachedObjects(objects, "validatingadmissionpolicies")
        self.bindings = CachedObjects(objects, "validatingadmissionpolicybindings")

    async def _namespace(self, name: str) -> Optional[Obj]:
        kv = await self.objects.namespace(name)
        return self.objects.decode(kv) if kv is not None else None

    async def _namespace_labels(self, name: str) -> Optional[dict[str, str]]:
        ns = await self._namespace(name)
        return None if ns is None else (ns.get("metadata") or {}).get("labels") or {}

    async def _params(self, policy: Obj, binding: Obj, attrs: Attributes) -> Optional[list[Optional[Obj]]]:
        """The param objects to evaluate with ([None] without paramKind); None to skip the
        binding (no params and parameterNotFoundAction Allow).  Raises ConfigError."""
        from kybernetes.api.catalog import default_catalog

        kind = (policy.get("spec") or {}).get("paramKind")
        ref = (binding.get("spec") or {}).get("paramRef")
        if not kind or not ref:
            return [None]  # no paramKind, or a binding that does not use it: nil params
        s = default_catalog().by_api_version_kind(kind.get("apiVersion", ""), kind.get("kind", ""))
        if s is None:
            raise ConfigError(f"paramKind kind `&ParamKind{{APIVersion:{kind.get('apiVersion', '')},"
                              f"Kind:{kind.get('kind', '')},}}` not known")
        namespace = ""
        if s.namespaced:
            namespace = ref.get("namespace") or attrs.namespace
            if not namespace:
                raise ConfigError("cannot use namespaced paramRef in policy binding that matches cluster-scoped "
                                  "resources")
        elif ref.get("namespace"):
            raise ConfigError("paramRef.namespace must not be provided for a cluster-scoped `paramKind`")
        if ref.get("name"):
            found = await lookup.get_object(self.objects, s.group, s.version, s.resource, namespace, ref["name"])
            params = [found] if found is not None else []
        else:
            params = [o for o in await lookup.list_objects(self.objects, s.group, s.version, s.resource, namespace)
                      if selector_matches(ref.get("selector") or {}, (o.get("metadata") or {}).get("labels"))]
        if params:
            return params
        if (ref.get("parameterNotFoundAction") or "Deny") == "Deny":
            raise ConfigError("no params found for policy binding with `Deny` parameterNotFoundAction")
        return None

    async def validate(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        bindings = await self.bindings.items()
        if not bindings:
            return
        policies = {p["metadata"]["name"]: p for p in await self.policies.items()}
        attrs = attributes(op, r, new, old)
        if is_exempt(attrs):
            return
        request = review.build_request(attrs, attrs.gvrk)["request"]
        base: Optional[Obj] = None
        denials: list[tuple[str, str, evaluate.Decision]] = []
        audit_failures: list[Obj] = []
        audit = r.http.setdefault("audit_annotations", {}) if hasattr(r.http, "setdefault") else {}
        for binding in bindings:
            spec = binding.get("spec") or {}
            policy = policies.get(spec.get("policyName", ""))
            if policy is None:
                continue
            pspec = policy.get("spec") or {}
            if not await matching.matches(pspec.get("matchConstraints") or {}, attrs, self._namespace_labels):
                continue
            if spec.get("matchResources") is not None and \
                    not await matching.matches(spec["matchResources"], attrs, self._namespace_labels):
                continue
            pname, bname = policy["metadata"]["name"], binding["metadata"]["name"]
            try:
                params_list = await self._params(policy, binding, attrs)
            except ConfigError as e:
                if (pspec.get("failurePolicy") or "Fail") == "Fail":
                    denials.append((pname, bname, evaluate.Decision(f"failed to configure binding: {e}")))
                continue
            if params_list is None:
                continue
            if base is None:
                ns_obj = await self._namespace(attrs.namespace) if attrs.namespace else None
                base = {"object": request["object"], "oldObject": request["oldObject"],
                        "request": cel.request_value(request), "namespaceObject": ns_obj}
            actions = spec.get("validationActions") or []
            for params in params_list:
                result = evaluate.evaluate(policy, {**base, "params": params})
                audit.update(result.audit_annotations)
                for d in result.denials:
                    if "Deny" in actions:
                        denials.append((pname, bname, d))
                    if "Warn" in actions:
                        r.warnings.append(f"Validation failed for ValidatingAdmissionPolicy '{pname}' with binding "
                                          f"'{bname}': {d.message}")
                    if "Audit" in actions:
                        audit_failures.append({"message": d.message, "policy": pname, "binding": bname,
                                               "expressionIndex": d.expression_index if d.expression_index is not None
                                               else 0, "validationActions": actions})
        if audit_failures:
            audit[AUDIT_FAILURE] = json.dumps(audit_failures, separators=(",", ":"))
        if denials:
            raise denied(attrs, *denials[0])


def denied(attrs: Attributes, policy: str, binding: str, decision: evaluate.Decision) -> errors.APIError:
    """upstream: admission.NewForbidden with the validation's reason and its code."""
    message = f"ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {decision.message}"
    err = errors.forbidden(attrs.gvrk.resource, attrs.gvrk.group, attrs.name, message)
    reason = decision.reason or "Invalid"
    err.reason, err.code = reason, REASON_CODES.get(reason, 422)
    err.details = dict(err.details or {})
    err.details["causes"] = [{"message": message}]
    return err
