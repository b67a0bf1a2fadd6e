"""A real `kyb server` on etcd survives etcd being gone for 30 s, without a restart, and
API writes survive the etcd leader of a 3-member cluster being killed.

Clients keep creating ConfigMaps through the API the whole time.  While etcd is down
(frozen with SIGSTOP, or killed and later restarted on its data) the API answers
retryable errors only (503, or 504 for a write that may still land, both with
Retry-After), and /readyz reports the etcd checks failing.  Afterwards writes succeed
again, every acknowledged write is stored, and a watch opened before the outage has
delivered every object exactly once (or ended with 410 Gone, after which the client
relists, as client-go does)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import time
from pathlib import Path
from typing import Optional

import aiohttp
import pytest

from fixtures.etcd import EtcdCluster, require_etcd
from fixtures.server import RunningServer, start_server

pytestmark = pytest.mark.slow

OUTAGE = 30.0  # seconds etcd stays down: the scenario itself, not a synchronisation wait
NS = "outage"
CM = f"/api/v1/namespaces/{NS}/configmaps"


class Writers:
    """`n` clients creating ConfigMaps until stopped.  A 503/504 is retried (after its
    Retry-After) with the same name; 409 AlreadyExists on such a retry means the earlier
    attempt landed.  Anything else is a failure of the test."""

    def __init__(self, session: aiohttp.ClientSession, url: str, n: int = 3) -> None:
        self.session, self.url, self.n = session, url, n
        self.acked: set[str] = set()
        self.landed_on_retry: set[str] = set()  # 409 after a retryable error: it is stored
        self.retryable: collections.Counter[int] = collections.Counter()
        self.other: list[str] = []
        self.stop = asyncio.Event()
        self.progress = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self.tasks = [asyncio.ensure_future(self._run(i)) for i in range(self.n)]

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)

    async def _run(self, i: int) -> None:
        seq = 0
        while not self.stop.is_set():
            name = f"w{i}-{seq:05d}"
            seq += 1
            retried = False
            while True:
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"n": name}}
                try:
                    async with self.session.post(self.url + CM, json=body) as r:
                        status, text, retry_after = r.status, await r.text(), r.headers.get("Retry-After")
                except aiohttp.ClientError as e:
                    self.other.append(f"{name}: connection error {e!r}")
                    return
                if status == 201:
                    self.acked.add(name)
                    self.progress.set()
                    break
                if status == 409 and retried and json.loads(text).get("reason") == "AlreadyExists":
                    self.landed_on_retry.add(name)
                    break
                if status in (503, 504) and retry_after:
                    self.retryable[status] += 1
                    retried = True
                    await asyncio.sleep(float(retry_after))  # the server's requested backoff
                    continue
                self.other.append(f"{name}: {status} {text[:300]}")
                return


class Watcher:
    """A watch on the namespace's ConfigMaps opened before the outage.  Counts ADDED
    events per name; on 410 Gone it relists (the list replaces what it knew) and
    watches again from the list's resourceVersion."""

    def __init__(self, session: aiohttp.ClientSession, url: str, rv: str, initial: set[str]) -> None:
        self.session, self.url, self.rv = session, url, rv
        self.seen: collections.Counter[str] = collections.Counter({n: 1 for n in initial})
        self.relists = 0
        self.rewatches = 0
        self.errors: list[str] = []
        self.changed = asyncio.Event()
        self.task: Optional[asyncio.Task] = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    async def _relist(self) -> None:
        async with self.session.get(self.url + CM) as r:
            assert r.status == 200, await r.text()
            doc = await r.json()
        self.seen = collections.Counter({o["metadata"]["name"]: 1 for o in doc["items"]})
        self.rv = doc["metadata"]["resourceVersion"]
        self.relists += 1

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        while True:
            params = {"watch": "1", "resourceVersion": self.rv, "allowWatchBookmarks": "true",
                      "timeoutSeconds": "900"}
            try:
                async with self.session.get(self.url + CM, params=params, timeout=timeout) as r:
                    if r.status == 410:
                        await self._relist()
                        continue
                    if r.status != 200:
                        self.errors.append(f"watch answered {r.status}: {await r.text()}")
                        return
                    async for line in r.content:
                        if not line.strip():
                            continue
                        ev = json.loads(line)
                        obj = ev["object"]
                        if ev["type"] == "ERROR":
                            if obj.get("code") == 410:
                                await self._relist()
                                break
                            self.errors.append(f"watch error: {obj}")
                            return
                        self.rv = obj["metadata"]["resourceVersion"]
                        if ev["type"] == "ADDED":
                            self.seen[obj["metadata"]["name"]] += 1
                        elif ev["type"] != "BOOKMARK":
                            self.errors.append(f"unexpected {ev['type']} for {obj['metadata'].get('name')}")
                        self.changed.set()
                    else:
                        self.rewatches += 1  # the server closed the stream: resume from the last rv
            except aiohttp.ClientError as e:
                self.errors.append(f"watch connection: {e!r}")
                return

    async def wait_for(self, names: set[str], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not names <= set(self.seen):
                self.changed.clear()
                if self.task is not None and self.task.done():
                    raise AssertionError(f"watch ended: {self.errors}")
                await self.changed.wait()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def _readyz(session: aiohttp.ClientSession, url: str, path: str = "/readyz?verbose") -> tuple[int, str]:
    async with session.get(url + path) as r:
        return r.status, await r.text()


async def _wait_readyz(session, url: str, status: int, timeout: float) -> str:
    """Poll /readyz (it has no watch) until it answers `status`, within `timeout`."""
    deadline = time.monotonic() + timeout
    last: tuple[int, str] = (0, "")
    while time.monotonic() < deadline:
        last = await _readyz(session, url)
        if last[0] == status:
            return last[1]
        await asyncio.sleep(0.2)
    raise AssertionError(f"/readyz did not answer {status} within {timeout}s; last {last}")


async def _verify(session: aiohttp.ClientSession, url: str, writers: Writers, watcher: Watcher) -> None:
    """Every acknowledged write is stored, and the watch delivered each object once."""
    # every acknowledged write is stored
    async with session.get(url + CM) as r:
        assert r.status == 200
        stored = {o["metadata"]["name"]: o for o in (await r.json())["items"]}
    written = writers.acked | writers.landed_on_retry
    assert written <= set(stored), sorted(written - set(stored))[:10]
    for name in written:
        assert stored[name]["data"] == {"n": name}
    # nothing but what the writers attempted (and the root CA ConfigMap of the controllers)
    assert {n for n in stored if not n.startswith("w")} <= {"kube-root-ca.crt"}

    # the watch from before the outage: every stored object exactly once, no gap
    try:
        await watcher.wait_for(set(stored), timeout=60)
    finally:
        await watcher.close()
    assert not watcher.errors, watcher.errors
    dupes = {n: c for n, c in watcher.seen.items() if c != 1}
    assert not dupes, dupes
    assert set(watcher.seen) == set(stored), sorted(set(watcher.seen) ^ set(stored))[:10]


@pytest.fixture
def server_on_etcd(tmp_path: Path):
    require_etcd()
    etcd = EtcdCluster(tmp_path / "etcd").start()
    srv: Optional[RunningServer] = None
    try:
        srv = start_server(tmp_path / "srv", extra=("--datastore-endpoint", etcd.url, "--token", "outage-token"),
                           timeout=60)
        yield etcd, srv
    finally:
        if srv is not None:
            srv.stop()
        member = etcd.members[0]
        if member.running:
            os.kill(member.pid, signal.SIGCONT)  # a frozen member cannot act on SIGKILL's cleanup otherwise
        etcd.kill()


@pytest.mark.parametrize("how", ["sigstop", "kill"])
async def test_server_survives_etcd_down_30s(server_on_etcd, how):
    etcd, srv = server_on_etcd
    member = etcd.members[0]
    conn = aiohttp.TCPConnector(ssl=srv.ssl_context(), limit=20)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as session:
        url = srv.url
        writers, watcher = await _start_traffic(session, url)
        try:
            await _wait_acked(writers, 20, 30)
            status, text = await _readyz(session, url)
            assert status == 200 and "[+]etcd ok" in text, text

            # ---- etcd goes away
            if how == "sigstop":
                os.kill(member.pid, signal.SIGSTOP)
            else:
                await asyncio.to_thread(member.kill)
            down_at = time.monotonic()
            acked_before = len(writers.acked | writers.landed_on_retry)

            text = await _wait_readyz(session, url, 500, timeout=10)
            assert "[-]etcd failed: reason withheld\n" in text and text.endswith("readyz check failed\n"), text
            status, single = await _readyz(session, url, "/readyz/etcd")
            assert status == 500 and single.startswith("internal server error: "), single
            assert (await _readyz(session, url, "/livez"))[0] == 200  # alive, only not ready

            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))  # the outage itself
            assert sum(writers.retryable.values()) > 0, "no client saw a retryable error during the outage"
            assert not writers.other, writers.other[:5]
            assert srv.proc.poll() is None, "the API server died while etcd was down"

            # ---- etcd comes back; the same server process recovers
            if how == "sigstop":
                os.kill(member.pid, signal.SIGCONT)
            else:
                await asyncio.to_thread(etcd.restart, member)
            await _wait_readyz(session, url, 200, timeout=60)
            await _wait_acked(writers, acked_before + 20, 60)
        finally:
            await writers.finish()
        assert not writers.other, writers.other[:5]

        await _verify(session, url, writers, watcher)
        assert srv.proc.poll() is None
        print(f"{how}: acked={len(writers.acked)} landed_on_retry={len(writers.landed_on_retry)} "
              f"retryable={dict(writers.retryable)} relists={watcher.relists} rewatches={watcher.rewatches}")


async def _start_traffic(session: aiohttp.ClientSession, url: str) -> tuple[Writers, Watcher]:
    async with session.post(url + "/api/v1/namespaces", json={"metadata": {"name": NS}}) as r:
        assert r.status == 201, await r.text()
    async with session.get(url + CM) as r:
        doc = await r.json()
    watcher = Watcher(session, url, doc["metadata"]["resourceVersion"], set())
    watcher.start()
    writers = Writers(session, url)
    writers.start()
    return writers, watcher


async def _wait_acked(writers: Writers, count: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while len(writers.acked | writers.landed_on_retry) < count:
            writers.progress.clear()
            await writers.progress.wait()


async def test_api_writes_survive_killing_the_etcd_leader(tmp_path):
    require_etcd()
    etcd = EtcdCluster(tmp_path / "etcd", size=3).start()
    srv: Optional[RunningServer] = None
    try:
        srv = start_server(tmp_path / "srv", extra=("--datastore-endpoint", etcd.url, "--token", "leader-kill"),
                           timeout=90)
        conn = aiohttp.TCPConnector(ssl=srv.ssl_context(), limit=20)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as session:
            writers, watcher = await _start_traffic(session, srv.url)
            try:
                await _wait_acked(writers, 30, 60)
                leader = await asyncio.to_thread(etcd.leader)
                await asyncio.to_thread(leader.kill)  # mid-stream: no graceful hand-over
                before = len(writers.acked | writers.landed_on_retry)
                await _wait_acked(writers, before + 50, 90)  # the two survivors elect and serve
                await asyncio.to_thread(etcd.restart, leader)
                await _wait_acked(writers, before + 80, 90)
            finally:
                await writers.finish()
            assert not writers.other, writers.other[:5]
            await _verify(session, srv.url, writers, watcher)
            assert srv.proc.poll() is None
            print(f"leader kill: acked={len(writers.acked)} landed_on_retry={len(writers.landed_on_retry)} "
                  f"retryable={dict(writers.retryable)} relists={watcher.relists}")
    finally:
        if srv is not None:
            srv.stop()
        etcd.kill()
