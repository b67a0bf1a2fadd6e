"""A gRPC health check (grpc.health.v1.Health/Check) spoken as plain HTTP/2 over a socket
in the pod's network namespace.  One unary call needs only literal HPACK headers out and
DATA frames in, so no HTTP/2 library is involved; the trailers' grpc-status and
grpc-message are read when they are not Huffman-coded (kubelet.prober.hpack); otherwise a
call that returns no message fails the probe with a generic message."""

from __future__ import annotations

import asyncio
import struct
import urllib.parse
from typing import Optional

from kybernetes.api.goformat import go_quote
from kybernetes.kubelet.prober import hpack
from kybernetes.kubelet.prober.netns import connect

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS, PADDED, PRIORITY, ACK = 0x1, 0x4, 0x8, 0x20, 0x1
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
# gRPC status codes as Go's codes.Code prints them
CODE_NAMES = ("OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
              "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
              "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated")
DEADLINE_EXCEEDED, UNIMPLEMENTED = 4, 12


def _frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def _hpack_int(n: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([first | n])
    out = bytearray([first | limit])
    n -= limit
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _literal(name: str, value: str) -> bytes:
    # literal header field without indexing, new name, no Huffman coding
    n, v = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(n), 7) + n + _hpack_int(len(v), 7) + v


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def request_bytes(authority: str, service: str) -> bytes:
    msg = (b"\x0a" + _varint(len(service.encode())) + service.encode()) if service else b""
    headers = b"".join(_literal(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", "/grpc.health.v1.Health/Check"),
        (":authority", authority), ("content-type", "application/grpc"), ("te", "trailers"),
        ("user-agent", "kube-probe/1.37")))
    body = b"\x00" + struct.pack(">I", len(msg)) + msg
    return (PREFACE + _frame(SETTINGS, 0, 0, b"") + _frame(HEADERS, END_HEADERS, 1, headers)
            + _frame(DATA, END_STREAM, 1, body))


def parse_status(data: bytes) -> Optional[int]:
    """The `status` field of a length-prefixed HealthCheckResponse (0 when absent)."""
    if len(data) < 5:
        return None
    msg = data[5:5 + struct.unpack(">I", data[1:5])[0]]
    i = 0
    while i < len(msg):
        key = msg[i]
        i += 1
        if key == 0x08:  # field 1, varint
            val, shift = 0, 0
            while i < len(msg):
                b = msg[i]
                i += 1
                val |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            return val
        return None
    return 0


def _header_block(flags: int, payload: bytes) -> bytes:
    """The header block fragment of a HEADERS frame (padding and priority removed)."""
    start, end = 0, len(payload)
    if flags & PADDED and payload:
        start, end = 1, len(payload) - payload[0]
    if flags & PRIORITY:
        start += 5
    return payload[start:max(start, end)]


def rpc_error(fields: list[hpack.Field]) -> Optional[tuple[int, str]]:
    """(code, message) when the trailers carry a grpc-status other than OK."""
    got = {name: value for name, value in fields if name}
    raw = got.get("grpc-status")
    if raw is None or not raw.isdigit() or int(raw) == 0:
        return None
    return int(raw), urllib.parse.unquote(got.get("grpc-message") or "")


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it (1s, 1.5s, 2m0s, 1h0m0s)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    if ns < 1_000_000_000:  # the probe timeouts are whole seconds; this covers the rest roughly
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return f"{ns / size:g}{unit}"
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    sec = f"{rem / 1e9:.9f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{h}h{m}m{sec}"
    if m:
        return f"{m}m{sec}"
    return sec


def join_host_port(host: str, port: int) -> str:
    """host:port, with an IPv6 host in brackets (Go's net.JoinHostPort)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _dial(host: str, port: int, netns: Optional[str], deadline: float):
    """Connect before `deadline` (loop time), trying again after a refusal as a blocking gRPC
    dial does; None when the deadline passes first."""
    loop = asyncio.get_running_loop()
    backoff = 0.05
    while True:
        left = deadline - loop.time()
        if left <= 0:
            return None
        try:
            return await connect(host, port, netns, left)
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(min(backoff, max(0.0, deadline - loop.time())))
        backoff = min(backoff * 2, 1.0)


async def check(host: str, port: int, service: str, netns: Optional[str], timeout: float):
    """One grpc.health.v1 Check within `timeout` seconds (the dial included, as upstream's
    single context); (ProbeResult, message) with upstream's messages."""
    from kybernetes.kubelet.prober.probes import ProbeResult
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    target = join_host_port(host, port)
    sock = await _dial(host, port, netns, deadline)
    if sock is None:
        return (ProbeResult.FAILURE, f"timeout: failed to connect service {go_quote(target)} within "
                                     f"{go_duration(timeout)}: context deadline exceeded")
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
    except OSError as e:
        sock.close()
        return ProbeResult.FAILURE, f"error: failed to connect service at {go_quote(target)}: {e}"
    data = b""
    fields: list[hpack.Field] = []
    decoder = hpack.Decoder()
    block, block_ends_stream = b"", False
    try:
        async with asyncio.timeout_at(deadline):
            writer.write(request_bytes(target, service))
            await writer.drain()
            while True:
                head = await reader.readexactly(9)
                length = int.from_bytes(head[:3], "big")
                ftype, flags = head[3], head[4]
                stream = struct.unpack(">I", head[5:9])[0] & 0x7FFFFFFF
                payload = await reader.readexactly(length) if length else b""
                if ftype == SETTINGS and not flags & ACK:
                    writer.write(_frame(SETTINGS, ACK, 0, b""))
                elif ftype == PING and not flags & ACK:
                    writer.write(_frame(PING, ACK, 0, payload))
                elif ftype in (RST_STREAM, GOAWAY) and stream in (0, 1):
                    break
                elif stream == 1 and ftype == DATA:
                    data += payload
                elif ftype in (HEADERS, CONTINUATION):
                    if ftype == HEADERS:
                        block, block_ends_stream = _header_block(flags, payload), bool(flags & END_STREAM)
                    else:
                        block += payload
                    if flags & END_HEADERS:
                        try:
                            decoded = decoder.decode(block)
                        except hpack.HPACKError:
                            decoded = []
                        if stream == 1:
                            fields += decoded
                        if stream == 1 and block_ends_stream:
                            break
                    continue
                if stream == 1 and ftype == DATA and flags & END_STREAM:
                    break
    except TimeoutError:
        return ProbeResult.FAILURE, f"timeout: health rpc did not complete within {go_duration(timeout)}"
    except (OSError, asyncio.IncompleteReadError) as e:
        return ProbeResult.FAILURE, f"error: health rpc probe failed: {e}"
    finally:
        writer.close()
    err = rpc_error(fields)
    if err is not None:
        code, desc = err
        if code == UNIMPLEMENTED:
            return (ProbeResult.FAILURE, "error: this server does not implement the grpc health protocol "
                                         f"(grpc.health.v1.Health): {desc}")
        if code == DEADLINE_EXCEEDED:
            return ProbeResult.FAILURE, f"timeout: health rpc did not complete within {go_duration(timeout)}"
        name = CODE_NAMES[code] if code < len(CODE_NAMES) else f"Code({code})"
        return ProbeResult.FAILURE, f"error: health rpc probe failed: rpc error: code = {name} desc = {desc}"
    status = parse_status(data)
    if status is None:
        return ProbeResult.FAILURE, "error: health rpc probe failed: no response message"
    if status == 1:
        return ProbeResult.SUCCESS, "service healthy"
    return ProbeResult.FAILURE, f'service unhealthy (responded with "{STATUS_NAMES.get(status, status)}")'
