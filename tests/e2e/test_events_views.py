"""The official `kubernetes` client sees one Event store through both event APIs
(CoreV1Api and EventsV1Api), including watches and field selectors."""

from __future__ import annotations

import datetime as dt

import pytest
from kubernetes import client, config, watch

NS = "evviews"


@pytest.fixture(scope="module")
def api(kyb):
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kyb.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        core = client.CoreV1Api(c)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        yield c
        core.delete_namespace(NS)


def _now() -> dt.datetime:
    return dt.datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)


def test_new_api_write_seen_by_core_list_and_watch(api):
    core, events = client.CoreV1Api(api), client.EventsV1Api(api)
    rv = core.list_namespaced_event(NS).metadata.resource_version
    events.create_namespaced_event(NS, client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="py1"), event_time=_now(), type="Normal", reason="Synced",
        action="Sync", note="synced py", reporting_controller="example.com/py", reporting_instance="py-1",
        regarding=client.V1ObjectReference(kind="ConfigMap", name="cfg", namespace=NS)))
    listed = core.list_namespaced_event(NS, field_selector="involvedObject.name=cfg,reportingComponent=example.com/py")
    [ev] = listed.items
    assert ev.message == "synced py" and ev.reporting_component == "example.com/py"
    assert ev.event_time == _now()
    w = watch.Watch()
    got = None
    for e in w.stream(core.list_namespaced_event, NS, resource_version=rv, timeout_seconds=20):
        got = e
        w.stop()
    assert got["type"] == "ADDED" and got["object"].message == "synced py"


def test_core_write_seen_by_new_api(api):
    core, events = client.CoreV1Api(api), client.EventsV1Api(api)
    core.create_namespaced_event(NS, client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="py2"), event_time=_now(), type="Warning", reason="Failed",
        action="Probe", message="probe failed", reporting_component="example.com/probe",
        reporting_instance="p-1", involved_object=client.V1ObjectReference(kind="Pod", name="pp", namespace=NS)))
    ev = events.read_namespaced_event("py2", NS)
    assert ev.note == "probe failed" and ev.regarding.name == "pp" and ev.reporting_controller == "example.com/probe"
    [sel] = events.list_namespaced_event(NS, field_selector="regarding.name=pp").items
    assert sel.metadata.name == "py2"
    events.delete_namespaced_event("py2", NS)
    assert "py2" not in [e.metadata.name for e in core.list_namespaced_event(NS).items]
