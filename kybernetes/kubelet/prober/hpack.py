"""Just enough HPACK (RFC 7541) decoding for the gRPC probe to read a response's trailers
(grpc-status, grpc-message): indexed fields, literals with and without indexing, the
dynamic table of one connection.  Huffman-coded strings are not decoded; they come back
as None, and the probe then falls back to judging the response body alone."""

from __future__ import annotations

from typing import Optional

# RFC 7541 Appendix A: the static table (1-based); values only where the entry has one
STATIC: tuple[tuple[str, str], ...] = (
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
    (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
    (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
    ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
    ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""),
    ("content-length", ""), ("content-location", ""), ("content-range", ""), ("content-type", ""),
    ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""),
    ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""),
    ("retry-after", ""), ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""),
    ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
)
ENTRY_OVERHEAD = 32  # bytes an entry counts beyond its name and value (RFC 7541 4.1)

Field = tuple[Optional[str], Optional[str]]


class HPACKError(ValueError):
    """A header block this decoder cannot read."""


class Decoder:
    """Decodes the header blocks of one connection, in order (they share a dynamic table)."""

    def __init__(self, max_size: int = 4096):
        self.dynamic: list[Field] = []   # newest first
        self.max_size = max_size

    def decode(self, block: bytes) -> list[Field]:
        """The (name, value) fields of one complete header block; None where a string was
        Huffman-coded."""
        out: list[Field] = []
        i = 0
        while i < len(block):
            b = block[i]
            if b & 0x80:  # indexed field
                idx, i = _int(block, i, 7)
                out.append(self._entry(idx))
            elif b & 0x40:  # literal, added to the dynamic table
                field, i = self._literal(block, i, 6)
                out.append(field)
                self._add(field)
            elif b & 0x20:  # dynamic table size update
                self.max_size, i = _int(block, i, 5)
                self._evict()
            else:  # literal without indexing / never indexed
                field, i = self._literal(block, i, 4)
                out.append(field)
        return out

    def _entry(self, idx: int) -> Field:
        if 1 <= idx <= len(STATIC):
            return STATIC[idx - 1]
        d = idx - len(STATIC) - 1
        if 0 <= d < len(self.dynamic):
            return self.dynamic[d]
        raise HPACKError(f"header index {idx} out of range")

    def _literal(self, block: bytes, i: int, prefix: int) -> tuple[Field, int]:
        idx, i = _int(block, i, prefix)
        if idx:
            name: Optional[str] = self._entry(idx)[0]
        else:
            name, i = _string(block, i)
        value, i = _string(block, i)
        return (name, value), i

    def _add(self, field: Field) -> None:
        self.dynamic.insert(0, field)
        self._evict()

    def _evict(self) -> None:
        def size(f: Field) -> int:
            return len((f[0] or "").encode()) + len((f[1] or "").encode()) + ENTRY_OVERHEAD
        while self.dynamic and sum(size(f) for f in self.dynamic) > self.max_size:
            self.dynamic.pop()


def _int(block: bytes, i: int, prefix: int) -> tuple[int, int]:
    """An HPACK integer with a `prefix`-bit prefix starting at block[i]; (value, next index)."""
    if i >= len(block):
        raise HPACKError("truncated integer")
    limit = (1 << prefix) - 1
    value = block[i] & limit
    i += 1
    if value < limit:
        return value, i
    shift = 0
    while True:
        if i >= len(block):
            raise HPACKError("truncated integer")
        b = block[i]
        i += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _string(block: bytes, i: int) -> tuple[Optional[str], int]:
    if i >= len(block):
        raise HPACKError("truncated string")
    huffman = bool(block[i] & 0x80)
    length, i = _int(block, i, 7)
    if i + length > len(block):
        raise HPACKError("truncated string")
    raw = block[i:i + length]
    return (None if huffman else raw.decode("latin-1")), i + length
