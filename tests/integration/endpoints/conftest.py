"""Fixtures for Endpoints / EndpointSlice integration tests against a real `kyb server`
(whose controller manager runs both controllers)."""

from __future__ import annotations

import secrets

import pytest

from kybernetes.client import Client


@pytest.fixture
async def client(kyb):
    async with Client.from_kubeconfig(kyb.kubeconfig) as c:
        yield c


@pytest.fixture
async def namespace(client) -> str:
    name = f"ep-{secrets.token_hex(4)}"
    nsapi = client.resource("", "v1", "namespaces")
    await nsapi.create({"metadata": {"name": name}})
    yield name
    try:
        await nsapi.delete(name)
    except Exception:  # noqa: BLE001 - already gone
        pass
