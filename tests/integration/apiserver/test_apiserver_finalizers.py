"""Finalizers, deletionTimestamp and what an update may do once an object is terminating."""

from __future__ import annotations

from apiserver_helpers import uniq


def cm(name, finalizers=None):
    meta = {"name": name}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "b"}}


async def test_finalizer_holds_the_object_until_removed(api, ns):
    name = uniq("fin")
    base = f"/api/v1/namespaces/{ns}/configmaps"
    (await api.post(base, cm(name, ["example.com/hold"]))).expect(201)
    r = await api.delete(f"{base}/{name}")
    assert r.status in (200, 202), r.body
    got = (await api.get(f"{base}/{name}")).expect(200)
    assert got["metadata"]["deletionTimestamp"]
    assert got["metadata"]["finalizers"] == ["example.com/hold"]
    # a second delete changes nothing
    again = (await api.delete(f"{base}/{name}"))
    assert again.status in (200, 202)
    assert (await api.get(f"{base}/{name}")).expect(200)["metadata"]["resourceVersion"] == \
        got["metadata"]["resourceVersion"]
    # no new finalizers on a terminating object; nothing is written
    r = await api.patch(f"{base}/{name}", {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}})
    st = r.status_obj(422, "Invalid")
    assert "no new finalizers can be added if the object is being deleted" in st["message"]
    assert st["details"]["causes"][0]["field"] == "metadata.finalizers"
    # other fields may still change
    (await api.patch(f"{base}/{name}", {"data": {"a": "c"}})).expect(200)
    # removing the last finalizer lets the object go
    (await api.patch(f"{base}/{name}", {"metadata": {"finalizers": None}})).expect(200)
    (await api.get(f"{base}/{name}")).status_obj(404, "NotFound")


async def test_delete_preconditions(api, ns):
    name = uniq("pre")
    base = f"/api/v1/namespaces/{ns}/configmaps"
    created = (await api.post(base, cm(name))).expect(201)
    opts = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-the-uid"}}
    st = (await api.delete(f"{base}/{name}", opts)).status_obj(409, "Conflict")
    assert "Precondition failed: UID in precondition: not-the-uid" in st["message"]
    opts = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"resourceVersion": "1"}}
    (await api.delete(f"{base}/{name}", opts)).status_obj(409, "Conflict")
    (await api.get(f"{base}/{name}")).expect(200)
    opts = {"kind": "DeleteOptions", "apiVersion": "v1",
            "preconditions": {"uid": created["metadata"]["uid"],
                              "resourceVersion": created["metadata"]["resourceVersion"]}}
    (await api.delete(f"{base}/{name}", opts)).expect(200)
    (await api.get(f"{base}/{name}")).status_obj(404, "NotFound")


async def test_update_cannot_change_uid(api, ns):
    name = uniq("uid")
    base = f"/api/v1/namespaces/{ns}/configmaps"
    created = (await api.post(base, cm(name))).expect(201)
    changed = dict(created, metadata={**created["metadata"], "uid": "00000000-0000-0000-0000-000000000000"})
    st = (await api.put(f"{base}/{name}", changed)).status_obj(409, "Conflict")
    assert "Precondition failed: UID in precondition" in st["message"]
    assert (await api.get(f"{base}/{name}")).expect(200)["metadata"]["uid"] == created["metadata"]["uid"]
