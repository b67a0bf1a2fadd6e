"""authorization.k8s.io: access reviews answered by the API server, never stored."""
