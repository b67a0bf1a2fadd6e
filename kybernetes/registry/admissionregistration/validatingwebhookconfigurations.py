"""ValidatingWebhookConfigurations: webhooks that may deny requests after validation."""

from __future__ import annotations

from typing import Any

from kybernetes.registry.admissionregistration import _webhooks
from kybernetes.registry.base import AGE_COLUMN, NAME_COLUMN, Cause, Column, Obj, Strategy, age_of


class ValidatingWebhookConfigurationStrategy(Strategy):
    """admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration (cluster-scoped)."""

    group = "admissionregistration.k8s.io"
    version = "v1"
    kind = "ValidatingWebhookConfiguration"
    resource = "validatingwebhookconfigurations"
    singular = "validatingwebhookconfiguration"
    namespaced = False
    categories = ("api-extensions",)
    columns = (
        NAME_COLUMN,
        Column("Webhooks", "integer", "", "Webhooks indicates the number of webhooks included in this configuration"),
        AGE_COLUMN,
    )

    def default(self, obj: Obj) -> None:
        _webhooks.default_configuration(obj, mutating=False)

    def generation_changes(self, new: Obj, old: Obj) -> bool:
        # no spec: upstream moves generation when the webhooks change
        return new.get("webhooks") != old.get("webhooks")

    def validate(self, obj: Obj) -> list[Cause]:
        return _webhooks.validate_configuration(obj, mutating=False)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _webhooks.validate_configuration(new, mutating=False, old=old)

    def row(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], len(obj.get("webhooks") or []), age_of(obj)]
