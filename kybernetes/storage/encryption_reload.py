"""`--encryption-provider-config-automatic-reload`: swap the encryption transformers when
the configuration file's content changes, without a restart.

As upstream's encryption config controller: the file is polled (once a minute by
default) and its SHA-256 content hash compared with the last one loaded; a changed file
is parsed and its transformers built, and only a fully valid configuration replaces the
current one.  An invalid file keeps the old configuration in force, is logged as
`error processing encryption config file <path>: <reason>`, counts as a failed reload in
the `apiserver_encryption_config_controller_automatic_reloads_total{status="failure"}`
counter, and is retried on the next poll.  Reads and writes in flight keep the
transformers they started with; the next one uses the new set.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path
from typing import Callable, Optional, Union

from .encryption import (
    EncryptionConfigError,
    EncryptionTransformers,
    parse_encryption_config,
)

log = logging.getLogger("kybernetes.encryption")

POLL_INTERVAL = 60.0  # upstream's EncryptionConfigFileChangePollDuration
METRIC_RELOADS = "apiserver_encryption_config_controller_automatic_reloads_total"
METRIC_LAST_TIMESTAMP = "apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_config(path: Union[str, Path]) -> tuple[EncryptionTransformers, str]:
    """Transformers and content hash of the file at `path` (EncryptionConfigError if invalid)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise EncryptionConfigError(
            f'error while parsing file: error while loading file: error reading encryption provider '
            f'configuration file "{path}": {e.strerror}') from None
    if not data.strip():
        raise EncryptionConfigError(
            f'error while parsing file: error while loading file: encryption provider configuration file "{path}" is empty')
    return EncryptionTransformers(parse_encryption_config(data, str(path))), content_hash(data)


def _close_later(kms, delay: float = 10.0) -> None:
    import threading

    t = threading.Timer(delay, kms.close)
    t.daemon = True
    t.start()


class DynamicTransformers:
    """EncryptionTransformers that can be replaced while the server runs.  Every call
    resolves the current set, so ObjectStore and rewrite_all use it unchanged."""

    def __init__(self, current: EncryptionTransformers) -> None:
        self.current = current

    def set(self, transformers: EncryptionTransformers) -> None:
        old, self.current = self.current, transformers
        for kms in old.kms_providers():
            if kms not in transformers.kms_providers():
                # reads that began on the old set may still need its plugin: close a little later
                _close_later(kms)

    def kms_providers(self) -> list:
        return self.current.kms_providers()

    def encode(self, key: str, data: bytes) -> bytes:
        return self.current.encode(key, data)

    def decode(self, key: str, stored: bytes) -> bytes:
        return self.current.decode(key, stored)

    def decode_with_staleness(self, key: str, stored: bytes) -> tuple[bytes, bool]:
        return self.current.decode_with_staleness(key, stored)

    def is_stale(self, key: str, stored: bytes) -> bool:
        return self.current.is_stale(key, stored)

    def hook(self) -> tuple[Callable[[str, bytes], bytes], Callable[[str, bytes], bytes]]:
        """The Transformer pair for ObjectStore(store, transformer=...)."""
        return self.encode, self.decode


class EncryptionConfigReloader:
    """Polls the configuration file and swaps `transformers.current` when it changes."""

    def __init__(self, path: Union[str, Path], transformers: DynamicTransformers, loaded_hash: str, *,
                 interval: float = POLL_INTERVAL, apiserver_id: str = "") -> None:
        self.path = str(path)
        self.transformers = transformers
        self.loaded_hash = loaded_hash
        self.interval = interval
        self.apiserver_id_hash = "sha256:" + hashlib.sha256(apiserver_id.encode()).hexdigest()
        self.reloads = {"success": 0, "failure": 0}
        self.last_timestamp: dict[str, float] = {}
        self.last_error = ""
        self._task: Optional[asyncio.Task] = None
        self.checked = asyncio.Event()  # set after every poll (tests wait on it)

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        """(name, labels, value) samples, upstream's metric names and labels."""
        out = []
        for status, n in self.reloads.items():
            labels = {"apiserver_id_hash": self.apiserver_id_hash, "status": status}
            out.append((METRIC_RELOADS, labels, float(n)))
            if status in self.last_timestamp:
                out.append((METRIC_LAST_TIMESTAMP, labels, self.last_timestamp[status]))
        return out

    async def check(self) -> bool:
        """One poll: True when a new configuration was put in force."""
        try:
            try:
                data = await asyncio.to_thread(Path(self.path).read_bytes)
            except OSError:
                data = None  # read_config reports it in upstream's words
            if data is not None and content_hash(data) == self.loaded_hash:
                return False
            new, digest = await asyncio.to_thread(read_config, self.path)
            if digest == self.loaded_hash:  # changed back between the two reads
                return False
        except Exception as e:  # noqa: BLE001 - a bad file must never stop the server
            self.reloads["failure"] += 1
            self.last_timestamp["failure"] = time.time()
            self.last_error = str(e)
            log.error("error processing encryption config file %s: %s", self.path, e)
            return False
        finally:
            self.checked.set()
        self.transformers.set(new)
        self.loaded_hash = digest
        self.reloads["success"] += 1
        self.last_timestamp["success"] = time.time()
        self.last_error = ""
        log.info("loaded new encryption config content from %s (sha256 %s)", self.path, digest[:12])
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="encryption-config-reload")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    async def stop(self) -> None:
        t, self._task = self._task, None
        if t is not None:
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass


def automatic_reload(path: Union[str, Path], *, interval: float = POLL_INTERVAL,
                     apiserver_id: str = "") -> tuple[DynamicTransformers, EncryptionConfigReloader]:
    """Load `path` (raising EncryptionConfigError if invalid: a bad file stops start-up,
    as without reload) and a reloader for it; call `reloader.start()` in the event loop."""
    transformers, digest = read_config(path)
    dynamic = DynamicTransformers(transformers)
    return dynamic, EncryptionConfigReloader(path, dynamic, digest, interval=interval, apiserver_id=apiserver_id)
