"""The namespace controller, run in this process against a real server: deleting a
namespace empties it and the namespace disappears; content held by a finalizer keeps it
(with the upstream conditions) until released, and the release is noticed by watch."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from ctl_helpers import condition, wait_for_event
from kybernetes.client import NotFound
from kybernetes.controllers.manager import start_controller_manager
from kybernetes.controllers.namespace import CONDITION_TYPES, NamespaceController


def deployment(name: str) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }


@pytest.fixture
async def manager(client):
    m = await start_controller_manager(client, controllers=[NamespaceController])
    yield m
    await m.stop()


async def make_namespace(client) -> str:
    name = f"nsctl-{secrets.token_hex(4)}"
    await client.resource("", "v1", "namespaces").create({"metadata": {"name": name}})
    return name


async def test_deleted_namespace_is_emptied_and_removed(kyb, client, manager):
    name = await make_namespace(client)
    cms = client.resource("", "v1", "configmaps")
    for i in range(5):
        await cms.create({"metadata": {"name": f"cm{i}"}, "data": {"i": str(i)}}, namespace=name)
    await client.resource("", "v1", "secrets").create({"metadata": {"name": "s"}, "stringData": {"k": "v"}}, namespace=name)
    await client.resource("apps", "v1", "deployments").create(deployment("web"), namespace=name)

    nsapi = client.resource("", "v1", "namespaces")
    rv = (await nsapi.get(name))["metadata"]["resourceVersion"]
    last: dict = {}

    def gone(etype: str, obj: dict) -> bool:
        if etype == "MODIFIED":
            last.update(obj)
        return etype == "DELETED"

    waiter = asyncio.ensure_future(wait_for_event(nsapi, gone, resource_version=rv,
                                                  field_selector=f"metadata.name={name}", timeout=60))
    # the real kubectl waits until the namespace is gone, as against upstream
    out = await asyncio.to_thread(kyb.kubectl, "delete", "namespace", name, "--timeout=60s")
    assert f'namespace "{name}" deleted' in out.stdout
    await waiter

    with pytest.raises(NotFound):
        await nsapi.get(name)
    for gvr in (("", "v1", "configmaps"), ("", "v1", "secrets"), ("apps", "v1", "deployments")):
        assert (await client.resource(*gvr).list(name))["items"] == []
    # before finalizing, the controller reported every condition it owns as fine
    assert last["status"]["phase"] == "Terminating"
    for ctype in CONDITION_TYPES:
        assert condition(last, ctype)["status"] == "False", ctype
    assert condition(last, "NamespaceContentRemaining")["message"] == "All content successfully removed"
    assert condition(last, "NamespaceContentRemaining")["reason"] == "ContentRemoved"
    assert condition(last, "NamespaceDeletionDiscoveryFailure")["reason"] == "ResourcesDiscovered"


async def test_finalizer_on_content_holds_namespace_until_released(client, manager):
    name = await make_namespace(client)
    cms = client.resource("", "v1", "configmaps")
    await cms.create({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}, namespace=name)
    await cms.create({"metadata": {"name": "free"}}, namespace=name)
    nsapi = client.resource("", "v1", "namespaces")
    rv = (await nsapi.get(name))["metadata"]["resourceVersion"]

    def reports_finalizer(etype: str, obj: dict) -> bool:
        c = condition(obj, "NamespaceFinalizersRemaining")
        return etype == "MODIFIED" and c is not None and c["status"] == "True"

    waiter = asyncio.ensure_future(wait_for_event(nsapi, reports_finalizer, resource_version=rv,
                                                  field_selector=f"metadata.name={name}", timeout=30))
    await nsapi.delete(name)
    _, ns = await waiter
    c = condition(ns, "NamespaceFinalizersRemaining")
    assert c["reason"] == "SomeFinalizersRemain"
    assert c["message"] == "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    r = condition(ns, "NamespaceContentRemaining")
    assert r["status"] == "True" and r["reason"] == "SomeResourcesRemain"
    assert r["message"] == "Some resources are remaining: configmaps. has 1 resource instances"
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    held = await cms.get("held", namespace=name)
    assert held["metadata"].get("deletionTimestamp")
    with pytest.raises(NotFound):
        await cms.get("free", namespace=name)

    # releasing the finalizer removes the configmap; the controller's content watch
    # notices at once (well before its 8.5 s fallback requeue) and finishes the namespace
    rv2 = (await nsapi.get(name))["metadata"]["resourceVersion"]
    deleted = asyncio.ensure_future(wait_for_event(nsapi, lambda t, o: t == "DELETED", resource_version=rv2,
                                                   field_selector=f"metadata.name={name}", timeout=30))
    t0 = time.monotonic()
    await cms.patch("held", {"metadata": {"finalizers": None}}, namespace=name)
    await deleted
    assert time.monotonic() - t0 < 5.0


async def test_other_namespace_finalizer_is_left_alone(client, manager):
    name = f"nsctl-{secrets.token_hex(4)}"
    nsapi = client.resource("", "v1", "namespaces")
    created = await nsapi.create({"metadata": {"name": name}, "spec": {"finalizers": ["example.com/other"]}})
    assert sorted(created["spec"]["finalizers"]) == ["example.com/other", "kubernetes"]
    await client.resource("", "v1", "configmaps").create({"metadata": {"name": "x"}}, namespace=name)
    rv = created["metadata"]["resourceVersion"]
    waiter = asyncio.ensure_future(wait_for_event(
        nsapi, lambda t, o: t == "MODIFIED" and "kubernetes" not in (o.get("spec") or {}).get("finalizers", []),
        resource_version=rv, field_selector=f"metadata.name={name}", timeout=30))
    await nsapi.delete(name)
    _, ns = await waiter
    assert ns["spec"]["finalizers"] == ["example.com/other"]
    assert ns["status"]["phase"] == "Terminating"
    assert (await client.resource("", "v1", "configmaps").list(name))["items"] == []
    # whoever owns the other finalizer finishes the job
    rv = ns["metadata"]["resourceVersion"]
    gone = asyncio.ensure_future(wait_for_event(nsapi, lambda t, o: t == "DELETED", resource_version=rv,
                                                field_selector=f"metadata.name={name}", timeout=30))
    await nsapi.update({**ns, "spec": {"finalizers": []}}, subresource="finalize")
    await gone


async def test_live_namespace_untouched(client, manager, namespace):
    cms = client.resource("", "v1", "configmaps")
    await cms.create({"metadata": {"name": "keep"}}, namespace=namespace)
    # a namespace that is not being deleted is never enqueued
    ctl = manager.controller("namespace")
    assert ctl is not None and len(ctl.queue) == 0 and not ctl.queue.processing
    assert (await cms.get("keep", namespace=namespace))["metadata"]["name"] == "keep"
