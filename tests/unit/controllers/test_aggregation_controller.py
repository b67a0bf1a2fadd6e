"""The ClusterRole aggregation controller against an in-memory API: aggregated roles
hold the union of what their selectors match (chains followed), written only when
different, as a compare-and-swap retried on conflict."""

from __future__ import annotations

import json

import pytest

from kybernetes.controllers.base import Requeue
from kybernetes.controllers.clusterrole_aggregation import ClusterRoleAggregationController, desired_rules
from test_sa_fakeapi import FakeCluster, status

RBAC = "rbac.authorization.k8s.io"
TO_VIEW = f"{RBAC}/aggregate-to-view"
TO_EDIT = f"{RBAC}/aggregate-to-edit"
PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
SVCS = {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}
WIDGETS = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}
CREATE_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}


def aggregated(name: str, label: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}, "rules": []}


def role(name: str, rules: list, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "rules": rules}


@pytest.fixture
async def api():
    api = FakeCluster()
    api.put("clusterroles", aggregated("view", TO_VIEW, **{TO_EDIT: "true"}))
    api.put("clusterroles", aggregated("edit", TO_EDIT))
    api.put("clusterroles", role("system:aggregate-to-view", [PODS], **{TO_VIEW: "true"}))
    api.put("clusterroles", role("system:aggregate-to-edit", [CREATE_PODS], **{TO_EDIT: "true"}))
    api.put("clusterroles", role("plain", [SVCS]))
    return api


@pytest.fixture
async def ctl(api):
    c = api.client()
    ctl = ClusterRoleAggregationController(c)
    yield ctl
    await ctl.stop()
    await c.close()


def rules_of(api, name):
    return (api.get("clusterroles", name) or {}).get("rules") or []


def canon(rules):
    return sorted(json.dumps(r, sort_keys=True) for r in rules)


def rules_are(api, name, rules):
    return lambda: canon(rules_of(api, name)) == canon(rules)


async def test_union_and_chain(api, ctl):
    await ctl.start(sync_timeout=2)
    await api.wait_until(rules_are(api, "view", [PODS]))
    await api.wait_until(rules_are(api, "edit", [CREATE_PODS, PODS]))  # view is aggregated into edit
    assert rules_of(api, "plain") == [SVCS]

    api.put("clusterroles", role("widget-viewer", [WIDGETS], **{TO_VIEW: "true"}))
    await api.wait_until(rules_are(api, "view", [PODS, WIDGETS]))
    await api.wait_until(rules_are(api, "edit", [CREATE_PODS, PODS, WIDGETS]))

    # the label goes: so do its rules
    api.put("clusterroles", role("widget-viewer", [WIDGETS]))
    await api.wait_until(rules_are(api, "view", [PODS]))
    # back, then deleted
    api.put("clusterroles", role("widget-viewer", [WIDGETS], **{TO_VIEW: "true"}))
    await api.wait_until(rules_are(api, "view", [PODS, WIDGETS]))
    api.remove("clusterroles", "widget-viewer")
    await api.wait_until(rules_are(api, "view", [PODS]))
    await api.wait_until(rules_are(api, "edit", [CREATE_PODS, PODS]))

    # a hand edit of an aggregated role is undone
    view = api.get("clusterroles", "view")
    view["rules"] = [SVCS]
    api.put("clusterroles", view)
    await api.wait_until(rules_are(api, "view", [PODS]))


async def test_writes_only_when_different(api, ctl):
    ctl.informers.start()
    assert await ctl.informers.wait_synced(2)
    await ctl.reconcile("view")
    await api.wait_until(lambda: ctl.roles.get("view")["rules"] == [PODS])
    before = list(api.writes)
    await ctl.reconcile("view")  # already the union
    await ctl.reconcile("plain")  # not aggregated
    await ctl.reconcile("missing")
    assert api.writes == before
    assert desired_rules("view", ctl.roles.list()) is None
    assert desired_rules("plain", ctl.roles.list()) is None


async def test_conflict_is_retried_from_the_live_object(api, ctl):
    ctl.informers.start()
    assert await ctl.informers.wait_synced(2)
    conflicts = [1]

    def once(m, r, ns, n):
        if m == "PUT" and n == "view" and conflicts:
            conflicts.pop()
            return status(409, "Conflict", "the object has been modified")
        return None

    api.inject[:] = [once]
    await ctl.reconcile("view")
    assert rules_of(api, "view") == [PODS]
    assert [w for w in api.writes if w[0] == "PUT"] == [("PUT", "clusterroles", "", "view")]  # the 409 came first
    assert not conflicts


async def test_persistent_conflict_requeues(api, ctl):
    ctl.informers.start()
    assert await ctl.informers.wait_synced(2)
    api.inject[:] = [lambda m, r, ns, n: status(409, "Conflict") if m == "PUT" else None]
    with pytest.raises(Requeue):
        await ctl.reconcile("view")


async def test_cas_uses_the_cached_resource_version(api, ctl):
    ctl.informers.start()
    assert await ctl.informers.wait_synced(2)
    # change view behind the cache's back (another writer): the PUT from the stale cache
    # conflicts, the controller re-reads and converges anyway
    stored = api.objects["clusterroles"][("", "view")]
    stored["metadata"]["annotations"] = {"touched": "yes"}
    stored["metadata"]["resourceVersion"] = "99999"  # no event: the cache is stale
    await ctl.reconcile("view")
    assert rules_of(api, "view") == [PODS]
    assert [w for w in api.writes if w[0] == "PUT"] == [("PUT", "clusterroles", "", "view")] * 2  # 409, then ok
    assert api.get("clusterroles", "view")["metadata"]["annotations"] == {"touched": "yes"}
