"""kybernetes.client against a real server: CRUD, list (selectors, pages), watch, patch
flavours, errors, discovery, and the kubeconfig-only trust of TLS."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from ctl_helpers import wait_for_event
from kybernetes.client import (
    AlreadyExists,
    Client,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    TransportError,
)
from kybernetes.client.kubeconfig import load_kubeconfig


def cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


async def test_configmap_crud(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    created = await cms.create(cm("one", a="1"), namespace=namespace)
    assert created["metadata"]["namespace"] == namespace and created["metadata"]["uid"]
    got = await cms.get("one", namespace=namespace)
    assert got["data"] == {"a": "1"}

    got["data"]["b"] = "2"
    updated = await cms.update(got)
    assert updated["data"] == {"a": "1", "b": "2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])

    with pytest.raises(Conflict) as stale:
        await cms.update(got)  # got's resourceVersion is now stale
    assert stale.value.code == 409 and stale.value.reason == "Conflict"

    with pytest.raises(AlreadyExists) as dup:
        await cms.create(cm("one"), namespace=namespace)
    assert dup.value.status["details"]["name"] == "one"

    await cms.delete("one", namespace=namespace)
    with pytest.raises(NotFound) as nf:
        await cms.get("one", namespace=namespace)
    assert nf.value.code == 404 and nf.value.status["kind"] == "Status"
    with pytest.raises(NotFound):
        await cms.delete("one", namespace=namespace)


async def test_patch_types(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    await cms.create(cm("p", a="1"), namespace=namespace)
    merged = await cms.patch("p", {"data": {"b": "2"}}, namespace=namespace)
    assert merged["data"] == {"a": "1", "b": "2"}
    jsonp = await cms.patch("p", [{"op": "remove", "path": "/data/a"}], type="json", namespace=namespace)
    assert jsonp["data"] == {"b": "2"}
    smp = await cms.patch("p", {"metadata": {"labels": {"x": "y"}}}, type="strategic", namespace=namespace)
    assert smp["metadata"]["labels"]["x"] == "y"

    deps = client.resource("apps", "v1", "deployments")
    await deps.create(deployment("web"), namespace=namespace)
    scaled = await deps.patch("web", {"spec": {"replicas": 3}}, namespace=namespace, subresource="scale")
    assert scaled["kind"] == "Scale" and scaled["spec"]["replicas"] == 3
    assert (await deps.get("web", namespace=namespace))["spec"]["replicas"] == 3


async def test_update_status_and_invalid(client, namespace):
    deps = client.resource("apps", "v1", "deployments")
    d = await deps.create(deployment("st"), namespace=namespace)
    d["status"] = {"observedGeneration": 1, "replicas": 0}
    out = await deps.update_status(d)
    assert out["status"]["observedGeneration"] == 1
    bad = deployment("bad")
    bad["spec"]["replicas"] = -1
    with pytest.raises(Invalid) as e:
        await deps.create(bad, namespace=namespace)
    assert e.value.code == 422 and e.value.details.get("causes")


async def test_list_selectors_and_pages(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    for i in range(7):
        body = cm(f"c{i}")
        body["metadata"]["labels"] = {"parity": "even" if i % 2 == 0 else "odd"}
        await cms.create(body, namespace=namespace)
    evens = await cms.list(namespace, label_selector="parity=even")
    assert sorted(i["metadata"]["name"] for i in evens["items"]) == ["c0", "c2", "c4", "c6"]
    one = await cms.list(namespace, field_selector="metadata.name=c3")
    assert [i["metadata"]["name"] for i in one["items"]] == ["c3"]

    first = await cms.list(namespace, limit=3)
    assert len(first["items"]) == 3 and first["metadata"].get("continue")
    merged = await cms.list_all(namespace, page_size=3)
    names = [i["metadata"]["name"] for i in merged["items"]]
    assert sorted(n for n in names if n.startswith("c")) == [f"c{i}" for i in range(7)]
    assert "continue" not in merged["metadata"]

    await cms.delete_collection(namespace, label_selector="parity=odd")
    left = await cms.list(namespace, label_selector="parity")
    assert sorted(i["metadata"]["name"] for i in left["items"]) == ["c0", "c2", "c4", "c6"]


async def test_watch_sees_changes_in_order(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    start = (await cms.list(namespace))["metadata"]["resourceVersion"]
    events: list[tuple[str, str]] = []

    async def consume():
        # the root-CA publisher adds kube-root-ca.crt to every namespace; look past it
        async with cms.watch(namespace, resource_version=start, timeout_seconds=30,
                             field_selector="metadata.name!=kube-root-ca.crt") as w:
            async for etype, obj in w:
                events.append((etype, obj["metadata"]["name"]))
                if etype == "DELETED":
                    return

    task = asyncio.ensure_future(consume())
    await cms.create(cm("w"), namespace=namespace)
    await cms.patch("w", {"data": {"k": "v"}}, namespace=namespace)
    await cms.delete("w", namespace=namespace)
    await asyncio.wait_for(task, 30)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_watch_ends_at_timeout(client, namespace):
    cms = client.resource("", "v1", "configmaps")
    rv = (await cms.list(namespace))["metadata"]["resourceVersion"]
    got = []
    async with cms.watch(namespace, resource_version=rv, timeout_seconds=1,
                         field_selector="metadata.name!=kube-root-ca.crt") as w:
        async for ev in w:
            got.append(ev)
    assert got == []


async def test_watch_from_compacted_rv_is_gone_or_served(client, namespace):
    """A watch from far in the past either replays (still in the window) or raises Gone;
    it never silently skips."""
    cms = client.resource("", "v1", "configmaps")
    try:
        async with cms.watch(namespace, resource_version="1", timeout_seconds=1) as w:
            async for _ in w:
                pass
    except Gone as e:
        assert e.code == 410


async def test_discovery_against_server(client):
    res = await client.server_resources(preferred_only=True)
    by = {(r.group, r.resource): r for r in res}
    assert by[("", "configmaps")].namespaced and {"list", "delete", "deletecollection"} <= by[("", "configmaps")].verbs
    assert not by[("", "namespaces")].namespaced
    assert by[("apps", "deployments")].kind == "Deployment"
    assert "scale" in by[("apps", "deployments")].subresources
    assert "status" in by[("", "namespaces")].subresources


async def test_generic_request(client):
    assert (await client.request("GET", "/version"))["major"] == "1"
    assert await client.request("GET", "/healthz") == "ok"
    with pytest.raises(NotFound):
        await client.request("GET", "/apis/nope.example.com/v1")


async def test_tls_trusts_only_the_kubeconfig_ca(kyb, monkeypatch, tmp_path):
    # environment CA bundles must not widen (or replace) the trust
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nonexistent.pem"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "nonexistent.pem"))
    async with Client.from_kubeconfig(kyb.kubeconfig) as c:
        assert (await c.request("GET", "/version"))["major"] == "1"
    cfg = load_kubeconfig(kyb.kubeconfig)
    other = ssl.create_default_context()  # system roots only: must fail against our CA
    async with Client(cfg.server, other, max_retries=1, retry_backoff=0.001) as c2:
        with pytest.raises(TransportError):
            await c2.request("GET", "/version")


async def test_cluster_scoped_and_namespaced_checks(client):
    ns = client.resource("", "v1", "namespaces", namespaced=False)
    assert (await ns.get("default"))["metadata"]["name"] == "default"
    with pytest.raises(ValueError):
        await ns.get("default", namespace="x")


async def test_namespace_watch_helper(client, namespace):
    nsapi = client.resource("", "v1", "namespaces")
    cur = await nsapi.get(namespace)
    task = asyncio.ensure_future(wait_for_event(
        nsapi, lambda t, o: t == "MODIFIED" and o["metadata"].get("labels", {}).get("touched") == "yes",
        resource_version=cur["metadata"]["resourceVersion"], field_selector=f"metadata.name={namespace}", timeout=20))
    await nsapi.patch(namespace, {"metadata": {"labels": {"touched": "yes"}}})
    etype, obj = await task
    assert obj["metadata"]["name"] == namespace


def deployment(name: str) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        },
    }
