"""Registry modules of the legacy core group (/api/v1)."""
