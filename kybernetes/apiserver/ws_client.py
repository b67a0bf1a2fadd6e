"""A small WebSocket client (RFC 6455) over asyncio streams, for the API server's
streams to kubelets (exec, attach, port-forward).

aiohttp 3.14's client reader was seen holding a small frame back until the next one
arrived when many tiny frames flowed the other way (port-forward's SPDY-in-WebSocket
traffic), which stalls a forwarded connection; this client reads frames as they come.

    ws = await connect(host, port, path_qs, ssl=ctx, protocols=["v5.channel.k8s.io"])
    await ws.send_bytes(b"\\x00hi")
    while (msg := await ws.receive()) is not None: ...
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl as _ssl
import struct
from typing import Optional

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body


def _mask(data: bytes, key: bytes) -> bytes:
    if not data:
        return data
    n = len(data)
    rep = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(rep, "big")).to_bytes(n, "big")


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: str):
        self.reader, self.writer, self.protocol = reader, writer, protocol
        self.closed = False
        self._lock = asyncio.Lock()

    async def _send(self, opcode: int, data: bytes) -> None:
        if self.closed and opcode != CLOSE:
            raise ConnectionResetError("websocket is closed")
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        key = os.urandom(4)
        async with self._lock:
            self.writer.write(head + key + _mask(data, key))
            await self.writer.drain()

    async def send_bytes(self, data: bytes) -> None:
        await self._send(BINARY, data)

    async def send_str(self, data: str) -> None:
        await self._send(TEXT, data.encode())

    async def receive(self) -> Optional[tuple[int, bytes]]:
        """(opcode, payload) of the next data message; None once the connection ends."""
        parts: list[bytes] = []
        first_op = 0
        try:
            while True:
                b1, b2 = await self.reader.readexactly(2)
                fin, op, n = b1 & 0x80, b1 & 0x0F, b2 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
                key = await self.reader.readexactly(4) if b2 & 0x80 else b""
                payload = await self.reader.readexactly(n) if n else b""
                if key:
                    payload = _mask(payload, key)
                if op == PING:
                    await self._send(PONG, payload)
                    continue
                if op == PONG:
                    continue
                if op == CLOSE:
                    await self.close()
                    return None
                if op != 0:
                    first_op = op
                parts.append(payload)
                if fin:
                    return first_op, b"".join(parts)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, _ssl.SSLError):
            self.closed = True
            return None

    async def close(self) -> None:
        if self.closed:
            return
        try:
            await self._send(CLOSE, struct.pack("!H", 1000))
        except (ConnectionError, OSError, RuntimeError):
            pass
        self.closed = True
        self.writer.close()


async def connect(host: str, port: int, target: str, *, ssl: Optional[_ssl.SSLContext], protocols: list[str],
                  timeout: float = 10.0) -> WebSocket:
    """Open a WebSocket to https://host:port<target> offering `protocols`."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ssl, server_hostname=host if ssl else None), timeout)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"GET {target} HTTP/1.1", f"Host: {hostport}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if protocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(protocols)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for h in header_lines:
            k, _, v = h.partition(":")
            if k:
                headers[k.strip().lower()] = v.strip()
        if status != 101:
            length = int(headers.get("content-length") or 0)
            body = await asyncio.wait_for(reader.read(min(length, 65536) if length else 65536), timeout) \
                if length or headers.get("connection", "").lower() == "close" else b""
            raise HandshakeError(status, body.decode(errors="replace").strip())
        return WebSocket(reader, writer, headers.get("sec-websocket-protocol", ""))
    except BaseException:
        writer.close()
        raise
