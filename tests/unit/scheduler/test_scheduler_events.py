"""The scheduler records its events through the shared events.k8s.io/v1 recorder:
FailedScheduling (action Scheduling) and Scheduled (action Binding), reportingController
the profile's scheduler name, repeats aggregated into a series."""

from __future__ import annotations

import asyncio
import time

from kybernetes.scheduler.framework import pod_key
from kybernetes.scheduler.queue import QueuedPodInfo
from kybernetes.scheduler.scheduler import Scheduler
from tests.unit.scheduler.simcluster import node, pod


class _Resource:
    def __init__(self, client, group, resource):
        self.client, self.group, self.resource = client, group, resource

    async def create(self, body, namespace=None):
        self.client.calls.append(("create", self.group, self.resource, namespace, body))
        return body

    async def patch(self, name, body, kind, namespace=None, subresource=None):
        self.client.calls.append(("patch", self.group, self.resource, namespace, name, body, subresource))
        return body


class _Client:
    def __init__(self):
        self.calls = []

    def resource(self, group, version, resource):
        return _Resource(self, group, resource)

    async def request(self, method, path, body=None, **kw):
        self.calls.append(("request", method, path, body))
        return body

    def events(self, what):
        return [c for c in self.calls if c[1] == "events.k8s.io" and c[2] == "events" and c[0] == what]


def _qpi(p):
    return QueuedPodInfo(pod=p, key=pod_key(p), timestamp=time.monotonic())


async def _settle(s: Scheduler):
    while s._tasks:
        await asyncio.gather(*list(s._tasks), return_exceptions=True)
    await s.event_broadcaster.wait_idle()


async def test_failed_scheduling_is_an_events_k8s_io_event_and_repeats_are_a_series():
    c = _Client()
    s = Scheduler(c)
    s.cache.add_node(node("n1", cpu="1"))
    p = pod("big", cpu="2")
    p["metadata"]["resourceVersion"] = "7"
    s.schedule_one(_qpi(p))
    await _settle(s)
    (created,) = c.events("create")
    ev = created[4]
    assert created[3] == "d"
    assert ev["type"] == "Warning" and ev["reason"] == "FailedScheduling" and ev["action"] == "Scheduling"
    assert ev["reportingController"] == "default-scheduler"
    assert ev["reportingInstance"].startswith("default-scheduler-")
    assert ev["regarding"] == {"apiVersion": "v1", "kind": "Pod", "namespace": "d", "name": "big",
                               "uid": "uid-big", "resourceVersion": "7"}
    assert ev["note"].startswith("0/1 nodes are available: 1 Insufficient cpu")
    # the same failure again: no second Event, the first one's series goes to count 2
    s.schedule_one(_qpi(p))
    await _settle(s)
    assert len(c.events("create")) == 1
    (patched,) = c.events("patch")
    assert patched[4] == ev["metadata"]["name"] and patched[5]["series"]["count"] == 2
    await s.event_broadcaster.shutdown()


async def test_scheduled_event_has_action_binding():
    c = _Client()
    s = Scheduler(c)
    s.cache.add_node(node("n1"))
    s.schedule_one(_qpi(pod("small", cpu="100m")))
    await _settle(s)
    assert any(r[0] == "request" and r[2] == "/api/v1/namespaces/d/pods/small/binding" for r in c.calls)
    (created,) = c.events("create")
    ev = created[4]
    assert (ev["type"], ev["reason"], ev["action"]) == ("Normal", "Scheduled", "Binding")
    assert ev["note"] == "Successfully assigned d/small to n1"
    assert ev["reportingController"] == "default-scheduler"
    # nothing is written through the core/v1 events API any more
    assert not [r for r in c.calls if r[1] == "" and r[2] == "events"]
    await s.event_broadcaster.shutdown()


async def test_a_profile_reports_under_its_own_scheduler_name():
    from kybernetes.scheduler.profile import default_profile
    c = _Client()
    s = Scheduler(c, profiles=[default_profile(c, "my-scheduler")])
    s.cache.add_node(node("n1", cpu="1"))
    s.schedule_one(_qpi(pod("x", cpu="2", schedulerName="my-scheduler")))
    await _settle(s)
    (created,) = c.events("create")
    assert created[4]["reportingController"] == "my-scheduler"
    await s.event_broadcaster.shutdown()
