"""MutatingWebhookConfigurations: webhooks that may change objects before validation."""

from __future__ import annotations

from kybernetes.registry.admissionregistration._webhooks import WebhookConfigurationStrategy


class MutatingWebhookConfigurationStrategy(WebhookConfigurationStrategy):
    """admissionregistration.k8s.io/v1 MutatingWebhookConfiguration (cluster-scoped)."""

    kind = "MutatingWebhookConfiguration"
    resource = "mutatingwebhookconfigurations"
    singular = "mutatingwebhookconfiguration"
    mutating = True
