"""The shared pod event handlers (controllers/_pods.PodOwnerHandlers): which owner a pod
event wakes, and what it tells the expectations."""

from __future__ import annotations

from kybernetes.client.informer import Store
from kybernetes.controllers import _pods


class FakeExpectations:
    def __init__(self) -> None:
        self.created: list[str] = []
        self.deleted: list[tuple[str, str]] = []

    def creation_observed(self, key: str, n: int = 1) -> None:
        self.created.append(key)

    def deletion_observed(self, key: str, pod_key: str) -> None:
        self.deleted.append((key, pod_key))


class Handlers(_pods.PodOwnerHandlers):
    owner_kind, owner_group = "ReplicaSet", "apps"

    def __init__(self, *owners: dict) -> None:
        self.sets = Store()
        for o in owners:
            self.sets._put(f"{o['metadata']['namespace']}/{o['metadata']['name']}", o)
        self.expectations = FakeExpectations()
        self.woken: list[str] = []

    def enqueue(self, key: str) -> None:
        self.woken.append(key)


def rs(name: str, uid: str, app: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid},
            "spec": {"selector": {"matchLabels": {"app": app}}}}


def pod(name: str, rv: str = "1", owner: dict | None = None, kind: str = "ReplicaSet", api: str = "apps/v1",
        app: str = "web", deleting: bool = False) -> dict:
    meta: dict = {"name": name, "namespace": "ns", "resourceVersion": rv, "labels": {"app": app}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": api, "kind": kind, "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta}


WEB, DB = rs("web", "u-web", "web"), rs("db", "u-db", "db")


def test_owned_pod_added_wakes_its_owner_and_counts_the_creation():
    h = Handlers(WEB, DB)
    h._pod_added(pod("p", owner=WEB))
    assert h.woken == ["ns/web"] and h.expectations.created == ["ns/web"]


def test_pod_of_another_kind_group_or_uid_wakes_nobody():
    h = Handlers(WEB)
    h._pod_added(pod("a", owner=WEB, kind="StatefulSet"))
    h._pod_added(pod("b", owner=WEB, api="extensions/v1beta1"))
    h._pod_added(pod("c", owner=rs("web", "other-uid", "web")))  # a former owner of the same name
    assert h.woken == [] and h.expectations.created == []


def test_orphan_wakes_matching_owners_for_adoption():
    h = Handlers(WEB, DB)
    h._pod_added(pod("o", app="db"))
    assert h.woken == ["ns/db"] and h.expectations.created == []


def test_added_while_deleting_is_a_deletion():
    h = Handlers(WEB)
    h._pod_added(pod("p", owner=WEB, deleting=True))
    assert h.expectations.deleted == [("ns/web", "ns/p")] and h.woken == ["ns/web"]


def test_update_graceful_delete_and_resync():
    h = Handlers(WEB)
    old = pod("p", "1", owner=WEB)
    h._pod_updated(old, old)  # resync: same resourceVersion
    assert h.woken == []
    h._pod_updated(old, pod("p", "2", owner=WEB, deleting=True))
    assert h.expectations.deleted == [("ns/web", "ns/p")] and h.woken == ["ns/web"]


def test_update_release_wakes_old_owner_and_matching_ones():
    h = Handlers(WEB, DB)
    h._pod_updated(pod("p", "1", owner=WEB), pod("p", "2", app="db"))
    assert h.woken == ["ns/web", "ns/db"]


def test_orphan_update_without_label_change_wakes_nobody():
    h = Handlers(WEB)
    h._pod_updated(pod("o", "1"), pod("o", "2"))
    assert h.woken == []
    h._pod_updated(pod("o", "2", app="x"), pod("o", "3"))
    assert h.woken == ["ns/web"]


def test_deleted_pod_counts_and_wakes():
    h = Handlers(WEB)
    h._pod_deleted(pod("p", owner=WEB))
    assert h.expectations.deleted == [("ns/web", "ns/p")] and h.woken == ["ns/web"]


def test_core_group_owner():
    rc = rs("rc", "u-rc", "web")

    class RC(Handlers):
        owner_kind, owner_group = "ReplicationController", ""

    h = RC(rc)
    h._pod_added(pod("p", owner=rc, kind="ReplicationController", api="v1"))
    assert h.woken == ["ns/rc"]
