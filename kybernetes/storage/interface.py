"""The Store contract every datastore backend implements.

One global, monotonically increasing revision is the resourceVersion of the
whole cluster.  Every key carries the revision that created it and the one
that last modified it.  Values are opaque bytes (already encrypted where the
API server is configured to encrypt).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncIterator, Literal, Optional


class StorageError(Exception):
    """Base class of datastore failures."""


class KeyExistsError(StorageError):
    """create() found the key already present."""

    def __init__(self, key: str, current: Optional["KeyValue"] = None) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key
        self.current = current


class KeyNotFoundError(StorageError):
    """update()/delete() found no such key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StorageError):
    """A compare-and-swap saw a different mod revision; `current` is what is stored now."""

    def __init__(self, key: str, current: Optional["KeyValue"]) -> None:
        super().__init__(f"revision conflict on {key}")
        self.key = key
        self.current = current


class CompactedError(StorageError):
    """The requested revision is older than the compaction point (HTTP 410 Gone)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (compacted up to {compacted})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StorageError):
    """The requested revision is newer than anything stored yet."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is in the future (current {current})")
        self.requested = requested
        self.current = current


class UnavailableError(StorageError):
    """The backend cannot be reached right now (retryable, HTTP 503/504).

    `maybe_applied` is False when the request certainly never reached the backend
    (nothing changed); a write that timed out after it was sent may still land."""

    def __init__(self, message: str, *, maybe_applied: bool = True) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change in the log.  `kv.mod_revision` is the revision of the change itself;
    for DELETE, `kv.value` is the last value before deletion."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev: Optional[KeyValue]

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def created(self) -> bool:
        """True when this PUT created the key (kv.create_revision == revision)."""
        return self.type == "PUT" and self.kv.create_revision == self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the revision the list was read at
    more: bool  # True when `limit` cut the list short
    count: int = 0  # total matching keys at `revision` (remaining incl. returned), when cheap


class Store(abc.ABC):
    """Async MVCC key-value store with kine/etcd semantics."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open connections, create schema, start background tasks."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and release everything; pending watches end."""

    @abc.abstractmethod
    async def get(self, key: str, *, revision: int = 0) -> Optional[KeyValue]:
        """The live value of `key` (at `revision` when non-zero), or None."""

    @abc.abstractmethod
    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: Optional[str] = None
    ) -> ListResult:
        """Live keys under `prefix` in key order, read at `revision` (0 = current).

        `start_after` skips keys <= it (for continue tokens).  Raises CompactedError
        for a revision older than the compaction point and FutureRevisionError for
        one newer than the current revision."""

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> KeyValue:
        """Create `key`; raises KeyExistsError if it is live."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        """Replace `key` if its mod revision is `expected_mod_revision`.

        Raises KeyNotFoundError when absent, ConflictError on mismatch."""

    @abc.abstractmethod
    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        """Delete `key` (only if its mod revision matches, when non-zero).

        Returns the deleted value with `mod_revision` = the deletion's revision.
        Raises KeyNotFoundError / ConflictError."""

    @abc.abstractmethod
    def watch(self, prefix: str, start_after: int) -> AsyncIterator[Event]:
        """Events under `prefix` with revision > `start_after`, in revision order,
        then live events as they happen.  Raises CompactedError (on first
        iteration) when `start_after` < the compaction revision."""

    @abc.abstractmethod
    async def current_revision(self) -> int:
        """The newest revision written."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Drop history older than `revision` (live values are kept)."""

    async def compacted_revision(self) -> int:
        """The revision history has been compacted up to (0 if never)."""
        return 0
