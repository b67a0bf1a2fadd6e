"""The access reviews: create-only questions to the authorizer."""

from __future__ import annotations

from kybernetes.registry.base import Cause, Obj, Strategy, invalid, required


class _Review(Strategy):
    group = "authorization.k8s.io"
    version = "v1"
    namespaced = False
    verbs = ("create",)
    persisted = False
    tracks_generation = False
    name_format = "path-segment"


def _attributes_causes(spec: Obj, *, need_user: bool) -> list[Cause]:
    """Exactly one of resourceAttributes / nonResourceAttributes (upstream ValidateSubjectAccessReviewSpec)."""
    causes: list[Cause] = []
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if ra is not None and nra is not None:
        causes.append(invalid("spec.nonResourceAttributes", nra,
                              "cannot be specified in combination with resourceAttributes"))
    if ra is None and nra is None:
        causes.append(invalid("spec.resourceAttributes", None,
                              "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
    if need_user and not spec.get("user") and not spec.get("groups"):
        causes.append(invalid("spec.user", "", "at least one of user or group must be specified"))
    if isinstance(ra, dict):
        for sel in ("fieldSelector", "labelSelector"):
            causes.extend(_selector_causes(ra.get(sel), f"spec.resourceAttributes.{sel}"))
    return causes


def _selector_causes(selector: object, path: str) -> list[Cause]:
    """validate{Field,Label}SelectorAttributes: rawSelector or requirements, not both.
    Unknown operators are allowed (skewed clients), and a rawSelector that does not
    parse is the authorizer's business, not a validation error."""
    if not isinstance(selector, dict):
        return []
    raw, reqs = selector.get("rawSelector") or "", selector.get("requirements") or []
    if raw and reqs:
        return [invalid(f"{path}.rawSelector", raw, "may not specified at the same time as requirements")]
    if not raw and not reqs:
        return [required(f"{path}.requirements", f"when {path} is specified, requirements or rawSelector is required")]
    return []


class SubjectAccessReviewStrategy(_Review):
    kind = "SubjectAccessReview"
    resource = "subjectaccessreviews"
    singular = "subjectaccessreview"

    def validate(self, obj: Obj) -> list[Cause]:
        return _attributes_causes(obj.get("spec") or {}, need_user=True)


class SelfSubjectAccessReviewStrategy(_Review):
    kind = "SelfSubjectAccessReview"
    resource = "selfsubjectaccessreviews"
    singular = "selfsubjectaccessreview"

    def validate(self, obj: Obj) -> list[Cause]:
        return _attributes_causes(obj.get("spec") or {}, need_user=False)


class LocalSubjectAccessReviewStrategy(_Review):
    kind = "LocalSubjectAccessReview"
    resource = "localsubjectaccessreviews"
    singular = "localsubjectaccessreview"
    namespaced = True

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes = _attributes_causes(spec, need_user=True)
        ns = (obj.get("metadata") or {}).get("namespace", "")
        ra = spec.get("resourceAttributes") or {}
        if spec.get("resourceAttributes") is not None and ra.get("namespace", "") != ns:
            causes.append(invalid("spec.resourceAttributes.namespace", ra.get("namespace", ""),
                                  "must match metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            causes.append(invalid("spec.nonResourceAttributes", spec["nonResourceAttributes"],
                                  "disallowed on this kind of request"))
        return causes


class SelfSubjectRulesReviewStrategy(_Review):
    kind = "SelfSubjectRulesReview"
    resource = "selfsubjectrulesreviews"
    singular = "selfsubjectrulesreview"

    def validate(self, obj: Obj) -> list[Cause]:
        if not (obj.get("spec") or {}).get("namespace"):
            return [required("spec.namespace", "")]
        return []
