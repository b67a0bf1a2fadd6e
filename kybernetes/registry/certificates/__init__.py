"""Registry modules of certificates.k8s.io."""
