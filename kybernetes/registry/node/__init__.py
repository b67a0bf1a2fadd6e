"""Registry modules of node.k8s.io."""
