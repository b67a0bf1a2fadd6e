"""Supervision of containerd: stop removes everything it started, pods survive a
containerd restart when asked to, a stale containerd is replaced, an existing
socket is used as is, and `kyb images` imports into the running containerd."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kybernetes.cri import CRIClient, pb
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.containerd import ContainerdError, ContainerdProcess, ExternalRuntime, agent_dir

from cri_helpers import busybox_container, sandbox_config, start_node, stop_node
from fixtures.images import write_busybox_archive

REPO = Path(__file__).resolve().parents[3]


async def _run_pod(node, name: str) -> tuple[str, str, pb.PodSandboxConfig]:
    sbx = sandbox_config(node, name)
    async with CRIClient(node.rt.endpoint) as cri:
        sid = await cri.run_pod_sandbox(sbx)
        cid = await cri.create_container(sid, busybox_container("c", "while true; do sleep 1; done"), sbx)
        await cri.start_container(cid)
    return sid, cid, sbx


@pytest.mark.slow
def test_stop_removes_everything(tmp_path_factory):
    node = start_node(tmp_path_factory, "stop")
    try:
        sid, cid, sbx = asyncio.run(_run_pod(node, "doomed"))
        rt = node.rt
        shims = cleanup.shim_pids(rt.address)
        assert shims, "a shim serves the pod"
        workload = [p for s in shims for p in cleanup.descendants(s)]
        assert workload
        assert any(sid in m for m in cleanup.mounts_under(rt.dir))
        pid = rt.pid
        asyncio.run(rt.stop())
        assert rt.proc.returncode is not None  # reaped
        assert not cleanup.alive(pid)
        assert not cleanup.shim_pids(rt.address)
        assert not [p for p in [*shims, *workload] if cleanup.alive(p)]
        assert cleanup.mounts_under(node.data_dir) == []
        assert not rt.socket.exists()
        assert not rt.pid_path.exists()
        # runc removed the container cgroups; only the (kubelet-owned) pod cgroup is left to remove.
        assert not cleanup.cgroup_dirs(f"{node.cgroup_parent(sbx.metadata.uid)}/{cid}")
        assert cleanup.remove_cgroup(node.cgroup_root) == []
    finally:
        stop_node(node)
    assert not node.netns.exists()
    assert cleanup.mounts_under(node.data_dir) == []


@pytest.mark.slow
def test_pods_survive_containerd_restart(tmp_path_factory):
    node = start_node(tmp_path_factory, "restart")
    try:
        sid, cid, _ = asyncio.run(_run_pod(node, "survivor"))
        old_pid = node.rt.pid
        asyncio.run(node.rt.stop(remove_pods=False))
        assert not cleanup.alive(old_pid)
        assert cleanup.shim_pids(node.rt.address), "the shim outlives containerd"

        node.rt = ContainerdProcess(node.rt.data_dir, netns=node.netns, offline=True)

        async def check() -> None:
            await node.rt.start()
            async with CRIClient(node.rt.endpoint) as cri:
                [s] = await cri.list_pod_sandbox()
                assert s.id == sid and s.state == pb.SANDBOX_READY
                st = (await cri.container_status(cid)).status
                assert st.state == pb.CONTAINER_RUNNING
                r = await cri.exec_sync(cid, ["echo", "still here"], timeout=10)
                assert r.stdout == b"still here\n"

        asyncio.run(check())
    finally:
        stop_node(node)
    assert cleanup.mounts_under(node.data_dir) == []


def test_stale_containerd_is_replaced(tmp_path_factory):
    node = start_node(tmp_path_factory, "stale")
    try:
        first = node.rt
        second = ContainerdProcess(first.data_dir, netns=node.netns, offline=True)
        asyncio.run(second.start())
        first.proc.wait(10)  # the first one was terminated by PID (and is reaped here)
        assert second.pid != first.pid and cleanup.alive(second.pid)
        node.rt = second
    finally:
        stop_node(node)


def test_start_failure_is_reported(tmp_path):
    rt = ContainerdProcess(tmp_path / "d", containerd_bin="no-such-containerd")
    with pytest.raises(ContainerdError, match="not found"):
        asyncio.run(rt.start())
    rt = ContainerdProcess(tmp_path / ("x" * 120))
    with pytest.raises(ContainerdError, match="longer than"):
        rt.write_config()


def test_external_runtime_and_cli(tmp_path_factory, tmp_path):
    node = start_node(tmp_path_factory, "ext")
    try:
        async def external() -> None:
            ext = ExternalRuntime(node.rt.endpoint)
            async with ext:
                assert ext.version.startswith("1.6")
            assert node.rt.running()  # stop() left it alone

        asyncio.run(external())

        archive = write_busybox_archive(tmp_path / "cli.tar", "localhost/kyb-test/cli:1", marker="cli")
        docker = write_busybox_archive(tmp_path / "cli.docker.tar", "localhost/kyb-test/cli-docker:1",
                                       fmt="docker", marker="cli-d")
        env = {k: v for k, v in os.environ.items() if k != "KYB_DATA_DIR"}
        cmd = [sys.executable, "-m", "kybernetes.cli.images"]
        r = subprocess.run([*cmd, "import", str(archive), str(docker),
                            "--container-runtime-endpoint", node.rt.endpoint],
                           capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "imported localhost/kyb-test/cli:1" in r.stdout
        assert "imported localhost/kyb-test/cli-docker:1" in r.stdout
        r = subprocess.run([*cmd, "--container-runtime-endpoint", node.rt.endpoint, "list"],
                           capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "localhost/kyb-test/cli:1" in r.stdout and "localhost/kybernetes/pause" in r.stdout

        # No containerd for this data dir: the archive is staged for the next start.
        dd = tmp_path / "kyb"
        r = subprocess.run([*cmd, "import", "--data-dir", str(dd), str(archive)],
                           capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert (agent_dir(dd) / "images" / "cli.tar").exists()
        r = subprocess.run([*cmd, "import", str(tmp_path / "missing.tar")],
                           capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
        assert r.returncode == 1 and "no such file" in r.stderr
    finally:
        stop_node(node)
