"""Round trips: known lifecycles written as a real-format .etl (every source kind the decoders own,
both pointer widths, compressed and not) come back out of `fpreplay irps` unchanged, and an event
table written by `fpreplay events -o x.parquet` gives the same lifecycles as the trace itself."""

from __future__ import annotations

import uuid

import polars as pl
import pytest

from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.decoders.layouts import layout
from fpreplay.parsers.etl.decoders.manifest import KERNEL_DISK, KERNEL_FILE
from fpreplay.parsers.etl.decoders.tracelogging import (
    TlEvent, TlField, build_metadata, encode_payload, provider_guid, provider_traits,
)
from fpreplay.replay.cli import main
from fpreplay.synth.etlwriter import EtlWriter
from fpreplay.synth.wpp import wpp_record, write_tmf_dir

START_NS = 1_750_000_000 * 10**9
T0 = 1_000_000            # raw QPC ticks at the trace start; 10 MHz: one tick = 100 ns


def ns(ticks: int) -> int:
    return START_NS + (ticks - T0) * 100


def system(group, opcode, ts, payload, *, psize=8, version=3, tid=100, pid=4):
    head = L.SYSTEM_TRACE_HEADER.build(dict(
        Version=version, HeaderType=L.HT_SYSTEM64 if psize == 8 else L.HT_SYSTEM32,
        MarkerFlags=0xC0, Size=0x20 + len(payload), HookId=(group << 8) | opcode, ThreadId=tid,
        ProcessId=pid, SystemTime=ts, KernelTime=0, UserTime=0))
    return head + payload


def perfinfo(group, opcode, ts, payload, *, psize=8, version=3):
    head = L.PERFINFO_TRACE_HEADER.build(dict(
        Version=version, HeaderType=L.HT_PERFINFO64 if psize == 8 else L.HT_PERFINFO32,
        MarkerFlags=0xC0, Size=0x10 + len(payload), HookId=(group << 8) | opcode, SystemTime=ts))
    return head + payload


def event_header(provider: uuid.UUID, event_id, ts, payload, *, ext=(), psize=8, tid=100):
    block = b""
    for i, (ext_type, data) in enumerate(ext):
        size = (8 + len(data) + 7) & ~7
        block += L.EXTENDED_ITEM_HEADER.build(dict(ItemSize=size, ExtType=ext_type,
                                                   Linkage=int(i < len(ext) - 1),
                                                   DataSize=len(data)))
        block += data + b"\0" * (size - 8 - len(data))
    head = L.EVENT_HEADER.build(dict(
        Size=0x50 + len(block) + len(payload),
        HeaderType=L.HT_EVENT_HEADER64 if psize == 8 else L.HT_EVENT_HEADER32, MarkerFlags=0xC0,
        Flags=1 if ext else 0, EventProperty=0, ThreadId=tid, ProcessId=4, TimeStamp=ts,
        ProviderId=provider, Id=event_id, Version=1, Channel=0, Level=4, Opcode=0, Task=0,
        Keyword=0, KernelTime=0, UserTime=0, ActivityId=uuid.UUID(int=0)))
    return head + block + payload


def tl(name: str, ts: int, values: dict):
    types = {"Irp": TlField("Irp", 10, out_type=4), "Request": TlField("Request", 10),
             "Device": TlField("Device", 2), "Major": TlField("Major", 4),
             "Status": TlField("Status", 8)}
    ev = TlEvent(name, [types[k] for k in values])
    return event_header(provider_guid("Contoso-Disk-Driver"), 0, ts, encode_payload(ev, values),
                        ext=[(12, provider_traits("Contoso-Disk-Driver")),
                             (11, build_metadata(ev))])


A, B32, C, D, E32, F, G, H, I, J = (0xFFFFFA8000001000, 0x81234560, 0xFFFFFA8000003000,
                                    0xFFFFFA8000004000, 0x8DEAD000, 0xFFFFFA8000006000,
                                    0xFFFFFA8000007000, 0xFFFFFA8000008000, 0xFFFFFA8000009000,
                                    0xFFFFFA800000A000)
R = 0x00007FF000000F00


def scenario() -> list[tuple[int, int, bytes]]:
    """(cpu, ts, record): one or more lifecycles of every source kind."""
    b = layout
    rw = lambda **v: b("DiskIo_RW_v3", 8).build(dict(  # noqa: E731
        Reserved=0, HighResResponseTime=500, IssuingThreadId=100, FileObject=0xF0, **v))
    return [
        # DiskIo, 64-bit: a read, then the same address reused for a write on another disk
        (0, 1000, system(1, 12, 1000, b("DiskIo_Init_v3", 8).build(dict(Irp=A, IssuingThreadId=100)))),
        (1, 1500, perfinfo(1, 10, 1500, rw(DiskNumber=0, IrpFlags=0x20043, TransferSize=4096,
                                            ByteOffset=8192, Irp=A))),
        (0, 2000, system(1, 13, 2000, b("DiskIo_Init_v3", 8).build(dict(Irp=A, IssuingThreadId=100)))),
        (1, 2600, perfinfo(1, 11, 2600, rw(DiskNumber=1, IrpFlags=0x0, TransferSize=512,
                                            ByteOffset=0, Irp=A))),
        # DiskIo, 32-bit pointers: a flush
        (0, 3000, system(1, 15, 3000, b("DiskIo_Init_v3", 4).build(dict(Irp=B32, IssuingThreadId=7)),
                         psize=4)),
        (1, 3100, perfinfo(1, 14, 3100, b("DiskIo_Flush_v3", 4).build(dict(
            DiskNumber=0, IrpFlags=0, HighResResponseTime=100, Irp=B32, IssuingThreadId=7)),
            psize=4)),
        # driver delay events: an IOCTL through two drivers, completed once
        (0, 4000, system(1, 34, 4000, b("DrvMjFnCall", 8).build(dict(
            MajorFunction=0x0E, MinorFunction=0, RoutineAddr=0xAAA, FileObject=0, Irp=C,
            UniqMatchId=1)))),
        (0, 4010, system(1, 34, 4010, b("DrvMjFnCall", 8).build(dict(
            MajorFunction=0x0E, MinorFunction=0, RoutineAddr=0xBBB, FileObject=0, Irp=C,
            UniqMatchId=2)))),
        (0, 4300, system(1, 52, 4300, b("DrvRoutineIrp", 8).build(dict(Routine=0xBBB, Irp=C,
                                                                        UniqMatchId=3)))),
        (0, 4310, system(1, 53, 4310, b("DrvIrpMatch", 8).build(dict(Irp=C, UniqMatchId=3)))),
        # FileIo v3 (64-bit): a read the file system cancelled
        (1, 5000, system(4, 67, 5000, b("FileIo_RW_v3", 8).build(dict(
            Offset=0, IrpPtr=D, FileObject=0xF1, FileKey=0xF2, TTID=100, IoSize=512,
            IoFlags=0x60A00)))),
        (1, 5200, system(4, 76, 5200, b("FileIo_OpEnd", 8).build(dict(
            IrpPtr=D, ExtraInfo=0, NtStatus=0xC0000120)))),
        # FileIo v2 (32-bit): a write that succeeded
        (0, 6000, system(4, 68, 6000, b("FileIo_RW_v2", 4).build(dict(
            Offset=4096, IrpPtr=E32, TTID=9, FileObject=0xF3, FileKey=0xF4, IoSize=1024,
            IoFlags=0x0)), psize=4, version=2)),
        (0, 6100, system(4, 76, 6100, b("FileIo_OpEnd", 4).build(dict(
            IrpPtr=E32, ExtraInfo=1024, NtStatus=0)), psize=4, version=2)),
        # Microsoft-Windows-Kernel-File: a create on a device in the wrong state
        (1, 7000, event_header(uuid.UUID(KERNEL_FILE), 12, 7000, b("FileIo_Create_v3", 8).build(
            dict(IrpPtr=F, FileObject=0xF5, TTID=100, CreateOptions=0, FileAttributes=0,
                 ShareAccess=7, OpenPath="\\Device\\Contoso0")))),
        (1, 7050, event_header(uuid.UUID(KERNEL_FILE), 24, 7050, b("FileIo_OpEnd", 8).build(
            dict(IrpPtr=F, ExtraInfo=0, NtStatus=0xC0000184)))),
        # driver instrumentation (TraceLogging): a reserved request, then an allocation failure
        (0, 8000, tl("IrpDispatch", 8000, {"Irp": G, "Request": R, "Device": "contoso0",
                                            "Major": 3})),
        (0, 8010, tl("ReservedRequestUsed", 8010, {"Request": R})),
        (0, 8500, tl("IrpComplete", 8500, {"Irp": G, "Status": 0})),
        (1, 9000, tl("IrpDispatch", 9000, {"Irp": H, "Device": "contoso0", "Major": 4})),
        (1, 9001, tl("RequestAllocFailed", 9001, {"Device": "contoso0", "Status": 0xC000009A})),
        (1, 9002, tl("IrpComplete", 9002, {"Irp": H, "Status": 0xC000009A})),
        # an Init that never completes; a Kernel-Disk completion whose Init is not in the trace
        (0, 9500, system(1, 12, 9500, b("DiskIo_Init_v3", 8).build(dict(Irp=I, IssuingThreadId=100)))),
        (1, 9600, event_header(uuid.UUID(KERNEL_DISK), 10, 9600, b("DiskIo_RW_v2", 8).build(dict(
            DiskNumber=2, IrpFlags=0x2, TransferSize=8192, Reserved=0, ByteOffset=0,
            FileObject=0, Irp=J, HighResResponseTime=50)))),
    ]


# irp, arrive, complete, device, major, irp_flags, bytes, paging, status, actual
EXPECTED = [
    (A, 1000, 1500, "disk0", 3, 0x43, 4096, True, None, "ok"),
    (A, 2000, 2600, "disk1", 4, 0x0, 512, False, None, "ok"),
    (B32, 3000, 3100, "disk0", 9, 0x0, None, False, None, "ok"),
    (C, 4000, 4300, None, 0x0E, None, None, False, None, "ok"),
    (D, 5000, 5200, None, 3, 0xA00, 512, False, 0xC0000120, "cancelled"),
    (E32, 6000, 6100, None, 4, 0x0, 1024, False, 0, "ok"),
    (F, 7000, 7050, None, 0, None, None, False, 0xC0000184, "invalid_state"),
    (G, 8000, 8500, "contoso0", 3, None, None, False, 0, "reserved"),
    (H, 9000, 9002, "contoso0", 4, None, None, False, 0xC000009A, "alloc_failed"),
    (I, 9500, None, None, 3, None, None, False, None, "incomplete"),
    (J, 9600, 9600, "disk2", 3, 0x2, 8192, True, None, "ok"),
]


def write_trace(path, compressed: bool) -> None:
    with open(path, "wb") as fh:
        w = EtlWriter(fh, start_unix_ns=START_NS, t0_raw=T0, ncpu=2, buffer_size=0x1000,
                      compressed=compressed)
        for cpu, ts, record in scenario():
            w.write(cpu, ts, record)
        w.close()


def irps_of(inputs, out) -> pl.DataFrame:
    assert main(["irps", *map(str, inputs), "-o", str(out), "--quiet"]) == 0
    return pl.read_parquet(out)


@pytest.mark.parametrize("compressed", [False, True])
def test_known_lifecycles_round_trip_through_an_etl(tmp_path, compressed):
    trace = tmp_path / "scenario.etl"
    write_trace(trace, compressed)
    lc = irps_of([trace], tmp_path / "irps.parquet").sort("arrive_ns", "irp")
    got = [(r["irp"], r["arrive_ns"], r["complete_ns"], r["device"], r["major"], r["irp_flags"],
            r["bytes"], r["paging"], r["status"], r["actual"]) for r in lc.to_dicts()]
    want = [(irp, ns(a), None if c is None else ns(c), *rest) for irp, a, c, *rest in EXPECTED]
    assert got == want
    ev = dict(zip(lc["irp"], lc["evidence"]))
    assert ev[H].startswith("alloc_failed: Contoso-Disk-Driver/RequestAllocFailed, tied by device")
    assert ev[G] == "reserved: Contoso-Disk-Driver/ReservedRequestUsed"
    assert ev[J].startswith("ok: no dispatch seen")


def test_event_table_read_back_gives_the_same_lifecycles(tmp_path):
    trace = tmp_path / "scenario.etl"
    write_trace(trace, compressed=True)
    for fmt in ("parquet", "ndjson", "csv"):
        table = tmp_path / f"events.{fmt}"
        assert main(["events", str(trace), "-o", str(table), "--quiet"]) == 0
        direct = irps_of([trace], tmp_path / "a.parquet")
        again = irps_of([table], tmp_path / f"b_{fmt}.parquet")
        assert again.equals(direct), fmt


def test_real_trace_event_table_gives_the_same_lifecycles(real, tmp_path):
    trace = real("etl/filtrace_diskio.etl")
    table = tmp_path / "events.parquet"
    assert main(["events", str(trace), "-o", str(table), "--quiet"]) == 0
    direct = irps_of([trace], tmp_path / "a.parquet")
    assert irps_of([table], tmp_path / "b.parquet").equals(direct)
    assert direct.height == 122


# --- WPP (KMDF framework messages) in an .etl, formatted through a TMF --------------------------
# The synthesizer's KMDF messages and the TMF it writes for them (synth/wpp.py).

def wdf(key: str, ts: int, args: tuple, seq: int) -> bytes:
    return wpp_record(key, args, ts_raw=ts, sequence=seq, tid=100, pid=4)


def test_kmdf_wpp_messages_round_trip_to_lifecycles(tmp_path):
    K, K2, DEVOBJ = 0xFFFFFA800000B000, 0xFFFFFA800000C000, 0xFFFFFA80DEAD0000
    trace = tmp_path / "wpp.etl"
    with open(trace, "wb") as fh:
        w = EtlWriter(fh, start_unix_ns=START_NS, t0_raw=T0, ncpu=1, buffer_size=0x1000)
        w.write(0, 1000, wdf("dispatch", 1000, (0x7FF0, DEVOBJ, 3, 0, K), 1))
        w.write(0, 1010, wdf("could_not_create", 1010, (0xC000009A,), 2))
        w.write(0, 2000, wdf("dispatch", 2000, (0x7FF0, DEVOBJ, 4, 0, K2), 3))
        w.write(0, 2100, system(1, 52, 2100, layout("DrvRoutineIrp", 8).build(dict(
            Routine=1, Irp=K2, UniqMatchId=1))))
        w.close()
    write_tmf_dir(tmp_path / "tmf")
    out = tmp_path / "irps.parquet"
    assert main(["irps", str(trace), "--tmf", str(tmp_path / "tmf"), "-o", str(out),
                 "--quiet"]) == 0
    lc = pl.read_parquet(out).sort("arrive_ns")
    got = [(r["irp"], r["arrive_ns"], r["complete_ns"], r["device"], r["major"], r["actual"])
           for r in lc.to_dicts()]
    assert got == [(K, ns(1000), None, f"0x{DEVOBJ:x}", 3, "alloc_failed"),
                   (K2, ns(2000), ns(2100), f"0x{DEVOBJ:x}", 4, "ok")]
    assert lc["evidence"][0] == "alloc_failed: IFR/Could not create WDFREQUEST"
