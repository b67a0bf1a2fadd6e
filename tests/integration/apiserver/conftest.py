"""Fixtures for API server integration tests: one `kyb server` per module (the `kyb` fixture)."""

from __future__ import annotations

import aiohttp
import pytest

from apiserver_helpers import Api


@pytest.fixture
async def api(kyb):
    conn = aiohttp.TCPConnector(ssl=kyb.ssl_context())
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as s:
        yield Api(s, kyb.url)


@pytest.fixture
async def ns(api) -> str:
    """A fresh namespace for one test."""
    return await api.namespace()
