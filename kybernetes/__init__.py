"""kybernetes: Kubernetes, reimplemented in Python."""
__version__ = "0.1.0"
