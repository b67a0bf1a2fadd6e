"""Small helpers over object metadata: timestamps, ages, keys."""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any, Optional

Obj = dict[str, Any]


_last_second: tuple[int, str] = (-1, "")


def now_rfc3339() -> str:
    """The current time as upstream writes metav1.Time (second precision, UTC, 'Z')."""
    global _last_second
    sec = int(time.time())
    if sec != _last_second[0]:  # formatting once per second keeps this off the hot path
        _last_second = (sec, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec)))
    return _last_second[1]


def parse_time(value: str) -> Optional[_dt.datetime]:
    """Parse an RFC 3339 timestamp; None when it is not one."""
    try:
        return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def human_duration(seconds: float) -> str:
    """Durations as kubectl prints them: 5s, 3m2s, 4h, 2d3h, 120d, 3y45d."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    y = d // 365
    if d < 365 * 8:
        return f"{y}y{d % 365}d" if d % 365 else f"{y}y"
    return f"{y}y"


def age(obj: Obj, now: Optional[_dt.datetime] = None) -> str:
    """The AGE column of an object."""
    ts = parse_time((obj.get("metadata") or {}).get("creationTimestamp") or "")
    if ts is None:
        return "<unknown>"
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return human_duration((now - ts).total_seconds())


# ObjectMeta fields Go serialises with `omitempty`: an empty value is never stored or returned
# (not managedFields: an empty list there is a request to reset them, the field manager's business)
_OMIT_EMPTY_META = ("generateName", "namespace", "selfLink", "uid", "resourceVersion", "labels", "annotations",
                    "ownerReferences", "finalizers", "deletionGracePeriodSeconds",
                    "deletionTimestamp")


def drop_empty_meta(obj: Obj) -> None:
    """Remove empty omitempty fields of metadata (e.g. `ownerReferences: []` left by a patch),
    as upstream's round trip through ObjectMeta does."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return
    for k in _OMIT_EMPTY_META:
        if k in meta and meta[k] in (None, "", [], {}):
            del meta[k]
