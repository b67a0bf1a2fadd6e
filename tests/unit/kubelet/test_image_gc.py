"""Image GC against a fake image service: thresholds, LRU order, minimum age, and the
images it must never remove (in use, sandbox, pinned, air-gapped imports)."""

from __future__ import annotations

import pytest

from kybernetes.cri import CRIError, pb
from kybernetes.kubelet.image_gc import FsStats, ImageGCError, ImageGCManager, ImageGCPolicy
from kybernetes.kubelet.images_airgap import airgap_images, record_airgap_images

MB = 1 << 20


class FakeImages:
    """The CRI calls image GC makes, over an in-memory image store whose removals free
    their size on a fake filesystem of `capacity` bytes."""

    def __init__(self, capacity: int = 1000 * MB):
        self.images: dict[str, pb.Image] = {}
        self.containers: list[pb.Container] = []
        self.capacity = capacity
        self.other_used = 0
        self.removed: list[str] = []
        self.fail_remove: set[str] = set()

    def add(self, ref: str, size_mb: int, pinned: bool = False) -> str:
        iid = "sha256:" + ref.encode().hex().ljust(64, "0")[:64]
        self.images[iid] = pb.Image(id=iid, repo_tags=[ref], repo_digests=[ref.split(":")[0] + "@sha256:" + "ab" * 32],
                                    size=size_mb * MB, pinned=pinned)
        return iid

    def use(self, ref: str, by_id: bool = False) -> None:
        img = next(i for i in self.images.values() if ref in i.repo_tags)
        self.containers.append(pb.Container(id=f"c{len(self.containers)}", image=pb.ImageSpec(image="" if by_id else ref),
                                            image_ref=img.id if by_id else "", state=pb.CONTAINER_EXITED))

    async def list_images(self):
        return list(self.images.values())

    async def list_containers(self):
        return list(self.containers)

    async def remove_image(self, iid):
        if iid in self.fail_remove:
            raise CRIError("RemoveImage", None, "boom", "fake")
        self.removed.append(next(iter(self.images[iid].repo_tags)))
        del self.images[iid]

    async def fs(self) -> FsStats:
        used = self.other_used + sum(i.size for i in self.images.values())
        return FsStats(self.capacity, self.capacity - used)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def manager(fake, clock, protected=(), **policy):
    return ImageGCManager(fake, policy=ImageGCPolicy(**policy), sandbox_image="localhost/kybernetes/pause:1",
                          protected=lambda: protected, fs_stats=fake.fs, clock=clock)


async def test_below_high_threshold_nothing_is_removed():
    fake, clock = FakeImages(), Clock()
    fake.add("a:1", 100)
    fake.other_used = 740 * MB  # 84 % used
    gc = manager(fake, clock)
    await gc.detect()
    clock.t += 3600
    assert await gc.garbage_collect() == 0
    assert fake.removed == []


async def test_lru_down_to_low_threshold_sparing_protected_images():
    fake, clock = FakeImages(), Clock()
    fake.add("localhost/kybernetes/pause:1", 10)  # sandbox image
    fake.add("pinned:1", 10, pinned=True)
    fake.add("airgap/app:1", 100)
    fake.add("old:1", 100)
    fake.add("mid:1", 100)
    fake.add("new:1", 100)
    fake.add("running:1", 100)
    fake.other_used = 400 * MB  # 92 % used
    gc = manager(fake, clock, protected={"airgap/app:1"})
    # use history: old last used first, then mid, then new; running is in use now (by id)
    for ref in ("old:1", "mid:1", "new:1"):
        fake.use(ref)
        await gc.detect()
        fake.containers.clear()
        clock.t += 60
    fake.use("running:1", by_id=True)
    clock.t += 600
    # 92 % -> 80 %: at least 120 MB to free: the two least recently used images go
    freed = await gc.garbage_collect()
    assert fake.removed == ["old:1", "mid:1"] and freed == 200 * MB
    assert {"localhost/kybernetes/pause:1", "pinned:1", "airgap/app:1", "running:1", "new:1"} == \
        {t for i in fake.images.values() for t in i.repo_tags}


async def test_never_used_images_go_oldest_first_after_min_age():
    fake, clock = FakeImages(), Clock()
    fake.add("first:1", 100)
    gc = manager(fake, clock)
    await gc.detect()
    clock.t += 200
    fake.add("second:1", 100)
    fake.other_used = 750 * MB  # 95 %
    await gc.detect()
    clock.t += 60  # second is only 60 s old (minimum age 2m)
    with pytest.raises(ImageGCError, match=r"^Failed to garbage collect required amount of images. "
                                           r"Attempted to free 157286400 bytes, but only found 104857600 bytes "
                                           r"eligible to free.$"):
        await gc.garbage_collect()
    assert fake.removed == ["first:1"]
    clock.t += 120
    assert await gc.garbage_collect() == 100 * MB
    assert fake.removed == ["first:1", "second:1"]


async def test_a_failed_removal_moves_on_to_the_next_image():
    fake, clock = FakeImages(), Clock()
    bad = fake.add("bad:1", 100)
    fake.add("good:1", 100)
    fake.other_used = 750 * MB
    fake.fail_remove.add(bad)
    gc = manager(fake, clock, min_age=0)
    await gc.detect()
    with pytest.raises(ImageGCError):
        await gc.garbage_collect()
    assert fake.removed == ["good:1"]


def test_policy_validation():
    with pytest.raises(ValueError, match="can not be higher than HighThresholdPercent"):
        ImageGCPolicy(80, 85).validate()
    with pytest.raises(ValueError, match=r"must be in range \[0-100\]"):
        ImageGCPolicy(101, 80).validate()
    ImageGCPolicy().validate()


def test_airgap_record_accumulates(tmp_path):
    assert airgap_images(tmp_path) == set()
    record_airgap_images(tmp_path, ["docker.io/library/a:1"])
    record_airgap_images(tmp_path, ["localhost/b:2", "docker.io/library/a:1"])
    assert airgap_images(tmp_path) == {"docker.io/library/a:1", "localhost/b:2"}
    (tmp_path / ".imported.json").write_text("not json")
    assert airgap_images(tmp_path) == set()
