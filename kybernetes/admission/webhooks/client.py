"""Calling one webhook over HTTPS (upstream apiserver/pkg/util/webhook): the URL or the
service it names, the configured CA bundle, the per-hook timeout.  Failures become
`CallError`s worded like Go's HTTP client errors, which the dispatcher reports as
`failed calling webhook "<name>": failed to call webhook: <error>`."""

from __future__ import annotations

import asyncio
import base64
import random
import ssl
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

Obj = dict[str, Any]
# (namespace, name) of a Service -> (service, endpoints) objects, None when missing
ServiceLookup = Callable[[str, str], Awaitable[tuple[Optional[Obj], Optional[Obj]]]]


class CallError(Exception):
    """The webhook could not be called or answered unusably (subject to failurePolicy)."""


@dataclass(frozen=True)
class Target:
    """Where to send the review: the URL, the TLS server name to verify, the trusted CAs."""

    url: str
    server_hostname: Optional[str]
    ca_bundle: str


_contexts: dict[str, ssl.SSLContext] = {}


def ssl_context(ca_bundle: str) -> ssl.SSLContext:
    """A client context trusting the base64 PEM `ca_bundle` (the system roots when empty),
    built once per bundle."""
    ctx = _contexts.get(ca_bundle)
    if ctx is None:
        if ca_bundle:
            try:
                pem = base64.b64decode(ca_bundle).decode()
                ctx = ssl.create_default_context(cadata=pem)
            except (ValueError, ssl.SSLError):
                raise CallError("unable to load root certificates: unable to parse bytes as PEM block") from None
        else:
            ctx = ssl.create_default_context()
        if len(_contexts) > 256:
            _contexts.clear()
        _contexts[ca_bundle] = ctx
    return ctx


async def resolve(client_config: Obj, services: ServiceLookup) -> Target:
    """The target of a clientConfig.  A `service` reference resolves, as upstream's endpoint
    service resolver does, to a random ready address of the service's Endpoints on the
    endpoint port named like the service port `port`; TLS verifies `<name>.<namespace>.svc`."""
    ca = client_config.get("caBundle") or ""
    if client_config.get("url"):
        return Target(client_config["url"], None, ca)
    ref = client_config.get("service") or {}
    ns, name, port = ref.get("namespace", ""), ref.get("name", ""), ref.get("port") or 443
    svc, eps = await services(ns, name)
    if svc is None:
        raise CallError(f'service "{name}" not found')
    svc_port = next((p for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == port), None)
    if svc_port is None:
        raise CallError(f'no service port {port} found for service "{name}"')
    svc_type = (svc.get("spec") or {}).get("type") or "ClusterIP"
    if svc_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
        raise CallError(f'unsupported service type "{svc_type}"')
    if eps is None:
        raise CallError(f'endpoints "{name}" not found')
    port_name = svc_port.get("name") or ""
    for subset in eps.get("subsets") or []:
        for ep_port in subset.get("ports") or []:
            if (ep_port.get("name") or "") != port_name or not subset.get("addresses"):
                continue
            ip = random.choice(subset["addresses"]).get("ip", "")
            host = f"[{ip}]" if ":" in ip else ip
            path = ref.get("path") or ""
            return Target(f"https://{host}:{ep_port.get('port')}{path}", f"{name}.{ns}.svc", ca)
    raise CallError(f"service {ns}/{name} has no active endpoints")


_session: Optional[aiohttp.ClientSession] = None
_session_loop: Optional[asyncio.AbstractEventLoop] = None


def _shared_session() -> aiohttp.ClientSession:
    """One pooled client per event loop: connections to a webhook are kept alive between
    calls (pools are keyed by host, port and TLS settings), as upstream's client cache does."""
    global _session, _session_loop
    loop = asyncio.get_running_loop()
    if _session is None or _session.closed or _session_loop is not loop:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30))
        _session_loop = loop
    return _session


async def close() -> None:
    """Close the pooled client (server shutdown)."""
    global _session
    if _session is not None and not _session.closed:
        await _session.close()
    _session = None


def _with_timeout(url: str, seconds: int) -> str:
    # upstream's REST client adds the timeout as a query parameter
    u = urlsplit(url)
    query = f"{u.query}&timeout={seconds}s" if u.query else f"timeout={seconds}s"
    return urlunsplit((u.scheme, u.netloc, u.path or "/", query, u.fragment))


# OpenSSL verify codes and Go's crypto/x509 wording for them
_UNKNOWN_AUTHORITY = {2, 7, 18, 19, 20, 21}
_EXPIRED = {9, 10}


def _x509_reason(err: BaseException) -> str:
    code = getattr(err, "verify_code", None)
    if code in _UNKNOWN_AUTHORITY:
        return "certificate signed by unknown authority"
    if code in _EXPIRED:
        return "certificate has expired or is not yet valid"
    return str(getattr(err, "verify_message", "") or err)


def _go_error(e: BaseException, url: str) -> str:
    """Go's wording for the transport errors users most often meet."""
    u = urlsplit(url)
    hostport = u.netloc
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return f'Post "{url}": context deadline exceeded'
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return f'Post "{url}": tls: failed to verify certificate: x509: {_x509_reason(e.certificate_error)}'
    if isinstance(e, aiohttp.ClientSSLError):
        return f'Post "{url}": {e}'
    if isinstance(e, aiohttp.ClientConnectorError):
        os_err = e.os_error
        if isinstance(os_err, ConnectionRefusedError):
            return f'Post "{url}": dial tcp {hostport}: connect: connection refused'
        return f'Post "{url}": dial tcp {hostport}: {os_err.strerror or os_err}'
    return f'Post "{url}": {e}'


async def post_review(target: Target, review: Obj, timeout_seconds: int) -> Any:
    """POST the review; the decoded JSON answer.  Raises CallError."""
    url = _with_timeout(target.url, timeout_seconds)
    ctx = ssl_context(target.ca_bundle)
    body = orjson.dumps(review)
    try:
        async with asyncio.timeout(timeout_seconds):
            async with _shared_session().post(url, data=body, ssl=ctx, server_hostname=target.server_hostname,
                                              headers={"Content-Type": "application/json",
                                                       "Accept": "application/json, */*"}) as resp:
                data = await resp.read()
                status = resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError) as e:
        raise CallError(_go_error(e, url)) from None
    if not 200 <= status < 300:
        text = data.decode(errors="replace").strip()
        if status >= 500 and text:
            raise CallError(f'an error on the server ("{text[:1024]}") has prevented the request from succeeding')
        raise CallError(f"the server responded with the status code {status} but did not return more information")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise CallError(f"the server returned a response that is not JSON: {e}") from None
