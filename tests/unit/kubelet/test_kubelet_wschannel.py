"""The WebSocket channel protocols' frames, negotiation, error-channel forms and the
port-forward port list, without a server."""

from __future__ import annotations

import pytest

from kybernetes.kubelet.server import wschannel as w

FAIL = (b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: '
        b'exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}')
OK = b'{"metadata":{},"status":"Success"}'


@pytest.mark.parametrize("proto", ["", w.CHANNEL_V1, w.CHANNEL_V4, w.CHANNEL_V5])
def test_binary_frames(proto):
    c = w.ChannelCodec(proto)
    assert c.encode(1, b"hi\n") == b"\x01hi\n"
    assert c.encode(3, b"") == b"\x03"
    assert c.decode(b"\x00foo") == (0, b"foo")
    assert c.decode(b"\xff\x00") == (255, b"\x00")
    assert c.decode(b"") is None
    # a text message is read as its bytes (the Python client sends str data that way)
    assert c.decode("\x00abc") == (0, b"abc")


@pytest.mark.parametrize("proto", [w.BASE64_V1, w.BASE64_V4])
def test_base64_frames(proto):
    c = w.ChannelCodec(proto)
    # upstream's example: "foo\n" on stdin is '0' + base64
    assert c.encode(0, b"foo\n") == "0Zm9vCg=="
    assert c.encode(1, b"\n") == "1Cg=="
    assert c.encode(2, b"") == "2"
    assert c.decode("0Zm9vCg==") == (0, b"foo\n")
    assert c.decode("4eyJXaWR0aCI6ODB9") == (4, b'{"Width":80}')
    assert c.decode("0***") is None
    assert c.decode(b"0Zm9vCg==") == (0, b"foo\n")


def test_error_channel_forms():
    for proto in (w.CHANNEL_V4, w.BASE64_V4, w.CHANNEL_V5):
        c = w.ChannelCodec(proto)
        assert c.structured_status and c.status(FAIL) == FAIL and c.status(OK) == OK
    for proto in ("", w.CHANNEL_V1, w.BASE64_V1):
        c = w.ChannelCodec(proto)
        assert not c.structured_status
        assert c.status(OK) is None  # nothing at all on success
        assert c.status(FAIL) == b"command terminated with non-zero exit code: exit status 3"
    assert w.ChannelCodec(w.CHANNEL_V5).close_signal
    assert not w.ChannelCodec(w.CHANNEL_V4).close_signal


def test_negotiation_takes_the_clients_first_supported():
    assert w.negotiate([], w.REMOTECOMMAND) == ""
    assert w.negotiate([w.CHANNEL_V5, w.CHANNEL_V4], w.REMOTECOMMAND) == w.CHANNEL_V5
    assert w.negotiate(["v3.channel.k8s.io", w.BASE64_V1, w.CHANNEL_V1], w.REMOTECOMMAND) == w.BASE64_V1
    # v2/v3 exist only over SPDY; WebSocket has no such subprotocol
    assert w.negotiate(["v3.channel.k8s.io", "v2.channel.k8s.io"], w.REMOTECOMMAND) is None
    assert w.negotiate([w.CHANNEL_V5, w.CHANNEL_V4], w.PORTFORWARD) == w.CHANNEL_V4
    assert w.negotiate([w.CHANNEL_V1], w.PORTFORWARD) is None
    assert w.negotiate([w.BASE64_READER], w.READER) == w.BASE64_READER
    assert w.offered(["v4.channel.k8s.io, channel.k8s.io", "base64.channel.k8s.io"]) == \
        [w.CHANNEL_V4, w.CHANNEL_V1, w.BASE64_V1]
    assert w.refusal(["a", "b"], ["c"]) == "requested protocol(s) are not supported: [a b]; supports [c]"


def test_reader_messages_and_ports():
    assert w.reader_message(w.BINARY_READER, b"log\n") == b"log\n"
    assert w.reader_message("", b"log\n") == b"log\n"
    assert w.reader_message(w.BASE64_READER, b"log\n") == "bG9nCg=="
    assert w.port_prefix(8080) == b"\x90\x1f"
    assert w.parse_ports(["80,443", "8080"]) == [80, 443, 8080]
    for bad, msg in (([], 'query parameter "port" is required'),
                     ([""], 'query parameter "port" cannot be empty'),
                     (["0"], 'port "0" must be > 0'),
                     (["x"], 'unable to parse "x" as a port: strconv.ParseUint: parsing "x": invalid syntax'),
                     (["70000"], 'unable to parse "70000" as a port: strconv.ParseUint: parsing "70000": '
                                 'value out of range')):
        with pytest.raises(ValueError) as e:
            w.parse_ports(bad)
        assert str(e.value) == msg
