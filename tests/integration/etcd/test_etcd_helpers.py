"""EtcdStore's pure parts (no etcd process): endpoint and URL parsing, key ranges,
the server-version gate for progress notifications, error classification."""

from __future__ import annotations

import grpc
import pytest

from kybernetes.storage import open_store
from kybernetes.storage.etcd import (
    EtcdStore,
    _classify,
    _prefix_range,
    _range_end,
    parse_endpoints,
    progress_is_ordered,
)


def test_parse_endpoints() -> None:
    assert parse_endpoints("127.0.0.1:2379,127.0.0.2:22379") == ([("127.0.0.1", 2379), ("127.0.0.2", 22379)], False)
    assert parse_endpoints(["http://h1:1", "h2"]) == ([("h1", 1), ("h2", 2379)], False)
    assert parse_endpoints(["https://h1:1"]) == ([("h1", 1)], True)
    assert parse_endpoints("[::1]:2379") == ([("::1", 2379)], False)
    with pytest.raises(ValueError):
        parse_endpoints("")
    with pytest.raises(ValueError):
        parse_endpoints("ftp://h:1")


def test_open_store_etcd_urls() -> None:
    s = open_store("etcd://127.0.0.1:2379,127.0.0.1:2380")
    assert isinstance(s, EtcdStore) and s.endpoints == [("127.0.0.1", 2379), ("127.0.0.1", 2380)] and not s.tls
    s = open_store("etcds://h1:1,h2:2?ca=/p/ca.crt&cert=/p/c.crt&key=/p/c.key&request-timeout=2.5", compact_interval=0)
    assert s.tls and s._ca == "/p/ca.crt" and s._cert == "/p/c.crt" and s._key == "/p/c.key"
    assert s.request_timeout == 2.5 and s.compact_interval == 0
    s = open_store("etcd://h:1", ca="/x/ca.crt")
    assert s.tls
    with pytest.raises(ValueError):
        open_store("etcd://")
    with pytest.raises(ValueError):
        open_store("etcd://h:1?bogus=1")
    with pytest.raises(ValueError):
        EtcdStore(["h:1"], cert="/only/cert")


def test_key_ranges_match_code_point_order() -> None:
    assert _range_end(b"/registry/pods/") == b"/registry/pods0"
    assert _range_end(b"a\xff\xff") == b"b"
    assert _range_end(b"\xff") == b"\0"
    assert _prefix_range("") == (b"\0", b"\0")
    assert _prefix_range("/r/", "/r/b") == (b"/r/b\0", b"/r0")
    assert _prefix_range("/r/", "/a") == (b"/r/", b"/r0")  # before the prefix: from its start
    # UTF-8 byte order is code point order: a non-ASCII key sorts where SQLite puts it
    keys = ["/r/a", "/r/z", "/r/\u00f1", "/r/\uffff", "/r/\U0001f600"]
    assert sorted(keys) == sorted(keys, key=lambda k: k.encode())
    start, end = _prefix_range("/r/\u00f1")
    assert start <= "/r/\u00f1x".encode() < end


def test_progress_gate_by_server_version() -> None:
    assert not progress_is_ordered("3.4.23")
    assert not progress_is_ordered("3.4.30")
    assert progress_is_ordered("3.4.31")
    assert not progress_is_ordered("3.5.1")
    assert not progress_is_ordered("3.5.12")
    assert progress_is_ordered("3.5.13")
    assert progress_is_ordered("3.6.0")
    assert progress_is_ordered("3.6.0-rc.1")
    assert not progress_is_ordered("")
    assert not progress_is_ordered("3.3.27")


class _Err(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(
    "code,details,kind",
    [
        (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted", "compacted"),
        (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision", "future"),
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", "unavailable"),
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: leader changed", "unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", "unavailable"),
        (grpc.StatusCode.INTERNAL, "Internal error from Core", "unavailable"),
        (grpc.StatusCode.UNKNOWN, "etcdserver: request timed out", "unavailable"),
        (grpc.StatusCode.UNKNOWN, "etcdserver: too many requests", "overloaded"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: too many requests", "overloaded"),
        (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: request is too large", "error"),
        (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied", "error"),
    ],
)
def test_error_classification(code: grpc.StatusCode, details: str, kind: str) -> None:
    assert _classify(_Err(code, details)) == kind
