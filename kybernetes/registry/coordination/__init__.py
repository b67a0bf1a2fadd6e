"""Registry modules of coordination.k8s.io."""
