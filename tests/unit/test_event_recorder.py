"""The events.k8s.io recorder: what reaches the API for first events, repeats, series
refreshes, spam and vanished events (a fake events handle, a fake clock)."""

from __future__ import annotations

import asyncio
from typing import Any, Optional

import pytest

from kybernetes.client.errors import status_error
from kybernetes.client.events import EventBroadcaster, object_reference


class FakeEvents:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Optional[str]]] = []
        self.stored: dict[tuple[str, str], dict] = {}
        self.fail_patch_with: Optional[Exception] = None
        self.reject_create: Optional[Exception] = None

    async def create(self, obj: dict, namespace: Optional[str] = None) -> dict:
        if self.reject_create is not None:
            raise self.reject_create
        self.calls.append(("create", obj, namespace))
        self.stored[(namespace, obj["metadata"]["name"])] = obj
        return obj

    async def patch(self, name: str, body: dict, kind: str, namespace: Optional[str] = None) -> dict:
        self.calls.append(("patch", (name, body, kind), namespace))
        if self.fail_patch_with is not None:
            raise self.fail_patch_with
        obj = self.stored[(namespace, name)]
        obj.update(body)
        return obj


class FakeClient:
    def __init__(self, group: str = "events.k8s.io") -> None:
        self.events = FakeEvents()
        self.group = group

    def resource(self, group: str, version: str, resource: str) -> FakeEvents:
        assert (group, version, resource) == (self.group, "v1", "events")
        return self.events


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "ns", "uid": "u1",
                                                       "resourceVersion": "7"}}


@pytest.fixture
def setup():
    client, clock = FakeClient(), Clock()
    b = EventBroadcaster(client, api_version="events.k8s.io/v1", clock=clock, refresh_interval=3600, finish_after=600)
    return b, b.recorder("statefulset-controller", "statefulset-controller-host"), client.events, clock


async def drain(b: EventBroadcaster) -> None:
    await asyncio.wait_for(b.wait_idle(), 5)


async def test_first_event_is_created_with_reporting_fields(setup):
    b, rec, events, clock = setup
    rec.event(POD, "Normal", "SuccessfulCreate", "create Pod web-0 in StatefulSet web successful", action="Create")
    await b.shutdown()
    [(verb, ev, ns)] = events.calls
    assert (verb, ns) == ("create", "ns")
    assert ev["apiVersion"] == "events.k8s.io/v1" and ev["kind"] == "Event"
    assert ev["metadata"]["name"] == f"web-0.{int(clock.t * 1e9):x}"
    assert ev["regarding"] == {"apiVersion": "v1", "kind": "Pod", "namespace": "ns", "name": "web-0", "uid": "u1",
                               "resourceVersion": "7"}
    assert (ev["reportingController"], ev["reportingInstance"], ev["action"]) == (
        "statefulset-controller", "statefulset-controller-host", "Create")
    assert ev["eventTime"].endswith("Z") and "." in ev["eventTime"]
    assert "series" not in ev and "deprecatedCount" not in ev


async def test_repeats_become_a_series(setup):
    b, rec, events, clock = setup
    for i in range(2):
        clock.t += 1
        rec.event(POD, "Warning", "FailedCreate", "quota exceeded")
    await drain(b)
    # one create, one patch at the first repeat; later repeats wait for the refresh
    assert [c[0] for c in events.calls] == ["create", "patch"]
    name, body, kind = events.calls[1][1]
    assert name == events.calls[0][1]["metadata"]["name"]
    assert body["series"]["count"] == 2 and kind == "merge"
    for i in range(3):
        rec.event(POD, "Warning", "FailedCreate", "quota exceeded")
    await drain(b)
    assert len(events.calls) == 2
    await b.flush(refresh=True)
    assert events.calls[-1][1][1]["series"]["count"] == 5
    await b.shutdown()
    assert len(events.calls) == 3  # nothing pending at shutdown


async def test_different_notes_are_different_events(setup):
    b, rec, events, _ = setup
    rec.event(POD, "Normal", "SuccessfulCreate", "Created pod: a")
    rec.event(POD, "Normal", "SuccessfulCreate", "Created pod: b")
    await b.shutdown()
    assert [c[1]["note"] for c in events.calls] == ["Created pod: a", "Created pod: b"]


async def test_quiet_series_is_finished_and_forgotten(setup):
    b, rec, events, clock = setup
    for _ in range(3):
        rec.event(POD, "Warning", "BackOff", "back-off")
    await drain(b)
    clock.t += 601
    await b.flush(refresh=False)  # not a refresh round, but the series is over: written and dropped
    assert events.calls[-1][1][1]["series"]["count"] == 3
    rec.event(POD, "Warning", "BackOff", "back-off")
    await b.shutdown()
    assert events.calls[-1][0] == "create"  # a fresh event after the series ended


async def test_spam_filter_per_object(setup):
    b, rec, events, clock = setup
    for i in range(30):
        rec.event(POD, "Normal", "Reason", f"note {i}")
    other = {**POD, "metadata": {**POD["metadata"], "name": "web-1", "uid": "u2"}}
    rec.event(other, "Normal", "Reason", "note")
    await drain(b)
    creates = [c for c in events.calls if c[0] == "create"]
    assert len(creates) == 26 and b.dropped == 5
    assert creates[-1][1]["regarding"]["name"] == "web-1"  # another object is not throttled
    clock.t += 300  # one token back after five minutes
    rec.event(POD, "Normal", "Reason", "later")
    rec.event(POD, "Normal", "Reason", "later still")
    await b.shutdown()
    assert [c[1]["note"] for c in events.calls[-1:]] == ["later"] and b.dropped == 6


async def test_cluster_scoped_object_events_go_to_default(setup):
    b, rec, events, _ = setup
    rec.event({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "N"}}, "Normal", "NodeNotReady",
              "Node n1 status is now: NodeNotReady")
    await b.shutdown()
    assert events.calls[0][2] == "default" and events.calls[0][1]["metadata"]["namespace"] == "default"


async def test_series_of_a_vanished_event_is_created_again(setup):
    b, rec, events, clock = setup
    rec.event(POD, "Warning", "X", "y")
    await drain(b)
    clock.t += 1
    events.fail_patch_with = status_error({"kind": "Status", "code": 404, "reason": "NotFound", "message": "gone"}, 404)
    rec.event(POD, "Warning", "X", "y")
    await b.shutdown()
    assert [c[0] for c in events.calls] == ["create", "patch", "create"]
    again = events.calls[-1][1]
    assert again["series"]["count"] == 2 and again["metadata"]["name"] != events.calls[0][1]["metadata"]["name"]


async def test_rejected_event_is_dropped_not_retried(setup):
    b, rec, events, _ = setup
    events.reject_create = status_error({"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"}, 403)
    rec.event(POD, "Normal", "R", "n")
    await b.shutdown()
    assert events.calls == []


def test_object_reference_of_a_reference_drops_empty_fields():
    assert object_reference({"kind": "Node", "name": "n", "namespace": "", "uid": None}) == {"kind": "Node", "name": "n"}


async def test_long_note_is_cut_to_the_api_limit(setup):
    b, rec, events, _ = setup
    rec.event(POD, "Normal", "R", "é" * 1000)
    await b.shutdown()
    assert len(events.calls[0][1]["note"].encode()) <= 1024


def test_new_api_is_the_default():
    client = FakeClient("events.k8s.io")
    assert EventBroadcaster(client).events is client.events


async def test_core_v1_rendering_on_request():
    client = FakeClient("")
    b = EventBroadcaster(client, api_version="v1")
    rec = b.recorder("replicaset-controller", "rs-1")
    rec.event(POD, "Normal", "SuccessfulCreate", "Created pod: web-0", action="Create", related=POD)
    rec.event(POD, "Normal", "SuccessfulCreate", "Created pod: web-0", action="Create", related=POD)
    await b.shutdown()
    (_, ev, ns), (verb, (name, body, _), _) = client.events.calls
    assert (ev["apiVersion"], ev["kind"], ns) == ("v1", "Event", "ns")
    assert ev["involvedObject"]["name"] == "web-0" and ev["message"] == "Created pod: web-0"
    assert (ev["reportingComponent"], ev["reportingInstance"], ev["action"]) == ("replicaset-controller", "rs-1", "Create")
    assert ev["related"]["uid"] == "u1" and ev["eventTime"]
    assert not {"regarding", "note", "reportingController"} & set(ev)
    assert verb == "patch" and name == ev["metadata"]["name"] and body["series"]["count"] == 2


def test_unknown_api_version_is_refused():
    with pytest.raises(ValueError):
        EventBroadcaster(FakeClient(), api_version="events.k8s.io/v1beta1")
