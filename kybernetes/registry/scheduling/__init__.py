"""Registry modules of scheduling.k8s.io."""
