"""Ephemeral containers end to end with the real kubectl 1.37 -> API server
(pods/ephemeralcontainers) -> kubelet -> containerd: `kubectl debug` adds one, it runs once
in the pod's sandbox (sharing the target's process namespace with --target), its logs,
attach with stdin and final status come back, and invalid updates get upstream's 422."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from fixtures.images import BUSYBOX_REF
from fixtures.server import KUBECTL
from kl_helpers import on_pty, pod_events, serving_kubelet, wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-eph"


async def kubectl(srv, *args, **kw):
    return await asyncio.to_thread(srv.kubectl, *args, **kw)


@pytest.fixture
async def node(env, tmp_path):
    async with serving_kubelet(env, tmp_path, NODE) as n:
        yield n


async def running_pod(pods, names, name):
    names.append(name)
    await pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                       "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1,
                                "containers": [{"name": "main", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                                "command": ["sleep", "3600"]}]}})

    async def check():
        p = await pods.get(name, "default")
        return p if (p.get("status") or {}).get("phase") == "Running" else None
    return await wait_for(check, 60)


async def eph_status(pods, pod, name, state):
    async def check():
        p = await pods.get(pod, "default")
        for s in (p.get("status") or {}).get("ephemeralContainerStatuses") or []:
            if s["name"] == name and state in s["state"]:
                return s
        return None
    return await wait_for(check, 60)


async def runtime_info(kl, cid):
    """containerd's verbose container info (its pid and OCI runtime spec)."""
    return json.loads((await kl.cri.container_status(cid, verbose=True)).info["info"])


def pid_namespace(info) -> str:
    return next(n.get("path", "") for n in info["runtimeSpec"]["linux"]["namespaces"] if n["type"] == "pid")


async def test_kubectl_debug_target_logs_status(env, node):
    srv = env["srv"]
    cl, kl, pods, names = node
    await running_pod(pods, names, "app")
    # the debug container sees the target's processes (sleep 3600 is main's command)
    await kubectl(srv, "debug", "app", "-c", "dbg", f"--image={BUSYBOX_REF}", "--image-pull-policy=Never",
                  "--target=main", "--", "sh", "-c", "echo hello-from-dbg; ps; exit 3")
    st = await eph_status(pods, "app", "dbg", "terminated")
    assert st["state"]["terminated"]["exitCode"] == 3 and st["state"]["terminated"]["reason"] == "Error"
    assert st["restartCount"] == 0 and st["ready"] is False
    assert st["image"] == BUSYBOX_REF and st["imageID"] and st["containerID"].startswith("containerd://")
    out = (await kubectl(srv, "logs", "app", "-c", "dbg")).stdout
    assert out.startswith("hello-from-dbg\n") and "sleep 3600" in out
    p = await pods.get("app", "default")
    assert p["metadata"]["generation"] == 2  # the spec changed (upstream updatePodGeneration)
    eph = p["spec"]["ephemeralContainers"][0]
    assert eph["name"] == "dbg" and eph["targetContainerName"] == "main"
    # the app container never restarted, the pod still runs, and the exited one stays exited
    assert p["status"]["phase"] == "Running"
    assert p["status"]["containerStatuses"][0]["restartCount"] == 0
    ctrs = await kl.cri.list_containers(labels={"io.kubernetes.pod.name": "app",
                                               "io.kubernetes.container.name": "dbg"})
    assert len(ctrs) == 1
    # the runtime put it in main's process namespace (CRI pid=TARGET), not the sandbox's
    main = (await kl.cri.list_containers(labels={"io.kubernetes.pod.name": "app",
                                                 "io.kubernetes.container.name": "main"}))[0]
    main_pid = (await runtime_info(kl, main.id))["pid"]
    assert pid_namespace(await runtime_info(kl, ctrs[0].id)) == f"/proc/{main_pid}/ns/pid"
    async def started_event():
        return [e for e in await pod_events(cl, "app")
                if e[1] == "Started" and e[3] == "spec.ephemeralContainers{dbg}"]
    assert (await wait_for(started_event, 30))[0][2] == "Started container dbg"
    described = (await kubectl(srv, "describe", "pod", "app")).stdout
    assert "Ephemeral Containers:" in described and "dbg:" in described

    # a second one, attached with stdin (kubectl debug -i waits for it to run, then attaches)
    r = await kubectl(srv, "debug", "-i", "app", "-c", "talk", f"--image={BUSYBOX_REF}",
                      "--image-pull-policy=Never", "--", "sh", "-c", "read l; echo got-$l",
                      input="ping\n", timeout=60)
    assert "got-ping" in r.stdout
    st = await eph_status(pods, "app", "talk", "terminated")
    assert st["state"]["terminated"]["exitCode"] == 0
    # -it: a terminal of its own, attached; it says "waiting" until the attach carries input
    seen = await asyncio.to_thread(on_pty, [KUBECTL, "--kubeconfig", str(srv.kubeconfig), "debug", "-it", "app",
                                            "-c", "term", f"--image={BUSYBOX_REF}", "--image-pull-policy=Never",
                                            "--", "sh", "-c", "until read -t 1 x; do echo waiting; done; "
                                                              "echo got-$x-on-$(tty)"],
                                   b"abc\r", b"got-abc-on-/dev/pts/", after=b"waiting", timeout=60)
    assert b"got-abc-on-/dev/pts/" in seen
    await eph_status(pods, "app", "term", "terminated")
    # ephemeral containers go with the pod
    await pods.delete("app", "default", grace_period_seconds=1)

    async def gone():
        return not await kl.cri.list_containers(labels={"io.kubernetes.pod.name": "app"})
    await wait_for(gone, 60)


async def test_invalid_updates_rejected(env, node):
    srv = env["srv"]
    _, kl, pods, names = node
    p = await running_pod(pods, names, "target")
    base = "/api/v1/namespaces/default/pods/target/ephemeralcontainers"
    cur = json.loads((await kubectl(srv, "get", "--raw", base)).stdout)
    assert cur["kind"] == "Pod" and cur["metadata"]["uid"] == p["metadata"]["uid"]

    async def replace(ephemeral, expect_ok=False, **labels):
        body = json.loads((await kubectl(srv, "get", "--raw", base)).stdout)
        body["spec"]["ephemeralContainers"] = ephemeral
        body["metadata"]["labels"] = labels
        body["spec"]["activeDeadlineSeconds"] = 5
        path = env["data_dir"] / "eph.json"
        path.write_text(json.dumps(body))
        return await kubectl(srv, "replace", "--raw", base, "-f", str(path), check=expect_ok)

    r = await replace([{"name": "main", "image": BUSYBOX_REF, "targetContainerName": "nope",
                        "ports": [{"containerPort": 80}]}])
    assert r.returncode == 1
    assert 'spec.ephemeralContainers[0].name: Duplicate value: "main"' in r.stderr
    assert 'spec.ephemeralContainers[0].targetContainerName: Not found: "nope"' in r.stderr
    assert "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container" in r.stderr
    # one that only sleeps, then an attempt to change it and to remove it
    ok = [{"name": "idle", "image": BUSYBOX_REF, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]
    await replace(ok, expect_ok=True, sneaky="yes")
    # only the ephemeral containers were taken from the write
    after = await pods.get("target", "default")
    assert "labels" not in after["metadata"] and "activeDeadlineSeconds" not in after["spec"]
    assert [c["name"] for c in after["spec"]["ephemeralContainers"]] == ["idle"]
    st = await eph_status(pods, "target", "idle", "running")
    assert "started" not in st and st["ready"] is False
    # exec reaches a running ephemeral container
    assert (await kubectl(srv, "exec", "target", "-c", "idle", "--", "echo", "in-idle")).stdout == "in-idle\n"
    r = await replace([dict(ok[0], command=["sleep", "1"])])
    assert 'spec.ephemeralContainers: Forbidden: existing ephemeral containers "idle" may not be changed' in r.stderr
    r = await replace([])
    assert 'spec.ephemeralContainers: Forbidden: existing ephemeral containers "idle" may not be removed' in r.stderr
    # a plain pod update may not add them; a create may not carry them
    patch = json.dumps({"spec": {"ephemeralContainers": [{"name": "x", "image": BUSYBOX_REF}]}})
    r = await kubectl(srv, "patch", "pod", "target", "-p", patch, check=False)
    assert r.returncode == 1 and "pod updates may not change fields" in r.stderr
    # discovery lists the subresource with upstream's verbs
    res = json.loads((await kubectl(srv, "get", "--raw", "/api/v1")).stdout)["resources"]
    sub = next(x for x in res if x["name"] == "pods/ephemeralcontainers")
    assert sorted(sub["verbs"]) == ["get", "patch", "update"] and sub["kind"] == "Pod"
    # the running ephemeral container is killed with the pod
    await pods.delete("target", "default", grace_period_seconds=1)

    async def gone():
        return not await kl.cri.list_containers(labels={"io.kubernetes.pod.name": "target"})
    await wait_for(gone, 60)


def python_client_add(kubeconfig, ns: str, pod: str, name: str) -> list[str]:
    """Add an ephemeral container with the official client (strategic merge patch on the
    subresource) and read the subresource back; the names it then lists."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        core = client.CoreV1Api(c)
        body = {"spec": {"ephemeralContainers": [{"name": name, "image": BUSYBOX_REF, "command": ["true"]}]}}
        core.patch_namespaced_pod_ephemeralcontainers(pod, ns, body)
        got = core.read_namespaced_pod_ephemeralcontainers(pod, ns)
        return [e.name for e in got.spec.ephemeral_containers]


async def test_pod_security_and_rbac(env):
    """PodSecurity looks at the ephemeral containers a pods/ephemeralcontainers write adds, and
    RBAC authorizes that write as `patch pods/ephemeralcontainers`."""
    srv = env["srv"]
    ns = "eph-psa"
    await kubectl(srv, "create", "namespace", ns)
    try:
        await kubectl(srv, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline")
        # no node: it stays Pending, which is all the API needs
        await kubectl(srv, "-n", ns, "run", "p", f"--image={BUSYBOX_REF}", "--image-pull-policy=Never",
                      "--", "sleep", "3600")
        r = await kubectl(srv, "-n", ns, "debug", "p", "-c", "dbg", f"--image={BUSYBOX_REF}", "--profile=sysadmin",
                          "--", "true", check=False)
        assert r.returncode == 1
        assert ('pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged '
                '(container "dbg" must not set securityContext.privileged=true)') in r.stderr
        # the baseline profile's debug container is fine
        await kubectl(srv, "-n", ns, "debug", "p", "-c", "ok", f"--image={BUSYBOX_REF}", "--profile=baseline",
                      "--", "true")
        # a user who may read and change pods but not their ephemeral containers
        await kubectl(srv, "-n", ns, "create", "role", "pods", "--verb=get,list,watch,patch,update", "--resource=pods")
        await kubectl(srv, "-n", ns, "create", "rolebinding", "pods", "--role=pods", "--user=eve")
        r = await kubectl(srv, "--as=eve", "-n", ns, "debug", "p", "-c", "nope", f"--image={BUSYBOX_REF}",
                          "--profile=baseline", "--", "true", check=False)
        assert r.returncode == 1
        assert (f'pods "p" is forbidden: User "eve" cannot patch resource "pods/ephemeralcontainers" in API group "" '
                f'in the namespace "{ns}"') in r.stderr
        # the official Python client's generated calls for the subresource
        # (a strategic merge patch without $setElementOrder puts the patch's items first, as upstream)
        names = await asyncio.to_thread(python_client_add, srv.kubeconfig, ns, "p", "sdk")
        assert names == ["sdk", "ok"]
    finally:
        await kubectl(srv, "delete", "namespace", ns, "--wait=false")
