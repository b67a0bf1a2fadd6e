"""PodTemplates: stored pod templates."""

from __future__ import annotations

from kybernetes.registry.base import Strategy


class PodTemplateStrategy(Strategy):
    """core/v1 PodTemplate."""

    group = ""
    version = "v1"
    kind = "PodTemplate"
    resource = "podtemplates"
    singular = "podtemplate"
