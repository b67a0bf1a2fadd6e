"""exec, attach and port-forward streams of the kubelet's server.

exec/attach: the caller speaks a WebSocket channel protocol (see wschannel: binary or
base64 frames, plain-text or Status errors, v5's close signal).  The kubelet asks CRI
Exec/Attach for a URL on containerd's stream server and speaks SPDY/3.1 to it
(remotecommand v4), because only SPDY can half-close stdin there; the final Status
(exit code) comes back on the error stream and goes out on channel 3.

port-forward, two forms:
  - SPDY/3.1 framed inside WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`,
    what kubectl tunnels through the API server): each forwarded connection is a pair
    of streams (error, data) with the same `requestid`;
  - the channel protocol (`v4.channel.k8s.io`, its base64 form, or none), as the
    official clients use it: a data/error channel pair per `port` query parameter.
Either way the kubelet connects to localhost:port inside the pod's network namespace.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from kybernetes.kubelet.prober.netns import connect
from kybernetes.kubelet.server import wschannel
from kybernetes.streaming import channels as ch
from kybernetes.streaming.spdy import Session, Stream
from kybernetes.streaming.tasks import until_first_done

log = logging.getLogger("kybernetes.kubelet.server")

CHANNEL_PROTOCOLS = list(wschannel.REMOTECOMMAND)
PORTFORWARD_PROTOCOLS = [wschannel.PORTFORWARD_TUNNEL, *wschannel.PORTFORWARD]
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = ch.STDIN, ch.STDOUT, ch.STDERR, ch.ERROR, ch.RESIZE, ch.CLOSE


class UpgradeError(Exception):
    pass


async def open_spdy(url: str, netns: Optional[str], protocols: list[str]) -> tuple[Session, str, asyncio.Task]:
    """POST an SPDY/3.1 upgrade to a stream-server URL (socket made inside `netns`) and
    return (client session, negotiated protocol, reader task)."""
    u = urlsplit(url)
    sock = await connect(u.hostname or "127.0.0.1", u.port or 80, netns, 10)
    reader, writer = await asyncio.open_connection(sock=sock)
    target = u.path + (f"?{u.query}" if u.query else "")
    lines = [f"POST {target} HTTP/1.1", f"Host: {u.netloc}", "Connection: Upgrade", "Upgrade: SPDY/3.1",
             *[f"X-Stream-Protocol-Version: {p}" for p in protocols], "Content-Length: 0", "", ""]
    writer.write("\r\n".join(lines).encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *header_lines = head.decode(errors="replace").split("\r\n")
    if " 101 " not in status_line + " ":
        body = await asyncio.wait_for(reader.read(4096), 2)
        writer.close()
        raise UpgradeError(f"{status_line}: {body.decode(errors='replace').strip()}")
    proto = ""
    for h in header_lines:
        k, _, v = h.partition(":")
        if k.strip().lower() == "x-stream-protocol-version":
            proto = v.strip()

    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    sess = Session(send, server=False)

    async def pump() -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                sess.feed(data)
        finally:
            sess.shutdown()
            writer.close()

    return sess, proto, asyncio.create_task(pump())


def first_message(codec: wschannel.ChannelCodec, *, stdout: bool, stderr: bool) -> wschannel.Message:
    """The empty message that tells the caller the stream is set up, on the lowest
    channel it will hear from (stdout, else stderr, else error), as upstream sends it."""
    return codec.encode(STDOUT if stdout else STDERR if stderr else ERROR, b"")


async def send_status(ws: web.WebSocketResponse, codec: wschannel.ChannelCodec, status_json: bytes) -> None:
    """The final Status on the error channel, in the form the protocol wants."""
    payload = codec.status(status_json)
    if payload and not ws.closed:
        await send_message(ws, codec.encode(ERROR, payload))


async def send_message(ws: web.WebSocketResponse, msg: wschannel.Message) -> None:
    """A channel message as the protocol frames it (text for base64, else binary)."""
    if isinstance(msg, str):
        await ws.send_str(msg)
    else:
        await ws.send_bytes(msg)


async def relay_remotecommand(ws: web.WebSocketResponse, url: str, netns: Optional[str], *,
                              stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
    """Bridge a channel-protocol WebSocket to containerd's SPDY remotecommand server."""
    codec = wschannel.ChannelCodec(ws.ws_protocol or "")
    sess, _, reader = await open_spdy(url, netns, [ch.SPDY_V4])
    try:
        err = await sess.open_stream({"streamtype": "error"})
        sin = await sess.open_stream({"streamtype": "stdin"}) if stdin else None
        sout = await sess.open_stream({"streamtype": "stdout"}) if stdout else None
        serr = await sess.open_stream({"streamtype": "stderr"}) if stderr and not tty else None
        resize = await sess.open_stream({"streamtype": "resize"}) if tty else None

        async def out(st: Optional[Stream], channel: int) -> bytes:
            got = b""
            while st is not None:
                data = await st.read()
                if not data:
                    break
                if channel == ERROR:
                    got += data
                elif not ws.closed:
                    await send_message(ws, codec.encode(channel, data))
            return got

        async def inbound() -> None:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                frame = codec.decode(msg.data)
                if frame is None:
                    continue
                channel, data = frame
                if channel == STDIN and sin is not None:
                    await sin.write(data)
                elif channel == RESIZE and resize is not None:
                    await resize.write(data)
                elif channel == CLOSE and codec.close_signal and data[:1] == bytes([STDIN]) and sin is not None:
                    await sin.close()
            # the caller went away: stop feeding the process
            if sin is not None:
                await sin.close()

        feeder = asyncio.create_task(inbound())
        _, _, status = await asyncio.gather(out(sout, STDOUT), out(serr, STDERR), out(err, ERROR))
        await send_status(ws, codec, status or ch.SUCCESS)
        feeder.cancel()
        await ws.close()
    finally:
        reader.cancel()
        sess.shutdown()


async def serve_portforward(ws: web.WebSocketResponse, netns: Optional[str], pod_desc: str) -> None:
    """SPDY port-forward carried in WebSocket binary messages; each data stream is joined
    to a TCP connection to localhost:port inside the pod's network namespace."""
    errors: dict[str, asyncio.Future] = {}
    tasks: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()

    async def send(data: bytes) -> None:
        if not ws.closed:
            await ws.send_bytes(data)

    def error_stream(rid: str) -> asyncio.Future:
        return errors.setdefault(rid, loop.create_future())

    def on_stream(st: Stream) -> None:
        t = asyncio.ensure_future(handle(st))
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    async def handle(st: Stream) -> None:
        await sess.reply(st)
        rid, kind = st.headers.get("requestid", ""), st.headers.get("streamtype", "")
        if kind == "error":
            fut = error_stream(rid)
            if not fut.done():
                fut.set_result(st)
            return
        if kind != "data":
            await st.reset()
            return
        err = await asyncio.wait_for(error_stream(rid), 30)
        try:
            port = int(st.headers.get("port", ""))
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await err.write(f"invalid port {st.headers.get('port', '')!r}".encode())
            await err.close()
            await st.close()
            return
        await forward(st, err, port)

    async def forward(st: Stream, err: Stream, port: int) -> None:
        try:
            sock = await connect("127.0.0.1", port, netns, 10)
        except OSError as e:
            await err.write(f"error forwarding port {port} to pod {pod_desc}: {e}".encode())
            await err.close()
            await st.close()
            return
        reader, writer = await asyncio.open_connection(sock=sock)

        async def to_pod() -> None:
            while True:
                data = await st.read()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            try:
                writer.write_eof()
            except OSError:
                pass

        async def from_pod() -> None:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await st.write(data)
            await st.close()

        try:
            await asyncio.gather(to_pod(), from_pod())
        except (OSError, ConnectionError):
            await st.reset()
        finally:
            writer.close()
            await err.close()

    sess = Session(send, server=True, on_stream=on_stream)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                sess.feed(msg.data)
    finally:
        sess.shutdown()
        for t in list(tasks):
            t.cancel()



async def serve_portforward_channels(ws: web.WebSocketResponse, netns: Optional[str], ports: list[int],
                                     pod_desc: str) -> None:
    """Port-forward over a channel protocol (no subprotocol, v4.channel.k8s.io or
    v4.base64.channel.k8s.io): port i owns data channel 2i and error channel 2i+1, both
    opened with the port number (uint16 little endian).  Each port gets one connection
    inside the pod for the whole session; when every forward has ended the session closes."""
    codec = wschannel.ChannelCodec(ws.ws_protocol or "")
    inboxes: list[asyncio.Queue[Optional[bytes]]] = [asyncio.Queue() for _ in ports]
    for i, port in enumerate(ports):
        await send_message(ws, codec.encode(2 * i, wschannel.port_prefix(port)))
        await send_message(ws, codec.encode(2 * i + 1, wschannel.port_prefix(port)))

    async def inbound() -> None:
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                frame = codec.decode(msg.data)
                if frame is not None and frame[0] % 2 == 0 and frame[0] // 2 < len(ports):
                    inboxes[frame[0] // 2].put_nowait(frame[1])
        finally:
            for q in inboxes:
                q.put_nowait(None)

    async def forward(i: int, port: int) -> None:
        try:
            sock = await connect("127.0.0.1", port, netns, 10)
        except OSError as e:
            if not ws.closed:
                await send_message(ws, codec.encode(2 * i + 1, f"error forwarding port {port} to pod {pod_desc}: {e}"
                                             .encode()))
            return
        reader, writer = await asyncio.open_connection(sock=sock)

        async def to_pod() -> None:
            while (data := await inboxes[i].get()) is not None:
                writer.write(data)
                await writer.drain()

        async def from_pod() -> None:
            while data := await reader.read(65536):
                if ws.closed:
                    break
                await send_message(ws, codec.encode(2 * i, data))

        # as the runtime's forwarder: whichever direction ends first ends this port
        try:
            await until_first_done(to_pod(), from_pod())
        finally:
            writer.close()

    feeder = asyncio.create_task(inbound())
    try:
        await asyncio.gather(*(forward(i, p) for i, p in enumerate(ports)), return_exceptions=True)
    finally:
        feeder.cancel()
        await ws.close()
