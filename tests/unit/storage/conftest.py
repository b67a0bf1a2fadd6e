"""Fixtures for the backend-agnostic Store suite.

Every backend is a param of `store_factory`; tests only see the Store interface.
To add a backend, add its name to BACKENDS and a branch in `_make_factory` that
returns stores sharing one backing datastore.

"etcd" runs each test against its own fresh single-member etcd (real binary,
loopback ports, data in tmp_path): a new member is healthy in well under 0.1 s
with the fast raft timers the fixture uses, and only a fresh one gives the
suite what it assumes of a new store (revisions and history from this test
alone, no compaction point).  Skips only when no etcd binary is installed."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest

from kybernetes.storage import SQLiteStore, Store

BACKENDS = ["sqlite", "etcd"]

StoreFactory = Callable[[], Awaitable[Store]]


def _make_factory(backend: str, tmp_path: Path, opened: list[Store], opened_clusters: list) -> StoreFactory:
    if backend == "sqlite":
        path = str(tmp_path / "db" / "state.db")

        async def factory() -> Store:
            # No timer compaction in tests: tests compact explicitly.
            s = SQLiteStore(path, compact_interval=0)
            await s.start()
            opened.append(s)
            return s

        return factory
    if backend == "etcd":
        from fixtures.etcd import EtcdCluster

        from kybernetes.storage.etcd import EtcdStore

        cluster = EtcdCluster(tmp_path / "etcd", size=1).start()
        opened_clusters.append(cluster)

        async def factory() -> Store:
            s = EtcdStore(cluster.endpoints, compact_interval=0)
            await s.start()
            opened.append(s)
            return s

        return factory
    raise ValueError(f"no test factory for backend {backend!r}")


@pytest.fixture(params=BACKENDS)
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens started stores over the same backing data (for restart tests); closes them all at teardown."""
    opened: list[Store] = []
    clusters: list = []
    if request.param == "etcd":
        from fixtures.etcd import require_etcd

        require_etcd()
    try:
        yield _make_factory(request.param, tmp_path, opened, clusters)
    finally:
        for s in reversed(opened):
            await s.close()
        for c in clusters:
            c.kill()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """A started, empty store."""
    return await store_factory()
