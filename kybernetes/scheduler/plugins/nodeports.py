"""NodePorts: a pod's hostPorts must be free on the node."""

from __future__ import annotations

from kybernetes.scheduler.framework import Status, _host_ports

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"


def _conflicts(want, used) -> bool:
    for ip, proto, port in want:
        for uip, uproto, uport in used:
            if port == uport and proto == uproto and (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False


class NodePorts:
    name = NAME

    def pre_filter(self, state, pod):
        ports = _host_ports(pod)
        if not ports:
            from kybernetes.scheduler.framework import Code
            return Status(Code.SKIP)
        state[NAME] = ports
        return None

    def filter(self, state, pod, ni):
        want = state.get(NAME)
        if want and ni.used_ports and _conflicts(want, ni.used_ports):
            return Status.unschedulable(ERR_REASON)
        return None
