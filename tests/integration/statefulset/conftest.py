"""Fixtures for client and controller integration tests against a real `kyb server`."""

from __future__ import annotations

import secrets

import pytest

from kybernetes.client import Client


@pytest.fixture
async def client(kyb):
    """A kybernetes.client.Client on the module's server (admin credentials)."""
    async with Client.from_kubeconfig(kyb.kubeconfig) as c:
        yield c


@pytest.fixture
async def namespace(client) -> str:
    """A fresh namespace for one test (removed afterwards if it is still there)."""
    name = f"t-{secrets.token_hex(4)}"
    nsapi = client.resource("", "v1", "namespaces")
    await nsapi.create({"metadata": {"name": name}})
    yield name
    try:
        await nsapi.delete(name)
    except Exception:  # noqa: BLE001 - already gone
        pass
