"""Registry modules of discovery.k8s.io."""
