"""KMDF in-flight-recorder text: `!wdfkd.wdflogdump <driver>` and `!rcdrkd.rcdrlogdump <driver>`.

Accepted layout (etw-formats.md section 3.5). Everything before `--- start of log ---` is the
debugger's preamble and is skipped, except a `Trace format prefix is: <prefix>` line, which sets
the per-line prefix (any WPP prefix, see fpreplay.parsers.text.wpptext). Each line between the
start and `---- end of log ----` markers is one IFR record, oldest first; a line no layout reads
is counted in `bad_lines` and named in a warning. Lines after the end marker (`N error events
encountered in logs`) are ignored. Several start/end sections in one file are read in order. A
file with no start marker in its first 2000 lines is all log: the debugger's own notes (`Trace
searchpath is:`, `There are N log entries`, `kd>` prompts …) are skipped, any other line no layout
reads is a bad line.

Prefix layouts tried when the dump does not state one (first match wins, then sticks):
  1. KMDF default `%7!u!: %!FUNC! - `                 `1503: FxPkgIo::Dispatch - WDFDEVICE …`
  2. rcdrlogdump `<LogID> %7!u!: %!FUNC! - `          `03 SLT01 DCI03 89911: Func - text`
  3. `[%9]%3!04x! %!LEVEL! %!FUNC!:`                  `[0]0000 TRACE_LEVEL_VERBOSE FxRequest::Complete:Completing …`
  4. tracefmt's default `[%9!d!]%8!04X!.%3!04X!::%4!s! [%1!s!]`

Time: a prefix with %4 (`MM/DD/YYYY-HH:MM:SS.fffffff`, local wall-clock time of the target)
gives absolute times, converted with --tz (UTC and a warning without it). A dump whose prefix has
no %4 has no time at all: its records are placed 1 µs apart from the Unix epoch (1970-01-01) in
log order, with a warning, so they keep their order but cannot be aligned with a kernel trace.
stats["records"] counts log lines read (bad ones included); trace_start_ns is the first record's.

Framework messages become event kinds through fpreplay.parsers.kmdf_messages (event_name
`IFR/<catalogue name>`); other lines are kind `other` (kept with --all) named `WPP/<function>`.

A complete dump fpreplay reads (what the sample-trace synthesizer writes; times make it
alignable with a kernel trace of the same run, --tz names the target's zone):

    Trace searchpath is: C:\\symbols
    Trace format prefix is: %7!u!: %4!s! %!FUNC! - 
    Trying to extract TMF information from - C:\\symbols\\Wdf01000.pdb
    Gather log: Please wait, this may take a moment (reading 4032 bytes).
    % read so far ... 100
    There are 6 log entries
    --- start of log ---
    1: 11/22/2024-04:49:12.3180000 FxPkgIo::Dispatch - WDFDEVICE 0x00005E7F3A6D3FD8 !devobj 0xFFFF8A0C1F0A2E30 0x00000003(IRP_MJ_READ), IRP_MN 0, IRP 0xFFFF8A0C1E2E6A20
    2: 11/22/2024-04:49:12.3180100 FxIoQueue::QueueRequest - Queuing WDFREQUEST 0x00005E7F3A1C8FD8 on WDFQUEUE 0x00005E7F3A6D6FD8
    3: 11/22/2024-04:49:12.3190000 FxRequest::Complete - Completing WDFREQUEST 0x00005E7F3A1C8FD8 for IRP 0xFFFF8A0C1E2E6A20 with Information 0x1000, STATUS_SUCCESS
    4: 11/22/2024-04:49:12.4000000 FxPkgIo::Dispatch - WDFDEVICE 0x00005E7F3A6D3FD8 !devobj 0xFFFF8A0C1F0A2E30 0x00000004(IRP_MJ_WRITE), IRP_MN 0, IRP 0xFFFF8A0C1E2E7B30
    5: 11/22/2024-04:49:12.4000050 FxRequest::_CreateForPackage - Memory allocation failed STATUS_INSUFFICIENT_RESOURCES
    6: 11/22/2024-04:49:12.4000100 FxIoQueue::GetReservedRequest - Forward action on WDFQUEUE 0x00005E7F3A6D6FD8 says that framework should fail the Irp 0xFFFF8A0C1E2E7B30, STATUS_UNSUCCESSFUL
    ---- end of log ----

(The prefix line ends with a space, as wdfkd prints it; `1: ` … ` - ` is the default prefix.)
Rows: irp_dispatch, other (Queuing; `irp` filled from the dispatch), irp_complete (bytes 0x1000,
status 0), irp_dispatch, request_alloc_failed (IRP …7B30), fp_policy_refused (IRP …7B30, status
0xC0000001, queue 0x5e7f3a6d6fd8). Handles and device objects are written as lower-case `0x…`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from fpreplay.parsers.text.wpptext import (KMDF_DEFAULT_PREFIX, TRACEFMT_DEFAULT_PREFIX,
                                           compile_prefix, read_wpp_text)

LAYOUTS = [
    compile_prefix(KMDF_DEFAULT_PREFIX),
    compile_prefix(KMDF_DEFAULT_PREFIX, leading=r"(?P<logid>\S(?:.*?\S)?)\s+"),
    compile_prefix("[%9]%3!04x! %!LEVEL! %!FUNC!:"),
    compile_prefix(TRACEFMT_DEFAULT_PREFIX),
]

_DUMP_LINE_STARTS = ("--- start of log ---", "---- end of log ----", "Trace format prefix is:",
                     "Gather log:", "Trace searchpath is:")
_DUMP_COMMANDS = ("!wdflogdump", "!rcdrlogdump", "wdfkd.wdflogdump", "rcdrkd.rcdrlogdump")
_ENTRIES = re.compile(r"^There are \d+ log entries")
_DEFAULT_LINE = re.compile(r"^\d+: " + r"[A-Za-z_~][\w~:<>]*" + r" - \S")
_CUSTOM_LINE = re.compile(r"^\[\d+\][0-9A-Fa-f]{1,8} TRACE_LEVEL_\w+ \S")


def looks_like(lines: list[str]) -> bool:
    for ln in lines:
        s = ln.strip()
        if s.startswith(_DUMP_LINE_STARTS) or _ENTRIES.match(s) \
                or any(c in s for c in _DUMP_COMMANDS):
            return True
    hits = [bool(_DEFAULT_LINE.match(ln) or _CUSTOM_LINE.match(ln)) for ln in lines]
    # a file starts with its format; later damage must not hide it
    return bool(lines) and (hits[0] or sum(hits) * 2 >= len(lines))


def read_events(path: Path, options, diagnostics, stats) -> Iterator[pl.DataFrame]:
    yield from read_wpp_text(Path(path), options, diagnostics, stats, source_kind="ifr",
                             layouts=list(LAYOUTS), markers=True)
