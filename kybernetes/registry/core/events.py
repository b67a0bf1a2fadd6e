"""Events (core/v1): reports of what happened to an object."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class EventStrategy(Strategy):
    """core/v1 Event."""

    group = ""
    version = "v1"
    kind = "Event"
    resource = "events"
    singular = "event"
    short_names = ("ev",)
