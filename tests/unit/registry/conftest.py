"""Registry tests run on a frozen clock, so duration cells are stable."""

from __future__ import annotations

import datetime as dt

import pytest
from registry_helpers import NOW

from kybernetes.registry import base


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    monkeypatch.setattr(base, "now", lambda: NOW)
    return NOW
