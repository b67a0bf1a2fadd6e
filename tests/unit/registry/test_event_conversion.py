"""events.k8s.io/v1 Events as a view of stored core/v1 Events: conversion both ways,
shared keys, per-view decoding and selectors, per-API validation paths."""

from __future__ import annotations

import copy

from kybernetes.apiserver.objects import ObjectStore, object_key, resource_prefix
from kybernetes.registry.core.events import EventStrategy as CoreEvents
from kybernetes.registry.events.events import EventStrategy as NewEvents, from_core, to_core
from kybernetes.storage.interface import KeyValue

CORE_EVENT = {
    "apiVersion": "v1", "kind": "Event",
    "metadata": {"name": "e", "namespace": "ns", "uid": "u"},
    "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"}, "reason": "BackOff",
    "message": "restarting", "source": {"component": "kubelet", "host": "n1"},
    "firstTimestamp": "2026-05-01T11:00:00Z", "lastTimestamp": "2026-05-01T11:30:00Z", "count": 4,
    "type": "Warning", "eventTime": None, "series": {"count": 2, "lastObservedTime": "2026-05-01T11:30:00.000000Z"},
    "action": "Restart", "related": {"kind": "Node", "name": "n1"}, "reportingComponent": "kubelet",
    "reportingInstance": "n1",
}
NEW_EVENT = {
    "apiVersion": "events.k8s.io/v1", "kind": "Event",
    "metadata": {"name": "e", "namespace": "ns", "uid": "u"},
    "regarding": {"kind": "Pod", "name": "p", "namespace": "ns"}, "reason": "BackOff", "note": "restarting",
    "deprecatedSource": {"component": "kubelet", "host": "n1"},
    "deprecatedFirstTimestamp": "2026-05-01T11:00:00Z", "deprecatedLastTimestamp": "2026-05-01T11:30:00Z",
    "deprecatedCount": 4, "type": "Warning", "eventTime": None,
    "series": {"count": 2, "lastObservedTime": "2026-05-01T11:30:00.000000Z"}, "action": "Restart",
    "related": {"kind": "Node", "name": "n1"}, "reportingController": "kubelet", "reportingInstance": "n1",
}


def test_conversion_maps_every_field_and_round_trips() -> None:
    assert from_core(copy.deepcopy(CORE_EVENT)) == NEW_EVENT
    assert to_core(copy.deepcopy(NEW_EVENT)) == CORE_EVENT
    assert to_core(from_core(CORE_EVENT)) == CORE_EVENT
    assert from_core(to_core(NEW_EVENT)) == NEW_EVENT
    # sparse objects stay sparse (no field appears that was not there)
    sparse = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "s"}, "note": "x"}
    assert to_core(sparse) == {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "s"}, "message": "x"}


def test_the_view_shares_keys_and_decodes_in_its_own_form() -> None:
    core, new = CoreEvents(), NewEvents()
    assert resource_prefix(new) == resource_prefix(core) == "/registry/events/"
    assert object_key(new, "ns", "e") == "/registry/events/ns/e"
    objects = ObjectStore(store=None)  # encode/decode never touch the store
    stored = objects.encode("/registry/events/ns/e", copy.deepcopy(NEW_EVENT), new)
    kv = KeyValue(key="/registry/events/ns/e", value=stored, mod_revision=9, create_revision=7)
    assert objects.decode(kv, core) == {**CORE_EVENT, "metadata": {**CORE_EVENT["metadata"], "resourceVersion": "9"}}
    assert objects.decode(kv, new)["note"] == "restarting"
    assert objects.decode(kv)["message"] == "restarting"  # no strategy: the stored form


def test_selectors_and_rows_agree_across_views() -> None:
    core, new = CoreEvents(), NewEvents()
    cv, nv = core.field_values(CORE_EVENT), new.field_values(NEW_EVENT)
    assert cv["involvedObject.name"] == nv["regarding.name"] == "p"
    assert cv["reportingComponent"] == nv["reportingController"] == "kubelet"
    assert core.row(CORE_EVENT) == new.row(NEW_EVENT)
    no_source = {**CORE_EVENT, "source": {}}
    assert core.field_values(no_source)["source"] == "kubelet"  # falls back to the reporting controller


def test_update_rules_differ_per_api() -> None:
    new = NewEvents()
    changed = {**NEW_EVENT, "note": "other", "reportingController": "x"}
    assert [(c.field, c.reason) for c in new.validate_update(changed, NEW_EVENT)] == [
        ("message", "FieldValueInvalid"), ("reportingController", "FieldValueInvalid")]
    bad_series = {**NEW_EVENT, "series": {"count": 1}}
    assert [c.field for c in new.validate_update(bad_series, NEW_EVENT)] == ["series.count", "series.lastObservedTime"]
    # core/v1 keeps only the legacy rules: any field may change
    assert CoreEvents().validate_update({**CORE_EVENT, "message": "other"}, CORE_EVENT) == []


def test_legacy_rules_name_the_controller_field_per_api() -> None:
    styled = {**CORE_EVENT, "eventTime": "2026-05-01T11:00:00.000000Z", "reportingComponent": ""}
    assert [c.field for c in CoreEvents().validate(styled)][:1] == ["reportingComponent"]
    assert [c.field for c in NewEvents().validate(from_core(styled))][:1] == ["reportingController"]
    elsewhere = {**CORE_EVENT, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}}
    assert [c.field for c in CoreEvents().validate(elsewhere)] == ["involvedObject.namespace"]


def test_managed_fields_of_the_other_api_are_translated_and_restored() -> None:
    from kybernetes.api import managedfields as mf
    from kybernetes.apiserver import fieldversions

    core, new = CoreEvents(), NewEvents()
    entry = {"manager": "m", "operation": "Update", "apiVersion": "events.k8s.io/v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:note": {}, "f:regarding": {}, "f:metadata": {"f:labels": {}}}}
    obj = {**CORE_EVENT, "metadata": {**CORE_EVENT["metadata"], "managedFields": [entry]}}
    seen, foreign = fieldversions.to_request_version(core, obj)
    [t] = seen["metadata"]["managedFields"]
    assert t["apiVersion"] == "v1" and set(t["fieldsV1"]) == {"f:message", "f:involvedObject", "f:metadata"}
    assert obj["metadata"]["managedFields"] == [entry]  # the caller's object is untouched
    fieldversions.restore(core, seen, foreign, ("other", "Apply", ""))
    assert seen["metadata"]["managedFields"] == [entry]
    [c] = fieldversions.restore_conflicts(core, [mf.Conflict(
        "m", ".message", mf.manager_identifier("m", "Update", "v1"))], foreign)
    assert (c.path, c.identifier) == (".note", mf.manager_identifier("m", "Update", "events.k8s.io/v1"))
    assert fieldversions.to_request_version(new, seen) == (seen, {})  # already in the request's version
