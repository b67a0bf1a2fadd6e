"""Events (events.k8s.io/v1): the newer event API, a view of the stored core/v1 Events.

Upstream keeps one stored Event resource and serves it through both APIs; so do we
(`stored_as`): reads convert the core/v1 form to this one and writes convert back, by the
field renames of upstream's conversion (regarding <-> involvedObject, note <-> message,
reportingController <-> reportingComponent, deprecated* <-> source/firstTimestamp/
lastTimestamp/count; eventTime, series, action, reason, related, type and
reportingInstance keep their names). Validation runs on the core/v1 form, as upstream
validates its internal Event, so field paths in errors use the core names, except the
reporting controller, which this API calls reportingController.
"""

from __future__ import annotations

from typing import Any

from kybernetes.registry.base import Cause, Obj, Strategy, dig, immutable, invalid, required
from kybernetes.registry.core.events import EVENT_COLUMNS, NOTE_LIMIT, event_cells, legacy_causes

__all__ = ["EventStrategy", "from_core", "to_core", "NOTE_LIMIT"]

# this API's name -> the core/v1 (stored) name; every other field keeps its name
_TO_CORE = {
    "regarding": "involvedObject", "note": "message", "reportingController": "reportingComponent",
    "deprecatedSource": "source", "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count",
}
_FROM_CORE = {v: k for k, v in _TO_CORE.items()}
# (core field, path in upstream's messages) of the fields an update may not change
_IMMUTABLE = tuple((f, f) for f in (
    "involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "type",
    "eventTime", "action", "related")) + (("reportingComponent", "reportingController"),
                                          ("reportingInstance", "reportingInstance"))


def to_core(event: Obj) -> Obj:
    """The core/v1 form of an events.k8s.io/v1 Event (a new dict sharing the values)."""
    out = {_TO_CORE.get(k, k): v for k, v in event.items()}
    out["apiVersion"], out["kind"] = "v1", "Event"
    return out


def from_core(event: Obj) -> Obj:
    """The events.k8s.io/v1 form of a core/v1 Event (a new dict sharing the values)."""
    out = {_FROM_CORE.get(k, k): v for k, v in event.items()}
    out["apiVersion"], out["kind"] = "events.k8s.io/v1", "Event"
    return out


def _series_causes(core: Obj) -> list[Cause]:
    series = core.get("series")
    if series is None:
        return []
    causes: list[Cause] = []
    if (series.get("count") or 0) < 2:
        causes.append(invalid("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        causes.append(required("series.lastObservedTime"))
    return causes


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
    stored_as = ("", "v1", "events")

    columns = EVENT_COLUMNS
    # upstream's field label conversions onto the core/v1 selectable fields
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

    def from_storage(self, obj: Obj) -> Obj:
        return from_core(obj)

    def to_storage(self, obj: Obj) -> Obj:
        return to_core(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        """Upstream ValidateEventCreate for a request through this API: the legacy rules,
        then what the new API requires of a new event."""
        core = to_core(obj)
        causes = legacy_causes(core, "reportingController") + _series_causes(core)
        if not core.get("eventTime"):
            causes.append(required("eventTime"))
        t = core.get("type") or ""
        if t not in ("Normal", "Warning"):
            causes.append(invalid("type", "", f"has invalid value: {t}"))
        for f in ("firstTimestamp", "lastTimestamp", "count"):
            if core.get(f):
                causes.append(invalid(f, "", "needs to be unset"))
        if dig(core, "source", "component") or dig(core, "source", "host"):
            causes.append(invalid("source", "", "needs to be unset"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """Upstream ValidateEventUpdate for this API: legacy rules, a changed series must be
        valid, and only the series and metadata may change."""
        core_new, core_old = to_core(new), to_core(old)
        causes = legacy_causes(core_new, "reportingController")
        if core_new.get("series") != core_old.get("series"):
            causes += _series_causes(core_new)
        for f, path in _IMMUTABLE:
            if core_new.get(f) != core_old.get(f):
                causes.append(immutable(path, core_new.get(f)))
        return causes

    def row(self, obj: Obj) -> list[Any]:
        return event_cells(
            name=obj["metadata"]["name"], first=obj.get("deprecatedFirstTimestamp"),
            event_time=obj.get("eventTime"), last=obj.get("deprecatedLastTimestamp"),
            count=obj.get("deprecatedCount"), series=obj.get("series"), involved=obj.get("regarding"),
            type_=obj.get("type") or "", reason=obj.get("reason") or "", source=obj.get("deprecatedSource"),
            reporting_controller=obj.get("reportingController") or "",
            reporting_instance=obj.get("reportingInstance") or "", message=obj.get("note") or "")
