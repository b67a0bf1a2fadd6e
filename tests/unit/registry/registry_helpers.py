"""Helpers for the registry tests: a fixed 'now' and timestamps relative to it."""

from __future__ import annotations

import datetime as dt

NOW = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def ago(seconds: float) -> str:
    """An RFC 3339 timestamp `seconds` before NOW."""
    return (NOW - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
