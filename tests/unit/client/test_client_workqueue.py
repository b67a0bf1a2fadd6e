"""WorkQueue: dedup, processing/dirty semantics, rate limiters, add_after, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from kybernetes.client.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)


async def test_dedups_queued_keys():
    q: WorkQueue[str] = WorkQueue()
    for k in ("a", "b", "a", "a", "c", "b"):
        q.add(k)
    assert len(q) == 3
    assert [await q.get(), await q.get(), await q.get()] == ["a", "b", "c"]
    assert len(q) == 0


async def test_key_added_while_processing_is_requeued_after_done():
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0, "a key being processed must not be queued again yet"
    assert q.processing == {"a"}
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0 and not q.processing


async def test_done_without_new_add_does_not_requeue():
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0


async def test_processing_key_not_handed_to_second_worker():
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    first = await q.get()
    q.add("a")
    q.add("b")
    # a second worker gets b, never the a that is still in flight
    assert await q.get() == "b"
    second = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not second.done()
    q.done(first)
    assert await asyncio.wait_for(second, 1) == "a"


async def test_get_waits_for_add():
    q: WorkQueue[str] = WorkQueue()
    waiter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.add("x")
    assert await asyncio.wait_for(waiter, 1) == "x"


async def test_cancelled_getter_does_not_lose_the_wakeup():
    q: WorkQueue[str] = WorkQueue()
    g1 = asyncio.ensure_future(q.get())
    g2 = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.add("x")  # wakes g1 ...
    g1.cancel()  # ... which is cancelled before it runs
    assert await asyncio.wait_for(g2, 1) == "x"


def test_exponential_backoff_numbers():
    rl = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    delays = [rl.when("k") for _ in range(20)]
    assert delays[:5] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert delays[10] == pytest.approx(0.005 * 1024)
    assert delays[17] == pytest.approx(655.36)
    assert delays[18] == 1000.0 and delays[19] == 1000.0  # capped
    assert rl.num_requeues("k") == 20
    assert rl.when("other") == pytest.approx(0.005)  # per key
    rl.forget("k")
    assert rl.num_requeues("k") == 0
    assert rl.when("k") == pytest.approx(0.005)
    for _ in range(200):  # no overflow however long it fails
        assert rl.when("k") <= 1000.0


def test_bucket_rate_limiter_after_burst():
    now = [0.0]
    rl = BucketRateLimiter(qps=10, burst=3, clock=lambda: now[0])
    assert [rl.when(i) for i in range(3)] == [0, 0, 0]
    assert rl.when(3) == pytest.approx(0.1)
    assert rl.when(4) == pytest.approx(0.2)
    now[0] = 10.0  # refilled
    assert rl.when(5) == 0


def test_default_controller_rate_limiter_is_max_of_both():
    rl = default_controller_rate_limiter()
    assert isinstance(rl, MaxOfRateLimiter)
    assert [rl.when("k") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    rl.forget("k")
    assert rl.num_requeues("k") == 0


async def test_add_rate_limited_uses_backoff_and_forget_resets():
    q: WorkQueue[str] = WorkQueue(ItemExponentialFailureRateLimiter(0.005, 1.0))
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 1
    assert len(q) == 0 and q.waiting == 1
    assert await asyncio.wait_for(q.get(), 1) == "k"
    q.done("k")
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 2
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_add_after_orders_by_ready_time():
    q: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 0.06)
    q.add_after("b", 0.02)
    q.add_after("c", 0.04)
    q.add("now")
    got = []
    for _ in range(4):
        got.append(await asyncio.wait_for(q.get(), 1))
    assert got == ["now", "b", "c", "a"]
    assert loop.time() - start >= 0.06


async def test_add_after_earlier_time_wins():
    q: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    q.add_after("a", 10)
    q.add_after("a", 0.01)  # sooner: replaces
    q.add_after("a", 20)  # later: ignored
    assert q.waiting == 1
    start = loop.time()
    assert await asyncio.wait_for(q.get(), 1) == "a"
    assert loop.time() - start < 1
    assert q.waiting == 0


async def test_add_after_zero_is_immediate():
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0)
    assert len(q) == 1


async def test_add_after_dedups_with_queued_key():
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add_after("a", 0.01)
    assert await q.get() == "a"
    q.done("a")
    await asyncio.sleep(0.03)
    assert len(q) == 1  # the delayed add came back once the first was done


async def test_shutdown_wakes_getters_and_ignores_adds():
    q: WorkQueue[str] = WorkQueue()
    waiter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.add_after("later", 0.01)
    q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter, 1)
    q.add("x")
    q.add_rate_limited("y")
    assert len(q) == 0 and q.waiting == 0
    with pytest.raises(ShutDown):
        await q.get()
    assert q.shutting_down


async def test_shutdown_still_drains_queued_keys():
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.shutdown()
    assert await q.get() == "a"
    with pytest.raises(ShutDown):
        await q.get()


async def test_wait_idle():
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = await q.get()
    idle = asyncio.ensure_future(q.wait_idle())
    await asyncio.sleep(0)
    assert not idle.done()
    q.done(key)
    await asyncio.wait_for(idle, 1)
