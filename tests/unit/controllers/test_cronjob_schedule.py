"""CronJob schedule math and history pruning (pure functions)."""

from datetime import datetime, timezone

import zoneinfo

from kybernetes.controllers.cronjob import Schedule, job_name, jobs_to_prune, most_recent_schedule, zone


def ts(s: str) -> float:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc).timestamp()


def nxt(spec: str, after: str, tz=timezone.utc) -> str:
    return Schedule(spec).next(datetime.fromisoformat(after).replace(tzinfo=tz)).strftime("%Y-%m-%d %H:%M %a")


def test_next_basic():
    assert nxt("*/15 * * * *", "2024-01-01T00:07:00") == "2024-01-01 00:15 Mon"
    assert nxt("0 9 * * mon-fri", "2024-01-05T10:00:00") == "2024-01-08 09:00 Mon"
    assert nxt("@daily", "2024-12-31T23:59:00") == "2025-01-01 00:00 Wed"
    assert nxt("30 2 29 2 *", "2024-03-01T00:00:00") == "2028-02-29 02:30 Tue"
    assert nxt("0 0 * JAN,jul *", "2024-02-01T00:00:00") == "2024-07-01 00:00 Mon"
    assert nxt("5-10/5 * * * *", "2024-01-01T00:05:00") == "2024-01-01 00:10 Mon"
    assert nxt("0 0 * * 7", "2024-01-01T00:00:00") == "2024-01-07 00:00 Sun"


def test_dom_dow_or_when_both_restricted():
    # 13th of the month OR a Friday
    assert nxt("0 0 13 * 5", "2024-01-01T00:00:00") == "2024-01-05 00:00 Fri"
    # '*' day of month: AND (only Fridays)
    assert nxt("0 0 * * 5", "2024-01-05T00:00:00") == "2024-01-12 00:00 Fri"


def test_time_zone():
    tz = zone("America/New_York")
    n = Schedule("0 9 * * *").next(datetime(2024, 7, 1, 14, 0, tzinfo=timezone.utc).astimezone(tz))
    assert n.astimezone(timezone.utc).hour == 13  # 09:00 EDT
    assert isinstance(zone(None), type(timezone.utc))
    assert isinstance(tz, zoneinfo.ZoneInfo)


def test_most_recent_and_missed():
    s = Schedule("*/10 * * * *")
    last, missed, n = most_recent_schedule(s, ts("2024-01-01T00:00:00"), ts("2024-01-01T00:35:00"))
    assert last == ts("2024-01-01T00:30:00") and missed == 3 and n == ts("2024-01-01T00:40:00")
    last, missed, n = most_recent_schedule(s, ts("2024-01-01T00:30:00"), ts("2024-01-01T00:35:00"))
    assert last is None and missed == 0


def test_every():
    s = Schedule("@every 1h30m")
    last, missed, _ = most_recent_schedule(s, ts("2024-01-01T00:00:00"), ts("2024-01-01T04:00:00"))
    assert missed == 2 and last == ts("2024-01-01T03:00:00")


def test_job_name():
    assert job_name("hello", ts("2024-01-01T00:01:00")) == f"hello-{int(ts('2024-01-01T00:01:00') // 60)}"


def _job(name, kind, start):
    return {"metadata": {"name": name, "creationTimestamp": start},
            "status": {"startTime": start, "conditions": [{"type": kind, "status": "True"}] if kind else []}}


def test_prune_history():
    jobs = [_job("a", "Complete", "2024-01-01T00:00:00Z"), _job("b", "Complete", "2024-01-01T00:01:00Z"),
            _job("c", "Complete", "2024-01-01T00:02:00Z"), _job("d", "Failed", "2024-01-01T00:03:00Z"),
            _job("e", "Failed", "2024-01-01T00:04:00Z"), _job("f", None, "2024-01-01T00:05:00Z")]
    assert [j["metadata"]["name"] for j in jobs_to_prune(jobs, 2, 1)] == ["a", "d"]
    assert [j["metadata"]["name"] for j in jobs_to_prune(jobs, 0, 0)] == ["a", "b", "c", "d", "e"]
    assert jobs_to_prune(jobs, None, None) == []
