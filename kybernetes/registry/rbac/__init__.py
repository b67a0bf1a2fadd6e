"""Registry modules of rbac.authorization.k8s.io."""
