"""Cron schedule parsing as upstream's CronJob validation accepts it (robfig/cron's standard
five-field syntax plus @descriptors); error texts follow that parser's."""

from __future__ import annotations

import re
from typing import Optional

_FIELDS = (  # name, minimum, maximum, names
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("dom", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}),
    ("dow", 0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_DURATION = re.compile(r"^([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$")


def _number(s: str, names: dict[str, int]) -> int:
    if s.lower() in names:
        return names[s.lower()]
    if not re.fullmatch(r"-?\d+", s):
        raise ValueError(f'failed to parse int from {s}: strconv.Atoi: parsing "{s}": invalid syntax')
    return int(s)


def _check_part(expr: str, lo: int, hi: int, names: dict[str, int]) -> None:
    range_and_step = expr.split("/")
    if len(range_and_step) > 2:
        raise ValueError(f"too many slashes: {expr}")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start = _number(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _number(low_high[1], names)
        else:
            raise ValueError(f"too many hyphens: {expr}")
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], {})
        if step <= 0:
            raise ValueError(f"step of range should be a positive number: {expr}")
        if single and low_high[0] not in ("*", "?"):
            end = hi  # "N/step" means N-max/step
    if start < lo:
        raise ValueError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise ValueError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")


def schedule_error(schedule: str) -> Optional[str]:
    """None when `schedule` parses; else the parser's message."""
    s = schedule.strip()
    if s.startswith("@"):
        if s in DESCRIPTORS:
            return None
        if s.startswith("@every "):
            if _DURATION.match(s[len("@every "):].strip()):
                return None
            return f"failed to parse duration {s}: time: invalid duration " + '"' + s[7:].strip() + '"'
        return f"unrecognized descriptor: {s}"
    fields = s.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    try:
        for value, (_, lo, hi, names) in zip(fields, _FIELDS):
            for part in value.split(","):
                _check_part(part, lo, hi, names)
    except ValueError as e:
        return str(e)
    return None
