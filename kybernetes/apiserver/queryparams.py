"""Query parameters converted as upstream's parameter codec converts them
(k8s.io/apimachinery runtime conversions of url.Values):

- booleans: absent is false; ``0`` and ``false`` (any case) are false; anything else,
  the empty string included, is true;
- integers: Go's strconv.ParseInt (base 10, optional sign, no spaces, int64 range);
  anything else is 400 BadRequest, never a crash deeper down.
"""

from __future__ import annotations

import re
from typing import Optional

from kybernetes.apiserver import errors

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
_INT = re.compile(r"^[+-]?[0-9]+$")


def as_bool(value: Optional[str]) -> bool:
    """Convert_Slice_string_To_bool."""
    if value is None:
        return False
    return not (value == "0" or value.lower() == "false")


def as_int64(name: str, value: Optional[str]) -> Optional[int]:
    """An int64 query parameter (None when absent or empty)."""
    if value is None or value == "":
        return None
    if not _INT.match(value):
        raise errors.bad_request(f'{name}: strconv.ParseInt: parsing "{value}": invalid syntax')
    n = int(value)
    if not INT64_MIN <= n <= INT64_MAX:
        raise errors.bad_request(f'{name}: strconv.ParseInt: parsing "{value}": value out of range')
    return n
