"""The reader's hot-path structs and header-kind table are derived from the construct layouts
(parsers/etl/layouts.py, also used by the synthesizer to write traces): records built with the
layouts read back field for field, each header kind has its documented size and field places."""

from __future__ import annotations

import itertools
import uuid

import pytest

from fpreplay.parsers.etl import headers as H
from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl import stream as S

G1 = uuid.UUID("3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c")
G2 = uuid.UUID("8a1d2c3b-0000-4000-8000-00000000f00d")


def test_packed_reads_a_field_range_from_its_own_offset():
    st = L.packed(L.EVENT_HEADER, "ThreadId", "TimeStamp")
    assert st.format == "<LLq" and L.offset_of(L.EVENT_HEADER, "ThreadId") == 8
    logfile = L.packed(L.TRACE_LOGFILE_HEADER64, "TimeZone", "BootTime")
    assert logfile.size == 172 + 4 + 8          # the unnamed alignment padding is skipped


def test_buffer_header_fields():
    raw = L.WMI_BUFFER_HEADER.build(dict(
        BufferSize=0x10000, SavedOffset=0x1234, CurrentOffset=9, ReferenceCount=1, TimeStamp=5,
        SequenceNumber=6, ClockTypeFrequency=7, ProcessorNumber=0x34, Alignment=0x02,
        LoggerId=0x1C, State=3, FilledBytes=0x2238, BufferFlag=0x61, BufferType=4,
        Padding=bytes(16)))
    assert S._BUFFER.unpack_from(raw, 0) == (0x10000, 0x1234, 9, 1, 5, 6, 7, 0x34, 0x02, 0x1C,
                                             3, 0x2238, 0x61, 4)
    assert S._BUFFER_SIZE.unpack_from(raw, 0) == (0x10000,)


def test_system_and_perfinfo_headers():
    raw = L.SYSTEM_TRACE_HEADER.build(dict(
        Version=0x0203, HeaderType=2, MarkerFlags=0xC0, Size=0x40, HookId=0x010C, ThreadId=44,
        ProcessId=4, SystemTime=123456789, KernelTime=1, UserTime=2))
    assert H.SYSTEM.unpack_from(raw, 0) == (0x0203, 2, 0xC0, 0x40, 0x010C, 44, 4, 123456789)
    w0, type_marker, w2, w3 = H.PREFIX_WORDS.unpack_from(raw, 0)
    assert (w0, type_marker, w2, w3) == (0x0203, 0xC002, 0x40, 0x010C)
    kind = H.KINDS[type_marker]
    assert (kind.name, kind.lookup, kind.size(w0, w2, type_marker)) == ("system", H.BY_HOOK, 0x40)
    assert (kind.tid_at, kind.pid_at, kind.ts_at) == (8, 12, 16)
    assert H.record_ts(raw, 0) == 123456789
    raw = L.PERFINFO_TRACE_HEADER.build(dict(Version=3, HeaderType=0x11, MarkerFlags=0xC0,
                                             Size=0x44, HookId=0x010A, SystemTime=-5))
    assert H.PERFINFO.unpack_from(raw, 0) == (3, 0x11, 0xC0, 0x44, 0x010A, -5)
    assert H.record_ts(raw, 0) == -5
    kind = H.KINDS[0xC011]
    assert (kind.name, kind.tid_at, kind.ts_at, kind.pointer_size) == ("perfinfo", None, 8, 8)


def test_event_header_and_classic_headers():
    raw = L.EVENT_HEADER.build(dict(
        Size=0x60, HeaderType=0x13, MarkerFlags=0xC0, Flags=1, EventProperty=8, ThreadId=10,
        ProcessId=11, TimeStamp=99, ProviderId=G1, Id=12, Version=1, Channel=16, Level=4,
        Opcode=0, Task=7, Keyword=0x8000, KernelTime=0, UserTime=0, ActivityId=G1))
    fields = H.EVENT_HEADER.unpack_from(raw, 0)
    assert fields == (0x60, 0x13, 0xC0, 1, 8, 10, 11, 99, G1.bytes_le, 12, 1, 16, 4, 0, 7,
                      0x8000)
    assert raw[H.MANIFEST_KEY] == G1.bytes_le + b"\x0c\x00"      # the manifest registry key
    assert raw[H.EVENT_PROVIDER] == G1.bytes_le
    assert H.TID_PID_TS.unpack_from(raw, H.TID_PID_TS_AT) == (10, 11, 99)
    assert H.record_ts(raw, 0) == 99
    raw = L.EVENT_INSTANCE_GUID_HEADER.build(dict(
        Size=0x48, HeaderType=0x15, MarkerFlags=0xC0, Type=0x24, Level=2, Version=0x0102,
        ThreadId=1, ProcessId=2, TimeStamp=3, Guid=G1, KernelTime=0, UserTime=0, InstanceId=1,
        ParentInstanceId=0, ParentGuid=G1))
    assert H.CLASSIC.unpack_from(raw, 0) == (0x48, 0x15, 0xC0, 0x24, 2, 0x0102, 1, 2, 3,
                                             G1.bytes_le)
    assert (raw[H.CLASSIC_GUID], raw[H.CLASSIC_TYPE_AT]) == (G1.bytes_le, 0x24)


def test_every_header_type_has_its_documented_size():
    """etw-formats.md 1.8: the fixed header lengths, the walk's smallest valid record."""
    documented = {0x01: 0x20, 0x02: 0x20, 0x03: 0x18, 0x04: 0x18, 0x10: 0x10, 0x11: 0x10,
                  0x0A: 0x30, 0x14: 0x30, 0x0B: 0x48, 0x15: 0x48, 0x12: 0x50, 0x13: 0x50}
    for htype, size in documented.items():
        kind = H.KINDS[0xC000 | htype]
        assert kind.min_size == size and kind.htype == htype, hex(htype)
        assert kind.pointer_size == (4 if htype in (1, 3, 0x10, 0x0A, 0x0B, 0x12) else 8)
    assert {tm for tm, (_, _, lookup) in enumerate(H.WALK) if lookup is H.BY_HOOK} == \
        {0xC001, 0xC002, 0xC003, 0xC004, 0xC010, 0xC011}
    assert all(H.WALK[tm] == (k, k.min_size, k.lookup) for tm, k in enumerate(H.KINDS))
    for type_marker in (0xC00C, 0xC00E, 0xC0FF):                  # TIMED, WNODE, unknown
        assert (H.KINDS[type_marker].name, H.KINDS[type_marker].min_size) == ("other", 8)
    error = H.KINDS[0xC00D]                    # ERROR: written by ETW, skipped as known
    assert (error.name, error.min_size, error.lookup) == ("error", 8, H.SKIPPED)
    assert H.KINDS[0x9000].name == H.KINDS[0x90FF].name == "wpp"
    assert H.KINDS[0xB012].name == "ulong32_time"


def test_records_without_a_marker():
    """A raw WNODE_HEADER is sized by its u32 at +0; 0xFF or zero fill ends the buffer's data;
    an unknown marker byte is damage (size 0, below any minimum)."""
    raw = H.KINDS[0x0000]
    assert raw.size(0x0040, 0, 0x0000) == 0x40 and raw.size(0, 0, 0) is None
    assert raw.size(0xFFFF, 0, 0xFFFF) is None and raw.size(0x10, 0, 0xA000) == 0


@pytest.mark.parametrize("flags", [sum(c) for n in range(6) for c in itertools.combinations(
    (L.TRACE_MESSAGE_SEQUENCE, L.TRACE_MESSAGE_GUID, L.TRACE_MESSAGE_COMPONENTID,
     L.TRACE_MESSAGE_TIMESTAMP, L.TRACE_MESSAGE_SYSTEMINFO), n)])
def test_message_fields_follow_the_declared_option_order(flags):
    head = L.MESSAGE_TRACE_HEADER.build(dict(Size=0, Reserved=0, MarkerFlags=0x90,
                                             MessageNumber=10, OptionFlags=flags))
    opts = L.MESSAGE_TRACE_FIELDS.build(
        dict(Sequence=7, MessageGuid=G2, ComponentId=3, TimeStamp=-99, ThreadId=5, ProcessId=6),
        OptionFlags=flags)
    record = head + opts + b"ARGS"
    number, oflags, guid, ts, tid, pid, p = H.message_fields(record, 0, len(record))
    assert (number, oflags) == (10, flags) and record[p:] == b"ARGS"
    assert guid == (G2.bytes_le if flags & L.TRACE_MESSAGE_GUID else None)
    assert ts == (-99 if flags & L.TRACE_MESSAGE_TIMESTAMP else None)
    assert (tid, pid) == ((5, 6) if flags & L.TRACE_MESSAGE_SYSTEMINFO else (None, None))
    if len(opts):              # a record size that ends inside the option fields
        with pytest.raises(ValueError):
            H.message_fields(record + bytes(32), 0, len(head) + len(opts) - 1)


def test_extended_item_and_message_headers():
    item = L.EXTENDED_ITEM_HEADER.build(dict(ItemSize=0x38, ExtType=11, Linkage=0, DataSize=0x2B))
    assert H.EXT_ITEM.unpack_from(item, 0) == (0x38, 11, 0, 0x2B)
    msg = L.MESSAGE_TRACE_HEADER.build(dict(Size=0x30, Reserved=0, MarkerFlags=0x90,
                                            MessageNumber=10, OptionFlags=0x2B))
    assert H.MESSAGE.unpack_from(msg, 0) == (0x30, 0, 0x90, 10, 0x2B)


def test_logfile_header_offsets_match_the_reference():
    """etw-formats.md 1.6: BootTime, PerfFreq, StartTime, ReservedFlags from 0xF0 (32-bit
    writer) / 0xF8 (64-bit writer)."""
    for layout, boot in ((L.TRACE_LOGFILE_HEADER32, 0xF0), (L.TRACE_LOGFILE_HEADER64, 0xF8)):
        offsets = L.field_offsets(layout)
        assert offsets["BootTime"] == boot and offsets["PerfFreq"] == boot + 8
        assert offsets["StartTime"] == boot + 16 and offsets["ReservedFlags"] == boot + 24
        assert offsets["PointerSize"] == 0x2C and offsets["CpuSpeedInMHz"] == 0x34
        assert "BuffersLost" in offsets
