"""ValidatingAdmissionPolicy: CEL validations bound to requests by bindings."""

from kybernetes.admission.policy.plugin import ValidatingAdmissionPolicy

__all__ = ["ValidatingAdmissionPolicy"]
