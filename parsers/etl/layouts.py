"""Byte layouts of the .etl container and of every ETW record header, declared once with construct.

One declaration per layout serves both directions: the reader's hot path reads them through
`struct` formats and offsets derived from these at import (`packed`, `offset_of`), the trace
synthesizer builds records with `.build()`. Offsets
and meanings are in ../shared/design/etw-formats.md sections 1.2, 1.6 and 1.8. All little-endian.

Pointer-width-dependent layouts come in pairs (…32 / …64) and through a function taking the
pointer size, so callers never spell offsets themselves.
"""

from __future__ import annotations

import struct
import uuid

from construct import (
    Adapter, Bytes, CString, FormatField, If, Int8ul, Int16ul, Int32sl, Int32ul, Int64sl,
    Int64ul, Padding, Renamed, Struct, this,
)


class _GuidAdapter(Adapter):
    """16 bytes in Windows mixed-endian order (Data1..3 little-endian) <-> uuid.UUID."""

    def _decode(self, obj, context, path):
        return uuid.UUID(bytes_le=bytes(obj))

    def _encode(self, obj, context, path):
        return (obj if isinstance(obj, uuid.UUID) else uuid.UUID(str(obj))).bytes_le


GUID = _GuidAdapter(Bytes(16))

# --- the marker: byte @+3 of every record ---------------------------------------------------------
MARKER_TRACE_HEADER = 0xC0      # TRACE_HEADER_FLAG | TRACE_HEADER_EVENT_TRACE: byte @+2 = type
MARKER_MESSAGE = 0x90           # TRACE_HEADER_FLAG | TRACE_MESSAGE: WPP / TraceMessage
MARKER_ULONG32_TIME = 0xB0      # obsolete compact form: skipped by its low-word size

# Header types (byte @+2 when the marker is 0xC0) and the pointer size of their payload.
HT_SYSTEM32, HT_SYSTEM64 = 0x01, 0x02
HT_COMPACT32, HT_COMPACT64 = 0x03, 0x04
HT_PERFINFO32, HT_PERFINFO64 = 0x10, 0x11
HT_FULL32, HT_FULL64 = 0x0A, 0x14            # EVENT_TRACE_HEADER (classic / MOF)
HT_INSTANCE32, HT_INSTANCE64 = 0x0B, 0x15    # EVENT_INSTANCE_GUID_HEADER
HT_EVENT_HEADER32, HT_EVENT_HEADER64 = 0x12, 0x13
HT_ERROR, HT_TIMED, HT_WNODE = 0x0D, 0x0C, 0x0E

# --- the 8 bytes every record starts with, as the walk reads them ---------------------------------
RECORD_PREFIX = Struct(
    "Word0" / Int16ul,             # size (0xC0 non-kernel headers, WPP) or Version (kernel)
    "TypeMarker" / Int16ul,        # header type | marker << 8: which header kind this is
    "Word2" / Int16ul,             # size (kernel headers) or Flags (EVENT_HEADER)
    "Word3" / Int16ul,             # HookId (kernel headers)
)

# --- WMI_BUFFER_HEADER (0x48 bytes, same for 32- and 64-bit writers) ------------------------------
BUFFER_HEADER_SIZE = 0x48
BUFFER_FLAG_FLUSH_MARKER = 0x0001
BUFFER_FLAG_EVENTS_LOST = 0x0002
BUFFER_FLAG_BUFFER_LOST = 0x0004
BUFFER_FLAG_PROC_INDEX = 0x0020
BUFFER_FLAG_COMPRESSED = 0x0040
BUFFER_TYPE_HEADER = 4

WMI_BUFFER_HEADER = Struct(
    "BufferSize" / Int32ul,        # bytes this buffer occupies in the file: advance by this
    "SavedOffset" / Int32ul,
    "CurrentOffset" / Int32ul,
    "ReferenceCount" / Int32ul,
    "TimeStamp" / Int64sl,         # flush time; not the event clock in relogged files
    "SequenceNumber" / Int64sl,
    "ClockTypeFrequency" / Int64ul,
    # ETW_BUFFER_CONTEXT: with BUFFER_FLAG_PROC_INDEX the first two bytes are one u16 index & 0x7FF
    "ProcessorNumber" / Int8ul,
    "Alignment" / Int8ul,
    "LoggerId" / Int16ul,
    "State" / Int32ul,
    "FilledBytes" / Int32ul,       # valid bytes incl. this header (uncompressed size if compressed)
    "BufferFlag" / Int16ul,
    "BufferType" / Int16ul,
    "Padding" / Bytes(16),
)

# --- record headers -------------------------------------------------------------------------------
SYSTEM_TRACE_HEADER = Struct(
    "Version" / Int16ul,           # low byte = event version; 0x8000 PEBS, 0x0700 PMC count
    "HeaderType" / Int8ul,
    "MarkerFlags" / Int8ul,        # 0xC0
    "Size" / Int16ul,              # whole record incl. header, excl. alignment padding
    "HookId" / Int16ul,            # (group << 8) | opcode
    "ThreadId" / Int32ul,
    "ProcessId" / Int32ul,
    "SystemTime" / Int64sl,
    "KernelTime" / Int32ul,
    "UserTime" / Int32ul,
)

COMPACT_TRACE_HEADER = Struct(
    "Version" / Int16ul,
    "HeaderType" / Int8ul,
    "MarkerFlags" / Int8ul,
    "Size" / Int16ul,
    "HookId" / Int16ul,
    "ThreadId" / Int32ul,
    "ProcessId" / Int32ul,
    "SystemTime" / Int64sl,
)

PERFINFO_TRACE_HEADER = Struct(
    "Version" / Int16ul,
    "HeaderType" / Int8ul,
    "MarkerFlags" / Int8ul,
    "Size" / Int16ul,
    "HookId" / Int16ul,
    "SystemTime" / Int64sl,        # no thread or process: they live in the payload if anywhere
)

EVENT_TRACE_HEADER = Struct(
    "Size" / Int16ul,
    "HeaderType" / Int8ul,         # 0x0A / 0x14
    "MarkerFlags" / Int8ul,
    "Type" / Int8ul,               # the opcode
    "Level" / Int8ul,
    "Version" / Int16ul,
    "ThreadId" / Int32ul,
    "ProcessId" / Int32ul,
    "TimeStamp" / Int64sl,
    "Guid" / GUID,                 # event class GUID
    "KernelTime" / Int32ul,
    "UserTime" / Int32ul,
)

EVENT_INSTANCE_GUID_HEADER = Struct(
    "Size" / Int16ul,
    "HeaderType" / Int8ul,         # 0x0B / 0x15
    "MarkerFlags" / Int8ul,
    "Type" / Int8ul,
    "Level" / Int8ul,
    "Version" / Int16ul,
    "ThreadId" / Int32ul,
    "ProcessId" / Int32ul,
    "TimeStamp" / Int64sl,
    "Guid" / GUID,
    "KernelTime" / Int32ul,
    "UserTime" / Int32ul,
    "InstanceId" / Int32ul,
    "ParentInstanceId" / Int32ul,
    "ParentGuid" / GUID,
)

EVENT_HEADER_FLAG_EXTENDED_INFO = 0x0001
EVENT_HEADER_FLAG_STRING_ONLY = 0x0004

EVENT_HEADER = Struct(
    "Size" / Int16ul,              # includes extended items and payload
    "HeaderType" / Int8ul,         # 0x12 / 0x13
    "MarkerFlags" / Int8ul,
    "Flags" / Int16ul,             # 0x0001 = extended data items follow the header
    "EventProperty" / Int16ul,
    "ThreadId" / Int32ul,
    "ProcessId" / Int32ul,
    "TimeStamp" / Int64sl,
    "ProviderId" / GUID,
    "Id" / Int16ul,                # EVENT_DESCRIPTOR
    "Version" / Int8ul,
    "Channel" / Int8ul,
    "Level" / Int8ul,
    "Opcode" / Int8ul,
    "Task" / Int16ul,
    "Keyword" / Int64ul,
    "KernelTime" / Int32ul,
    "UserTime" / Int32ul,
    "ActivityId" / GUID,
)

# header type -> (header kind, fixed header length, payload pointer size); the lengths are the
# declarations' own sizes.
HEADER_TYPES: dict[int, tuple[str, int, int]] = {
    ht: (kind, layout.sizeof(), psize)
    for kind, layout, pair in (
        ("system", SYSTEM_TRACE_HEADER, (HT_SYSTEM32, HT_SYSTEM64)),
        ("compact", COMPACT_TRACE_HEADER, (HT_COMPACT32, HT_COMPACT64)),
        ("perfinfo", PERFINFO_TRACE_HEADER, (HT_PERFINFO32, HT_PERFINFO64)),
        ("event_trace", EVENT_TRACE_HEADER, (HT_FULL32, HT_FULL64)),
        ("instance", EVENT_INSTANCE_GUID_HEADER, (HT_INSTANCE32, HT_INSTANCE64)),
        ("event_header", EVENT_HEADER, (HT_EVENT_HEADER32, HT_EVENT_HEADER64)))
    for ht, psize in zip(pair, (4, 8))
}

EXT_TYPE_RELATED_ACTIVITYID = 1
EXT_TYPE_STACK_TRACE32 = 5
EXT_TYPE_STACK_TRACE64 = 6
EXT_TYPE_EVENT_SCHEMA_TL = 11
EXT_TYPE_PROV_TRAITS = 12

EXTENDED_ITEM_HEADER = Struct(
    "ItemSize" / Int16ul,          # incl. this 8-byte header, 8-aligned
    "ExtType" / Int16ul,
    "Linkage" / Int16ul,           # bit 0 set: another item follows
    "DataSize" / Int16ul,
)

# WPP / TraceMessage. The optional fields follow in this order when their OptionFlags bit is set.
TRACE_MESSAGE_SEQUENCE = 0x0001
TRACE_MESSAGE_GUID = 0x0002
TRACE_MESSAGE_COMPONENTID = 0x0004
TRACE_MESSAGE_TIMESTAMP = 0x0008
TRACE_MESSAGE_PERFORMANCE_TIMESTAMP = 0x0010
TRACE_MESSAGE_SYSTEMINFO = 0x0020
TRACE_MESSAGE_POINTER32 = 0x0040
TRACE_MESSAGE_POINTER64 = 0x0080

MESSAGE_TRACE_HEADER = Struct(
    "Size" / Int16ul,
    "Reserved" / Int8ul,
    "MarkerFlags" / Int8ul,        # 0x90
    "MessageNumber" / Int16ul,
    "OptionFlags" / Int16ul,
)

MESSAGE_TRACE_FIELDS = Struct(
    # The optional part after MESSAGE_TRACE_HEADER; parse/build with OptionFlags in the context:
    # MESSAGE_TRACE_FIELDS.parse(data, OptionFlags=flags).
    "Sequence" / If(this._.OptionFlags & TRACE_MESSAGE_SEQUENCE, Int32ul),
    "MessageGuid" / If(this._.OptionFlags & TRACE_MESSAGE_GUID, GUID),
    "ComponentId" / If(lambda ctx: ctx._.OptionFlags
                       & (TRACE_MESSAGE_GUID | TRACE_MESSAGE_COMPONENTID)
                       == TRACE_MESSAGE_COMPONENTID, Int32ul),
    "TimeStamp" / If(this._.OptionFlags & TRACE_MESSAGE_TIMESTAMP, Int64sl),
    "ThreadId" / If(this._.OptionFlags & TRACE_MESSAGE_SYSTEMINFO, Int32ul),
    "ProcessId" / If(this._.OptionFlags & TRACE_MESSAGE_SYSTEMINFO, Int32ul),
)

# --- TRACE_LOGFILE_HEADER: payload of the first record, EventTrace/Header ------------------------
CLOCK_RAW, CLOCK_QPC, CLOCK_SYSTEM_TIME, CLOCK_CPU_CYCLES = 0, 1, 2, 3
EVENT_TRACE_FILE_MODE_CIRCULAR = 0x00000002
EVENT_TRACE_COMPRESSED_MODE = 0x04000000
EVENTTRACE_GROUP = 0x00                     # HookId group of EventTrace/Header (opcode 0)
EVENTTRACE_GUID = uuid.UUID("68fdd900-4a3e-11d1-84f4-0000f80464e3")

SYSTEMTIME = Struct(
    "Year" / Int16ul, "Month" / Int16ul, "DayOfWeek" / Int16ul, "Day" / Int16ul,
    "Hour" / Int16ul, "Minute" / Int16ul, "Second" / Int16ul, "Milliseconds" / Int16ul,
)

TIME_ZONE_INFORMATION = Struct(     # 172 bytes
    "Bias" / Int32sl,
    "StandardName" / Bytes(64),     # WCHAR[32]
    "StandardDate" / SYSTEMTIME,
    "StandardBias" / Int32sl,
    "DaylightName" / Bytes(64),
    "DaylightDate" / SYSTEMTIME,
    "DaylightBias" / Int32sl,
)


def _pointer(pointer_size: int):
    return Int64ul if pointer_size == 8 else Int32ul


def trace_logfile_header(pointer_size: int) -> Struct:
    """TRACE_LOGFILE_HEADER as written by a writer with `pointer_size`-byte pointers."""
    return Struct(
        "BufferSize" / Int32ul,
        "Version" / Int32ul,            # OS major, minor, log-format sub/subminor bytes
        "ProviderVersion" / Int32ul,    # OS build number
        "NumberOfProcessors" / Int32ul,
        "EndTime" / Int64sl,
        "TimerResolution" / Int32ul,
        "MaximumFileSize" / Int32ul,
        "LogFileMode" / Int32ul,
        "BuffersWritten" / Int32ul,
        "StartBuffers" / Int32ul,       # oldest buffer of a circular file
        "PointerSize" / Int32ul,
        "EventsLost" / Int32ul,
        "CpuSpeedInMHz" / Int32ul,
        "LoggerNamePtr" / _pointer(pointer_size),   # stale pointers: the strings follow below
        "LogFileNamePtr" / _pointer(pointer_size),
        "TimeZone" / TIME_ZONE_INFORMATION,
        Padding(4),                     # BootTime is 8-aligned
        "BootTime" / Int64sl,
        "PerfFreq" / Int64sl,
        "StartTime" / Int64sl,          # FILETIME of the header record's raw timestamp
        "ReservedFlags" / Int32ul,      # clock type: CLOCK_*
        "BuffersLost" / Int32ul,
    )


TRACE_LOGFILE_HEADER32 = trace_logfile_header(4)
TRACE_LOGFILE_HEADER64 = trace_logfile_header(8)


def trace_header_event(pointer_size: int) -> Struct:
    """The whole EventTrace/Header record: SYSTEM header (type 0x01/0x02), logfile header and the
    LoggerName / LogFileName strings. Build with header.Size = total length."""
    return Struct(
        "header" / SYSTEM_TRACE_HEADER,
        "logfile" / trace_logfile_header(pointer_size),
        "LoggerName" / CString("utf_16_le"),
        "LogFileName" / CString("utf_16_le"),
    )


TRACE_HEADER_EVENT32 = trace_header_event(4)
TRACE_HEADER_EVENT64 = trace_header_event(8)

# --- the same declarations as `struct` formats, for the reader's hot path ----------------------
def _code(sc) -> str:
    """The struct code of one fixed-size field: 'H', 'q', '16s' (GUID and byte strings)."""
    inner = sc.subcon if isinstance(sc, Renamed) else sc
    if isinstance(inner, FormatField):
        return inner.fmtstr[1:]
    return f"{inner.sizeof()}s"


def field_offsets(layout: Struct) -> dict[str, int]:
    """Field name -> byte offset of a fixed-size layout."""
    offsets, pos = {}, 0
    for sc in layout.subcons:
        if sc.name:
            offsets[sc.name] = pos
        pos += sc.sizeof()
    return offsets


def offset_of(layout: Struct, name: str) -> int:
    return field_offsets(layout)[name]


def packed(layout: Struct, first: str | None = None, last: str | None = None) -> struct.Struct:
    """A precompiled struct reading the fields `first`..`last` (default: all) of a fixed-size
    layout in declaration order; read it at offset_of(layout, first). Nothing after `last` is
    required (a record's prefix can sit at the very end of a buffer)."""
    names = [sc.name for sc in layout.subcons]
    lo = names.index(first) if first else 0
    hi = names.index(last) + 1 if last else len(names)
    return struct.Struct("<" + "".join(_code(sc) if sc.name else f"{sc.sizeof()}x"
                                       for sc in layout.subcons[lo:hi]))


__all__ = [name for name in dir() if name.isupper() or name in (
    "trace_logfile_header", "trace_header_event", "GUID", "packed", "offset_of",
    "field_offsets")]

# Sanity: the declared sizes are the documented ones (cheap, runs at import).
assert WMI_BUFFER_HEADER.sizeof() == BUFFER_HEADER_SIZE and RECORD_PREFIX.sizeof() == 8
assert SYSTEM_TRACE_HEADER.sizeof() == 0x20 and COMPACT_TRACE_HEADER.sizeof() == 0x18
assert PERFINFO_TRACE_HEADER.sizeof() == 0x10 and EVENT_TRACE_HEADER.sizeof() == 0x30
assert EVENT_INSTANCE_GUID_HEADER.sizeof() == 0x48 and EVENT_HEADER.sizeof() == 0x50
assert TRACE_LOGFILE_HEADER32.sizeof() == 0x110 and TRACE_LOGFILE_HEADER64.sizeof() == 0x118
