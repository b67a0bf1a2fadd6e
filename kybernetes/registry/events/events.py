"""Events (events.k8s.io/v1): the newer event API over the same events as core/v1.

Its printer is the core event printer, fed through the field renames of the new API
(regarding, note, deprecated*); create requires the fields the new API makes mandatory.
"""

from __future__ import annotations

from typing import Any

from kybernetes.registry import _checks
from kybernetes.registry.base import Cause, Obj, Strategy, dig, immutable, invalid, required, too_long
from kybernetes.registry.core.events import EVENT_COLUMNS, event_cells

NOTE_LIMIT = 1024  # bytes
# (field here, field in upstream's messages: they name the internal, core-shaped fields)
_IMMUTABLE = (
    ("regarding", "involvedObject"), ("reason", "reason"), ("note", "message"),
    ("deprecatedSource", "source"), ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"), ("type", "type"),
    ("eventTime", "eventTime"), ("action", "action"), ("related", "related"),
    ("reportingController", "reportingController"), ("reportingInstance", "reportingInstance"),
)


def _regarding(field: str):
    return lambda o: dig(o, "regarding", field, default="")


class EventStrategy(Strategy):
    """events.k8s.io/v1 Event."""

    group = "events.k8s.io"
    version = "v1"
    kind = "Event"
    resource = "events"
    singular = "event"
    short_names = ("ev",)
    tracks_generation = False

    columns = EVENT_COLUMNS
    field_selectors = {
        "regarding.kind": _regarding("kind"),
        "regarding.namespace": _regarding("namespace"),
        "regarding.name": _regarding("name"),
        "regarding.uid": _regarding("uid"),
        "regarding.apiVersion": _regarding("apiVersion"),
        "regarding.resourceVersion": _regarding("resourceVersion"),
        "regarding.fieldPath": _regarding("fieldPath"),
        "reason": lambda o: o.get("reason") or "",
        "reportingController": lambda o: o.get("reportingController") or "",
        "type": lambda o: o.get("type") or "",
    }

    def validate(self, obj: Obj) -> list[Cause]:
        """What the new API requires of an event (upstream ValidateEventCreate, non-core request)."""
        causes: list[Cause] = []
        if not obj.get("eventTime"):
            causes.append(required("eventTime"))
        t = obj.get("type") or ""
        if t not in ("Normal", "Warning"):
            causes.append(invalid("type", "", f"has invalid value: {t}"))
        for f in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"):
            if obj.get(f):
                causes.append(invalid(f, "", "needs to be unset"))
        if obj.get("deprecatedCount"):
            causes.append(invalid("deprecatedCount", "", "needs to be unset"))
        if dig(obj, "deprecatedSource", "component") or dig(obj, "deprecatedSource", "host"):
            causes.append(invalid("deprecatedSource", "", "needs to be unset"))
        rc = obj.get("reportingController") or ""
        if not rc:
            causes.append(required("reportingController"))
        else:
            causes += [invalid("reportingController", rc, m) for m in _checks.is_qualified_name(rc)]
        for f in ("reportingInstance", "action", "reason"):
            if not obj.get(f):
                causes.append(required(f))
        if len((obj.get("note") or "").encode()) > NOTE_LIMIT:
            causes.append(too_long("note", NOTE_LIMIT))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """Only the series and metadata may change; upstream reports its internal field names."""
        causes: list[Cause] = []
        for ours, upstream_name in _IMMUTABLE:
            if new.get(ours) != old.get(ours):
                causes.append(immutable(upstream_name, new.get(ours)))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return event_cells(
            name=obj["metadata"]["name"], first=obj.get("deprecatedFirstTimestamp"),
            event_time=obj.get("eventTime"), last=obj.get("deprecatedLastTimestamp"),
            count=obj.get("deprecatedCount"), series=obj.get("series"), involved=obj.get("regarding"),
            type_=obj.get("type") or "", reason=obj.get("reason") or "", source=obj.get("deprecatedSource"),
            reporting_controller=obj.get("reportingController") or "",
            reporting_instance=obj.get("reportingInstance") or "", message=obj.get("note") or "")
