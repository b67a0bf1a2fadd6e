"""Kubernetes protobuf (``application/vnd.kubernetes.protobuf``) encoding.

Objects are the same JSON-form dicts the JSON API uses; see codec.py.
"""

from kybernetes.api.protobuf.codec import (
    ProtobufError,
    decode,
    decode_message,
    decode_watch_event,
    encode,
    encode_message,
    encode_watch_event,
    iter_watch_events,
    message_type,
    supports,
)

PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
PROTOBUF_WATCH_CONTENT_TYPE = "application/vnd.kubernetes.protobuf;stream=watch"

__all__ = [
    "PROTOBUF_CONTENT_TYPE",
    "PROTOBUF_WATCH_CONTENT_TYPE",
    "ProtobufError",
    "decode",
    "decode_message",
    "decode_watch_event",
    "encode",
    "encode_message",
    "encode_watch_event",
    "iter_watch_events",
    "message_type",
    "supports",
]
