"""Start and stop of the kubelet's periodic components (PLEG, image GC, eviction, static pods)."""

from __future__ import annotations

import asyncio
from typing import Optional


class BackgroundLoop:
    """A component whose work is one long-running `_run()` coroutine: `start()` runs it once
    (a second start is a no-op), `stop()` cancels it and waits until it has unwound."""

    _task: Optional[asyncio.Future] = None

    async def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
