"""Impersonation: act as another user (upstream WithImpersonation).

Runs after authentication and audit (so the audit event keeps the real requester in
``user`` and records the new identity in ``impersonatedUser``) and before
authorization, which then judges the request as the impersonated user.

Headers: ``Impersonate-User`` (one), ``Impersonate-Group`` (repeatable),
``Impersonate-Uid``, ``Impersonate-Extra-<key>`` (repeatable; the key is lower-cased and
percent-decoded).  Every requested item is its own ``impersonate`` check:

=====================  =====================  ===================================
item                   API group              resource (name / subresource)
=====================  =====================  ===================================
user                   ""                     users (name = user)
service-account user   ""                     serviceaccounts (namespace, name)
group                  ""                     groups (name = group)
uid                    authentication.k8s.io  uids (name = uid)
extra                  authentication.k8s.io  userextras/<key> (name = value)
=====================  =====================  ===================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from aiohttp import web

from kybernetes.apiserver import errors
from kybernetes.apiserver.filters import audit
from kybernetes.apiserver.headertext import text
from kybernetes.auth.authorizer import ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS_USER, UserInfo

USER = "Impersonate-User"
GROUP = "Impersonate-Group"
UID = "Impersonate-Uid"
EXTRA_PREFIX = "impersonate-extra-"
AUTHN_GROUP = "authentication.k8s.io"
AUTHN_VERSION = "v1"
SA_PREFIX = "system:serviceaccount:"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Wanted:
    """One thing the requester asks to act as (upstream builds ObjectReferences)."""

    kind: str  # ServiceAccount, User, Group, UserExtra, UID
    name: str
    namespace: str = ""
    api_version: str = ""
    field_path: str = ""  # the extra key

    def go_struct(self) -> str:
        """Go's %v of the v1.ObjectReference upstream builds (used in its 400 message)."""
        return "{" + " ".join([self.kind, self.namespace, self.name, "", self.api_version, "",
                               self.field_path]) + "}"


def split_service_account(username: str) -> tuple[str, str] | None:
    """``system:serviceaccount:<ns>:<name>`` -> (ns, name) when both parts are valid names."""
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX):].split(":")
    if len(parts) != 2:
        return None
    ns, name = parts
    if not (0 < len(ns) <= 63 and _DNS_LABEL.match(ns)):
        return None
    if not (0 < len(name) <= 253 and _DNS_SUBDOMAIN.match(name)):
        return None
    return ns, name


def _unescape_key(key: str) -> str:
    """Go's url.PathUnescape; a malformed escape keeps the key as sent."""
    if "%" not in key:
        return key
    if re.search(r"%(?![0-9a-fA-F]{2})", key):
        return key
    try:
        return unquote_to_bytes(key).decode("utf-8", errors="replace")
    except Exception:  # noqa: BLE001 - keep the raw key, as upstream does
        return key


def requested(headers: Any) -> list[Wanted]:
    """What the headers ask for, in upstream's order (user, groups, extras, uid).
    Groups, extras or a uid without a user is a 400."""
    out: list[Wanted] = []
    user = text(headers.get(USER, ""))
    if user:
        sa = split_service_account(user)
        if sa is not None:
            out.append(Wanted("ServiceAccount", sa[1], namespace=sa[0]))
        else:
            out.append(Wanted("User", user))
    groups = [text(g) for g in headers.getall(GROUP, [])]
    for g in groups:
        out.append(Wanted("Group", g))
    has_extra = False
    # header names are case-insensitive: one entry per name, as Go's canonical keys
    for name in dict.fromkeys(k.lower() for k in headers.keys() if k.lower().startswith(EXTRA_PREFIX)):
        has_extra = True
        key = text(_unescape_key(text(name[len(EXTRA_PREFIX):])))
        for value in map(text, headers.getall(name, [])):
            out.append(Wanted("UserExtra", value, api_version=f"{AUTHN_GROUP}/{AUTHN_VERSION}", field_path=key))
    uid = text(headers.get(UID, ""))
    if uid:
        out.append(Wanted("UID", uid, api_version=f"{AUTHN_GROUP}/{AUTHN_VERSION}"))
    if (groups or has_extra or uid) and not user:
        listed = "[" + " ".join(w.go_struct() for w in out) + "]"
        raise errors.APIError(400, "BadRequest", f"requested {listed} without impersonating a user")
    return out


def _attributes(w: Wanted) -> dict:
    """The authorization attributes of one impersonation check."""
    attrs = {"resource_request": True, "verb": "impersonate", "namespace": w.namespace, "group": "",
             "version": "", "resource": "", "subresource": "", "name": w.name}
    if w.kind == "ServiceAccount":
        attrs["resource"] = "serviceaccounts"
    elif w.kind == "User":
        attrs["resource"] = "users"
    elif w.kind == "Group":
        attrs["resource"] = "groups"
    elif w.kind == "UserExtra":
        attrs.update(group=AUTHN_GROUP, version=AUTHN_VERSION, resource="userextras", subresource=w.field_path)
    else:
        attrs.update(group=AUTHN_GROUP, version=AUTHN_VERSION, resource="uids")
    return attrs


def impersonated_user(wanted: list[Wanted], groups_specified: bool) -> UserInfo:
    """The identity the request continues as (groups completed as upstream does)."""
    username, uid = "", ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for w in wanted:
        if w.kind == "ServiceAccount":
            username = f"{SA_PREFIX}{w.namespace}:{w.name}"
            if not groups_specified:
                groups = ["system:serviceaccounts", f"system:serviceaccounts:{w.namespace}"]
        elif w.kind == "User":
            username = w.name
        elif w.kind == "Group":
            groups.append(w.name)
        elif w.kind == "UserExtra":
            extra.setdefault(w.field_path, []).append(w.name)
        else:
            uid = w.name
    if username != ANONYMOUS_USER:
        if ALL_AUTHENTICATED not in groups and ALL_UNAUTHENTICATED not in groups:
            groups.append(ALL_AUTHENTICATED)
    elif ALL_UNAUTHENTICATED not in groups:
        groups.append(ALL_UNAUTHENTICATED)
    return UserInfo(username, tuple(groups), uid, {k: tuple(v) for k, v in extra.items()})


def _deny(request: web.Request, requester: Any, attrs: dict, reason: str) -> errors.APIError:
    from kybernetes.apiserver.filters.authorization import forbidden

    if request.app.get("security") is None:
        return forbidden(requester.name, attrs, reason)
    from kybernetes.auth.authorizer import attributes_from_dict, forbidden_message, forbidden_status

    a = attributes_from_dict(requester, attrs)
    return errors.APIError(403, "Forbidden", forbidden_message(a, reason),
                           details=forbidden_status(a, reason).get("details"))


@web.middleware
async def impersonate(request: web.Request, handler):
    wanted = requested(request.headers)
    if not wanted:
        return await handler(request)
    requester = request["user"]
    check = request.app["authorizer"]
    for w in wanted:
        attrs = _attributes(w)
        allowed, _, reason = await check(requester, attrs)
        if not allowed:
            raise _deny(request, requester, attrs, reason)
    user = impersonated_user(wanted, bool(request.headers.getall(GROUP, [])))
    request["user"] = user
    audit.impersonated(request, user)
    return await handler(request)
