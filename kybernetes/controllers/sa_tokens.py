"""Legacy service-account token Secrets, filled only when requested (upstream's tokens
controller since 1.24): a user creates a Secret of type `kubernetes.io/service-account-token`
annotated `kubernetes.io/service-account.name`, and this controller writes a non-expiring
token, `ca.crt` and `namespace` into it and records the service account's uid.

A token Secret whose service account does not exist (or no longer has the recorded uid) is
deleted, as upstream does; the authenticator rejects such tokens anyway.
"""

from __future__ import annotations

import base64
import copy
from typing import Any, Optional, Union

from kybernetes.client import Client, Conflict, NotFound
from kybernetes.client.workqueue import RateLimiter
from kybernetes.controllers.base import Controller, InformerFactory

__all__ = ["TokensController", "TOKEN_SECRET_TYPE", "SA_NAME_ANNOTATION", "SA_UID_ANNOTATION"]

Obj = dict[str, Any]

TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"


def _b64(s: Union[str, bytes]) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class TokensController(Controller):
    """Fills requested legacy token Secrets; keys are `namespace/secret-name`."""

    name = "tokens-controller"
    workers = 2

    def __init__(self, client: Client, informers: Optional[InformerFactory] = None, *, issuer: Any,
                 root_ca: Union[str, bytes], workers: Optional[int] = None,
                 rate_limiter: Optional[RateLimiter] = None) -> None:
        self.issuer = issuer  # auth.serviceaccount_tokens.TokenIssuer (holds the signing key)
        self.root_ca = root_ca.encode() if isinstance(root_ca, str) else root_ca
        super().__init__(client, informers, workers=workers, rate_limiter=rate_limiter)

    def setup(self) -> None:
        self.secret_api = self.client.resource("", "v1", "secrets", namespaced=True)
        self.secrets = self.watch("", "v1", "secrets", field_selector=f"type={TOKEN_SECRET_TYPE}")
        self.accounts = self.watch("", "v1", "serviceaccounts", enqueue=None)
        self.accounts.add_handlers(on_add=self._account_changed, on_update=lambda old, new: self._account_changed(new),
                                   on_delete=self._account_changed)

    def _account_changed(self, sa: Obj) -> None:
        meta = sa.get("metadata") or {}
        for s in self.secrets.list():
            sm = s.get("metadata") or {}
            if sm.get("namespace") == meta.get("namespace") and \
                    (sm.get("annotations") or {}).get(SA_NAME_ANNOTATION) == meta.get("name"):
                self.queue.add(f"{sm['namespace']}/{sm['name']}")

    async def reconcile(self, key: str) -> None:
        secret = self.secrets.get(key)
        if secret is None or secret.get("type") != TOKEN_SECRET_TYPE:
            return
        meta = secret["metadata"]
        if meta.get("deletionTimestamp"):
            return
        annotations = meta.get("annotations") or {}
        sa_name = annotations.get(SA_NAME_ANNOTATION)
        ns = meta["namespace"]
        sa = self.accounts.get(f"{ns}/{sa_name}") if sa_name else None
        want_uid = annotations.get(SA_UID_ANNOTATION)
        if sa is None or (want_uid and want_uid != sa["metadata"].get("uid")):
            # the account is gone (or was recreated): its token secret goes too, as upstream
            try:
                await self.secret_api.delete(meta["name"], namespace=ns,
                                             preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
                self.log.info("secret %s: service account %s/%s not found, deleted the token secret", key, ns, sa_name)
            except (NotFound, Conflict):
                pass
            return
        data = secret.get("data") or {}
        if data.get("token") and data.get("ca.crt") and data.get("namespace") and want_uid:
            return
        new = copy.deepcopy(secret)
        new["metadata"].setdefault("annotations", {})[SA_UID_ANNOTATION] = sa["metadata"]["uid"]
        filled = dict(data)
        if not filled.get("token"):
            filled["token"] = _b64(self.issuer.issue_legacy(sa, new))
        filled.setdefault("ca.crt", _b64(self.root_ca))
        filled.setdefault("namespace", _b64(ns))
        new["data"] = filled
        try:
            # conditional on the cached version: a conflict retries from a fresher cache
            await self.secret_api.update(new, ns)
            self.log.info("secret %s: filled the token of service account %s", key, sa_name)
        except NotFound:
            return
