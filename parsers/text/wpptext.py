"""Formatted WPP text (IFR dumps, tracefmt output): prefix layouts and the shared reading loop.

A line is `<prefix><message>`. The prefix is a WPP trace-format prefix (tracefmt's
TRACE_FORMAT_PREFIX, `!wdfkd.wdfsettraceprefix`) built from these items, each of which becomes a
regex group (etw-formats.md section 3.4):

    %1 component/friendly name   %2 source file_line   %3 thread id (hex)   %4 system time
    %5 kernel time   %6 user time   %7 sequence number   %8 process id (hex)   %9 CPU
    %!FUNC! function   %!LEVEL! level   %!FLAGS! flags   %!COMPNAME! %!SUBCOMP! %!LINE!

Items may carry a printf spec (`%9!d!`, `%3!04X!`) or none (`%9`). %4 is read as
`MM/DD/YYYY-HH:MM:SS.fff` with any number of fraction digits (tracefmt -hires) or ISO
`YYYY-MM-DD HH:MM:SS.fff`; it is local wall-clock time (--tz, else UTC with a warning).
The message body is classified with fpreplay.parsers.kmdf_messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.kmdf_messages import KmdfMessageStream
from fpreplay.parsers.text.common import BadLines, EventBatches, LocalClock, frac_to_ns, iter_lines

_FUNC = r"[A-Za-z_~][\w~<>$@`']*(?:::[A-Za-z_~][\w~<>$@`']*)*"
_TIME = (r"\d{1,2}/\d{1,2}/\d{4}-\d{1,2}:\d{2}:\d{2}(?:\.\d+)?"
         r"|\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}:\d{2}(?:\.\d+)?")
_ITEMS = {
    "1": r"(?P<component>[^\]\s]*)", "2": r"(?P<srcline>\S+)", "3": r"(?P<tid>[0-9A-Fa-f]+)",
    "4": rf"(?P<time>{_TIME})", "5": r"(?P<ktime>\S+)", "6": r"(?P<utime>\S+)",
    "7": r"(?P<seq>\d+)", "8": r"(?P<pid>[0-9A-Fa-f]+)", "9": r"(?P<cpu>\d+)",
    "FUNC": rf"(?P<func>{_FUNC})", "LEVEL": r"(?P<level>\w+)", "FLAGS": r"(?P<flags>\S+)",
    "COMPNAME": r"(?P<compname>\S+)", "SUBCOMP": r"(?P<subcomp>\S*)", "LINE": r"(?P<line>\d+)",
}
_PREFIX_ITEM = re.compile(r"%(\d)(?:!([^!]*)!)?|%!([A-Z]+)!")

KMDF_DEFAULT_PREFIX = "%7!u!: %!FUNC! - "
TRACEFMT_DEFAULT_PREFIX = "[%9!d!]%8!04X!.%3!04X!::%4!s! [%1!s!]"


@dataclass(frozen=True)
class Layout:
    prefix: str
    regex: re.Pattern


def compile_prefix(prefix: str, leading: str = "") -> Layout:
    """A WPP prefix -> a regex over whole lines with a `message` group.

    The prefix comes from the file (`Trace format prefix is:`), so it must not become a regex
    that backtracks: each item is an atomic group, matched once, greedily (adjacent items like
    `%5%6` then leave nothing for the second one and the line does not match the prefix)."""
    parts = ["^", leading]
    pos = 0
    seen: set[str] = set()
    for m in _PREFIX_ITEM.finditer(prefix):
        parts.append(_literal(prefix[pos:m.start()]))
        key = m.group(1) or m.group(3)
        item = _ITEMS.get(key, r"\S*")
        if key in seen:                     # a repeated item: match it, don't capture twice
            item = re.sub(r"\(\?P<\w+>", "(?:", item)
        seen.add(key)
        parts.append(f"(?>{item})")         # atomic: an item never gives back what it matched
        pos = m.end()
    parts.append(_literal(prefix[pos:]))
    parts.append(r"(?P<message>.*)$")
    return Layout(prefix, re.compile("".join(parts)))


def _literal(text: str) -> str:
    out = []
    for chunk in re.split(r"(\s+)", text):
        if not chunk:
            continue
        out.append(r"\s*" if chunk.isspace() else re.escape(chunk))
    return "".join(out)


_TIME_PARTS = re.compile(r"(\d+)[/-](\d+)[/-](\d+)[-T ](\d+):(\d+):(\d+)(?:\.(\d+))?")


def time_to_ns(text: str, clock: LocalClock) -> int | None:
    """Prefix time text -> UTC epoch ns. Consecutive records mostly share their whole second, so
    the clock keeps the last second's conversion."""
    whole, _, frac = text.partition(".")
    last_whole, last_ns = clock.last_second
    if whole == last_whole:
        return last_ns + frac_to_ns(frac)
    m = _TIME_PARTS.match(whole)
    if not m:
        return None
    a, b, c, hh, mm, ss = m.groups()[:6]
    if len(a) == 4:
        year, month, day = int(a), int(b), int(c)
    else:
        month, day, year = int(a), int(b), int(c)
    try:
        base = clock.to_ns(year, month, day, int(hh), int(mm), int(ss), 0)
    except ValueError:
        return None
    clock.last_second = (whole, base)
    return base + frac_to_ns(frac)


# What !wdflogdump / !rcdrlogdump print around the log (etw-formats.md section 3.5).
DEBUGGER_NOTE = re.compile(r"^(Trace searchpath is:|Trying to extract TMF information|Gather log:|"
                           r"% read so far|There are \d+ log entries|\d+ error events encountered|"
                           r"(\d+: )?kd> )")
PREFIX_STATEMENT = re.compile(r"^\s*Trace format prefix is:\s?(?P<prefix>.*?)\s*$")
UNKNOWN_MESSAGE = re.compile(r"Unknown\(\s*\d+\):\s*GUID=")
RELATIVE_STEP_NS = 1_000          # spacing of records in a dump that has no time at all


PREAMBLE_LINES = 2_000          # how far to look for the start-of-log marker


def _is_start_marker(s: str) -> bool:
    return s.startswith("-") and "start of log" in s.lower()


def _has_start_marker(path: Path) -> bool:
    for lineno, line in iter_lines(path, diagnostics=Diagnostics()):   # damage: the main pass tells
        if _is_start_marker(line.strip()):
            return True
        if lineno >= PREAMBLE_LINES:
            break
    return False


class _LogText:
    """Which lines of a dump are log records, and which prefix layout reads them: the debugger's
    preamble and notes are not records, a `Trace format prefix is:` line brings its own layout,
    and the layout that read the last record is tried first."""

    def __init__(self, layouts: list[Layout], markers: bool):
        self.layouts = list(layouts)
        self.markers = markers
        self.in_log = not markers

    def is_record(self, line: str) -> bool:
        s = line.strip()
        if not s:
            return False
        if self.markers:
            if _is_start_marker(s):
                self.in_log = True
                return False
            if s.startswith("-") and "end of log" in s.lower():
                self.in_log = False
                return False
        if s == "EventTrace" or DEBUGGER_NOTE.match(s):
            return False                # tracefmt's header line; the debugger's own notes
        m = PREFIX_STATEMENT.match(s)
        if m and m.group("prefix"):
            stated = compile_prefix(m.group("prefix").strip() + " ")
            self.layouts = [stated] + [lay for lay in self.layouts if lay.prefix != stated.prefix]
            return False
        return self.in_log              # else the debugger's preamble, or what follows the log

    def match(self, line: str) -> re.Match | None:
        current = self.layouts
        for i, lay in enumerate(current):
            hit = lay.regex.match(line)
            if hit:
                if i:
                    current.insert(0, current.pop(i))
                return hit
        return None


def _other_message(row: dict, g: dict, diagnostics: Diagnostics) -> bool:
    """Name a message that is not the framework's; True if the formatting tool could not decode
    it (counted as wpp_unformatted)."""
    row["kind"] = "other"
    if UNKNOWN_MESSAGE.search(g["message"]):
        diagnostics.count("wpp_unformatted")
        row["event_name"] = "WPP/Unknown"
        return True
    row["event_name"] = "WPP/" + (g.get("func") or g.get("component") or "message")
    return False


def _report_end(path: Path, diagnostics: Diagnostics, records: int, unformatted: int) -> None:
    if unformatted:
        diagnostics.warn(f"{path}: {unformatted} message(s) the formatting tool could not "
                         "decode (\"Unknown(…): GUID=… No Format Information found\"; it lacked "
                         "their TMF)")
    if records == 0:
        diagnostics.warn(f"{path}: no log lines found")


def read_wpp_text(path: Path, options, diagnostics: Diagnostics, stats: dict, *, source_kind: str,
                  layouts: list[Layout], markers: bool) -> Iterator[pl.DataFrame]:
    """The shared loop of the IFR and tracefmt readers.

    markers: lines outside `--- start of log ---` / `---- end of log ----` are preamble and are
    skipped, when the file has a start marker in its first PREAMBLE_LINES lines (if it has none,
    every line is a log line and lines no layout reads are bad)."""
    batches = EventBatches(str(path), options.all_records)
    bad = BadLines(path, diagnostics)
    # a dump without a start marker: every line a layout reads is a record
    log = _LogText(layouts, markers and _has_start_marker(path))
    clock = LocalClock(path, options.tz, diagnostics)
    stream = KmdfMessageStream()
    records = unformatted = 0
    first_ns: int | None = None
    untimed_warned = False
    for lineno, line in iter_lines(path, options.progress, diagnostics):
        if not log.is_record(line):
            continue
        hit = log.match(line)
        records += 1
        if hit is None:
            bad.add(lineno, "no known prefix layout matches")
            continue
        g = hit.groupdict()
        if g.get("time"):
            ts = time_to_ns(g["time"], clock)
            if ts is None:
                bad.add(lineno, f"bad time {g['time']!r}")
                continue
        else:
            if not untimed_warned:
                untimed_warned = True
                diagnostics.warn(f"{path}: the log lines carry no time; records are placed "
                                 f"{RELATIVE_STEP_NS} ns apart from the Unix epoch in log order "
                                 "and cannot be aligned with other inputs")
            ts = records * RELATIVE_STEP_NS
        if first_ns is None:
            first_ns = ts
        row = {"ts_ns": ts,
               "pid": int(g["pid"], 16) if g.get("pid") else None,
               "tid": int(g["tid"], 16) if g.get("tid") else None,
               "cpu": int(g["cpu"]) if g.get("cpu") else None,
               "header_kind": source_kind}
        framework_rows = stream.rows(g["message"])
        if framework_rows is not None:
            for extra in framework_rows[:-1]:        # implied rows (a queue state change) first
                batches.add({**row, **extra})
            row.update(framework_rows[-1])
        elif _other_message(row, g, diagnostics):
            unformatted += 1
        batches.add(row)
        if batches.full():
            yield from batches.flush()
    yield from batches.flush()
    bad.report()
    _report_end(path, diagnostics, records, unformatted)
    stats["records"] = stats.get("records", 0) + records
    if first_ns is not None:
        stats["trace_start_ns"] = first_ns
