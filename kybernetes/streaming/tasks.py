"""Running the two directions of a proxied stream together."""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine


async def until_first_done(*coros: Coroutine[Any, Any, Any]) -> None:
    """Run `coros` together until one of them ends (one side of a stream closing ends the
    session), then cancel the rest and wait until they have unwound."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
