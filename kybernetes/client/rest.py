"""The REST client: `Client` (connection, retries, generic requests) and `ResourceHandle`
(the verbs of one group/version/resource)."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Literal, Mapping, Optional, Union
from urllib.parse import quote

import orjson

from kybernetes.client.errors import Gone, TransportError, status_error
from kybernetes.client.transport import AiohttpTransport, HTTPRequest, HTTPResponse, Transport

__all__ = ["Client", "ResourceHandle", "WatchStream", "PATCH_CONTENT_TYPES"]

log = logging.getLogger("kybernetes.client")

Obj = dict[str, Any]
Params = Union[Mapping[str, Any], Iterable[tuple[str, Any]], None]

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
_MAX_RETRY_AFTER = 60.0
USER_AGENT = "kybernetes-client/0.1"


def _norm_params(params: Params) -> list[tuple[str, str]]:
    """Query parameters as strings, dropping None; booleans as true/false."""
    if not params:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    out: list[tuple[str, str]] = []
    for k, v in items:
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        out.append((k, str(v)))
    return out


def _retry_after(resp: HTTPResponse) -> Optional[float]:
    raw = resp.header("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, min(float(raw.strip()), _MAX_RETRY_AFTER))
    except ValueError:
        return None  # HTTP-date form: the API server never sends it


def decode_body(resp_body: bytes, content_type: Optional[str]) -> Any:
    if not resp_body:
        return None
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct in ("application/json", "") or ct.endswith("+json"):
        try:
            return orjson.loads(resp_body)
        except orjson.JSONDecodeError:
            if ct:
                raise
    try:
        return resp_body.decode()
    except UnicodeDecodeError:
        return resp_body


class Client:
    """An async client of one API server.

    Use as `async with Client.from_kubeconfig(path) as c:` or call `await c.close()`.
    Every HTTP exchange goes through `self.transport` (see transport.py)."""

    def __init__(
        self,
        server: str,
        ssl_context: Optional[ssl.SSLContext] = None,
        token: Optional[str] = None,
        *,
        transport: Optional[Transport] = None,
        tls_server_name: Optional[str] = None,
        namespace: str = "default",
        timeout: float = 60.0,
        max_retries: int = 5,
        retry_backoff: float = 0.1,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.namespace = namespace  # the kubeconfig context's namespace, for callers who want it
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.user_agent = user_agent
        self.transport: Transport = transport or AiohttpTransport(
            self.server, ssl_context, server_hostname=tls_server_name)

    @classmethod
    def from_kubeconfig(
        cls, path: Union[str, Path], *, context: Optional[str] = None, **kwargs: Any
    ) -> "Client":
        """A client for the kubeconfig's current (or named) context; TLS trusts only its CA."""
        from kybernetes.client.kubeconfig import load_kubeconfig, ssl_context

        cfg = load_kubeconfig(path, context=context)
        ctx = ssl_context(cfg) if cfg.server.startswith("https") else None
        return cls(cfg.server, ctx, cfg.token, tls_server_name=cfg.tls_server_name,
                   namespace=cfg.namespace, **kwargs)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # ------------------------------------------------------------------ addressing
    def resource(self, group: str, version: str, resource: str, *, namespaced: Optional[bool] = None) -> "ResourceHandle":
        """A handle on one resource; `namespaced` (when known) lets it check calls."""
        return ResourceHandle(self, group, version, resource, namespaced=namespaced)

    # ------------------------------------------------------------------ the wire
    def _headers(self, accept: str, content_type: Optional[str], extra: Optional[Mapping[str, str]]) -> dict[str, str]:
        h = {"Accept": accept, "User-Agent": self.user_agent}
        if content_type:
            h["Content-Type"] = content_type
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if extra:
            h.update(extra)
        return h

    async def send(self, req: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        """Send with retries: 429/503 answers that carry Retry-After (any verb: the server
        did not act on them) and connection failures (idempotent verbs, or any verb when
        the request never left).  Error statuses are returned, not raised."""
        attempt = 0
        while True:
            try:
                resp = await self.transport.send(req, stream=stream)
            except TransportError as e:
                retryable = e.temporary and (req.method in _IDEMPOTENT or not e.sent)
                if not retryable or attempt >= self.max_retries:
                    raise
                delay = min(self.retry_backoff * (2 ** attempt), 5.0) * random.uniform(0.8, 1.2)
                log.debug("retrying %s %s after %s (%.2fs)", req.method, req.path, e, delay)
            else:
                if resp.status not in (429, 503) or attempt >= self.max_retries:
                    return resp
                delay_ra = _retry_after(resp)
                if delay_ra is None:
                    return resp
                await resp.close()
                delay = delay_ra
                log.debug("server asked to retry %s %s in %.1fs (%d)", req.method, req.path, delay, resp.status)
            attempt += 1
            await asyncio.sleep(delay)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Params = None,
        content_type: Optional[str] = None,
        *,
        headers: Optional[Mapping[str, str]] = None,
        accept: str = "application/json",
        timeout: Optional[float] = None,
        raw: bool = False,
    ) -> Any:
        """A request to any path.  `body` (not bytes/str) is sent as JSON.  Answers the
        decoded JSON (or text); with raw=True, the HTTPResponse.  Raises APIStatusError
        for answers >= 400."""
        data: Optional[bytes]
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = orjson.dumps(body)
            content_type = content_type or "application/json"
        req = HTTPRequest(method.upper(), path, _norm_params(params),
                          self._headers(accept, content_type, headers), data,
                          timeout if timeout is not None else self.timeout)
        resp = await self.send(req)
        if raw:
            return resp
        payload = await resp.read()
        decoded = decode_body(payload, resp.header("Content-Type"))
        if resp.status >= 400:
            raise status_error(decoded, resp.status)
        return decoded

    def stream_watch(self, path: str, params: Params = None, *, idle_timeout: Optional[float] = None,
                     accept: str = "application/json") -> "WatchStream":
        """A watch on `path` (params should include watch=1 or use the /watch/ form)."""
        req = HTTPRequest("GET", path, _norm_params(params), self._headers(accept, None, None), None, idle_timeout)
        return WatchStream(self, req)

    # ------------------------------------------------------------------ discovery
    async def server_resources(self, *, preferred_only: bool = False) -> list[Any]:
        """Every served resource as discovery.APIResource (see discovery.server_resources)."""
        from kybernetes.client.discovery import server_resources

        return await server_resources(self, preferred_only=preferred_only)

    async def server_version(self) -> Obj:
        return await self.request("GET", "/version")


def _split_namespace(obj: Obj, namespace: Optional[str]) -> Optional[str]:
    return namespace or (obj.get("metadata") or {}).get("namespace") or None


class ResourceHandle:
    """The verbs of one resource.  Single-object calls on a namespaced resource need a
    namespace (argument or the object's metadata.namespace); list/watch/delete_collection
    without one span all namespaces."""

    # what reads ask the server for (a metadata-only handle asks for PartialObjectMetadata)
    accept: str = "application/json"
    list_accept: str = "application/json"

    def __init__(self, client: Client, group: str, version: str, resource: str, *, namespaced: Optional[bool] = None) -> None:
        self.client = client
        self.group = group
        self.version = version
        self.resource = resource
        self.namespaced = namespaced

    def __repr__(self) -> str:
        return f"ResourceHandle({self.group or 'core'}/{self.version}/{self.resource})"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: Optional[str] = None, name: Optional[str] = None, subresource: Optional[str] = None) -> str:
        """The URL path of the collection, an object, or an object's subresource."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.resource}"
        if name is not None:
            if not name:
                raise ValueError("a name is required")
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base

    def _object_ns(self, namespace: Optional[str]) -> Optional[str]:
        if self.namespaced is True and not namespace:
            raise ValueError(f"{self.resource} is namespaced: a namespace is required")
        if self.namespaced is False and namespace:
            raise ValueError(f"{self.resource} is cluster-scoped: no namespace may be given")
        return namespace

    # ------------------------------------------------------------------ reads
    async def get(self, name: str, namespace: Optional[str] = None, *, subresource: Optional[str] = None) -> Obj:
        return await self.client.request("GET", self.path(self._object_ns(namespace), name, subresource),
                                         accept=self.accept)

    async def list(
        self,
        namespace: Optional[str] = None,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        limit: Optional[int] = None,
        continue_: Optional[str] = None,
        resource_version: Optional[str] = None,
        *,
        resource_version_match: Optional[str] = None,
        timeout_seconds: Optional[int] = None,
    ) -> Obj:
        """One LIST call (one page when `limit` is given)."""
        params = {
            "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None,
            "limit": limit or None,
            "continue": continue_ or None,
            "resourceVersion": resource_version,
            "resourceVersionMatch": resource_version_match,
            "timeoutSeconds": timeout_seconds,
        }
        return await self.client.request("GET", self.path(namespace), params=params, accept=self.list_accept)

    async def list_all(
        self,
        namespace: Optional[str] = None,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        *,
        page_size: int = 500,
        resource_version: Optional[str] = None,
    ) -> Obj:
        """Every page of a list, merged; metadata.resourceVersion is the snapshot's.

        If a continue token expires mid-way (410) the list is redone in one piece, as
        client-go's pager does, so the result is still one consistent snapshot."""
        items: list[Obj] = []
        first: Optional[Obj] = None
        cont: Optional[str] = None
        while True:
            try:
                page = await self.list(namespace, label_selector, field_selector, limit=page_size,
                                       continue_=cont, resource_version=None if cont else resource_version)
            except Gone:
                if cont is None:
                    raise
                log.info("%r: continue token expired; listing in one piece", self)
                return await self.list(namespace, label_selector, field_selector, resource_version=resource_version)
            if first is None:
                first = page
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                break
        assert first is not None
        meta = dict(first.get("metadata") or {})
        meta.pop("continue", None)
        meta.pop("remainingItemCount", None)
        return {**first, "metadata": meta, "items": items}

    def watch(
        self,
        namespace: Optional[str] = None,
        resource_version: Optional[str] = None,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        *,
        allow_watch_bookmarks: bool = False,
        timeout_seconds: Optional[int] = None,
        send_initial_events: Optional[bool] = None,
        resource_version_match: Optional[str] = None,
        name: Optional[str] = None,
    ) -> "WatchStream":
        """An async iterator of (type, object).  ERROR events raise: 410 as Gone.
        Use `async with` (or aclose()) to release the connection early."""
        if name:
            fs = f"metadata.name={name}"
            field_selector = f"{field_selector},{fs}" if field_selector else fs
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None,
            "allowWatchBookmarks": True if allow_watch_bookmarks else None,
            "timeoutSeconds": timeout_seconds,
            "sendInitialEvents": send_initial_events,
            "resourceVersionMatch": resource_version_match,
        }
        # idle limit: the server ends the watch at timeoutSeconds; allow for slack
        idle = (timeout_seconds + 30.0) if timeout_seconds else None
        return self.client.stream_watch(self.path(namespace), params, idle_timeout=idle, accept=self.accept)

    # ------------------------------------------------------------------ writes
    async def create(self, obj: Obj, namespace: Optional[str] = None, *, dry_run: bool = False,
                     field_manager: Optional[str] = None) -> Obj:
        ns = self._object_ns(_split_namespace(obj, namespace))
        params = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        return await self.client.request("POST", self.path(ns), obj, params)

    async def update(self, obj: Obj, namespace: Optional[str] = None, *, subresource: Optional[str] = None,
                     dry_run: bool = False, field_manager: Optional[str] = None) -> Obj:
        """PUT the object (a resourceVersion in it makes the write conditional)."""
        meta = obj.get("metadata") or {}
        ns = self._object_ns(_split_namespace(obj, namespace))
        params = {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}
        return await self.client.request("PUT", self.path(ns, meta.get("name") or "", subresource), obj, params)

    async def update_status(self, obj: Obj, namespace: Optional[str] = None) -> Obj:
        return await self.update(obj, namespace, subresource="status")

    async def patch(
        self,
        name: str,
        patch: Any,
        type: Literal["merge", "strategic", "json", "apply"] = "merge",
        namespace: Optional[str] = None,
        subresource: Optional[str] = None,
        *,
        field_manager: Optional[str] = None,
        force: Optional[bool] = None,
        dry_run: bool = False,
    ) -> Obj:
        try:
            ctype = PATCH_CONTENT_TYPES[type]
        except KeyError:
            raise ValueError(f"unknown patch type {type!r}; one of {sorted(PATCH_CONTENT_TYPES)}") from None
        body = patch if isinstance(patch, (bytes, str)) else orjson.dumps(patch)
        params = {"fieldManager": field_manager, "force": force, "dryRun": "All" if dry_run else None}
        return await self.client.request("PATCH", self.path(self._object_ns(namespace), name, subresource),
                                         body, params, ctype)

    @staticmethod
    def _delete_options(propagation_policy: Optional[str], grace_period_seconds: Optional[int],
                        preconditions: Optional[Mapping[str, str]], dry_run: bool) -> Optional[Obj]:
        opts: Obj = {}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            opts["preconditions"] = dict(preconditions)
        if dry_run:
            opts["dryRun"] = ["All"]
        if not opts:
            return None
        return {"kind": "DeleteOptions", "apiVersion": "v1", **opts}

    async def delete(
        self,
        name: str,
        namespace: Optional[str] = None,
        propagation_policy: Optional[str] = None,
        grace_period_seconds: Optional[int] = None,
        preconditions: Optional[Mapping[str, str]] = None,
        *,
        dry_run: bool = False,
    ) -> Obj:
        """DELETE one object; answers the server's reply (the object, or a Status)."""
        body = self._delete_options(propagation_policy, grace_period_seconds, preconditions, dry_run)
        params = {"dryRun": "All" if dry_run else None}
        return await self.client.request("DELETE", self.path(self._object_ns(namespace), name), body, params)

    async def delete_collection(
        self,
        namespace: Optional[str] = None,
        label_selector: Optional[str] = None,
        field_selector: Optional[str] = None,
        propagation_policy: Optional[str] = None,
        grace_period_seconds: Optional[int] = None,
        *,
        dry_run: bool = False,
    ) -> Obj:
        body = self._delete_options(propagation_policy, grace_period_seconds, None, dry_run)
        params = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                  "dryRun": "All" if dry_run else None}
        return await self.client.request("DELETE", self.path(namespace), body, params)


class WatchStream:
    """A watch response read as newline-delimited JSON events.

    Iterating yields (type, object).  An ERROR event raises the matching APIStatusError
    (Gone for 410); the stream ends (StopAsyncIteration) when the server closes it.
    Transport failures raise TransportError.  Always closed on exit or error."""

    def __init__(self, client: Client, req: HTTPRequest) -> None:
        self._client = client
        self._req = req
        self._resp: Optional[HTTPResponse] = None
        self._buf = bytearray()
        self._done = False

    async def _open(self) -> HTTPResponse:
        resp = await self._client.send(self._req, stream=True)
        if resp.status >= 400:
            try:
                body = await resp.read()
            finally:
                await resp.close()
            raise status_error(decode_body(body, resp.header("Content-Type") or "application/json"), resp.status)
        return resp

    def __aiter__(self) -> AsyncIterator[tuple[str, Obj]]:
        return self

    async def __anext__(self) -> tuple[str, Obj]:
        if self._done:
            raise StopAsyncIteration
        try:
            if self._resp is None:
                self._resp = await self._open()
            while True:
                nl = self._buf.find(b"\n")
                if nl >= 0:
                    line = bytes(self._buf[:nl])
                    del self._buf[: nl + 1]
                    if not line.strip():
                        continue
                    return self._event(line)
                chunk = await self._resp.read_chunk()
                if not chunk:
                    if self._buf.strip():  # a last event without its newline
                        line = bytes(self._buf)
                        self._buf.clear()
                        return self._event(line)
                    await self.aclose()
                    raise StopAsyncIteration
                self._buf += chunk
        except StopAsyncIteration:
            raise
        except BaseException:
            await self.aclose()
            raise

    def _event(self, line: bytes) -> tuple[str, Obj]:
        try:
            ev = orjson.loads(line)
            etype, obj = ev["type"], ev["object"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            raise TransportError(f"malformed watch event: {line[:200]!r}") from e
        if etype == "ERROR":
            raise status_error(obj, int((obj or {}).get("code") or 500) if isinstance(obj, dict) else 500)
        return etype, obj

    async def aclose(self) -> None:
        self._done = True
        resp, self._resp = self._resp, None
        if resp is not None:
            await resp.close()

    async def __aenter__(self) -> "WatchStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
