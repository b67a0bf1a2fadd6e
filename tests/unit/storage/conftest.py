"""Fixtures for the backend-agnostic Store suite.

Every backend is a param of `store_factory`; tests only see the Store interface.
To add a backend (e.g. "etcd"), add its name to BACKENDS and a branch in
`_make_factory` that returns stores sharing one backing datastore."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest

from kybernetes.storage import SQLiteStore, Store

BACKENDS = ["sqlite"]

StoreFactory = Callable[[], Awaitable[Store]]


def _make_factory(backend: str, tmp_path: Path, opened: list[Store]) -> StoreFactory:
    if backend == "sqlite":
        path = str(tmp_path / "db" / "state.db")

        async def factory() -> Store:
            # No timer compaction in tests: tests compact explicitly.
            s = SQLiteStore(path, compact_interval=0)
            await s.start()
            opened.append(s)
            return s

        return factory
    raise ValueError(f"no test factory for backend {backend!r}")


@pytest.fixture(params=BACKENDS)
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens started stores over the same backing data (for restart tests); closes them all at teardown."""
    opened: list[Store] = []
    yield _make_factory(request.param, tmp_path, opened)
    for s in reversed(opened):
        await s.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """A started, empty store."""
    return await store_factory()
