"""Sockets that live in a pod's network namespace, so probes and httpGet hooks reach the
pod from inside its own network (the node itself may live in another namespace, and no
probe packet ever needs a route off the machine)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from typing import Optional

from kybernetes.kubelet.runtime_netns import run_in_netns


def sandbox_netns(status_response) -> Optional[str]:
    """The network namespace path of a sandbox from a verbose PodSandboxStatus answer."""
    raw = status_response.info.get("info") if status_response.info else None
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    for ns in (((info.get("runtimeSpec") or {}).get("linux") or {}).get("namespaces") or []):
        if ns.get("type") == "network" and ns.get("path"):
            return ns["path"]
    pid = info.get("pid")
    return f"/proc/{pid}/ns/net" if pid else None


async def connect(host: str, port: int, netns: Optional[str], timeout: float) -> socket.socket:
    """A connected non-blocking TCP socket to host:port, created inside `netns` when given."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    if netns:
        sock = await asyncio.to_thread(run_in_netns, netns, socket.socket, family, socket.SOCK_STREAM)
    else:
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return sock
