"""spec.activeDeadlineSeconds (upstream pkg/kubelet/active_deadline.go): a pod active on
the node longer than its deadline, counted from status.startTime, is ended by the kubelet:
phase Failed, reason DeadlineExceeded, a Normal event with the same reason and message."""

from __future__ import annotations

import datetime
from typing import Any, Optional

Obj = dict[str, Any]

REASON = "DeadlineExceeded"
MESSAGE = "Pod was active on the node longer than the specified deadline"


def _parse(ts: str) -> Optional[datetime.datetime]:
    try:
        return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


def remaining(pod: Obj, start_time: Optional[str], now: Optional[datetime.datetime] = None) -> Optional[float]:
    """Seconds until the pod's active deadline (<= 0: past it); None without a deadline or
    before the pod has a start time."""
    ads = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    if ads is None:
        return None
    start = _parse((pod.get("status") or {}).get("startTime") or start_time or "")
    if start is None:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return int(ads) - (now - start).total_seconds()
