"""Registry modules of networking.k8s.io."""
