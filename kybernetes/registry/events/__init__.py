"""Registry modules of events.k8s.io."""
