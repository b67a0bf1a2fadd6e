"""A scripted Transport double for client, informer and controller unit tests."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable, Iterable, Optional, Union

import orjson

from kybernetes.client.errors import TransportError
from kybernetes.client.transport import HTTPRequest

Obj = dict[str, Any]


class FakeResponse:
    """A response made of chunks; with `hang`, reading past them blocks until closed."""

    def __init__(self, status: int = 200, chunks: Iterable[bytes] = (), headers: Optional[dict[str, str]] = None,
                 hang: bool = False) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in (headers or {"Content-Type": "application/json"}).items()}
        self._chunks = list(chunks)
        self._hang = hang
        self._closed = asyncio.Event()
        self.closed = False

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    async def read(self) -> bytes:
        return b"".join(self._chunks)  # not consumed: a scripted answer may be given again

    async def read_chunk(self) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        if self._hang and not self.closed:
            await self._closed.wait()
        return b""

    async def close(self) -> None:
        self.closed = True
        self._closed.set()


def json_response(obj: Any, status: int = 200, headers: Optional[dict[str, str]] = None) -> FakeResponse:
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return FakeResponse(status, [orjson.dumps(obj)], h)


def status_response(code: int, reason: str, message: str = "", headers: Optional[dict[str, str]] = None) -> FakeResponse:
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message or reason, "reason": reason, "code": code}, code, headers)


def watch_response(events: Iterable[tuple[str, Obj]], *, hang: bool = False, split: int = 0) -> FakeResponse:
    """Newline-delimited events; split > 0 cuts the byte stream into pieces of that size
    (so lines straddle chunks)."""
    data = b"".join(orjson.dumps({"type": t, "object": o}) + b"\n" for t, o in events)
    chunks = [data[i:i + split] for i in range(0, len(data), split)] if split else ([data] if data else [])
    return FakeResponse(200, chunks, hang=hang)


def gone_event(message: str = "too old resource version: 1 (5)") -> tuple[str, Obj]:
    return ("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": "Expired", "code": 410})


Responder = Callable[[HTTPRequest], Union[FakeResponse, Exception, Awaitable[FakeResponse]]]


class FakeTransport:
    """Routes requests to responders; unmatched requests get 404.  Every request is
    recorded in `requests`."""

    def __init__(self) -> None:
        self.requests: list[HTTPRequest] = []
        self._routes: list[tuple[Callable[[HTTPRequest], bool], Responder]] = []
        self.closed = False

    def route(self, match: Callable[[HTTPRequest], bool], respond: Responder) -> None:
        self._routes.append((match, respond))

    def script(self, method: str, path: str, *responses: Union[FakeResponse, Exception, Responder],
               watch: Optional[bool] = None) -> list:
        """Answer matching requests with `responses` in order (the last one repeats)."""
        queue = list(responses)

        def match(req: HTTPRequest) -> bool:
            if req.method != method or req.path != path:
                return False
            if watch is not None and (dict(req.params).get("watch") == "true") != watch:
                return False
            return True

        def respond(req: HTTPRequest):
            r = queue.pop(0) if len(queue) > 1 else queue[0]
            if callable(r) and not isinstance(r, (FakeResponse, Exception)):
                return r(req)
            return r

        self._routes.append((match, respond))
        return queue

    async def send(self, request: HTTPRequest, *, stream: bool = False) -> FakeResponse:
        self.requests.append(request)
        for match, respond in self._routes:
            if match(request):
                r = respond(request)
                if inspect.isawaitable(r):
                    r = await r
                if isinstance(r, Exception):
                    raise r
                return r
        return status_response(404, "NotFound", f"no route for {request.method} {request.path}")

    async def close(self) -> None:
        self.closed = True

    def sent(self, method: str, path: str) -> list[HTTPRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]


def conn_error(sent: bool = True) -> TransportError:
    return TransportError("connection reset", sent=sent)


def obj(name: str, rv: int, namespace: Optional[str] = "default", **extra: Any) -> Obj:
    meta: Obj = {"name": name, "resourceVersion": str(rv), "uid": f"uid-{name}"}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **extra}
