"""Units every layer reads and writes the same way: durations ('2ms', '1.5s', '250us').

One grammar for every duration a user writes (options, driver config, scenario): a number and a
unit, ns, us (or µs), ms or s. A bare number is refused because '2' could mean any of them.
"""

from __future__ import annotations

import re

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
