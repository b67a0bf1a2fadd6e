"""Fixtures for admission plugin unit tests: a real SQLite-backed ObjectStore."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kybernetes.apiserver.objects import ObjectStore  # noqa: E402
from kybernetes.storage.sqlite import SQLiteStore  # noqa: E402


@pytest.fixture
async def objects(tmp_path):
    store = SQLiteStore(str(tmp_path / "s.db"), compact_interval=0)
    await store.start()
    objs = ObjectStore(store)
    yield objs
    await objs.close()
    await store.close()
