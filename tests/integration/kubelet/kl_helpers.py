"""Helpers of the kubelet suites."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import select
import subprocess
import time


async def wait_for(fn, timeout=60.0, interval=0.2):
    """Poll `fn` (pod state inside containerd has no watch) until truthy, with a deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s; last={last!r}")


async def pod_events(client, name, namespace="default"):
    """(type, reason, message, fieldPath, count) of the events about one pod."""
    evs = await client.resource("", "v1", "events", namespaced=True).list(namespace)
    return [(e["type"], e["reason"], e["message"], e["involvedObject"].get("fieldPath", ""), e.get("count"))
            for e in evs["items"] if e["involvedObject"].get("name") == name
            and e["involvedObject"].get("kind") == "Pod"]


@contextlib.asynccontextmanager
async def serving_kubelet(env, tmp_path, node_name):
    """A kubelet for `node_name` with its HTTPS server on a free loopback port (serving cert
    from the cluster CA), on the suite's containerd; yields (client, kubelet, pods handle,
    names). Pods whose names the test appends to `names` are deleted afterwards, and the
    kubelet stops only once their sandboxes are gone."""
    from kybernetes.client import Client
    from kybernetes.kubelet.kubelet import Kubelet
    from kybernetes.kubelet.server.app import ca_issued_cert

    srv, rt = env["srv"], env["rt"]
    tls = srv.data_dir / "tls"
    async with Client.from_kubeconfig(srv.kubeconfig) as cl:
        kl = Kubelet(cl, rt.endpoint, node_name=node_name, data_dir=env["data_dir"], node_ip="127.0.0.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"],
                     cert_source=ca_issued_cert(tls, tmp_path / "kl-tls", node_name, ["127.0.0.1"]),
                     client_ca=tls / "ca.crt", server_address="127.0.0.1", server_port=0,
                     runtime_netns=rt.netns)
        await kl.start()
        pods = cl.resource("", "v1", "pods", namespaced=True)
        names: list[str] = []
        try:
            yield cl, kl, pods, names
        finally:
            for n in names:
                try:
                    await pods.delete(n, "default", grace_period_seconds=0)
                except Exception:
                    pass

            await drain_and_stop(kl)


async def drain_and_stop(kl, namespace="default", timeout=60.0, stop=True):
    """Wait until the kubelet has removed every pod sandbox of `namespace` (after the test
    deleted its pods), then stop it (`stop`), also when the wait fails."""
    async def none_left():
        return not await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.namespace": namespace})
    try:
        await wait_for(none_left, timeout)
    finally:
        if stop:
            await kl.stop()


def on_pty(argv, send: bytes, until: bytes, after: bytes = b"/dev/pts/", timeout: float = 30) -> bytes:
    """Run `argv` on a pseudo-terminal (kubectl -t needs a real tty), type `send` once
    `after` shows up, and read what it prints until `until` does or the deadline passes."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        sent = False
        while until not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break
            if not sent and after in out:
                os.write(master, send)
                sent = True
        return out
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
