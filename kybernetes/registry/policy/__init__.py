"""Registry modules of policy."""
