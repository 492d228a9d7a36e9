"""The header kinds of ETW records, one object each, found by one table lookup on a record's
prefix (etw-formats.md section 1.8).

Every record starts with 8 bytes: word 0, the header type byte, the marker byte, words 2 and 3.
`KINDS[type | marker << 8]` is the record's `HeaderKind`: what it is called, the smallest size a
valid record of it can have, where its size, time, thread and process are, which registry holds
its decoders (`lookup`), how its `--all` row and its whole header (EtlRecord) read. `WALK` is the
same table as (kind, smallest size, lookup) tuples for the walk's hot loop.
The `struct` formats and offsets below are derived from the construct declarations in
layouts.py at import; none is written by hand.
"""

from __future__ import annotations

from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.providers import (
    HEADER_SENTINEL, KERNEL_UUIDS, kernel_event, kernel_provider,
)
from fpreplay.parsers.etl.record import EtlRecord

# --- hot-path structs, derived from layouts.py ---------------------------------------------------
PREFIX_WORDS = L.packed(L.RECORD_PREFIX)                        # word 1 is the KINDS key
SYSTEM = L.packed(L.SYSTEM_TRACE_HEADER, last="SystemTime")    # ... also COMPACT_TRACE_HEADER
PERFINFO = L.packed(L.PERFINFO_TRACE_HEADER)
CLASSIC = L.packed(L.EVENT_TRACE_HEADER, last="Guid")          # ... also the INSTANCE header
EVENT_HEADER = L.packed(L.EVENT_HEADER, last="Keyword")
TID_PID_TS = L.packed(L.EVENT_HEADER, "ThreadId", "TimeStamp")  # at +TID_PID_TS_AT
EXT_ITEM = L.packed(L.EXTENDED_ITEM_HEADER)
MESSAGE = L.packed(L.MESSAGE_TRACE_HEADER)
TS = L.packed(L.EVENT_HEADER, "TimeStamp", "TimeStamp")
THREAD_PROCESS = L.packed(L.SYSTEM_TRACE_HEADER, "ThreadId", "ProcessId")  # WPP SYSTEMINFO too

_EH = L.field_offsets(L.EVENT_HEADER)
TID_PID_TS_AT = _EH["ThreadId"]
MANIFEST_KEY = slice(_EH["ProviderId"], _EH["Version"])     # provider GUID + event id: registry key
EVENT_PROVIDER = slice(_EH["ProviderId"], _EH["ProviderId"] + 16)
EVENT_PAYLOAD_AT = L.EVENT_HEADER.sizeof()                  # extended items, then the payload
_ET = L.field_offsets(L.EVENT_TRACE_HEADER)
CLASSIC_GUID = slice(_ET["Guid"], _ET["Guid"] + 16)
CLASSIC_TYPE_AT = _ET["Type"]
_MT = L.MESSAGE_TRACE_HEADER.sizeof()


def kernel_header_length(fixed: int, version_word: int) -> int:
    """A kernel header's length: its fixed part, plus 8 bytes for a PEBS timestamp (0x8000) and 8
    per PMC counter (bits 8-10) of the Version word."""
    return fixed + 8 * (1 if version_word & 0x8000 else 0) + 8 * ((version_word >> 8) & 7)


def ext_items(data, start: int, end: int) -> tuple[list[tuple[int, bytes]], int]:
    """EVENT_HEADER extended items from `start`; returns (items, payload offset)."""
    items = []
    off = start
    while off + 8 <= end:
        item_size, ext_type, linkage, data_size = EXT_ITEM.unpack_from(data, off)
        if item_size < 8 or off + item_size > end:
            raise ValueError(f"extended item of size {item_size} at +{off - start:#x}")
        items.append((ext_type, bytes(data[off + 8: off + 8 + min(data_size, item_size - 8)])))
        off += item_size
        if not linkage & 1:
            break
    return items, off


def has_tl_schema(data, off: int, size: int) -> bool:
    """Whether an EVENT_HEADER record carries an EVENT_SCHEMA_TL item (TraceLogging).
    Runs for every record with extended items, so it only peeks at item headers."""
    p, end = off + EVENT_PAYLOAD_AT, off + size - 8
    while p <= end:
        item_size, ext_type, linkage, _ = EXT_ITEM.unpack_from(data, p)
        if ext_type == L.EXT_TYPE_EVENT_SCHEMA_TL:
            return True
        if not linkage & 1 or item_size < 8:
            return False
        p += item_size
    return False


def message_fields(data, off: int, size: int):
    """A WPP message's option fields in MESSAGE_TRACE_FIELDS order:
    (message number, option flags, guid bytes|None, ts|None, tid, pid, payload offset)."""
    _, _, _, number, oflags = MESSAGE.unpack_from(data, off)
    p = off + _MT
    guid = ts = tid = pid = None
    if oflags & L.TRACE_MESSAGE_SEQUENCE:
        p += 4
    if oflags & L.TRACE_MESSAGE_GUID:
        guid = bytes(data[p:p + 16])
        p += 16
    elif oflags & L.TRACE_MESSAGE_COMPONENTID:
        p += 4
    if oflags & L.TRACE_MESSAGE_TIMESTAMP:
        ts = TS.unpack_from(data, p)[0]
        p += TS.size
    if oflags & L.TRACE_MESSAGE_SYSTEMINFO:
        tid, pid = THREAD_PROCESS.unpack_from(data, p)
        p += THREAD_PROCESS.size
    if p > off + size:
        raise ValueError(f"WPP record of {size} bytes shorter than its option fields")
    return number, oflags, guid, ts, tid, pid, p


# --- the kinds -----------------------------------------------------------------------------------
# Which registry holds a kind's decoders, keyed by what (HeaderKind.lookup).
BY_HOOK, BY_PROVIDER, BY_CLASS, BY_MESSAGE = "HookId", "provider+id", "class+type", "message"
NO_MARKER = "no marker"         # no registry; sized by `size()`, not by word 0
SKIPPED = "skipped"             # a kind writers do write that carries nothing to decode


class HeaderKind:
    """A record kind without a header of its own (ERROR, TIMED, WNODE and unknown types under
    the 0xC0 marker; ULONG32_TIME): 8 bytes at least, size in word 0, untimed, never decoded.

    `row` gives the `--all` columns (ts, pid, tid, provider, event id, opcode, version, event
    name) and the decoder the registry holds for the record; `record` the EtlRecord a decoder
    reads. `ts_at`/`tid_at`/`pid_at` are offsets from the record's start (None: not there)."""

    lookup: str | None = None   # BY_*: which registry holds the kind's decoders
    ts_at: int | None = None
    tid_at: int | None = None
    pid_at: int | None = None

    def __init__(self, name: str, min_size: int = 8, htype: int = 0, pointer_size: int = 8):
        self.name = name
        self.min_size = min_size
        self.htype = htype
        self.pointer_size = pointer_size

    def size(self, w0: int, w2: int, type_marker: int) -> int | None:
        """The record's size from its prefix words; None where a buffer's data ends."""
        return w0

    def row(self, data, off: int, size: int, reg, diag) -> tuple:
        """(ts, pid, tid, provider, event id, opcode, version, event name, decoder)."""
        return (None, None, None, None, None, None, None, None, None)

    def record(self, walker, data, off: int, size: int, cpu: int,
               file_offset: int) -> EtlRecord:
        raise ValueError(f"{self.name} records carry no header to decode")

    def _record(self, walker, data, off, size, hlen, *, ts, cpu, file_offset, **fields):
        if hlen > size:
            raise ValueError(f"record of {size} bytes is shorter than its {self.name} header")
        clock = walker.clock
        return EtlRecord(
            header_kind=self.name, header_type=self.htype, pointer_size=self.pointer_size,
            ts_raw=ts, ts_ns=clock.to_ns(ts) if clock else None, cpu=cpu,
            payload=bytes(data[off + hlen:off + size]), file_offset=file_offset, **fields)


class _Kernel(HeaderKind):
    """SYSTEM and COMPACT headers (thread and process in the header): size in word 2, HookId
    (group << 8 | opcode) in word 3."""

    lookup = BY_HOOK                # size in word 2, HookId in word 3

    def __init__(self, name, layout, htype, pointer_size):
        super().__init__(name, layout.sizeof(), htype, pointer_size)
        at = L.field_offsets(layout)
        self.ts_at = at["SystemTime"]
        self.tid_at, self.pid_at = at.get("ThreadId"), at.get("ProcessId")

    def size(self, w0, w2, type_marker):
        return w2

    def _fields(self, data, off):
        version, _, _, _, hook, tid, pid, ts = SYSTEM.unpack_from(data, off)
        return version, hook, tid, pid, ts

    def row(self, data, off, size, reg, diag):
        version, _, _, _, hook, tid, pid, ts = SYSTEM.unpack_from(data, off)
        provider, name = kernel_event(hook)
        return (ts, pid, tid, provider, None, hook & 0xFF, version & 0xFF, name,
                reg.kernel.get(hook))

    def record(self, walker, data, off, size, cpu, file_offset):
        version, hook, tid, pid, ts = self._fields(data, off)
        return self._record(
            walker, data, off, size, kernel_header_length(self.min_size, version), ts=ts,
            cpu=cpu, file_offset=file_offset, pid=pid, tid=tid,
            provider=KERNEL_UUIDS.get(kernel_provider(hook)), group=hook >> 8,
            opcode=hook & 0xFF, event_id=None, version=version & 0xFF, level=None, task=None,
            keyword=None, flags=0, ext=None)


class _PerfInfo(_Kernel):
    """PERFINFO headers: a kernel header without thread or process."""

    def _fields(self, data, off):
        version, _, _, _, hook, ts = PERFINFO.unpack_from(data, off)
        return version, hook, None, None, ts

    def row(self, data, off, size, reg, diag):
        version, _, _, _, hook, ts = PERFINFO.unpack_from(data, off)
        provider, name = kernel_event(hook)
        return (ts, None, None, provider, None, hook & 0xFF, version & 0xFF, name,
                reg.kernel.get(hook))


class _EventHeader(HeaderKind):
    """EVENT_HEADER (manifest and TraceLogging providers): extended items may precede the
    payload; the registry key is the provider GUID and event id, else TraceLogging."""

    lookup = BY_PROVIDER

    def __init__(self, htype, pointer_size):
        super().__init__("event_header", L.EVENT_HEADER.sizeof(), htype, pointer_size)
        self.ts_at, self.tid_at, self.pid_at = _EH["TimeStamp"], _EH["ThreadId"], _EH["ProcessId"]

    def row(self, data, off, size, reg, diag):
        (_, _, _, flags, _, tid, pid, ts, g, event_id, version, _, _, opcode, _,
         _) = EVENT_HEADER.unpack_from(data, off)
        prov = reg.guid(g)
        dec = reg.manifest.get(data[off + MANIFEST_KEY.start:off + MANIFEST_KEY.stop])
        if dec is None and reg.tracelogging is not None \
                and flags & L.EVENT_HEADER_FLAG_EXTENDED_INFO and has_tl_schema(data, off, size):
            dec = reg.tracelogging
        return ts, pid, tid, prov, event_id, opcode, version, f"{prov}/{event_id}", dec

    def record(self, walker, data, off, size, cpu, file_offset):
        (_, _, _, flags, _, tid, pid, ts, g, event_id, version, _, level, opcode, task,
         keyword) = EVENT_HEADER.unpack_from(data, off)
        hlen, ext = self.min_size, None
        if flags & L.EVENT_HEADER_FLAG_EXTENDED_INFO:
            ext, payload_start = ext_items(data, off + hlen, off + size)
            hlen = payload_start - off
        return self._record(
            walker, data, off, size, hlen, ts=ts, cpu=cpu, file_offset=file_offset, pid=pid,
            tid=tid, provider=walker.reg.uuid(g), group=None, opcode=opcode, event_id=event_id,
            version=version, level=level, task=task, keyword=keyword, flags=flags, ext=ext)


class _Classic(HeaderKind):
    """EVENT_TRACE_HEADER and EVENT_INSTANCE_GUID_HEADER (MOF providers): the registry key is
    the event class GUID and the Type (opcode)."""

    lookup = BY_CLASS

    def __init__(self, name, layout, htype, pointer_size):
        super().__init__(name, layout.sizeof(), htype, pointer_size)
        self.ts_at, self.tid_at, self.pid_at = _ET["TimeStamp"], _ET["ThreadId"], _ET["ProcessId"]

    def row(self, data, off, size, reg, diag):
        _, _, _, typ, _, version, tid, pid, ts, g = CLASSIC.unpack_from(data, off)
        prov = reg.guid(g)
        return (ts, pid, tid, prov, None, typ, version & 0xFF, f"{prov}/{typ}",
                reg.classic.get((g, typ)))

    def record(self, walker, data, off, size, cpu, file_offset):
        _, _, _, opcode, level, version, tid, pid, ts, g = CLASSIC.unpack_from(data, off)
        return self._record(
            walker, data, off, size, self.min_size, ts=ts, cpu=cpu, file_offset=file_offset,
            pid=pid, tid=tid, provider=walker.reg.uuid(g), group=None, opcode=opcode,
            event_id=None, version=version & 0xFF, level=level, task=None, keyword=None,
            flags=0, ext=None)


class _Message(HeaderKind):
    """WPP / TraceMessage (marker 0x90): optional fields by OptionFlags; a message without a
    timestamp takes the time of the record before it."""

    lookup = BY_MESSAGE

    def __init__(self):
        super().__init__("wpp", 8, 0x90)

    def row(self, data, off, size, reg, diag):
        try:
            number, _, guid, ts, tid, pid, _ = message_fields(data, off, size)
        except ValueError:     # option fields past the record: keep the record
            diag.count("etl_undecodable_records")
            number = guid = ts = tid = pid = None
        prov = reg.guid(guid) if guid else None
        return ts, pid, tid, prov, number, None, None, f"WPP/{prov}/{number}", reg.wpp

    def record(self, walker, data, off, size, cpu, file_offset):
        number, oflags, guid, ts, tid, pid, p = message_fields(data, off, size)
        if ts is None:
            ts = walker.last_ts
            walker.diag.count("etl_wpp_untimed")
        clock = walker.clock
        return EtlRecord(
            header_kind="wpp", header_type=0x90,
            pointer_size=8 if oflags & L.TRACE_MESSAGE_POINTER64 else 4, ts_raw=ts,
            ts_ns=clock.to_ns(ts) if clock else None, cpu=cpu, pid=pid,
            tid=tid, provider=walker.reg.uuid(guid) if guid else None, group=None, opcode=0,
            event_id=number, version=0, level=None, task=None, keyword=None, flags=oflags,
            ext=None, payload=bytes(data[p:off + size]), file_offset=file_offset)


class _Raw(HeaderKind):
    """No ETW marker: a raw WNODE_HEADER (u32 BufferSize at +0), or the fill after a buffer's
    last record (0xFF or zero bytes), or damage (an unknown marker)."""

    lookup = NO_MARKER

    def size(self, w0, w2, type_marker):
        m = w0 | type_marker << 16
        if m == 0xFFFFFFFF or m == 0:
            return None                            # unused tail: the buffer's data ends here
        if type_marker & 0x8000 == 0:
            return m
        return 0                                   # unknown marker: damage


def _table() -> list[HeaderKind]:
    raw = _Raw("wnode")
    kinds: list[HeaderKind] = [raw] * 0x10000
    c0 = L.MARKER_TRACE_HEADER << 8
    other, message, ulong32 = HeaderKind("other"), _Message(), HeaderKind("ulong32_time")
    for htype in range(256):                   # WPP and ULONG32_TIME: byte 2 is no header type
        kinds[c0 | htype] = other
        kinds[(L.MARKER_MESSAGE << 8) | htype] = message
        kinds[(L.MARKER_ULONG32_TIME << 8) | htype] = ulong32
    # ERROR: ETW's record of an event it could not log (etw-formats.md): skipped, not damage.
    error = HeaderKind("error")
    error.lookup = SKIPPED
    kinds[c0 | L.HT_ERROR] = error
    for htype, (name, _, psize) in L.HEADER_TYPES.items():
        if name in ("system", "compact"):
            layout = L.SYSTEM_TRACE_HEADER if name == "system" else L.COMPACT_TRACE_HEADER
            kind = _Kernel(name, layout, htype, psize)
        elif name == "perfinfo":
            kind = _PerfInfo(name, L.PERFINFO_TRACE_HEADER, htype, psize)
        elif name == "event_header":
            kind = _EventHeader(htype, psize)
        else:
            layout = L.EVENT_TRACE_HEADER if name == "event_trace" \
                else L.EVENT_INSTANCE_GUID_HEADER
            kind = _Classic(name, layout, htype, psize)
        assert kind.min_size == L.HEADER_TYPES[htype][1]
        kinds[c0 | htype] = kind
    return kinds


KINDS = _table()
# The walks' view of KINDS: (kind, smallest size, lookup) as plain tuples, which the hot loop
# unpacks faster than it reads attributes of objects of six classes.
WALK = [(kind, kind.min_size, kind.lookup) for kind in KINDS]


def record_ts(data, off: int) -> int | None:
    """The raw timestamp of the record at `off` (None for untimed kinds)."""
    if off + 8 > len(data):
        return None
    at = KINDS[PREFIX_WORDS.unpack_from(data, off)[1]].ts_at
    if at is None or off + at + 8 > len(data):
        return None
    return TS.unpack_from(data, off + at)[0]


__all__ = ["KINDS", "WALK", "HEADER_SENTINEL", "HeaderKind", "record_ts",
           "message_fields", "has_tl_schema", "ext_items", "kernel_header_length"]
