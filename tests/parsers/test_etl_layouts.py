"""The reader's precompiled hot-path structs read exactly the fields that the construct layouts
(parsers/etl/layouts.py, also used by the synthesizer to write traces) declare."""

from __future__ import annotations

import uuid

from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl import reader as R

G1 = uuid.UUID("3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c")


def test_buffer_header_fields():
    raw = L.WMI_BUFFER_HEADER.build(dict(
        BufferSize=0x10000, SavedOffset=0x1234, CurrentOffset=9, ReferenceCount=1, TimeStamp=5,
        SequenceNumber=6, ClockTypeFrequency=7, ProcessorNumber=0x34, Alignment=0x02,
        LoggerId=0x1C, State=3, FilledBytes=0x2238, BufferFlag=0x61, BufferType=4,
        Padding=bytes(16)))
    size, saved, cpu_lo, cpu_hi, logger, state, filled, flag, btype = \
        R._BUFFER.unpack_from(raw, 0)
    assert (size, saved, cpu_lo, cpu_hi, logger, state, filled, flag, btype) == \
        (0x10000, 0x1234, 0x34, 0x02, 0x1C, 3, 0x2238, 0x61, 4)


def test_system_and_perfinfo_headers():
    raw = L.SYSTEM_TRACE_HEADER.build(dict(
        Version=0x0203, HeaderType=2, MarkerFlags=0xC0, Size=0x40, HookId=0x010C, ThreadId=44,
        ProcessId=4, SystemTime=123456789, KernelTime=1, UserTime=2))
    assert R._SYSTEM.unpack_from(raw, 0) == (0x0203, 2, 0xC0, 0x40, 0x010C, 44, 4, 123456789)
    assert R._PREFIX.unpack_from(raw, 0) == (0x0203, 2, 0xC0, 0x40, 0x010C)
    raw = L.PERFINFO_TRACE_HEADER.build(dict(Version=3, HeaderType=0x11, MarkerFlags=0xC0,
                                             Size=0x44, HookId=0x010A, SystemTime=-5))
    assert R._PERFINFO.unpack_from(raw, 0) == (3, 0x11, 0xC0, 0x44, 0x010A, -5)
    assert R._record_ts(raw, 0) == -5


def test_event_header_and_classic_headers():
    raw = L.EVENT_HEADER.build(dict(
        Size=0x60, HeaderType=0x13, MarkerFlags=0xC0, Flags=1, EventProperty=8, ThreadId=10,
        ProcessId=11, TimeStamp=99, ProviderId=G1, Id=12, Version=1, Channel=16, Level=4,
        Opcode=0, Task=7, Keyword=0x8000, KernelTime=0, UserTime=0, ActivityId=G1))
    fields = R._EVENT_HEADER.unpack_from(raw, 0)
    assert fields == (0x60, 0x13, 0xC0, 1, 8, 10, 11, 99, G1.bytes_le, 12, 1, 16, 4, 0, 7,
                      0x8000)
    assert raw[0x18:0x2A] == G1.bytes_le + b"\x0c\x00"      # the manifest registry key
    raw = L.EVENT_INSTANCE_GUID_HEADER.build(dict(
        Size=0x48, HeaderType=0x15, MarkerFlags=0xC0, Type=0x24, Level=2, Version=0x0102,
        ThreadId=1, ProcessId=2, TimeStamp=3, Guid=G1, KernelTime=0, UserTime=0, InstanceId=1,
        ParentInstanceId=0, ParentGuid=G1))
    assert R._CLASSIC.unpack_from(raw, 0) == (0x48, 0x15, 0xC0, 0x24, 2, 0x0102, 1, 2, 3,
                                              G1.bytes_le)


def test_extended_item_and_message_headers():
    item = L.EXTENDED_ITEM_HEADER.build(dict(ItemSize=0x38, ExtType=11, Linkage=0, DataSize=0x2B))
    assert R._EXT_ITEM.unpack_from(item, 0) == (0x38, 11, 0, 0x2B)
    msg = L.MESSAGE_TRACE_HEADER.build(dict(Size=0x30, Reserved=0, MarkerFlags=0x90,
                                            MessageNumber=10, OptionFlags=0x2B))
    assert R._MESSAGE.unpack_from(msg, 0) == (0x30, 0, 0x90, 10, 0x2B)


def test_logfile_header_offsets_match_the_reference():
    """etw-formats.md 1.6: BootTime, PerfFreq, StartTime, ReservedFlags from 0xF0 (32-bit
    writer) / 0xF8 (64-bit writer)."""
    for layout, boot in ((L.TRACE_LOGFILE_HEADER32, 0xF0), (L.TRACE_LOGFILE_HEADER64, 0xF8)):
        names = [sc.name for sc in layout.subcons]
        offsets, off = {}, 0
        for sc in layout.subcons:
            offsets[sc.name] = off
            off += sc.sizeof()
        assert offsets["BootTime"] == boot and offsets["PerfFreq"] == boot + 8
        assert offsets["StartTime"] == boot + 16 and offsets["ReservedFlags"] == boot + 24
        assert offsets["PointerSize"] == 0x2C and offsets["CpuSpeedInMHz"] == 0x34
        assert "BuffersLost" in names
