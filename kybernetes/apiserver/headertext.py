"""Header values as text that can be written out again.

aiohttp decodes header bytes that are not UTF-8 with ``surrogateescape``; such strings
cannot be JSON-encoded (or put in a response header) and would turn a bad request into a
crash.  Go keeps them as bytes and its JSON encoder writes U+FFFD for every invalid
byte; ``text`` does the same up front."""

from __future__ import annotations


def text(value: str) -> str:
    """`value` with every undecodable byte replaced by U+FFFD (as Go's JSON output shows it)."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode(
            "utf-8", "replace").decode("utf-8")
