"""Registry modules of admissionregistration.k8s.io."""
