"""Subresources the API server serves by calling the pod's kubelet: pods/log (streamed,
chunked when following, or over WebSocket as `binary.k8s.io`/`base64.binary.k8s.io`),
pods/exec and pods/attach (every WebSocket channel protocol the kubelet speaks, see
kubelet/server/wschannel.py, relayed message for message), pods/portforward (SPDY/3.1
inside WebSocket, what kubectl 1.37 sends first, or the v4 channel protocol of the
official clients) and nodes/proxy (plain requests and WebSocket upgrades alike).  The
kubelet is found from the Node: its first InternalIP, ExternalIP or Hostname address
and `status.daemonEndpoints.kubeletEndpoint.Port`.  The API server presents its
kubelet-client certificate (CN kube-apiserver-kubelet-client, O system:masters, as
upstream's apiserver-kubelet-client) and checks the kubelet's serving certificate
against the cluster CA.

A WebSocket upgrade (a GET) to exec, attach or portforward also needs `create` on the
subresource, not just `get` (upstream's AuthorizePodWebsocketUpgradeCreatePermission).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web

from kybernetes.apiserver import errors, spdy_upgrade
from kybernetes.apiserver.objects import object_key
from kybernetes.kubelet.server import wschannel
from kybernetes.streaming import channels as ch
from kybernetes.streaming.tasks import until_first_done

Obj = dict[str, Any]

POD_SUBRESOURCES = {"log", "exec", "attach", "portforward"}
NODE_SUBRESOURCES = {"proxy"}
ADDRESS_PREFERENCE = ("InternalIP", "ExternalIP", "Hostname")
CLIENT_CN, CLIENT_ORG = "kube-apiserver-kubelet-client", "system:masters"
CHANNEL_PROTOCOLS = wschannel.REMOTECOMMAND
PORTFORWARD_PROTOCOLS = (ch.PORTFORWARD_WS_TUNNEL, *wschannel.PORTFORWARD)
LOG_OPTIONS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes")
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            500: "InternalError", 503: "ServiceUnavailable"}


def client_ssl_context(tls_dir: Path) -> ssl.SSLContext:
    """TLS for calls to kubelets: the kubelet-client cert (issued from the cluster CA on
    first use, kept in `tls_dir`) and the CA to check kubelets' serving certs."""
    from kybernetes.auth import pki

    crt, key = tls_dir / "apiserver-kubelet-client.crt", tls_dir / "apiserver-kubelet-client.key"
    if not (crt.exists() and key.exists()):
        ca = pki.load_ca(tls_dir.parent)
        cert_pem, key_pem = pki.issue_client_cert(ca, CLIENT_CN, [CLIENT_ORG], pki.LEAF_VALIDITY.days)
        pki.write_atomic(key, key_pem, 0o600)
        pki.write_atomic(crt, cert_pem, 0o644)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls_dir / "ca.crt"))
    ctx.load_cert_chain(crt, key)
    return ctx


def _error_for(status: int, text: str) -> errors.APIError:
    return errors.APIError(status, _REASONS.get(status, "InternalError"), text.strip() or f"status {status}")


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _read(api, resource: str, namespace: str, name: str) -> Obj:
    s = api.catalog.lookup("", "v1", resource)
    kv = await api.objects.read(s, object_key(s, namespace, name))
    if kv is None:
        raise errors.not_found(resource, "", name)
    return api.objects.decode(kv)


async def kubelet_base(api, node_name: str) -> str:
    """https://host:port of a node's kubelet."""
    node = await _read(api, "nodes", "", node_name)
    st = node.get("status") or {}
    addrs = {}
    for a in st.get("addresses") or []:
        addrs.setdefault(a.get("type"), a.get("address"))
    host = next((addrs[t] for t in ADDRESS_PREFERENCE if addrs.get(t)), None)
    if host is None:
        raise errors.APIError(500, "InternalError", f'no preferred addresses found; known addresses: {[]}')
    port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _session(request: web.Request) -> aiohttp.ClientSession:
    ctx = request.app.get("kubelet_client_ssl")
    if ctx is None:
        raise errors.APIError(503, "ServiceUnavailable", "the API server has no kubelet client credentials")
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx),
                                 timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))


def _container(pod: Obj, requested: str) -> str:
    """The container a request means, as upstream's pod LogLocation/ExecLocation pick it."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if inits:
            msg += f" or one of the init containers: [{' '.join(inits)}]"
        if ephemeral:
            msg += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
        raise errors.bad_request(msg)
    if requested not in containers + inits + ephemeral:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


async def _authorize_create(request: web.Request, r) -> None:
    """A WebSocket GET to exec/attach/portforward must also be allowed to create it."""
    from kybernetes.apiserver.filters.authorization import forbidden, request_attributes

    attrs = dict(request_attributes(request), verb="create")
    allowed, _, reason = await request.app["authorizer"](request["user"], attrs)
    if not allowed:
        security = request.app.get("security")
        if security is not None:
            from kybernetes.auth.authorizer import attributes_from_dict, forbidden_message, forbidden_status

            a = attributes_from_dict(request["user"], attrs)
            raise errors.APIError(403, "Forbidden", forbidden_message(a, reason),
                                  details=forbidden_status(a, reason).get("details"))
        raise forbidden(request["user"].name, attrs, reason)


async def serve(api, request: web.Request, r) -> web.StreamResponse:
    """Entry point from the resource dispatcher for a kubelet-backed subresource."""
    info = r.info
    if info.resource == "nodes":
        return await node_proxy(api, request, info)
    sub = info.subresource
    if sub == "log":
        if info.verb != "get":
            raise errors.method_not_allowed()
        return await pod_log(api, request, info)
    if info.verb not in ("get", "create"):
        raise errors.method_not_allowed()
    websocket, spdy = _is_websocket(request), spdy_upgrade.is_spdy_upgrade(request)
    if not (websocket or spdy):
        raise errors.bad_request("Upgrade request required")
    if info.verb == "get":
        await _authorize_create(request, r)
    pod = await _read(api, "pods", info.namespace, info.name)
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.bad_request(f"pod {info.name} does not have a host assigned")
    base = await kubelet_base(api, node)
    ns, name = quote(info.namespace, safe=""), quote(info.name, safe="")
    if sub == "portforward":
        url, protocols = f"{base}/portForward/{ns}/{name}", PORTFORWARD_PROTOCOLS
        # the kubelet's WebSocket port-forward names its ports `port`, as upstream passes them on
        ports = [p for v in request.query.getall("ports", []) for p in v.split(",") if p]
        params: list[tuple[str, str]] = [("port", ",".join(ports))] if ports else []
    else:
        c = _container(pod, request.query.get("container", ""))
        url, protocols = f"{base}/{sub}/{ns}/{name}/{quote(c, safe='')}", CHANNEL_PROTOCOLS
        params = [(k, v) for k, v in request.query.items() if k in ("command", "stdin", "stdout", "stderr", "tty")]
    if spdy:
        return await _spdy(request, sub, url, params)
    offered = wschannel.offered(request.headers.getall("Sec-WebSocket-Protocol", []))
    if wschannel.negotiate(offered, protocols) is None:
        raise errors.APIError(403, "Forbidden", f"unable to upgrade: {wschannel.refusal(offered, protocols)}")
    # the kubelet picks among the ones both sides know, in the caller's order
    return await _relay_websocket(request, url, params, [p for p in offered if p in protocols])


async def _connect(session: aiohttp.ClientSession, url: str, params, protocols) -> aiohttp.ClientWebSocketResponse:
    try:
        return await session.ws_connect(url, params=params, protocols=protocols, autoping=True, max_msg_size=0,
                                        compress=0)
    except aiohttp.WSServerHandshakeError as e:
        raise _error_for(e.status if e.status >= 400 else 500, f"error dialing backend: {e.message}") from None
    except (aiohttp.ClientError, OSError) as e:
        raise errors.APIError(500, "InternalError", f"error dialing backend: {e}") from None


async def _spdy(request: web.Request, sub: str, url: str, params) -> web.StreamResponse:
    """kubectl's SPDY fallback, bridged to the kubelet's WebSocket endpoints."""
    if sub == "portforward":
        if spdy_upgrade.negotiate(request, [ch.PORTFORWARD_SPDY]) is None:
            return spdy_upgrade.refusal(request, [ch.PORTFORWARD_SPDY])
        async with _session(request) as session:
            async with await _connect(session, url, params, [ch.PORTFORWARD_WS_TUNNEL]) as upstream:
                return await spdy_upgrade.tunnel_portforward(request, upstream)
    protocol = spdy_upgrade.negotiate(request, spdy_upgrade.REMOTECOMMAND_PROTOCOLS)
    if protocol is None:
        return spdy_upgrade.refusal(request, spdy_upgrade.REMOTECOMMAND_PROTOCOLS)
    q = request.query
    flags = {k: q.get(k, "").lower() in ("1", "true") for k in ("stdin", "stdout", "stderr", "tty")}
    async with _session(request) as session:
        async with await _connect(session, url, params, [ch.WS_V5, ch.WS_V4]) as upstream:
            return await spdy_upgrade.bridge_remotecommand(request, upstream, protocol=protocol, **flags)


async def _relay_websocket(request: web.Request, url: str, params, protocols: list[str], *,
                           passthrough: bool = False) -> web.StreamResponse:
    """Relay a WebSocket to the kubelet message for message.  `passthrough` (nodes/proxy):
    a refused handshake comes back with the kubelet's status, as a proxy would return it."""
    async with _session(request) as session:
        try:
            upstream = await _connect(session, url, params, protocols)
        except errors.APIError as e:
            if not passthrough or e.code < 400:
                raise
            return web.Response(status=e.code, text=e.message)
        ws = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else [], autoping=True,
                                   max_msg_size=0, compress=False)
        await ws.prepare(request)

        async def pump(src, dst) -> None:
            async for msg in src:
                if msg.type == WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                else:
                    break
            await dst.close()

        try:
            # either side ending the session (the kubelet after the exit status, the
            # caller by going away) ends the other one
            await until_first_done(pump(ws, upstream), pump(upstream, ws))
        finally:
            await upstream.close()
            await ws.close()
        return ws


async def pod_log(api, request: web.Request, info) -> web.StreamResponse:
    from kybernetes.registry.core.pods import validate_log_options

    try:
        causes = validate_log_options(request.query)
    except ValueError as e:
        raise errors.bad_request(str(e)) from None
    if causes:
        raise errors.invalid("PodLogOptions", "", info.name, causes)
    pod = await _read(api, "pods", info.namespace, info.name)
    c = _container(pod, request.query.get("container", ""))
    ws_protocol = None
    if _is_websocket(request):
        offered = wschannel.offered(request.headers.getall("Sec-WebSocket-Protocol", []))
        ws_protocol = wschannel.negotiate(offered, wschannel.READER)
        if ws_protocol is None:
            raise errors.APIError(403, "Forbidden",
                                  f"unable to upgrade: {wschannel.refusal(offered, wschannel.READER)}")
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        # upstream answers an unscheduled pod's logs with an empty body
        if ws_protocol is not None:
            return await _stream_websocket(request, ws_protocol, None)
        return web.Response(body=b"", content_type="text/plain")
    base = await kubelet_base(api, node)
    url = f"{base}/containerLogs/{quote(info.namespace, safe='')}/{quote(info.name, safe='')}/{quote(c, safe='')}"
    params = [(k, v) for k, v in request.query.items() if k in LOG_OPTIONS]
    async with _session(request) as session:
        try:
            kr = await session.get(url, params=params)
        except (aiohttp.ClientError, OSError) as e:
            raise errors.APIError(500, "InternalError", f"Get \"{url}\": {e}") from None
        async with kr:
            if kr.status != 200:
                raise _error_for(kr.status, await kr.text())
            if ws_protocol is not None:
                return await _stream_websocket(request, ws_protocol, kr.content)
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await resp.prepare(request)
            async for chunk in kr.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp


async def _stream_websocket(request: web.Request, protocol: str, content) -> web.WebSocketResponse:
    """A byte stream over WebSocket as upstream's wsstream reader sends it: an empty
    message first, then one message per chunk; ends when the stream does or the caller
    hangs up (whatever the caller sends is ignored)."""
    ws = web.WebSocketResponse(protocols=[protocol] if protocol else [], autoping=True, compress=False)
    await ws.prepare(request)

    async def send(data: bytes) -> None:
        msg = wschannel.reader_message(protocol, data)
        if isinstance(msg, str):
            await ws.send_str(msg)
        else:
            await ws.send_bytes(msg)

    async def copy() -> None:
        await send(b"")
        if content is not None:
            async for chunk in content.iter_any():
                if chunk:
                    await send(chunk)

    async def ignore() -> None:
        async for _ in ws:
            pass

    try:
        await until_first_done(copy(), ignore())
    finally:
        await ws.close()
    return ws


async def node_proxy(api, request: web.Request, info) -> web.StreamResponse:
    """/api/v1/nodes/NAME/proxy/PATH -> the kubelet's /PATH (method, query and body kept);
    a WebSocket upgrade is passed through with the caller's subprotocols."""
    name = info.name
    if ":" in name:  # NAME:PORT selects another port on the node, as upstream
        name = name.split(":", 1)[0]
    base = await kubelet_base(api, name)
    rest = "/".join(quote(p, safe="") for p in info.parts[3:])
    if rest and request.path.endswith("/"):
        rest += "/"  # /proxy/logs/ is the kubelet's /logs/ (a directory listing), not /logs
    url = f"{base}/{rest}"
    if _is_websocket(request):
        offered = wschannel.offered(request.headers.getall("Sec-WebSocket-Protocol", []))
        return await _relay_websocket(request, url, list(request.query.items()), offered, passthrough=True)
    body = await request.read()
    headers = {k: v for k, v in request.headers.items()
               if k.lower() in ("accept", "content-type")}
    async with _session(request) as session:
        try:
            kr = await session.request(request.method, url, params=list(request.query.items()), data=body or None,
                                       headers=headers)
        except (aiohttp.ClientError, OSError) as e:
            raise errors.APIError(503, "ServiceUnavailable", f"error trying to reach service: {e}") from None
        async with kr:
            resp = web.StreamResponse(status=kr.status)
            if kr.headers.get("Content-Type"):
                resp.headers["Content-Type"] = kr.headers["Content-Type"]
            await resp.prepare(request)
            async for chunk in kr.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp
