"""Client over a fake transport: paths, params, bodies, errors, retries, watch framing,
discovery parsing."""

from __future__ import annotations

import orjson
import pytest

from client_fakes import (
    FakeResponse,
    FakeTransport,
    conn_error,
    gone_event,
    json_response,
    obj,
    status_response,
    watch_response,
)
from kybernetes.client import (
    AlreadyExists,
    APIStatusError,
    Client,
    Conflict,
    DiscoveryError,
    Gone,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    TransportError,
)
from kybernetes.client.discovery import AGGREGATED_ACCEPT


def make(t: FakeTransport, **kw) -> Client:
    return Client("https://example.invalid", transport=t, retry_backoff=0.001, **kw)


async def test_paths():
    c = make(FakeTransport())
    deps = c.resource("apps", "v1", "deployments")
    assert deps.path() == "/apis/apps/v1/deployments"
    assert deps.path("ns1") == "/apis/apps/v1/namespaces/ns1/deployments"
    assert deps.path("ns1", "web", "scale") == "/apis/apps/v1/namespaces/ns1/deployments/web/scale"
    ns = c.resource("", "v1", "namespaces")
    assert ns.path(None, "x", "finalize") == "/api/v1/namespaces/x/finalize"
    assert c.resource("", "v1", "pods").path("a b", "c/d") == "/api/v1/namespaces/a%20b/pods/c%2Fd"


async def test_get_create_update_patch_delete_requests():
    t = FakeTransport()
    c = make(t, token="tok")
    cms = c.resource("", "v1", "configmaps")
    base = "/api/v1/namespaces/ns/configmaps"
    t.script("GET", f"{base}/a", json_response(obj("a", 1, "ns")))
    t.script("POST", base, json_response(obj("a", 2, "ns"), 201))
    t.script("PUT", f"{base}/a", json_response(obj("a", 3, "ns")))
    t.script("PUT", f"{base}/a/status", json_response(obj("a", 4, "ns")))
    t.script("PATCH", f"{base}/a", json_response(obj("a", 5, "ns")))
    t.script("DELETE", f"{base}/a", json_response({"kind": "Status", "status": "Success"}))
    t.script("DELETE", base, json_response({"kind": "ConfigMapList", "items": []}))

    assert (await cms.get("a", namespace="ns"))["metadata"]["resourceVersion"] == "1"
    await cms.create({"metadata": {"name": "a", "namespace": "ns"}})
    await cms.update(obj("a", 2, "ns"))
    await cms.update_status(obj("a", 3, "ns"))
    await cms.patch("a", {"data": {"k": "v"}}, namespace="ns")
    await cms.patch("a", [{"op": "add", "path": "/data/x", "value": "y"}], type="json", namespace="ns")
    await cms.patch("a", {"data": {"k": None}}, type="strategic", namespace="ns")
    await cms.delete("a", namespace="ns", propagation_policy="Foreground", grace_period_seconds=0,
                     preconditions={"uid": "u1"})
    await cms.delete_collection("ns", label_selector="app=x", propagation_policy="Background")

    get, post, put, put_status, patch1, patch2, patch3, delete, delcol = t.requests
    assert get.headers["Authorization"] == "Bearer tok"
    assert get.headers["Accept"] == "application/json"
    assert post.headers["Content-Type"] == "application/json"
    assert orjson.loads(post.body)["metadata"]["name"] == "a"
    assert put.path == f"{base}/a" and put_status.path == f"{base}/a/status"
    assert patch1.headers["Content-Type"] == "application/merge-patch+json"
    assert patch2.headers["Content-Type"] == "application/json-patch+json"
    assert patch3.headers["Content-Type"] == "application/strategic-merge-patch+json"
    assert orjson.loads(delete.body) == {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground",
                                         "gracePeriodSeconds": 0, "preconditions": {"uid": "u1"}}
    assert delcol.params == [("labelSelector", "app=x")]
    assert orjson.loads(delcol.body)["propagationPolicy"] == "Background"


async def test_list_params():
    t = FakeTransport()
    c = make(t)
    t.script("GET", "/api/v1/pods", json_response({"kind": "PodList", "metadata": {"resourceVersion": "7"}, "items": []}))
    await c.resource("", "v1", "pods").list(label_selector="a=b", field_selector="spec.nodeName=n", limit=10,
                                            continue_="tok", resource_version="0")
    assert t.requests[0].params == [("labelSelector", "a=b"), ("fieldSelector", "spec.nodeName=n"), ("limit", "10"),
                                    ("continue", "tok"), ("resourceVersion", "0")]


async def test_namespaced_check():
    c = make(FakeTransport())
    with pytest.raises(ValueError):
        await c.resource("", "v1", "configmaps", namespaced=True).get("a")
    with pytest.raises(ValueError):
        await c.resource("", "v1", "nodes", namespaced=False).get("a", namespace="x")


async def test_error_mapping():
    t = FakeTransport()
    c = make(t)
    cms = c.resource("", "v1", "configmaps")
    t.script("GET", "/api/v1/namespaces/ns/configmaps/missing", status_response(404, "NotFound", 'configmaps "missing" not found'))
    t.script("POST", "/api/v1/namespaces/ns/configmaps", status_response(409, "AlreadyExists", "exists"))
    t.script("PUT", "/api/v1/namespaces/ns/configmaps/a", status_response(409, "Conflict", "modified"))
    t.script("GET", "/plain", FakeResponse(500, [b"boom"], {"Content-Type": "text/plain"}))
    with pytest.raises(NotFound) as e:
        await cms.get("missing", namespace="ns")
    assert e.value.code == 404 and e.value.reason == "NotFound" and e.value.status["kind"] == "Status"
    with pytest.raises(AlreadyExists) as e2:
        await cms.create(obj("a", 0, "ns"))
    assert isinstance(e2.value, Conflict)
    with pytest.raises(Conflict) as e3:
        await cms.update(obj("a", 1, "ns"))
    assert not isinstance(e3.value, AlreadyExists)
    with pytest.raises(APIStatusError) as e4:
        await c.request("GET", "/plain")
    assert e4.value.code == 500 and e4.value.message == "boom"


async def test_retry_after_on_429_and_503():
    t = FakeTransport()
    c = make(t)
    t.script("POST", "/api/v1/namespaces", status_response(429, "TooManyRequests", headers={"Retry-After": "0"}),
             status_response(503, "ServiceUnavailable", headers={"Retry-After": "0"}),
             json_response({"kind": "Namespace"}, 201))
    assert (await c.resource("", "v1", "namespaces").create({"metadata": {"name": "x"}}))["kind"] == "Namespace"
    assert len(t.requests) == 3


async def test_no_retry_without_retry_after_and_gives_up_eventually():
    t = FakeTransport()
    c = make(t, max_retries=2)
    t.script("GET", "/a", status_response(503, "ServiceUnavailable"))
    t.script("GET", "/b", status_response(429, "TooManyRequests", headers={"Retry-After": "0"}))
    with pytest.raises(ServiceUnavailable):
        await c.request("GET", "/a")
    assert len(t.requests) == 1
    with pytest.raises(TooManyRequests):
        await c.request("GET", "/b")
    assert len(t.requests) == 1 + 3


async def test_connection_errors_retry_idempotent_verbs_only():
    t = FakeTransport()
    c = make(t)
    t.script("GET", "/x", conn_error(), conn_error(), json_response({"ok": 1}))
    assert await c.request("GET", "/x") == {"ok": 1}
    t.script("POST", "/y", conn_error(sent=True), json_response({"ok": 2}))
    with pytest.raises(TransportError):
        await c.request("POST", "/y", {})
    # never reached the server: safe to retry even a POST
    t.script("POST", "/z", conn_error(sent=False), json_response({"ok": 3}))
    assert await c.request("POST", "/z", {}) == {"ok": 3}
    t.script("GET", "/cert", TransportError("bad cert", sent=False, temporary=False), json_response({}))
    with pytest.raises(TransportError):
        await c.request("GET", "/cert")
    assert len(t.sent("GET", "/cert")) == 1


async def test_list_all_pages_and_falls_back_when_continue_expires():
    t = FakeTransport()
    c = make(t)
    pages = {
        None: {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "9", "continue": "c1"},
               "items": [obj("a", 1)]},
        "c1": {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}, "items": [obj("b", 2)]},
    }
    t.route(lambda r: r.path == "/api/v1/configmaps", lambda r: json_response(pages[dict(r.params).get("continue")]))
    res = await c.resource("", "v1", "configmaps").list_all(page_size=1)
    assert [i["metadata"]["name"] for i in res["items"]] == ["a", "b"]
    assert res["metadata"] == {"resourceVersion": "9"}
    assert [dict(r.params).get("limit") for r in t.requests] == ["1", "1"]

    t2 = FakeTransport()
    c2 = make(t2)

    def respond(r):
        p = dict(r.params)
        if p.get("continue"):
            return status_response(410, "Expired", "continue too old")
        if p.get("limit"):
            return json_response(pages[None])
        return json_response({"kind": "ConfigMapList", "metadata": {"resourceVersion": "12"},
                              "items": [obj("a", 1), obj("b", 2), obj("c", 11)]})

    t2.route(lambda r: True, respond)
    res2 = await c2.resource("", "v1", "configmaps").list_all(page_size=1)
    assert len(res2["items"]) == 3 and res2["metadata"]["resourceVersion"] == "12"


async def test_watch_parses_split_lines_and_ends():
    t = FakeTransport()
    c = make(t)
    events = [("ADDED", obj("a", 1)), ("MODIFIED", obj("a", 2)), ("BOOKMARK", {"metadata": {"resourceVersion": "5"}}),
              ("DELETED", obj("a", 6))]
    t.script("GET", "/api/v1/namespaces/ns/configmaps", watch_response(events, split=7))
    got = []
    async with c.resource("", "v1", "configmaps").watch("ns", resource_version="0", allow_watch_bookmarks=True,
                                                        timeout_seconds=5) as w:
        async for etype, o in w:
            got.append((etype, o["metadata"]["resourceVersion"]))
    assert got == [("ADDED", "1"), ("MODIFIED", "2"), ("BOOKMARK", "5"), ("DELETED", "6")]
    params = dict(t.requests[0].params)
    assert params == {"watch": "true", "resourceVersion": "0", "allowWatchBookmarks": "true", "timeoutSeconds": "5"}


async def test_watch_error_410_raises_gone_and_closes():
    t = FakeTransport()
    c = make(t)
    resp = watch_response([("ADDED", obj("a", 1)), gone_event()], hang=True)
    t.script("GET", "/api/v1/configmaps", resp)
    w = c.resource("", "v1", "configmaps").watch(resource_version="1")
    assert (await w.__anext__())[0] == "ADDED"
    with pytest.raises(Gone) as e:
        await w.__anext__()
    assert e.value.code == 410
    assert resp.closed


async def test_watch_http_error_raises():
    t = FakeTransport()
    c = make(t)
    t.script("GET", "/api/v1/configmaps", status_response(410, "Expired", "too old"))
    with pytest.raises(Gone):
        async for _ in c.resource("", "v1", "configmaps").watch(resource_version="1"):
            pass


async def test_watch_close_releases_hanging_stream():
    t = FakeTransport()
    c = make(t)
    resp = watch_response([("ADDED", obj("a", 1))], hang=True)
    t.script("GET", "/api/v1/configmaps", resp)
    async with c.resource("", "v1", "configmaps").watch() as w:
        async for etype, _ in w:
            assert etype == "ADDED"
            break
    assert resp.closed


AGG_CORE = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": [
    {"metadata": {"name": ""}, "versions": [{"version": "v1", "resources": [
        {"resource": "pods", "responseKind": {"group": "", "version": "v1", "kind": "Pod"}, "scope": "Namespaced",
         "verbs": ["get", "list", "delete", "deletecollection"], "shortNames": ["po"],
         "subresources": [{"subresource": "status", "verbs": ["get"]}]},
        {"resource": "nodes", "responseKind": {"group": "", "version": "v1", "kind": "Node"}, "scope": "Cluster",
         "verbs": ["get", "list"]}]}]}]}
AGG_GROUPS = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": [
    {"metadata": {"name": "autoscaling"}, "versions": [
        {"version": "v2", "resources": [{"resource": "horizontalpodautoscalers", "responseKind": {"kind": "HorizontalPodAutoscaler"},
                                         "scope": "Namespaced", "verbs": ["list", "delete"]}]},
        {"version": "v1", "resources": [{"resource": "horizontalpodautoscalers", "responseKind": {"kind": "HorizontalPodAutoscaler"},
                                         "scope": "Namespaced", "verbs": ["list", "delete"]},
                                        {"resource": "oldthings", "responseKind": {"kind": "OldThing"},
                                         "scope": "Namespaced", "verbs": ["list"]}]}]}]}
AGG_CT = {"Content-Type": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}


async def test_discovery_aggregated():
    t = FakeTransport()
    c = make(t)
    t.script("GET", "/api", json_response(AGG_CORE, headers=AGG_CT))
    t.script("GET", "/apis", json_response(AGG_GROUPS, headers=AGG_CT))
    res = await c.server_resources()
    assert t.requests[0].headers["Accept"] == AGGREGATED_ACCEPT
    by = {(r.group, r.version, r.resource): r for r in res}
    pods = by[("", "v1", "pods")]
    assert pods.namespaced and pods.kind == "Pod" and "deletecollection" in pods.verbs
    assert pods.subresources == ("status",) and pods.short_names == ("po",)
    assert not by[("", "v1", "nodes")].namespaced
    assert by[("autoscaling", "v2", "horizontalpodautoscalers")].preferred
    assert not by[("autoscaling", "v1", "horizontalpodautoscalers")].preferred
    pref = {(r.group, r.version, r.resource) for r in await c.server_resources(preferred_only=True)}
    assert ("autoscaling", "v2", "horizontalpodautoscalers") in pref
    assert ("autoscaling", "v1", "horizontalpodautoscalers") not in pref
    assert ("autoscaling", "v1", "oldthings") in pref  # only served by a non-preferred version


async def test_discovery_aggregated_stale_group_is_a_failure():
    t = FakeTransport()
    c = make(t)
    stale = {"kind": "APIGroupDiscoveryList", "items": [
        {"metadata": {"name": "metrics.k8s.io"}, "versions": [{"version": "v1beta1", "freshness": "Stale", "resources": []}]},
        *AGG_GROUPS["items"]]}
    t.script("GET", "/api", json_response(AGG_CORE, headers=AGG_CT))
    t.script("GET", "/apis", json_response(stale, headers=AGG_CT))
    with pytest.raises(DiscoveryError) as e:
        await c.server_resources(preferred_only=True)
    assert str(e.value) == ("unable to retrieve the complete list of server APIs: "
                            "metrics.k8s.io/v1beta1: stale GroupVersion discovery: metrics.k8s.io/v1beta1")
    assert {r.resource for r in e.value.resources} == {"pods", "nodes", "horizontalpodautoscalers", "oldthings"}


async def test_discovery_legacy_fallback_with_partial_failure():
    t = FakeTransport()
    c = make(t)
    t.script("GET", "/api", json_response({"kind": "APIVersions", "versions": ["v1"]}))
    t.script("GET", "/apis", json_response({"kind": "APIGroupList", "groups": [
        {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
        {"name": "metrics.k8s.io", "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
         "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}}]}))
    t.script("GET", "/api/v1", json_response({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "configmaps", "namespaced": True, "kind": "ConfigMap", "verbs": ["list", "delete"]},
        {"name": "pods", "namespaced": True, "kind": "Pod", "verbs": ["list"]},
        {"name": "pods/status", "namespaced": True, "kind": "Pod", "verbs": ["get"]}]}))
    t.script("GET", "/apis/apps/v1", json_response({"kind": "APIResourceList", "groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "namespaced": True, "kind": "Deployment", "verbs": ["list", "delete"]}]}))
    t.script("GET", "/apis/metrics.k8s.io/v1beta1", status_response(503, "ServiceUnavailable", "stale GroupVersion discovery"))
    with pytest.raises(DiscoveryError) as e:
        await c.server_resources()
    assert list(e.value.failed) == ["metrics.k8s.io/v1beta1"]
    assert "metrics.k8s.io/v1beta1: " in str(e.value)
    names = {(r.group, r.resource): r for r in e.value.resources}
    assert set(names) == {("", "configmaps"), ("", "pods"), ("apps", "deployments")}
    assert names[("", "pods")].subresources == ("status",)


async def test_close_closes_transport():
    t = FakeTransport()
    async with make(t):
        pass
    assert t.closed
