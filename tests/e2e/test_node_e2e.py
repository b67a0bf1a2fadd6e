"""The whole node, end to end: a real `kyb server` with its node agent (containerd + kubelet)
inside a network namespace this test creates (loopback only, no uplink: no packet can leave
the machine), driven with the real kubectl.  The node registers with a realistic status, a
Deployment's pods are scheduled and run, logs and exec work, and SIGTERM to the server
removes everything it started: processes, runc containers, mounts, pod cgroups, links.

The server runs under `nsenter --net` (network namespace only) rather than `ip netns exec`,
which also unshares the mount namespace: the rootfs and volume mounts the node makes must
stay visible in this process's /proc/self/mountinfo for the cleanup check to mean anything.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from fixtures.images import BUSYBOX_REF, write_busybox_archive
from fixtures.server import KUBECTL, REPO
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet.qos_cgroups import pod_cgroup

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs containerd, runc and a network namespace: needs root"),
    pytest.mark.skipif(not all(shutil.which(b) for b in ("ip", "nsenter", "containerd", "runc")),
                       reason="needs iproute2, util-linux nsenter, containerd and runc"),
]

NODE = "kyb-e2e-node"
PORT = 6443  # the namespace is fresh: nothing else listens in it

DEPLOYMENT = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: hello}}}}
  template:
    metadata: {{labels: {{app: hello}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: main
        image: {BUSYBOX_REF}
        imagePullPolicy: Never
        command: ["sh", "-c", "trap 'exit 0' TERM; echo hello-from-$(hostname); while true; do sleep 1; done"]
"""

LOCAL_PV = """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: local-storage}}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: local-pv}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local-storage
  local: {{path: {path}}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - {{key: kubernetes.io/hostname, operator: In, values: [{node}]}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: default}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: local-storage
  resources: {{requests: {{storage: 512Mi}}}}
"""

WRITER = f"""
apiVersion: v1
kind: Pod
metadata: {{name: writer, namespace: default}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {BUSYBOX_REF}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo persisted-$(hostname) > /data/out.txt; trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: data}}}}]
"""


def _run(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


class Node:
    """The server process in the test's namespace and kubectl run inside that namespace."""

    def __init__(self, netns: str, data_dir: Path):
        self.netns = netns
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None

    @property
    def nsenter(self) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}"]

    def start(self) -> None:
        log = open(self.data_dir / "server.log", "ab")
        # nsenter execs the server (no fork), so proc.pid is the server's own PID
        self.proc = subprocess.Popen(
            [*self.nsenter, sys.executable, "-m", "kybernetes.cli.main", "server", "--data-dir", str(self.data_dir),
             "--https-port", str(PORT), "--node-name", NODE],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        log.close()

    def log(self) -> str:
        p = self.data_dir / "server.log"
        return p.read_text(errors="replace")[-6000:] if p.exists() else ""

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess:
        p = subprocess.run([*self.nsenter, KUBECTL, "--kubeconfig", str(self.data_dir / "admin.kubeconfig"), *args],
                           input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}\n"
                                 f"--- server log ---\n{self.log()}")
        return p

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"kyb server exited with {self.proc.returncode}:\n{self.log()}")
            if (self.data_dir / "admin.kubeconfig").exists():
                if self.kubectl("get", "--raw", "/readyz", check=False, timeout=10).stdout.strip() == "ok":
                    return
            time.sleep(0.2)  # polling a process that has no watch API yet
        raise AssertionError(f"kyb server not ready in {timeout}s:\n{self.log()}")


def _links(netns: str) -> set[str]:
    out = _run("ip", "-n", netns, "-o", "link", "show").stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def test_whole_node(tmp_path):
    netns = f"kyb-e2e-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    data_dir = tmp_path / "srv"
    data_dir.mkdir()
    agent = data_dir / "agent" / "containerd"
    node = Node(netns, data_dir)
    containerd_pid = None
    cgroups: list[str] = []
    # the QoS class cgroups the kubelet creates (children first); removed afterwards if this
    # test brought them into being and they are empty
    qos_classes = ("kubepods/besteffort", "kubepods/burstable", "kubepods")
    existed = {c: bool(cleanup.cgroup_dirs(c)) for c in qos_classes}
    _run("ip", "netns", "add", netns)
    try:
        _run("ip", "-n", netns, "link", "set", "lo", "up")
        node.start()
        node.wait_ready()

        # -- the node registers and turns Ready with a realistic status
        node.kubectl("wait", "--for=create", f"node/{NODE}", "--timeout=60s", timeout=70)
        node.kubectl("wait", "--for=condition=Ready", f"node/{NODE}", "--timeout=60s", timeout=70)
        n = json.loads(node.kubectl("get", "node", NODE, "-o", "json").stdout)
        for key in ("cpu", "memory", "pods", "ephemeral-storage"):
            assert key in n["status"]["capacity"] and key in n["status"]["allocatable"], n["status"]
        assert int(n["status"]["capacity"]["cpu"]) == os.cpu_count()
        assert int(n["status"]["capacity"]["pods"]) > 0
        info = n["status"]["nodeInfo"]
        assert info["containerRuntimeVersion"].startswith("containerd://1."), info
        assert info["kubeletVersion"].startswith("v1.") and info["operatingSystem"] == "linux"
        assert info["kernelVersion"] == os.uname().release
        cidr = ip_network(n["spec"]["podCIDR"])
        assert cidr.subnet_of(ip_network("10.42.0.0/16")) and n["spec"]["podCIDRs"] == [str(cidr)]
        conds = {c["type"]: c["status"] for c in n["status"]["conditions"]}
        assert conds == {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False",
                         "PIDPressure": "False"}, conds
        assert n["status"]["addresses"], n["status"]
        lease = json.loads(node.kubectl("get", "lease", "-n", "kube-node-lease", NODE, "-o", "json").stdout)
        assert lease["spec"]["holderIdentity"] == NODE

        containerd_pid = int((agent / "containerd.pid").read_text())
        assert cleanup.alive(containerd_pid)

        # -- air-gapped image import into the node's running containerd
        archive = tmp_path / "busybox.oci.tar"
        write_busybox_archive(archive, BUSYBOX_REF)
        _run(sys.executable, "-m", "kybernetes.cli.main", "images", "import", str(archive),
             "--data-dir", str(data_dir))

        # -- a Deployment through the scheduler: 2 pods Running and Ready on the node
        node.kubectl("apply", "-f", "-", input=DEPLOYMENT)
        node.kubectl("rollout", "status", "deployment/hello", "--timeout=60s", timeout=70)
        node.kubectl("wait", "--for=condition=Ready", "pod", "-l", "app=hello", "--timeout=30s", timeout=40)
        pods = json.loads(node.kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"]
        assert len(pods) == 2
        for p in pods:
            assert p["spec"]["nodeName"] == NODE and p["status"]["phase"] == "Running"
            assert ip_address(p["status"]["podIP"]) in cidr
            cs = p["status"]["containerStatuses"][0]
            assert cs["ready"] and "running" in cs["state"] and cs["containerID"].startswith("containerd://")
        uids = [(p["metadata"]["uid"], p["status"]["qosClass"]) for p in pods]

        # -- logs and exec through the API server's proxy to the kubelet
        for p in pods:
            name = p["metadata"]["name"]
            out = node.kubectl("logs", name).stdout
            assert f"hello-from-{name}" in out
            assert node.kubectl("exec", name, "--", "sh", "-c", "echo $((6*7)) $(hostname)").stdout.split() == \
                ["42", name]

        # -- a local PersistentVolume: the claim waits for its first consumer, the scheduler
        # picks the PV's node, the PV controller binds, the kubelet bind-mounts the directory
        disk = tmp_path / "disk1"
        disk.mkdir()
        node.kubectl("apply", "-f", "-", input=LOCAL_PV.format(path=disk, node=NODE))
        assert node.kubectl("get", "pvc", "data", "-o", "jsonpath={.status.phase}").stdout == "Pending"
        node.kubectl("apply", "-f", "-", input=WRITER)
        node.kubectl("wait", "--for=condition=Ready", "pod/writer", "--timeout=60s", timeout=70)
        node.kubectl("wait", "--for=jsonpath={.status.phase}=Bound", "pvc/data", "--timeout=30s", timeout=40)
        pv = json.loads(node.kubectl("get", "pv", "local-pv", "-o", "json").stdout)
        assert pv["status"]["phase"] == "Bound" and pv["spec"]["claimRef"]["name"] == "data", pv
        assert (disk / "out.txt").read_text() == "persisted-writer\n"
        assert any("kubernetes.io~local-volume" in m for m in cleanup.mounts_under(data_dir))
        # in use: deleting the claim leaves it Terminating until its pod is gone
        node.kubectl("delete", "pvc", "data", "--wait=false")
        pvc = json.loads(node.kubectl("get", "pvc", "data", "-o", "json").stdout)
        assert pvc["metadata"].get("deletionTimestamp") and \
            "kubernetes.io/pvc-protection" in pvc["metadata"]["finalizers"], pvc
        node.kubectl("delete", "pod", "writer", "--timeout=60s", timeout=70)
        node.kubectl("wait", "--for=delete", "pvc/data", "--timeout=60s", timeout=70)
        node.kubectl("wait", "--for=jsonpath={.status.phase}=Released", "pv/local-pv", "--timeout=60s", timeout=70)
        assert (disk / "out.txt").read_text() == "persisted-writer\n"  # Retain keeps the data
        deadline = time.monotonic() + 30
        while any("kubernetes.io~local-volume" in m for m in cleanup.mounts_under(data_dir)):
            assert time.monotonic() < deadline, cleanup.mounts_under(data_dir)
            time.sleep(0.2)  # the kubelet's teardown has no API to wait on
        node.kubectl("delete", "pv", "local-pv")
        node.kubectl("delete", "storageclass", "local-storage")

        # what the node started, seen before the stop (so the checks after it can fail)
        runc_root = agent / "runc" / "k8s.io"
        running = json.loads(_run("runc", "--root", str(runc_root), "list", "--format", "json").stdout or "[]")
        assert len(running) >= 4, running  # 2 sandboxes + 2 containers
        assert cleanup.mounts_under(data_dir)
        assert {"kyb0"} <= _links(netns) and any(link.startswith("veth") for link in _links(netns))
        cgroups = [pod_cgroup("kubepods", uid, qos) for uid, qos in uids]
        assert all(cleanup.cgroup_dirs(c.lstrip("/")) for c in cgroups), cgroups

        # -- SIGTERM: the server stops and takes everything it started with it
        node.proc.send_signal(signal.SIGTERM)
        try:
            rc = node.proc.wait(45)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"server did not exit on SIGTERM:\n{node.log()}") from None
        assert rc == 0, node.log()
        assert not cleanup.wait_gone([containerd_pid], 5), "containerd outlived the server"
        assert not cleanup.shim_pids(f"{agent / 'containerd.sock'}")
        left = _run("runc", "--root", str(runc_root), "list", "--format", "json", check=False)
        assert not json.loads(left.stdout or "[]"), left.stdout
        assert cleanup.mounts_under(data_dir) == []
        assert not any(cleanup.cgroup_dirs(c.lstrip("/")) for c in cgroups)
        assert _links(netns) == {"lo"}
    finally:
        if node.proc is not None and node.proc.poll() is None:
            cleanup.kill_tree(node.proc.pid)
            node.proc.wait(5)
        for pid in cleanup.shim_pids(str(agent / "containerd.sock")):
            cleanup.kill_tree(pid)
        if containerd_pid and cleanup.alive(containerd_pid):
            cleanup.kill_tree(containerd_pid)
        cleanup.unmount_under(data_dir)
        for cg in cgroups:
            cleanup.remove_cgroup(cg.lstrip("/"))
        for c in qos_classes:
            dirs = cleanup.cgroup_dirs(c)
            if not existed[c] and not any(p.is_dir() for d in dirs for p in d.iterdir()):
                cleanup.remove_cgroup(c, kill=False)
        _run("ip", "netns", "del", netns, check=False)
