"""The KMDF framework messages the synthesized driver logs: one table serves the IFR text dump,
the WPP records in the .etl and the TMF file that decodes them (forward-progress.md 8.2 texts).

KMDF's real message GUIDs live in Wdf01000.pdb and are not public, so each source file gets a
name-derived GUID (uuid5) and the TMF written beside the trace describes exactly these messages.
WPP packs arguments as etw-formats.md 1.8 says: pointers at the pointer size of the message
(TRACE_MESSAGE_POINTER64 here), ItemNTSTATUS/ItemIRPMJ/ItemULong 4 bytes, ItemULongLong 8,
ItemString NUL-terminated ANSI.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

from fpreplay.outputs import write_atomically
from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.wpp.symbols import format_irpmj, format_status

_NS = uuid.UUID("5d0c1bb0-8b5b-4d43-9a39-4b4d44465050")
# WPP's default options (sequence, message GUID, timestamp, thread/process) + 64-bit pointers.
OPTION_FLAGS = (L.TRACE_MESSAGE_SEQUENCE | L.TRACE_MESSAGE_GUID | L.TRACE_MESSAGE_TIMESTAMP
                | L.TRACE_MESSAGE_SYSTEMINFO | L.TRACE_MESSAGE_POINTER64)


@dataclass(frozen=True)
class Message:
    function: str
    source: str              # KMDF source file: one message GUID (and TMF) per file
    number: int
    fmt: str                 # TMF format, arguments numbered from 10
    items: tuple[str, ...]   # TMF item types, in argument order
    level: str
    flag: str

    @property
    def guid(self) -> uuid.UUID:
        return uuid.uuid5(_NS, self.source)


MESSAGES: dict[str, Message] = {
    "dispatch": Message("FxPkgIo::Dispatch", "fxpkgio.cpp", 10,
                        "WDFDEVICE 0x%10!p! !devobj 0x%11!p! %12!s!, IRP_MN %13!x!, IRP 0x%14!p!",
                        ("ItemPtr", "ItemPtr", "ItemIRPMJ", "ItemULong", "ItemPtr"),
                        "TRACE_LEVEL_VERBOSE", "TRACINGIO"),
    "could_not_create": Message("FxPkgIo::DispatchStep2", "fxpkgio.cpp", 11,
                                "Could not create WDFREQUEST, %10!s!", ("ItemNTSTATUS",),
                                "TRACE_LEVEL_ERROR", "TRACINGIO"),
    "alloc_failed": Message("FxRequest::_CreateForPackage", "fxrequest.cpp", 10,
                            "Memory allocation failed %10!s!", ("ItemNTSTATUS",),
                            "TRACE_LEVEL_ERROR", "TRACINGREQUEST"),
    "forward_fail": Message("FxIoQueue::GetReservedRequest", "fxioqueue.cpp", 10,
                            "Forward action on WDFQUEUE %10!p! says that framework should fail "
                            "the Irp %11!p!, %12!s!", ("ItemPtr", "ItemPtr", "ItemNTSTATUS"),
                            "TRACE_LEVEL_ERROR", "TRACINGIO"),
    "queuing": Message("FxIoQueue::QueueRequest", "fxioqueue.cpp", 11,
                       "Queuing WDFREQUEST 0x%10!p! on WDFQUEUE 0x%11!p!", ("ItemPtr", "ItemPtr"),
                       "TRACE_LEVEL_VERBOSE", "TRACINGIO"),
    "not_accepting": Message("FxIoQueue::QueueRequest", "fxioqueue.cpp", 12,
                             "WDFQUEUE 0x%10!p! is not accepting requests, state is %11!s!, "
                             "%12!s!completing WDFREQUEST 0x%13!p! %14!s!",
                             ("ItemPtr", "ItemString", "ItemString", "ItemPtr", "ItemNTSTATUS"),
                             "TRACE_LEVEL_VERBOSE", "TRACINGIO"),
    "cancelling": Message("FxIoQueue::QueuePurge", "fxioqueue.cpp", 13,
                          "Cancelling WDFREQUEST 0x%10!p!, WDFQUEUE 0x%11!p!",
                          ("ItemPtr", "ItemPtr"),
                          "TRACE_LEVEL_INFORMATION", "TRACINGIO"),
    "completing": Message("FxRequest::Complete", "fxrequest.cpp", 11,
                          "Completing WDFREQUEST 0x%10!p! for IRP 0x%11!p! with Information "
                          "0x%12!I64x!, %13!s!",
                          ("ItemPtr", "ItemPtr", "ItemULongLong", "ItemNTSTATUS"),
                          "TRACE_LEVEL_VERBOSE", "TRACINGREQUEST"),
}


def _text(item: str, value) -> str:
    if item == "ItemPtr":
        return f"{value:016X}"
    if item == "ItemNTSTATUS":      # %!STATUS! / %!IRPMJ! as tracefmt and the debugger print them
        return format_status(value)
    if item == "ItemIRPMJ":
        return format_irpmj(value)
    if item in ("ItemULong", "ItemULongLong"):
        return f"{value:x}"
    return str(value)


def render(key: str, args: tuple) -> str:
    """`Function - message` as a debugger prints the IFR record."""
    m = MESSAGES[key]
    text = m.fmt
    for n in range(len(m.items) - 1, -1, -1):   # %14 before %1x prefixes collide
        token = text[text.index(f"%{n + 10}!"):]
        token = token[:token.index("!", len(f"%{n + 10}!")) + 1]
        text = text.replace(token, _text(m.items[n], args[n]))
    return f"{m.function} - {text}"


def pack_args(key: str, args: tuple) -> bytes:
    out = b""
    for item, value in zip(MESSAGES[key].items, args):
        if item == "ItemPtr":
            out += struct.pack("<Q", value)
        elif item == "ItemULongLong":
            out += struct.pack("<Q", value)
        elif item == "ItemString":
            out += str(value).encode("ascii") + b"\0"
        else:
            out += struct.pack("<I", value)
    return out


def wpp_record(key: str, args: tuple, *, ts_raw: int, sequence: int, tid: int, pid: int) -> bytes:
    """One MESSAGE_TRACE_HEADER record (etw-formats.md 1.8) carrying a framework message."""
    m = MESSAGES[key]
    fields = L.MESSAGE_TRACE_FIELDS.build(
        dict(Sequence=sequence, MessageGuid=m.guid, ComponentId=None, TimeStamp=ts_raw,
             ThreadId=tid, ProcessId=pid), OptionFlags=OPTION_FLAGS)
    body = fields + pack_args(key, args)
    size = L.MESSAGE_TRACE_HEADER.sizeof() + len(body)
    head = L.MESSAGE_TRACE_HEADER.build(dict(Size=size, Reserved=0,
                                             MarkerFlags=L.MARKER_MESSAGE,
                                             MessageNumber=m.number, OptionFlags=OPTION_FLAGS))
    return head + body


def write_tmf_dir(directory: Path) -> list[Path]:
    """One `<message GUID>.tmf` per KMDF source file, in tracepdb's layout."""
    directory.mkdir(parents=True, exist_ok=True)
    by_source: dict[str, list[Message]] = {}
    for m in MESSAGES.values():
        by_source.setdefault(m.source, []).append(m)
    paths = []
    for source, msgs in sorted(by_source.items()):
        guid = msgs[0].guid
        lines = ["// PDB:  Wdf01000.pdb (messages of the fpreplay trace synthesizer)",
                 "// PDB:  Last Updated :2026-11-20:00:00:00:000 (UTC) [tracepdb]",
                 f"{guid} Wdf01000 // SRC={source} MJ= MN="]
        for m in sorted(msgs, key=lambda x: x.number):
            stem = source.replace(".", "_")
            lines.append(f'#typev {stem}{m.number} {m.number} "%0{m.fmt}" //   LEVEL={m.level} '
                         f"FLAGS={m.flag} FUNC={m.function}")
            lines.append("{")
            for n, item in enumerate(m.items):
                lines.append(f"arg{n + 10}, {item} -- {n + 10}")
            lines.append("}")
        path = directory / f"{guid}.tmf"
        text = "\n".join(lines) + "\n"
        write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline="\n"))
        paths.append(path)
    return paths
