"""The node side of the kubelet on real containerd: /stats/summary and /metrics/resource on
its HTTPS server (directly and through the API server's nodes/proxy with real kubectl,
authorized as nodes/stats and nodes/metrics), pod cgroups by QoS class with requests
and limits landing in the cgroup files, and pod-to-pod traffic over the CNI bridge."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fixtures.images import BUSYBOX_REF
from kl_helpers import serving_kubelet, wait_for
from kybernetes.auth import pki
from kybernetes.client import Client
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-n"
CG = Path("/sys/fs/cgroup")


def c(name, script, **kw):
    return {"name": name, "image": BUSYBOX_REF, "imagePullPolicy": "Never", "command": ["sh", "-c", script], **kw}


def pod(name, *containers, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": list(containers), **spec}}


def get(url: str, context) -> tuple[int, str, bytes]:
    """GET off the event loop (the kubelet under test runs on it): (status, type, body)."""
    try:
        with urllib.request.urlopen(url, timeout=15, context=context) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


async def kubectl(srv, *args, **kw):
    return await asyncio.to_thread(srv.kubectl, *args, **kw)


@pytest.fixture
async def node(env, tmp_path):
    async with serving_kubelet(env, tmp_path, NODE) as n:
        yield n


async def running(pods, name):
    async def check():
        p = await pods.get(name, "default")
        return p if (p.get("status") or {}).get("phase") == "Running" else None
    return await wait_for(check, 60)


async def test_stats_endpoints(env, node, tmp_path):
    srv = env["srv"]
    _, kl, pods, names = node
    names.append("statpod")
    await pods.create(pod("statpod", c("main", "trap 'exit 0' TERM; while :; do sleep 1; done")))
    uid = (await running(pods, "statpod"))["metadata"]["uid"]
    base = f"https://127.0.0.1:{kl.server.port}"
    admin = srv.ssl_context()

    async def listed():
        code, ctype, body = await asyncio.to_thread(get, f"{base}/stats/summary", admin)
        assert code == 200 and ctype.startswith("application/json")
        s = json.loads(body)
        p = next((p for p in s["pods"] if p["podRef"]["uid"] == uid), None)
        return (s, p) if p and p["containers"] and "memory" in p["containers"][0] else None
    s, p = await wait_for(listed, 30, interval=0.5)
    assert s["node"]["nodeName"] == NODE
    assert s["node"]["memory"]["workingSetBytes"] > 0 and "fs" in s["node"]
    assert p["podRef"] == {"name": "statpod", "namespace": "default", "uid": uid}
    assert p["containers"][0]["name"] == "main"

    # the cheaper variant: CPU and memory only
    code, _, body = await asyncio.to_thread(get, f"{base}/stats/summary?only_cpu_and_memory=true", admin)
    small = json.loads(body)
    assert code == 200 and "fs" not in small["node"] and "memory" in small["node"]
    sp = next(p for p in small["pods"] if p["podRef"]["uid"] == uid)
    assert set(sp) <= {"podRef", "startTime", "cpu", "memory", "containers"} and "memory" in sp
    assert set(sp["containers"][0]) <= {"name", "startTime", "cpu", "memory"}

    code, ctype, body = await asyncio.to_thread(get, f"{base}/metrics/resource", admin)
    text = body.decode()
    assert code == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE node_memory_working_set_bytes gauge" in text
    assert 'container_memory_working_set_bytes{container="main",namespace="default",pod="statpod"}' in text
    assert "\nresource_scrape_error 0\n" in text

    # through the API server (nodes/proxy), with real kubectl
    out = await kubectl(srv, "get", "--raw", f"/api/v1/nodes/{NODE}/proxy/stats/summary")
    assert json.loads(out.stdout)["node"]["nodeName"] == NODE
    out = await kubectl(srv, "get", "--raw", f"/api/v1/nodes/{NODE}/proxy/metrics/resource")
    assert "pod_memory_working_set_bytes" in out.stdout

    # authorization as upstream: nodes/stats and nodes/metrics, not nodes/proxy
    crt, key = pki.issue_client_cert(pki.load_ca(srv.data_dir), "stats-reader", [], 1)
    (tmp_path / "r.crt").write_bytes(crt)
    (tmp_path / "r.key").write_bytes(key)
    ctx = ssl.create_default_context(cafile=str(srv.data_dir / "tls" / "ca.crt"))
    ctx.load_cert_chain(str(tmp_path / "r.crt"), str(tmp_path / "r.key"))
    code, _, body = await asyncio.to_thread(get, f"{base}/stats/summary", ctx)
    assert (code, body.decode()) == (403, "Forbidden (user=stats-reader, verb=get, resource=nodes, "
                                          "subresource=stats)")
    code, _, body = await asyncio.to_thread(get, f"{base}/metrics/resource", ctx)
    assert (code, body.decode()) == (403, "Forbidden (user=stats-reader, verb=get, resource=nodes, "
                                          "subresource=metrics)")
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "kl-stats"},
            "rules": [{"apiGroups": [""], "resources": ["nodes/stats"], "verbs": ["get"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "kl-stats"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kl-stats"},
               "subjects": [{"kind": "User", "name": "stats-reader", "apiGroup": "rbac.authorization.k8s.io"}]}
    await kubectl(srv, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                             "items": [role, binding]}))
    try:
        kl.server.authz._cache.clear()  # the 30 s cache of the earlier denial
        code, _, body = await asyncio.to_thread(get, f"{base}/stats/summary", ctx)
        assert code == 200 and json.loads(body)["node"]["nodeName"] == NODE
        code, _, _ = await asyncio.to_thread(get, f"{base}/metrics/resource", ctx)
        assert code == 403
        code, _, _ = await asyncio.to_thread(get, f"{base}/pods", ctx)
        assert code == 403
    finally:
        await kubectl(srv, "delete", "clusterrolebinding/kl-stats", "clusterrole/kl-stats")


def read(path: Path) -> str:
    return path.read_text().strip()


def container_id(p, name):
    cs = next(s for s in p["status"]["containerStatuses"] if s["name"] == name)
    return cs["containerID"].split("://", 1)[1]


async def test_qos_cgroups(env, node):
    root = env["name"]
    _, _, pods, names = node
    loop = "trap 'exit 0' TERM; while :; do sleep 1; done"
    names += ["guar", "burst", "besteff"]
    await pods.create(pod("guar", c("a", loop, resources={"limits": {"cpu": "250m", "memory": "64Mi"}}),
                          c("b", loop, resources={"limits": {"cpu": "100m", "memory": "32Mi"}})))
    await pods.create(pod("burst", c("a", loop, resources={"requests": {"cpu": "100m"},
                                                           "limits": {"memory": "48Mi"}})))
    await pods.create(pod("besteff", c("a", loop)))
    g, b, e = [await running(pods, n) for n in ("guar", "burst", "besteff")]
    assert [p["status"]["qosClass"] for p in (g, b, e)] == ["Guaranteed", "Burstable", "BestEffort"]

    # Guaranteed: /<root>/pod<uid>, pod limits = the sum of the containers'
    gdir = f"{root}/pod{g['metadata']['uid']}"
    assert read(CG / "cpu" / gdir / "cpu.shares") == str(350 * 1024 // 1000)
    assert read(CG / "cpu" / gdir / "cpu.cfs_quota_us") == "35000"
    assert read(CG / "cpu" / gdir / "cpu.cfs_period_us") == "100000"
    assert read(CG / "memory" / gdir / "memory.limit_in_bytes") == str(96 << 20)
    # ...and each container's own limits in its cgroup beneath the pod's
    ca = container_id(g, "a")
    assert read(CG / "cpu" / gdir / ca / "cpu.shares") == "256"
    assert read(CG / "cpu" / gdir / ca / "cpu.cfs_quota_us") == "25000"
    assert read(CG / "cpu" / gdir / ca / "cpu.cfs_period_us") == "100000"
    assert read(CG / "memory" / gdir / ca / "memory.limit_in_bytes") == str(64 << 20)
    # the container really runs in that cgroup
    pids = read(CG / "memory" / gdir / ca / "cgroup.procs").split()
    assert pids

    # Burstable: /<root>/burstable/pod<uid>; no CPU limit -> no quota
    bdir = f"{root}/burstable/pod{b['metadata']['uid']}"
    assert read(CG / "cpu" / bdir / "cpu.shares") == "102"
    assert read(CG / "cpu" / bdir / "cpu.cfs_quota_us") == "-1"
    assert read(CG / "memory" / bdir / "memory.limit_in_bytes") == str(48 << 20)
    # the Burstable class's shares are its pods' cpu requests
    assert read(CG / "cpu" / root / "burstable" / "cpu.shares") == "102"
    cb = container_id(b, "a")
    assert read(CG / "cpu" / bdir / cb / "cpu.shares") == "102"
    assert read(CG / "memory" / bdir / cb / "memory.limit_in_bytes") == str(48 << 20)

    # BestEffort: /<root>/besteffort/pod<uid>, minimum shares on the pod and the class
    edir = f"{root}/besteffort/pod{e['metadata']['uid']}"
    assert read(CG / "cpu" / edir / "cpu.shares") == "2"
    assert read(CG / "cpu" / root / "besteffort" / "cpu.shares") == "2"
    assert read(CG / "cpu" / edir / container_id(e, "a") / "cpu.shares") == "2"

    # deleting a pod removes its cgroup
    await pods.delete("burst", "default", grace_period_seconds=0)
    async def gone():
        return not (CG / "cpu" / bdir).exists()
    await wait_for(gone, 30)
    assert not (CG / "memory" / bdir).exists()
    assert read(CG / "cpu" / root / "burstable" / "cpu.shares") == "2"


async def test_pod_to_pod(env, node):
    """One pod serves HTTP, the other fetches it by pod IP across the node's bridge."""
    _, _, pods, names = node
    names += ["web", "client"]
    await pods.create(pod("web", c("httpd", "mkdir -p /www && echo hello-from-web > /www/index.html && "
                                            "exec httpd -f -p 8080 -h /www")))
    web = await running(pods, "web")
    ip = web["status"]["podIP"]
    assert ip.startswith("10.88.78.")
    # (busybox-static 1.35's wget crashes on -T, hence the bounded loop instead)
    await pods.create(pod("client", c("wget", f"for i in $(seq 50); do wget -q -O /tmp/out "
                                               f"http://{ip}:8080/index.html && break; sleep 0.2; done; "
                                               "cat /tmp/out"),
                          restartPolicy="Never"))

    async def done():
        p = await pods.get("client", "default")
        return p if p["status"].get("phase") in ("Succeeded", "Failed") else None
    p = await wait_for(done, 60)
    assert p["status"]["phase"] == "Succeeded"
    assert p["status"]["podIP"] != ip
    out = await kubectl(env["srv"], "logs", "client")
    assert out.stdout == "hello-from-web\n"


def condition(node, ctype):
    return next(c for c in node["status"]["conditions"] if c["type"] == ctype)


async def test_eviction_under_memory_pressure(env, node):
    """A memory threshold above what is free makes the pressure real: the node reports
    MemoryPressure (and gets the NoSchedule taint from the node lifecycle controller),
    and pods are evicted one per pass, the BestEffort one using memory before the
    Burstable one within its request."""
    from kybernetes.kubelet import eviction

    cl, kl, pods, names = node
    await kl.eviction.stop()  # passes are driven by the test below
    names += ["hog", "modest"]
    assert kl.workers.admit(pod("x", c("x", "true"))) is None  # no pressure: admitted
    hold = "trap 'exit 0' TERM; x=$(head -c 16777216 /dev/zero | tr '\\0' a); while :; do sleep 1; done"
    await pods.create(pod("hog", c("hog", hold)))
    await pods.create(pod("modest", c("modest", "trap 'exit 0' TERM; while :; do sleep 1; done",
                                      resources={"requests": {"memory": "64Mi"}})))
    for n in ("hog", "modest"):
        await running(pods, n)
    hog_uid = (await pods.get("hog", "default"))["metadata"]["uid"]

    async def hog_holds():  # the stats show the 16 MiB before the pass ranks on them
        s = await kl.stats.summary()
        p = next((p for p in s["pods"] if p["podRef"]["uid"] == hog_uid), None)
        return p and p["containers"] and p["containers"][0]["memory"]["workingSetBytes"] > 16 << 20
    await wait_for(hog_holds, 30, interval=0.5)

    total = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1]) * 1024
    kl.eviction.thresholds = eviction.parse_thresholds(f"memory.available<{total}")
    first = await kl.eviction.synchronize()
    assert first["metadata"]["name"] == "hog"
    assert kl.eviction.pressure == {"MemoryPressure"}

    async def failed(name):
        async def check():
            p = await pods.get(name, "default")
            return p if p["status"].get("phase") == "Failed" else None
        return await wait_for(check, 30)
    p = await failed("hog")
    st = p["status"]
    assert st["reason"] == "Evicted"
    assert st["message"].startswith(f"The node was low on resource: memory. Threshold quantity: "
                                     f"{eviction.binary_si(total)}, available: ")
    assert "Container hog was using " in st["message"]
    assert st["message"].endswith(", request is 0, has larger consumption of memory. ")
    dt = condition(p, "DisruptionTarget")
    assert (dt["status"], dt["reason"], dt["message"]) == ("True", "TerminationByKubelet", st["message"])
    assert "terminated" in st["containerStatuses"][0]["state"]
    assert (await pods.get("modest", "default"))["status"]["phase"] == "Running"
    evs = await cl.resource("", "v1", "events", namespaced=True).list("default")
    assert any(e["reason"] == "Evicted" and e["type"] == "Warning" and e["message"] == st["message"]
               and e["involvedObject"]["name"] == "hog" for e in evs["items"])

    nodes = cl.resource("", "v1", "nodes")

    async def pressured():
        n = await nodes.get(NODE)
        mp = condition(n, "MemoryPressure")
        tainted = {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"} in \
            ((n.get("spec") or {}).get("taints") or [])
        return n if mp["status"] == "True" and tainted else None
    n = await wait_for(pressured, 30)
    mp = condition(n, "MemoryPressure")
    assert (mp["reason"], mp["message"]) == ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available")

    # under memory pressure a new BestEffort pod is not admitted (upstream's eviction admit)
    names.append("late")
    await pods.create(pod("late", c("late", "sleep 3600")))
    late = await failed("late")
    assert (late["status"]["reason"], late["status"]["message"]) == \
        ("Evicted", "Pod was rejected: The node had condition: [MemoryPressure]. ")
    assert not await kl.cri.list_pod_sandbox(labels={"io.kubernetes.pod.uid": late["metadata"]["uid"]})

    # the next pass takes the Burstable pod
    second = await kl.eviction.synchronize()
    assert second["metadata"]["name"] == "modest"
    assert (await failed("modest"))["status"]["reason"] == "Evicted"

    # pressure over (and the transition period passed): condition and taint go
    kl.eviction.thresholds = eviction.parse_thresholds("memory.available<1Ki")
    kl.eviction.transition_period = 0.0
    assert await kl.eviction.synchronize() is None
    assert kl.eviction.pressure == set()

    async def relieved():
        n = await nodes.get(NODE)
        taints = (n.get("spec") or {}).get("taints") or []
        return n if condition(n, "MemoryPressure")["status"] == "False" and \
            not any(t["key"] == "node.kubernetes.io/memory-pressure" for t in taints) else None
    n = await wait_for(relieved, 30)
    assert condition(n, "MemoryPressure")["reason"] == "KubeletHasSufficientMemory"


def peer_cert(port: int, cafile: str) -> bytes:
    """The certificate the kubelet server presents (DER), verified against the cluster CA."""
    import socket

    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)


async def test_serving_certificate_from_csr(env, tmp_path):
    """With the certificate source of --rotate-server-certificates the kubelet server has
    no certificate until a kubelet-serving CSR is approved, then serves it, and serves a
    renewed one as soon as it is stored."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from kybernetes.kubelet.certificate import ServingCertificateManager, request_serving_certificate
    from kybernetes.kubelet.server.app import csr_cert_source

    srv, rt = env["srv"], env["rt"]
    tls = srv.data_dir / "tls"
    ca = str(tls / "ca.crt")
    pki = tmp_path / "pki"
    name = "node-c"
    async with Client.from_kubeconfig(srv.kubeconfig) as cl:
        kl = Kubelet(cl, rt.endpoint, node_name=name, data_dir=env["data_dir"], node_ip="127.0.0.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"], cert_source=csr_cert_source(pki),
                     client_ca=tls / "ca.crt", server_address="127.0.0.1", server_port=0, runtime_netns=rt.netns)
        kl.server.cert_check_interval = 0.2
        await kl.start()
        csrs = cl.resource("certificates.k8s.io", "v1", "certificatesigningrequests")

        async def approve_pending():
            items = [c for c in (await csrs.list())["items"]
                     if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving" and not c.get("status")]
            for c in items:
                await kubectl(srv, "certificate", "approve", c["metadata"]["name"])
            return bool(items)

        def stored() -> bytes:
            return x509.load_pem_x509_certificate((pki / "kubelet-server-current.pem").read_bytes()).public_bytes(
                Encoding.DER)

        try:
            # no certificate yet: every handshake fails
            with pytest.raises(ssl.SSLError):
                await asyncio.to_thread(peer_cert, kl.server.port, ca)

            mgr = ServingCertificateManager(cl, name, pki, dns=(name,), ips=("127.0.0.1",),
                                            on_rotated=kl.server.reload_certificate)
            task = asyncio.ensure_future(mgr.rotate())
            await wait_for(approve_pending, 30)
            await asyncio.wait_for(task, 30)
            first = stored()
            assert await asyncio.to_thread(peer_cert, kl.server.port, ca) == first
            # and the API works over it
            code, _, body = await asyncio.to_thread(get, f"https://127.0.0.1:{kl.server.port}/healthz",
                                                    srv.ssl_context())
            assert (code, body) == (200, b"ok")
            cert = x509.load_der_x509_certificate(first)
            assert cert.subject.rfc4514_string() == f"CN=system:node:{name},O=system:nodes"

            # a renewal stored by anyone is picked up by the server's own check
            task = asyncio.ensure_future(request_serving_certificate(cl, name, pki, dns=(name,), ips=("127.0.0.1",)))
            await wait_for(approve_pending, 30)
            await asyncio.wait_for(task, 30)
            second = stored()
            assert second != first

            async def renewed():
                return await asyncio.to_thread(peer_cert, kl.server.port, ca) == second
            await wait_for(renewed, 15)
        finally:
            await kl.stop()
            await cl.resource("", "v1", "nodes").delete(name)
