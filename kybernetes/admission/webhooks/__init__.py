"""Admission webhooks: MutatingAdmissionWebhook and ValidatingAdmissionWebhook."""

from kybernetes.admission.webhooks.dispatch import WebhookAdmission

__all__ = ["WebhookAdmission"]
