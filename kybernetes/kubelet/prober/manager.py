"""Probe workers of one pod, as upstream's prober workers: one task per container and probe
kind (startup, readiness, liveness) that probes every periodSeconds after
initialDelaySeconds and flips its verdict only after successThreshold successes or
failureThreshold failures in a row.

- readiness starts as failure for each new container instance; liveness starts as success;
  startup gates both until it has succeeded once (then it stops running).
- a liveness or startup verdict of failure is held (no more probing) until the container
  is replaced; the pod worker kills and restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from kybernetes.kubelet.prober.probes import ProbeResult, run_probe

log = logging.getLogger("kybernetes.kubelet.prober")
Obj = dict[str, Any]
KINDS = ("startup", "readiness", "liveness")
# a probe's result as the prober_probe_total metric labels it
_RESULT_LABELS = {ProbeResult.SUCCESS: "successful", ProbeResult.WARNING: "successful", ProbeResult.FAILURE: "failed"}
PROBE_FIELD = {"startup": "startupProbe", "readiness": "readinessProbe", "liveness": "livenessProbe"}


@dataclass
class Running:
    """What the pod worker knows about a container instance the probes should watch."""
    cid: str
    started_at: float          # unix seconds
    spec: Obj


@dataclass
class _Worker:
    kind: str
    name: str
    probe: Obj
    task: Optional[asyncio.Task] = None
    cid: str = ""
    ok: bool = False            # the current verdict for `cid`
    run: int = 0                # consecutive identical results
    last: Optional[bool] = None
    on_hold: bool = False
    message: str = ""
    attempts: int = 0


class PodProbes:
    def __init__(self, cri, notify: Callable[[], None], *, clock: Callable[[], float] = time.time,
                 on_failure: Optional[Callable[[str, str, str], None]] = None,
                 on_result: Optional[Callable[[str, str, str, float], None]] = None):
        self.cri = cri
        self.notify = notify
        self.clock = clock
        self.on_failure = on_failure    # (kind, container, message) for events/logs
        self.on_result = on_result      # (kind, container, successful|failed|unknown, seconds): metrics
        self.workers: dict[tuple[str, str], _Worker] = {}
        self.running: dict[str, Running] = {}
        self.pod_ip = ""
        self.netns: Optional[str] = None

    # ------------------------------------------------------------ pod worker side

    def update(self, containers: list[Obj], running: dict[str, Running], pod_ip: str, netns: Optional[str]) -> None:
        """Start workers for probes the containers declare; tell them what runs now."""
        self.running = running
        self.pod_ip, self.netns = pod_ip, netns
        for c in containers:
            for kind in KINDS:
                probe = c.get(PROBE_FIELD[kind])
                key = (c["name"], kind)
                if probe and key not in self.workers:
                    w = self.workers[key] = _Worker(kind, c["name"], probe, ok=(kind == "liveness"))
                    w.task = asyncio.ensure_future(self._loop(w))

    def has(self, name: str, kind: str) -> bool:
        return (name, kind) in self.workers

    def started(self, name: str, cid: str) -> bool:
        w = self.workers.get((name, "startup"))
        return w is None or (w.cid == cid and w.ok)

    def ready(self, name: str, cid: str) -> bool:
        if not self.started(name, cid):
            return False
        w = self.workers.get((name, "readiness"))
        return w is None or (w.cid == cid and w.ok)

    def failed(self, name: str, cid: str) -> Optional[str]:
        """A message when liveness or startup has failed for this container instance."""
        for kind in ("startup", "liveness"):
            w = self.workers.get((name, kind))
            if w is not None and w.cid == cid and w.on_hold and not w.ok:
                return f"Container {name} failed {kind} probe, will be restarted"
        return None

    async def stop(self) -> None:
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.workers.clear()

    # ------------------------------------------------------------ workers

    async def _loop(self, w: _Worker) -> None:
        period = max(1, int(w.probe.get("periodSeconds") or 10))
        while True:
            try:
                await self._step(w)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s probe of %s", w.kind, w.name)
            await asyncio.sleep(period)

    def _set(self, w: _Worker, ok: bool) -> None:
        if ok != w.ok:
            w.ok = ok
            self.notify()

    async def _step(self, w: _Worker) -> None:
        cur = self.running.get(w.name)
        if cur is None:
            if w.kind == "readiness" and w.ok:
                self._set(w, False)
            return
        if cur.cid != w.cid:  # a new container instance: start over
            w.cid, w.run, w.last, w.on_hold, w.attempts = cur.cid, 0, None, False, 0
            w.ok = w.kind == "liveness"
            self.notify()
        if w.on_hold:
            return
        if w.kind == "startup" and w.ok:
            return  # succeeded once: never run again for this instance
        if w.kind != "startup" and not self.started(w.name, cur.cid):
            return
        if self.clock() - cur.started_at < int(w.probe.get("initialDelaySeconds") or 0):
            return
        began = time.monotonic()
        result, out = await run_probe(w.probe, cur.spec, cri=self.cri, cid=cur.cid, pod_ip=self.pod_ip,
                                      netns=self.netns)
        if self.on_result is not None:
            self.on_result(w.kind, w.name, _RESULT_LABELS.get(result, "unknown"), time.monotonic() - began)
        w.attempts += 1
        if self.running.get(w.name) is None or self.running[w.name].cid != cur.cid:
            return  # the container changed while probing
        if result is ProbeResult.UNKNOWN:
            return  # upstream keeps the previous verdict on errors it cannot judge
        ok = result in (ProbeResult.SUCCESS, ProbeResult.WARNING)
        if not ok and self.on_failure is not None:
            self.on_failure(w.kind, w.name, out)  # every failed attempt is reported, as upstream
        w.run = w.run + 1 if w.last == ok else 1
        w.last = ok
        threshold = int(w.probe.get("successThreshold") or 1) if ok else int(w.probe.get("failureThreshold") or 3)
        if w.run < threshold:
            return
        if not ok:
            w.message = out
            log.info("%s probe of %s failed: %s", w.kind, w.name, out.strip()[:200])
            if w.kind in ("liveness", "startup"):
                w.on_hold = True
                w.ok = False
                self.notify()  # the pod worker restarts the container
                return
        self._set(w, ok)
