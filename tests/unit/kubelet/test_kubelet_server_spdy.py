"""SPDY/3.1 sessions talking to each other in memory: stream headers through the shared
zlib contexts, data both ways, half-close, reset and ping; the kubelet's request
attributes for authorization."""

from __future__ import annotations

import asyncio
import zlib

from kybernetes.kubelet.server import auth
from kybernetes.streaming import spdy


def pair():
    accepted: asyncio.Queue = asyncio.Queue()
    client: spdy.Session
    server: spdy.Session

    async def to_server(b):
        server.feed(b)

    async def to_client(b):
        client.feed(b)

    def on_stream(st):
        accepted.put_nowait(st)
        asyncio.ensure_future(server.reply(st))

    client = spdy.Session(to_server, server=False)
    server = spdy.Session(to_client, server=True, on_stream=on_stream)
    return client, server, accepted


def test_dictionary_is_the_spdy3_one():
    # 1423 bytes; its Adler-32 is the dictionary id Go's spdystream (containerd, kubectl) expects
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2


def test_header_block_round_trip():
    block = spdy.encode_headers({"streamType": "data", "port": "8080", "requestID": "0"})
    assert spdy.decode_headers(block) == {"streamtype": "data", "port": "8080", "requestid": "0"}


async def test_streams_both_ways():
    client, server, accepted = pair()
    streams = [await client.open_stream({"streamtype": t, "requestid": "1"}) for t in ("error", "data")]
    got = [await accepted.get() for _ in streams]
    assert [s.headers["streamtype"] for s in got] == ["error", "data"]
    assert [s.id for s in streams] == [1, 3]
    await streams[1].write(b"ping" * 20000)
    await streams[1].close()
    received = b""
    while chunk := await got[1].read():
        received += chunk
    assert received == b"ping" * 20000
    await got[1].write(b"pong")
    await got[1].close()
    assert await streams[1].read() == b"pong"
    assert await streams[1].read() == b""
    await got[0].reset()
    assert await streams[0].read() == b""


async def test_ping_is_echoed_and_shutdown_ends_streams():
    client, server, accepted = pair()
    sent = []

    async def capture(b):
        sent.append(b)
    lone = spdy.Session(capture, server=True)
    lone.feed(spdy.control_frame(spdy.PING, 0, b"\x00\x00\x00\x07"))
    await asyncio.sleep(0)
    assert sent == [spdy.control_frame(spdy.PING, 0, b"\x00\x00\x00\x07")]
    st = await client.open_stream({"streamtype": "stdout"})
    client.shutdown()
    assert await st.read() == b""


def test_kubelet_request_attributes():
    assert auth.attributes("GET", "/containerLogs/ns/p/c") == ("get", ["proxy"])
    assert auth.attributes("POST", "/exec/ns/p/c") == ("create", ["proxy"])
    assert auth.attributes("GET", "/stats/summary") == ("get", ["stats"])
    assert auth.attributes("GET", "/metrics/resource") == ("get", ["metrics"])
    assert auth.attributes("GET", "/logs/") == ("get", ["log"])
    assert auth.attributes("GET", "/healthz") == ("get", ["healthz", "proxy"])
    assert auth.attributes("GET", "/pods") == ("get", ["pods", "proxy"])
    assert auth.attributes("GET", "/podsx") == ("get", ["proxy"])
