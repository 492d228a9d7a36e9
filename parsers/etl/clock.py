"""The session clock: raw record timestamps -> absolute UTC nanoseconds (etw-formats.md 1.7)."""

from __future__ import annotations

import polars as pl

from fpreplay.parsers.etl import layouts as L

FILETIME_UNIX_EPOCH = 116_444_736_000_000_000      # 100-ns ticks from 1601-01-01 to 1970-01-01
MAX_CLOCK_HZ = 1 << 40                             # above any QPC or CPU clock
MAX_SPAN_S = 100 * 365 * 86_400                    # times further than this are damage
MAX_SPAN_NS = MAX_SPAN_S * 1_500_000_000          # start_ns + span must fit in int64


class Clock:
    """Raw session timestamps -> absolute UTC nanoseconds (etw-formats.md section 1.7)."""

    def __init__(self, clock_type: int, start_filetime: int, t0: int, perf_freq: int,
                 cpu_mhz: int):
        self.clock_type = clock_type
        if clock_type == L.CLOCK_SYSTEM_TIME:
            freq = 10_000_000                      # raw values are FILETIMEs already
        elif clock_type == L.CLOCK_CPU_CYCLES:
            freq = cpu_mhz * 1_000_000
        else:                                      # QPC, or raw treated like QPC
            freq = perf_freq
        if not 0 < freq <= MAX_CLOCK_HZ:
            raise ValueError(f"clock type {clock_type} with no usable frequency ({freq})")
        start_ns = (start_filetime - FILETIME_UNIX_EPOCH) * 100
        if abs(start_ns) > MAX_SPAN_NS:
            raise ValueError(f"StartTime {start_filetime} is no plausible FILETIME")
        self.freq = freq
        self.t0 = t0
        self.start_ns = start_ns

    def to_ns(self, raw: int) -> int | None:
        """None for a timestamp too far from the trace start to be real (damaged input)."""
        d = raw - self.t0
        q, r = divmod(d, self.freq)
        if abs(q) > MAX_SPAN_S:
            return None
        return self.start_ns + q * 1_000_000_000 + (r * 1_000_000_000) // self.freq

    def expr(self, raw: pl.Expr) -> pl.Expr:
        """The same conversion on a column, without overflow (d * 1e9 overflows past ~10 days)."""
        d = raw - self.t0
        q = d.floordiv(self.freq)
        r = d - q * self.freq
        ns = self.start_ns + q * 1_000_000_000 + (r * 1_000_000_000).floordiv(self.freq)
        return pl.when(q.abs() <= MAX_SPAN_S).then(ns).otherwise(None)
