"""PodTemplates: stored pod templates (their generation moves when the template changes)."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.base import NAME_COLUMN, Cause, Obj, Strategy, column, container_cells, dig, format_labels
from kybernetes.registry.core import podspec


class PodTemplateStrategy(Strategy):
    """core/v1 PodTemplate."""

    group = ""
    version = "v1"
    kind = "PodTemplate"
    resource = "podtemplates"
    singular = "podtemplate"

    columns = (
        NAME_COLUMN,
        column("Containers", doc="Names of each container in the template."),
        column("Images", doc="Images referenced by each container in the template."),
        column("Pod Labels", doc="The labels for the pod template."),
    )

    def default(self, obj: Obj) -> None:
        podspec.default_pod_template(obj.get("template"))

    def validate(self, obj: Obj) -> list[Cause]:
        template = obj.get("template") or {}
        causes = podspec.validate_template_labels(template, "template")
        return causes + podspec.validate_pod_spec(template.get("spec") or {}, "template.spec")

    def generation_changes(self, new: Obj, old: Obj) -> bool:
        return new.get("template") != old.get("template")

    def row(self, obj: Obj) -> list[Any]:
        names, images = container_cells(dig(obj, "template", "spec", "containers"))
        return [obj["metadata"]["name"], names, images, format_labels(dig(obj, "template", "metadata", "labels"))]
