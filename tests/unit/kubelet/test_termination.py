"""Termination messages: file first, log tail only for failures with FallbackToLogsOnError."""

from __future__ import annotations

from kybernetes.kubelet import termination as term


def _log(tmp_path, lines):
    p = tmp_path / "0.log"
    p.write_text("".join(f"2026-11-28T19:00:00.{i:09d}Z stdout {tag} {msg}\n" for i, (tag, msg) in enumerate(lines)))
    return str(p)


def test_file_wins_and_is_capped(tmp_path):
    f = tmp_path / "msg"
    f.write_text("x" * 5000)
    log = _log(tmp_path, [("F", "from log")])
    spec = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    assert term.message_for(spec, 1, str(f), log, "") == "x" * 4096


def test_fallback_only_on_error(tmp_path):
    f = tmp_path / "msg"
    f.write_text("")
    log = _log(tmp_path, [("P", "par"), ("F", "tial"), ("F", "last")])
    spec = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    assert term.message_for(spec, 3, str(f), log, "") == "partial\nlast\n"
    assert term.message_for(spec, 0, str(f), log, "rt") == "rt"
    assert term.message_for({}, 3, str(f), log, "") == ""


def test_log_tail_limits(tmp_path):
    log = _log(tmp_path, [("F", str(i)) for i in range(200)])
    tail = term.log_tail(log)
    assert tail.splitlines() == [str(i) for i in range(120, 200)]
    log = _log(tmp_path, [("F", "y" * 100) for _ in range(50)])
    assert len(term.log_tail(log)) == 2048


def test_message_file(tmp_path):
    f = term.make_message_file(tmp_path, "c")
    assert f.parent == tmp_path / "containers" / "c" and f.stat().st_mode & 0o777 == 0o666
    assert term.read_message(str(f)) == "" and term.read_message(None) == ""
