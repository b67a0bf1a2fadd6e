"""AdmissionReview v1: the request a webhook receives and the checks on its answer
(upstream apiserver/pkg/admission/plugin/webhook/request)."""

from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

from kybernetes.admission.webhooks.matching import GVRK, Attributes

Obj = dict[str, Any]
API_VERSION = "admission.k8s.io/v1"
SUPPORTED_VERSIONS = ("v1", "v1beta1")  # the request and response shapes are the same


def review_version(accepted: list[str]) -> Optional[str]:
    """The AdmissionReview version to speak: the first one the webhook accepts that this
    server knows (None: none, and the call fails)."""
    return next((v for v in accepted if v in SUPPORTED_VERSIONS), None)


class InvalidResponse(ValueError):
    """The webhook answered with something that is not a usable AdmissionReview response."""


@dataclass
class Response:
    """What a webhook decided."""

    allowed: bool
    status: Obj = field(default_factory=dict)
    patch: Optional[bytes] = None
    patch_type: str = ""
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)


def _user_info(user: Any) -> Obj:
    out: Obj = {"username": getattr(user, "name", "") or ""}
    if getattr(user, "uid", ""):
        out["uid"] = user.uid
    groups = list(getattr(user, "groups", ()) or ())
    if groups:
        out["groups"] = groups
    extra = getattr(user, "extra", None) or {}
    if extra:
        out["extra"] = {k: list(v) for k, v in extra.items()}
    return out


def _gvk(g: GVRK) -> Obj:
    return {"group": g.group, "version": g.version, "kind": g.kind}


def _gvr(g: GVRK) -> Obj:
    return {"group": g.group, "version": g.version, "resource": g.resource}


def build_request(attrs: Attributes, called_as: GVRK, uid: Optional[str] = None, version: str = "v1") -> Obj:
    """The AdmissionReview sent to a webhook; `called_as` is the version the hook's rules
    matched (the request's own unless matchPolicy Equivalent chose another)."""
    req: Obj = {
        "uid": uid or str(uuid.uuid4()),
        "kind": _gvk(called_as),
        "resource": _gvr(called_as),
        "requestKind": _gvk(attrs.gvrk),
        "requestResource": _gvr(attrs.gvrk),
        "operation": attrs.operation,
        "userInfo": _user_info(attrs.user),
        "object": copy.deepcopy(attrs.obj),
        "oldObject": copy.deepcopy(attrs.old),
        "dryRun": attrs.dry_run,
        "options": copy.deepcopy(attrs.options),
    }
    if attrs.subresource:
        req["subResource"] = attrs.subresource
        req["requestSubResource"] = attrs.subresource
    if attrs.name:
        req["name"] = attrs.name
    if attrs.namespace:
        req["namespace"] = attrs.namespace
    return {"kind": "AdmissionReview", "apiVersion": f"admission.k8s.io/{version}", "request": req}


def parse_response(body: Any, uid: str, *, mutating: bool, version: str = "v1") -> Response:
    """upstream VerifyAdmissionResponse: v1 answers must echo the uid and name their patch
    type; v1beta1 answers need neither (a patch is then a JSONPatch)."""
    if not isinstance(body, dict):
        raise InvalidResponse("the response body is not a JSON object")
    if body.get("apiVersion") != f"admission.k8s.io/{version}" or body.get("kind") != "AdmissionReview":
        got_group = (body.get("apiVersion") or "").rpartition("/")[0]
        raise InvalidResponse(f"expected webhook response of AdmissionReview.admission.k8s.io, got "
                              f"{body.get('kind') or ''}.{got_group}".rstrip("."))
    resp = body.get("response")
    if not isinstance(resp, dict):
        raise InvalidResponse("webhook response was absent")
    if version == "v1" and resp.get("uid") != uid:
        raise InvalidResponse(f'expected response.uid="{uid}", got "{resp.get("uid") or ""}"')
    patch_type = resp.get("patchType") or ""
    raw_patch = resp.get("patch")
    patch: Optional[bytes] = None
    if raw_patch:
        try:
            patch = base64.b64decode(raw_patch, validate=True)
        except (ValueError, TypeError) as e:
            raise InvalidResponse(f"response.patch is not base64: {e}") from None
    if patch and not patch_type and version == "v1beta1":
        patch_type = "JSONPatch"
    if patch and not patch_type:
        raise InvalidResponse("webhook returned response.patch but not response.patchType")
    if patch_type and not mutating:
        raise InvalidResponse("validating webhooks may not return response.patch or response.patchType")
    if patch_type and patch_type != "JSONPatch":
        raise InvalidResponse(f'webhook returned invalid response.patchType of "{patch_type}"')
    status = resp.get("status") if isinstance(resp.get("status"), dict) else {}
    warnings = [w for w in resp.get("warnings") or [] if isinstance(w, str)]
    annotations = {str(k): str(v) for k, v in (resp.get("auditAnnotations") or {}).items()}
    return Response(bool(resp.get("allowed")), status, patch, patch_type, warnings, annotations)
