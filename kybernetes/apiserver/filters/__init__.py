"""apiserver/filters."""
