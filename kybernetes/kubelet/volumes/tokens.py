"""The kubelet's service account token manager: TokenRequests bound to the pod, cached and
renewed once 80% of the requested lifetime has passed (or after 24 h), as upstream's
token manager does."""

from __future__ import annotations

import datetime
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

from kybernetes.kubelet.volumes.base import Obj, VolumeError

MAX_TTL = 24 * 3600.0
MAX_JITTER = 10.0


@dataclass
class _Entry:
    token: str
    expires: float       # unix seconds
    requested: int       # spec.expirationSeconds we asked for


def _parse_time(s: str) -> float:
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


class TokenManager:
    def __init__(self, client: Any, clock: Callable[[], float] = time.time):
        self.client = client
        self.clock = clock
        self.cache: dict[tuple, _Entry] = {}
        self.requests = 0

    def requires_refresh(self, e: _Entry) -> bool:
        now = self.clock()
        issued = e.expires - e.requested
        jitter = random.random() * MAX_JITTER
        if now > issued + MAX_TTL - jitter:
            return True
        return now > e.expires - e.requested * 20 / 100 - jitter

    async def token(self, pod: Obj, service_account: str, *, audience: str = "", expiration_seconds: int = 3600) -> str:
        meta = pod["metadata"]
        key = (meta["namespace"], service_account, audience, expiration_seconds, meta["uid"])
        e = self.cache.get(key)
        if e is not None and not self.requires_refresh(e):
            return e.token
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else None,
                         "expirationSeconds": expiration_seconds,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                            "uid": meta["uid"]}}}
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{service_account}/token"
        try:
            tr = await self.client.request("POST", path, body)
        except Exception as ex:
            if e is not None and e.expires > self.clock():
                return e.token  # keep serving the still-valid token, retry on the next sync
            raise VolumeError(f"failed to fetch token: {ex}") from None
        self.requests += 1
        st = tr.get("status") or {}
        self.cache[key] = _Entry(st["token"], _parse_time(st["expirationTimestamp"]), expiration_seconds)
        return st["token"]

    def forget_pod(self, uid: str) -> None:
        for k in [k for k in self.cache if k[4] == uid]:
            del self.cache[k]
