"""Registry modules of batch."""
