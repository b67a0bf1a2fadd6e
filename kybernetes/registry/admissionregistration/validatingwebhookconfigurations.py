"""ValidatingWebhookConfigurations: webhooks that may deny requests after validation."""

from __future__ import annotations

from kybernetes.registry.admissionregistration._webhooks import WebhookConfigurationStrategy


class ValidatingWebhookConfigurationStrategy(WebhookConfigurationStrategy):
    """admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration (cluster-scoped)."""

    kind = "ValidatingWebhookConfiguration"
    resource = "validatingwebhookconfigurations"
    singular = "validatingwebhookconfiguration"
    mutating = False
