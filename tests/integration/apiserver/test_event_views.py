"""core/v1 and events.k8s.io/v1 Events are one stored resource seen through two APIs:
writes through either show in both (get, list, watch, kubectl), field selectors and
validation follow each API, against a real `kyb server`."""

from __future__ import annotations

import asyncio
import json

import pytest

from kybernetes.client import Invalid, NotFound

CORE = ("", "v1", "events")
NEW = ("events.k8s.io", "v1", "events")
T0 = "2026-05-01T12:00:00.000000Z"


def new_event(name: str, ns: str, pod: str = "web-0", reason: str = "Pulled", controller: str = "example.com/ctl") -> dict:
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name},
            "eventTime": T0, "regarding": {"kind": "Pod", "name": pod, "namespace": ns, "apiVersion": "v1"},
            "type": "Normal", "reason": reason, "action": "Pull", "note": f"pulled for {pod}",
            "reportingController": controller, "reportingInstance": "ctl-1"}


def core_event(name: str, ns: str, pod: str = "db-0") -> dict:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns, "apiVersion": "v1"},
            "reason": "BackOff", "message": f"back-off restarting {pod}", "type": "Warning",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2026-05-01T11:00:00Z", "lastTimestamp": "2026-05-01T11:30:00Z", "count": 4}


async def test_new_api_write_is_a_core_event(kyb, client, namespace):
    created = await client.resource(*NEW).create(new_event("n1", namespace), namespace)
    assert created["apiVersion"] == "events.k8s.io/v1" and created["note"] == "pulled for web-0"
    core = await client.resource(*CORE).get("n1", namespace)
    assert core["apiVersion"] == "v1" and core["message"] == "pulled for web-0"
    assert core["involvedObject"]["name"] == "web-0" and core["reportingComponent"] == "example.com/ctl"
    assert core["metadata"]["uid"] == created["metadata"]["uid"]
    assert core["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert not {"note", "regarding", "reportingController"} & set(core)

    table = kyb.kubectl("get", "events", "-n", namespace).stdout
    assert "pod/web-0" in table and "pulled for web-0" in table
    assert "Pod/web-0" in kyb.kubectl("events", "-n", namespace).stdout
    out = json.loads(kyb.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
    assert [e["metadata"]["name"] for e in out["items"]] == ["n1"]


async def test_core_write_is_a_new_api_event(kyb, client, namespace):
    await client.resource(*CORE).create(core_event("c1", namespace), namespace)
    ev = await client.resource(*NEW).get("c1", namespace)
    assert ev["apiVersion"] == "events.k8s.io/v1"
    assert ev["regarding"]["name"] == "db-0" and ev["note"] == "back-off restarting db-0"
    assert ev["deprecatedSource"] == {"component": "kubelet", "host": "node-1"}
    assert (ev["deprecatedCount"], ev["deprecatedFirstTimestamp"]) == (4, "2026-05-01T11:00:00Z")
    assert not {"message", "involvedObject", "source", "count"} & set(ev)
    listed = await client.resource(*NEW).list(namespace)
    assert [e["metadata"]["name"] for e in listed["items"]] == ["c1"] and listed["kind"] == "EventList"
    assert listed["apiVersion"] == "events.k8s.io/v1"

    table = kyb.kubectl("get", "events.v1.events.k8s.io", "-n", namespace, "-o", "wide").stdout
    assert "pod/db-0" in table and "back-off restarting db-0" in table and "kubelet, node-1" in table
    got = json.loads(kyb.kubectl("get", "events.v1.events.k8s.io", "c1", "-n", namespace, "-o", "json").stdout)
    assert got["note"] == "back-off restarting db-0"


async def test_watch_on_one_view_sees_writes_through_the_other(client, namespace):
    core, new = client.resource(*CORE), client.resource(*NEW)
    rv = (await core.list(namespace))["metadata"]["resourceVersion"]
    seen: list[tuple[str, dict]] = []

    async def collect(h, n):
        async with h.watch(namespace, resource_version=rv, timeout_seconds=30) as w:
            async for typ, obj in w:
                seen.append((typ, obj))
                if len(seen) >= n:
                    return

    task = asyncio.ensure_future(collect(core, 3))
    await new.create(new_event("w1", namespace), namespace)
    await new.patch("w1", {"series": {"count": 2, "lastObservedTime": "2026-05-01T12:01:00.000000Z"}},
                    "strategic", namespace)
    await new.delete("w1", namespace)
    await asyncio.wait_for(task, 30)
    assert [t for t, _ in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(o["apiVersion"] == "v1" and o["message"] == "pulled for web-0" for _, o in seen)
    assert seen[1][1]["series"]["count"] == 2

    # and the other way round: a core write seen by a new-API watch, in the new form
    rv = (await new.list(namespace))["metadata"]["resourceVersion"]
    seen.clear()
    task = asyncio.ensure_future(collect(new, 1))
    await core.create(core_event("w2", namespace), namespace)
    await asyncio.wait_for(task, 30)
    [(typ, obj)] = seen
    assert typ == "ADDED" and obj["apiVersion"] == "events.k8s.io/v1" and obj["deprecatedCount"] == 4


async def test_field_selectors_on_both_views(kyb, client, namespace):
    core, new = client.resource(*CORE), client.resource(*NEW)
    await new.create(new_event("a", namespace, pod="p1", reason="Pulled", controller="ctl-a"), namespace)
    await new.create(new_event("b", namespace, pod="p2", reason="Started", controller="ctl-b"), namespace)
    await core.create(core_event("c", namespace, pod="p1"), namespace)

    async def names(h, sel):
        return sorted(e["metadata"]["name"] for e in (await h.list(namespace, field_selector=sel))["items"])

    assert await names(core, "involvedObject.name=p1") == ["a", "c"]
    assert await names(core, "reportingComponent=ctl-b") == ["b"]
    assert await names(core, "source=kubelet") == ["c"]
    assert await names(core, "source=ctl-a") == ["a"]  # new-style events: the reporting controller
    assert await names(core, "type=Warning,reason=BackOff") == ["c"]
    assert await names(new, "regarding.name=p1") == ["a", "c"]
    assert await names(new, "reportingController=ctl-a") == ["a"]
    assert await names(new, "reason=Started") == ["b"]
    out = kyb.kubectl("get", "events.events.k8s.io", "-n", namespace, "--field-selector", "regarding.name=p2").stdout
    assert "pod/p2" in out and "pod/p1" not in out
    bad = kyb.kubectl("get", "events.events.k8s.io", "-n", namespace, "--field-selector", "involvedObject.name=p1",
                      check=False)
    assert bad.returncode != 0 and "involvedObject.name" in bad.stderr


async def test_validation_per_api(client, namespace):
    core, new = client.resource(*CORE), client.resource(*NEW)
    ev = new_event("v1", namespace)
    del ev["eventTime"], ev["action"]
    with pytest.raises(Invalid) as e:
        await new.create(ev, namespace)
    assert [c["field"] for c in e.value.details["causes"]] == ["eventTime"]
    ev = new_event("v1", namespace)
    ev["deprecatedCount"] = 3
    del ev["action"]
    with pytest.raises(Invalid) as e:
        await new.create(ev, namespace)
    assert sorted(c["field"] for c in e.value.details["causes"]) == ["action", "count"]
    with pytest.raises(NotFound):
        await core.get("v1", namespace)

    # core/v1 keeps the legacy rules only: an old-style event needs no reporting fields...
    await core.create(core_event("old", namespace), namespace)
    # ...but its namespace must match the involved object's
    mismatched = core_event("odd", namespace)
    mismatched["involvedObject"]["namespace"] = "elsewhere"
    with pytest.raises(Invalid) as e:
        await core.create(mismatched, namespace)
    assert [c["field"] for c in e.value.details["causes"]] == ["involvedObject.namespace"]
    # a new-style core event names the controller field the core way
    styled = core_event("styled", namespace)
    styled["eventTime"] = T0
    with pytest.raises(Invalid) as e:
        await core.create(styled, namespace)
    assert "reportingComponent" in [c["field"] for c in e.value.details["causes"]]

    # updates through the new API may change only the series; through core/v1 anything
    await new.create(new_event("u", namespace), namespace)
    with pytest.raises(Invalid) as e:
        await new.patch("u", {"note": "changed"}, "merge", namespace)
    assert [c["field"] for c in e.value.details["causes"]] == ["message"]
    assert (await core.patch("u", {"message": "changed"}, "merge", namespace))["message"] == "changed"
    assert (await new.get("u", namespace))["note"] == "changed"


async def test_apply_update_and_deletecollection(kyb, client, namespace):
    manifest = json.dumps({**new_event("ap", namespace), "metadata": {"name": "ap", "namespace": namespace}})
    kyb.kubectl("apply", "--server-side", "-f", "-", input=manifest)
    core, new = client.resource(*CORE), client.resource(*NEW)
    got = await core.get("ap", namespace)
    assert got["message"] == "pulled for web-0"
    series = {"count": 3, "lastObservedTime": "2026-05-01T12:05:00.000000Z"}
    kyb.kubectl("apply", "--server-side", "-f", "-",
                input=json.dumps({**json.loads(manifest), "series": series}))
    assert (await core.get("ap", namespace))["series"] == series
    # a full update through the new API of an object a core write made
    await core.create(core_event("cu", namespace), namespace)
    obj = await new.get("cu", namespace)
    obj["metadata"]["labels"] = {"seen": "yes"}
    await new.update(obj, namespace)
    stored = await core.get("cu", namespace)
    assert stored["metadata"]["labels"] == {"seen": "yes"} and stored["count"] == 4
    # deleting the collection through one API empties both
    await new.delete_collection(namespace)
    assert (await core.list(namespace))["items"] == []


async def test_discovery_shares_the_storage_version_hash(client):
    core = await client.request("GET", "/api/v1")
    new = await client.request("GET", "/apis/events.k8s.io/v1")
    h1 = next(r["storageVersionHash"] for r in core["resources"] if r["name"] == "events")
    h2 = next(r["storageVersionHash"] for r in new["resources"] if r["name"] == "events")
    assert h1 == h2 == "r2yiGXH7wu8="


async def test_field_ownership_spans_both_apis(kyb, client, namespace):
    new_doc = {**new_event("own", namespace), "metadata": {"name": "own", "namespace": namespace}}
    kyb.kubectl("apply", "--server-side", "--field-manager=new-mgr", "-f", "-", input=json.dumps(new_doc))
    core_doc = await client.resource(*CORE).get("own", namespace)
    for k in ("managedFields", "resourceVersion", "uid", "creationTimestamp"):
        core_doc["metadata"].pop(k, None)
    core_doc["message"] = "rewritten"
    # new-mgr owns the note (core/v1: message) through events.k8s.io: a core applier conflicts
    p = kyb.kubectl("apply", "--server-side", "--field-manager=core-mgr", "-f", "-", input=json.dumps(core_doc),
                    check=False)
    # told in the owner's version, as upstream does
    assert p.returncode != 0 and "conflict" in p.stderr.lower() and "new-mgr" in p.stderr and ".note" in p.stderr
    assert (await client.resource(*NEW).get("own", namespace))["note"] == "pulled for web-0"
    kyb.kubectl("apply", "--server-side", "--field-manager=core-mgr", "--force-conflicts", "-f", "-",
                input=json.dumps(core_doc))
    got = await client.resource(*CORE).get("own", namespace)
    entries = {e["manager"]: e for e in got["metadata"]["managedFields"]}
    # each entry stays in the version it was made in; the message moved to the core applier
    assert got["message"] == "rewritten"
    assert entries["new-mgr"]["apiVersion"] == "events.k8s.io/v1" and "f:reportingController" in entries["new-mgr"]["fieldsV1"]
    assert "f:note" not in entries["new-mgr"]["fieldsV1"]
    assert entries["core-mgr"]["apiVersion"] == "v1" and "f:message" in entries["core-mgr"]["fieldsV1"]
