"""Random (version 4) UUIDs for object uids and audit IDs, as uuid.uuid4() makes them,
with the OS randomness read a block at a time: os.urandom gives up the GIL on every
call, and with the datastore's threads busy that costs the event loop a thread switch
per UUID (two per create)."""

from __future__ import annotations

import os
import threading
import uuid

_BLOCK = 16 * 256
_lock = threading.Lock()
_pool = b""
_pos = 0


def _forget() -> None:
    """A forked child must never hand out the UUIDs its parent will."""
    global _pool, _pos
    _pool, _pos = b"", 0


os.register_at_fork(after_in_child=_forget)


def new_uuid() -> str:
    """A fresh random UUID in its canonical text form (like str(uuid.uuid4()))."""
    global _pool, _pos
    with _lock:
        if _pos >= len(_pool):
            _pool, _pos = os.urandom(_BLOCK), 0
        raw = _pool[_pos:_pos + 16]
        _pos += 16
    return str(uuid.UUID(bytes=raw, version=4))
