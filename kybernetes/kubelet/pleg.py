"""A relisting pod lifecycle event generator: containerd 1.6 has no container events,
so list sandboxes and containers every `period` and wake the pod workers of pods whose
sandbox or container states changed."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Optional

from kybernetes.kubelet.background import BackgroundLoop

log = logging.getLogger("kybernetes.kubelet.pleg")

L_UID = "io.kubernetes.pod.uid"


class PLEG(BackgroundLoop):
    def __init__(self, cri, notify: Callable[[str], None], *, period: float = 1.0):
        self.cri = cri
        self.notify = notify
        self.period = period
        self.last: dict[str, tuple[str, int]] = {}  # id -> (pod uid, state)
        self.relists = 0
        # called after each relist with (seconds it took, seconds since the previous one
        # began or None): the kubelet's PLEG metrics
        self.observer: Optional[Callable[[float, Optional[float]], None]] = None

    async def relist(self) -> set[str]:
        cur: dict[str, tuple[str, int]] = {}
        for s in await self.cri.list_pod_sandbox():
            cur["s:" + s.id] = (s.labels.get(L_UID, ""), s.state)
        for c in await self.cri.list_containers():
            cur["c:" + c.id] = (c.labels.get(L_UID, ""), c.state)
        changed = {uid for k, (uid, st) in cur.items() if self.last.get(k) != (uid, st)}
        changed |= {uid for k, (uid, _) in self.last.items() if k not in cur}
        self.last = cur
        self.relists += 1
        changed.discard("")
        for uid in changed:
            self.notify(uid)
        return changed

    async def _run(self) -> None:
        began: Optional[float] = None
        while True:
            start = time.monotonic()
            try:
                await self.relist()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("relist failed: %s", e)
            else:
                if self.observer is not None:
                    self.observer(time.monotonic() - start, None if began is None else start - began)
            began = start
            await asyncio.sleep(self.period)
