"""One probe attempt of each kind, as upstream's prober: exec through CRI ExecSync,
httpGet (2xx/3xx succeed; redirects followed on the same host only), tcpSocket (a
connection opens) and grpc (grpc.health.v1 Check answers SERVING)."""

from __future__ import annotations

import asyncio
import enum
import ssl
import urllib.parse
from typing import Any, Optional

from kybernetes.api.goformat import go_quote
from kybernetes.cri import CRIError
from kybernetes.kubelet.prober import grpc_health
from kybernetes.kubelet.prober.netns import connect

Obj = dict[str, Any]
USER_AGENT = "kube-probe/1.37"
MAX_BODY = 10 * 1024
MAX_REDIRECTS = 10


class ProbeResult(enum.Enum):
    SUCCESS = "success"
    WARNING = "warning"   # counts as success (e.g. a redirect to another host)
    FAILURE = "failure"
    UNKNOWN = "unknown"


def resolve_port(port: Any, container: Obj) -> int:
    """An int port, or a named port of the container."""
    if isinstance(port, int):
        return port
    s = str(port)
    if s.isdigit():
        return int(s)
    for p in container.get("ports") or []:
        if p.get("name") == s:
            return int(p["containerPort"])
    raise ValueError(f"couldn't find port: {s} in {container.get('name')}")


async def exec_probe(cri, cid: str, command: list[str], timeout: int) -> tuple[ProbeResult, str]:
    try:
        r = await cri.exec_sync(cid, command, timeout=timeout)
    except CRIError as e:
        if "DEADLINE" in str(e).upper() or "timeout" in str(e).lower():
            return ProbeResult.FAILURE, f"command {go_quote(' '.join(command))} timed out"
        return ProbeResult.UNKNOWN, str(e)
    out = (r.stdout + r.stderr).decode(errors="replace")
    if r.exit_code == 0:
        return ProbeResult.SUCCESS, out
    return ProbeResult.FAILURE, out


async def tcp_probe(host: str, port: int, netns: Optional[str], timeout: float) -> tuple[ProbeResult, str]:
    try:
        sock = await connect(host, port, netns, timeout)
    except (OSError, asyncio.TimeoutError) as e:
        return ProbeResult.FAILURE, f"dial tcp {host}:{port}: {_why(e)}"
    sock.close()
    return ProbeResult.SUCCESS, ""


def _why(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "i/o timeout"
    if isinstance(e, ConnectionRefusedError):
        return "connect: connection refused"
    return str(e)


async def _http_once(scheme: str, host: str, port: int, target: str, headers: dict[str, str],
                     netns: Optional[str], timeout: float) -> tuple[int, dict[str, str], bytes]:
    sock = await connect(host, port, netns, timeout)
    ctx = None
    if scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # upstream probes skip verification
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=host if ctx else None), timeout)
    try:
        hdrs = {"Host": f"{host}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
        hdrs.update(headers)
        req = f"GET {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        writer.write(req.encode("latin-1"))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise OSError(f"malformed HTTP response {status_line[:80]!r}")
        code = int(parts[1])
        resp_headers: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            resp_headers[k.strip().lower()] = v.strip()
        body = b""
        try:
            body = await asyncio.wait_for(reader.read(MAX_BODY), timeout)
        except asyncio.TimeoutError:
            pass
        return code, resp_headers, body
    finally:
        writer.close()


async def http_probe(spec: Obj, container: Obj, pod_ip: str, netns: Optional[str],
                     timeout: float) -> tuple[ProbeResult, str]:
    scheme = (spec.get("scheme") or "HTTP").lower()
    host = spec.get("host") or pod_ip
    try:
        port = resolve_port(spec.get("port"), container)
    except ValueError as e:
        return ProbeResult.UNKNOWN, str(e)
    path = spec.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    headers: dict[str, str] = {}
    for h in spec.get("httpHeaders") or []:
        # a header given as Host/User-Agent/Accept replaces the default
        headers[h.get("name", "")] = h.get("value", "")
    target = path
    url = f"{scheme}://{host}:{port}{path}"
    try:
        for _ in range(MAX_REDIRECTS + 1):
            code, rh, body = await _http_once(scheme, host, port, target, headers, netns, timeout)
            if code in (301, 302, 303, 307, 308) and rh.get("location"):
                nxt = urllib.parse.urljoin(url, rh["location"])
                u = urllib.parse.urlsplit(nxt)
                if u.hostname != host:
                    return ProbeResult.WARNING, f"Probe terminated redirects, Response body: {body.decode(errors='replace')}"
                scheme = u.scheme or scheme
                port = u.port or (443 if scheme == "https" else 80)
                target = u.path or "/"
                if u.query:
                    target += "?" + u.query
                url = nxt
                continue
            break
        else:
            return ProbeResult.FAILURE, "stopped after 10 redirects"
    except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
        return ProbeResult.FAILURE, f'Get "{url}": {_why(e)}'
    if 200 <= code < 400:
        return ProbeResult.SUCCESS, body.decode(errors="replace")
    return ProbeResult.FAILURE, f"HTTP probe failed with statuscode: {code}"


async def run_probe(probe: Obj, container: Obj, *, cri, cid: str, pod_ip: str,
                    netns: Optional[str]) -> tuple[ProbeResult, str]:
    """Run `probe` once against the container; (result, output or failure message)."""
    timeout = int(probe.get("timeoutSeconds") or 1)
    if probe.get("exec") is not None:
        return await exec_probe(cri, cid, list(probe["exec"].get("command") or []), timeout)
    if probe.get("httpGet") is not None:
        return await http_probe(probe["httpGet"], container, pod_ip, netns, timeout)
    if probe.get("tcpSocket") is not None:
        spec = probe["tcpSocket"]
        try:
            port = resolve_port(spec.get("port"), container)
        except ValueError as e:
            return ProbeResult.UNKNOWN, str(e)
        return await tcp_probe(spec.get("host") or pod_ip, port, netns, timeout)
    if probe.get("grpc") is not None:
        spec = probe["grpc"]
        return await grpc_health.check(pod_ip, int(spec.get("port") or 0), spec.get("service") or "", netns, timeout)
    return ProbeResult.UNKNOWN, "missing probe handler"
