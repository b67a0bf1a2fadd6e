"""Audit backends (upstream plugin/pkg/audit/log and webhook).

A backend's ``process(event)`` never blocks the event loop: the log backend hands
serialized lines to a writer thread; the webhook backend queues events (bounded; on
overflow the event is dropped and counted) and a task POSTs them in EventList batches."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import random
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

import orjson

log = logging.getLogger("kybernetes.audit")

Obj = dict[str, Any]


class Backend:
    name = "backend"

    def __init__(self) -> None:
        self.events_total = 0   # apiserver_audit_event_total
        self.errors_total = 0   # apiserver_audit_error_total (dropped or failed events)

    def process(self, event: Obj) -> bool:
        raise NotImplementedError

    async def start(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class Union(Backend):
    """Fan one event out to several backends."""

    name = "union"

    def __init__(self, backends: Sequence[Backend]) -> None:
        super().__init__()
        self.backends = list(backends)

    def process(self, event: Obj) -> bool:
        ok = True
        for b in self.backends:
            ok = b.process(event) and ok
        return ok

    async def start(self) -> None:
        for b in self.backends:
            await b.start()

    async def shutdown(self) -> None:
        for b in self.backends:
            await b.shutdown()


# ---------------------------------------------------------------------------- log
class RotatingWriter:
    """A file that rotates by size like lumberjack: the full file is renamed to
    ``name-<UTC time>.ext`` and a fresh one started; at most ``max_backups`` old files are
    kept and none older than ``max_age_days`` (0 = no limit)."""

    def __init__(self, path: Path, *, max_size: int = 0, max_backups: int = 0, max_age_days: int = 0) -> None:
        self.path = Path(path)
        self.max_size = max_size
        self.max_backups = max_backups
        self.max_age_days = max_age_days
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = self._open()
        self.size = self.f.tell()

    def _open(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab", buffering=64 * 1024)

    def write(self, data: bytes) -> None:
        if self.max_size and self.size and self.size + len(data) > self.max_size:
            self.rotate()
        self.f.write(data)
        self.size += len(data)

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()

    def _backup_name(self) -> Path:
        stem, ext = os.path.splitext(self.path.name)
        ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        cand = self.path.with_name(f"{stem}-{ts}{ext}")
        n = 1
        while cand.exists():
            cand = self.path.with_name(f"{stem}-{ts}.{n}{ext}")
            n += 1
        return cand

    def rotate(self) -> None:
        self.f.close()
        os.replace(self.path, self._backup_name())
        self.f = self._open()
        self.size = 0
        self._cleanup()

    def backups(self) -> list[Path]:
        stem, ext = os.path.splitext(self.path.name)
        out = [p for p in self.path.parent.glob(f"{stem}-*{ext}") if p != self.path]
        return sorted(out, key=lambda p: p.stat().st_mtime, reverse=True)

    def _cleanup(self) -> None:
        old = self.backups()
        remove: list[Path] = []
        if self.max_backups:
            remove += old[self.max_backups:]
            old = old[:self.max_backups]
        if self.max_age_days:
            cutoff = time.time() - self.max_age_days * 86400
            remove += [p for p in old if p.stat().st_mtime < cutoff]
        for p in remove:
            try:
                p.unlink()
            except OSError:
                pass


class _Stdout:
    def write(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)

    def flush(self) -> None:
        sys.stdout.buffer.flush()

    def close(self) -> None:
        self.flush()


class LogBackend(Backend):
    """JSON lines, one Event per line, written by a thread (`path` "-" = stdout)."""

    name = "log"

    def __init__(self, path: str, *, max_size_mb: int = 0, max_backups: int = 0, max_age_days: int = 0,
                 max_size_bytes: int = 0) -> None:
        super().__init__()
        self.path = path
        if path == "-":
            self.writer: Any = _Stdout()
        else:
            self.writer = RotatingWriter(Path(path), max_size=max_size_bytes or max_size_mb * 1024 * 1024,
                                         max_backups=max_backups, max_age_days=max_age_days)
        self.q: "queue.SimpleQueue[Optional[bytes]]" = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
        self.thread.start()
        self._closed = False

    def process(self, event: Obj) -> bool:
        if self._closed:
            self.errors_total += 1
            return False
        self.events_total += 1
        self.q.put(orjson.dumps(event) + b"\n")
        return True

    def _run(self) -> None:
        while True:
            item = self.q.get()
            while item is not None:
                try:
                    self.writer.write(item)
                except OSError as e:
                    self.errors_total += 1
                    log.error("audit log write failed: %s", e)
                try:
                    item = self.q.get_nowait()
                except queue.Empty:
                    break
            try:
                self.writer.flush()
            except OSError as e:
                log.error("audit log flush failed: %s", e)
            if item is None:
                self.writer.close()
                return

    async def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.q.put(None)
        await asyncio.to_thread(self.thread.join, 15)


# ---------------------------------------------------------------------------- webhook
@dataclass
class BatchConfig:
    """upstream --audit-webhook-batch-* defaults"""

    buffer_size: int = 10000
    max_batch_size: int = 400
    max_batch_wait: float = 30.0
    throttle_qps: float = 10.0
    throttle_burst: int = 15
    initial_backoff: float = 10.0
    retries: int = 4  # attempts after the first, with exponential backoff (upstream DefaultRetryBackoff steps)


class WebhookBackend(Backend):
    """POSTs audit.k8s.io/v1 EventList batches to the server of a kubeconfig."""

    name = "webhook"

    def __init__(self, kubeconfig_path: str, config: Optional[BatchConfig] = None) -> None:
        super().__init__()
        from kybernetes.client.kubeconfig import load_kubeconfig, ssl_context

        self.kc = load_kubeconfig(kubeconfig_path)
        self.ssl = ssl_context(self.kc) if self.kc.server.startswith("https") else None
        self.cfg = config or BatchConfig()
        self.queue: Optional[asyncio.Queue] = None
        self.task: Optional[asyncio.Task] = None
        self.session = None
        self.delivered_total = 0
        self._tokens = float(self.cfg.throttle_burst)
        self._last = time.monotonic()
        self._stopping = False
        self._inflight: list[Obj] = []

    async def start(self) -> None:
        import aiohttp

        self.queue = asyncio.Queue(self.cfg.buffer_size)
        connector = aiohttp.TCPConnector(ssl=self.ssl if self.ssl is not None else None)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
        self.task = asyncio.create_task(self._run(), name="audit-webhook")

    def process(self, event: Obj) -> bool:
        if self.queue is None or self._stopping:
            self.errors_total += 1
            return False
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.errors_total += 1
            log.error("audit webhook: buffer queue blocked, event dropped (%d dropped so far)", self.errors_total)
            return False
        self.events_total += 1
        return True

    async def _collect(self) -> list[Obj]:
        assert self.queue is not None
        batch = [await self.queue.get()]
        deadline = time.monotonic() + self.cfg.max_batch_wait
        while len(batch) < self.cfg.max_batch_size:
            left = deadline - time.monotonic()
            if left <= 0 or self._stopping and self.queue.empty():
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _throttle(self) -> None:
        if self.cfg.throttle_qps <= 0:
            return
        while True:
            now = time.monotonic()
            self._tokens = min(self.cfg.throttle_burst, self._tokens + (now - self._last) * self.cfg.throttle_qps)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) / self.cfg.throttle_qps)

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            self._inflight = batch
            await self._throttle()
            await self._send(batch)
            self._inflight = []

    async def _send(self, batch: list[Obj]) -> None:
        body = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": batch})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.kc.token:
            headers["Authorization"] = f"Bearer {self.kc.token}"
        delay = self.cfg.initial_backoff
        for attempt in range(self.cfg.retries + 1):
            try:
                async with self.session.post(self.kc.server, data=body, headers=headers,
                                             server_hostname=self.kc.tls_server_name) as r:
                    await r.read()
                    if r.status < 300:
                        self.delivered_total += len(batch)
                        return
                    retryable = r.status >= 500 or r.status == 429
                    err = f"HTTP {r.status}"
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any transport failure is retried
                retryable, err = True, f"{type(e).__name__}: {e}"
            if not retryable or attempt == self.cfg.retries or self._stopping:
                break
            await asyncio.sleep(delay * (1 + 0.1 * random.random()))
            delay *= 1.5
        self.errors_total += len(batch)
        log.error("audit webhook: failed to send %d events: %s", len(batch), err)

    async def shutdown(self) -> None:
        """Send what is queued (bounded time), then stop."""
        self._stopping = True
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self.queue is not None and self.session is not None:
            rest: list[Obj] = list(self._inflight)
            while not self.queue.empty():
                rest.append(self.queue.get_nowait())
            try:
                for i in range(0, len(rest), self.cfg.max_batch_size):
                    await asyncio.wait_for(self._send(rest[i:i + self.cfg.max_batch_size]), 10)
            except asyncio.TimeoutError:
                log.error("audit webhook: gave up flushing at shutdown")
        if self.session is not None:
            await self.session.close()
