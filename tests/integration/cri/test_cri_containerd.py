"""containerd from our config, driven through our CRI client: version/status, the
pause image, images (import, pull from local registries incl. auth), and a full
pod sandbox + container lifecycle with exec, stats, logs, resources, stop/remove."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from kybernetes.cri import CRIClient, CRINotFound, CRIError, pb
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.images_import import import_archive
from kybernetes.kubelet.images_pause import PAUSE_IMAGE

from cri_helpers import busybox_container, sandbox_config
from fixtures.images import BUSYBOX_REF, busybox_image, json_log_lines, write_busybox_archive


async def test_config_under_data_dir(node):
    cfg = node.rt.config_path.read_text()
    for needle in ("restrict_oom_score_adj = true", "netns_mounts_under_state_dir = true",
                   f'sandbox_image = "{PAUSE_IMAGE}"', 'bin_dir = "/usr/lib/cni"',
                   f'conf_dir = "{node.rt.cni_conf_dir}"', f'path = "{node.rt.opt}"',
                   f'Root = "{node.rt.runc_root}"', "SystemdCgroup = false"):
        assert needle in cfg, needle
    for p in (node.rt.root, node.rt.state, node.rt.opt, node.rt.socket):
        assert str(p).startswith(str(node.data_dir))
    assert not Path("/opt/containerd").exists() or Path("/opt/containerd").stat().st_mtime < node.rt.config_path.stat().st_mtime
    hosts = (node.rt.certs_dir / "docker.io" / "hosts.toml").read_text()
    assert "127.0.0.1:9" in hosts  # offline: the default registry is a dead loopback port
    assert cleanup.alive(node.rt.pid)


async def test_version_and_status(node):
    async with CRIClient(node.rt.endpoint) as cri:
        v = await cri.version()
        assert v.runtime_name == "containerd"
        assert v.runtime_api_version == "v1"
        assert v.runtime_version.startswith("1.6")
        conds = await cri.conditions()
        assert conds == {"RuntimeReady": True, "NetworkReady": True}
        st = await cri.status(verbose=True)
        assert "config" in st.info


async def test_pause_image_present(node):
    async with CRIClient(node.rt.endpoint) as cri:
        img = await cri.image_status(PAUSE_IMAGE)
        assert img is not None
        assert PAUSE_IMAGE in img.repo_tags
        assert img.size > 0
        fs = await cri.image_fs_info()
        # (usage numbers are sampled by containerd every few seconds; the place is what matters)
        assert fs.image_filesystems[0].fs_id.mountpoint.startswith(str(node.rt.root))


async def test_import_dir_and_archives(node, tmp_path):
    # The busybox archive dropped into data_dir/images was imported at start.
    assert BUSYBOX_REF in node.rt.imported_images()
    oci = write_busybox_archive(tmp_path / "b.oci.tar", "localhost/kyb-test/oci:1", marker="oci")
    docker = write_busybox_archive(tmp_path / "b.docker.tar", "localhost/kyb-test/docker:1", fmt="docker", marker="d")
    layout = write_busybox_archive(tmp_path / "layout", "localhost/kyb-test/layout:1", fmt="layout", marker="l")
    assert await import_archive(node.rt.address, oci) == ["localhost/kyb-test/oci:1"]
    assert await import_archive(node.rt.address, docker) == ["localhost/kyb-test/docker:1"]
    assert await import_archive(node.rt.address, layout) == ["localhost/kyb-test/layout:1"]
    async with CRIClient(node.rt.endpoint) as cri:
        for ref, kw in (("localhost/kyb-test/oci:1", {"marker": "oci"}), ("localhost/kyb-test/docker:1", {"marker": "d"}),
                        ("localhost/kyb-test/layout:1", {"marker": "l"})):
            for _ in range(100):
                img = await cri.image_status(ref)
                if img is not None:
                    break
                await asyncio.sleep(0.05)
            assert img is not None, ref
            assert img.id == busybox_image(**kw).image_id
        tags = {t for i in await cri.list_images() for t in i.repo_tags}
        assert {"localhost/kyb-test/oci:1", BUSYBOX_REF, PAUSE_IMAGE} <= tags
        await cri.remove_image("localhost/kyb-test/layout:1")
        assert await cri.image_status("localhost/kyb-test/layout:1") is None


async def test_pull_from_local_registry(node):
    ref = node.registry.push("kyb/busybox", "pull1", busybox_image(marker="pull1"))
    st, body = node.registry.manifest("kyb/busybox", "pull1")
    assert st == 200 and b"schemaVersion" in body
    async with CRIClient(node.rt.endpoint) as cri:
        image_ref = await cri.pull_image(ref)
        assert image_ref == busybox_image(marker="pull1").image_id
        img = await cri.image_status(ref)
        assert img is not None and ref in img.repo_tags
        assert any(d.startswith(f"{node.registry.host}/kyb/busybox@sha256:") for d in img.repo_digests)
        with pytest.raises(CRIError) as ei:
            await cri.pull_image(f"{node.registry.host}/kyb/busybox:no-such-tag")
        assert "not found" in str(ei.value).lower()


async def test_pull_with_auth(node):
    reg = node.auth_registry
    ref = reg.push("kyb/private", "v1", busybox_image(marker="private"))
    st, _ = reg.manifest("kyb/private", "v1")
    assert st == 401  # really protected
    user, password = node.auth_user
    async with CRIClient(node.rt.endpoint) as cri:
        with pytest.raises(CRIError) as ei:
            await cri.pull_image(ref)
        assert "401" in str(ei.value) or "unauthorized" in str(ei.value).lower()
        with pytest.raises(CRIError):
            await cri.pull_image(ref, auth={"username": user, "password": "wrong"})
        import base64
        auth = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode(), "server_address": reg.host}
        assert await cri.pull_image(ref, auth=auth) == busybox_image(marker="private").image_id


async def test_unqualified_pull_stays_local(node):
    """An image name without a registry resolves to docker.io, which `offline` points at
    127.0.0.1:9: the pull fails at once instead of going out."""
    async with CRIClient(node.rt.endpoint) as cri:
        t = time.monotonic()
        with pytest.raises(CRIError) as ei:
            await cri.pull_image("busybox:latest")
        assert time.monotonic() - t < 20
        assert "127.0.0.1:9" in str(ei.value)


async def test_errors_are_typed(node):
    async with CRIClient(node.rt.endpoint) as cri:
        with pytest.raises(CRINotFound):
            await cri.container_status("0" * 64)
        with pytest.raises(CRINotFound):
            await cri.pod_sandbox_status("no-such-sandbox")


@pytest.mark.slow
async def test_pod_lifecycle(node):
    sbx = sandbox_config(node, "lifecycle")
    uid = sbx.metadata.uid
    async with CRIClient(node.rt.endpoint) as cri:
        sid = await cri.run_pod_sandbox(sbx)
        try:
            st = await cri.pod_sandbox_status(sid)
            assert st.status.state == pb.SANDBOX_READY
            ip = st.status.network.ip
            assert ip.startswith("10.88.77."), ip
            assert [s.id for s in await cri.list_pod_sandbox(labels={"io.kubernetes.pod.uid": uid})] == [sid]
            # The pod network lives in the node's namespace, not on the host.
            assert subprocess.run(["ip", "-n", node.name, "link", "show", "kybtest0"], capture_output=True).returncode == 0
            assert subprocess.run(["ip", "link", "show", "kybtest0"], capture_output=True).returncode != 0
            routes = subprocess.run(["ip", "-n", node.name, "route"], capture_output=True, text=True).stdout
            assert "default" not in routes and "10.88.77.0/24" in routes

            script = ('trap "echo got TERM; exit 0" TERM; echo "$GREETING from stdout"; echo "to stderr" >&2; '
                      'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done')
            cfg = busybox_container("main", script, memory=64 << 20, cpu_shares=512)
            cid = await cri.create_container(sid, cfg, sbx)
            assert (await cri.container_status(cid)).status.state == pb.CONTAINER_CREATED
            await cri.start_container(cid)
            cs = (await cri.container_status(cid)).status
            assert cs.state == pb.CONTAINER_RUNNING
            assert cs.log_path == str(Path(sbx.log_directory) / "main/0.log")
            assert [c.id for c in await cri.list_containers(pod_sandbox_id=sid)] == [cid]
            assert [c.id for c in await cri.list_containers(state=pb.CONTAINER_RUNNING, labels={"io.kubernetes.container.name": "main"})] == [cid]

            r = await cri.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; hostname; exit 3"], timeout=10)
            assert r.stdout == b"out\nlifecycle\n"
            assert r.stderr == b"err\n"
            assert r.exit_code == 3
            r = await cri.exec_sync(cid, ["cat", "/marker"], timeout=10)
            assert r.exit_code != 0  # plain busybox image has no /marker
            r = await cri.exec_sync(cid, ["ip", "-4", "addr", "show", "eth0"], timeout=10)
            assert ip in r.stdout.decode()
            r = await cri.exec_sync(cid, ["ip", "route"], timeout=10)
            assert "default" not in r.stdout.decode()  # no route out of the cluster range

            for kind in ("exec", "attach", "port_forward"):
                if kind == "exec":
                    url = await cri.exec(cid, ["sh"], stdin=True, tty=True)
                elif kind == "attach":
                    url = await cri.attach(cid, stdin=False)
                else:
                    url = await cri.port_forward(sid, [80])
                assert url.startswith("http://127.0.0.1:"), url

            # Cgroup: memory limit and shares landed; update changes the limit.
            rel = f"{node.cgroup_parent(uid)}/{cid}".strip("/")
            mem = Path("/sys/fs/cgroup/memory") / rel
            cpu = Path("/sys/fs/cgroup/cpu") / rel
            assert int((mem / "memory.limit_in_bytes").read_text()) == 64 << 20
            assert int((cpu / "cpu.shares").read_text()) == 512
            await cri.update_container_resources(cid, pb.LinuxContainerResources(memory_limit_in_bytes=96 << 20, cpu_shares=256))
            assert int((mem / "memory.limit_in_bytes").read_text()) == 96 << 20
            assert int((cpu / "cpu.shares").read_text()) == 256

            # Stats: real numbers from the cgroup.
            await asyncio.sleep(0.5)
            s = await cri.container_stats(cid)
            assert s.attributes.id == cid
            assert s.cpu.usage_core_nano_seconds.value > 0
            assert s.memory.working_set_bytes.value > 0
            assert s.writable_layer.fs_id.mountpoint
            ls = await cri.list_container_stats(pod_sandbox_id=sid)
            assert [x.attributes.id for x in ls] == [cid]
            ps = await cri.pod_sandbox_stats(sid)
            assert ps.attributes.id == sid
            assert ps.linux.cpu.usage_core_nano_seconds.value > 0
            assert ps.linux.memory.working_set_bytes.value > 0
            assert any(c.attributes.id == cid for c in ps.linux.containers)
            assert sid in [x.attributes.id for x in await cri.list_pod_sandbox_stats()]

            # Logs: CRI format, both streams, written to the log path.
            log_path = Path(cs.log_path)
            deadline = time.monotonic() + 10
            while True:
                lines = json_log_lines(log_path) if log_path.exists() else []
                if any(m.startswith("tick 2") for *_, m in lines) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert ("stdout", "F", "hello from stdout") in [(s_, t, m) for _, s_, t, m in lines]
            assert ("stderr", "F", "to stderr") in [(s_, t, m) for _, s_, t, m in lines]
            assert lines[0][0][:4].isdigit() and "T" in lines[0][0]
            # Rotation: rename, reopen, new lines go to a fresh file.
            rotated = log_path.with_name("0.log.1")
            os.rename(log_path, rotated)
            await cri.reopen_container_log(cid)
            deadline = time.monotonic() + 10
            while not (log_path.exists() and any(m.startswith("tick") for *_, m in json_log_lines(log_path))):
                assert time.monotonic() < deadline, "no log lines after ReopenContainerLog"
                await asyncio.sleep(0.1)

            # Stop: TERM reaches the trap, the container exits 0 well within the grace period.
            t = time.monotonic()
            await cri.stop_container(cid, timeout=10)
            assert time.monotonic() - t < 5
            cs = (await cri.container_status(cid)).status
            assert cs.state == pb.CONTAINER_EXITED
            assert cs.exit_code == 0 and cs.reason == "Completed"
            assert cs.finished_at >= cs.started_at > 0
            assert "got TERM" in [m for *_, m in json_log_lines(log_path)]
            await cri.remove_container(cid)
            with pytest.raises(CRINotFound):
                await cri.container_status(cid)
            assert not cleanup.cgroup_dirs(f"{node.cgroup_parent(uid)}/{cid}")
        finally:
            await cri.stop_pod_sandbox(sid)
            await cri.remove_pod_sandbox(sid)
        with pytest.raises(CRINotFound):
            await cri.pod_sandbox_status(sid)
    # The pod's mounts (rootfs, shm, netns) are gone from the data dir; its cgroup
    # (the kubelet's pod cgroup) only has to be removed.
    assert not [m for m in cleanup.mounts_under(node.rt.dir) if sid in m]
    assert not list((node.rt.state / "io.containerd.grpc.v1.cri").rglob(f"*{sid}*"))
    assert not cleanup.remove_cgroup(node.cgroup_parent(uid))


@pytest.mark.slow
async def test_pod_exit_codes_and_oom(node):
    sbx = sandbox_config(node, "exits")
    async with CRIClient(node.rt.endpoint) as cri:
        sid = await cri.run_pod_sandbox(sbx)
        try:
            done = await cri.create_container(sid, busybox_container("done", "echo bye; exit 7"), sbx)
            oom = await cri.create_container(
                sid, busybox_container("oom", "head -c 64m /dev/zero | tail > /dev/null", memory=16 << 20), sbx)
            await cri.start_container(done)
            await cri.start_container(oom)
            deadline = time.monotonic() + 30
            states = {}
            while time.monotonic() < deadline:
                states = {c: (await cri.container_status(c)).status for c in (done, oom)}
                # containerd handles the task's exit and its OOM event separately: under load the
                # exit lands first ("Error") and the OOM event then rewrites the reason
                if all(s.state == pb.CONTAINER_EXITED for s in states.values()) and \
                        states[oom].reason == "OOMKilled":
                    break
                await asyncio.sleep(0.1)
            assert states[done].exit_code == 7 and states[done].reason == "Error"
            assert states[oom].reason == "OOMKilled", states[oom]
        finally:
            await cri.stop_pod_sandbox(sid)
            await cri.remove_pod_sandbox(sid)
    assert not cleanup.remove_cgroup(node.cgroup_parent(sbx.metadata.uid))


def _stream_exec(url: str) -> dict:
    """Read a v4.channel.k8s.io exec stream to the end (runs inside the node's netns,
    where containerd's stream server listens on 127.0.0.1)."""
    import json

    import websocket

    ws = websocket.create_connection("ws" + url[len("http"):], subprotocols=["v4.channel.k8s.io"], timeout=20,
                                     http_no_proxy=["127.0.0.1"])
    out: dict = {1: b"", 2: b"", 3: b""}
    try:
        while True:
            try:
                frame = ws.recv()
            except websocket.WebSocketConnectionClosedException:
                break
            if not frame:
                break
            if isinstance(frame, str):
                frame = frame.encode()
            out[frame[0]] = out.get(frame[0], b"") + frame[1:]
    finally:
        ws.close()
    return {"stdout": out[1], "stderr": out[2], "status": json.loads(out[3]) if out[3] else None}


@pytest.mark.slow
async def test_exec_stream(node):
    from kybernetes.kubelet.runtime_netns import run_in_netns

    sbx = sandbox_config(node, "stream")
    async with CRIClient(node.rt.endpoint) as cri:
        sid = await cri.run_pod_sandbox(sbx)
        try:
            cid = await cri.create_container(sid, busybox_container("c", "while true; do sleep 1; done"), sbx)
            await cri.start_container(cid)
            url = await cri.exec(cid, ["sh", "-c", "echo streamed; echo oops >&2; exit 2"])
            res = await asyncio.to_thread(run_in_netns, node.netns, _stream_exec, url)
            assert res["stdout"] == b"streamed\n" and res["stderr"] == b"oops\n"
            assert res["status"]["status"] == "Failure"
            assert res["status"]["details"]["causes"][0]["message"] == "2"
        finally:
            await cri.stop_pod_sandbox(sid)
            await cri.remove_pod_sandbox(sid)
    assert not cleanup.remove_cgroup(node.cgroup_parent(sbx.metadata.uid))
