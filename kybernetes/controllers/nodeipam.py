"""Node IPAM (upstream pkg/controller/nodeipam, the range allocator): every node gets
`spec.podCIDR`/`spec.podCIDRs` — one subnet of `--node-cidr-mask-size` bits from each
cluster CIDR (default 10.42.0.0/16, /24 per node) — and never one another node holds.

The allocation state lives in the node objects themselves: the set of taken subnets is
rebuilt from the informer cache (plus allocations written but not yet seen back), so a
restarted controller never hands out a subnet twice, and a deleted node's subnet is free
again as soon as the node is gone.  Subnets are handed out round-robin (as upstream's
cidrset), so a just-released subnet is not reused at once.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Optional, Sequence, Union

from kybernetes.client.errors import Conflict, Invalid, NotFound
from kybernetes.controllers.base import Controller, Requeue

Obj = dict[str, Any]
Net = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_NODE_CIDR_MASK_SIZE_V4 = 24
DEFAULT_NODE_CIDR_MASK_SIZE_V6 = 64
MAX_SUBNET_BITS = 16  # upstream's clusterSubNetMaxDiff: at most 2^16 node subnets per cluster CIDR
EXHAUSTED_RETRY = 30.0


class CIDRSetError(ValueError):
    pass


class CIDRExhausted(Exception):
    pass


class CIDRSet:
    """The node-sized subnets of one cluster CIDR, handed out round-robin."""

    def __init__(self, cluster_cidr: str, mask_size: int):
        self.cluster: Net = ipaddress.ip_network(cluster_cidr, strict=True)
        self.mask_size = mask_size
        bits = mask_size - self.cluster.prefixlen
        if bits < 0 or mask_size > self.cluster.max_prefixlen:
            raise CIDRSetError(f"node CIDR mask size {mask_size} does not fit cluster CIDR {self.cluster}")
        if bits > MAX_SUBNET_BITS:
            raise CIDRSetError("CIDRSet: subnet mask size too big")  # upstream's wording
        self.size = 1 << bits
        self.step = 1 << (self.cluster.max_prefixlen - mask_size)
        self.next = 0

    def subnet(self, i: int) -> Net:
        base = int(self.cluster.network_address) + i * self.step
        return ipaddress.ip_network((base, self.mask_size))

    def index(self, cidr: str) -> Optional[int]:
        """The subnet index of `cidr`, or None when it is not one of this set's subnets."""
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.version != self.cluster.version or net.prefixlen != self.mask_size or not net.subnet_of(self.cluster):
            return None
        return (int(net.network_address) - int(self.cluster.network_address)) // self.step

    def allocate(self, taken: set[int]) -> Net:
        """The next free subnet after the last one handed out."""
        for k in range(self.size):
            i = (self.next + k) % self.size
            if i not in taken:
                self.next = (i + 1) % self.size
                return self.subnet(i)
        raise CIDRExhausted(f"no remaining CIDRs in {self.cluster}")


def cidr_sets(cluster_cidrs: Union[str, Sequence[str]], node_cidr_mask_size: Optional[int] = None) -> list[CIDRSet]:
    """One CIDRSet per cluster CIDR (comma list, at most one per IP family)."""
    cidrs = [c.strip() for c in (cluster_cidrs.split(",") if isinstance(cluster_cidrs, str) else cluster_cidrs)
             if c.strip()]
    if not cidrs:
        raise CIDRSetError("no cluster CIDR")
    out: list[CIDRSet] = []
    for c in cidrs:
        try:
            net = ipaddress.ip_network(c, strict=True)
        except ValueError as e:
            raise CIDRSetError(f"invalid cluster CIDR {c!r}: {e}") from None
        default = DEFAULT_NODE_CIDR_MASK_SIZE_V4 if net.version == 4 else DEFAULT_NODE_CIDR_MASK_SIZE_V6
        size = node_cidr_mask_size if (node_cidr_mask_size and net.version == 4) else default
        out.append(CIDRSet(c, size))
    if len({s.cluster.version for s in out}) != len(out):
        raise CIDRSetError("at most one cluster CIDR per IP family")
    return out


def cluster_cidr_arg(text: str) -> str:
    """argparse type of --cluster-cidr: a clear usage error for a bad value."""
    import argparse

    cidrs = [c.strip() for c in text.split(",") if c.strip()]
    try:
        nets = [ipaddress.ip_network(c, strict=True) for c in cidrs]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"invalid cluster CIDR: {e}") from None
    if not nets or len({n.version for n in nets}) != len(nets):
        raise argparse.ArgumentTypeError("one cluster CIDR per IP family (IPv4, IPv6)")
    return text


def node_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


class NodeIpamController(Controller):
    name = "node-ipam"
    workers = 1  # one allocator: allocations are serial, so two nodes never race for a subnet

    def __init__(self, client: Any, informers: Any = None, *, cluster_cidr: Union[str, Sequence[str]] = DEFAULT_CLUSTER_CIDR,
                 node_cidr_mask_size: Optional[int] = None, **kw: Any) -> None:
        self.sets = cidr_sets(cluster_cidr, node_cidr_mask_size)
        # node name -> subnets written to it but not yet seen back through the watch
        self.pending: dict[str, list[str]] = {}
        super().__init__(client, informers, **kw)

    def setup(self) -> None:
        self.nodes = self.watch("", "v1", "nodes", enqueue=None)
        self.nodes.add_handlers(on_add=self._changed, on_update=lambda o, n: self._changed(n),
                                on_delete=self._deleted)
        self.nodes_api = self.resource("", "v1", "nodes")

    def _changed(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        if node_cidrs(node):
            self.pending.pop(name, None)
        else:
            self.queue.add(name)

    def _deleted(self, node: Obj) -> None:
        self.pending.pop(node["metadata"]["name"], None)
        # its subnets are free: nodes that found none left may get them now
        for n in self.nodes.list():
            if not node_cidrs(n):
                self.queue.add(n["metadata"]["name"])

    def taken(self) -> list[set[int]]:
        """Per cluster CIDR, the subnet indexes that nodes hold (or were just given)."""
        held: list[Iterable[str]] = [node_cidrs(n) for n in self.nodes.list()] + list(self.pending.values())
        out: list[set[int]] = [set() for _ in self.sets]
        for cidrs in held:
            for c in cidrs:
                for k, s in enumerate(self.sets):
                    i = s.index(c)
                    if i is not None:
                        out[k].add(i)
        return out

    async def reconcile(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None or node_cidrs(node) or key in self.pending:
            return
        taken = self.taken()
        try:
            cidrs = [str(s.allocate(t)) for s, t in zip(self.sets, taken)]
        except CIDRExhausted as e:
            self.log.warning("node %s: CIDRNotAvailable: %s", key, e)
            raise Requeue(EXHAUSTED_RETRY, "CIDRNotAvailable") from None
        self.pending[key] = cidrs
        # no resourceVersion precondition (as upstream's PatchNodeCIDRs): the kubelet's
        # status writes must not make us skip subnets, and validation refuses to change
        # a podCIDR once set, so a node some other allocator served is never re-addressed
        patch = {"spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs}}
        try:
            await self.nodes_api.patch(key, patch, "merge")
        except NotFound:
            self.pending.pop(key, None)
            return
        except (Conflict, Invalid):
            # someone else changed the node meanwhile (perhaps gave it a podCIDR): look again
            self.pending.pop(key, None)
            raise Requeue(0.2, "conflict") from None
        except BaseException:
            self.pending.pop(key, None)
            raise
        self.log.info("node %s: podCIDRs %s", key, ",".join(cidrs))
