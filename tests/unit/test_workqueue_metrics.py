"""Work queue and controller metrics as upstream names them, read back from the
prometheus-client registry, and the API server's request label cleaning."""

from __future__ import annotations

import asyncio
import secrets

from prometheus_client import REGISTRY, generate_latest

from kybernetes.apiserver.metrics import clean_scope, clean_verb
from kybernetes.apiserver.requestinfo import parse
from kybernetes.client.workqueue import WorkQueue


def sample(metric: str, name: str) -> float:
    return REGISTRY.get_sample_value(metric, {"name": name}) or 0.0


async def test_adds_depth_durations_and_retries():
    name = f"q-{secrets.token_hex(3)}"
    q: WorkQueue[str] = WorkQueue(name=name)
    q.add("a")
    q.add("a")  # deduplicated: not an add
    q.add("b")
    assert sample("workqueue_adds_total", name) == 2
    assert sample("workqueue_depth", name) == 2
    key = await q.get()
    assert sample("workqueue_depth", name) == 1
    assert sample("workqueue_queue_duration_seconds_count", name) == 1
    assert sample("workqueue_longest_running_processor_seconds", name) > 0
    assert sample("workqueue_unfinished_work_seconds", name) > 0
    q.add_rate_limited(key)
    assert sample("workqueue_retries_total", name) == 1
    q.done(key)
    assert sample("workqueue_work_duration_seconds_count", name) == 1
    assert sample("workqueue_longest_running_processor_seconds", name) == 0
    q.shutdown()
    assert REGISTRY.get_sample_value("workqueue_depth", {"name": name}) is None  # a stopped queue leaves no series


async def test_unnamed_queue_has_no_metrics():
    q: WorkQueue[str] = WorkQueue()
    before = generate_latest(REGISTRY)
    q.add("x")
    await q.get()
    assert b'name=""' not in generate_latest(REGISTRY) and b'name=""' not in before


async def test_controller_reconcile_outcomes():
    from kybernetes.controllers.base import Controller, Requeue

    class Flaky(Controller):
        name = f"flaky-{secrets.token_hex(3)}"
        calls = 0

        async def reconcile(self, key: str) -> None:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("boom")
            if Flaky.calls == 2:
                raise Requeue(after=0.001)
            third.set()

    class NoClient:
        def resource(self, *a, **k):
            return None

    third = asyncio.Event()
    c = Flaky(NoClient())
    await c.start()
    try:
        c.enqueue("k")

        def total(result: str) -> float:
            return REGISTRY.get_sample_value("controller_runtime_reconcile_total",
                                             {"controller": Flaky.name, "result": result}) or 0.0

        await asyncio.wait_for(third.wait(), 5)
        await asyncio.wait_for(c.queue.wait_idle(), 5)
        assert total("success") == 1
        assert total("error") == 1 and total("requeue_after") == 1
        assert REGISTRY.get_sample_value("controller_runtime_reconcile_errors_total", {"controller": Flaky.name}) == 1
        assert sample("workqueue_retries_total", Flaky.name) == 1
    finally:
        await c.stop()


def test_verb_and_scope_cleaning():
    def labels(method: str, path: str, query: str = "", ctype: str = ""):
        q = dict(p.split("=") for p in query.split("&") if p)
        info = parse(method, path, q)
        return clean_verb(method, info, ctype), clean_scope(info, method)

    assert labels("GET", "/api/v1/namespaces/ns/pods") == ("LIST", "namespace")
    assert labels("GET", "/api/v1/pods", "watch=true") == ("WATCH", "cluster")
    assert labels("GET", "/api/v1/namespaces/ns/pods/p") == ("GET", "resource")
    assert labels("POST", "/api/v1/namespaces/ns/pods") == ("POST", "resource")
    assert labels("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d", ctype="application/apply-patch+yaml") == (
        "APPLY", "resource")
    assert labels("GET", "/healthz") == ("GET", "")
