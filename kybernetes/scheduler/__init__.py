"""The scheduler: a queue, a cache of nodes and assumed pods, and a framework of plugins
(filter, score, reserve, bind) run by profiles.  See scheduler.py."""

from kybernetes.scheduler.scheduler import Scheduler, start_scheduler

__all__ = ["Scheduler", "start_scheduler"]
