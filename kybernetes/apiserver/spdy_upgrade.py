"""kubectl's fallback for exec, attach and port-forward: `POST` with `Upgrade: SPDY/3.1`.

aiohttp only upgrades connections to WebSocket, so the SPDY upgrade takes the connection
over itself: the HTTP parser is told the connection is upgraded and every further byte
goes to the SPDY session.  Towards the kubelet the API server always speaks WebSocket:
  - remote commands (X-Stream-Protocol-Version v4.channel.k8s.io, or the older
    v3/v2/channel.k8s.io with plain-text errors): kubectl's SPDY streams (error, stdin,
    stdout, stderr, resize) map to v5 channels, and the end of
    stdin becomes the v5 close signal, so `exec -i ... < file` ends properly;
  - port-forward (portforward.k8s.io): the SPDY bytes pass through unchanged, tunnelled
    in WebSocket binary messages (SPDY/3.1+portforward.k8s.io) as kubectl itself does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Optional

from aiohttp import WSMsgType, web

from kybernetes.apiserver import errors
from kybernetes.kubelet.server import wschannel
from kybernetes.streaming import channels as ch
from kybernetes.streaming.spdy import Session, Stream
from kybernetes.streaming.tasks import until_first_done

VERSION_HEADER = "X-Stream-Protocol-Version"
# remote-command protocols over SPDY, newest first: v5 is v4 here (its close signal is a
# WebSocket matter), v4 has the Status error stream, v3 added the resize stream, v1/v2
# differ only in how servers waited for streams
REMOTECOMMAND_PROTOCOLS = [ch.WS_V5, ch.SPDY_V4, "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]
STATUS_PROTOCOLS = (ch.WS_V5, ch.SPDY_V4)
STREAM_WAIT = 30.0  # how long kubectl may take to open the streams it asked for
LINGER = 5.0  # after the last status, how long to wait for kubectl to hang up


def is_spdy_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/3.1") and \
        "upgrade" in request.headers.get("Connection", "").lower()


def offered_protocols(request: web.Request) -> list[str]:
    out: list[str] = []
    for v in request.headers.getall("X-Stream-Protocol-Version", []):
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


def negotiate(request: web.Request, supported: list[str]) -> Optional[str]:
    """The client's first protocol the server supports, or None."""
    for p in offered_protocols(request):
        if p in supported:
            return p
    return None


def refusal(request: web.Request, supported: list[str]) -> web.Response:
    """Upstream's plain-text 403 for a failed negotiation, listing what the server accepts."""
    offered = offered_protocols(request)
    if not offered:
        return web.Response(status=400, text=f"unable to upgrade: {VERSION_HEADER} is required")
    text = (f"unable to upgrade: unable to negotiate protocol: client supports [{' '.join(offered)}], "
            f"server accepts [{' '.join(supported)}]\n")
    resp = web.Response(status=403, text=text)
    for p in supported:
        resp.headers.add("X-Accepted-Stream-Protocol-Versions", p)
    return resp


class _Feed:
    """Stands in for aiohttp's payload parser on the taken-over connection."""

    def __init__(self) -> None:
        self.q: asyncio.Queue[bytes] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.q.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.q.put_nowait(b"")


async def take_over(request: web.Request, protocol: str) -> tuple[_Feed, web.StreamResponse]:
    """Answer 101 Switching Protocols and own the connection's bytes from then on."""
    proto = request.protocol
    parser = getattr(proto, "_parser", None)
    if parser is None or not hasattr(parser, "set_upgraded") or not hasattr(proto, "set_parser"):
        raise errors.bad_request("Upgrade request required")
    # before the 101 goes out: kubectl sends its first frame as soon as it reads it
    parser.set_upgraded(True)
    proto._upgraded = True
    feed = _Feed()
    proto.set_parser(feed)
    resp = web.StreamResponse(status=101, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                   "X-Stream-Protocol-Version": protocol})
    resp.force_close()
    await resp.prepare(request)
    return feed, resp


async def tunnel_portforward(request: web.Request, upstream) -> web.StreamResponse:
    """Raw SPDY from kubectl <-> SPDY-in-WebSocket to the kubelet."""
    feed, resp = await take_over(request, ch.PORTFORWARD_SPDY)

    async def up() -> None:
        while data := await feed.q.get():
            await upstream.send_bytes(data)

    async def down() -> None:
        async for msg in upstream:
            if msg.type != WSMsgType.BINARY:
                break
            await resp.write(msg.data)

    await until_first_done(up(), down())
    return resp


async def bridge_remotecommand(request: web.Request, upstream, *, stdin: bool, stdout: bool, stderr: bool,
                               tty: bool, protocol: str = ch.SPDY_V4) -> web.StreamResponse:
    """kubectl's SPDY remote-command streams <-> the kubelet's v5 channel WebSocket.
    Before v4 (`protocol`) the error stream carries the bare failure message, and before
    v3 there is no resize stream."""
    feed, resp = await take_over(request, protocol)
    status_form = wschannel.CHANNEL_V4 if protocol in STATUS_PROTOCOLS else wschannel.CHANNEL_V1
    plain_errors = wschannel.ChannelCodec(status_form)
    resizable = tty and protocol in (*STATUS_PROTOCOLS, "v3.channel.k8s.io")
    expected = {"error"} | {n for n, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr and not tty),
                                            ("resize", resizable)) if on}
    streams: dict[str, Stream] = {}
    ready = asyncio.Event()

    def on_stream(st: Stream) -> None:
        asyncio.ensure_future(sess.reply(st))
        streams[st.headers.get("streamtype", "")] = st
        if expected <= set(streams):
            ready.set()

    sess = Session(resp.write, server=True, on_stream=on_stream)

    async def read_conn() -> None:
        try:
            while data := await feed.q.get():
                sess.feed(data)
        finally:
            sess.shutdown()
            ready.set()

    async def to_kubelet(name: str, channel: int, close_signal: bool) -> None:
        st = streams.get(name)
        if st is None:
            return
        while data := await st.read():
            await upstream.send_bytes(bytes([channel]) + data)
        if close_signal and upstream.protocol == ch.WS_V5:
            await upstream.send_bytes(bytes([ch.CLOSE, channel]))

    async def from_kubelet() -> None:
        targets = {ch.STDOUT: streams.get("stdout"), ch.STDERR: streams.get("stderr"),
                   ch.ERROR: streams.get("error")}
        async for msg in upstream:
            # (an empty message only tells that the kubelet's side is ready)
            if msg.type != WSMsgType.BINARY or len(msg.data) < 2:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                continue
            st: Optional[Stream] = targets.get(msg.data[0])
            data: Optional[bytes] = msg.data[1:]
            if msg.data[0] == ch.ERROR:
                data = plain_errors.status(data)
            if st is not None and data:
                await st.write(data)
        for st in targets.values():
            if st is not None:
                await st.close()

    reader = asyncio.create_task(read_conn())
    pumps: list[asyncio.Task] = []
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ready.wait(), STREAM_WAIT)
        if not expected <= set(streams):
            return resp
        pumps = [asyncio.create_task(to_kubelet("stdin", ch.STDIN, True)),
                 asyncio.create_task(to_kubelet("resize", ch.RESIZE, False))]
        await from_kubelet()
        # kubectl hangs up once it has read the status; don't wait for it forever
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), LINGER)
    finally:
        for t in pumps + [reader]:
            t.cancel()
    return resp
