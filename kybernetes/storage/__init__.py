"""storage: the Store contract, its backends, and the API server's watch cache.

Typical use::

    store = open_store("sqlite:///var/lib/kybernetes/db/state.db")
    await store.start()
    ...
    await store.close()
"""

from __future__ import annotations

from typing import Any

from .errors import StoreClosedError, WatchTooSlowError
from .interface import (
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    StorageError,
    Store,
    UnavailableError,
)
from .sqlite import SQLiteStore, prefix_end
from .watchcache import WatchCache

__all__ = [
    "CompactedError",
    "ConflictError",
    "Event",
    "FutureRevisionError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "ListResult",
    "SQLiteStore",
    "StorageError",
    "Store",
    "StoreClosedError",
    "UnavailableError",
    "WatchCache",
    "WatchTooSlowError",
    "open_store",
    "prefix_end",
]


def open_store(url: str, **options: Any) -> Store:
    """Build (not start) the Store named by a datastore endpoint URL.

    `sqlite://PATH` (`sqlite:///abs/path` or `sqlite://rel/path`) or a bare file
    path selects SQLite; `options` go to the backend's constructor (for SQLite:
    compact_interval, compact_keep).  `etcd://...` is reserved for the etcd
    backend.  Call `await store.start()` before use."""
    if not url:
        raise ValueError("empty datastore endpoint")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return SQLiteStore(url, **options)
    scheme = scheme.lower()
    if scheme in ("sqlite", "sqlite3"):
        path = rest.split("?", 1)[0]
        if not path:
            raise ValueError(f"datastore endpoint {url!r} has no file path")
        return SQLiteStore(path, **options)
    if scheme in ("etcd", "etcds", "etcd+https", "etcd+http"):
        raise NotImplementedError("etcd backend not available yet")
    raise ValueError(f"unknown datastore scheme {scheme!r} in {url!r} (expected sqlite:// or etcd://)")
