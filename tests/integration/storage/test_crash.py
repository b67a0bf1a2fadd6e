"""Crash safety: every acknowledged write survives SIGKILL of the writing process."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

from kybernetes.storage import SQLiteStore

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "crash_writer.py"), str(db), stdout=asyncio.subprocess.PIPE, env=env
    )
    acked: list[str] = []
    killed = False
    try:
        assert proc.stdout is not None

        async def read_some() -> None:
            while len(acked) < 3000:
                line = await proc.stdout.readline()
                if not line:
                    raise AssertionError(f"writer exited early with {await proc.wait()}")
                acked.append(line.decode().rstrip("\n"))

        await asyncio.wait_for(read_some(), 30)
        proc.send_signal(signal.SIGKILL)  # mid-burst: 16 writers are in flight
        killed = True
        # Lines already written to the pipe were acknowledged too.
        rest = await asyncio.wait_for(proc.stdout.read(), 10)
    finally:
        # Not proc.kill() after the SIGKILL: Popen would reap the child under
        # asyncio's child watcher, which then reports returncode 255.
        if not killed:
            proc.kill()
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    text = rest.decode()
    complete = text.split("\n")[:-1]  # a torn last line (no newline) was never fully printed
    acked.extend(complete)

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()

    store = SQLiteStore(str(db), compact_interval=0)
    await store.start()
    try:
        res = await store.list("/crash/")
        present = {kv.key for kv in res.items}
        missing = [k for k in acked if k not in present]
        assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {missing[:3]}"
        # revisions stay dense and the store keeps working after recovery
        rev = await store.current_revision()
        assert rev >= len(acked)
        kv = await store.create("/crash/after", b"v")
        assert kv.mod_revision == rev + 1
    finally:
        await store.close()
