"""What every text reader shares: line streaming, batching into event frames, bad-line
accounting and clocks (absolute UTC epoch ns from local or relative text times)."""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import ConfigError, InputError
from fpreplay.schema import ALL_RECORD_COLUMNS, EVENT_COLUMNS, conform_events

BATCH_ROWS = 100_000
BAD_LINES_NAMED = 5        # how many bad lines a warning names before it just counts
FILETIME_EPOCH_DIFF = 116_444_736_000_000_000   # 100-ns intervals from 1601-01-01 to 1970-01-01


def open_text(path: Path) -> tuple[io.TextIOBase, object]:
    """The file as text, plus its underlying byte file (for progress): gzip transparently; UTF-16
    when it has a BOM (tracerpt -en Unicode), else UTF-8 (BOM stripped) with undecodable bytes
    replaced so that the line is counted bad, not fatal."""
    try:
        base = open(path, "rb")
        raw = base
        if raw.peek(2)[:2] == b"\x1f\x8b":
            raw = gzip.open(base, "rb")
        head = raw.peek(2)[:2]
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None
    if head in (b"\xff\xfe", b"\xfe\xff"):
        return io.TextIOWrapper(raw, encoding="utf-16", errors="replace", newline=""), base
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline=""), base


PROGRESS_EVERY = 16_384      # lines between progress callbacks (bytes of the file consumed)


def iter_lines(path: Path, progress=None,
               diagnostics: Diagnostics | None = None) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its end-of-line) for every line, streamed.

    A cut or damaged gzip stream after some lines ends the lines with a warning in
    `diagnostics` (contract: a truncated file is read as far as it goes); with nothing read,
    or no diagnostics to tell, it is an InputError."""
    f, base = open_text(path)
    n = 0
    with f:
        try:
            for n, line in enumerate(f, 1):
                if progress is not None and n % PROGRESS_EVERY == 0:
                    progress(base.tell())
                yield n, line.rstrip("\r\n")
        except (OSError, EOFError) as e:
            if n == 0 or diagnostics is None:
                raise InputError(path, f"damaged compressed stream: {e}") from None
            diagnostics.warn(f"{path}: line {n + 1}: damaged compressed stream ({e}); read what "
                             "came before")
            diagnostics.count("text_truncated")
            return
        if progress is not None:
            progress(base.tell())


class BadLines:
    """Counts unparseable lines (diagnostics counter `bad_lines`) and names the first few."""

    def __init__(self, path: Path, diagnostics: Diagnostics):
        self.path, self.diagnostics = path, diagnostics
        self.count = 0
        self.named: list[str] = []

    def add(self, lineno: int, why: str) -> None:
        self.count += 1
        self.diagnostics.count("bad_lines")
        if len(self.named) < BAD_LINES_NAMED:
            self.named.append(f"line {lineno}: {why}")

    def report(self) -> None:
        if self.count:
            rest = self.count - len(self.named)
            more = f" (and {rest} more)" if rest > 0 else ""
            self.diagnostics.warn(f"{self.path}: {self.count} bad line(s) skipped: "
                                  + "; ".join(self.named) + more)


class EventBatches:
    """Collects event rows (dicts of event-table columns) and yields conformed frames.

    Rows of kind `other` are kept only with --all (contract section 3)."""

    def __init__(self, source: str, all_records: bool):
        self.source = source
        self.all_records = all_records
        self.columns = dict(EVENT_COLUMNS)
        if all_records:
            self.columns.update(ALL_RECORD_COLUMNS)
        self._rows: list[dict] = []
        self.rows_out = 0

    def add(self, row: dict) -> None:
        if row.get("kind") == "other" and not self.all_records:
            return
        row.setdefault("source", self.source)
        self._rows.append(row)

    def full(self) -> bool:
        return len(self._rows) >= BATCH_ROWS

    def flush(self) -> Iterator[pl.DataFrame]:
        if not self._rows:
            return
        try:
            df = pl.from_dicts(self._rows, schema=self.columns, strict=False)
        except pl.exceptions.ComputeError:     # a damaged number too big for its column
            df = pl.from_dicts([_in_range(r, self.columns) for r in self._rows],
                               schema=self.columns, strict=False)
        self.rows_out += df.height
        self._rows = []
        yield conform_events(df, keep_extra=self.all_records)


def _in_range(row: dict, columns: dict) -> dict:
    """`row` with each integer its column's type cannot hold (damaged text) made unknown."""
    def fits(v, dtype) -> bool:
        if not isinstance(v, int) or dtype not in _INT_BITS:
            return True
        bits = _INT_BITS[dtype]
        return (-(1 << (bits - 1)) <= v < 1 << (bits - 1) if dtype.is_signed_integer()
                else 0 <= v < 1 << bits)
    return {k: (v if fits(v, columns.get(k)) else None) for k, v in row.items()}


_INT_BITS = {pl.Int8: 8, pl.Int16: 16, pl.Int32: 32, pl.Int64: 64,
             pl.UInt8: 8, pl.UInt16: 16, pl.UInt32: 32, pl.UInt64: 64}


def parse_int(text: str | None) -> int | None:
    """`0x1f`, `31`, `0x00000F94`, `-5`; None for empty or non-numeric text."""
    if text is None:
        return None
    try:                        # the common case first: this runs for most fields of every row
        return int(text, 16) if text[:2] in ("0x", "0X") else int(text)
    except ValueError:
        pass
    t = text.strip().strip('"')
    if not t:
        return None
    try:
        return int(t, 16) if t[:2] in ("0x", "0X") else int(t)
    except ValueError:
        try:
            return int(float(t))
        except ValueError:
            return None


def filetime_to_ns(ft: int) -> int:
    return (ft - FILETIME_EPOCH_DIFF) * 100


def looks_like_filetime(value: int) -> bool:
    """Between 1990 and 2100 as a FILETIME (else it is a raw clock, tracerpt -rts)."""
    return 0x01B41E2A18D64000 <= value <= 0x0240EDAE1B0C4000 * 2


_FIXED_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$")


def parse_tz(name: str | None) -> tzinfo | None:
    """--tz: an IANA name (Europe/Berlin) or a fixed offset (+02:00, -0530, UTC+1)."""
    if name is None:
        return None
    m = _FIXED_OFFSET.match(name.strip())
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))
    if name.strip().upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name.strip())
    except Exception:
        raise ConfigError(f"--tz {name!r}: not an IANA time zone name or a +HH:MM offset") from None


class LocalClock:
    """Wall-clock text -> UTC epoch ns, in --tz (or UTC, with one warning, when none is given)."""

    def __init__(self, path: Path, tz_name: str | None, diagnostics: Diagnostics):
        self.tz = parse_tz(tz_name)
        self.path, self.diagnostics = path, diagnostics
        self._offsets: dict[tuple, int] = {}
        self.warned = False
        self.last_second: tuple[str, int] = ("", 0)   # a one-entry cache for text readers

    def to_ns(self, year: int, month: int, day: int, hour: int, minute: int, second: int,
              frac_ns: int) -> int:
        key = (year, month, day, hour)
        off = self._offsets.get(key)
        if off is None:
            if self.tz is None:
                off = 0
                if not self.warned:
                    self.warned = True
                    self.diagnostics.warn(f"{self.path}: times are local wall-clock time and no "
                                          "time zone was given; assuming UTC (use --tz)")
            else:
                probe = datetime(year, month, day, hour, 30, tzinfo=self.tz)
                off = int(probe.utcoffset().total_seconds())
            self._offsets[key] = off
        secs = int(datetime(year, month, day, hour, minute, second,
                            tzinfo=timezone.utc).timestamp())
        return (secs - off) * 1_000_000_000 + frac_ns


def frac_to_ns(digits: str | None) -> int:
    """Fractional-second digits ("318", "3181234") -> ns."""
    if not digits:
        return 0
    return int((digits + "000000000")[:9])
