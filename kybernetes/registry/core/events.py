"""Events (core/v1): reports of what happened to an object.

Core/v1 Events are the stored form of Events: events.k8s.io/v1 serves a view of the same
objects (registry/events/events.py converts). `event_cells` is the upstream event printer
and `legacy_causes` upstream's legacyValidateEvent, which every Event passes whichever
API it is written through.
"""

from __future__ import annotations

from typing import Any, Optional

from kybernetes.registry import _checks
from kybernetes.registry.base import NAME_COLUMN, Cause, Column, Obj, Strategy, column, dig, invalid, required, since

_E = "io.k8s.api.core.v1.Event"
_REF = "io.k8s.api.core.v1.ObjectReference"

EVENT_COLUMNS = (
    column("Last Seen", doc=(_E, "lastTimestamp")),
    column("Type", doc=(_E, "type")),
    column("Reason", doc=(_E, "reason")),
    column("Object", doc=(_E, "involvedObject")),
    column("Subobject", doc=(_REF, "fieldPath"), priority=1),
    column("Source", doc=(_E, "source"), priority=1),
    column("Message", doc=(_E, "message")),
    column("First Seen", doc=(_E, "firstTimestamp"), priority=1),
    column("Count", doc=(_E, "count"), priority=1),
    Column(NAME_COLUMN.name, "string", "name", NAME_COLUMN.description, 1),
)


def _first_non_empty(*values: Optional[str]) -> str:
    return next((v for v in values if v), "")


def event_cells(*, name: str, first: Optional[str], event_time: Optional[str], last: Optional[str],
                count: Optional[int], series: Optional[Obj], involved: Optional[Obj], type_: str,
                reason: str, source: Optional[Obj], reporting_controller: str, reporting_instance: str,
                message: str) -> list[Any]:
    """Cells of the upstream event printer (server-side, so the wide set)."""
    first_seen = since(first) if first else since(event_time)
    last_seen = since(last) if last else first_seen
    if series:
        last_seen = since(series.get("lastObservedTime"))
        count = series.get("count") or 0
    elif not count:
        count = 1  # singleton events of the new API carry no count
    involved = involved or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = _first_non_empty((source or {}).get("component"), reporting_controller)
    instance = _first_non_empty((source or {}).get("host"), reporting_instance)
    src = f"{component}, {instance}" if instance else component
    return [last_seen, type_, reason, target, involved.get("fieldPath") or "", src, (message or "").strip(),
            first_seen, int(count), name]


# upstream's length limits of the new-style fields
REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024


def legacy_causes(event: Obj, controller_field: str) -> list[Cause]:
    """Rules every Event (in its core/v1 form) meets, whichever API wrote it (upstream
    legacyValidateEvent). Old-style events (no eventTime) only need their namespace to
    agree with the involved object's; new-style ones need the reporting fields, named
    `controller_field` for the reporting controller (each API calls it its own way)."""
    causes: list[Cause] = []
    ns = dig(event, "metadata", "namespace", default="") or ""
    involved_ns = dig(event, "involvedObject", "namespace", default="") or ""
    mismatch = invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
    if not event.get("eventTime"):
        if (not involved_ns and ns not in ("", "default")) or (involved_ns and ns != involved_ns):
            causes.append(mismatch)
        return causes
    if not involved_ns and ns not in ("default", "kube-system"):
        causes.append(mismatch)
    controller = event.get("reportingComponent") or ""
    if not controller:
        causes.append(required(controller_field))
    causes += [invalid(controller_field, controller, m) for m in _checks.is_qualified_name(controller)]
    for field, limit in (("reportingInstance", REPORTING_INSTANCE_LIMIT), ("action", ACTION_LIMIT),
                         ("reason", REASON_LIMIT)):
        value = event.get(field) or ""
        if not value:
            causes.append(required(field))
        if len(value.encode()) > limit:  # upstream counts bytes
            causes.append(invalid(field, "", f"can have at most {limit} characters"))
    if len((event.get("message") or "").encode()) > NOTE_LIMIT:
        causes.append(invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    return causes


def _involved(field: str):
    return lambda o: dig(o, "involvedObject", field, default="")


class EventStrategy(Strategy):
    """core/v1 Event."""

    group = ""
    version = "v1"
    kind = "Event"
    resource = "events"
    singular = "event"
    short_names = ("ev",)
    tracks_generation = False

    columns = EVENT_COLUMNS
    field_selectors = {
        "involvedObject.kind": _involved("kind"),
        "involvedObject.namespace": _involved("namespace"),
        "involvedObject.name": _involved("name"),
        "involvedObject.uid": _involved("uid"),
        "involvedObject.apiVersion": _involved("apiVersion"),
        "involvedObject.resourceVersion": _involved("resourceVersion"),
        "involvedObject.fieldPath": _involved("fieldPath"),
        "reason": lambda o: o.get("reason") or "",
        "reportingComponent": lambda o: o.get("reportingComponent") or "",
        # upstream falls back to the reporting controller for new-style events
        "source": lambda o: dig(o, "source", "component", default="") or o.get("reportingComponent") or "",
        "type": lambda o: o.get("type") or "",
    }

    def validate(self, obj: Obj) -> list[Cause]:
        """Core/v1 writes get only the legacy rules (upstream keeps them for compatibility)."""
        return legacy_causes(obj, "reportingComponent")

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return legacy_causes(new, "reportingComponent")

    def row(self, obj: Obj) -> list[Any]:
        return event_cells(
            name=obj["metadata"]["name"], first=obj.get("firstTimestamp"), event_time=obj.get("eventTime"),
            last=obj.get("lastTimestamp"), count=obj.get("count"), series=obj.get("series"),
            involved=obj.get("involvedObject"), type_=obj.get("type") or "", reason=obj.get("reason") or "",
            source=obj.get("source"), reporting_controller=obj.get("reportingComponent") or "",
            reporting_instance=obj.get("reportingInstance") or "", message=obj.get("message") or "")
