"""Create-only resources the API server answers without storing anything: the
authentication and authorization reviews.  Each fills `status` on the posted object."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional

from kybernetes.apiserver import errors
from kybernetes.apiserver.filters.authentication import UserInfo

Obj = dict[str, Any]

# (user, attributes dict with verb/namespace/group/resource/subresource/name or path) -> (allowed, denied, reason)
AccessCheck = Callable[[UserInfo, Obj], Awaitable[tuple[bool, bool, str]]]
# (token, audiences) -> (UserInfo | None, audiences, error)
TokenCheck = Callable[[str, list[str]], Awaitable[tuple[Optional[UserInfo], list[str], str]]]
# (user, namespace) -> (resourceRules, nonResourceRules, incomplete, evaluationError)
RulesCheck = Callable[[UserInfo, str], Awaitable[tuple[list[Obj], list[Obj], bool, str]]]


def user_info_dict(user: UserInfo) -> Obj:
    out: Obj = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


def _attributes(spec: Obj, namespace_override: Optional[str] = None) -> Obj:
    ra = spec.get("resourceAttributes")
    if ra is not None:
        attrs = {
            "resource_request": True,
            "verb": ra.get("verb", ""),
            "namespace": ra.get("namespace", "") if namespace_override is None else namespace_override,
            "group": ra.get("group", ""),
            "version": ra.get("version", ""),
            "resource": ra.get("resource", ""),
            "subresource": ra.get("subresource", ""),
            "name": ra.get("name", ""),
        }
        return attrs
    nra = spec.get("nonResourceAttributes") or {}
    return {"resource_request": False, "verb": nra.get("verb", ""), "path": nra.get("path", "")}


class Reviews:
    """Answers TokenReview, SelfSubjectReview and the access reviews."""

    def __init__(self, access: AccessCheck, tokens: Optional[TokenCheck] = None,
                 rules: Optional[RulesCheck] = None) -> None:
        self.access = access
        self.tokens = tokens
        self.rules = rules

    async def answer(self, resource: str, user: UserInfo, obj: Obj) -> Obj:
        spec = obj.get("spec") or {}
        meta = obj.setdefault("metadata", {})
        if resource == "selfsubjectreviews":
            obj["status"] = {"userInfo": user_info_dict(user)}
        elif resource == "tokenreviews":
            obj["status"] = await self._token_review(spec)
        elif resource == "selfsubjectaccessreviews":
            obj["status"] = await self._decide(user, _attributes(spec))
        elif resource in ("subjectaccessreviews", "localsubjectaccessreviews"):
            extra = {k: tuple(v or ()) for k, v in (spec.get("extra") or {}).items()}
            subject = UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""), extra)
            ns = meta.get("namespace") if resource == "localsubjectaccessreviews" else None
            obj["status"] = await self._decide(subject, _attributes(spec, ns))
        elif resource == "selfsubjectrulesreviews":
            obj["status"] = await self._rules(user, spec.get("namespace", ""))
        else:  # pragma: no cover - the catalog only routes the kinds above here
            raise errors.method_not_allowed()
        return obj

    async def _decide(self, user: UserInfo, attrs: Obj) -> Obj:
        allowed, denied, reason = await self.access(user, attrs)
        status: Obj = {"allowed": allowed}
        if denied:
            status["denied"] = True
        if reason:
            status["reason"] = reason
        return status

    async def _token_review(self, spec: Obj) -> Obj:
        if self.tokens is None:
            return {"authenticated": False, "user": {}, "error": "token authentication is not configured"}
        user, audiences, error = await self.tokens(spec.get("token", ""), list(spec.get("audiences") or []))
        if user is None:
            out: Obj = {"authenticated": False, "user": {}}
            if error:
                out["error"] = error
            return out
        out = {"authenticated": True, "user": user_info_dict(user)}
        if audiences:
            out["audiences"] = audiences
        return out

    async def _rules(self, user: UserInfo, namespace: str) -> Obj:
        if self.rules is None:
            return {"resourceRules": [], "nonResourceRules": [], "incomplete": True,
                    "evaluationError": "no rule resolver is configured"}
        rr, nrr, incomplete, err = await self.rules(user, namespace)
        out: Obj = {"resourceRules": rr, "nonResourceRules": nrr, "incomplete": incomplete}
        if err:
            out["evaluationError"] = err
        return out
