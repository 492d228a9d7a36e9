"""Units every layer reads and writes the same way: durations ('2ms', '1.5s', '250us') and the
points in time a user writes for --range (seconds, a duration, a UTC clock time as the tables
print it).

One grammar for every duration a user writes (options, driver config, scenario): a number and a
unit, ns, us (or µs), ms or s. A bare number is refused because '2' could mean any of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fpreplay.errors import ConfigError

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ns|us|µs|ms|s)\s*$", re.I)
NS_PER_UNIT = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def parse_duration_ns(text: str, what: str = "duration") -> int:
    """'2ms' -> 2_000_000. `what` names the value in the error ('--gap', 'scenario rate')."""
    m = _DURATION.match(text) if isinstance(text, str) else None
    if not m:
        raise ConfigError(f"{what} {text!r}: expected a number and a unit (ns, us, ms, s), "
                          "e.g. 2ms")
    return round(float(m.group(1)) * NS_PER_UNIT[m.group(2).lower()])


def format_duration_ns(ns: int | None) -> str:
    """2_000_000 -> '2 ms', three significant digits ('-' for unknown): what tables and stories
    print."""
    if ns is None:
        return "-"
    ns = int(ns)
    if ns == 0:
        return "0"
    for unit, scale in (("s", 1_000_000_000), ("ms", 1_000_000), ("µs", 1_000)):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns} ns"


# --- points in time a user writes (--range) -------------------------------------------------------
# As the tables print them (UTC): a time of day `05:06:07.123`, or a date and time `2026-12-05
# 05:06:07.123456` / ISO 8601 `2026-12-05T05:06:07.123Z` (an offset such as +02:00 is honoured;
# none means UTC). Or an offset from the trace start: seconds `1.5` or a duration `1500ms`.
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$")
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)"
                       r"\s*(Z|UTC|[+-]\d{2}:?\d{2})?$", re.I)
NS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class TimeBound:
    """One end of a time range as the user wrote it; exactly one of the three is set."""

    text: str
    offset_ns: int | None = None   # after the trace start
    clock_ns: int | None = None    # UTC time of day, ns after midnight (the trace's day)
    epoch_ns: int | None = None    # absolute UTC

    def resolve(self, start_ns: int, end_ns: int | None = None) -> int:
        """Epoch ns. A time of day falls on the day (of those around the trace) that puts it
        nearest the trace's span, so that a trace running past midnight takes 00:00:05."""
        if self.offset_ns is not None:
            return start_ns + self.offset_ns
        if self.epoch_ns is not None:
            return self.epoch_ns
        end_ns = start_ns if end_ns is None else end_ns
        day = start_ns - start_ns % NS_PER_DAY
        candidates = [day + d * NS_PER_DAY + self.clock_ns for d in (-1, 0, 1)]
        return min(candidates, key=lambda t: max(start_ns - t, t - end_ns, 0))


def _fraction_ns(digits: str | None) -> int:
    return int((digits or "").ljust(9, "0")[:9] or 0)


def parse_time_bound(text: str) -> TimeBound:
    """'1.5' (seconds after the trace start), '1500ms', '05:06:07.123' (UTC time of day) or
    '2026-12-05T05:06:07.123Z'."""
    s = str(text).strip()
    m = _CLOCK.match(s)
    if m:
        h, mi, sec = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if h > 23 or mi > 59 or sec > 59:
            raise ConfigError(f"time {text!r}: not a time of day (HH:MM:SS.fff, UTC)")
        clock = ((h * 60 + mi) * 60 + sec) * 1_000_000_000 + _fraction_ns(m.group(4))
        return TimeBound(s, clock_ns=clock)
    m = _DATETIME.match(s)
    if m:
        return TimeBound(s, epoch_ns=_epoch_ns(text, m.group(1), m.group(2), m.group(3)))
    try:
        seconds = float(s)
    except ValueError:
        try:
            return TimeBound(s, offset_ns=parse_duration_ns(s))
        except ConfigError:
            raise ConfigError(f"{text!r} is neither seconds after the trace start (1.5), a "
                              "duration (1500ms), a UTC time of day as the tables print it "
                              "(05:06:07.123) nor a date and time (2026-12-05T05:06:07Z)") from None
    if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
        raise ConfigError(f"{text!r} is not a time: expected seconds >= 0 after the trace start")
    return TimeBound(s, offset_ns=round(seconds * 1e9))


def _epoch_ns(text: str, date: str, clock: str, zone: str | None) -> int:
    from datetime import datetime, timedelta, timezone

    whole, _, frac = clock.partition(".")
    tz = timezone.utc
    if zone and zone.upper() not in ("Z", "UTC"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        dt = datetime.fromisoformat(f"{date}T{whole}").replace(tzinfo=tz)
    except ValueError:
        raise ConfigError(f"time {text!r}: not a date and time") from None
    return int(dt.timestamp()) * 1_000_000_000 + _fraction_ns(frac)


def ordered_bounds(t1: TimeBound, t2: TimeBound) -> bool:
    """Whether T1 < T2 can be told without the trace (both of one form), and holds; a pair of
    different forms is checked once the trace's start is known."""
    for attr in ("offset_ns", "clock_ns", "epoch_ns"):
        a, b = getattr(t1, attr), getattr(t2, attr)
        if a is not None and b is not None:
            return a < b
    return True
