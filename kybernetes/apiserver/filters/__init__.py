"""The request filter chain (each filter wraps the next handler; order lives in apiserver.app)."""
