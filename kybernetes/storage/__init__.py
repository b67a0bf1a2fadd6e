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
    compact_interval, compact_keep).

    `etcd://HOST:PORT[,HOST:PORT...]` selects etcd (EtcdStore); `etcds://` or
    `etcd+https://` means TLS.  TLS files come as options `ca`, `cert`, `key`
    (PEM paths) or in the query string (`?ca=/p/ca.crt&cert=...&key=...`);
    other options: request_timeout, compact_interval, compact_keep, server_name.
    Call `await store.start()` before use."""
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
        from urllib.parse import parse_qsl

        from .etcd import EtcdStore

        hosts, _, query = rest.partition("?")
        hosts = hosts.rstrip("/")
        if not hosts:
            raise ValueError(f"datastore endpoint {url!r} names no etcd member")
        opts: dict[str, Any] = {}
        for k, v in parse_qsl(query):
            k = k.replace("-", "_")
            if k in ("ca", "cert", "key", "server_name"):
                opts[k] = v
            elif k in ("request_timeout", "compact_interval"):
                opts[k] = float(v)
            elif k == "compact_keep":
                opts[k] = int(v)
            else:
                raise ValueError(f"unknown etcd datastore option {k!r} in {url!r}")
        opts.update(options)
        tls = scheme in ("etcds", "etcd+https")
        endpoints = [("https://" if tls else "") + h for h in hosts.split(",") if h]
        return EtcdStore(endpoints, **opts)
    raise ValueError(f"unknown datastore scheme {scheme!r} in {url!r} (expected sqlite:// or etcd://)")
