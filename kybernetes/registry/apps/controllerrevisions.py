"""ControllerRevisions: immutable snapshots of state used for rollback."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class ControllerRevisionStrategy(Strategy):
    """apps/v1 ControllerRevision."""

    group = "apps"
    version = "v1"
    kind = "ControllerRevision"
    resource = "controllerrevisions"
    singular = "controllerrevision"
