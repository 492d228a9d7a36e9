"""tracerpt exports: `tracerpt x.etl -of CSV` and `-of XML` (etw-formats.md sections 3.1, 3.2).

CSV: a header line (`Event Name, Type, Event ID, Version, …, Clock-Time, Kernel(ms), User(ms),
User Data`), then one row per event. The payload fields start at the `User Data` column and have
no names; they are named from the MOF layout of (class, opcode, version) in
fpreplay.parsers.text.kernel_rows, the field count breaking v2/v3 ties. PID/TID are hex;
0xFFFFFFFF (PERFINFO events) means unknown. Clock-Time is a FILETIME (UTC); a file written with
`-rts` (raw clock) has no absolute time: its values are taken as 100-ns ticks from the Unix epoch,
with a warning. A DiskIo/FileIo row whose payload matches no known layout is a bad line.

XML: a sequence of `<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">`
elements, read one element at a time (never the whole document), so a damaged element costs only
itself (counted as a bad line, named by the line it starts on). The class comes from
`ExtendedTracingInfo/EventGuid` (DiskIo/FileIo/PageFault GUIDs), else `RenderingInfo/EventName`;
opcode and version from `System`; fields from `EventData/Data[@Name]`; time from
`TimeCreated/@SystemTime` (UTC when it ends in Z or an offset, else local time: --tz).

Kinds: DiskIo *Init and DrvMjFnCall -> irp_dispatch; DiskIo Read/Write/FlushBuffers and
DrvComplReq -> irp_complete (IrpFlags with the priority bits masked off, size, offset, disk
number as `device`, `disk<N>`); FileIo Create/Read/Write/… -> irp_dispatch (major implied by the
operation); FileIo OperationEnd -> irp_complete with NtStatus; PageFault HardFault ->
memory_pressure. Microsoft-Windows-Kernel-File and -Kernel-Disk events (the same I/O from a
manifest provider; CSV rows named by the provider, payload in template order) give the same rows
under the .etl decoders' names (`Kernel-File/Write`, `Kernel-Disk/DiskRead`, …). Everything else
is `other` (kept with --all).
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from fpreplay.errors import InputError
from fpreplay.parsers.text.common import (BadLines, EventBatches, LocalClock, filetime_to_ns,
                                          frac_to_ns, iter_lines, looks_like_filetime, parse_int)
from fpreplay.parsers.text.kernel_rows import (CLASS_BY_GUID, MANIFEST_BY_NAME, MANIFEST_DECODERS,
                                               MANIFEST_PROVIDERS, OPCODE_BY_NAME, OPCODE_NAMES,
                                               kernel_row,
                                               known_payload, manifest_payload_names, manifest_row,
                                               payload_names)

_XML_NS = "http://schemas.microsoft.com/win/2004/08/events/event"


def looks_like_csv(lines: list[str]) -> bool:
    return bool(lines) and lines[0].lstrip().startswith("Event Name") and "Clock-Time" in lines[0]


def looks_like_xml(lines: list[str]) -> bool:
    head = " ".join(lines[:10])
    return "<Event" in head and (_XML_NS in head or "<Events" in head)


def _hex_id(text: str) -> int | None:
    v = parse_int(text)
    return None if v is None or v == 0xFFFFFFFF else v


def _event_row(cls: str, type_name: str, opcode, version, payload: list[str],
               event_id_of) -> tuple[dict | None, str]:
    """The row of one event from its class and payload fields: a manifest provider's (by
    event id), a kernel class's (by opcode and version), or an undecoded `other` row;
    (None, why) when a decoded event's payload fits none of its layouts."""
    if cls in MANIFEST_BY_NAME:
        guid = MANIFEST_BY_NAME[cls]
        event_id = event_id_of()
        if event_id not in MANIFEST_DECODERS[guid]:
            return {"kind": "other", "event_name": f"{cls}/{event_id}", "event_id": event_id,
                    "provider": guid}, ""
        names = manifest_payload_names(guid, event_id, len(payload))
        what, layouts = f"{cls} event {event_id}", "template"
    elif cls in OPCODE_NAMES and known_payload(cls, opcode):
        names = payload_names(cls, opcode, version or 0, len(payload))
        what, layouts = f"{cls}/{type_name} v{version}", "layout"
    else:
        return {"kind": "other", "event_name": f"{cls}/{type_name}", "opcode": opcode}, ""
    if names is None:
        return None, f"{what}: {len(payload)} payload fields fit no known {layouts}"
    values = dict(zip(names, payload))
    if cls in MANIFEST_BY_NAME:
        return {**manifest_row(guid, event_id, values), "provider": guid}, ""
    return kernel_row(cls, opcode, values), ""


# --- CSV ------------------------------------------------------------------------------------------
def read_csv_events(path: Path, options, diagnostics, stats) -> Iterator[pl.DataFrame]:
    path = Path(path)
    batches = EventBatches(str(path), options.all_records)
    bad = BadLines(path, diagnostics)
    header: dict[str, int] | None = None
    records = 0
    first_ns = None
    raw_warned = False
    for lineno, line in iter_lines(path, options.progress, diagnostics):
        if not line.strip():
            continue
        if header is None:
            cols = [c.strip() for c in line.split(",")]
            if not cols or cols[0] != "Event Name" or "User Data" not in cols:
                raise InputError(path, "not a tracerpt CSV: the first line is not the "
                                       "'Event Name, Type, …, User Data' header", 0)
            header = {c: i for i, c in enumerate(cols)}
            continue
        records += 1
        try:
            fields = next(csv.reader([line], skipinitialspace=True))
        except csv.Error as e:
            bad.add(lineno, f"unreadable CSV ({e})")
            continue
        fields = [f.strip() for f in fields]
        user = header["User Data"]
        if len(fields) < user:
            bad.add(lineno, f"{len(fields)} fields, the header has {user} before User Data "
                            "(cut line?)")
            continue
        clock = parse_int(fields[header["Clock-Time"]]) if "Clock-Time" in header else None
        if clock is None:
            bad.add(lineno, f"bad Clock-Time {fields[header.get('Clock-Time', 0)]!r}")
            continue
        if looks_like_filetime(clock):
            ts = filetime_to_ns(clock)
        else:
            if not raw_warned:
                raw_warned = True
                diagnostics.warn(f"{path}: Clock-Time is a raw clock (tracerpt -rts), not a "
                                 "FILETIME; times are taken as 100-ns ticks and cannot be aligned "
                                 "with other inputs")
            ts = clock * 100
        cls = fields[header["Event Name"]]
        type_name = fields[header.get("Type", 1)]
        opcode = parse_int(fields[header["Opcode"]]) if "Opcode" in header else None
        if opcode is None:
            opcode = OPCODE_BY_NAME.get(cls, {}).get(type_name.lower())
        version = parse_int(fields[header["Version"]]) if "Version" in header else 0
        payload = fields[user:]
        while payload and payload[-1] == "" and len(payload) > 1:
            payload = payload[:-1]
        row, why = _event_row(cls, type_name, opcode, version, payload,
                              lambda: parse_int(fields[header["Event ID"]])
                              if "Event ID" in header else None)
        if row is None:
            bad.add(lineno, why)
            continue
        row["ts_ns"] = ts
        row["version"] = version
        row["header_kind"] = "tracerpt_csv"
        pid = _hex_id(fields[header["PID"]]) if "PID" in header else None
        tid = _hex_id(fields[header["TID"]]) if "TID" in header else None
        row["pid"] = pid
        if tid is not None:
            row["tid"] = tid
        if "Processor Number" in header:
            row["cpu"] = parse_int(fields[header["Processor Number"]])
        if first_ns is None or ts < first_ns:
            first_ns = ts
        batches.add(row)
        if batches.full():
            yield from batches.flush()
    if header is None:
        raise InputError(path, "empty tracerpt CSV (no header line)", 0)
    yield from batches.flush()
    bad.report()
    stats["records"] = stats.get("records", 0) + records
    if first_ns is not None:
        stats["trace_start_ns"] = first_ns


# --- XML ------------------------------------------------------------------------------------------
_EVENT_START = re.compile(r"<Event[\s>]")
_EVENT_END = "</Event>"
_SYSTEM_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
                          r"(Z|[+-]\d{2}:?\d{2})?$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# Markup outside the events, removed in two passes; whatever is left is junk. Every repeat is
# bounded or stops at a character it cannot cross, so a long line costs linear time.
_ATTRIBUTES_OR_SPACE = re.compile(
    r'\s+|(?<![\w:.-])[\w:.-]{1,256}\s{0,16}=\s{0,16}"[^"<>]{0,4096}"')
_TAGS = re.compile(r"<[^<>]*>|<[^<>]*$|^[/?]?>")


def _is_markup(text: str) -> bool:
    """Whether text outside any <Event> is XML around the events (the prolog, <Events>, a tag
    begun or ended on this line and continued on another, or its attributes alone), not junk
    appended to the file."""
    return not _TAGS.sub("", _ATTRIBUTES_OR_SPACE.sub("", text))


def _iter_event_chunks(path: Path, progress=None, diagnostics=None,
                       outside=None) -> Iterator[tuple[int, str | None]]:
    """(start line, text of one <Event>…</Event>) streamed; (line, None) for a cut last event.
    `outside(line, text)` hears of text outside any event that is not XML markup.

    Linear in the file: an event still open is searched for its end only in the text added
    since the last search (an unclosed <Event> must not make every later line rescan it)."""
    buf = ""
    searched = 0                   # buf[:searched] holds no _EVENT_END
    start_line = 0
    for lineno, line in iter_lines(path, progress, diagnostics):
        if not buf:
            m = _EVENT_START.search(line)
            if not m:
                if outside is not None and not _is_markup(line):
                    outside(lineno, line)
                continue
            if outside is not None and not _is_markup(line[:m.start()]):
                outside(lineno, line[:m.start()])
            line = line[m.start():]
            start_line = lineno
            searched = 0
        buf += line + "\n"
        while True:
            end = buf.find(_EVENT_END, searched)
            if end < 0:
                searched = max(0, len(buf) - len(_EVENT_END) + 1)
                break
            yield from _split_unended(start_line, buf[:end + len(_EVENT_END)])
            rest = buf[end + len(_EVENT_END):]
            m = _EVENT_START.search(rest)
            if outside is not None and not _is_markup(rest[:m.start()] if m else rest):
                outside(lineno, rest[:m.start()] if m else rest)
            buf = rest[m.start():] if m else ""
            searched = 0
            start_line = lineno
    if buf.strip():
        yield start_line, None


def _split_unended(start_line: int, chunk: str) -> Iterator[tuple[int, str]]:
    """One <Event>…</Event> chunk, or several when events before the last lost their </Event>
    (each such event is its own bad line, not merged with the good one after it)."""
    starts = [m.start() for m in _EVENT_START.finditer(chunk, 1)]
    if not starts:
        yield start_line, chunk
        return
    line, at = start_line, 0
    for start in starts + [len(chunk)]:
        yield line, chunk[at:start]
        line += chunk.count("\n", at, start)
        at = start


def _event_parts(ev: ET.Element) -> tuple[dict, dict, dict, dict]:
    """An <Event>'s parts: its System values (EventID, Version, Opcode, ...), the attributes of
    Provider / TimeCreated / Execution, its named <Data> values, and the names tracerpt adds
    (EventGuid, EventName, and a repeated System value)."""
    sysinfo: dict[str, str] = {}
    attrs: dict[str, dict] = {}
    data: dict[str, str] = {}
    names: dict[str, str] = {}
    for el in ev.iter():
        tag = _local(el.tag)
        if tag == "Data" and el.get("Name"):
            data[el.get("Name")] = (el.text or "").strip()
        elif tag in ("EventID", "Version", "Opcode", "Level", "Task", "EventGuid", "EventName"):
            target = names if tag in ("EventGuid", "EventName") or tag in sysinfo else sysinfo
            target.setdefault(tag, (el.text or "").strip())
        elif tag in ("Provider", "TimeCreated", "Execution"):
            attrs.setdefault(tag, dict(el.attrib))
    return sysinfo, attrs, data, names


def _system_time_ns(text: str, clock: LocalClock) -> int | None:
    """TimeCreated's SystemTime as UTC epoch ns: with its zone if it has one, else local time."""
    m = _SYSTEM_TIME.match(text)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, zone = m.groups()
    if not zone:
        return clock.to_ns(int(y), int(mo), int(d), int(hh), int(mi), int(ss), frac_to_ns(frac))
    off = 0 if zone == "Z" else (1 if zone[0] == "+" else -1) * (
        int(zone[1:3]) * 3600 + int(zone[-2:]) * 60)
    secs = int(datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss),
                        tzinfo=timezone.utc).timestamp()) - off
    return secs * 1_000_000_000 + frac_to_ns(frac)


def _xml_row(sysinfo: dict, attrs: dict, data: dict, names: dict, ts: int) -> dict:
    """An event's row: a manifest provider's or kernel class's decoder, else an `other` row."""
    guid = names.get("EventGuid") or attrs.get("Provider", {}).get("Guid", "")
    guid = guid.strip("{}").lower()
    cls = CLASS_BY_GUID.get(guid)
    if cls is None and names.get("EventName") in OPCODE_NAMES:
        cls = names["EventName"]
    opcode = parse_int(sysinfo.get("Opcode"))
    event_id = parse_int(sysinfo.get("EventID"))
    manifest = manifest_row(guid, event_id, data) if guid in MANIFEST_PROVIDERS else None
    if manifest is not None:
        row = manifest
    elif cls is not None and opcode is not None:
        row = kernel_row(cls, opcode, data)
    else:
        label = names.get("EventName") or attrs.get("Provider", {}).get("Name") or guid
        row = {"kind": "other", "event_name": f"{label}/{sysinfo.get('EventID', opcode)}",
               "opcode": opcode}
    ex = attrs.get("Execution", {})
    row.update(ts_ns=ts, version=parse_int(sysinfo.get("Version")) or 0, provider=guid or None,
               header_kind="tracerpt_xml", event_id=event_id,
               pid=_hex_id(ex.get("ProcessID", "")), cpu=parse_int(ex.get("ProcessorID")))
    tid = _hex_id(ex.get("ThreadID", ""))
    if tid is not None:
        row["tid"] = tid
    return row


def read_xml_events(path: Path, options, diagnostics, stats) -> Iterator[pl.DataFrame]:
    path = Path(path)
    batches = EventBatches(str(path), options.all_records)
    bad = BadLines(path, diagnostics)
    clock = LocalClock(path, options.tz, diagnostics)
    records = 0
    first_ns = None

    def junk(lineno: int, text: str) -> None:
        bad.add(lineno, f"{len(text.strip()):,} characters outside any <Event> are not XML")

    for lineno, chunk in _iter_event_chunks(path, options.progress, diagnostics, junk):
        records += 1
        if chunk is None:
            bad.add(lineno, "event cut off at the end of the file")
            continue
        try:
            ev = ET.fromstring(chunk)
        except ET.ParseError as e:
            bad.add(lineno, f"malformed XML event ({e})")
            continue
        sysinfo, attrs, data, names = _event_parts(ev)
        st = attrs.get("TimeCreated", {}).get("SystemTime", "")
        ts = _system_time_ns(st, clock)
        if ts is None:
            bad.add(lineno, f"bad TimeCreated SystemTime {st!r}")
            continue
        if first_ns is None or ts < first_ns:
            first_ns = ts
        batches.add(_xml_row(sysinfo, attrs, data, names, ts))
        if batches.full():
            yield from batches.flush()
    yield from batches.flush()
    bad.report()
    if records == 0:
        raise InputError(path, "no <Event> element in this tracerpt XML", 0)
    stats["records"] = stats.get("records", 0) + records
    if first_ns is not None:
        stats["trace_start_ns"] = first_ns
