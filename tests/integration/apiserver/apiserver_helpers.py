"""Raw-HTTP helpers for the API server integration tests."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any, Optional

import aiohttp
import orjson


# Objects upstream controllers put in every namespace by themselves (root-ca-cert-publisher);
# tests that count or sequence objects in a fresh namespace look past them.
AUTO_CREATED = frozenset({"kube-root-ca.crt"})


def uniq(prefix: str = "t") -> str:
    """A fresh DNS-1123 name."""
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class Resp:
    status: int
    headers: "aiohttp.typedefs.LooseHeaders"
    body: bytes

    @property
    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise AssertionError(f"HTTP {self.status}: body is not JSON: {self.body[:500]!r}") from None

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def expect(self, status: int) -> Any:
        """Assert the status code and return the decoded JSON body."""
        assert self.status == status, f"expected HTTP {status}, got {self.status}: {self.body[:2000]!r}"
        return self.json

    def status_obj(self, code: int, reason: str) -> dict:
        """Assert this is a meta/v1 Status failure with `code` and `reason`; return it."""
        st = self.expect(code)
        assert st.get("kind") == "Status" and st.get("apiVersion") == "v1", st
        assert st.get("status") == "Failure", st
        assert st.get("code") == code, st
        assert st.get("reason") == reason, st
        assert isinstance(st.get("message"), str) and st["message"], st
        return st


class Api:
    """A tiny raw client: JSON in, `Resp` out, admin client certificate."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def request(self, method: str, path: str, *, json: Any = None, data: Optional[bytes] = None,
                      headers: Optional[dict] = None, params: Optional[dict] = None,
                      content_type: Optional[str] = None) -> Resp:
        hdrs = dict(headers or {})
        if json is not None:
            data = orjson.dumps(json)
            hdrs.setdefault("Content-Type", content_type or "application/json")
        elif content_type is not None:
            hdrs["Content-Type"] = content_type
        async with self.session.request(method, self.base + path, data=data, headers=hdrs, params=params) as r:
            body = await r.read()
            return Resp(r.status, r.headers, body)

    async def get(self, path: str, **kw) -> Resp:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, obj: Any = None, **kw) -> Resp:
        return await self.request("POST", path, json=obj, **kw)

    async def put(self, path: str, obj: Any = None, **kw) -> Resp:
        return await self.request("PUT", path, json=obj, **kw)

    async def patch(self, path: str, obj: Any, content_type: str = "application/merge-patch+json", **kw) -> Resp:
        return await self.request("PATCH", path, json=obj, content_type=content_type, **kw)

    async def delete(self, path: str, obj: Any = None, **kw) -> Resp:
        return await self.request("DELETE", path, json=obj, **kw)

    async def namespace(self, prefix: str = "ns") -> str:
        name = uniq(prefix)
        (await self.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": name}})).expect(201)
        return name

    async def configmap(self, ns: str, name: Optional[str] = None, data: Optional[dict] = None,
                        labels: Optional[dict] = None) -> dict:
        meta: dict = {"name": name or uniq("cm")}
        if labels:
            meta["labels"] = labels
        return (await self.post(f"/api/v1/namespaces/{ns}/configmaps",
                                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                                 "data": data or {"k": "v"}})).expect(201)

    def watch(self, path: str, params: dict) -> "Watch":
        return Watch(self, path, params)


class Watch:
    """A JSON-lines watch stream: `async with api.watch(path, params) as w: ev = await w.next()`."""

    def __init__(self, api: Api, path: str, params: dict) -> None:
        self.api = api
        self.path = path
        self.params = {"watch": "1", **params}
        self.resp: Optional[aiohttp.ClientResponse] = None
        self._cm = None

    async def __aenter__(self) -> "Watch":
        self._cm = self.api.session.get(self.api.base + self.path, params=self.params)
        self.resp = await self._cm.__aenter__()
        assert self.resp.status == 200, f"watch: HTTP {self.resp.status}: {(await self.resp.read())[:2000]!r}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._cm.__aexit__(*exc)

    async def next(self, timeout: float = 10) -> Optional[dict]:
        """The next event, or None when the server ended the stream."""
        assert self.resp is not None
        line = await asyncio.wait_for(self.resp.content.readline(), timeout)
        if not line:
            return None
        line = line.strip()
        if not line:
            return await self.next(timeout)
        ev = orjson.loads(line)
        name = ((ev.get("object") or {}).get("metadata") or {}).get("name")
        if ev.get("type") != "ERROR" and name in AUTO_CREATED:
            return await self.next(timeout)
        return ev

    async def expect_quiet(self, seconds: float) -> None:
        """Assert no event arrives within `seconds` (a bounded read, not synchronisation)."""
        try:
            ev = await self.next(seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"unexpected watch event: {ev}")

    async def end(self, timeout: float = 10) -> list[dict]:
        """Every remaining event until the server closes the stream."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            ev = await self.next(max(0.01, deadline - time.monotonic()))
            if ev is None:
                return out
            out.append(ev)
