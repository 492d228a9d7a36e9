"""Recognising an input by its content, and the registry of readers.

A reader is `read(path, options, diagnostics, stats) -> Iterator[pl.DataFrame]`.
Add a format by adding a sniff rule and an entry in READERS; nothing else needs to change.
"""

from __future__ import annotations

import gzip
import importlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fpreplay.errors import InputError

# format name -> "module:function" (imported lazily so that one broken reader cannot break others)
READERS: dict[str, str] = {
    "etl": "fpreplay.parsers.etl.reader:read_events",
    "parquet": "fpreplay.parsers.table:read_parquet",
    "ndjson": "fpreplay.parsers.table:read_ndjson",
    "events_csv": "fpreplay.parsers.table:read_csv",
    "ifr": "fpreplay.parsers.text.ifr:read_events",
    "tracefmt": "fpreplay.parsers.text.tracefmt:read_events",
    "tracerpt_csv": "fpreplay.parsers.text.tracerpt:read_csv_events",
    "tracerpt_xml": "fpreplay.parsers.text.tracerpt:read_xml_events",
    "xperf_dumper": "fpreplay.parsers.text.xperf:read_events",
}

# Text sniffers register here: name -> predicate(first_lines: list[str]) -> bool, tried in order.
TEXT_SNIFFERS: list[tuple[str, str]] = [
    ("ifr", "fpreplay.parsers.text.ifr:looks_like"),
    ("tracefmt", "fpreplay.parsers.text.tracefmt:looks_like"),
    ("tracerpt_xml", "fpreplay.parsers.text.tracerpt:looks_like_xml"),
    ("tracerpt_csv", "fpreplay.parsers.text.tracerpt:looks_like_csv"),
    ("xperf_dumper", "fpreplay.parsers.text.xperf:looks_like"),
]

WMI_BUFFER_HEADER_SIZE = 0x48


@dataclass(frozen=True)
class Format:
    """One input format as `fpreplay formats` lists it: what it is, how sniff() recognises it
    (by content; the file name is never looked at) and what reading it yields."""

    name: str          # the key of READERS ("" for a format recognised only to be refused)
    title: str
    recognised_by: str
    yields: str


# Every format sniff() tells apart, in the order it tries them. Keep beside sniff(): a rule added
# there is described here (tests/parsers/test_formats_listing.py checks both agree).
FORMATS: tuple[Format, ...] = (
    Format("etl", "ETW trace (.etl), also inside .zip or .gz",
           "bytes: a WMI_BUFFER_HEADER at offset 0 whose first event is a trace header",
           "IRP dispatch and completion (DiskIo, FileIo, driver IRP events, TraceLogging), KMDF "
           "request, reserve and queue events (WPP with --tmf), memory-pressure signals, lost "
           "events"),
    Format("parquet", "fpreplay event table, Parquet", "bytes: 'PAR1' at offset 0",
           "the events as `fpreplay events` wrote them"),
    Format("ndjson", "fpreplay event table, NDJSON",
           'text: the first line is a JSON object with "ts_ns"',
           "the events as `fpreplay events` wrote them"),
    Format("events_csv", "fpreplay event table, CSV",
           "text: a CSV header naming ts_ns and kind",
           "the events as `fpreplay events` wrote them"),
    Format("ifr", "KMDF in-flight recorder dump (!wdflogdump, !rcdrlogdump)",
           "text: debugger dump lines, or most lines in the IFR message layout",
           "KMDF request, reserve and queue events, IRP dispatch and completion (local clock: "
           "--tz)"),
    Format("tracefmt", "tracefmt / TraceView WPP text",
           "text: most lines in tracefmt's default prefix layout (or TRACE_FORMAT_PREFIX)",
           "the same events as the IFR (local clock: --tz)"),
    Format("tracerpt_xml", "tracerpt XML (-of XML)",
           "text: <Events>/<Event> elements in the ETW event namespace",
           "the decoded kernel and manifest events, as from the .etl"),
    Format("tracerpt_csv", "tracerpt CSV (-of CSV)",
           "text: a header line starting 'Event Name' with a Clock-Time column",
           "the decoded kernel and manifest events, as from the .etl"),
    Format("xperf_dumper", "xperf -a dumper text",
           "text: BeginHeader/EndHeader, or rows starting with a kernel event type and a "
           "TimeStamp column",
           "DiskIo and FileIo IRP events (IrpPtr), with statuses where the rows carry them"),
    Format("", "Windows Performance Analyzer table (wpaexporter CSV), refused",
           "text: a CSV header whose columns carry WPA's units, e.g. 'IO Time (µs)'",
           "nothing: its rows name no IRP and no completion status and time them in seconds "
           "from WPA's view start, so no lifecycle can be rebuilt"),
)


def _load(spec: str):
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def reader_for(kind: str):
    return _load(READERS[kind])


def zip_member(path: Path, z: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The file a zipped trace stands for: its first .etl member, else its first file."""
    names = [i for i in z.infolist() if not i.is_dir()]
    etl = [i for i in names if i.filename.lower().endswith(".etl")]
    if not (etl or names):
        raise InputError(path, "zip archive holds no file", 0)
    return (etl or names)[0]


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        head = f.read(n)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                return g.read(n)
        except (OSError, EOFError) as e:
            raise InputError(path, f"damaged gzip stream: {e}", 0) from None
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                with z.open(zip_member(path, z)) as m:
                    return m.read(n)
        except zipfile.BadZipFile as e:
            raise InputError(path, f"damaged zip archive: {e}", 0) from None
    return head


def looks_like_etl(head: bytes) -> bool:
    """A WMI_BUFFER_HEADER whose first event is a trace-header-flagged record."""
    if len(head) < WMI_BUFFER_HEADER_SIZE + 4:
        return False
    size = int.from_bytes(head[0:4], "little")
    marker = head[WMI_BUFFER_HEADER_SIZE + 3]
    return size >= WMI_BUFFER_HEADER_SIZE and (marker & 0xC0) == 0xC0


def sniff(path: Path) -> str:
    head = _head(path)
    if not head:
        raise InputError(path, "empty file", 0)
    if head[:4] == b"PAR1":
        return "parquet"
    if looks_like_etl(head):
        return "etl"
    # tracerpt -en Unicode writes UTF-16 with a BOM
    encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip()][:40]
    if lines and lines[0].lstrip().startswith("{") and '"ts_ns"' in lines[0]:
        return "ndjson"
    if lines and "ts_ns" in lines[0] and "kind" in lines[0] and "," in lines[0]:
        return "events_csv"
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text) / max(1, len(text))
    if printable > 0.95:
        for name, spec in TEXT_SNIFFERS:
            try:
                if _load(spec)(lines):
                    return name
            except (ImportError, AttributeError):
                continue
        _refuse_wpa_export(path, lines)   # what no reader claims: a WPA table says why not
        raise InputError(path, "text in no format fpreplay knows (expected a KMDF in-flight-recorder "
                               "dump, tracefmt output, tracerpt CSV/XML, xperf dumper text or an "
                               "fpreplay event table)", 0)
    raise InputError(path, "not an ETW trace: no WMI_BUFFER_HEADER with a trace header event at "
                           "offset 0", 0)


# WPA writes a column's unit after its name: "IO Time (µs)", "Size (B)", "Complete Time (s)"
# (tracerpt's "Kernel(ms)" has no space and is tracerpt's, claimed by its sniffer first).
_WPA_UNIT = re.compile(r" \((?:µs|us|ms|ns|s|B|KB|MB|GB|%)\)\s*$")


def _refuse_wpa_export(path: Path, lines: list[str]) -> None:
    """A table exported from WPA (wpaexporter) is recognised and refused in one line saying why:
    its rows carry no IRP address and no status, which every answer here is built from."""
    if not lines:
        return
    columns = [c.strip().strip('"') for c in lines[0].split(",")]
    if len(columns) < 3 or sum(bool(_WPA_UNIT.search(c)) for c in columns) < 2:
        return
    names = {_WPA_UNIT.sub("", c).strip().lower() for c in columns}
    if any(n in ("irp", "irp ptr", "irpptr", "packet object") for n in names):
        return   # a table with an IRP column is not this refusal's to judge
    table = ("its Disk Usage table" if {"io type", "disk service time"} <= names
             else "one of its tables")
    raise InputError(path, f"a Windows Performance Analyzer export (wpaexporter CSV, {table}): "
                           "its rows carry no IRP address and no completion status, and its "
                           "times are seconds from WPA's view start with no clock, so no IRP "
                           "lifecycle can be rebuilt from it; give fpreplay the .etl it was "
                           "exported from (or `xperf -a dumper` text of it)", 0)
