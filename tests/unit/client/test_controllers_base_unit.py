"""Controller base and manager without a server: workers, requeue rules, leader seam."""

from __future__ import annotations

import asyncio

import pytest

from client_fakes import FakeTransport, json_response, watch_response
from kybernetes.client import Client
from kybernetes.client.workqueue import ItemExponentialFailureRateLimiter
from kybernetes.controllers.base import Controller, Requeue
from kybernetes.controllers.manager import ControllerManager, start_controller_manager


def fake_client() -> Client:
    t = FakeTransport()

    def respond(req):
        if dict(req.params).get("watch") == "true":
            return watch_response([], hang=True)
        return json_response({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                              "items": [{"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "1"}}]})

    t.route(lambda r: True, respond)
    return Client("https://example.invalid", transport=t)


class Scripted(Controller):
    """reconcile() follows a script per call: "ok", "fail", "requeue", ("after", s)."""

    name = "scripted"

    def __init__(self, client, informers=None, script=(), **kw):
        self.script = list(script)
        self.calls: list[str] = []
        self.done = asyncio.Event()
        super().__init__(client, informers, rate_limiter=ItemExponentialFailureRateLimiter(0.001, 0.01), **kw)

    def setup(self) -> None:
        self.cms = self.watch("", "v1", "configmaps")

    async def reconcile(self, key: str) -> None:
        self.calls.append(key)
        step = self.script.pop(0) if self.script else "ok"
        if not self.script:
            self.done.set()
        if step == "fail":
            raise RuntimeError("boom")
        if step == "cancelled":
            raise asyncio.CancelledError()  # a stray cancellation from inside, not stop()
        if step == "requeue":
            raise Requeue()
        if isinstance(step, tuple):
            raise Requeue(after=step[1])


async def test_informer_events_reach_reconcile_and_failures_retry_with_backoff():
    c = fake_client()
    ctl = Scripted(c, script=["fail", "fail", "requeue", ("after", 0.01), "ok"])
    await ctl.start(sync_timeout=2)
    try:
        await asyncio.wait_for(ctl.done.wait(), 2)
        assert ctl.calls == ["ns/a"] * 5
        assert ctl.cms.has_synced
        # success forgets the backoff
        assert ctl.queue.num_requeues("ns/a") == 0
    finally:
        await ctl.stop()


async def test_a_cancellation_from_inside_reconcile_is_retried_and_keeps_the_worker():
    # a timeout inside reconcile can surface as CancelledError; if it ended the worker,
    # the key (and, once every worker went, the whole controller) would never sync again
    c = fake_client()
    ctl = Scripted(c, script=["cancelled", "cancelled", "ok"], workers=1)
    await ctl.start(sync_timeout=2)
    try:
        await asyncio.wait_for(ctl.done.wait(), 2)
        assert ctl.calls == ["ns/a"] * 3
        assert all(not t.done() for t in ctl._tasks)
        ctl.queue.add("ns/b")
        async with asyncio.timeout(2):
            while ctl.calls[-1] != "ns/b":
                await asyncio.sleep(0)
    finally:
        await ctl.stop()
    assert all(t.done() for t in ctl._tasks) or not ctl._tasks  # stop() still ends the workers


async def test_failures_count_requeues():
    c = fake_client()
    ctl = Scripted(c, script=["fail", "fail", "fail", ("after", 10)])  # parked after three failures
    await ctl.start(sync_timeout=2)
    try:
        await asyncio.wait_for(ctl.done.wait(), 2)
        assert ctl.calls == ["ns/a"] * 4
        assert ctl.queue.num_requeues("ns/a") == 0  # Requeue(after) forgets the failure backoff
        assert ctl.queue.waiting == 1
    finally:
        await ctl.stop()
    assert ctl.queue.shutting_down


async def test_manager_starts_and_stops_controllers():
    c = fake_client()
    m = ControllerManager(c, [lambda client, informers: Scripted(client, informers, script=["ok"])])
    await m.start()
    ctl = m.controller("scripted")
    assert ctl is not None
    await asyncio.wait_for(ctl.done.wait(), 2)
    await m.stop()
    assert m.controllers == [] and ctl.queue.shutting_down


async def test_manager_leader_seam():
    events = []
    gate = asyncio.Event()

    class ManualElector:
        async def run(self, on_started, on_stopped):
            await gate.wait()
            events.append("elected")
            await on_started()
            try:
                await asyncio.Event().wait()
            finally:
                events.append("lost")
                await on_stopped()

    c = fake_client()
    m = ControllerManager(c, [Scripted], leader_elector=ManualElector())
    await m.start(wait_leading=False)
    assert m.controllers == []  # not leading yet
    gate.set()
    await m.start()  # waits until leading
    assert [x.name for x in m.controllers] == ["scripted"]
    await m.stop()
    assert events == ["elected", "lost"] and m.controllers == []


async def test_start_controller_manager_with_kubeconfig_owns_client(tmp_path, monkeypatch):
    closed = []

    async def fake_close(self):
        closed.append(True)

    monkeypatch.setattr(Client, "close", fake_close)
    made = fake_client()
    monkeypatch.setattr(Client, "from_kubeconfig", classmethod(lambda cls, path, **kw: made))
    m = await start_controller_manager(tmp_path / "kubeconfig", controllers=[Scripted])
    assert m.client is made
    await m.stop()
    assert closed == [True]


async def test_start_failure_is_reported():
    class Broken(Controller):
        name = "broken"

        def setup(self) -> None:
            raise RuntimeError("cannot set up")

    with pytest.raises(RuntimeError, match="cannot set up"):
        await start_controller_manager(fake_client(), controllers=[Broken])
