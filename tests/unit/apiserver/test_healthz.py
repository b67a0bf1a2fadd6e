"""/readyz text and the rate-limited datastore check (no server, no etcd)."""

from __future__ import annotations

import asyncio

from kybernetes.apiserver import healthz


async def _ok() -> bool:
    return True


async def _down() -> None:
    raise RuntimeError("error getting data from etcd: deadline exceeded")


async def test_root_passes_with_verbose_lines():
    checks = {"etcd": _ok, "etcd-readiness": _ok}
    assert await healthz.root("readyz", checks, {}, []) == (200, "ok")
    status, body = await healthz.root("readyz", checks, {"verbose": ""}, [])
    assert status == 200
    assert body == "[+]ping ok\n[+]etcd ok\n[+]etcd-readiness ok\nreadyz check passed\n"


async def test_root_fails_with_reason_withheld_and_single_check_says_why():
    checks = {"etcd": _down, "informer-sync": _ok}
    status, body = await healthz.root("readyz", checks, {}, [])
    assert status == 500
    assert body == ("[+]ping ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\n"
                    "readyz check failed\n")
    assert "deadline" not in body
    assert await healthz.single(checks, "etcd") == (
        500, "internal server error: error getting data from etcd: deadline exceeded\n")
    assert await healthz.single(checks, "informer-sync") == (200, "ok")
    assert await healthz.single(checks, "nope") is None


async def test_exclude_skips_a_failing_check_and_warns_on_unknown_names():
    checks = {"etcd": _down}
    status, body = await healthz.root("readyz", checks, {"verbose": ""}, ["etcd", "bogus"])
    assert status == 200
    assert body == ('[+]ping ok\n[+]etcd excluded: ok\n'
                    'warn: some health checks cannot be excluded: no matches for "bogus"\nreadyz check passed\n')


async def test_false_means_failed():
    async def false() -> bool:
        return False

    assert (await healthz.root("readyz", {"x": false}, {}, []))[0] == 500


async def test_rate_limited_check_probes_once_per_interval_and_shares_inflight_probe():
    calls = 0
    healthy = True
    gate = asyncio.Event()

    async def probe() -> None:
        nonlocal calls
        calls += 1
        await gate.wait()
        if not healthy:
            raise RuntimeError("down")

    check = healthz.RateLimitedCheck(probe, interval=3600)
    first = [asyncio.ensure_future(check()) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*first)
    assert calls == 1
    healthy = False
    await check()  # within the interval: the last verdict (healthy), no new probe
    assert calls == 1
    check.interval = 0
    try:
        await check()
    except RuntimeError as e:
        assert str(e) == "down"
    else:
        raise AssertionError("a failing probe must fail the check")
    assert calls == 2
    check.interval = 3600
    try:
        await check()  # the failure is remembered until the next probe
    except RuntimeError:
        pass
    else:
        raise AssertionError("cached failure expected")
    assert calls == 2
