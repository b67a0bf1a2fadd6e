"""Health endpoints' checks and their upstream-shaped text (`/readyz`, `/readyz/<check>`).

A check is an async callable: it passes when it returns anything but False and fails
when it returns False or raises (the exception is the reason).  Reasons stay in the log
and the per-check path; the public summary says "reason withheld", as upstream does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Mapping, Optional

log = logging.getLogger("kybernetes.apiserver.healthz")

Check = Callable[[], Awaitable[Any]]
CHECK_DEADLINE = 5.0  # s: an outer bound; datastore probes carry their own shorter deadline


async def _ping() -> bool:
    return True


class RateLimitedCheck:
    """Wraps a probe so that it runs at most once per `interval`; callers in between get
    the last verdict (upstream's etcd check does the same, with interval = timeout/2),
    and concurrent callers share one probe in flight."""

    def __init__(self, probe: Check, interval: float = 1.0) -> None:
        self._probe = probe
        self.interval = interval
        self._at = float("-inf")
        self._error: Optional[BaseException] = None
        self._inflight: Optional[asyncio.Future] = None

    async def __call__(self) -> None:
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
        elif time.monotonic() - self._at >= self.interval:
            self._inflight = asyncio.ensure_future(self._run())
            try:
                await asyncio.shield(self._inflight)
            finally:
                self._inflight = None
        if self._error is not None:
            raise self._error

    async def _run(self) -> None:
        try:
            ok = await self._probe()
            self._error = RuntimeError("check returned false") if ok is False else None
        except Exception as e:  # noqa: BLE001 - any failure is the verdict
            self._error = e
        self._at = time.monotonic()


async def _run_one(check: Check) -> Optional[str]:
    """None when the check passes, else its reason."""
    try:
        ok = await asyncio.wait_for(check(), CHECK_DEADLINE)
    except asyncio.TimeoutError:
        return f"check did not finish within {CHECK_DEADLINE:g}s"
    except Exception as e:  # noqa: BLE001 - any failure means not healthy
        return str(e) or type(e).__name__
    return "check returned false" if ok is False else None


def all_checks(checks: Mapping[str, Check]) -> dict[str, Check]:
    return {"ping": _ping, **checks}


async def root(endpoint: str, checks: Mapping[str, Check], query: Mapping[str, str],
               excluded: list[str]) -> tuple[int, str]:
    """(status, body) of `/<endpoint>` with every check, upstream's layout:
    `[+]name ok` / `[-]name failed: reason withheld` lines, then `<endpoint> check
    passed|failed`; a passing non-verbose answer is just `ok`."""
    named = all_checks(checks)
    skip = set(excluded)
    names = list(named)
    results = await asyncio.gather(*(_run_one(named[n]) for n in names if n not in skip))
    lines: list[str] = []
    failed: list[str] = []
    verdicts = iter(results)
    for n in names:
        if n in skip:
            skip.discard(n)
            lines.append(f"[+]{n} excluded: ok")
            continue
        reason = next(verdicts)
        if reason is None:
            lines.append(f"[+]{n} ok")
        else:
            lines.append(f"[-]{n} failed: reason withheld")
            failed.append(n)
            log.info("%s check %s failed: %s", endpoint, n, reason)
    if skip:
        quoted = ",".join(f'"{n}"' for n in sorted(skip))
        lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
    body = "".join(line + "\n" for line in lines)
    if failed:
        return 500, f"{body}{endpoint} check failed\n"
    if "verbose" not in query:
        return 200, "ok"
    return 200, f"{body}{endpoint} check passed\n"


async def single(checks: Mapping[str, Check], name: str) -> Optional[tuple[int, str]]:
    """(status, body) of `/<endpoint>/<name>`, or None when there is no such check."""
    check = all_checks(checks).get(name)
    if check is None:
        return None
    reason = await _run_one(check)
    if reason is None:
        return 200, "ok"
    return 500, f"internal server error: {reason}\n"
