"""SPDY/3.1 framing, as Kubernetes streaming uses it (moby/spdystream on the Go side).

One `Session` multiplexes byte streams over any ordered byte transport: the caller feeds
received bytes in with `feed()` and gives a coroutine that sends bytes.  Streams are
opened by either side with a header block (`streamtype`, `port`, `requestid`, ...),
carry DATA frames and end with a FIN flag or a RST_STREAM.  Header blocks are
zlib-compressed with the SPDY/3 dictionary, one compression context per direction.
Flow control (WINDOW_UPDATE) is not enforced: spdystream does not enforce it either.

    sess = Session(send, server=True, on_stream=handle)
    sess.feed(data)                 # from the transport
    st = await sess.open_stream({"streamtype": "error"})   # client side
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from typing import Awaitable, Callable, Optional

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL = 5


def _dictionary() -> bytes:
    """The SPDY/3 header-compression dictionary: length-prefixed common header names and
    values, then a run of common status lines and value fragments (SPDY/3 draft, 2.6.10.1)."""
    words = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
             "accept-ranges age allow authorization cache-control connection content-base content-encoding "
             "content-language content-length content-location content-md5 content-range content-type date "
             "etag expect expires from host if-match if-modified-since if-none-match if-range "
             "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
             "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
             "user-agent vary via warning www-authenticate method get status").split()
    words += ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    out = b"".join(struct.pack("!I", len(w)) + w.encode() for w in words)
    tail = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
            "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
            "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
            "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    return out + tail.encode()


DICTIONARY = _dictionary()


def encode_headers(headers: dict[str, str]) -> bytes:
    """An uncompressed SPDY/3 name/value block (names lower-cased, as on the wire)."""
    out = [struct.pack("!I", len(headers))]
    for k, v in headers.items():
        kb, vb = k.lower().encode(), str(v).encode()
        out.append(struct.pack("!I", len(kb)) + kb + struct.pack("!I", len(vb)) + vb)
    return b"".join(out)


def decode_headers(block: bytes) -> dict[str, str]:
    (n,), pos, out = struct.unpack_from("!I", block, 0), 4, {}
    for _ in range(n):
        (kl,) = struct.unpack_from("!I", block, pos)
        k = block[pos + 4:pos + 4 + kl].decode()
        pos += 4 + kl
        (vl,) = struct.unpack_from("!I", block, pos)
        # several values of one name are NUL-separated; the first one is enough here
        out[k.lower()] = block[pos + 4:pos + 4 + vl].decode().split("\x00")[0]
        pos += 4 + vl
    return out


def control_frame(ftype: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("!HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, flags: int, data: bytes) -> bytes:
    return struct.pack("!II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


class SPDYError(Exception):
    pass


class Stream:
    """One SPDY stream: read() gives data until b"" (FIN or reset), write()/close() send."""

    def __init__(self, session: "Session", stream_id: int, headers: dict[str, str]):
        self.session, self.id, self.headers = session, stream_id, headers
        self._q: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False
        self.reply: asyncio.Future = asyncio.get_running_loop().create_future()

    def _data(self, data: bytes, fin: bool) -> None:
        if data:
            self._q.put_nowait(data)
        if fin and not self.remote_closed:
            self.remote_closed = True
            self._q.put_nowait(b"")

    async def read(self) -> bytes:
        if self.remote_closed and self._q.empty():
            return b""
        return await self._q.get()

    async def write(self, data: bytes) -> None:
        if self.local_closed or not data:
            return
        # frames are capped well below the 24-bit length limit
        for i in range(0, len(data), 32768):
            await self.session.send(data_frame(self.id, 0, data[i:i + 32768]))

    async def close(self) -> None:
        """Half-close: our side sends no more data (the peer sees EOF)."""
        if not self.local_closed:
            self.local_closed = True
            await self.session.send(data_frame(self.id, FLAG_FIN, b""))

    async def reset(self) -> None:
        if not (self.local_closed and self.remote_closed):
            self.local_closed = True
            self._data(b"", True)
            await self.session.send(control_frame(RST_STREAM, 0, struct.pack("!II", self.id, RST_CANCEL)))


class Session:
    """Both ends of SPDY/3.1: clients open odd stream ids, servers even ones."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], *, server: bool,
                 on_stream: Optional[Callable[[Stream], None]] = None):
        self._send = send
        self.server = server
        self.on_stream = on_stream
        self.streams: dict[int, Stream] = {}
        self._next_id = 2 if server else 1
        self._buf = bytearray()
        self._zout = zlib.compressobj(zdict=DICTIONARY)
        self._zin = zlib.decompressobj(zdict=DICTIONARY)
        self._lock = asyncio.Lock()
        self.closed = asyncio.Event()
        self._pending: list[bytes] = []

    async def send(self, frame: bytes) -> None:
        if self.closed.is_set():
            return
        async with self._lock:  # frames never interleave on the transport
            await self._send(frame)

    def _compress(self, headers: dict[str, str]) -> bytes:
        return self._zout.compress(encode_headers(headers)) + self._zout.flush(zlib.Z_SYNC_FLUSH)

    async def open_stream(self, headers: dict[str, str], *, wait_reply: bool = True) -> Stream:
        sid = self._next_id
        self._next_id += 2
        st = Stream(self, sid, headers)
        self.streams[sid] = st
        async with self._lock:
            block = self._compress(headers)
            await self._send(control_frame(SYN_STREAM, 0, struct.pack("!IIH", sid, 0, 0) + block))
        if wait_reply:
            await st.reply
        return st

    async def reply(self, st: Stream) -> None:
        """Accept a stream the peer opened (SYN_REPLY)."""
        async with self._lock:
            block = self._compress({})
            await self._send(control_frame(SYN_REPLY, 0, struct.pack("!I", st.id) + block))

    def feed(self, data: bytes) -> None:
        """Parse whatever complete frames `data` completes; schedules replies to PINGs."""
        self._buf += data
        while len(self._buf) >= 8:
            w1, w2 = struct.unpack_from("!II", self._buf, 0)
            length = w2 & 0xFFFFFF
            if len(self._buf) < 8 + length:
                return
            flags = w2 >> 24
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if w1 & 0x80000000:
                self._control((w1 & 0xFFFF), flags, payload)
            else:
                st = self.streams.get(w1 & 0x7FFFFFFF)
                if st is not None:
                    st._data(payload, bool(flags & FLAG_FIN))

    def _control(self, ftype: int, flags: int, payload: bytes) -> None:
        if ftype == SYN_STREAM:
            sid = struct.unpack_from("!I", payload, 0)[0] & 0x7FFFFFFF
            headers = decode_headers(self._zin.decompress(payload[10:]))
            st = Stream(self, sid, headers)
            st.reply.set_result(True)  # only streams we open wait for a reply
            self.streams[sid] = st
            if flags & FLAG_FIN:
                st._data(b"", True)
            if self.on_stream is not None:
                self.on_stream(st)
        elif ftype in (SYN_REPLY, HEADERS):
            sid = struct.unpack_from("!I", payload, 0)[0] & 0x7FFFFFFF
            if len(payload) > 4:
                self._zin.decompress(payload[4:])  # keeps the shared context in step
            st = self.streams.get(sid)
            if st is not None:
                if not st.reply.done():
                    st.reply.set_result(True)
                if flags & FLAG_FIN:
                    st._data(b"", True)
        elif ftype == RST_STREAM:
            sid = struct.unpack_from("!I", payload, 0)[0] & 0x7FFFFFFF
            st = self.streams.get(sid)
            if st is not None:
                st.local_closed = True
                st._data(b"", True)
                if not st.reply.done():
                    st.reply.set_exception(SPDYError(f"stream {sid} reset"))
        elif ftype == PING:
            asyncio.ensure_future(self.send(control_frame(PING, 0, payload)))
        elif ftype == GOAWAY:
            self.shutdown()
        # SETTINGS and WINDOW_UPDATE need no action (no flow control is enforced)

    def shutdown(self) -> None:
        """The transport ended: every stream sees EOF."""
        if self.closed.is_set():
            return
        self.closed.set()
        for st in self.streams.values():
            st._data(b"", True)
            if not st.reply.done():
                st.reply.set_exception(SPDYError("connection closed"))
