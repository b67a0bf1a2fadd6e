"""The kubelet server's node-level endpoints without a runtime: the /logs/ file server
(listing, content types, redirects, traversal), the metric families and their hooks,
/configz's shape, /runningpods/ grouping and the authorization mapping of the paths."""

from __future__ import annotations

import os
from decimal import Decimal
from types import SimpleNamespace

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kybernetes.cri import pb
from kybernetes.kubelet.eviction_thresholds import Threshold
from kybernetes.kubelet.server import auth, configz, logs_endpoint, metrics_endpoint, runningpods


# ------------------------------------------------------------------ /logs/

@pytest.fixture
def logroot(tmp_path):
    root = tmp_path / "log"
    (root / "pods" / "ns_p_uid").mkdir(parents=True)
    (root / "syslog").write_text("hello\nworld\n")
    (root / "a <b>.log").write_text("x")
    (root / "blob").write_bytes(b"\x00\x01\x02binary")
    (root / "data.json").write_text("{}")
    (root / "syslog.gz").write_bytes(b"\x1f\x8b\x08\x00old rotated log")
    (tmp_path / "secret").write_text("outside")
    os.symlink(tmp_path / "secret", root / "escape")
    return root


@pytest.fixture
async def client(logroot):
    async def handler(request):
        return await logs_endpoint.serve(request, logroot, request.match_info["tail"])
    app = web.Application()
    app.router.add_get("/logs/{tail:.*}", handler)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_listing_is_go_fileserver_html(client):
    r = await client.get("/logs/")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert await r.text() == (
        '<!doctype html>\n<meta name="viewport" content="width=device-width">\n<pre>\n'
        '<a href="a%20%3Cb%3E.log">a &lt;b&gt;.log</a>\n<a href="blob">blob</a>\n'
        '<a href="data.json">data.json</a>\n<a href="escape">escape</a>\n'
        '<a href="pods/">pods/</a>\n<a href="syslog">syslog</a>\n'
        '<a href="syslog.gz">syslog.gz</a>\n</pre>\n')


async def test_files_with_content_type(client):
    r = await client.get("/logs/syslog")
    assert (r.status, await r.text()) == (200, "hello\nworld\n")
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    r = await client.get("/logs/blob")
    assert r.headers["Content-Type"] == "application/octet-stream"
    r = await client.get("/logs/data.json")
    assert r.headers["Content-Type"] == "application/json"
    # a client taking gzip still gets the named file, never its older .gz sibling
    r = await client.get("/logs/syslog", headers={"Accept-Encoding": "gzip"})
    assert (await r.read(), r.headers.get("Content-Encoding")) == (b"hello\nworld\n", None)
    r = await client.get("/logs/syslog.gz", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert r.headers.get("Content-Encoding") is None
    assert r.headers["Content-Type"] in ("application/gzip", "application/x-gzip")
    assert await r.read() == b"\x1f\x8b\x08\x00old rotated log"
    r = await client.get("/logs/syslog", headers={"Range": "bytes=0-4"})
    assert (r.status, await r.text(), r.headers["Content-Range"]) == (206, "hello", "bytes 0-4/12")
    r = await client.get("/logs/syslog", headers={"Range": "bytes=-6"})
    assert (r.status, await r.text()) == (206, "world\n")
    r = await client.get("/logs/syslog", headers={"Range": "bytes=20-"})
    assert (r.status, r.headers["Content-Range"]) == (416, "bytes */12")
    r = await client.head("/logs/syslog")
    assert (r.status, r.headers["Content-Length"], await r.read()) == (200, "12", b"")
    assert r.headers["Last-Modified"]


async def test_redirects_missing_and_traversal(client):
    r = await client.get("/logs/pods", allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (301, "pods/")
    r = await client.get("/logs/pods/")
    assert '<a href="ns_p_uid/">ns_p_uid/</a>' in await r.text()
    r = await client.get("/logs/syslog/", allow_redirects=False)
    assert (r.status, r.headers["Location"]) == (301, "../syslog")
    r = await client.get("/logs/nope")
    assert (r.status, await r.text()) == (404, "404 page not found\n")
    # a symbolic link out of the root is not followed
    assert (await client.get("/logs/escape")).status == 404


def test_resolve_never_leaves_root(logroot):
    assert logs_endpoint.resolve(logroot, "../secret") == logroot / "secret"  # cleaned: inside, missing
    assert logs_endpoint.resolve(logroot, "pods/../../../secret") == logroot / "secret"
    assert logs_endpoint.resolve(logroot, "escape") is None
    assert logs_endpoint.resolve(logroot, "") == logroot


# ------------------------------------------------------------------ metrics

class FakeCRI:
    def __init__(self):
        self.observer = None
        self.sandboxes = [SimpleNamespace(metadata=SimpleNamespace(uid="u1", name="p1", namespace="ns"),
                                          state=pb.SANDBOX_READY)]
        self.containers = [
            SimpleNamespace(state=pb.CONTAINER_RUNNING, created_at=2, metadata=SimpleNamespace(name="b"),
                            image=SimpleNamespace(image="busybox:2"), image_ref="sha256:b",
                            labels={"io.kubernetes.pod.uid": "u1", "io.kubernetes.pod.name": "p1",
                                    "io.kubernetes.pod.namespace": "ns", "io.kubernetes.container.name": "b"}),
            SimpleNamespace(state=pb.CONTAINER_RUNNING, created_at=1, metadata=SimpleNamespace(name="a"),
                            image=SimpleNamespace(image=""), image_ref="sha256:a",
                            labels={"io.kubernetes.pod.uid": "u1", "io.kubernetes.pod.name": "p1",
                                    "io.kubernetes.pod.namespace": "ns", "io.kubernetes.container.name": "a"}),
            SimpleNamespace(state=pb.CONTAINER_EXITED, created_at=0, labels={}),
        ]

    async def list_pod_sandbox(self, state=None):
        return self.sandboxes

    async def list_containers(self, state=None):
        return [c for c in self.containers if state is None or c.state == state]


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_operation_type_names():
    assert metrics_endpoint.operation_type("RunPodSandbox") == "run_podsandbox"
    assert metrics_endpoint.operation_type("ListContainers") == "list_containers"
    assert metrics_endpoint.operation_type("PullImage") == "pull_image"
    assert metrics_endpoint.operation_type("Version") == "version"


async def test_metrics_families_and_hooks():
    cri = FakeCRI()
    def worker(phase, annotations=None, done=False):
        return SimpleNamespace(done=done, last_status={"phase": phase},
                               pod={"metadata": {"annotations": annotations or {}}})
    workers = SimpleNamespace(observer=None, workers={
        "a": worker("Running"), "b": worker("Succeeded"), "c": worker("Running", done=True),
        "s": worker("Pending", {"kubernetes.io/config.source": "file"})})
    informer = SimpleNamespace(list=lambda: [{"metadata": {"annotations": {"kubernetes.io/config.mirror": "h"}}},
                                             {"metadata": {}}])
    eviction = SimpleNamespace(on_evicted=None)
    pleg = SimpleNamespace(observer=None, relists=0, last={})  # not relisted yet: the runtime is asked
    m = metrics_endpoint.KubeletMetrics("n1", process=False).attach(
        SimpleNamespace(cri=cri, workers=workers, eviction=eviction, informer=informer, pleg=pleg))
    pleg.observer(0.02, None)
    pleg.observer(0.03, 1.0)
    m.container_started("init")
    m.container_started("app")
    m.container_start_failed("app", grpc.StatusCode.DEADLINE_EXCEEDED)
    assert cri.observer == m.runtime_operation and workers.observer is m
    eviction.on_evicted("memory.available")
    cri.observer("ListContainers", 0.01, None)
    cri.observer("ListContainers", 0.02, RuntimeError("x"))
    m.pod_worker_duration("create", 0.3)
    m.pod_sandbox_started(True)
    m.pod_running(1.5)
    text = (await m.render()).decode()
    assert 'kubelet_node_name{node="n1"} 1.0' in text
    assert "# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox\n" in text
    assert sample(text, "kubelet_running_pods") == 1
    assert sample(text, 'kubelet_running_containers{container_state="running"}') == 2
    assert sample(text, 'kubelet_running_containers{container_state="exited"}') == 1
    assert sample(text, 'kubelet_runtime_operations_total{operation_type="list_containers"}') == 2
    assert sample(text, 'kubelet_runtime_operations_errors_total{operation_type="list_containers"}') == 1
    assert sample(text, 'kubelet_pod_worker_duration_seconds_count{operation_type="create"}') == 1
    assert sample(text, "kubelet_started_pods_total") == 1
    assert sample(text, 'kubelet_started_containers_total{container_type="init_container"}') == 1
    assert sample(text, 'kubelet_started_containers_errors_total{code="DeadlineExceeded",'
                        'container_type="container"}') == 1
    assert sample(text, 'kubelet_desired_pods{static="false"}') == 2
    assert sample(text, 'kubelet_desired_pods{static="true"}') == 1
    assert sample(text, 'kubelet_active_pods{static="false"}') == 1
    assert sample(text, "kubelet_mirror_pods") == 1
    assert sample(text, "kubelet_pleg_relist_duration_seconds_count") == 2
    assert sample(text, "kubelet_pleg_relist_interval_seconds_count") == 1
    assert sample(text, "kubelet_pleg_last_seen_seconds") > 1.7e9
    # once the PLEG has relisted, its last view is what counts (no runtime calls)
    pleg.relists, pleg.last = 1, {"s:1": ("u", pb.SANDBOX_READY), "s:2": ("v", pb.SANDBOX_NOTREADY),
                                  "c:1": ("u", pb.CONTAINER_RUNNING), "c:2": ("v", pb.CONTAINER_CREATED)}
    cri.sandboxes = cri.containers = None
    text = (await m.render()).decode()
    assert sample(text, "kubelet_running_pods") == 1
    assert sample(text, 'kubelet_running_containers{container_state="created"}') == 1
    assert sample(text, 'kubelet_running_containers{container_state="exited"}') == 0
    assert sample(text, "kubelet_pod_start_duration_seconds_count") == 1
    assert sample(text, 'kubelet_pod_start_duration_seconds_bucket{le="2.0"}') == 1
    assert sample(text, 'kubelet_pod_start_duration_seconds_bucket{le="1.0"}') == 0
    assert "_created" not in text  # prometheus-client's series birth times: not in the kubelet's metrics
    assert sample(text, 'kubelet_evictions{eviction_signal="memory.available"}') == 1
    assert "# TYPE kubelet_evictions counter" in text
    assert "prober_probe_total" not in text


def test_probe_metrics_registry():
    m = metrics_endpoint.KubeletMetrics("n1", process=False)
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}
    m.probe_result(pod, "readiness", "c", "successful", 0.01)
    m.probe_result(pod, "readiness", "c", "successful", 0.01)
    m.probe_result(pod, "liveness", "c", "failed", 0.01)
    text = m.render_probes().decode()
    assert sample(text, 'prober_probe_total{container="c",namespace="ns",pod="p",pod_uid="u",'
                        'probe_type="Readiness",result="successful"}') == 2
    assert sample(text, 'prober_probe_total{container="c",namespace="ns",pod="p",pod_uid="u",'
                        'probe_type="Liveness",result="failed"}') == 1


async def test_running_pods_groups_by_uid():
    body = await runningpods.running_pods(FakeCRI())
    assert body["kind"] == "PodList" and len(body["items"]) == 1
    p = body["items"][0]
    assert p["metadata"] == {"name": "p1", "namespace": "ns", "uid": "u1", "creationTimestamp": None}
    assert p["spec"]["containers"] == [{"name": "a", "image": "sha256:a", "resources": {}},
                                       {"name": "b", "image": "busybox:2", "resources": {}}]


# ------------------------------------------------------------------ /configz

def test_go_duration():
    assert [configz.go_duration(s) for s in (0, 0.5, 20, 120, 300, 14400, 90.5)] == \
        ["0s", "500ms", "20s", "2m0s", "5m0s", "4h0m0s", "1m30.5s"]


def test_configz_shape():
    from kybernetes.kubelet.image_gc import ImageGCPolicy
    kl = SimpleNamespace(
        workers=SimpleNamespace(resync=10.0, cluster_domain="cluster.local", cluster_dns=["10.0.0.10"],
                                cgroup_root="kubepods", resolv_conf="/etc/resolv.conf",
                                images=SimpleNamespace(_serial=object()), log_root="/var/log/pods"),
        image_gc=SimpleNamespace(policy=ImageGCPolicy()),
        eviction=SimpleNamespace(transition_period=300.0, max_pod_grace_period=0, volume_usage=None,
                                 thresholds=[Threshold("memory.available", quantity=100 * 2**20),
                                             Threshold("nodefs.available", percentage=Decimal("0.1")),
                                             Threshold("memory.available", quantity=200 * 2**20, grace_period=90)]),
        node=SimpleNamespace(status_interval=10.0, report_period=300.0),
        cri=SimpleNamespace(endpoint="unix:///run/c.sock"), static_pods=None, pod_cidrs=["10.1.0.0/24"])
    server = SimpleNamespace(address="0.0.0.0", port=10250, client_ca="/ca.crt", authn=SimpleNamespace(ttl=120.0))
    cfg = configz.kubelet_config(kl, server)["kubeletconfig"]
    assert (cfg["kind"], cfg["apiVersion"]) == ("KubeletConfiguration", "kubelet.config.k8s.io/v1beta1")
    assert cfg["clusterDomain"] == "cluster.local" and cfg["clusterDNS"] == ["10.0.0.10"]
    assert cfg["evictionHard"] == {"memory.available": "100Mi", "nodefs.available": "10%"}
    assert cfg["evictionSoft"] == {"memory.available": "200Mi"}
    assert cfg["evictionSoftGracePeriod"] == {"memory.available": "1m30s"}
    assert cfg["imageGCHighThresholdPercent"] == 85 and cfg["imageMinimumGCAge"] == "2m0s"
    assert cfg["serializeImagePulls"] is True and cfg["localStorageCapacityIsolation"] is False
    assert cfg["podCIDR"] == "10.1.0.0/24" and cfg["maxPods"] == 110 and "staticPodPath" not in cfg
    assert cfg["syncFrequency"] == "10s" and cfg["authentication"]["webhook"]["cacheTTL"] == "2m0s"


# ------------------------------------------------------------------ authorization

@pytest.mark.parametrize("path,subs", [
    ("/logs/", ["log"]), ("/logs/syslog", ["log"]), ("/metrics", ["metrics"]), ("/metrics/probes", ["metrics"]),
    ("/stats/summary", ["stats"]), ("/configz", ["configz", "proxy"]), ("/runningpods/", ["proxy"]),
    ("/healthz/syncloop", ["healthz", "proxy"]), ("/logsx", ["proxy"]),
])
def test_authorization_subresources(path, subs):
    assert auth.attributes("GET", path) == ("get", subs)


# ------------------------------------------------------------------ /healthz

async def test_healthz_checks_before_and_after_start():
    from aiohttp.test_utils import make_mocked_request

    from kybernetes.kubelet.server.app import KubeletServer
    kl = SimpleNamespace(client=None, node_name="n1", started=False, cri=FakeCRI(),
                         workers=SimpleNamespace(observer=None, workers={}), eviction=SimpleNamespace(on_evicted=None),
                         pleg=SimpleNamespace(observer=None))
    srv = KubeletServer(kl, cert_source=lambda: None, client_ca="/nonexistent")

    async def get(path):
        r = await (srv.healthz_check if path.count("/") > 1 else srv.healthz)(make_mocked_request("GET", path))
        return r.status, r.text
    assert await get("/healthz") == (500, "[+]ping ok\n[+]log ok\n[-]syncloop failed: reason withheld\n"
                                          "healthz check failed\n")
    assert await get("/healthz/ping") == (200, "ok")
    assert await get("/healthz/syncloop") == (500, "internal server error: sync Loop took longer than expected\n")
    kl.started = True
    assert await get("/healthz") == (200, "ok")
    assert await get("/healthz?verbose") == (200, "[+]ping ok\n[+]log ok\n[+]syncloop ok\nhealthz check passed\n")
    assert await get("/healthz/syncloop") == (200, "ok")


# ------------------------------------------------------------------ /spec/

def test_machine_info_from_proc_text():
    from kybernetes.kubelet.server import spec
    cpuinfo = "".join(f"processor\t: {i}\nvendor_id\t: GenuineIntel\nphysical id\t: {i // 4}\ncore id\t\t: {i % 2}\n"
                      f"cpu MHz\t\t: 2400.{i}\n\n" for i in range(8))
    assert spec._cpuinfo(cpuinfo) == (4, 2, 2400700, "GenuineIntel")
    assert spec._meminfo("MemTotal:       16384 kB\nSwapTotal:          0 kB\nHugePages_Total:       2\n") == \
        {"MemTotal": 16384 * 1024, "SwapTotal": 0, "HugePages_Total": 2}
    info = spec.machine_info()
    assert info["num_cores"] == os.cpu_count() and info["memory_capacity"] > 0 and info["boot_id"]
