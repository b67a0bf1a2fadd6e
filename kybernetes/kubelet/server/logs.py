"""Container logs read straight from the CRI log files (what `/containerLogs` serves).

A CRI log line is `<RFC3339Nano time> <stdout|stderr> <P|F> <message>`; P marks a
partial line that the next entries continue.  The reader honours tailLines, since,
timestamps and limitBytes, and in follow mode keeps reading as the file grows, moving to
the new file when the kubelet rotates it (rename + reopen), until the container stops.

    opts = LogOptions.from_query(request.query)     # raises ValueError on bad input
    await stream_log(path, opts, write, still_running)
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, Optional

POLL = 0.1  # follow-mode poll of a quiet log file (upstream waits on fsnotify)
CHUNK = 64 * 1024


def parse_time(ts: str) -> int:
    """RFC3339 with any number of fractional digits -> nanoseconds since the epoch."""
    ts = ts.strip()
    frac = 0
    if "." in ts:
        head, rest = ts.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac = int((rest[:i] + "000000000")[:9]) if i else 0
        ts = head + rest[i:]
    if ts.endswith("Z"):
        ts = ts[:-1] + "+00:00"
    return int(_dt.datetime.fromisoformat(ts).timestamp()) * 1_000_000_000 + frac


@dataclass
class LogOptions:
    follow: bool = False
    previous: bool = False
    tail_lines: Optional[int] = None
    since: Optional[int] = None  # nanoseconds since the epoch
    timestamps: bool = False
    limit_bytes: Optional[int] = None

    @classmethod
    def from_query(cls, q: Mapping[str, str]) -> "LogOptions":
        """Options from a `/containerLogs` query string (PodLogOptions field names)."""
        def flag(name: str) -> bool:
            return q.get(name, "").lower() in ("1", "true")

        def num(name: str) -> Optional[int]:
            if q.get(name) in (None, ""):
                return None
            try:
                v = int(q[name])
            except ValueError:
                raise ValueError(f"{name}: invalid value {q[name]!r}") from None
            return v

        o = cls(follow=flag("follow"), previous=flag("previous"), timestamps=flag("timestamps"),
                tail_lines=num("tailLines"), limit_bytes=num("limitBytes"))
        secs = num("sinceSeconds")
        if secs is not None:
            if secs < 1:
                raise ValueError("sinceSeconds: must be greater than 0")
            o.since = time.time_ns() - secs * 1_000_000_000
        if q.get("sinceTime"):
            if secs is not None:
                raise ValueError("at most one of sinceTime or sinceSeconds may be specified")
            try:
                o.since = parse_time(q["sinceTime"])
            except ValueError:
                raise ValueError(f"sinceTime: invalid value {q['sinceTime']!r}") from None
        if o.tail_lines is not None and o.tail_lines < 0:
            raise ValueError("tailLines: must be greater than or equal to 0")
        if o.limit_bytes is not None and o.limit_bytes < 1:
            raise ValueError("limitBytes: must be greater than 0")
        return o


def parse_line(line: bytes) -> Optional[tuple[bytes, str, bool, bytes]]:
    """(timestamp, stream, partial, message) of one CRI log line, or None if malformed."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[0], parts[1].decode(errors="replace"), parts[2]
    return ts, stream, tag == b"P", parts[3] if len(parts) > 3 else b""


def _tail_offset(path: str, n: int) -> int:
    """File offset of the start of the last `n` lines."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos, found = end, 0
        while pos > 0:
            step = min(CHUNK, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step)
            i = len(block)
            while True:
                i = block.rfind(b"\n", 0, i)
                if i < 0:
                    break
                # the newline that ends the file's last line does not start a line
                if pos + i + 1 < end:
                    found += 1
                    if found == n:
                        return pos + i + 1
        return 0


class _Out:
    def __init__(self, write: Callable[[bytes], Awaitable[None]], opts: LogOptions):
        self.write, self.opts = write, opts
        self.left = opts.limit_bytes
        self.mid_line = False

    async def emit(self, entry: tuple[bytes, str, bool, bytes]) -> bool:
        """Write one entry; False once limitBytes is used up."""
        ts, _, partial, msg = entry
        if self.opts.since is not None:
            try:
                if parse_time(ts.decode()) < self.opts.since:
                    return True
            except ValueError:
                return True
        out = msg if partial else msg + b"\n"
        if self.opts.timestamps and not self.mid_line:
            out = ts + b" " + out
        self.mid_line = partial
        if self.left is not None:
            out = out[:self.left]
            self.left -= len(out)
        if out:
            await self.write(out)
        return self.left is None or self.left > 0


async def stream_log(path: str, opts: LogOptions, write: Callable[[bytes], Awaitable[None]],
                     running: Callable[[], Awaitable[bool]]) -> None:
    """Copy a CRI log file to `write` as plain text, honouring `opts`."""
    out = _Out(write, opts)
    if opts.tail_lines == 0 and not opts.follow:
        return
    start = 0
    if opts.tail_lines is not None:
        start = await asyncio.to_thread(_tail_offset, path, opts.tail_lines) if opts.tail_lines else \
            await asyncio.to_thread(os.path.getsize, path)
    f = await asyncio.to_thread(open, path, "rb")
    try:
        f.seek(start)
        pending = b""
        stopped = False  # the container has stopped: read to the end once more, then finish
        while True:
            block = await asyncio.to_thread(f.read, CHUNK)
            if block:
                pending += block
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    entry = parse_line(line)
                    if entry is not None and not await out.emit(entry):
                        return
                continue
            if not opts.follow or stopped:
                return
            # at the end of the file: rotated (the path names a new file) or just quiet
            try:
                rotated = (await asyncio.to_thread(os.stat, path)).st_ino != os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                rotated = False
            if rotated:
                f.close()
                f = await asyncio.to_thread(open, path, "rb")
                pending = b""
                continue
            if not await running():
                stopped = True  # lines written just before the container stopped are still to read
                continue
            await asyncio.sleep(POLL)
    finally:
        f.close()
