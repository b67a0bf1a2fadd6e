"""Audit backends: the interface, the union, and the log backend (upstream
plugin/pkg/audit/log).  The webhook backend and the batching in front of it live in
``webhook.py`` and ``buffered.py``.

A backend's ``process(event)`` never blocks the event loop: the log backend hands
serialized lines to a writer thread.  A backend that has to wait (the webhook in a
blocking mode) implements ``process_async``; the audit filter always awaits that.
``process_async`` answers False only when the request must fail (blocking-strict)."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import orjson

log = logging.getLogger("kybernetes.audit")

Obj = dict[str, Any]


MODE_BATCH, MODE_BLOCKING, MODE_BLOCKING_STRICT = "batch", "blocking", "blocking-strict"
ALLOWED_MODES = (MODE_BATCH, MODE_BLOCKING, MODE_BLOCKING_STRICT)


class Backend:
    name = "backend"

    def __init__(self) -> None:
        self.events_total = 0   # events accepted by this backend
        self.errors_total = 0   # apiserver_audit_error_total{plugin=<name>}: events lost here

    def process(self, event: Obj) -> bool:
        raise NotImplementedError

    async def process_async(self, event: Obj) -> bool:
        return self.process(event)

    def error_counts(self) -> dict[str, int]:
        """apiserver_audit_error_total by plugin, for this backend and what it wraps."""
        out = {self.name: self.errors_total}
        inner = getattr(self, "delegate", None)
        if isinstance(inner, Backend):
            for k, v in inner.error_counts().items():
                out[k] = out.get(k, 0) + v
        return out

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

    async def process_async(self, event: Obj) -> bool:
        ok = True
        for b in self.backends:
            ok = await b.process_async(event) and ok
        return ok

    def error_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b in self.backends:
            for k, v in b.error_counts().items():
                out[k] = out.get(k, 0) + v
        return out

    async def start(self) -> None:
        for b in self.backends:
            await b.start()

    async def shutdown(self) -> None:
        for b in self.backends:
            await b.shutdown()


def plugin_error(backend: Backend, err: str, events: Iterable[Obj]) -> None:
    """upstream audit.HandlePluginError: count the lost events and log them."""
    events = list(events)
    backend.errors_total += len(events)
    log.error("Error in audit plugin '%s' affecting %d audit events: %s (audit IDs: %s)", backend.name, len(events),
              err, ", ".join(str(e.get("auditID", "")) for e in events[:10]))


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
