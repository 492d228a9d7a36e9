"""tracefmt output (WDK `tracefmt trace.etl -p <tmfdir> -o out.txt`), etw-formats.md section 3.4.

One line per WPP message: `<prefix><message>`. The default prefix is tracefmt's
`[%9!d!]%8!04X!.%3!04X!::%4!s! [%1!s!]`, i.e. `[CPU]PID.TID::MM/DD/YYYY-HH:MM:SS.mmm [name]`:

    EventTrace
    [0]0C40.0C3C::09/20/2004-14:41:31.625 [tracedrv]Hello, 1 Hi

(the first line, `EventTrace`, is the trace header's own line and is skipped).

A custom prefix is read when the file states it in a `Trace format prefix is: <prefix>` line, or
from the TRACE_FORMAT_PREFIX environment variable (set it to what tracefmt was run with); any
prefix made of the items in fpreplay.parsers.text.wpptext works. `-hires` times (more fraction
digits) are read. Times are the capturing machine's local time: --tz converts them (UTC and a
warning without it). `Unknown( n): GUID=… (No Format Information found).` lines are counted
(`wpp_unformatted`) and kept as `other`. Lines no layout reads are counted in `bad_lines`.
Framework (KMDF) messages become event kinds through fpreplay.parsers.kmdf_messages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from fpreplay.parsers.text.wpptext import (KMDF_DEFAULT_PREFIX, TRACEFMT_DEFAULT_PREFIX,
                                           UNKNOWN_MESSAGE, compile_prefix, read_wpp_text)

_LINE = re.compile(r"^\[\d+\][0-9A-Fa-f]+\.[0-9A-Fa-f]+::\d{1,2}/\d{1,2}/\d{4}-\d{1,2}:\d{2}:\d{2}")


def looks_like(lines: list[str]) -> bool:
    hits = [bool(_LINE.match(ln) or UNKNOWN_MESSAGE.search(ln)) for ln in lines]
    # a file starts with its format; later damage must not hide it
    return bool(lines) and (hits[0] or sum(hits) * 2 >= len(lines))


def read_events(path: Path, options, diagnostics, stats) -> Iterator[pl.DataFrame]:
    layouts = [compile_prefix(TRACEFMT_DEFAULT_PREFIX),
               compile_prefix(TRACEFMT_DEFAULT_PREFIX + "%!FUNC! - "),
               compile_prefix(KMDF_DEFAULT_PREFIX)]
    env = os.environ.get("TRACE_FORMAT_PREFIX")
    if env:
        layouts.insert(0, compile_prefix(env))
    yield from read_wpp_text(Path(path), options, diagnostics, stats, source_kind="tracefmt",
                             layouts=layouts, markers=False)
