"""CRI log files read as /containerLogs serves them: partial lines joined, tailLines,
since, timestamps, limitBytes, option validation, and follow across a rotation."""

from __future__ import annotations

import asyncio
import os

import pytest

from kybernetes.kubelet.server import logs
from kybernetes.kubelet.server.logs import LogOptions, stream_log

LINES = [
    "2026-11-28T10:00:00.1Z stdout F one",
    "2026-11-28T10:00:01.123456789Z stderr F two",
    "2026-11-28T10:00:02Z stdout P thr",
    "2026-11-28T10:00:02.5Z stdout F ee",
    "2026-11-28T10:00:03.000000001Z stdout F four",
]


def write_log(path, lines):
    path.write_text("".join(line + "\n" for line in lines))


async def read_all(path, **opts):
    out = bytearray()

    async def write(b):
        out.extend(b)

    async def running():
        return False
    await stream_log(str(path), LogOptions(**opts), write, running)
    return out.decode()


async def test_plain_tail_since_timestamps_limit(tmp_path):
    p = tmp_path / "0.log"
    write_log(p, LINES)
    assert await read_all(p) == "one\ntwo\nthree\nfour\n"
    assert await read_all(p, tail_lines=2) == "ee\nfour\n"
    assert await read_all(p, tail_lines=0) == ""
    assert await read_all(p, tail_lines=99) == "one\ntwo\nthree\nfour\n"
    assert await read_all(p, since=logs.parse_time("2026-11-28T10:00:01.5Z")) == "three\nfour\n"
    assert await read_all(p, timestamps=True, tail_lines=1) == "2026-11-28T10:00:03.000000001Z four\n"
    assert await read_all(p, limit_bytes=6) == "one\ntw"


def test_options_from_query():
    o = LogOptions.from_query({"follow": "true", "tailLines": "3", "timestamps": "1", "limitBytes": "10"})
    assert (o.follow, o.tail_lines, o.timestamps, o.limit_bytes, o.previous) == (True, 3, True, 10, False)
    assert LogOptions.from_query({"sinceTime": "2026-11-28T10:00:00Z"}).since == logs.parse_time("2026-11-28T10:00:00Z")
    for bad in ({"tailLines": "-1"}, {"tailLines": "x"}, {"sinceSeconds": "0"}, {"limitBytes": "0"},
                {"sinceSeconds": "5", "sinceTime": "2026-11-28T10:00:00Z"}, {"sinceTime": "yesterday"}):
        with pytest.raises(ValueError):
            LogOptions.from_query(bad)


def test_parse_time_fraction_widths():
    assert logs.parse_time("2026-11-28T10:00:00.5Z") - logs.parse_time("2026-11-28T10:00:00Z") == 500_000_000
    assert logs.parse_time("2026-11-28T10:00:00.000000001Z") - logs.parse_time("2026-11-28T10:00:00Z") == 1
    assert logs.parse_time("2026-11-28T11:00:00+01:00") == logs.parse_time("2026-11-28T10:00:00Z")


async def test_follow_across_rotation(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "POLL", 0.01)
    p = tmp_path / "0.log"
    write_log(p, LINES[:1])
    out = bytearray()
    alive = True
    got = asyncio.Event()

    async def write(b):
        out.extend(b)
        got.set()

    async def running():
        return alive

    async def until(text):
        while text not in out.decode():
            got.clear()
            await asyncio.wait_for(got.wait(), 5)

    task = asyncio.create_task(stream_log(str(p), LogOptions(follow=True), write, running))
    await until("one\n")
    with open(p, "a") as f:
        f.write(LINES[1] + "\n")
    await until("two\n")
    # the kubelet rotates: rename, and the runtime reopens a fresh file at the path
    os.rename(p, tmp_path / "0.log.1")
    write_log(p, [LINES[4]])
    await until("four\n")
    alive = False
    await asyncio.wait_for(task, 5)
    assert out.decode() == "one\ntwo\nfour\n"
