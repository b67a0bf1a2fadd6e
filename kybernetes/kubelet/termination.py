"""Termination messages: a host file per container instance mounted at
terminationMessagePath, read back after the container exits (at most 4096 bytes); with
FallbackToLogsOnError, a failed container without a message reports its log tail
(the last 80 lines, at most 2048 bytes), as upstream."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Optional

Obj = dict[str, Any]
DEFAULT_PATH = "/dev/termination-log"
MAX_MESSAGE = 4096
MAX_LOG_BYTES = 2048
MAX_LOG_LINES = 80
ANNOTATION = "kyb.io/termination-message-host-path"


def make_message_file(pod_dir: Path, container: str) -> Path:
    """A fresh, world-writable empty file for one container instance."""
    d = pod_dir / "containers" / container
    d.mkdir(parents=True, exist_ok=True)
    f = d / secrets.token_hex(4)
    f.touch()
    f.chmod(0o666)
    return f


def remove_message_file(host_path: str) -> None:
    try:
        os.unlink(host_path)
    except OSError:
        pass


def read_message(host_path: Optional[str]) -> str:
    if not host_path:
        return ""
    try:
        with open(host_path, "rb") as f:
            return f.read(MAX_MESSAGE).decode(errors="replace")
    except OSError:
        return ""


def log_tail(log_path: str) -> str:
    """The message part of the last CRI log lines (`<time> <stream> <P|F> <msg>`)."""
    try:
        size = os.path.getsize(log_path)
        with open(log_path, "rb") as f:
            f.seek(max(0, size - 64 * 1024))
            raw = f.read().decode(errors="replace")
    except OSError:
        return ""
    out: list[str] = []
    for line in raw.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        msg = parts[3]
        if out and out[-1].endswith("\0partial"):
            out[-1] = out[-1][:-len("\0partial")] + msg
        else:
            out.append(msg)
        if parts[2] == "P":
            out[-1] += "\0partial"
    text = "\n".join(x.replace("\0partial", "") for x in out[-MAX_LOG_LINES:])
    if out:
        text += "\n"
    return text[-MAX_LOG_BYTES:]


def message_for(spec_c: Obj, exit_code: int, host_path: Optional[str], log_path: str, runtime_message: str) -> str:
    msg = read_message(host_path)
    if not msg and spec_c.get("terminationMessagePolicy") == "FallbackToLogsOnError" and exit_code != 0:
        msg = log_tail(log_path)
    return msg or runtime_message
