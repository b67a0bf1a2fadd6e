"""sim-nodes renews its leases concurrently: done one after another, a round over many
nodes outlasts the node monitor grace period on a loaded machine and every node goes
Unknown (then its pods NotReady) although nothing is wrong."""

from __future__ import annotations

import asyncio

from kybernetes.scheduler.simnodes import RENEW_CONCURRENCY, SimNodes


class _Leases:
    def __init__(self, n: int) -> None:
        self.n, self.inflight, self.peak = n, 0, 0
        self.renewed: set[str] = set()
        self.all = asyncio.Event()

    async def patch(self, name, body, kind, namespace=None):
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        for _ in range(3):
            await asyncio.sleep(0)  # an answer takes a while
        self.inflight -= 1
        assert namespace == "kube-node-lease" and body["spec"]["holderIdentity"] == name
        self.renewed.add(name)
        if len(self.renewed) == self.n:
            self.all.set()


class _Client:
    def __init__(self, leases):
        self.leases = leases

    def resource(self, group, version, resource):
        return self.leases if resource == "leases" else object()


async def test_a_renewal_round_runs_concurrently_and_covers_every_node():
    leases = _Leases(200)
    s = SimNodes(_Client(leases), 200, prefix="r-", renew_interval=0.0, node_status_interval=3600)
    task = asyncio.ensure_future(s._renew_loop())
    try:
        await asyncio.wait_for(leases.all.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert leases.renewed == {f"r-{i:04d}" for i in range(200)}
    assert 1 < leases.peak <= RENEW_CONCURRENCY
