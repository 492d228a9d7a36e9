"""The .etl walker on traces built here with the construct layouts of parsers/etl/layouts.py:
clock types the real fixtures lack, header kinds they lack (compact, instance, WPP, 32-bit logfile
header), compressed buffers, circular files, buffer-level damage."""

from __future__ import annotations

import struct
import time
import uuid
from pathlib import Path

import pytest

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import InputError
from fpreplay.parsers.api import ReadOptions, read_inputs
from fpreplay.parsers.etl import decoders as D
from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.clock import FILETIME_UNIX_EPOCH
from fpreplay.parsers.etl.reader import read_events

START_FT = 133_000_000_000_000_000           # 2022-06-18, a FILETIME
START_NS = (START_FT - FILETIME_UNIX_EPOCH) * 100
DISKIO_GUID = uuid.UUID("3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c")


def pad8(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 8)


def system_record(hook: int, ts: int, payload: bytes = b"", *, htype=L.HT_SYSTEM64, tid=7,
                  pid=9, version=2) -> bytes:
    compact = htype in (L.HT_COMPACT32, L.HT_COMPACT64)
    layout = L.COMPACT_TRACE_HEADER if compact else L.SYSTEM_TRACE_HEADER
    fields = dict(Version=version, HeaderType=htype, MarkerFlags=0xC0,
                  Size=layout.sizeof() + len(payload), HookId=hook, ThreadId=tid, ProcessId=pid,
                  SystemTime=ts, KernelTime=0, UserTime=0)
    return layout.build(fields) + payload


def perfinfo_record(hook: int, ts: int, payload: bytes = b"", *, htype=L.HT_PERFINFO64,
                    version=3) -> bytes:
    return L.PERFINFO_TRACE_HEADER.build(dict(
        Version=version, HeaderType=htype, MarkerFlags=0xC0, Size=0x10 + len(payload),
        HookId=hook, SystemTime=ts)) + payload


def instance_record(guid: uuid.UUID, typ: int, ts: int, payload: bytes = b"") -> bytes:
    return L.EVENT_INSTANCE_GUID_HEADER.build(dict(
        Size=0x48 + len(payload), HeaderType=L.HT_INSTANCE32, MarkerFlags=0xC0, Type=typ,
        Level=4, Version=1, ThreadId=3, ProcessId=4, TimeStamp=ts, Guid=guid, KernelTime=0,
        UserTime=0, InstanceId=1, ParentInstanceId=0, ParentGuid=guid)) + payload


def event_header_record(guid: uuid.UUID, event_id: int, ts: int, payload: bytes = b"", *,
                        htype=L.HT_EVENT_HEADER32, ext: list[tuple[int, bytes]] = ()) -> bytes:
    items = b""
    for i, (t, data) in enumerate(ext):
        size = 8 + len(pad8(data))
        items += L.EXTENDED_ITEM_HEADER.build(dict(
            ItemSize=size, ExtType=t, Linkage=1 if i < len(ext) - 1 else 0,
            DataSize=len(data))) + pad8(data)
    return L.EVENT_HEADER.build(dict(
        Size=0x50 + len(items) + len(payload), HeaderType=htype, MarkerFlags=0xC0,
        Flags=1 if ext else 0, EventProperty=0, ThreadId=11, ProcessId=12, TimeStamp=ts,
        ProviderId=guid, Id=event_id, Version=2, Channel=0, Level=4, Opcode=0, Task=0, Keyword=0,
        KernelTime=0, UserTime=0, ActivityId=uuid.UUID(int=0))) + items + payload


def wpp_record(msg_guid: uuid.UUID, number: int, ts: int | None, args: bytes = b"") -> bytes:
    flags = L.TRACE_MESSAGE_SEQUENCE | L.TRACE_MESSAGE_GUID | L.TRACE_MESSAGE_SYSTEMINFO \
        | L.TRACE_MESSAGE_POINTER64 | (L.TRACE_MESSAGE_TIMESTAMP if ts is not None else 0)
    fields = L.MESSAGE_TRACE_FIELDS.build(dict(Sequence=5, MessageGuid=msg_guid,
                                               ComponentId=None, TimeStamp=ts, ThreadId=21,
                                               ProcessId=22), OptionFlags=flags)
    return L.MESSAGE_TRACE_HEADER.build(dict(Size=8 + len(fields) + len(args), Reserved=0,
                                             MarkerFlags=0x90, MessageNumber=number,
                                             OptionFlags=flags)) + fields + args


def header_record(*, pointer_size=8, clock=L.CLOCK_QPC, t0=1_000_000, perf_freq=10_000_000,
                  cpu_mhz=0, mode=1, start_buffers=1, buffers_written=2, events_lost=0,
                  buffers_lost=0) -> bytes:
    layout = L.trace_header_event(pointer_size)
    tz = dict(Bias=0, StandardName=bytes(64), StandardDate=dict(
        Year=0, Month=0, DayOfWeek=0, Day=0, Hour=0, Minute=0, Second=0, Milliseconds=0),
        StandardBias=0, DaylightName=bytes(64), DaylightDate=dict(
        Year=0, Month=0, DayOfWeek=0, Day=0, Hour=0, Minute=0, Second=0, Milliseconds=0),
        DaylightBias=0)
    logfile = dict(BufferSize=0x1000, Version=0x0206, ProviderVersion=9200, NumberOfProcessors=2,
                   EndTime=START_FT + 10**8, TimerResolution=156250, MaximumFileSize=0,
                   LogFileMode=mode, BuffersWritten=buffers_written,
                   StartBuffers=start_buffers, PointerSize=pointer_size,
                   EventsLost=events_lost, CpuSpeedInMHz=cpu_mhz, LoggerNamePtr=0,
                   LogFileNamePtr=0, TimeZone=tz, BootTime=START_FT - 10**9, PerfFreq=perf_freq,
                   StartTime=START_FT, ReservedFlags=clock, BuffersLost=buffers_lost)
    header = dict(Version=2, HeaderType=L.HT_SYSTEM64 if pointer_size == 8 else L.HT_SYSTEM32,
                  MarkerFlags=0xC0, Size=0, HookId=0, ThreadId=1, ProcessId=4, SystemTime=t0,
                  KernelTime=0, UserTime=0)
    body = dict(header=header, logfile=logfile, LoggerName="test", LogFileName="t.etl")
    header["Size"] = len(layout.build(body))
    return layout.build(body)


def xpress_literals(data: bytes) -> bytes:
    """A valid plain LZ77 Xpress stream (MS-XCA 2.3) made only of literals: flag word 0 then 32
    literal bytes, repeated. Enough to exercise the reader's decompression path."""
    out = bytearray()
    for i in range(0, len(data), 32):
        out += b"\0\0\0\0" + data[i:i + 32]
    return bytes(out)


def buffer(records: list[bytes], *, cpu=0, size=0x1000, compressed=False, flags=0x21,
           btype=1) -> bytes:
    body = b"".join(pad8(r) for r in records)
    filled = L.BUFFER_HEADER_SIZE + len(body)
    if compressed:
        payload = xpress_literals(body)
        size = L.BUFFER_HEADER_SIZE + len(payload)
        flags |= L.BUFFER_FLAG_COMPRESSED
    else:
        assert filled <= size
        payload = body + b"\xff" * (size - filled)
    head = L.WMI_BUFFER_HEADER.build(dict(
        BufferSize=size, SavedOffset=filled, CurrentOffset=filled, ReferenceCount=0, TimeStamp=0,
        SequenceNumber=0, ClockTypeFrequency=0, ProcessorNumber=cpu, Alignment=0, LoggerId=1,
        State=3, FilledBytes=filled, BufferFlag=flags, BufferType=btype, Padding=bytes(16)))
    return head + payload


def diskio_payload(irp: int, size: int) -> bytes:
    return struct.pack("<IIIIQQQQI", 0, 0x43, size, 0, 4096, 0xF00, irp, 100, 77)


def read(path: Path, all_records=True):
    d, stats = Diagnostics(), {}
    frames = list(read_events(path, ReadOptions(all_records=all_records), d, stats))
    import polars as pl
    df = pl.concat(frames, how="diagonal_relaxed") if frames else None
    return df, stats, d


def write(tmp_path: Path, *buffers: bytes, name="t.etl") -> Path:
    p = tmp_path / name
    p.write_bytes(b"".join(buffers))
    return p


# --- clock conversion ----------------------------------------------------------------------------
@pytest.mark.parametrize("clock,freq,mhz,t0,ts,expect_ns", [
    (L.CLOCK_QPC, 10_000_000, 0, 1_000_000, 1_000_000 + 12_345_678, 1_234_567_800),
    (L.CLOCK_QPC, 3_579_545, 0, 5, 5 + 3_579_545 * 2 + 1, 2_000_000_279),    # ACPI PM timer
    (L.CLOCK_SYSTEM_TIME, 0, 0, START_FT, START_FT + 42, 4_200),           # FILETIME raw values
    (L.CLOCK_CPU_CYCLES, 0, 2_500, 10, 10 + 2_500_000_000 * 3 + 5, 3_000_000_002),
])
def test_clock_types_convert_to_utc_ns(tmp_path, clock, freq, mhz, t0, ts, expect_ns):
    path = write(tmp_path, buffer([
        header_record(clock=clock, perf_freq=freq, cpu_mhz=mhz, t0=t0),
        perfinfo_record(0x010A, ts, diskio_payload(0xFFFF0001, 512)),
    ]))
    df, stats, _ = read(path)
    assert stats["trace_start_ns"] == START_NS
    assert df["ts_ns"].to_list() == [START_NS, START_NS + expect_ns]


def test_qpc_conversion_does_not_overflow_after_weeks(tmp_path):
    ticks = 10_000_000 * 86_400 * 30 + 7                   # 30 days at 10 MHz
    path = write(tmp_path, buffer([header_record(t0=0), perfinfo_record(0x010A, ticks)]))
    df, _, _ = read(path)
    assert df["ts_ns"][1] - START_NS == 86_400 * 30 * 10**9 + 700


def test_32bit_logfile_header_layout(tmp_path):
    """A 32-bit writer: BootTime/PerfFreq/StartTime sit 8 bytes earlier (0xF0/0xF8/0x100)."""
    path = write(tmp_path, buffer([
        header_record(pointer_size=4, perf_freq=1_000_000, t0=50),
        system_record(0x010C, 50 + 1_500_000, struct.pack("<I", 0x8000_1000),
                      htype=L.HT_SYSTEM32),
    ]))
    df, stats, _ = read(path)
    assert stats["trace_start_ns"] == START_NS
    assert df["ts_ns"][1] - START_NS == 1_500_000_000


def test_lost_counts_come_from_header_and_buffer_flags(tmp_path):
    path = write(tmp_path,
                 buffer([header_record(events_lost=5, buffers_lost=2)], flags=0x01, btype=4),
                 buffer([perfinfo_record(0x010A, 2_000_000)],
                        flags=0x21 | L.BUFFER_FLAG_EVENTS_LOST))
    _, stats, d = read(path)
    assert stats["events_lost"] == 6 and stats["buffers_lost"] == 2
    assert any("lost events" in w for w in d.warnings)


# --- header kinds the fixtures lack --------------------------------------------------------------
def test_compact_instance_wpp_and_event_header32_records(tmp_path, monkeypatch):
    seen = []

    def grab(rec, ctx):
        seen.append(rec)
        return []

    msg = uuid.UUID("5bf6e80b-6122-3dde-7c2d-419eb7880414")
    klass = uuid.UUID("b3e675d7-2554-4f18-830b-2762732560de")
    prov = uuid.UUID("edd08927-9cc4-4e65-b970-c2560fb5c289")
    monkeypatch.setitem(D.KERNEL, (1, 12), grab)
    monkeypatch.setitem(D.CLASSIC, (str(klass), 0x24), grab)
    monkeypatch.setitem(D.MANIFEST, (str(prov), 12), grab)
    monkeypatch.setattr(D, "WPP", grab)
    path = write(tmp_path, buffer([
        header_record(),
        system_record(0x010C, 1_000_010, struct.pack("<Q", 0xFFFFFA80_00001234),
                      htype=L.HT_COMPACT64, tid=33, pid=44, version=3),
        instance_record(klass, 0x24, 1_000_020, b"abcd"),
        event_header_record(prov, 12, 1_000_030, b"\x01\x02\x03\x04",
                            ext=[(L.EXT_TYPE_RELATED_ACTIVITYID, uuid.UUID(int=5).bytes_le)]),
        wpp_record(msg, 10, 1_000_040, struct.pack("<I", 0xC000009A)),
        wpp_record(msg, 11, None, b"x"),
    ]))
    df, stats, _ = read(path)
    assert stats["records"] == 6
    assert df["header_kind"].to_list() == ["system", "compact", "instance", "event_header",
                                           "wpp", "wpp"]
    compact, inst, evh, wpp, wpp_untimed = seen
    assert (compact.header_kind, compact.pointer_size, compact.tid, compact.pid, compact.version,
            compact.group, compact.opcode) == ("compact", 8, 33, 44, 3, 1, 12)
    assert compact.payload == struct.pack("<Q", 0xFFFFFA80_00001234)
    assert (inst.header_kind, inst.provider, inst.opcode, inst.payload) == \
        ("instance", klass, 0x24, b"abcd")
    assert (evh.header_kind, evh.pointer_size, evh.provider, evh.event_id, evh.payload) == \
        ("event_header", 4, prov, 12, b"\x01\x02\x03\x04")
    assert evh.ext == [(L.EXT_TYPE_RELATED_ACTIVITYID, uuid.UUID(int=5).bytes_le)]
    assert (wpp.header_kind, wpp.provider, wpp.event_id, wpp.tid, wpp.pid, wpp.pointer_size,
            wpp.payload) == ("wpp", msg, 10, 21, 22, 8, struct.pack("<I", 0xC000009A))
    assert wpp.ts_ns == START_NS + 4_000
    # A message without a timestamp takes the time of the record before it.
    assert wpp_untimed.ts_raw == 1_000_040 and wpp_untimed.payload == b"x"


def test_kernel_version_word_extensions_are_skipped(tmp_path, monkeypatch):
    """PMC counters (version bits 8-10) sit between the header and the payload."""
    got = []
    monkeypatch.setitem(D.KERNEL, (1, 10), lambda rec, ctx: got.append(rec) or [])
    pmc = struct.pack("<QQ", 111, 222)
    path = write(tmp_path, buffer([header_record(),
                                   perfinfo_record(0x010A, 1_000_001, pmc + b"PAYL",
                                                   version=0x0203)]))
    read(path)
    assert got[0].payload == b"PAYL" and got[0].version == 3


def test_decoder_rows_get_defaults_and_time_order(tmp_path, monkeypatch):
    def decode(rec, ctx):
        irp = struct.unpack_from("<Q", rec.payload, 24 + 8)[0]
        return [{"kind": "irp_complete", "irp": irp}]

    monkeypatch.setitem(D.KERNEL, (1, 10), decode)
    # CPU 1's buffer comes first in the file but holds the later completion.
    path = write(tmp_path,
                 buffer([header_record()], flags=0x01, btype=4),
                 buffer([perfinfo_record(0x010A, 3_000_000, diskio_payload(0xB, 512))], cpu=1),
                 buffer([perfinfo_record(0x010A, 2_000_000, diskio_payload(0xA, 512))], cpu=0))
    read_ = read_inputs([path], ReadOptions())
    ev = read_.events
    assert ev["irp"].to_list() == [0xA, 0xB]
    assert ev["cpu"].to_list() == [0, 1]
    assert ev["source"].to_list() == [str(path)] * 2
    assert ev["event_name"].to_list() == ["DiskIo/10"] * 2
    assert ev["ts_ns"].to_list() == [START_NS + 100_000_000, START_NS + 200_000_000]
    assert read_.records == 3


def test_broken_decoder_is_counted_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setitem(D.KERNEL, (1, 10), lambda rec, ctx: [{"irp": rec.payload[999]}])
    path = write(tmp_path, buffer([header_record(), perfinfo_record(0x010A, 2_000_000)]))
    _, stats, d = read(path, all_records=False)
    assert stats["records"] == 2
    assert d.counters["etl_undecodable_records"] == 1
    assert any("could not be decoded" in w and "byte " in w for w in d.warnings)


# --- compressed and circular files ---------------------------------------------------------------
def test_compressed_buffers_are_decompressed(tmp_path):
    recs = [perfinfo_record(0x010A, 1_000_000 + i, diskio_payload(i, 512)) for i in range(40)]
    path = write(tmp_path, buffer([header_record()], flags=0x01, btype=4),
                 buffer(recs, compressed=True, flags=0x21))
    df, stats, d = read(path)
    assert stats["records"] == 41 and not d.warnings
    assert df["opcode"].to_list()[1:] == [10] * 40


def test_corrupt_compressed_buffer_is_skipped_with_a_warning(tmp_path):
    good = buffer([perfinfo_record(0x010A, 1_000_005)], compressed=True)
    bad = bytearray(buffer([perfinfo_record(0x010A, 1_000_006)] * 30, compressed=True))
    bad[L.BUFFER_HEADER_SIZE:L.BUFFER_HEADER_SIZE + 4] = b"\xff\xff\xff\xff"  # all matches
    bad[L.BUFFER_HEADER_SIZE + 4:] = b"\xff" * (len(bad) - L.BUFFER_HEADER_SIZE - 4)
    head = buffer([header_record()], flags=0x01, btype=4)
    path = write(tmp_path, head, bytes(bad), good)
    df, stats, d = read(path)
    assert stats["records"] >= 2                       # header + the good buffer at least
    assert any(f"byte {len(head)}" in w for w in d.warnings)


def test_circular_file_is_read_oldest_first(tmp_path, monkeypatch):
    """A wrapped ring: StartBuffers=2 means buffers 2.. are the oldest, 1 the newest."""
    walked = []
    monkeypatch.setitem(D.KERNEL, (1, 10), lambda rec, ctx: walked.append(rec.ts_raw) or [])
    head = buffer([header_record(mode=L.EVENT_TRACE_FILE_MODE_CIRCULAR, start_buffers=2,
                                 buffers_written=9)], flags=0x01, btype=4)   # 5 overwritten
    newest = buffer([perfinfo_record(0x010A, 9_000_000 + i) for i in range(3)])
    oldest = buffer([perfinfo_record(0x010A, 2_000_000 + i) for i in range(3)])
    middle = buffer([perfinfo_record(0x010A, 5_000_000 + i) for i in range(3)])
    path = write(tmp_path, head, newest, oldest, middle)
    d, stats = Diagnostics(), {}
    batches = list(read_events(path, ReadOptions(all_records=True), d, stats))
    ts = [t for b in batches for t in b["ts_ns"].to_list()]
    assert stats["records"] == 10
    assert ts == sorted(ts)                           # released in time order, not file order
    assert walked == sorted(walked) and len(walked) == 9   # and walked in ring order
    assert d.counters.get("etl_rows_released_late", 0) == 0
    assert not d.warnings


# --- damage at the buffer level ------------------------------------------------------------------
def test_zero_and_huge_buffer_sizes(tmp_path):
    head = buffer([header_record()], flags=0x01, btype=4)
    one = buffer([perfinfo_record(0x010A, 2_000_000)])
    for size in (0x30, 0x7FFF_FFFF):
        bad = bytearray(one)
        bad[0:4] = struct.pack("<I", size)
        path = write(tmp_path, head, one, bytes(bad), name=f"s{size}.etl")
        _, stats, d = read(path)
        assert stats["records"] == 2
        assert any(f"byte {len(head) + len(one)}" in w for w in d.warnings), d.warnings


def test_bad_first_buffer_is_one_input_error_naming_offset(tmp_path):
    path = write(tmp_path, b"\x10\x00\x00\x00" + bytes(0x44) + b"\x02\x00\x02\xc0" + bytes(60))
    with pytest.raises(InputError) as e:
        read(path)
    assert str(path) in str(e.value) and "byte 0" in str(e.value)


def test_record_overrunning_its_buffer(tmp_path):
    rec = bytearray(perfinfo_record(0x010A, 2_000_000))
    rec[4:6] = struct.pack("<H", 0x2000)             # Size past the end of the buffer
    path = write(tmp_path, buffer([header_record()], flags=0x01, btype=4),
                 buffer([perfinfo_record(0x010A, 1_500_000), bytes(rec)]),
                 buffer([perfinfo_record(0x010A, 2_500_000)]))
    _, stats, d = read(path)
    assert stats["records"] == 3
    assert d.counters["etl_bad_records"] == 1 and any("record size 8192" in w for w in d.warnings)


def test_decoder_values_out_of_range_become_null(tmp_path, monkeypatch):
    monkeypatch.setitem(D.KERNEL, (1, 10), lambda rec, ctx: [
        {"kind": "irp_complete", "irp": 5, "major": 300, "status": -1, "not_a_column": 1}])
    path = write(tmp_path, buffer([header_record(), perfinfo_record(0x010A, 2_000_000)]))
    ev = read_inputs([path], ReadOptions()).events
    assert ev["irp"].to_list() == [5] and ev["major"].to_list() == [None]
    assert ev["status"].to_list() == [None] and "not_a_column" not in ev.columns


def test_merge_stops_waiting_for_a_quiet_cpu_past_its_bound(tmp_path, monkeypatch):
    """CPU 1 logs once, early, then never again: the merge may not hold every later row for
    it forever. Past PENDING_MAX_ROWS it releases rows anyway and counts that."""
    from fpreplay.parsers.etl import merge

    monkeypatch.setattr(merge, "PENDING_FLUSH_ROWS", 10)
    monkeypatch.setattr(merge, "PENDING_MAX_ROWS", 40)
    bufs = [buffer([header_record()], flags=0x01, btype=4),
            buffer([perfinfo_record(0x010A, 1_000_100)], cpu=1)]
    ts = 1_000_200
    for _ in range(20):
        bufs.append(buffer([perfinfo_record(0x010A, ts + i) for i in range(10)], cpu=0))
        ts += 10
    path = write(tmp_path, *bufs)
    d, stats = Diagnostics(), {}
    batches = list(read_events(path, ReadOptions(all_records=True), d, stats))
    assert len(batches) > 2 and d.counters["etl_merge_forced"] >= 1
    assert sum(b.height for b in batches) == stats["records"] == 202


def test_a_warning_per_damaged_buffer_is_summarised(tmp_path):
    """20,000 LZ77 buffers each claiming 64 MiB (issue 12): one line per kind of damage, with
    the count and the first byte offsets, not 20,000 lines; read in bounded time."""
    bad = bytearray(buffer([perfinfo_record(0x010A, 2_000_000)], compressed=True))
    struct.pack_into("<I", bad, L.offset_of(L.WMI_BUFFER_HEADER, "FilledBytes"),
                     L.BUFFER_HEADER_SIZE + (64 << 20))
    first = 2 * 0x1000
    damaged = []                       # each its own sequence number: not duplicates of one
    for i in range(20_000):
        struct.pack_into("<q", bad, L.offset_of(L.WMI_BUFFER_HEADER, "SequenceNumber"), i + 2)
        damaged.append(bytes(bad))
    path = write(tmp_path, buffer([header_record(buffers_written=20_002)], flags=0x01, btype=4),
                 buffer([perfinfo_record(0x010A, 1_500_000)]), *damaged)
    t = time.monotonic()
    read = read_inputs([path], ReadOptions())
    assert time.monotonic() - t < 60
    (line,) = [w for w in read.diagnostics.warnings if "compressed buffer" in w]
    step = len(bad)
    assert line.startswith(f"{path}: byte {first}: compressed buffer decompressed to ")
    assert line.endswith(f"[20,000 times: byte {first}, byte {first + step}, "
                         f"byte {first + 2 * step}, byte {first + 3 * step}, "
                         f"byte {first + 4 * step}, ...]")
    assert len(read.diagnostics.warnings) <= 3
    assert read.diagnostics.counters["etl_short_buffers"] == 20_000
