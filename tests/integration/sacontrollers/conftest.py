"""Fixtures for the service-account, root-CA and aggregation controllers, which run
inside the module's real `kyb server` (they are in the default controller list)."""

from __future__ import annotations

import secrets

import pytest

from kybernetes.client import Client, NotFound


@pytest.fixture
async def client(kyb):
    async with Client.from_kubeconfig(kyb.kubeconfig) as c:
        yield c


@pytest.fixture
async def namespace(client) -> str:
    name = f"sa-{secrets.token_hex(4)}"
    nsapi = client.resource("", "v1", "namespaces")
    await nsapi.create({"metadata": {"name": name}})
    yield name
    try:
        await nsapi.delete(name)
    except NotFound:
        pass

