"""TokenReview and SelfSubjectReview: create-only, answered from the authenticator."""

from __future__ import annotations

from kybernetes.registry.base import Cause, Obj, Strategy, required


class _Review(Strategy):
    group = "authentication.k8s.io"
    version = "v1"
    namespaced = False
    verbs = ("create",)
    persisted = False
    tracks_generation = False
    name_format = "path-segment"


class TokenReviewStrategy(_Review):
    kind = "TokenReview"
    resource = "tokenreviews"
    singular = "tokenreview"

    def validate(self, obj: Obj) -> list[Cause]:
        if not (obj.get("spec") or {}).get("token"):
            return [required("spec.token", "")]
        return []


class SelfSubjectReviewStrategy(_Review):
    kind = "SelfSubjectReview"
    resource = "selfsubjectreviews"
    singular = "selfsubjectreview"
