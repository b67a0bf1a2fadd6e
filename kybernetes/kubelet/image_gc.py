"""Image garbage collection (upstream pkg/kubelet/images/image_gc_manager.go): when the
image filesystem is `high_threshold` percent full or more, remove unused images, least
recently used first, until usage is back at `low_threshold` percent.

Never removed: images a container (running or exited) uses, the pause image, images the
runtime pins, images younger than `min_age` on this node, and images imported for
air-gapped use (images_airgap) — an air-gapped node cannot pull them back.

`detect()` runs every `detect_period` to learn when each image was last used (the CRI has
no image events); `garbage_collect()` runs every `gc_period` (upstream: 5 minutes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from kybernetes.cri import CRIError
from kybernetes.kubelet.background import BackgroundLoop

log = logging.getLogger("kybernetes.kubelet.imagegc")

HIGH_THRESHOLD = 85     # --image-gc-high-threshold
LOW_THRESHOLD = 80      # --image-gc-low-threshold
MIN_AGE = 120.0         # --image-minimum-gc-age (2m)
GC_PERIOD = 300.0       # upstream ImageGCPeriod
DETECT_PERIOD = 30.0


class ImageGCError(Exception):
    pass


@dataclass
class ImageGCPolicy:
    high_threshold: int = HIGH_THRESHOLD
    low_threshold: int = LOW_THRESHOLD
    min_age: float = MIN_AGE

    def validate(self) -> None:
        """Upstream's checks (the kubelet refuses to start otherwise)."""
        if not 0 <= self.high_threshold <= 100:
            raise ValueError(f"invalid HighThresholdPercent {self.high_threshold}, must be in range [0-100]")
        if not 0 <= self.low_threshold <= 100:
            raise ValueError(f"invalid LowThresholdPercent {self.low_threshold}, must be in range [0-100]")
        if self.low_threshold > self.high_threshold:
            raise ValueError(f"LowThresholdPercent {self.low_threshold} can not be higher than "
                             f"HighThresholdPercent {self.high_threshold}")


@dataclass
class ImageRecord:
    first_detected: float
    last_used: float
    size: int


@dataclass
class FsStats:
    capacity: int
    available: int


def _names(img) -> set[str]:
    return {img.id, *img.repo_tags, *img.repo_digests}


class ImageGCManager(BackgroundLoop):
    def __init__(self, cri, *, policy: Optional[ImageGCPolicy] = None, sandbox_image: str = "",
                 protected: Callable[[], Iterable[str]] = lambda: (), fs_stats=None,
                 clock: Callable[[], float] = time.monotonic, on_failure: Optional[Callable[[str], None]] = None,
                 gc_period: float = GC_PERIOD, detect_period: float = DETECT_PERIOD):
        """`protected()` names images never to remove (the air-gapped record);
        `fs_stats()` (async) gives the image filesystem's capacity and free bytes, by
        default from the runtime's ImageFsInfo mount point."""
        self.cri = cri
        self.policy = policy or ImageGCPolicy()
        self.policy.validate()
        self.sandbox_image = sandbox_image
        self.protected = protected
        self.fs_stats = fs_stats or self._runtime_fs_stats
        self.clock = clock
        self.on_failure = on_failure
        self.gc_period = gc_period
        self.detect_period = detect_period
        self.records: dict[str, ImageRecord] = {}  # image id -> record
        self._lock = asyncio.Lock()

    async def _runtime_fs_stats(self) -> FsStats:
        info = await self.cri.image_fs_info()
        if not info.image_filesystems:
            raise ImageGCError("the runtime reports no image filesystem")
        st = await asyncio.to_thread(os.statvfs, info.image_filesystems[0].fs_id.mountpoint)
        return FsStats(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)

    async def in_use(self) -> set[str]:
        """Image ids and names that some container (in any state) was created from."""
        used: set[str] = set()
        for c in await self.cri.list_containers():
            used.update(x for x in (c.image_ref, c.image_id, c.image.image) if x)
        return used

    async def detect(self) -> tuple[list, set[str]]:
        """Refresh the records: new images are first seen now, used ones used now,
        vanished ones forgotten.  Returns (images, ids in use)."""
        now = self.clock()
        images = await self.cri.list_images()
        used_names = await self.in_use()
        used: set[str] = set()
        for img in images:
            rec = self.records.get(img.id)
            if rec is None:
                rec = self.records[img.id] = ImageRecord(now, 0.0, img.size)
            rec.size = img.size
            if _names(img) & used_names:
                rec.last_used = now
                used.add(img.id)
        present = {img.id for img in images}
        for gone in [i for i in self.records if i not in present]:
            del self.records[gone]
        return images, used

    async def garbage_collect(self) -> int:
        """One pass: free space if the image filesystem is over the high threshold.
        Returns the bytes freed; raises ImageGCError when it could not free enough."""
        async with self._lock:
            fs = await self.fs_stats()
            if fs.capacity <= 0:
                return 0
            available = min(fs.available, fs.capacity)
            usage = 100 - available * 100 // fs.capacity
            if usage < self.policy.high_threshold:
                return 0
            to_free = fs.capacity * (100 - self.policy.low_threshold) // 100 - available
            log.info("image filesystem at %d%% (high threshold %d%%): freeing %d bytes down to %d%%", usage,
                     self.policy.high_threshold, to_free, self.policy.low_threshold)
            freed = await self._free_space(to_free)
            if freed < to_free:
                msg = (f"Failed to garbage collect required amount of images. Attempted to free {to_free} bytes, "
                       f"but only found {freed} bytes eligible to free.")
                if self.on_failure is not None:
                    self.on_failure(msg)
                raise ImageGCError(msg)
            return freed

    def _protected(self, img) -> Optional[str]:
        names = _names(img)
        if img.pinned:
            return "pinned"
        if self.sandbox_image and self.sandbox_image in names:
            return "sandbox image"
        if names & set(self.protected()):
            return "imported for air-gapped use"
        return None

    async def _free_space(self, to_free: int) -> int:
        images, used = await self.detect()
        now = self.clock()
        candidates = []
        for img in images:
            if img.id in used:
                continue
            why = self._protected(img)
            if why:
                log.debug("image %s kept: %s", img.id[:19], why)
                continue
            candidates.append((self.records[img.id], img))
        # least recently used first; never-used ones by when they were first seen
        candidates.sort(key=lambda ri: (ri[0].last_used, ri[0].first_detected))
        freed = 0
        for rec, img in candidates:
            if freed >= to_free:
                break
            if now - rec.first_detected < self.policy.min_age:
                continue
            try:
                await self.cri.remove_image(img.id)
            except CRIError as e:
                log.warning("removing image %s: %s", img.id[:19], e)
                continue
            log.info("removed image %s (%s, %d bytes)", ", ".join(img.repo_tags) or img.id[:19], img.id[:19],
                     img.size)
            self.records.pop(img.id, None)
            freed += img.size
        return freed

    async def _run(self) -> None:
        last_gc = self.clock()
        while True:
            try:
                await self.detect()
                if self.clock() - last_gc >= self.gc_period:
                    last_gc = self.clock()
                    await self.garbage_collect()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - next period tries again
                log.warning("image garbage collection: %s", e)
            await asyncio.sleep(self.detect_period)
