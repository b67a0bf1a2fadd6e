"""Scheduling profiles: the one place that lists which plugins run, in which order, with
which score weights (upstream apis/config/v1 default plugins)."""

from __future__ import annotations

from kybernetes.client import Client
from kybernetes.scheduler.framework import Framework

DEFAULT_SCHEDULER_NAME = "default-scheduler"

# score weights as upstream's default profile
DEFAULT_WEIGHTS = {
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "NodeResourcesFit": 1,
    "NodeResourcesBalancedAllocation": 1,
    "PodTopologySpread": 2,
    "InterPodAffinity": 2,
}


def default_plugins(client: Client) -> list:
    from kybernetes.scheduler.plugins.defaultbinder import DefaultBinder
    from kybernetes.scheduler.plugins.defaultpreemption import DefaultPreemption
    from kybernetes.scheduler.plugins.interpodaffinity import InterPodAffinity
    from kybernetes.scheduler.plugins.nodeaffinity import NodeAffinity
    from kybernetes.scheduler.plugins.nodename import NodeName
    from kybernetes.scheduler.plugins.nodeports import NodePorts
    from kybernetes.scheduler.plugins.noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit
    from kybernetes.scheduler.plugins.nodeunschedulable import NodeUnschedulable
    from kybernetes.scheduler.plugins.podtopologyspread import PodTopologySpread
    from kybernetes.scheduler.plugins.tainttoleration import TaintToleration
    from kybernetes.scheduler.plugins.volumebinding import VolumeBinding
    from kybernetes.scheduler.plugins.volumerestrictions import VolumeRestrictions
    from kybernetes.scheduler.plugins.volumezone import VolumeZone

    return [
        NodeUnschedulable(),
        NodeName(),
        TaintToleration(),
        NodeAffinity(),
        NodePorts(),
        NodeResourcesFit(),
        VolumeRestrictions(),
        VolumeBinding(client),
        VolumeZone(),
        PodTopologySpread(),
        InterPodAffinity(),
        DefaultPreemption(client),
        NodeResourcesBalancedAllocation(),
        DefaultBinder(client),
    ]


def default_profile(client: Client, scheduler_name: str = DEFAULT_SCHEDULER_NAME) -> Framework:
    return Framework(scheduler_name, default_plugins(client), DEFAULT_WEIGHTS)
