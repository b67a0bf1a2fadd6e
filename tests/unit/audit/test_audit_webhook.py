"""The audit webhook backend against real HTTP servers on 127.0.0.1: batching, retries
after a transient 500, a dead and a hanging webhook (events dropped and counted, the
caller never waits), the blocking modes, blocking-strict failing the request, the flag
validation messages, the token bucket, and the slow-request latency annotations."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kybernetes.apiserver import audit as audit_pkg
from kybernetes.apiserver import latency
from kybernetes.apiserver.audit.buffered import BatchConfig, BufferedBackend, TokenBucket, validate
from kybernetes.apiserver.audit.policy import parse_policy
from kybernetes.apiserver.audit.webhook import WebhookBackend, make_webhook_backend
from kybernetes.apiserver import negotiation
from kybernetes.apiserver.filters import audit, authentication, authorization, requestinfo


def ev(i: int) -> dict:
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"id-{i}", "stage": "ResponseComplete"}


class Hook:
    """An audit webhook on 127.0.0.1 whose answers the test scripts."""

    def __init__(self) -> None:
        self.batches: list[dict] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        self.hang = asyncio.Event()   # set = answer; clear = hang until released
        self.hang.set()
        self.calls = 0
        self.arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.json()
        await self.hang.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.batches.append(body)
        async with self.arrived:
            self.arrived.notify_all()
        return web.Response(status=status, text="{}")

    def items(self) -> list[dict]:
        return [i for b in self.batches for i in b["items"]]

    async def wait_items(self, n: int, timeout: float = 10) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.items()) >= n), timeout)


@pytest.fixture
async def hook(tmp_path):
    h = Hook()
    app = web.Application()
    app.router.add_post("/audit", h.handle)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    h.kubeconfig = _kubeconfig(tmp_path, f"http://127.0.0.1:{srv.port}/audit")
    yield h
    h.hang.set()
    await srv.close()


def _kubeconfig(tmp_path, server: str) -> str:
    p = tmp_path / f"hook-{abs(hash(server))}.kubeconfig"
    p.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: hook
  cluster: {{server: "{server}"}}
users:
- name: api
  user: {{token: hook-token}}
contexts:
- name: default
  context: {{cluster: hook, user: api}}
current-context: default
""")
    return str(p)


def _dead_url() -> str:
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/audit"


FAST = dict(initial_backoff=0.001)


async def test_batches_are_event_lists_of_bounded_size(hook):
    b = BufferedBackend(WebhookBackend(hook.kubeconfig, **FAST),
                        BatchConfig(max_batch_size=3, max_batch_wait=0.05, throttle_enable=False))
    await b.start()
    try:
        for i in range(7):
            assert b.process(ev(i)) is True
        await hook.wait_items(7)
        assert all(x["kind"] == "EventList" and x["apiVersion"] == "audit.k8s.io/v1" for x in hook.batches)
        assert max(len(x["items"]) for x in hook.batches) <= 3 and len(hook.batches) >= 3
        assert sorted(i["auditID"] for i in hook.items()) == sorted(f"id-{i}" for i in range(7))
        assert b.error_counts() == {"buffered": 0, "webhook": 0}
    finally:
        await b.shutdown()


async def test_retry_succeeds_after_transient_500(hook):
    hook.statuses = [500, 503]
    w = WebhookBackend(hook.kubeconfig, **FAST)
    await w.start()
    try:
        assert await w.send([ev(1)]) is True
        assert w.attempts_total == 3 and w.errors_total == 0
        assert [i["auditID"] for i in hook.items()] == ["id-1"]
    finally:
        await w.shutdown()


async def test_client_errors_are_retried_too_then_counted(hook):
    # upstream's audit webhook retries on any error, not only 5xx
    hook.statuses = [400] * 5
    w = WebhookBackend(hook.kubeconfig, **FAST)
    await w.start()
    try:
        assert await w.send([ev(1), ev(2)]) is False
        assert w.attempts_total == 5 and w.errors_total == 2 and hook.items() == []
    finally:
        await w.shutdown()


async def test_dead_webhook_drops_and_counts_without_blocking(tmp_path):
    b = BufferedBackend(WebhookBackend(_kubeconfig(tmp_path, _dead_url()), **FAST),
                        BatchConfig(max_batch_size=10, max_batch_wait=0.01, throttle_enable=False))
    await b.start()
    try:
        for i in range(25):
            assert b.process(ev(i)) is True  # returns at once; delivery is elsewhere
        deadline = time.monotonic() + 10
        while b.dropped_total < 25 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert b.error_counts() == {"buffered": 0, "webhook": 25}
        assert b.delegate.attempts_total >= 5 * 3  # every batch was tried 5 times
    finally:
        await b.shutdown()


async def test_hanging_webhook_overflows_buffer_and_counts_drops(hook):
    hook.hang.clear()
    b = BufferedBackend(WebhookBackend(hook.kubeconfig, **FAST),
                        BatchConfig(buffer_size=5, max_batch_size=2, max_batch_wait=0.01,
                                    throttle_enable=True, throttle_qps=50, throttle_burst=1))
    await b.start()
    try:
        for i in range(2):
            b.process(ev(i))
        deadline = time.monotonic() + 5
        while hook.calls < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert hook.calls == 1  # the first batch is stuck in the webhook
        for i in range(2, 40):
            assert b.process(ev(i)) is True  # never waits for the webhook
        # nothing drains the buffer while the caller runs: 5 fit, the other 33 are dropped
        assert b.errors_total == 33
        assert b.dropped_total == b.errors_total
        hook.hang.set()
        await hook.wait_items(2)
    finally:
        await b.shutdown()


async def test_shutdown_flushes_the_buffer(hook):
    b = BufferedBackend(WebhookBackend(hook.kubeconfig, **FAST),
                        BatchConfig(max_batch_size=400, max_batch_wait=3600, throttle_enable=False))
    await b.start()
    for i in range(5):
        b.process(ev(i))
    await b.shutdown()
    assert len(hook.items()) == 5
    assert b.process(ev(99)) is True and b.errors_total == 1  # after shutdown: counted lost


async def test_blocking_modes(tmp_path, hook):
    blocking = make_webhook_backend(hook.kubeconfig, "blocking", BatchConfig(), 0.001)
    assert isinstance(blocking, WebhookBackend)
    await blocking.start()
    try:
        assert await blocking.process_async(ev(1)) is True
        assert [i["auditID"] for i in hook.items()] == ["id-1"]  # delivered before process returned
    finally:
        await blocking.shutdown()
    dead = _kubeconfig(tmp_path, _dead_url())
    for mode, answer in (("blocking", True), ("blocking-strict", False)):
        w = make_webhook_backend(dead, mode, BatchConfig(), 0.001)
        await w.start()
        try:
            assert await w.process_async(ev(2)) is answer
            assert w.errors_total == 1
        finally:
            await w.shutdown()
    assert isinstance(make_webhook_backend(hook.kubeconfig, "batch", BatchConfig(), 0.001), BufferedBackend)


def test_validation_messages():
    assert validate("webhook", "sync", BatchConfig()) == [
        'invalid audit webhook mode sync, allowed modes are "batch,blocking,blocking-strict"']
    assert validate("webhook", "batch", BatchConfig(buffer_size=0)) == [
        "invalid audit batch webhook buffer size 0, must be a positive number"]
    assert validate("webhook", "batch", BatchConfig(max_batch_size=-1)) == [
        "invalid audit batch webhook max batch size -1, must be a positive number"]
    assert validate("webhook", "batch", BatchConfig(throttle_qps=0)) == [
        "invalid audit batch webhook throttle QPS 0, must be a positive number"]
    assert validate("webhook", "batch", BatchConfig(throttle_burst=0)) == [
        "invalid audit batch webhook throttle burst 0, must be a positive number"]
    assert validate("webhook", "batch", BatchConfig(throttle_enable=False, throttle_qps=0)) == []
    assert validate("webhook", "blocking", BatchConfig(buffer_size=0)) == []


def test_flags_and_from_args(tmp_path, hook):
    import argparse

    p = argparse.ArgumentParser()
    audit_pkg.add_flags(p)
    pol = tmp_path / "policy.yaml"
    pol.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    args = p.parse_args(["--audit-webhook-batch-max-wait", "250ms", "--audit-webhook-batch-throttle-qps", "2.5",
                         "--audit-webhook-batch-throttle-burst", "3", "--audit-webhook-batch-max-size", "7",
                         "--audit-webhook-batch-buffer-size", "9", "--audit-webhook-initial-backoff", "1s",
                         "--audit-webhook-batch-throttle-enable", "false"])
    args.audit_policy_file, args.audit_log_path, args.audit_webhook_config_file = str(pol), "", hook.kubeconfig
    a = audit_pkg.from_args(args)
    assert isinstance(a.backend, BufferedBackend)
    assert a.backend.cfg == BatchConfig(buffer_size=9, max_batch_size=7, max_batch_wait=0.25, throttle_enable=False,
                                        throttle_qps=2.5, throttle_burst=3)
    assert a.backend.throttle is None and a.backend.delegate.initial_backoff == 1.0
    args.audit_webhook_mode = "sometimes"
    with pytest.raises(audit_pkg.AuditConfigError, match="allowed modes are"):
        audit_pkg.from_args(args)


async def test_token_bucket_burst_then_rate(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    slept: list[float] = []

    async def fake_sleep(d):
        slept.append(d)
        now[0] += d

    tb = TokenBucket(qps=4, burst=2)
    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    for _ in range(2):
        await tb.accept()
    assert slept == []  # the burst is free
    await tb.accept()
    assert slept and abs(sum(slept) - 0.25) < 1e-9  # then one token per 1/qps seconds


# ---------------------------------------------------------------------------- through the filter
async def allow(user, attrs):
    return True, False, "allowed by test"


async def ok(request):
    from kybernetes.apiserver.filters.audit import add_admission_annotation

    add_admission_annotation(request, "example.admission.k8s.io/decision", "kept")
    body, ctype = negotiation.encode({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}},
                                     negotiation.Output())
    return web.Response(body=body, content_type=ctype)


async def _client(backend):
    app = web.Application(middlewares=[requestinfo.with_request_info, authentication.authenticate, audit.audit,
                                       authorization.authorize])
    app["authorizer"] = allow
    auditor = audit_pkg.Auditor(parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                                              "rules": [{"level": "Metadata"}]}), backend)
    audit_pkg.install(app, auditor)
    app.router.add_route("*", "/{tail:.*}", ok)
    c = TestClient(TestServer(app, host="127.0.0.1"))
    await c.start_server()
    c.auditor = auditor
    return c


async def test_blocking_strict_dead_webhook_fails_the_request(tmp_path):
    w = make_webhook_backend(_kubeconfig(tmp_path, _dead_url()), "blocking-strict", BatchConfig(), 0.001)
    await w.start()
    c = await _client(w)
    try:
        r = await c.get("/api/v1/namespaces/default/configmaps/x")
        assert r.status == 500
        assert r.headers["Content-Type"].startswith("text/plain")
        assert await r.text() == ('Internal Server Error: "/api/v1/namespaces/default/configmaps/x": '
                                  "failed to store audit event\n")
        assert r.headers.get("Audit-Id")
        m = c.auditor.metrics()
        assert m["apiserver_audit_requests_rejected_total"] == 1
        assert m["apiserver_audit_error_total"] == {"webhook": 1}
    finally:
        await c.close()
        await w.shutdown()


async def test_batch_mode_dead_webhook_serves_and_counts(tmp_path):
    b = make_webhook_backend(_kubeconfig(tmp_path, _dead_url()), "batch",
                             BatchConfig(max_batch_wait=0.01, throttle_enable=False), 0.001)
    await b.start()
    c = await _client(b)
    try:
        for _ in range(5):
            r = await c.get("/api/v1/namespaces/default/configmaps/x")
            assert r.status == 200
        deadline = time.monotonic() + 10
        while b.dropped_total < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        m = c.auditor.metrics()
        assert m["apiserver_audit_event_total"] == 10  # RequestReceived + ResponseComplete each
        assert m["apiserver_audit_error_total"] == {"buffered": 0, "webhook": 10}
        assert m["apiserver_audit_level_total"] == {"Metadata": 5}
    finally:
        await c.close()
        await b.shutdown()


async def test_annotations_decision_admission_and_latency(hook, monkeypatch):
    w = make_webhook_backend(hook.kubeconfig, "blocking", BatchConfig(), 0.001)
    await w.start()
    c = await _client(w)
    try:
        await c.get("/api/v1/namespaces/default/configmaps/x")
        done = [i for i in hook.items() if i["stage"] == "ResponseComplete"]
        ann = done[0]["annotations"]
        assert ann["authorization.k8s.io/decision"] == "allow"
        assert ann["authorization.k8s.io/reason"] == "allowed by test"
        assert ann["example.admission.k8s.io/decision"] == "kept"
        assert not any(k.startswith("apiserver.latency.k8s.io/") for k in ann)  # a fast request
        monkeypatch.setattr(latency, "SLOW_THRESHOLD", -1.0)  # every request counts as slow
        await c.get("/api/v1/namespaces/default/configmaps/y")
        done = [i for i in hook.items() if i["stage"] == "ResponseComplete"]
        ann = done[-1]["annotations"]
        for layer in ("authentication", "authorization", "serialize-response-object", "total"):
            assert ann[f"apiserver.latency.k8s.io/{layer}"][-1] == "s", ann  # Go durations: 12.3µs, 1.2ms
    finally:
        await c.close()
        await w.shutdown()


def test_admission_annotation_rules():
    from kybernetes.apiserver.filters.audit import add_admission_annotation

    req: dict = {}
    add_admission_annotation(req, "a.example.com/x", "1")
    add_admission_annotation(req, "a.example.com/x", "1")  # the same value again is fine
    with pytest.raises(ValueError, match='not allowd to be overwritten, key:"a.example.com/x", old value: "1"'):
        add_admission_annotation(req, "a.example.com/x", "2")
    with pytest.raises(ValueError, match="right format is a DNS subdomain prefix"):
        add_admission_annotation(req, "noprefix", "v")
    with pytest.raises(ValueError, match="A qualified name like"):
        add_admission_annotation(req, "Bad_Prefix!/x", "v")
    assert req["audit_annotations"] == {"a.example.com/x": "1"}


def test_go_durations():
    assert latency.go_duration(0.0000123) == "12.3µs"
    assert latency.go_duration(0.5123) == "512.3ms"
    assert latency.go_duration(61.5) == "1m1.5s"
    t = latency.LatencyTrackers()
    assert latency.slow_request_annotations(t, 2.0) == {}  # nothing tracked: no annotations
    t.add("etcd", 0.25)
    assert latency.slow_request_annotations(t, 0.4) == {}
    assert latency.slow_request_annotations(t, 0.75) == {"apiserver.latency.k8s.io/etcd": "250ms",
                                                         "apiserver.latency.k8s.io/total": "750ms"}



async def test_bad_flags_stop_the_server_cleanly(tmp_path, hook):
    from types import SimpleNamespace

    pol = tmp_path / "policy.yaml"
    pol.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    args = SimpleNamespace(audit_policy_file=str(pol), audit_log_path="", audit_webhook_config_file=hook.kubeconfig,
                           audit_webhook_mode="batch", audit_webhook_batch_buffer_size=0)
    with pytest.raises(SystemExit, match="^kyb server: invalid audit batch webhook buffer size 0, must be a positive"):
        await audit_pkg.setup(web.Application(), args)
