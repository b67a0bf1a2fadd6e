"""Image GC on containerd: an image imported with `kyb images import` (air-gapped) is
never collected, nor is the image of a container or the pause image; an unused image
that is not recorded as imported is.  The filesystem figures are the one stand-in:
this machine's disk is not 85 % full, so the test reports it so."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fixtures.images import BUSYBOX_REF, write_busybox_archive
from fixtures.server import REPO
from kybernetes.cri import CRIClient, pb
from kybernetes.kubelet.containerd import agent_dir
from kybernetes.kubelet.image_gc import FsStats, ImageGCManager, ImageGCPolicy
from kybernetes.kubelet.images_airgap import airgap_images
from kybernetes.kubelet.images_import import import_archive
from kybernetes.kubelet.images_pause import PAUSE_IMAGE

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

AIRGAP = "localhost/kyb-test/airgap:1"
PULLED = "localhost/kyb-test/pulled:1"


async def test_image_gc_spares_airgap_imports(env, tmp_path):
    rt = env["rt"]
    kyb_dir = tmp_path / "kyb"
    write_busybox_archive(tmp_path / "airgap.tar", AIRGAP, marker="airgap")
    write_busybox_archive(tmp_path / "pulled.tar", PULLED, marker="pulled")
    r = subprocess.run([sys.executable, "-m", "kybernetes.cli.main", "images", "import", str(tmp_path / "airgap.tar"),
                        "--data-dir", str(kyb_dir), "--container-runtime-endpoint", rt.endpoint],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"imported {AIRGAP}" in r.stdout
    record_dir = agent_dir(kyb_dir) / "images"
    assert AIRGAP in airgap_images(record_dir)
    # an image that got here another way (as a pull would): not recorded
    await import_archive(rt.address, tmp_path / "pulled.tar")

    async with CRIClient(rt.endpoint) as cri:
        before = {t for i in await cri.list_images() for t in i.repo_tags}
        assert {AIRGAP, PULLED, BUSYBOX_REF, PAUSE_IMAGE} <= before
        # a container made from the busybox image (created, never started: still in use)
        sbx = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="gc", uid="gc-uid", namespace="default"),
            log_directory=str(rt.pod_log_root / "gc"),
            linux=pb.LinuxPodSandboxConfig(cgroup_parent=f"/{env['name']}/podgc"))
        (rt.pod_log_root / "gc").mkdir(parents=True, exist_ok=True)
        sid = await cri.run_pod_sandbox(sbx)
        await cri.create_container(sid, pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"),
                                                           image=pb.ImageSpec(image=BUSYBOX_REF),
                                                           command=["true"], log_path="c.log"), sbx)

        async def fs() -> FsStats:  # 90 % full, and removing PULLED would not change that
            return FsStats(1000 << 20, 100 << 20)
        gc = ImageGCManager(cri, policy=ImageGCPolicy(min_age=0), sandbox_image=PAUSE_IMAGE,
                            protected=lambda: airgap_images(record_dir), fs_stats=fs)
        with pytest.raises(Exception, match="Failed to garbage collect required amount of images"):
            await gc.garbage_collect()
        after = {t for i in await cri.list_images() for t in i.repo_tags}
        assert PULLED not in after
        assert {AIRGAP, BUSYBOX_REF, PAUSE_IMAGE} <= after
        await cri.stop_pod_sandbox(sid)
        await cri.remove_pod_sandbox(sid)
        await cri.remove_image(AIRGAP)
