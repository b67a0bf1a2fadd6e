"""Registry modules of storage.k8s.io."""
