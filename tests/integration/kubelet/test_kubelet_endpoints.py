"""The kubelet's node-level endpoints through the real API server's nodes/proxy with the
real kubectl (`get --raw`): /logs/ (listing, a file, traversal kept inside the log
directory), /metrics after a pod runs (running pods and containers, runtime operations,
pod start latency, pod worker durations), /metrics/probes after a probed pod, /configz,
/runningpods/ and /healthz checks; and the kubelet's own authorization of the paths
(nodes/log, nodes/metrics versus nodes/proxy) for callers with a cluster client cert.
One kubelet and one pod serve the whole module."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import urllib.error
import urllib.request

import pytest
import pytest_asyncio

from fixtures.images import BUSYBOX_REF
from kl_helpers import serving_kubelet, wait_for
from kybernetes.auth import pki

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-ep"
POD = "probed"
PROXY = f"/api/v1/nodes/{NODE}/proxy"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(env, tmp_path_factory):
    base = tmp_path_factory.mktemp("klep")
    logdir = base / "varlog"
    (logdir / "sub").mkdir(parents=True)
    (logdir / "kyb-test.log").write_text("line one\nline two\n")
    (logdir / "sub" / "inner.log").write_text("inner\n")
    (base / "outside-secret").write_text("not for you\n")
    async with serving_kubelet(env, base / "kl", NODE) as n:
        cl, kl, pods, names = n
        kl.server.log_dir = logdir
        names.append(POD)
        await pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": "default"},
                           "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": [
                               {"name": "main", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                "command": ["sh", "-c", "exec sleep 3600"],
                                "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]}})

        async def ready():
            p = await pods.get(POD, "default")
            return any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in (p.get("status") or {}).get("conditions") or [])
        await wait_for(ready, 60)
        yield n


async def raw(env, path: str, check: bool = True):
    return await asyncio.to_thread(env["srv"].kubectl, "get", "--raw", path, check=check)


def metric(text: str, name: str) -> float:
    """The value of one sample (`name` with its labels, as exposed)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed:\n{text[:3000]}")


async def test_logs_listing_and_file(env, node):
    out = (await raw(env, f"{PROXY}/logs/")).stdout
    assert '<a href="kyb-test.log">kyb-test.log</a>\n' in out
    assert '<a href="sub/">sub/</a>\n' in out and out.startswith("<!doctype html>")
    assert (await raw(env, f"{PROXY}/logs/kyb-test.log")).stdout == "line one\nline two\n"
    assert (await raw(env, f"{PROXY}/logs/sub/inner.log")).stdout == "inner\n"
    assert '<a href="inner.log">inner.log</a>' in (await raw(env, f"{PROXY}/logs/sub/")).stdout
    # upstream strips "/logs/" before its file server: a bare /logs is not found
    r = await raw(env, f"{PROXY}/logs", check=False)
    assert r.returncode == 1 and "(NotFound)" in r.stderr, r.stderr
    r = await raw(env, f"{PROXY}/logs/missing.log", check=False)
    assert r.returncode == 1 and "(NotFound)" in r.stderr, r.stderr


def _get(url: str, ctx: ssl.SSLContext) -> tuple[int, str]:
    req = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=15) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def test_logs_traversal_stays_inside(env, node):
    """`..` (plain or percent-encoded) never reaches a file beside the log directory."""
    _, kl, _, _ = node
    ctx = env["srv"].ssl_context()
    base = f"https://127.0.0.1:{kl.server.port}"
    for path in ("/logs/../outside-secret", "/logs/%2e%2e/outside-secret", "/logs/sub/%2e%2e/%2e%2e/outside-secret",
                 "/logs/..%2foutside-secret"):
        status, body = await asyncio.to_thread(_get, base + path, ctx)
        assert status == 404, (path, status, body)
        assert "not for you" not in body
    # and the cleaned path that stays inside still works
    status, body = await asyncio.to_thread(_get, base + "/logs/sub/%2e%2e/kyb-test.log", ctx)
    assert (status, body) == (200, "line one\nline two\n")


async def test_metrics_after_a_pod_runs(env, node):
    text = (await raw(env, f"{PROXY}/metrics")).stdout
    assert metric(text, f'kubelet_node_name{{node="{NODE}"}}') == 1
    assert metric(text, "kubelet_running_pods") >= 1
    assert metric(text, 'kubelet_running_containers{container_state="running"}') >= 1
    assert metric(text, 'kubelet_runtime_operations_total{operation_type="run_podsandbox"}') >= 1
    assert metric(text, 'kubelet_runtime_operations_total{operation_type="create_container"}') >= 1
    assert "# TYPE kubelet_runtime_operations_errors_total counter" in text
    assert metric(text, "kubelet_started_pods_total") >= 1
    assert metric(text, 'kubelet_started_containers_total{container_type="container"}') >= 1
    assert metric(text, 'kubelet_desired_pods{static="false"}') >= 1
    assert metric(text, 'kubelet_active_pods{static="false"}') >= 1
    assert metric(text, "kubelet_pod_start_duration_seconds_count") >= 1
    assert metric(text, 'kubelet_pod_worker_duration_seconds_count{operation_type="create"}') >= 1
    assert metric(text, "process_resident_memory_bytes") > 0
    assert metric(text, "kubelet_pleg_relist_duration_seconds_count") >= 1
    assert "prober_probe_total" not in text


async def test_probe_metrics(env, node):
    cl, _, pods, _ = node
    uid = (await pods.get(POD, "default"))["metadata"]["uid"]
    name = (f'prober_probe_total{{container="main",namespace="default",pod="{POD}",pod_uid="{uid}",'
            f'probe_type="Readiness",result="successful"}}')

    async def counted():
        text = (await raw(env, f"{PROXY}/metrics/probes")).stdout
        return name in text and metric(text, name) >= 2
    await wait_for(counted, 30, interval=0.5)


async def test_configz(env, node):
    _, kl, _, _ = node
    body = json.loads((await raw(env, f"{PROXY}/configz")).stdout)
    cfg = body["kubeletconfig"]
    assert (cfg["kind"], cfg["apiVersion"]) == ("KubeletConfiguration", "kubelet.config.k8s.io/v1beta1")
    assert cfg["clusterDomain"] == "cluster.local"
    assert cfg["port"] == kl.server.port and cfg["maxPods"] == 110
    assert cfg["evictionHard"]["memory.available"] == "100Mi"
    assert cfg["authorization"]["mode"] == "Webhook"


async def test_spec(env, node):
    info = json.loads((await raw(env, f"{PROXY}/spec/")).stdout)
    assert info["num_cores"] == os.cpu_count() and info["memory_capacity"] > 0
    assert info["boot_id"] == open("/proc/sys/kernel/random/boot_id").read().strip()


async def test_runningpods_and_healthz(env, node):
    cl, _, pods, _ = node
    uid = (await pods.get(POD, "default"))["metadata"]["uid"]
    body = json.loads((await raw(env, f"{PROXY}/runningpods/")).stdout)
    assert body["kind"] == "PodList"
    mine = [p for p in body["items"] if p["metadata"]["uid"] == uid]
    assert len(mine) == 1
    assert (mine[0]["metadata"]["name"], mine[0]["metadata"]["namespace"]) == (POD, "default")
    assert [c["name"] for c in mine[0]["spec"]["containers"]] == ["main"]
    assert mine[0]["spec"]["containers"][0]["image"]
    for check in ("ping", "log", "syncloop"):
        assert (await raw(env, f"{PROXY}/healthz/{check}")).stdout == "ok"
    assert (await raw(env, f"{PROXY}/healthz?verbose")).stdout == \
        "[+]ping ok\n[+]log ok\n[+]syncloop ok\nhealthz check passed\n"


async def test_kubelet_authorizes_paths_by_subresource(env, node, tmp_path):
    """A user allowed only nodes/proxy reads /configz and /runningpods/ but gets 403 on
    /logs/ and /metrics (nodes/log, nodes/metrics); one allowed those two gets the
    reverse.  Through the API server a user without nodes/proxy is refused there."""
    srv = env["srv"]
    cl, kl, _, _ = node
    rbac = "rbac.authorization.k8s.io"
    roles = cl.resource(rbac, "v1", "clusterroles")
    bindings = cl.resource(rbac, "v1", "clusterrolebindings")
    grants = {"ep-proxy": ["nodes/proxy"], "ep-logs": ["nodes/log", "nodes/metrics"]}
    for user, resources in grants.items():
        await roles.create({"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": user},
                            "rules": [{"apiGroups": [""], "resources": resources, "verbs": ["get"]}]})
        await bindings.create({"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": user},
                               "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": user},
                               "subjects": [{"apiGroup": rbac, "kind": "User", "name": user}]})
    try:
        ca = pki.load_ca(srv.data_dir)
        base = f"https://127.0.0.1:{kl.server.port}"
        results = {}
        for user in grants:
            crt, key = pki.issue_client_cert(ca, user, [], 1)
            (tmp_path / f"{user}.crt").write_bytes(crt)
            (tmp_path / f"{user}.key").write_bytes(key)
            ctx = ssl.create_default_context(cafile=str(srv.data_dir / "tls" / "ca.crt"))
            ctx.load_cert_chain(str(tmp_path / f"{user}.crt"), str(tmp_path / f"{user}.key"))
            for path in ("/logs/", "/metrics", "/metrics/probes", "/configz", "/runningpods/", "/spec/"):
                results[(user, path)] = await asyncio.to_thread(_get, base + path, ctx)
        for path in ("/logs/", "/metrics", "/metrics/probes"):
            assert results[("ep-proxy", path)][0] == 403
            assert results[("ep-logs", path)][0] == 200
        sub = {"/logs/": "log", "/metrics": "metrics"}
        for path, s in sub.items():
            assert results[("ep-proxy", path)][1] == \
                f"Forbidden (user=ep-proxy, verb=get, resource=nodes, subresource={s})"
        # /spec/ is nodes/spec, which neither has
        assert results[("ep-proxy", "/spec/")][0] == results[("ep-logs", "/spec/")][0] == 403
        for path in ("/configz", "/runningpods/"):
            assert results[("ep-proxy", path)][0] == 200
            assert results[("ep-logs", path)][0] == 403
        assert results[("ep-logs", "/configz")][1] == \
            "Forbidden (user=ep-logs, verb=get, resource=nodes, subresource=proxy)"
        # through the API server the caller needs nodes/proxy, whatever the kubelet path
        kc = tmp_path / "ep-logs.kubeconfig"
        kargs = ["--kubeconfig", str(kc)]
        for args in (["config", "set-cluster", "c", f"--server={srv.url}",
                      f"--certificate-authority={srv.data_dir / 'tls' / 'ca.crt'}"],
                     ["config", "set-credentials", "u", f"--client-certificate={tmp_path / 'ep-logs.crt'}",
                      f"--client-key={tmp_path / 'ep-logs.key'}"],
                     ["config", "set-context", "c", "--cluster=c", "--user=u"], ["config", "use-context", "c"]):
            await asyncio.to_thread(srv.kubectl, *kargs, *args)
        r = await asyncio.to_thread(srv.kubectl, *kargs, "get", "--raw", f"{PROXY}/logs/", check=False)
        assert r.returncode == 1
        assert (f'nodes "{NODE}" is forbidden: User "ep-logs" cannot get resource "nodes/proxy" in API group "" '
                'at the cluster scope') in r.stderr
    finally:
        for user in grants:
            await bindings.delete(user)
            await roles.delete(user)
