"""Kernel payload decoders: real payloads (via the dissect.etl oracle) against PerfView's own dump
of the same files, and payloads built from the shared construct layouts, both pointer widths."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.etl import decoders as D
from fpreplay.parsers.etl.decoders.layouts import fixed, layout
from fpreplay.parsers.etl.record import EtlRecord
from conftest import build_fields
from test_decoders_support import decode_real

NET64 = "etl/net.4.5.2.x64.etl.zip"
NET86 = "etl/net.4.5.2.x86.etl.zip"


def kernel_record(group: int, opcode: int, payload: bytes, *, psize: int = 8, version: int = 3,
                  header_kind: str = "perfinfo") -> EtlRecord:
    return EtlRecord(header_kind=header_kind, header_type=0x11 if psize == 8 else 0x10,
                     pointer_size=psize, ts_raw=0, ts_ns=1_000, cpu=0, pid=None, tid=None,
                     provider=None, group=group, opcode=opcode, event_id=None, version=version,
                     level=None, task=None, keyword=None, flags=0, ext=None, payload=payload,
                     file_offset=4096)


def ctx() -> D.DecodeContext:
    return D.DecodeContext(source="synthetic.etl", diagnostics=Diagnostics())


def decode(group, opcode, payload, **kw) -> list[dict]:
    rec = kernel_record(group, opcode, payload, **kw)
    return D.KERNEL[(group, opcode)](rec, ctx())


# --- real payloads vs PerfView's baseline text ------------------------------------------------

def test_diskio_read_matches_perfview_baseline(real):
    ev = decode_real(real(NET64))
    # "DiskIO/Read ... DiskNumber=0; IrpFlags=MountCompletion(0x2); Priority=Verylow;
    #  TransferSize=16,384; ByteOffset=849,788,928; Irp=0xfffffa8302a1dc60; FileKey=0xfffff8a0028e0140"
    row = ev.filter((pl.col("event_name") == "DiskIo/Read")
                    & (pl.col("irp") == 0xFFFFFA8302A1DC60)
                    & (pl.col("offset") == 849_788_928)).to_dicts()
    assert len(row) == 1
    r = row[0]
    assert (r["kind"], r["device"], r["major"]) == ("irp_complete", "disk0", 3)
    assert r["irp_flags"] == 0x2          # priority bits (Verylow = 1 << 17) masked off
    assert (r["bytes"], r["file_object"], r["tid"]) == (16_384, 0xFFFFF8A0028E0140, 44)
    assert r["pid"] is None               # PERFINFO header: no process of its own
    init = ev.filter((pl.col("event_name") == "DiskIo/ReadInit")
                     & (pl.col("irp") == 0xFFFFFA8302A1DC60))
    assert init.height >= 1 and set(init["kind"]) == {"irp_dispatch"}
    assert 44 in init["tid"].to_list()    # SYSTEM header: the issuing thread


def test_hardfault_and_kernel_file_match_perfview_baseline(real):
    ev = decode_real(real(NET64))
    hf = ev.filter((pl.col("event_name") == "PageFault/HardFault")
                   & (pl.col("file_object") == 0xFFFFF8A001300C50)
                   & (pl.col("offset") == 283_648))
    assert hf.height == 1 and hf["kind"][0] == "memory_pressure" and hf["tid"][0] == 1716
    kf = ev.filter((pl.col("event_name") == "Kernel-File/Create")
                   & (pl.col("irp") == 0xFFFFFA830393A3E8)).to_dicts()
    assert len(kf) == 1
    assert (kf[0]["file_object"], kf[0]["tid"], kf[0]["major"]) == (0xFFFFFA83004BDA90, 3780, 0)


@pytest.mark.parametrize("name,counts", [
    (NET64, {"DiskIo/ReadInit": 1208, "DiskIo/Read": 1208, "DiskIo/WriteInit": 21,
             "DiskIo/Write": 21, "DiskIo/FlushInit": 2, "DiskIo/FlushBuffers": 2,
             "PageFault/HardFault": 153, "Kernel-File/Create": 562}),
    (NET86, {"DiskIo/ReadInit": 2339, "DiskIo/Read": 2339, "DiskIo/WriteInit": 50,
             "DiskIo/Write": 50, "DiskIo/FlushInit": 4, "DiskIo/FlushBuffers": 4,
             "PageFault/HardFault": 394, "Kernel-File/Create": 968}),
    ("etl/filtrace_diskio.etl", {"DiskIo/WriteInit": 116, "DiskIo/Write": 117,
                                 "DiskIo/ReadInit": 2, "DiskIo/Read": 2, "DiskIo/FlushInit": 4}),
])
def test_real_event_counts_match_sources(real, name, counts):
    ev = decode_real(real(name))
    got = dict(ev.group_by("event_name").len().iter_rows())
    assert got == counts
    assert ev.filter(pl.col("kind").is_in(["irp_dispatch", "irp_complete"]))["irp"].null_count() == 0


# --- synthesized payloads, both pointer widths ------------------------------------------------

ptr = st.integers(min_value=1, max_value=2**32 - 1)
u32 = st.integers(min_value=0, max_value=2**32 - 1)


@pytest.mark.parametrize("psize", [4, 8])
@given(irp=ptr, fo=ptr, disk=st.integers(0, 64), flags=u32, size=u32,
       offset=st.integers(0, 2**62), tid=u32)
def test_diskio_rw_roundtrip(psize, irp, fo, disk, flags, size, offset, tid):
    for version, name in ((3, "DiskIo_RW_v3"), (2, "DiskIo_RW_v2")):
        values = dict(DiskNumber=disk, IrpFlags=flags, TransferSize=size, Reserved=0,
                      ByteOffset=offset, FileObject=fo, Irp=irp, HighResResponseTime=5,
                      IssuingThreadId=tid)
        payload = layout(name, psize).build(values)
        for opcode, major in ((10, 3), (11, 4), (55, 3), (56, 4)):
            (row,) = decode(1, opcode, payload, psize=psize, version=version)
            assert row["kind"] == "irp_complete"
            assert (row["irp"], row["file_object"], row["bytes"], row["offset"]) == \
                (irp, fo, size, offset)
            assert row["device"] == f"disk{disk}" and row["major"] == major
            assert row["irp_flags"] == flags & ~0x000E0000
            assert row["tid"] == (tid if version == 3 else None)


@pytest.mark.parametrize("psize", [4, 8])
def test_every_diskio_and_driver_opcode(psize):
    irp = 0x8123_4560 if psize == 4 else 0xFFFF_FA80_1234_5670
    b = lambda name, **v: layout(name, psize).build(v)  # noqa: E731
    cases = {
        12: (b("DiskIo_Init_v3", Irp=irp, IssuingThreadId=7), "DiskIo/ReadInit", "irp_dispatch", 3),
        13: (b("DiskIo_Init_v3", Irp=irp, IssuingThreadId=7), "DiskIo/WriteInit", "irp_dispatch", 4),
        15: (b("DiskIo_Init_v3", Irp=irp, IssuingThreadId=7), "DiskIo/FlushInit", "irp_dispatch", 9),
        14: (b("DiskIo_Flush_v3", DiskNumber=2, IrpFlags=0x60003, HighResResponseTime=9, Irp=irp,
               IssuingThreadId=7), "DiskIo/FlushBuffers", "irp_complete", 9),
        16: (b("DiskIo_RedirectedInit", Irp=irp, FileKey=5), "DiskIo/IoRedirectedInit",
             "irp_dispatch", None),
        34: (b("DrvMjFnCall", MajorFunction=0x0E, MinorFunction=1, RoutineAddr=3, FileObject=4,
               Irp=irp, UniqMatchId=9), "DiskIo/DrvMjFnCall", "irp_dispatch", 0x0E),
        35: (b("DrvIrpMatch", Irp=irp, UniqMatchId=9), "DiskIo/DrvMjFnRet", "other", None),
        37: (b("DrvRoutineIrp", Routine=3, Irp=irp, UniqMatchId=9), "DiskIo/DrvComplRout",
             "other", None),
        52: (b("DrvRoutineIrp", Routine=3, Irp=irp, UniqMatchId=9), "DiskIo/DrvComplReq",
             "irp_complete", None),
        53: (b("DrvIrpMatch", Irp=irp, UniqMatchId=9), "DiskIo/DrvComplReqRet", "other", None),
    }
    for opcode, (payload, name, kind, major) in cases.items():
        (row,) = decode(1, opcode, payload, psize=psize)
        assert (row["event_name"], row["kind"], row["irp"]) == (name, kind, irp), opcode
        assert row.get("major") == major, opcode
    (flush,) = decode(1, 14, cases[14][0], psize=psize)
    assert flush["device"] == "disk2" and flush["irp_flags"] == 0x3


FILEIO_VALUES = dict(IrpPtr=0x1000, TTID=77, FileObject=0x2000, FileKey=0x3000, Offset=4096,
                     IoSize=512, IoFlags=0x60A00, ExtraInfo=12, InfoClass=4, CreateOptions=1,
                     FileAttributes=2, ShareAccess=3, OpenPath="C:\\x.txt", Length=10,
                     FileIndex=0, FileName="*")


@pytest.mark.parametrize("psize", [4, 8])
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("opcode,base,op_major", [
    (64, "FileIo_Create", 0x00), (65, "FileIo_Simple", 0x12), (66, "FileIo_Simple", 0x02),
    (73, "FileIo_Simple", 0x09), (67, "FileIo_RW", 0x03), (68, "FileIo_RW", 0x04),
    (69, "FileIo_Info", 0x06), (74, "FileIo_Info", 0x05), (75, "FileIo_Info", 0x0D),
    (72, "FileIo_DirEnum", 0x0C), (77, "FileIo_DirEnum", 0x0C)])
def test_fileio_v2_and_v3_layouts_give_the_same_row(psize, version, opcode, base, op_major):
    struct_ = layout(f"{base}_v{version}", psize)
    payload = build_fields(struct_, FILEIO_VALUES)
    (row,) = decode(4, opcode, payload, psize=psize, version=version, header_kind="system")
    expect = dict(kind="irp_dispatch", irp=0x1000, file_object=0x2000, tid=77, major=op_major)
    if base == "FileIo_RW":                    # IoFlags without the priority bits
        expect.update(bytes=512, offset=4096, irp_flags=0xA00)
    assert {k: row[k] for k in expect} == expect and row["event_name"].startswith("FileIo/")


@pytest.mark.parametrize("psize", [4, 8])
def test_fileio_opend_carries_status(psize):
    payload = layout("FileIo_OpEnd", psize).build(dict(IrpPtr=0x1000, ExtraInfo=512,
                                                       NtStatus=0xC000009A))
    (row,) = decode(4, 76, payload, psize=psize, version=2)
    assert (row["kind"], row["irp"], row["status"], row["event_name"]) == \
        ("irp_complete", 0x1000, 0xC000009A, "FileIo/OpEnd")


@pytest.mark.parametrize("psize", [4, 8])
def test_splitio_and_hardfault(psize):
    (split,) = decode(0x1B, 32, layout("SplitIo_VolMgr", psize).build(
        dict(ParentIrp=0x10, ChildIrp=0x20)), psize=psize)
    assert (split["irp"], split["kind"], split["event_name"]) == (0x20, "other", "SplitIo/VolMgr")
    (hf,) = decode(2, 32, layout("PageFault_HardFault", psize).build(dict(
        InitialTime=1, ReadOffset=8192, VirtualAddress=0x7000, FileObject=0x30, TThreadId=5,
        ByteCount=4096)), psize=psize, version=2)
    assert (hf["kind"], hf["offset"], hf["file_object"], hf["tid"]) == \
        ("memory_pressure", 8192, 0x30, 5)


def test_short_payload_is_counted_and_warned_not_raised():
    c = ctx()
    rec = kernel_record(1, 10, b"\x00" * 20)
    assert D.KERNEL[(1, 10)](rec, c) == []
    assert c.diagnostics.counters["payload_too_short"] == 1
    assert "DiskIo/Read" in c.diagnostics.warnings[0] and "byte 4096" in c.diagnostics.warnings[0]


def test_fixed_prefix_compiled_from_the_construct_declaration():
    st64, names = fixed("DiskIo_RW_v3", 8)
    st32, _ = fixed("DiskIo_RW_v3", 4)
    assert (st64.size, st32.size) == (52, 44)          # etw-formats.md 2.2, verified sizes
    assert names[-1] == "IssuingThreadId"
    assert fixed("FileIo_Create_v3", 8)[1][-1] == "ShareAccess"   # the string tail is excluded


def test_unknown_version_takes_the_newest_layout_that_fits():
    payload = layout("FileIo_Simple_v3", 8).build(dict(IrpPtr=0x1000, FileObject=0x2000,
                                                        FileKey=0x3000, TTID=5))
    (row,) = decode(4, 66, payload, psize=8, version=1, header_kind="system")
    assert (row["irp"], row["file_object"], row["tid"]) == (0x1000, 0x2000, 5)
    assert decode(4, 66, payload[:10], psize=8, version=1, header_kind="system") == []


@given(st.binary(max_size=80), st.sampled_from([4, 8]), st.integers(0, 5))
def test_any_payload_decodes_or_is_counted_never_raises(payload, psize, version):
    for (group, opcode), dec in D.KERNEL.items():
        c = ctx()
        rows = dec(kernel_record(group, opcode, payload, psize=psize, version=version), c)
        assert rows or c.diagnostics.counters["payload_too_short"] == 1
    for (provider, event_id), dec in D.MANIFEST.items():
        rec = kernel_record(0, 0, payload, psize=psize, version=version,
                            header_kind="event_header")
        c = ctx()
        rows = dec(rec, c)
        assert rows or c.diagnostics.counters["payload_too_short"] == 1
