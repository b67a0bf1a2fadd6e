"""Registry modules of autoscaling."""
