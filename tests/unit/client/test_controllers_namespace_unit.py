"""The namespace controller's reconcile against a fake API (cases a real server does not
produce on demand): discovery failures, failing or unsupported deletecollection,
unexplained leftovers, terminating pods, and the condition bookkeeping."""

from __future__ import annotations

import copy
import re
from typing import Any, Optional

import orjson
import pytest

from client_fakes import FakeTransport, json_response, status_response, watch_response
from kybernetes.client import Client
from kybernetes.controllers.base import Requeue
from kybernetes.controllers.namespace import (
    CONDITION_TYPES,
    ContentDeletionError,
    NamespaceController,
    build_conditions,
    update_conditions,
    _Totals,
)

AGG_CT = {"Content-Type": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def res(name: str, kind: str, verbs=ALL_VERBS, scope="Namespaced") -> dict:
    return {"resource": name, "responseKind": {"kind": kind}, "scope": scope, "verbs": list(verbs)}


class FakeAPI:
    """Just enough of an API server for one namespace's deletion."""

    def __init__(self, name: str = "doomed") -> None:
        self.name = name
        self.rv = 10
        self.ns: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": "u1", "resourceVersion": "10", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Terminating"},
        }
        # "<group>/<resource>" -> items in the namespace
        self.content: dict[str, list[dict]] = {"/configmaps": [], "/pods": [], "apps/deployments": []}
        self.core = [res("configmaps", "ConfigMap"), res("pods", "Pod"), res("bindings", "Binding", ["create"]),
                     res("namespaces", "Namespace", scope="Cluster")]
        self.groups: list[dict] = [{"metadata": {"name": "apps"}, "versions": [
            {"version": "v1", "resources": [res("deployments", "Deployment")]}]}]
        self.deletecollection: dict[str, Any] = {}  # key -> FakeResponse to answer instead
        self.status_updates: list[dict] = []
        self.finalized: list[dict] = []
        self.deleted_each: list[str] = []
        self.t = FakeTransport()
        self.t.route(lambda r: True, self.handle)

    def client(self) -> Client:
        return Client("https://example.invalid", transport=self.t, retry_backoff=0.001)

    def item(self, name: str, **meta: Any) -> dict:
        self.rv += 1
        return {"metadata": {"name": name, "namespace": self.name, "uid": f"uid-{name}",
                             "resourceVersion": str(self.rv), **meta}}

    def _bump(self, obj: dict) -> dict:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        return obj

    def handle(self, req):
        p, m = req.path, req.method
        if p == "/api":
            return json_response({"kind": "APIGroupDiscoveryList", "items": [
                {"metadata": {"name": ""}, "versions": [{"version": "v1", "resources": self.core}]}]}, headers=AGG_CT)
        if p == "/apis":
            return json_response({"kind": "APIGroupDiscoveryList", "items": self.groups}, headers=AGG_CT)
        ns_path = f"/api/v1/namespaces/{self.name}"
        if p == ns_path and m == "GET":
            return json_response(self.ns) if self.ns else status_response(404, "NotFound")
        if p == f"{ns_path}/status" and m == "PUT":
            body = orjson.loads(req.body)
            self.status_updates.append(copy.deepcopy(body))
            self.ns["status"] = body["status"]
            return json_response(self._bump(self.ns))
        if p == f"{ns_path}/finalize" and m == "PUT":
            body = orjson.loads(req.body)
            self.finalized.append(body)
            self.ns["spec"]["finalizers"] = body["spec"]["finalizers"]
            return json_response(self._bump(self.ns))
        mt = re.fullmatch(r"/apis?/(?:([^/]+)/)?v1/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?", p)
        if mt is None:
            return status_response(404, "NotFound")
        group, _, resource, name = mt.groups()
        key = f"{group or ''}/{resource}"
        items = self.content.setdefault(key, [])
        if dict(req.params).get("watch") == "true":
            return watch_response([], hang=True)
        if m == "GET" and name is None:
            return json_response({"kind": "List", "metadata": {"resourceVersion": str(self.rv)}, "items": items})
        if m == "DELETE" and name is None:
            if key in self.deletecollection:
                return self.deletecollection[key]
            self.content[key] = self._delete_all(items)
            return json_response({"kind": "List", "items": []})
        if m == "DELETE":
            self.deleted_each.append(f"{key}/{name}")
            self.content[key] = [i for i in items if i["metadata"]["name"] != name]
            return json_response({"kind": "Status", "status": "Success"})
        return status_response(405, "MethodNotAllowed")

    @staticmethod
    def _delete_all(items: list[dict]) -> list[dict]:
        left = []
        for i in items:
            if i["metadata"].get("finalizers") or i.get("_sticky"):
                i["metadata"].setdefault("deletionTimestamp", "2026-01-01T00:00:01Z")
                left.append(i)
        return left


def cond(ns: dict, ctype: str) -> Optional[dict]:
    return next((c for c in ns["status"].get("conditions", []) if c["type"] == ctype), None)


def controller(api: FakeAPI) -> NamespaceController:
    return NamespaceController(api.client())


async def test_empties_and_finalizes():
    api = FakeAPI()
    api.content["/configmaps"] = [api.item("a"), api.item("b")]
    api.content["apps/deployments"] = [api.item("web")]
    ctl = controller(api)
    await ctl.reconcile(api.name)
    assert api.content["/configmaps"] == [] and api.content["apps/deployments"] == []
    assert len(api.finalized) == 1 and api.finalized[0]["spec"]["finalizers"] == []
    # background propagation on every deletecollection
    for r in api.t.requests:
        if r.method == "DELETE":
            assert orjson.loads(r.body)["propagationPolicy"] == "Background"
    # one status write: all five conditions in their OK form
    assert len(api.status_updates) == 1
    ns = api.status_updates[0]
    assert [c["type"] for c in ns["status"]["conditions"]] == list(CONDITION_TYPES)
    assert all(c["status"] == "False" for c in ns["status"]["conditions"])
    # bindings (create only) and the cluster-scoped namespaces are never touched
    assert not any("bindings" in r.path for r in api.t.requests)
    await ctl.on_stop()


async def test_other_finalizers_kept_sorted():
    api = FakeAPI()
    api.ns["spec"]["finalizers"] = ["z.example/f", "kubernetes", "a.example/f"]
    ctl = controller(api)
    await ctl.reconcile(api.name)
    assert api.finalized[0]["spec"]["finalizers"] == ["a.example/f", "z.example/f"]


async def test_nothing_to_do_when_not_deleting_or_already_finalized():
    api = FakeAPI()
    del api.ns["metadata"]["deletionTimestamp"]
    ctl = controller(api)
    await ctl.reconcile(api.name)
    assert not api.finalized and not api.status_updates
    api.ns["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    api.ns["spec"]["finalizers"] = ["other.example/x"]
    await ctl.reconcile(api.name)
    assert not api.finalized
    api.ns = {}
    await ctl.reconcile(api.name)  # NotFound: done


async def test_sets_terminating_phase_when_missing():
    api = FakeAPI()
    api.ns["status"] = {"phase": "Active"}
    ctl = controller(api)
    await ctl.reconcile(api.name)
    assert api.status_updates[0]["status"]["phase"] == "Terminating"
    assert api.finalized


async def test_discovery_failure_blocks_finalize():
    api = FakeAPI()
    api.groups.append({"metadata": {"name": "metrics.k8s.io"}, "versions": [
        {"version": "v1beta1", "freshness": "Stale", "resources": []}]})
    api.content["/configmaps"] = [api.item("a")]
    ctl = controller(api)
    with pytest.raises(ContentDeletionError):
        await ctl.reconcile(api.name)
    assert api.content["/configmaps"] == []  # what could be discovered was still deleted
    assert not api.finalized
    c = cond(api.ns, "NamespaceDeletionDiscoveryFailure")
    assert c["status"] == "True" and c["reason"] == "DiscoveryFailed"
    assert c["message"] == ("Discovery failed for some groups, 1 failing: unable to retrieve the complete list of "
                            "server APIs: metrics.k8s.io/v1beta1: stale GroupVersion discovery: metrics.k8s.io/v1beta1")
    # once discovery recovers, the condition flips back and the namespace is finalized
    api.groups.pop()
    await ctl.reconcile(api.name)
    assert cond(api.ns, "NamespaceDeletionDiscoveryFailure")["status"] == "False"
    assert api.finalized


async def test_content_failure_condition():
    api = FakeAPI()
    api.content["/configmaps"] = [api.item("a")]
    api.deletecollection["/configmaps"] = status_response(500, "InternalError", "Internal error occurred: disk on fire")
    ctl = controller(api)
    with pytest.raises(ContentDeletionError):
        await ctl.reconcile(api.name)
    c = cond(api.ns, "NamespaceDeletionContentFailure")
    assert c["status"] == "True" and c["reason"] == "ContentDeletionFailed"
    assert c["message"] == "Failed to delete all resource types, 1 remaining: Internal error occurred: disk on fire"
    assert not api.finalized


async def test_deletecollection_unsupported_falls_back_to_each():
    api = FakeAPI()
    api.content["/configmaps"] = [api.item("a"), api.item("b")]
    api.deletecollection["/configmaps"] = status_response(405, "MethodNotAllowed")
    ctl = controller(api)
    await ctl.reconcile(api.name)
    assert sorted(api.deleted_each) == ["/configmaps/a", "/configmaps/b"]
    assert api.finalized
    # each delete carries the uid precondition, so a replacement object is not hit
    dels = [r for r in api.t.requests if r.method == "DELETE" and r.path.endswith("/configmaps/a")]
    assert orjson.loads(dels[0].body)["preconditions"] == {"uid": "uid-a"}


async def test_unexplained_leftovers_are_an_error():
    api = FakeAPI()
    api.content["/configmaps"] = [{**api.item("sticky"), "_sticky": True}]
    ctl = controller(api)
    with pytest.raises(ContentDeletionError, match="unexpected items still remain"):
        await ctl.reconcile(api.name)
    c = cond(api.ns, "NamespaceDeletionContentFailure")
    assert c["message"] == ("Failed to delete all resource types, 1 remaining: unexpected items still remain in "
                            "namespace: doomed for gvr: /v1, Resource=configmaps")
    r = cond(api.ns, "NamespaceContentRemaining")
    assert r["status"] == "True" and r["message"] == "Some resources are remaining: configmaps. has 1 resource instances"
    await ctl.on_stop()


async def test_finalizers_and_terminating_pods_requeue_after_estimate():
    api = FakeAPI()
    api.content["/configmaps"] = [api.item("held", finalizers=["example.com/a"]),
                                  api.item("held2", finalizers=["example.com/a", "example.com/b"])]
    pod = api.item("p")
    pod["spec"] = {"nodeName": "n1", "terminationGracePeriodSeconds": 30}
    pod["metadata"]["deletionGracePeriodSeconds"] = 40
    pod["_sticky"] = True
    api.content["/pods"] = [pod]
    ctl = controller(api)
    with pytest.raises(Requeue) as rq:
        await ctl.reconcile(api.name)
    assert rq.value.after == 40 / 2 + 1  # the longest estimate wins (upstream: estimate/2 + 1)
    assert not api.finalized
    f = cond(api.ns, "NamespaceFinalizersRemaining")
    assert f["status"] == "True" and f["reason"] == "SomeFinalizersRemain"
    assert f["message"] == ("Some content in the namespace has finalizers remaining: example.com/a in 2 resource "
                            "instances, example.com/b in 1 resource instances")
    r = cond(api.ns, "NamespaceContentRemaining")
    assert r["message"] == "Some resources are remaining: configmaps. has 2 resource instances, pods. has 1 resource instances"
    # content watches now run for the two resources that still hold objects
    assert set(ctl._content_watches[api.name]) == {("", "v1", "configmaps"), ("", "v1", "pods")}
    # a pass that changes nothing writes no status
    before = len(api.status_updates)
    with pytest.raises(Requeue):
        await ctl.reconcile(api.name)
    assert len(api.status_updates) == before
    # everything goes: finalized, watches stopped
    api.content["/configmaps"] = []
    api.content["/pods"] = []
    await ctl.reconcile(api.name)
    assert api.finalized and api.name not in ctl._content_watches
    await ctl.on_stop()


def test_update_conditions_transition_times():
    status: dict = {}
    assert update_conditions(status, {})
    t0 = {c["type"]: c["lastTransitionTime"] for c in status["conditions"]}
    assert not update_conditions(status, {})
    status["conditions"][3]["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    totals = _Totals()
    failures = build_conditions("oops", totals)
    assert update_conditions(status, failures)
    disc = status["conditions"][0]
    assert disc["status"] == "True" and disc["message"] == "oops" and disc["lastTransitionTime"] >= t0[disc["type"]]
    assert status["conditions"][3]["lastTransitionTime"] == "2000-01-01T00:00:00Z"  # unchanged condition keeps its time
