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


@pytest.fixture(scope="module")
def k8s(kyb):
    """The official `kubernetes` Python client (an ApiClient) on the module's server, admin credentials."""
    from kubernetes import client as k8s_client, config

    cfg = k8s_client.Configuration()
    config.load_kube_config(config_file=str(kyb.kubeconfig), client_configuration=cfg)
    with k8s_client.ApiClient(cfg) as c:
        yield c


@pytest.fixture
async def client(kyb):
    """A kybernetes.client.Client on the module's server (admin credentials)."""
    from kybernetes.client import Client

    async with Client.from_kubeconfig(kyb.kubeconfig) as c:
        yield c


@pytest.fixture
async def namespace(client) -> str:
    """A fresh namespace for one test (removed afterwards if it is still there)."""
    import secrets

    from kybernetes.client import NotFound

    name = f"t-{secrets.token_hex(4)}"
    nsapi = client.resource("", "v1", "namespaces")
    await nsapi.create({"metadata": {"name": name}})
    yield name
    try:
        await nsapi.delete(name)
    except NotFound:
        pass
