"""Shared test fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures.server import RunningServer, start_server  # noqa: E402


@pytest.fixture(scope="module")
def kyb(tmp_path_factory) -> RunningServer:
    """One real `kyb server` per test module."""
    srv = start_server(tmp_path_factory.mktemp("kyb"))
    yield srv
    srv.stop()
