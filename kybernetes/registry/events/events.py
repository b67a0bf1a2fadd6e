"""Events (events.k8s.io/v1): the newer event API over the same storage as core events."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class EventStrategy(Strategy):
    """events.k8s.io/v1 Event."""

    group = "events.k8s.io"
    version = "v1"
    kind = "Event"
    resource = "events"
    singular = "event"
    short_names = ("ev",)
