"""Writes creates to a SQLiteStore forever, printing each key once its create is acknowledged.

Run by test_crash.py, which SIGKILLs it mid-burst.  Usage: crash_writer.py DB_PATH"""

from __future__ import annotations

import asyncio
import sys

from kybernetes.storage import SQLiteStore


async def main(path: str) -> None:
    store = SQLiteStore(path, compact_interval=0)
    await store.start()
    out = sys.stdout

    async def worker(w: int) -> None:
        i = 0
        while True:
            key = f"/crash/{w:02d}/{i:07d}"
            await store.create(key, b"x" * 200)
            # Only after the create returned: the key is acknowledged.
            out.write(key + "\n")
            out.flush()
            i += 1

    await asyncio.gather(*(worker(w) for w in range(16)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
