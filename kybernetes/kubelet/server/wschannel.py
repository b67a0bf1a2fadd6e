"""The WebSocket channel subprotocols of remote commands, port-forward and streamed reads.

Channel protocols (exec, attach, port-forward): each message carries one channel.
  - binary (`channel.k8s.io`, `v4.channel.k8s.io`, `v5.channel.k8s.io`, and no
    subprotocol at all): a binary message, first byte the channel number;
  - base64 (`base64.channel.k8s.io`, `v4.base64.channel.k8s.io`): a text message, the
    channel as an ASCII digit ('0' + n) followed by the base64 of the data.
Before v4 the error channel carries the plain failure message (nothing on success);
from v4 on it carries a metav1.Status JSON.  v5 adds the close signal (channel 255,
one byte naming the channel to half-close).

Reader protocols (a one-way byte stream such as a pod's log): `binary.k8s.io` (and no
subprotocol) sends the bytes as binary messages, `base64.binary.k8s.io` as base64 text.

Negotiation follows upstream's wsstream: no offered subprotocol means "", otherwise the
first offered one the server supports wins, and none is a refusal.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Iterable, Optional, Union

import orjson

CHANNEL_V1 = "channel.k8s.io"
BASE64_V1 = "base64.channel.k8s.io"
CHANNEL_V4 = "v4.channel.k8s.io"
BASE64_V4 = "v4.base64.channel.k8s.io"
CHANNEL_V5 = "v5.channel.k8s.io"
BINARY_READER = "binary.k8s.io"
BASE64_READER = "base64.binary.k8s.io"
PORTFORWARD_TUNNEL = "SPDY/3.1+portforward.k8s.io"  # SPDY frames inside WebSocket binary messages

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

# what each endpoint accepts (the client's order of preference decides among these)
REMOTECOMMAND = ("", CHANNEL_V1, BASE64_V1, CHANNEL_V4, BASE64_V4, CHANNEL_V5)
PORTFORWARD = ("", CHANNEL_V4, BASE64_V4)
READER = ("", BINARY_READER, BASE64_READER)

Message = Union[bytes, str]


def offered(header_values: Iterable[str]) -> list[str]:
    """The subprotocols a client lists in its Sec-WebSocket-Protocol header(s), in order."""
    out: list[str] = []
    for v in header_values:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


def negotiate(client: list[str], supported: Iterable[str]) -> Optional[str]:
    """The subprotocol to answer with ("" for none), or None when nothing fits."""
    allowed = set(supported)
    for p in client or [""]:
        if p in allowed:
            return p
    return None


def refusal(client: list[str], supported: Iterable[str]) -> str:
    """Why a handshake failed, in upstream's words."""
    return f"requested protocol(s) are not supported: [{' '.join(client)}]; supports [{' '.join(supported)}]"


@dataclass(frozen=True)
class ChannelCodec:
    """Frames of one negotiated channel protocol."""

    protocol: str

    @property
    def base64(self) -> bool:
        return self.protocol in (BASE64_V1, BASE64_V4)

    @property
    def structured_status(self) -> bool:
        """v4 and later: the error channel carries a Status object, not plain text."""
        return self.protocol in (CHANNEL_V4, BASE64_V4, CHANNEL_V5)

    @property
    def close_signal(self) -> bool:
        return self.protocol == CHANNEL_V5

    def encode(self, channel: int, data: bytes) -> Message:
        if self.base64:
            return chr(ord("0") + channel) + base64.b64encode(data).decode("ascii")
        return bytes([channel]) + data

    def decode(self, msg: Message) -> Optional[tuple[int, bytes]]:
        """(channel, data) of a received message; None for an empty or malformed one.
        Text and binary messages are read alike (as upstream reads both as bytes; the
        official Python client sends str data as text messages)."""
        raw = msg.encode() if isinstance(msg, str) else bytes(msg)
        if not raw:
            return None
        if not self.base64:
            return raw[0], raw[1:]
        try:
            return raw[0] - ord("0"), base64.b64decode(raw[1:], validate=True)
        except (binascii.Error, ValueError):
            return None

    def status(self, status_json: bytes) -> Optional[bytes]:
        """What goes on the error channel for a final Status: the JSON itself (v4+), or
        before v4 its message on failure and nothing on success."""
        if self.structured_status:
            return status_json
        try:
            st = orjson.loads(status_json)
        except orjson.JSONDecodeError:
            return status_json or None
        if not isinstance(st, dict) or st.get("status") == "Success":
            return None
        return str(st.get("message", "")).encode()


def reader_message(protocol: str, data: bytes) -> Message:
    """One message of a streamed read (`binary.k8s.io` or `base64.binary.k8s.io`)."""
    if protocol == BASE64_READER:
        return base64.b64encode(data).decode("ascii")
    return bytes(data)


def port_prefix(port: int) -> bytes:
    """The first message on both channels of a forwarded port: the port, uint16 little endian."""
    return port.to_bytes(2, "little")


def parse_ports(values: list[str]) -> list[int]:
    """The `port` query parameters of a WebSocket port-forward (each may list several,
    comma separated); ValueError with upstream's message when one is bad."""
    if not values:
        raise ValueError('query parameter "port" is required')
    ports: list[int] = []
    for v in values:
        if not v:
            raise ValueError('query parameter "port" cannot be empty')
        for p in v.split(","):
            if not p.isascii() or not p.isdigit() or int(p) > 65535:
                why = "value out of range" if p.isascii() and p.isdigit() else "invalid syntax"
                raise ValueError(f'unable to parse "{v}" as a port: strconv.ParseUint: parsing "{p}": {why}')
            n = int(p)
            if n < 1:
                raise ValueError(f'port "{v}" must be > 0')
            ports.append(n)
    return ports
