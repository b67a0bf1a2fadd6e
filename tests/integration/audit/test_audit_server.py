"""Auditing in a real `kyb server`: kubectl create/get/watch/delete produce the right
events and stages at the right levels; Secrets at Metadata never leak data; a forbidden
request is logged with decision forbid; Audit-Id matches; the webhook backend delivers
EventLists to an HTTPS endpoint."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from fixtures.server import start_server

# the example policy from the upstream "Auditing" page, trimmed, plus a RequestResponse rule
POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
  - "RequestReceived"
rules:
  - level: RequestResponse
    omitStages: []
    resources:
    - group: ""
      resources: ["pods"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["pods/log", "pods/status"]
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
    - group: ""
      resources: ["endpoints", "services"]
  - level: None
    userGroups: ["system:authenticated"]
    nonResourceURLs:
    - "/api*"
    - "/version"
  - level: None
    nonResourceURLs: ["/readyz*", "/healthz*", "/livez*"]
  - level: Request
    omitStages: []
    resources:
    - group: ""
      resources: ["configmaps"]
    namespaces: ["kube-system"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["secrets", "configmaps"]
  - level: Request
    resources:
    - group: ""
    - group: "extensions"
  - level: Metadata
    omitStages:
      - "RequestReceived"
"""

SECRET_VALUE = "c3VwZXItc2VjcmV0LXZhbHVl"  # what must never reach a backend


def read_events(path: Path, pred=lambda evs: True, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        evs = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        if pred(evs) or time.monotonic() > deadline:
            return evs
        time.sleep(0.05)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("audit")
    (d / "policy.yaml").write_text(POLICY)
    (d / "tokens.csv").write_text('nobody-token,nobody,u-nobody,"people"\n')
    s = start_server(d / "data", extra=("--audit-policy-file", str(d / "policy.yaml"),
                                        "--audit-log-path", str(d / "audit.log"), "--disable-controllers",
                                        "--token-auth-file", str(d / "tokens.csv")))
    s.audit_log = d / "audit.log"
    yield s
    s.stop()


def by_id(evs, aid):
    return [e for e in evs if e["auditID"] == aid]


def test_pods_request_response_stages(srv):
    srv.kubectl("run", "web", "--image=nginx", "--restart=Never")
    evs = read_events(srv.audit_log, lambda e: any(x.get("verb") == "create" and x["stage"] == "ResponseComplete"
                                                   and x.get("objectRef", {}).get("resource") == "pods" for x in e))
    creates = [e for e in evs if e.get("verb") == "create" and e.get("objectRef", {}).get("resource") == "pods"]
    # the global omitStages is unioned with the rule's (an empty rule list does not undo it)
    assert [e["stage"] for e in creates] == ["ResponseComplete"]
    done = creates[-1]
    assert done["level"] == "RequestResponse" and done["responseStatus"]["code"] == 201
    assert done["requestObject"]["kind"] == "Pod" and done["requestObject"]["spec"]["containers"][0]["image"] == "nginx"
    assert done["responseObject"]["metadata"]["name"] == "web" and done["responseObject"]["metadata"]["uid"]
    assert done["objectRef"] == {"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"}
    assert done["user"]["username"] == "kyb-admin" and "system:masters" in done["user"]["groups"]
    assert done["sourceIPs"] == ["127.0.0.1"] and done["userAgent"].startswith("kubectl/")
    assert done["annotations"]["authorization.k8s.io/decision"] == "allow"

    srv.kubectl("get", "pod", "web", "-o", "json")
    srv.kubectl("delete", "pod", "web", "--wait=false")
    evs = read_events(srv.audit_log, lambda e: any(x.get("verb") == "delete" and x["stage"] == "ResponseComplete"
                                                   for x in e))
    get = [e for e in evs if e.get("verb") == "get" and e.get("objectRef", {}).get("name") == "web"][-1]
    assert "requestObject" not in get and get["responseObject"]["metadata"]["name"] == "web"
    dele = [e for e in evs if e.get("verb") == "delete" and e["stage"] == "ResponseComplete"][-1]
    assert dele["objectRef"]["name"] == "web" and dele["responseStatus"]["code"] == 200
    assert dele["requestObject"].get("propagationPolicy") == "Background"  # the DeleteOptions kubectl sent


def test_watch_has_response_started(srv):
    p = srv.kubectl("get", "pods", "-w", "--request-timeout=2s", check=False, timeout=30)
    assert p.returncode is not None
    evs = read_events(srv.audit_log, lambda e: any(x.get("verb") == "watch" and x["stage"] == "ResponseComplete"
                                                   for x in e))
    watch = [e for e in evs if e.get("verb") == "watch"]
    aid = watch[-1]["auditID"]
    assert [e["stage"] for e in by_id(watch, aid)] == ["ResponseStarted", "ResponseComplete"]
    assert by_id(watch, aid)[0]["responseStatus"]["code"] == 200
    assert "responseObject" not in by_id(watch, aid)[1]


def test_slow_request_latency_annotations(srv):
    """A watch that the server ends after 1 s is a request over upstream's 500 ms
    threshold: its ResponseComplete carries apiserver.latency.k8s.io/* (Go durations)
    for the layers it spent time in, and the total; its ResponseStarted does not."""
    srv.kubectl("create", "configmap", "lat-cm", "--from-literal=k=v")
    url = srv.url + "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"
    with urllib.request.urlopen(urllib.request.Request(url), context=srv.ssl_context(), timeout=30) as r:
        aid = r.headers["Audit-Id"]
        body = r.read()
    assert b"lat-cm" in body
    evs = by_id(read_events(srv.audit_log, lambda e: any(
        x["auditID"] == aid and x["stage"] == "ResponseComplete" for x in e)), aid)
    assert [e["stage"] for e in evs] == ["ResponseStarted", "ResponseComplete"]
    started, done = evs
    assert not any(k.startswith("apiserver.latency.k8s.io/") for k in started.get("annotations", {}))
    ann = done["annotations"]
    assert ann["authorization.k8s.io/decision"] == "allow"
    total = ann["apiserver.latency.k8s.io/total"]
    assert total.endswith("s") and not total.endswith(("ms", "µs", "ns")) and float(total[:-1]) >= 1, total
    for layer in ("serialize-response-object", "response-write", "authorization"):
        assert ann[f"apiserver.latency.k8s.io/{layer}"][-1] == "s", ann
    # a quick request gets none
    srv.kubectl("get", "configmap", "lat-cm")
    def quick_gets(evs):
        return [e for e in evs if e.get("objectRef", {}).get("name") == "lat-cm"
                and e["verb"] == "get" and e["stage"] == "ResponseComplete"]
    quick = quick_gets(read_events(srv.audit_log, quick_gets))
    assert quick and not any(k.startswith("apiserver.latency.k8s.io/") for k in quick[-1].get("annotations", {}))
    srv.kubectl("delete", "configmap", "lat-cm")


def test_secrets_metadata_only(srv):
    manifest = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"},
                           "data": {"password": SECRET_VALUE}})
    srv.kubectl("apply", "-f", "-", input=manifest)
    srv.kubectl("get", "secret", "s1", "-o", "yaml")
    srv.kubectl("get", "secrets")
    srv.kubectl("create", "configmap", "c1", "--from-literal=k=confidential-cm")
    srv.kubectl("delete", "secret", "s1")
    evs = read_events(srv.audit_log, lambda e: any(x.get("verb") == "delete" and
                                                   x.get("objectRef", {}).get("resource") == "secrets" for x in e))
    secret_evs = [e for e in evs if e.get("objectRef", {}).get("resource") == "secrets"]
    assert {e["verb"] for e in secret_evs} >= {"get", "list", "delete"}
    assert all(e["level"] == "Metadata" for e in secret_evs)
    raw = srv.audit_log.read_text()
    assert SECRET_VALUE not in raw and "confidential-cm" not in raw
    assert all("requestObject" not in e and "responseObject" not in e for e in secret_evs)
    # RequestReceived omitted globally for these
    assert all(e["stage"] == "ResponseComplete" for e in secret_evs)


def test_forbidden_decision_and_audit_id(srv):
    ctx = ssl.create_default_context(cafile=str(srv.data_dir / "tls" / "ca.crt"))
    req = urllib.request.Request(srv.url + "/api/v1/namespaces/default/configmaps",
                                 headers={"Authorization": "Bearer nobody-token"})
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert ei.value.code == 403
    aid = ei.value.headers["Audit-Id"]
    assert aid
    evs = read_events(srv.audit_log, lambda e: bool(by_id(e, aid)))
    (ev,) = by_id(evs, aid)
    assert ev["user"]["username"] == "nobody" and ev["verb"] == "list"
    assert ev["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert "authorization.k8s.io/reason" in ev["annotations"]
    assert ev["responseStatus"]["code"] == 403 and ev["responseStatus"]["reason"] == "Forbidden"


def test_audit_id_header_matches_log(srv):
    with urllib.request.urlopen(urllib.request.Request(srv.url + "/api/v1/namespaces/default/pods"),
                                context=srv.ssl_context(), timeout=10) as r:
        aid = r.headers["Audit-Id"]
    evs = read_events(srv.audit_log, lambda e: len(by_id(e, aid)) == 1)
    assert [e["stage"] for e in by_id(evs, aid)] == ["ResponseComplete"]
    assert by_id(evs, aid)[0]["responseObject"]["kind"] == "PodList"
    # non-audited paths carry an Audit-Id too
    with urllib.request.urlopen(srv.url + "/healthz", context=srv.ssl_context(), timeout=10) as r:
        assert len(r.headers["Audit-Id"]) == 36


# ---------------------------------------------------------------------------- webhook
def _self_signed(d: Path) -> tuple[Path, Path]:
    cert, key = d / "hook.crt", d / "hook.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_webhook_backend(tmp_path):
    cert, key = _self_signed(tmp_path)
    received: list[dict] = []
    auth: list[str] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            auth.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    httpd.socket = sctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    kc = tmp_path / "webhook.kubeconfig"
    kc.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: hook
  cluster:
    server: https://127.0.0.1:{port}/audit
    certificate-authority: {cert}
users:
- name: api
  user:
    token: hook-token
contexts:
- name: default
  context: {{cluster: hook, user: api}}
current-context: default
""")
    (tmp_path / "policy.yaml").write_text(POLICY)
    s = start_server(tmp_path / "data", extra=("--audit-policy-file", str(tmp_path / "policy.yaml"),
                                               "--audit-webhook-config-file", str(kc),
                                               "--audit-webhook-batch-max-wait", "0.2", "--disable-controllers"))
    try:
        manifest = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hooked"},
                               "data": {"password": SECRET_VALUE}})
        s.kubectl("apply", "-f", "-", input=manifest)
        s.kubectl("run", "hp", "--image=nginx", "--restart=Never")
        deadline = time.monotonic() + 15

        def items():
            return [i for b in received for i in b["items"]]
        while time.monotonic() < deadline and not any(
                i.get("objectRef", {}).get("name") == "hp" and i["stage"] == "ResponseComplete" for i in items()):
            time.sleep(0.1)
        assert received and all(b["kind"] == "EventList" and b["apiVersion"] == "audit.k8s.io/v1" for b in received)
        assert set(auth) == {"Bearer hook-token"}
        pod = [i for i in items() if i.get("objectRef", {}).get("name") == "hp" and i["stage"] == "ResponseComplete"]
        assert pod and pod[0]["level"] == "RequestResponse" and pod[0]["responseObject"]["kind"] == "Pod"
        assert any(i.get("objectRef", {}).get("name") == "hooked" for i in items())
        assert SECRET_VALUE not in json.dumps(received)
    finally:
        s.stop()
        httpd.shutdown()


# ---------------------------------------------------------------------------- webhook trouble
def _hook_kubeconfig(d: Path, url: str) -> Path:
    kc = d / "trouble.kubeconfig"
    kc.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: hook
  cluster: {{server: "{url}"}}
users:
- name: api
  user: {{token: hook-token}}
contexts:
- name: default
  context: {{cluster: hook, user: api}}
current-context: default
""")
    return kc


def _wait_log(s, text: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in s.log():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("trouble", ["hanging", "dead"])
def test_webhook_in_trouble_never_blocks_the_api(tmp_path, trouble):
    """A webhook that never answers (a listening socket nobody accepts on) or one that is
    not there at all: every kubectl call is still served, and the lost events are counted
    and reported (upstream HandlePluginError) instead of waited for."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if trouble == "hanging":
        sock.listen(64)  # the kernel completes connections; no one ever reads or answers
    else:
        sock.close()
    (tmp_path / "policy.yaml").write_text(POLICY)
    kc = _hook_kubeconfig(tmp_path, f"http://127.0.0.1:{port}/audit")
    s = start_server(tmp_path / "data", extra=(
        "--audit-policy-file", str(tmp_path / "policy.yaml"), "--audit-webhook-config-file", str(kc),
        "--audit-webhook-batch-buffer-size", "3", "--audit-webhook-batch-max-size", "1",
        "--audit-webhook-batch-max-wait", "50ms", "--audit-webhook-batch-throttle-qps", "0.1",
        "--audit-webhook-batch-throttle-burst", "1", "--audit-webhook-initial-backoff", "10ms",
        "--disable-controllers"))
    try:
        for i in range(8):
            s.kubectl("create", "configmap", f"cm{i}", f"--from-literal=k={i}")
        out = s.kubectl("get", "configmaps", "-o", "name").stdout
        assert all(f"configmap/cm{i}" in out for i in range(8))
        # the throttle lets one batch a 10 s through, so the 3-event buffer overflows
        assert _wait_log(s, "Error in audit plugin 'buffered' affecting 1 audit events: audit buffer queue blocked")
        if trouble == "dead":
            # the one batch let through failed its 5 attempts and was counted lost
            assert _wait_log(s, "Error in audit plugin 'webhook' affecting 1 audit events")
        # the loss is on /metrics too, under upstream's name
        metrics = s.kubectl("get", "--raw", "/metrics").stdout
        assert 'apiserver_audit_error_total{plugin="buffered"}' in metrics
    finally:
        s.stop()
        sock.close()
