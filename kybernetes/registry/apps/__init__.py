"""Registry modules of apps."""
