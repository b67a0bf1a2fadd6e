"""The root CA publisher against an in-memory API: `kube-root-ca.crt` in every
namespace, equal to the CA, restored when edited or deleted."""

from __future__ import annotations

import pytest

from kybernetes.client import Conflict
from kybernetes.controllers.manager import default_controllers
from kybernetes.controllers.rootca import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    ROOT_CA_CONFIGMAP,
    RootCACertPublisher,
)
from test_sa_fakeapi import FakeCluster, namespace, status

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
async def api():
    return FakeCluster()


@pytest.fixture
async def ctl(api):
    c = api.client()
    ctl = RootCACertPublisher(c, root_ca=CA.encode())
    yield ctl
    await ctl.stop()
    await c.close()


def cm(api, ns):
    return api.get("configmaps", ROOT_CA_CONFIGMAP, ns)


def published(api, ns):
    def check() -> bool:
        o = cm(api, ns)
        return o is not None and o.get("data") == {"ca.crt": CA} \
            and o["metadata"].get("annotations", {}).get(DESCRIPTION_ANNOTATION) == DESCRIPTION
    return check


async def test_every_namespace_gets_the_ca(api, ctl):
    api.put("namespaces", namespace("a"))
    await ctl.start(sync_timeout=2)
    await api.wait_until(published(api, "a"))
    api.put("namespaces", namespace("b"))
    await api.wait_until(published(api, "b"))
    assert ctl.root_ca == CA


async def test_edits_and_deletes_are_undone(api, ctl):
    api.put("namespaces", namespace("a"))
    await ctl.start(sync_timeout=2)
    await api.wait_until(published(api, "a"))

    edited = cm(api, "a")
    edited["data"] = {"ca.crt": "junk", "more": "x"}
    edited["metadata"]["labels"] = {"keep": "me"}
    api.put("configmaps", edited)
    await api.wait_until(published(api, "a"))
    assert cm(api, "a")["metadata"]["labels"] == {"keep": "me"}  # only data and the annotation are ours

    no_note = cm(api, "a")
    no_note["metadata"]["annotations"] = {}
    api.put("configmaps", no_note)
    await api.wait_until(published(api, "a"))

    uid = cm(api, "a")["metadata"]["uid"]
    api.remove("configmaps", ROOT_CA_CONFIGMAP, "a")
    await api.wait_until(lambda: published(api, "a")() and cm(api, "a")["metadata"]["uid"] != uid)


async def test_no_write_when_equal_and_none_in_terminating(api, ctl):
    api.put("namespaces", namespace("a"))
    api.put("namespaces", namespace("doomed", deletionTimestamp="2026-01-01T00:00:00Z"))
    api.put("configmaps", {"metadata": {"name": "other", "namespace": "a"}, "data": {}})
    ctl.informers.start()  # caches only: reconcile by hand
    assert await ctl.informers.wait_synced(2)
    assert ctl.configmaps.list() == []  # only kube-root-ca.crt is cached (field selector)
    await ctl.reconcile("a")
    await api.wait_until(lambda: ctl.configmaps.get(f"a/{ROOT_CA_CONFIGMAP}") is not None)
    before = list(api.writes)
    await ctl.reconcile("a")
    await ctl.reconcile("doomed")
    await ctl.reconcile("never-existed")
    assert api.writes == before


async def test_create_and_update_errors(api, ctl):
    api.put("namespaces", namespace("a"))
    ctl.informers.start()
    assert await ctl.informers.wait_synced(2)
    api.inject[:] = [lambda m, r, ns, n: status(403, "Forbidden", "terminating",
                                                 [{"reason": "NamespaceTerminating"}]) if m == "POST" else None]
    await ctl.reconcile("a")  # ignored
    api.inject[:] = [lambda m, r, ns, n: status(404, "NotFound") if m == "POST" else None]
    await ctl.reconcile("a")  # ignored
    api.inject[:] = []
    await ctl.reconcile("a")
    await api.wait_until(lambda: ctl.configmaps.get(f"a/{ROOT_CA_CONFIGMAP}") is not None)

    stale = cm(api, "a")
    stale["data"] = {"ca.crt": "junk"}
    api.put("configmaps", stale)
    await api.wait_until(lambda: ctl.configmaps.get(f"a/{ROOT_CA_CONFIGMAP}")["data"] == {"ca.crt": "junk"})
    api.inject[:] = [lambda m, r, ns, n: status(409, "Conflict") if m == "PUT" else None]
    with pytest.raises(Conflict):  # retried by the worker, from a fresher cache
        await ctl.reconcile("a")
    api.inject[:] = []
    await ctl.reconcile("a")
    assert published(api, "a")()


def test_needs_a_ca():
    with pytest.raises(ValueError):
        RootCACertPublisher(FakeCluster().client(), root_ca=b"")


def test_manager_passes_the_ca():
    factory = next(f for f in default_controllers(root_ca=CA.encode()) if getattr(f, "func", None) is RootCACertPublisher)
    assert factory.keywords == {"root_ca": CA.encode()}
