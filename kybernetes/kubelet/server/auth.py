"""Who may call the kubelet's API, decided the way upstream's webhook mode does:
client certificates from the cluster CA (CN user, O groups) or bearer tokens checked
with a TokenReview; every request authorized by a SubjectAccessReview on the node
(`nodes/<subresource>`), answers cached (allowed 5 min, denied 30 s)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from kybernetes.client import Client

ALLOWED_TTL, DENIED_TTL = 300.0, 30.0

_METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
# path prefix -> subresource; anything else is nodes/proxy
_SUBRESOURCES = {"/stats": "stats", "/metrics": "metrics", "/logs": "log", "/spec": "spec",
                 "/checkpoint": "checkpoint"}
# fine-grained checks tried before falling back to nodes/proxy (KubeletFineGrainedAuthz)
_FINE_GRAINED = {"/healthz": "healthz", "/pods": "pods", "/configz": "configz"}


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


def user_from_cert(cert: dict) -> Optional[User]:
    cn, orgs = "", []
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
            elif k == "organizationName":
                orgs.append(v)
    return User(cn, tuple(orgs) + ("system:authenticated",)) if cn else None


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def attributes(method: str, path: str) -> tuple[str, list[str]]:
    """(verb, subresources to try in order) for a request to the kubelet."""
    verb = _METHOD_VERBS.get(method.upper(), method.lower())
    for prefix, sub in _SUBRESOURCES.items():
        if _under(path, prefix):
            return verb, [sub]
    for prefix, sub in _FINE_GRAINED.items():
        if _under(path, prefix):
            return verb, [sub, "proxy"]
    return verb, ["proxy"]


class Authenticator:
    """Bearer tokens through the API's TokenReview (results cached for a short while)."""

    def __init__(self, client: Client, ttl: float = 120.0):
        self.client, self.ttl = client, ttl
        self._cache: dict[str, tuple[float, Optional[User]]] = {}

    async def token(self, token: str) -> Optional[User]:
        hit = self._cache.get(token)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        review = await self.client.resource("authentication.k8s.io", "v1", "tokenreviews").create(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        st = review.get("status") or {}
        user = None
        if st.get("authenticated"):
            u = st.get("user") or {}
            user = User(u.get("username", ""), tuple(u.get("groups") or ()), u.get("uid", ""))
        self._cache[token] = (time.monotonic() + self.ttl, user)
        return user


class Authorizer:
    """SubjectAccessReviews against the API for `nodes/<sub>` of this node."""

    def __init__(self, client: Client, node_name: str):
        self.client, self.node_name = client, node_name
        self._cache: dict[tuple, tuple[float, bool]] = {}

    async def allowed(self, user: User, verb: str, subresource: str) -> bool:
        key = (user, verb, subresource)
        hit = self._cache.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {"user": user.name, "groups": list(user.groups), "uid": user.uid,
                        "resourceAttributes": {"verb": verb, "resource": "nodes", "subresource": subresource,
                                               "name": self.node_name, "version": "v1"}}}
        out = await self.client.resource("authorization.k8s.io", "v1", "subjectaccessreviews").create(sar)
        ok = bool((out.get("status") or {}).get("allowed"))
        self._cache[key] = (time.monotonic() + (ALLOWED_TTL if ok else DENIED_TTL), ok)
        return ok
