"""Network namespaces for a node's runtime, and a minimal CNI bridge config.

A node can run its containerd inside a network namespace of its own (see
ContainerdProcess(netns=...)): CNI plugins then create the pod bridge and veths in
that namespace, so pods reach each other and the node but have no path to the
host's uplink.  Tests and benchmarks use this to obey the network-safety rule;
several simulated nodes on one machine use it too.

    ns = create_netns("kyb-node-1")     # /run/netns/kyb-node-1, lo up, no routes
    write_conflist(conf_dir, bridge_conflist("kyb", "kyb0", "10.88.0.0/24"))
    ...
    delete_netns("kyb-node-1")
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, Union

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NetnsError(RuntimeError):
    pass


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {r.stderr.strip()}")


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def create_netns(name: str) -> Path:
    """Create a named network namespace with only `lo` (up) in it."""
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
    except NetnsError:
        delete_netns(name)
        raise
    return netns_path(name)


def delete_netns(name: str) -> None:
    """Delete a named network namespace (no error if it is gone)."""
    if netns_path(name).exists():
        r = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)
        if r.returncode != 0 and netns_path(name).exists():
            raise NetnsError(f"ip netns del {name}: {r.stderr.strip()}")


def run_in_netns(path: Union[str, os.PathLike], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call fn(*args, **kwargs) on a new thread that has joined network namespace
    `path`: sockets it opens live there.  Returns fn's result or raises its error."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(str(path), os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=target, name="netns-call", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def bridge_conflist(name: str, bridge: str, subnet: str, *, gateway: bool = True,
                    routes: Optional[list[dict]] = None, ipam_dir: Optional[Union[str, os.PathLike]] = None,
                    cni_version: str = "1.0.0") -> dict:
    """A CNI conflist: bridge + host-local IPAM on `subnet`, and portmap.  No default
    route is given to pods unless `routes` says so (keep it that way in tests).
    `ipam_dir` keeps host-local's allocations there instead of /var/lib/cni/networks."""
    ipam: dict = {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": list(routes or [])}
    if ipam_dir:
        ipam["dataDir"] = str(ipam_dir)
    return {
        "cniVersion": cni_version,
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": gateway,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": ipam,
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def write_conflist(conf_dir: Union[str, os.PathLike], conflist: dict, filename: str = "10-kyb.conflist") -> Path:
    """Write a conflist atomically (containerd reloads its CNI config on file events)."""
    d = Path(conf_dir)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{filename}.tmp"
    tmp.write_text(json.dumps(conflist, indent=2))
    dest = d / filename
    os.replace(tmp, dest)
    return dest
