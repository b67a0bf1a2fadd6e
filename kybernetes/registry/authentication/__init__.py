"""authentication.k8s.io: reviews answered by the API server, never stored."""
