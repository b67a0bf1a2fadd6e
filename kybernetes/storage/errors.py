"""Storage errors shared by every backend and the watch cache, beyond those in interface.py."""

from __future__ import annotations

from .interface import CompactedError, StorageError


class WatchTooSlowError(CompactedError):
    """A watcher fell too far behind and was dropped.

    It subclasses CompactedError on purpose: the API server answers both with
    410 Gone (`Expired`), and the client's reaction is the same — list again and
    watch from the list's revision."""

    def __init__(self, revision: int, reason: str = "watcher fell too far behind") -> None:
        StorageError.__init__(self, f"watch ended at revision {revision}: {reason}")
        self.requested = revision
        self.compacted = revision
        self.reason = reason


class StoreClosedError(StorageError):
    """The store (or watch cache) has been closed."""
