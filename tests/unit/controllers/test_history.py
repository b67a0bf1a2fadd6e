"""ControllerRevision helpers (kybernetes.controllers.history) with an in-memory API."""

from __future__ import annotations

import copy

import pytest

from kybernetes.client.errors import AlreadyExists, NotFound
from kybernetes.controllers import history


class FakeRevisions:
    def __init__(self) -> None:
        self.objs: dict[str, dict] = {}
        self.n = 0

    async def list(self, namespace=None, **_):
        return {"items": [copy.deepcopy(o) for o in self.objs.values()]}

    async def create(self, obj, namespace=None):
        name = obj["metadata"]["name"]
        if name in self.objs:
            raise AlreadyExists({"code": 409, "reason": "AlreadyExists", "message": name})
        self.n += 1
        o = copy.deepcopy(obj)
        o["metadata"].update(uid=f"u{self.n}", resourceVersion=str(self.n), namespace=namespace,
                             creationTimestamp=f"2020-01-01T00:00:{self.n:02d}Z")
        self.objs[name] = o
        return copy.deepcopy(o)

    async def get(self, name, namespace=None):
        if name not in self.objs:
            raise NotFound({"code": 404, "reason": "NotFound", "message": name})
        return copy.deepcopy(self.objs[name])

    async def update(self, obj, namespace=None):
        self.objs[obj["metadata"]["name"]] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    async def patch(self, name, patch, namespace=None, **_):
        self.objs[name]["metadata"].update({k: v for k, v in patch["metadata"].items() if k == "ownerReferences"})
        return copy.deepcopy(self.objs[name])

    async def delete(self, name, namespace=None, **_):
        self.objs.pop(name)


class FakeClient:
    def __init__(self) -> None:
        self.revs = FakeRevisions()

    def resource(self, group, version, resource):
        assert (group, version, resource) == ("apps", "v1", "controllerrevisions")
        return self.revs


def owner(image="busybox:1", status=None):
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": status or {}}


def patch_of(o):
    return {"spec": {"template": {**o["spec"]["template"], "$patch": "replace"}}}


def test_hash_and_name_are_stable_and_probe_changes_hash():
    d = {"spec": {"template": {"a": 1, "b": [1, 2]}}}
    h = history.hash_revision(d)
    assert h == history.hash_revision({"spec": {"template": {"b": [1, 2], "a": 1}}})  # key order irrelevant
    assert h != history.hash_revision(d, 1)
    assert set(h) <= set(history.SAFE_ALPHABET)
    assert history.revision_name("web", h) == f"web-{h}"
    assert history.revision_name("x" * 300, "h") == "x" * 223 + "-h"


async def test_ensure_revision_creates_reuses_and_renumbers_on_rollback():
    c = FakeClient()
    o1 = owner()
    cur, upd = await history.ensure_revision(c, o1, patch_of(o1))
    assert cur is upd and upd["revision"] == 1 and upd["metadata"]["name"].startswith("web-")
    assert upd["metadata"]["labels"]["app"] == "web"
    assert upd["metadata"]["labels"][history.HASH_LABEL] == upd["metadata"]["name"][len("web-"):]
    assert upd["metadata"]["ownerReferences"][0]["uid"] == "set-uid"
    r1 = upd["metadata"]["name"]
    # unchanged template: the same revision
    again = await history.ensure_revision(c, owner(status={"currentRevision": r1}), patch_of(o1))
    assert again[1]["metadata"]["name"] == r1 and len(c.revs.objs) == 1
    # new template: revision 2; current stays the status' one
    o2 = owner("busybox:2", {"currentRevision": r1})
    cur, upd = await history.ensure_revision(c, o2, patch_of(o2))
    assert upd["revision"] == 2 and cur["metadata"]["name"] == r1
    r2 = upd["metadata"]["name"]
    # back to the first template: the old object is renumbered 3 (rollback)
    o3 = owner("busybox:1", {"currentRevision": r2})
    res = await history.ensure_revision(c, o3, patch_of(o3))
    assert res[1]["metadata"]["name"] == r1 and res[1]["revision"] == 3 and res[0]["metadata"]["name"] == r2
    assert [r["revision"] for r in res.all] == [2, 3]


async def test_collision_bumps_collision_count():
    c = FakeClient()
    o = owner()
    data = patch_of(o)
    squatter = history.new_revision(o, {"other": True}, 1)
    squatter["metadata"]["name"] = history.revision_name("web", history.hash_revision(data, 0))
    await c.revs.create(squatter, "ns")
    res = await history.ensure_revision(c, o, data, revisions=[])
    assert res.collision_count == 1
    assert res[1]["metadata"]["name"] == history.revision_name("web", history.hash_revision(data, 1))


async def test_orphans_are_adopted_and_foreign_ones_ignored():
    c = FakeClient()
    o = owner()
    orphan = history.new_revision(o, patch_of(o), 1)
    orphan["metadata"]["ownerReferences"] = []
    await c.revs.create(orphan, "ns")
    foreign = history.new_revision({**o, "metadata": {**o["metadata"], "name": "x", "uid": "other"}}, {"x": 1}, 1)
    await c.revs.create(foreign, "ns")
    cur, upd = await history.ensure_revision(c, o, patch_of(o))
    assert upd["metadata"]["name"] == orphan["metadata"]["name"]
    assert c.revs.objs[orphan["metadata"]["name"]]["metadata"]["ownerReferences"][0]["uid"] == "set-uid"
    assert len(c.revs.objs) == 2


async def test_truncate_history_keeps_live_and_limit():
    c = FakeClient()
    revs = []
    for i in range(1, 6):
        r = history.new_revision(owner(), {"n": i}, i)
        revs.append(await c.revs.create(r, "ns"))
    live = {revs[0]["metadata"]["name"], revs[4]["metadata"]["name"]}
    deleted = await history.truncate_history(c, revs, 1, live)
    assert [d["revision"] for d in deleted] == [2, 3]
    assert sorted(r["revision"] for r in c.revs.objs.values()) == [1, 4, 5]
