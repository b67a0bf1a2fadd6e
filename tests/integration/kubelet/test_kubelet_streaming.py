"""Logs and streaming through the real kubectl 1.37 -> API server -> kubelet server ->
containerd: logs (tail, timestamps, follow, previous), exec with stdin, tty and exit
codes, attach, cp both ways, port-forward to an httpd in the pod, the kubelet's own
authentication and authorization, and a user without pods/exec rights getting 403."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from fixtures.images import BUSYBOX_REF
from fixtures.server import KUBECTL
from kl_helpers import on_pty, serving_kubelet, wait_for
from kybernetes.auth import pki

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-s"


def c(name, script, **kw):
    return {"name": name, "image": BUSYBOX_REF, "imagePullPolicy": "Never", "command": ["sh", "-c", script], **kw}


def pod(name, *containers, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": list(containers), **spec}}


def fetch(url: str, context=None) -> bytes:
    """GET url, entirely off the event loop (the kubelet under test runs on that loop)."""
    with urllib.request.urlopen(url, timeout=15, context=context) as r:
        return r.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def kubectl(srv, *args, **kw):
    return await asyncio.to_thread(srv.kubectl, *args, **kw)


@pytest.fixture
async def node(env, tmp_path):
    async with serving_kubelet(env, tmp_path, NODE) as n:
        yield n


async def running(pods, name, restarts=None):
    async def check():
        p = await pods.get(name, "default")
        st = (p.get("status") or {})
        if st.get("phase") != "Running":
            return None
        if restarts is not None and sum(s.get("restartCount", 0) for s in st.get("containerStatuses") or []) < restarts:
            return None
        return p
    return await wait_for(check, 60)


async def test_node_registers_daemon_port(node):
    cl, kl, _, _ = node
    n = await cl.resource("", "v1", "nodes").get(NODE)
    assert n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == kl.server.port != 10250


async def test_kubelet_authn_authz(env, node, tmp_path):
    """The kubelet answers only callers with a cluster cert (401 otherwise) and asks the API
    (SubjectAccessReview) whether they may use nodes/proxy (403 when not)."""
    srv = env["srv"]
    _, kl, _, _ = node
    tls = srv.data_dir / "tls"
    url = f"https://127.0.0.1:{kl.server.port}/pods"
    anon = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    with pytest.raises(urllib.error.HTTPError) as e:
        await asyncio.to_thread(urllib.request.urlopen, url, context=anon, timeout=10)
    assert e.value.code == 401
    crt, key = pki.issue_client_cert(pki.load_ca(srv.data_dir), "mallory", ["devs"], 1)
    (tmp_path / "m.crt").write_bytes(crt)
    (tmp_path / "m.key").write_bytes(key)
    ctx = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    ctx.load_cert_chain(str(tmp_path / "m.crt"), str(tmp_path / "m.key"))
    with pytest.raises(urllib.error.HTTPError) as e:
        await asyncio.to_thread(urllib.request.urlopen, url, context=ctx, timeout=10)
    assert e.value.code == 403
    assert e.value.read().decode() == "Forbidden (user=mallory, verb=get, resource=nodes, subresource=proxy)"
    admin = srv.ssl_context()
    assert b'"kind":"PodList"' in await asyncio.to_thread(fetch, url, admin)
    # nodes/proxy through the API server reaches the same kubelet
    out = await kubectl(srv, "get", "--raw", f"/api/v1/nodes/{NODE}/proxy/healthz")
    assert out.stdout == "ok"


async def test_logs(env, node):
    srv = env["srv"]
    _, _, pods, names = node
    names.append("talker")
    # containerd copies stdout and stderr separately, so their order in the log is only fixed
    # when the stderr line waits until the stdout lines are in it (the test says when)
    await pods.create(pod("talker", c("main", "seq 1 5; until [ -f /tmp/err ]; do sleep 0.1; done; echo err >&2; "
                                              "while true; do if [ -f /tmp/go ]; then "
                                              "echo \"got $(cat /tmp/go)\"; rm /tmp/go; fi; sleep 0.1; done")))
    await running(pods, "talker")

    async def lines(n):
        out = await kubectl(srv, "logs", "talker")
        return out.stdout if out.stdout.count("\n") >= n else None
    assert await wait_for(lambda: lines(5), 30) == "1\n2\n3\n4\n5\n"
    await kubectl(srv, "exec", "talker", "--", "touch", "/tmp/err")
    assert await wait_for(lambda: lines(6), 30) == "1\n2\n3\n4\n5\nerr\n"
    assert (await kubectl(srv, "logs", "talker", "--tail=2")).stdout == "5\nerr\n"
    assert (await kubectl(srv, "logs", "talker", "--limit-bytes=3")).stdout == "1\n2"
    stamped = (await kubectl(srv, "logs", "talker", "--timestamps", "--tail=1")).stdout
    ts, msg = stamped.rstrip("\n").split(" ", 1)
    assert msg == "err" and ts.endswith("Z") and "T" in ts
    assert (await kubectl(srv, "logs", "talker", "--since=1h")).stdout.startswith("1\n")
    # a container that does not exist: upstream's BadRequest
    bad = await kubectl(srv, "logs", "talker", "-c", "nope", check=False)
    assert bad.returncode == 1
    assert "container nope is not valid for pod talker" in bad.stderr

    # bad options: upstream's PodLogOptions validation
    bad = await kubectl(srv, "get", "--raw", "/api/v1/namespaces/default/pods/talker/log?limitBytes=0&tailLines=-2",
                        check=False)
    assert bad.returncode == 1
    assert bad.stderr == ('The PodLogOptions "talker" is invalid: \n'
                          '* tailLines: Invalid value: -2: must be greater than or equal to 0\n'
                          '* limitBytes: Invalid value: 0: must be greater than 0\n')

    # follow: lines written after the request started arrive on the open stream
    proc = await asyncio.to_thread(
        subprocess.Popen, [KUBECTL, "--kubeconfig", str(srv.kubeconfig), "logs", "-f", "talker", "--tail=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = await asyncio.to_thread(proc.stdout.readline)
        assert first == b"err\n"
        await kubectl(srv, "exec", "talker", "--", "sh", "-c", "echo hello > /tmp/go")
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line == b"got hello\n"
    finally:
        proc.kill()
        await asyncio.to_thread(proc.wait)


async def test_logs_previous(env, node):
    srv = env["srv"]
    _, _, pods, names = node
    names.append("crasher")
    await pods.create(pod("crasher", c("main", "echo run-$(cat /proc/sys/kernel/random/uuid | cut -c1-8); "
                                               "sleep 1; exit 1")))
    await running(pods, "crasher", restarts=1)

    async def both():
        prev = await kubectl(srv, "logs", "crasher", "--previous", check=False)
        cur = await kubectl(srv, "logs", "crasher", check=False)
        if prev.returncode or cur.returncode or not prev.stdout or not cur.stdout:
            return None
        return prev.stdout, cur.stdout
    prev, cur = await wait_for(both, 30)
    assert prev.startswith("run-") and cur.startswith("run-") and prev != cur


async def test_exec(env, node):
    srv = env["srv"]
    _, _, pods, names = node
    names.append("shell")
    await pods.create(pod("shell", c("main", "exec sleep 3600")))
    await running(pods, "shell")
    out = await kubectl(srv, "exec", "shell", "--", "sh", "-c", "echo out; echo err >&2")
    assert (out.stdout, out.stderr) == ("out\n", "err\n")
    # the exit code comes back
    r = await kubectl(srv, "exec", "shell", "--", "sh", "-c", "exit 3", check=False)
    assert r.returncode == 3
    # stdin reaches the process and its end closes it
    r = await kubectl(srv, "exec", "-i", "shell", "--", "cat", input="line one\nline two\n")
    assert r.stdout == "line one\nline two\n"
    r = await kubectl(srv, "exec", "-i", "shell", "--", "wc", "-c", input="x" * 200000)
    assert r.stdout.strip() == "200000"
    # a tty: the process sees a terminal and output comes back through it
    seen = await asyncio.to_thread(on_pty, [KUBECTL, "--kubeconfig", str(srv.kubeconfig), "exec", "-i", "-t",
                                            "shell", "--", "sh", "-c", "tty; read x; echo got-$x"],
                                   b"abc\r", b"got-abc")
    assert b"/dev/pts/" in seen

    # kubectl's SPDY fallback (what it uses when WebSockets are turned off or refused)
    spdy = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
    out = await kubectl(srv, "exec", "shell", "-v=6", "--", "sh", "-c", "echo out; echo err >&2", env=spdy)
    assert out.stdout == "out\n" and "err\n" in out.stderr
    # it really took the SPDY path: a POST answered 101, no WebSocket GET
    assert 'verb="POST"' in out.stderr and "/exec?" in out.stderr and "101 Switching Protocols" in out.stderr
    r = await kubectl(srv, "exec", "shell", "--", "sh", "-c", "exit 7", check=False, env=spdy)
    assert r.returncode == 7
    r = await kubectl(srv, "exec", "-i", "shell", "--", "wc", "-c", input="y" * 100000, env=spdy)
    assert r.stdout.strip() == "100000"

    # kubectl cp both ways (tar over exec with stdin)
    local = env["data_dir"] / "cp-src.txt"
    local.write_text("copied content\n" * 100)
    await kubectl(srv, "cp", str(local), "default/shell:/tmp/in.txt")
    r = await kubectl(srv, "exec", "shell", "--", "cat", "/tmp/in.txt")
    assert r.stdout == local.read_text()
    back = env["data_dir"] / "cp-back.txt"
    await kubectl(srv, "cp", "default/shell:/tmp/in.txt", str(back))
    assert back.read_text() == local.read_text()


async def test_attach(env, node):
    srv = env["srv"]
    _, _, pods, names = node
    names.append("reader")
    await pods.create(pod("reader", c("main", "while read l; do echo \"echo:$l\"; done; echo bye", stdin=True,
                                      stdinOnce=False)))
    await running(pods, "reader")
    r = await kubectl(srv, "attach", "-i", "reader", input="ping\n", timeout=30, check=False)
    assert "echo:ping" in r.stdout


async def test_port_forward(env, node):
    srv = env["srv"]
    _, _, pods, names = node
    names.append("web")
    await pods.create(pod("web", c("main", "mkdir -p /www && echo hello-from-pod > /www/index.html && "
                                           "exec httpd -f -p 8080 -h /www")))
    await running(pods, "web")
    # WebSocket-tunnelled SPDY (kubectl's default), then plain SPDY (its fallback)
    for websockets in ("true", "false"):
        port = free_port()
        proc = await asyncio.to_thread(
            subprocess.Popen, [KUBECTL, "--kubeconfig", str(srv.kubeconfig), "port-forward", "pod/web",
                               f"{port}:8080", "--address", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, KUBECTL_PORT_FORWARD_WEBSOCKETS=websockets))
        try:
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
            assert b"Forwarding from 127.0.0.1:" in line
            for _ in range(3):  # several connections over the one session
                assert await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/index.html") == b"hello-from-pod\n"
        finally:
            proc.kill()
            await asyncio.to_thread(proc.wait)


async def test_exec_forbidden_without_rights(env, node, tmp_path):
    """A user who may read pods (and even `get` pods/exec) but not `create` pods/exec gets 403."""
    srv = env["srv"]
    cl, _, pods, names = node
    names.append("guarded")
    await pods.create(pod("guarded", c("main", "exec sleep 3600")))
    await running(pods, "guarded")
    rbac = "rbac.authorization.k8s.io"
    roles = cl.resource(rbac, "v1", "roles", namespaced=True)
    bindings = cl.resource(rbac, "v1", "rolebindings", namespaced=True)
    await roles.create({"apiVersion": f"{rbac}/v1", "kind": "Role",
                        "metadata": {"name": "peek", "namespace": "default"},
                        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log", "pods/exec"],
                                   "verbs": ["get", "list"]}]})
    await bindings.create({"apiVersion": f"{rbac}/v1", "kind": "RoleBinding",
                           "metadata": {"name": "peek", "namespace": "default"},
                           "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "peek"},
                           "subjects": [{"apiGroup": rbac, "kind": "User", "name": "eve"}]})
    try:
        crt, key = pki.issue_client_cert(pki.load_ca(srv.data_dir), "eve", [], 1)
        (tmp_path / "eve.crt").write_bytes(crt)
        (tmp_path / "eve.key").write_bytes(key)
        kc = tmp_path / "eve.kubeconfig"
        base = ["--kubeconfig", str(kc)]
        for args in (["config", "set-cluster", "c", f"--server={srv.url}",
                      f"--certificate-authority={srv.data_dir / 'tls' / 'ca.crt'}"],
                     ["config", "set-credentials", "eve", f"--client-certificate={tmp_path / 'eve.crt'}",
                      f"--client-key={tmp_path / 'eve.key'}"],
                     ["config", "set-context", "c", "--cluster=c", "--user=eve"],
                     ["config", "use-context", "c"]):
            await kubectl(srv, *base, *args)
        r = await kubectl(srv, *base, "exec", "guarded", "--", "true", check=False)
        assert r.returncode == 1
        assert ('pods "guarded" is forbidden: User "eve" cannot create resource "pods/exec" in API group "" '
                'in the namespace "default"') in r.stderr
        # reading logs is within the role
        r = await kubectl(srv, *base, "logs", "guarded")
        assert r.returncode == 0
    finally:
        await bindings.delete("peek", "default")
        await roles.delete("peek", "default")


def python_client_exec_and_logs(kubeconfig) -> tuple[str, str]:
    """The official Python client: exec over WebSocket v4.channel.k8s.io and read_namespaced_pod_log."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        core = client.CoreV1Api(c)
        out = stream(core.connect_get_namespaced_pod_exec, "pyclient", "default",
                     command=["sh", "-c", "echo from-python"], stderr=True, stdin=False, stdout=True, tty=False)
        logs = core.read_namespaced_pod_log("pyclient", "default", tail_lines=1)
    return out, logs


async def test_python_client(env, node):
    srv = env["srv"]
    _, _, pods, names = node
    names.append("pyclient")
    await pods.create(pod("pyclient", c("main", "echo first; echo last; exec sleep 3600")))
    await running(pods, "pyclient")

    async def logged():
        return "last" in (await kubectl(srv, "logs", "pyclient")).stdout
    await wait_for(logged, 30)
    out, logs = await asyncio.to_thread(python_client_exec_and_logs, srv.kubeconfig)
    assert out == "from-python\n"
    assert logs == "last\n"
