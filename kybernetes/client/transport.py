"""The transport: the one place an HTTP call happens.

`Client` builds `HTTPRequest`s and hands them to a `Transport`; the default one speaks
HTTPS through a pooled aiohttp session.  Anything with the same two methods can take
its place (an in-process transport, or a test double) without callers changing.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Mapping, Optional, Protocol, runtime_checkable

import aiohttp

from kybernetes.client.errors import TransportError

__all__ = ["HTTPRequest", "HTTPResponse", "Transport", "AiohttpTransport"]


@dataclass
class HTTPRequest:
    """One HTTP request, relative to the server's base URL."""

    method: str
    path: str  # absolute path, already percent-encoded where needed
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: Optional[bytes] = None
    # buffered: total seconds for the whole exchange; streaming: max idle seconds between reads
    timeout: Optional[float] = None


@runtime_checkable
class HTTPResponse(Protocol):
    """A response: buffered (read()) or streaming (read_chunk() until b"")."""

    status: int
    headers: Mapping[str, str]  # keys looked up case-insensitively by callers via header()

    def header(self, name: str) -> Optional[str]: ...

    async def read(self) -> bytes: ...

    async def read_chunk(self) -> bytes: ...

    async def close(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """Sends requests; `stream=True` returns before the body is read (the caller closes)."""

    async def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse: ...

    async def close(self) -> None: ...


class _BufferedResponse:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self._body = body
        self._given = False

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name)

    async def read(self) -> bytes:
        return self._body

    async def read_chunk(self) -> bytes:
        if self._given:
            return b""
        self._given = True
        return self._body

    async def close(self) -> None:
        pass


class _StreamingResponse:
    def __init__(self, resp: aiohttp.ClientResponse, idle_timeout: Optional[float]) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self._idle = idle_timeout
        self._eof = False

    def header(self, name: str) -> Optional[str]:
        return self._resp.headers.get(name)

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise TransportError(f"reading response: {e!r}") from e

    async def read_chunk(self) -> bytes:
        try:
            # readany() answers b"" only at EOF (readchunk() may at an HTTP chunk edge)
            async with asyncio.timeout(self._idle):
                data = await self._resp.content.readany()
        except TimeoutError as e:
            raise TransportError("stream idle for too long") from e
        except (aiohttp.ClientError, OSError) as e:
            raise TransportError(f"reading stream: {e!r}") from e
        if not data:
            self._eof = True
        return data

    async def close(self) -> None:
        if self._eof:
            self._resp.release()  # read to the end: the connection can be reused
            return
        # An unfinished stream cannot go back to the pool.  Abort rather than close:
        # a graceful TLS shutdown would need loop turns that a stopping caller may
        # never give, leaking the socket; a watch has nothing left to say anyway.
        conn = self._resp.connection
        if conn is not None and conn.transport is not None:
            conn.transport.abort()
        self._resp.close()


class AiohttpTransport:
    """HTTPS (or HTTP) to one server through a pooled aiohttp session.

    The session is created on first use so the object may be built outside a loop.
    `trust_env` stays off: proxies and CA bundles from the environment are ignored."""

    def __init__(
        self,
        base_url: str,
        ssl_context: Optional[ssl.SSLContext] = None,
        *,
        server_hostname: Optional[str] = None,
        pool_limit: int = 0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.pool_limit = pool_limit  # 0 = unbounded: watches hold connections for minutes
        self.connect_timeout = connect_timeout
        self._session: Optional[aiohttp.ClientSession] = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self.ssl_context if self.ssl_context is not None else True,
                limit=self.pool_limit,
                limit_per_host=0,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                auto_decompress=True,
                skip_auto_headers=("Content-Type",),
            )
        return self._session

    async def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        session = self._get_session()
        if stream:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=None)
        else:
            timeout = aiohttp.ClientTimeout(total=request.timeout, sock_connect=self.connect_timeout)
        kwargs = {}
        if self.server_hostname:
            kwargs["server_hostname"] = self.server_hostname
        try:
            resp = await session.request(
                request.method,
                self.base_url + request.path,
                params=request.params or None,
                headers=request.headers,
                data=request.body,
                timeout=timeout,
                allow_redirects=False,
                **kwargs,
            )
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as e:
            raise TransportError(f"TLS error talking to {self.base_url}: {e}", sent=False, temporary=False) from e
        except aiohttp.ClientConnectorError as e:
            raise TransportError(f"cannot connect to {self.base_url}: {e}", sent=False) from e
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise TransportError(f"{request.method} {request.path}: {e!r}") from e
        if stream:
            return _StreamingResponse(resp, request.timeout)
        try:
            body = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            resp.close()
            raise TransportError(f"{request.method} {request.path}: reading response: {e!r}") from e
        finally:
            resp.release()
        return _BufferedResponse(resp.status, resp.headers, body)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
