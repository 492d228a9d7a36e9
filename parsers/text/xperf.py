"""`xperf -i trace.etl -a dumper` text (etw-formats.md section 3.3), old and new column layouts.

Between `BeginHeader` and `EndHeader` one line per event type names its columns
(`DiskRead,  TimeStamp,     Process Name ( PID),   ThreadID, …`); a header line met later in the
file (a line whose second field is `TimeStamp`) is honoured the same way. Data rows are
comma-separated (file names quoted), the type right-aligned in the first column. A type the file
gives no header for is read with the built-in layouts below, chosen by field count: the old
layout without a CPU column (Exchange-era xperf) and the newer one with `CPU` after ThreadID.

Rows -> kinds (contract section 3): DiskReadInit/DiskWriteInit/DiskFlushInit and DrvMjFnCall ->
irp_dispatch; DiskRead/DiskWrite/DiskFlush and DrvComplReq -> irp_complete (IrpPtr, IOSize,
ByteOffset, IrpFlags with the priority bits 17-19 masked off, DiskNum as `device` (`disk<N>`),
FileObject);
FileIoCreate/Read/Write/Close/… -> irp_dispatch (major implied by the type; Size, ByteOffset,
Flags); FileIoOpEnd -> irp_complete (Status; ExtraInfo as `bytes` when Type is a read or write;
major from Type); HardFault -> memory_pressure. Other types are `other` (kept with --all).

Time: TimeStamp is microseconds since the trace start; xperf's text has no absolute start, so
ts_ns = TimeStamp × 1000 from the Unix epoch (trace_start_ns = 0), with one warning. A
DiskRead/DiskWrite/DiskFlush with no Init row for its IRP gets an irp_dispatch row derived from
its ElapsedTime (ts − ElapsedTime), named `DiskIo/ReadInit (from ElapsedTime)`, so its lifecycle
has an arrival; the `dispatch_from_elapsed` counter says how many.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from fpreplay.parsers.text.common import BadLines, EventBatches, iter_lines, parse_int
from fpreplay.parsers.text.kernel_rows import DISK_COMPLETIONS, DISK_INITS, FILEIO_MAJOR, kernel_row

# dumper type -> (kernel class, opcode)
TYPES: dict[str, tuple[str, int]] = {
    "DiskRead": ("DiskIo", 10), "DiskWrite": ("DiskIo", 11), "DiskFlush": ("DiskIo", 14),
    "DiskReadInit": ("DiskIo", 12), "DiskWriteInit": ("DiskIo", 13),
    "DiskFlushInit": ("DiskIo", 15),
    "DrvMjFnCall": ("DiskIo", 34), "DrvMjFnRet": ("DiskIo", 35), "DrvComplRout": ("DiskIo", 37),
    "DrvComplReq": ("DiskIo", 52), "DrvComplReqRet": ("DiskIo", 53),
    "FileIoCreate": ("FileIo", 64), "FileIoCleanup": ("FileIo", 65), "FileIoClose": ("FileIo", 66),
    "FileIoRead": ("FileIo", 67), "FileIoWrite": ("FileIo", 68), "FileIoSetInfo": ("FileIo", 69),
    "FileIoDelete": ("FileIo", 70), "FileIoRename": ("FileIo", 71), "FileIoDirEnum": ("FileIo", 72),
    "FileIoFlush": ("FileIo", 73), "FileIoQueryInfo": ("FileIo", 74), "FileIoFSCTL": ("FileIo", 75),
    "FileIoOpEnd": ("FileIo", 76), "FileIoDirNotify": ("FileIo", 77),
    "HardFault": ("PageFault", 32),
}

# dumper column -> MOF field name that kernel_row reads
COLUMN_FIELDS = {
    "IrpPtr": "Irp", "Irp": "Irp", "ByteOffset": "ByteOffset", "IOSize": "TransferSize",
    "Size": "IoSize", "IrpFlags": "IrpFlags", "Flags": "IoFlags", "DiskNum": "DiskNumber",
    "FileObject": "FileObject", "Status": "NtStatus", "ExtraInfo": "ExtraInfo",
    "MajorFunction": "MajorFunction", "MinorFunction": "MinorFunction", "Major": "MajorFunction",
    "Minor": "MinorFunction",
}

_HEAD = ["TimeStamp", "Process Name ( PID)", "ThreadID"]
_DISK = ["IrpPtr", "ByteOffset", "IOSize", "ElapsedTime", "DiskNum", "IrpFlags", "DiskSvcTime",
         "I/O Pri", "VolSnap", "FileObject", "FileName"]
_FLUSH = ["IrpPtr", "ElapsedTime", "DiskNum", "IrpFlags", "DiskSvcTime", "I/O Pri"]
_LOGGING = ["LoggingProcessName ( PID)", "LoggingThreadID", "CPU"]
_FILE_RW = ["IrpPtr", "FileObject", "ByteOffset", "Size", "Flags", "ExtraFlags", "Priority",
            "FileName", "ParsedFlags"]
_OPEND = ["IrpPtr", "FileObject", "ElapsedTime", "Status", "ExtraInfo", "Type", "FileName"]
_CREATE = ["IrpPtr", "FileObject", "Options", "Attributes", "ShareAccess", "FileName",
           "ParsedOptions", "ParsedAttributes", "ParsedShareAccess"]
_HARD = ["VirtualAddr", "ByteOffset", "IOSize", "ElapsedTime", "FileObject", "FileName",
         "Hardfaulted Address Information"]


def _both(body: list[str]) -> list[list[str]]:
    """Old layout (no CPU column) and new layout (CPU after ThreadID)."""
    return [_HEAD + body, _HEAD + ["CPU"] + body]


DEFAULT_LAYOUTS: dict[str, list[list[str]]] = {
    **{t: _both(_DISK) for t in ("DiskRead", "DiskWrite")},
    "DiskFlush": _both(_FLUSH),
    **{t: _both(["IrpPtr"]) for t in ("DiskReadInit", "DiskWriteInit", "DiskFlushInit")},
    **{t: [_HEAD + _LOGGING + _FILE_RW] for t in ("FileIoRead", "FileIoWrite")},
    "FileIoOpEnd": [_HEAD + _LOGGING + _OPEND],
    "FileIoCreate": [_HEAD + _LOGGING + _CREATE],
    "HardFault": _both(_HARD),
}

_ROW_START = re.compile(r"^\s*([A-Za-z][\w/-]*)\s*,\s*(\d+)\s*,")
_PROCESS = re.compile(r"\((\s*\d+)\)\s*$")


def looks_like(lines: list[str]) -> bool:
    if any(ln.strip() in ("BeginHeader", "EndHeader") for ln in lines):
        return True
    hits = []
    for ln in lines:
        m = _ROW_START.match(ln)
        head = ln.split(",")
        header_line = len(head) > 2 and head[1].strip() == "TimeStamp"
        hits.append(bool((m and m.group(1) in TYPES) or header_line))
    # a file starts with its format; later damage must not hide it
    return bool(lines) and (hits[0] or (any(hits) and sum(hits) * 2 >= len(lines)))


def _split(line: str) -> list[str]:
    if '"' not in line:         # most rows: no quoted file name, a plain split is enough
        return [f.strip() for f in line.split(",")]
    return [f.strip() for f in next(csv.reader([line], skipinitialspace=True))]


def _pid(text: str | None) -> int | None:
    if not text:
        return None
    m = _PROCESS.search(text)
    return int(m.group(1)) if m else None


def _other_row(kind: str, ts: int, values: list[str]) -> dict:
    return {"ts_ns": ts, "kind": "other", "event_name": kind, "header_kind": "xperf_dumper",
            "pid": _pid(values[1]) if len(values) > 1 else None}


def _layout_for(kind: str, count: int, headers: dict[str, list[str]]) -> list[str] | None:
    cols = headers.get(kind)
    if cols is not None:
        return cols if count >= len(cols) - 1 else None
    for cand in DEFAULT_LAYOUTS.get(kind, []):
        if count in (len(cand), len(cand) - 1):
            return cand
    return None


def _typed_row(cls: str, opcode: int, ts: int, values: list[str], cols: list[str],
               plans: dict[int, tuple]) -> tuple[dict, dict[str, str]]:
    """A row of a known kernel type, read through its column layout: the event-table row and the
    row's values by column name. `plans` keeps, per column list, which positions are MOF fields
    (keyed by the list's id; the list is kept with it, so its id stays its own)."""
    entry = plans.get(id(cols))
    if entry is None or entry[0] is not cols:
        entry = plans[id(cols)] = (cols, [(i, COLUMN_FIELDS[c]) for i, c in enumerate(cols)
                                          if c in COLUMN_FIELDS])
    n = len(values)
    mof = {name: values[i] for i, name in entry[1] if i < n}
    named = dict(zip(cols, values))
    row = kernel_row(cls, opcode, mof)
    row["ts_ns"] = ts
    row["header_kind"] = "xperf_dumper"
    row["pid"] = _pid(named.get("Process Name ( PID)"))
    tid = parse_int(named.get("ThreadID"))
    if not tid:
        tid = parse_int(named.get("LoggingThreadID"))
    row["tid"] = tid or None
    row["cpu"] = parse_int(named.get("CPU"))
    if cls == "FileIo" and opcode in (67, 68) and row.get("bytes") is None:
        row["bytes"] = parse_int(named.get("Size"))
    if cls == "FileIo" and opcode == 76:
        op = TYPES.get(named.get("Type", ""))
        if op and op[1] in FILEIO_MAJOR:
            row["major"] = FILEIO_MAJOR[op[1]]
            if op[1] in (67, 68):
                row["bytes"] = parse_int(named.get("ExtraInfo"))
    return row, named


def _dispatch_from_elapsed(cls: str, opcode: int, row: dict, named: dict[str, str],
                           open_inits: set[int], diagnostics) -> dict | None:
    """A DiskIo completion whose initiation the file does not hold: its dispatch, placed
    ElapsedTime before it (counted as dispatch_from_elapsed). `open_inits` holds the IRPs whose
    initiation was read and is not completed yet."""
    irp = row.get("irp")
    if cls != "DiskIo" or irp is None:
        return None
    if opcode in DISK_INITS:
        open_inits.add(irp)
        return None
    if opcode not in DISK_COMPLETIONS:
        return None
    if irp in open_inits:
        open_inits.discard(irp)
        return None
    elapsed = parse_int(named.get("ElapsedTime"))
    if elapsed is None:
        return None
    diagnostics.count("dispatch_from_elapsed")
    init = {k: row.get(k) for k in ("irp", "major", "device", "irp_flags", "bytes", "offset",
                                    "file_object", "pid", "tid", "cpu")}
    init.update(ts_ns=row["ts_ns"] - elapsed * 1000, kind="irp_dispatch",
                event_name=row["event_name"].replace("Read", "ReadInit")
                .replace("Write", "WriteInit").replace("FlushBuffers", "FlushInit")
                + " (from ElapsedTime)", header_kind="xperf_dumper")
    return init


def read_events(path: Path, options, diagnostics, stats) -> Iterator[pl.DataFrame]:
    path = Path(path)
    batches = EventBatches(str(path), options.all_records)
    bad = BadLines(path, diagnostics)
    headers: dict[str, list[str]] = {}
    plans: dict[int, tuple] = {}        # id(column list) -> (that list, [(position, MOF field)])
    open_inits: set[int] = set()
    in_header = False
    records = 0
    warned = False
    for lineno, line in iter_lines(path, options.progress, diagnostics):
        s = line.strip()
        if not s:
            continue
        if s == "BeginHeader":
            in_header = True
            continue
        if s == "EndHeader":
            in_header = False
            continue
        try:
            fields = _split(line)
        except csv.Error as e:
            bad.add(lineno, f"unreadable row ({e})")
            continue
        if len(fields) > 2 and fields[1] == "TimeStamp":
            headers[fields[0]] = fields[1:]
            continue
        if in_header:
            continue                  # other header material (system configuration lines)
        records += 1
        if len(fields) < 2 or not fields[1].lstrip("-").isdigit():
            bad.add(lineno, "not a dumper row (expected '<Type>, <TimeStamp>, …')")
            continue
        kind = fields[0]
        ts = int(fields[1]) * 1000
        if not warned:
            warned = True
            diagnostics.warn(f"{path}: xperf dumper TimeStamps are microseconds since the trace "
                             "start (no absolute time in the text); placed from the Unix epoch")
        values = fields[1:]
        if kind not in TYPES:
            batches.add(_other_row(kind, ts, values))
            continue
        if kind not in headers and kind not in DEFAULT_LAYOUTS:
            # a known type whose columns this file never named and no built-in layout knows
            diagnostics.count("xperf_rows_without_layout")
            diagnostics.warn(f"{path}: {kind} rows have no column header in the file; kept as "
                             "'other'")
            batches.add(_other_row(kind, ts, values))
            continue
        cols = _layout_for(kind, len(values), headers)
        if cols is None:
            bad.add(lineno, f"{kind}: {len(values)} fields fit no known column layout (cut line?)")
            continue
        cls, opcode = TYPES[kind]
        row, named = _typed_row(cls, opcode, ts, values, cols, plans)
        init = _dispatch_from_elapsed(cls, opcode, row, named, open_inits, diagnostics)
        if init is not None:
            batches.add(init)
        batches.add(row)
        if batches.full():
            yield from batches.flush()
    yield from batches.flush()
    bad.report()
    stats["records"] = stats.get("records", 0) + records
    stats["trace_start_ns"] = 0
