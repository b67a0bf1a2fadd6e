"""The ServiceAccount controller against an in-memory API: `default` in every active
namespace, re-created when deleted, never in terminating namespaces."""

from __future__ import annotations

import pytest

from kybernetes.controllers.base import ReconcileError
from kybernetes.controllers.manager import default_controllers
from kybernetes.controllers.serviceaccounts import ServiceAccountsController, namespace_is_active
from test_sa_fakeapi import FakeCluster, namespace, status


@pytest.fixture
async def api():
    return FakeCluster()


@pytest.fixture
async def ctl(api):
    c = api.client()
    ctl = ServiceAccountsController(c)
    yield ctl
    await ctl.stop()
    await c.close()


def has_sa(api, ns, name="default"):
    return lambda: api.get("serviceaccounts", name, ns) is not None


async def test_existing_and_new_namespaces_get_default(api, ctl):
    api.put("namespaces", namespace("a"))
    api.put("namespaces", namespace("b"))
    api.put("serviceaccounts", {"metadata": {"name": "default", "namespace": "b"}})
    await ctl.start(sync_timeout=2)
    await api.wait_until(has_sa(api, "a"))
    api.put("namespaces", namespace("c"))
    await api.wait_until(has_sa(api, "c"))
    assert ("POST", "serviceaccounts", "b", "default") not in api.writes  # it was there already
    sa = api.get("serviceaccounts", "default", "c")
    assert sa["kind"] == "ServiceAccount" and sa["metadata"]["namespace"] == "c"


async def test_deleted_default_is_recreated(api, ctl):
    api.put("namespaces", namespace("a"))
    await ctl.start(sync_timeout=2)
    await api.wait_until(has_sa(api, "a"))
    uid = api.get("serviceaccounts", "default", "a")["metadata"]["uid"]
    api.remove("serviceaccounts", "default", "a")
    await api.wait_until(lambda: (api.get("serviceaccounts", "default", "a") or {}).get("metadata", {}).get("uid")
                         not in (None, uid))


async def test_terminating_namespace_is_left_alone(api, ctl):
    api.put("namespaces", namespace("doomed", deletionTimestamp="2026-01-01T00:00:00Z"))
    api.put("namespaces", namespace("live"))
    await ctl.start(sync_timeout=2)
    await api.wait_until(has_sa(api, "live"))
    await ctl.reconcile("doomed")
    await ctl.reconcile("gone")  # not in the cache: nothing to do
    assert [w for w in api.writes if w[2] != "live"] == []


async def test_create_errors(api, ctl):
    api.put("namespaces", namespace("a"))
    ctl.informers.start()  # caches only, no workers: reconcile is called by hand
    assert await ctl.informers.wait_synced(2)

    # the namespace began terminating after the cache saw it: not an error
    api.inject[:] = [lambda m, r, ns, n: status(403, "Forbidden", "terminating",
                                                 [{"reason": "NamespaceTerminating"}]) if m == "POST" else None]
    await ctl.reconcile("a")
    # the namespace is gone: not an error either
    api.inject[:] = [lambda m, r, ns, n: status(404, "NotFound") if m == "POST" else None]
    await ctl.reconcile("a")
    # anything else is retried
    api.inject[:] = [lambda m, r, ns, n: status(500, "InternalError", "boom") if m == "POST" else None]
    with pytest.raises(ReconcileError, match="boom"):
        await ctl.reconcile("a")
    # a racing creator won: fine
    api.inject[:] = [lambda m, r, ns, n: status(409, "AlreadyExists") if m == "POST" else None]
    await ctl.reconcile("a")


async def test_configured_accounts(api):
    c = api.client()
    ctl = ServiceAccountsController(c, service_accounts=[{"metadata": {"name": "default"}},
                                                         {"metadata": {"name": "builder"}}])
    try:
        api.put("namespaces", namespace("a"))
        await ctl.start(sync_timeout=2)
        await api.wait_until(lambda: has_sa(api, "a")() and has_sa(api, "a", "builder")())
    finally:
        await ctl.stop()
        await c.close()


def test_namespace_is_active():
    assert namespace_is_active(namespace("a"))
    assert namespace_is_active({"metadata": {"name": "a"}})  # phase not set yet
    assert not namespace_is_active(namespace("a", deletionTimestamp="x"))
    assert not namespace_is_active({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})


def test_in_default_controller_list():
    names = [getattr(f, "name", None) or f.func.name for f in default_controllers()]
    assert "serviceaccount" in names and "clusterrole-aggregation" in names
    assert "root-ca-cert-publisher" not in names  # no CA, no publisher
    with_ca = [getattr(f, "name", None) or f.func.name for f in default_controllers(root_ca=b"PEM")]
    assert "root-ca-cert-publisher" in with_ca
