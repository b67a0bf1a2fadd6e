"""Fixtures for the end-to-end suites."""

from __future__ import annotations

import pytest
from kubernetes import client


@pytest.fixture(scope="module")
def api(k8s):
    """The official Python client on the module's server (tests/conftest.py `k8s`)."""
    return k8s


@pytest.fixture(scope="module")
def module_namespace(api, request):
    """The namespace named by the test module's NS, created for the module and removed after it."""
    name = request.module.NS
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    client.CoreV1Api(api).delete_namespace(name)
