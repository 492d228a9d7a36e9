"""Manifest providers (Kernel-File, Kernel-Disk, Kernel-Memory) and WPP messages through TMF
files: payloads built from the documented layouts, decoded through the registries."""

from __future__ import annotations

import struct
import uuid

import pytest

from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.etl import decoders as D
from fpreplay.parsers.etl.decoders import manifest as M
from fpreplay.parsers.etl.decoders.layouts import layout
from fpreplay.parsers.etl.record import EtlRecord

from conftest import build_fields, kmdf_tmf


def manifest_record(provider: str, event_id: int, payload: bytes, psize: int = 8,
                    version: int = 1) -> EtlRecord:
    return EtlRecord(header_kind="event_header", header_type=0x13 if psize == 8 else 0x12,
                     pointer_size=psize, ts_raw=0, ts_ns=1, cpu=0, pid=4, tid=8,
                     provider=uuid.UUID(provider), group=None, opcode=0, event_id=event_id,
                     version=version, level=4, task=0, keyword=0, flags=0, ext=None,
                     payload=payload, file_offset=64)


def run(provider, event_id, payload, psize=8):
    ctx = D.DecodeContext(source="m.etl", diagnostics=Diagnostics())
    rows = D.MANIFEST[(provider, event_id)](manifest_record(provider, event_id, payload, psize),
                                           ctx)
    return rows, ctx


KF = dict(IrpPtr=0xA000, FileObject=0xB000, FileKey=0xC000, TTID=99, Offset=65536,
          IoSize=8192, IoFlags=0x43, ExtraInfo=0, InfoClass=4, CreateOptions=1,
          FileAttributes=0, ShareAccess=7, OpenPath="\\Device\\X", Length=0, FileIndex=0,
          FileName="*")


@pytest.mark.parametrize("psize", [4, 8])
@pytest.mark.parametrize("event_id,base,major,name", [
    (12, "FileIo_Create", 0x00, "Kernel-File/Create"), (13, "FileIo_Simple", 0x12, "Kernel-File/Cleanup"),
    (14, "FileIo_Simple", 0x02, "Kernel-File/Close"), (15, "FileIo_RW", 0x03, "Kernel-File/Read"),
    (16, "FileIo_RW", 0x04, "Kernel-File/Write"), (21, "FileIo_Simple", 0x09, "Kernel-File/Flush"),
    (22, "FileIo_Info", 0x05, "Kernel-File/QueryInformation"),
    (20, "FileIo_DirEnum", 0x0C, "Kernel-File/DirEnum"),
])
def test_kernel_file_operations(psize, event_id, base, major, name):
    s = layout(f"{base}_v3", psize)
    payload = build_fields(s, KF)
    if base == "FileIo_RW":
        payload += struct.pack("<I", 0)          # v1 adds ExtraFlags: ignored, still decodes
    (row,), _ = run(M.KERNEL_FILE, event_id, payload, psize)
    expect = dict(kind="irp_dispatch", event_name=name, irp=0xA000, major=major,
                  file_object=0xB000, tid=99)
    if base == "FileIo_RW":
        expect.update(bytes=8192, offset=65536, irp_flags=0x43)
    assert {k: row[k] for k in expect} == expect


@pytest.mark.parametrize("psize", [4, 8])
def test_kernel_file_operation_end_status(psize):
    payload = layout("FileIo_OpEnd", psize).build(dict(IrpPtr=0xA000, ExtraInfo=0,
                                                       NtStatus=0xC0000120))
    (row,), _ = run(M.KERNEL_FILE, 24, payload, psize)
    assert (row["kind"], row["irp"], row["status"]) == ("irp_complete", 0xA000, 0xC0000120)


@pytest.mark.parametrize("psize", [4, 8])
def test_kernel_disk_read_write_flush(psize):
    rw = layout("DiskIo_RW_v2", psize).build(dict(
        DiskNumber=1, IrpFlags=0x20043, TransferSize=4096, Reserved=0, ByteOffset=512,
        FileObject=0xF0, Irp=0xE0, HighResResponseTime=100))
    (read,), _ = run(M.KERNEL_DISK, 10, rw, psize)
    (write,), _ = run(M.KERNEL_DISK, 11, rw, psize)
    assert (read["kind"], read["device"], read["major"], read["irp"], read["irp_flags"]) == \
        ("irp_complete", "disk1", 3, 0xE0, 0x43)
    assert write["major"] == 4 and write["bytes"] == 4096 and write["offset"] == 512
    fl = layout("DiskIo_Flush_v2", psize).build(dict(DiskNumber=1, IrpFlags=0,
                                                     HighResResponseTime=1, Irp=0xE8))
    (flush,), _ = run(M.KERNEL_DISK, 14, fl, psize)
    assert (flush["major"], flush["irp"], flush["device"]) == (9, 0xE8, "disk1")


@pytest.mark.parametrize("psize", [4, 8])
def test_kernel_memory_meminfo_is_available_memory(psize):
    fmt = "<B" + ("Q" if psize == 8 else "I") * 9
    # 2 standby priorities; zero 10, free 20, modified 5, mod-no-write 1, bad 0, standby 30+40,
    # repurposed 0, 0
    payload = struct.pack(fmt, 2, 10, 20, 5, 1, 0, 30, 40, 0, 0)
    (row,), _ = run(M.KERNEL_MEMORY, 1, payload, psize)
    assert row["kind"] == "memory_pressure" and row["bytes"] == (10 + 20 + 30 + 40) * 4096
    rows, ctx = run(M.KERNEL_MEMORY, 1, payload[:8], psize)
    assert rows == [] and ctx.diagnostics.counters["payload_too_short"] == 1


# --- WPP through TMF --------------------------------------------------------------------------

KMDF_GUID = "8a1d2c3b-0000-4000-8000-00000000f00d"
KMDF_TMF = kmdf_tmf(KMDF_GUID)


def wpp_record(guid: str, number: int, args: bytes) -> EtlRecord:
    return EtlRecord(header_kind="wpp", header_type=0x90, pointer_size=8, ts_raw=0, ts_ns=1,
                     cpu=0, pid=4, tid=8, provider=uuid.UUID(guid), group=None, opcode=0,
                     event_id=number, version=0, level=None, task=None, keyword=None, flags=0x2B,
                     ext=None, payload=args, file_offset=72)


def test_wpp_real_tmf_formats_a_non_framework_message(real):
    tmf_dir = real("text/wpp_tmf")
    ctx = D.DecodeContext(source="w.etl", diagnostics=Diagnostics(), tmf_dirs=[tmf_dir])
    args = struct.pack("<i", 3) + b"core-state\0" + struct.pack("<i", 0x50C3)
    (row,) = D.WPP(wpp_record("5bf6e80b-6122-3dde-7c2d-419eb7880414", 10, args), ctx)
    assert (row["kind"], row["event_name"]) == ("other", "WPP/main")


def test_wpp_kmdf_framework_messages_become_kinds(tmp_path):
    (tmp_path / f"{KMDF_GUID}.tmf").write_text(KMDF_TMF)
    ctx = D.DecodeContext(source="w.etl", diagnostics=Diagnostics(), tmf_dirs=[tmp_path])
    dispatch = struct.pack("<QQ", 0x7FF0, 0xFFFFFA80DEAD0000) + b"IRP_MJ_READ\0" + \
        struct.pack("<iQ", 0, 0xFFFFFA8000C0FFEE)
    (d,) = D.WPP(wpp_record(KMDF_GUID, 11, dispatch), ctx)
    assert (d["kind"], d["irp"], d["major"], d["event_name"]) == \
        ("irp_dispatch", 0xFFFFFA8000C0FFEE, 3, "IFR/Dispatch")
    (f,) = D.WPP(wpp_record(KMDF_GUID, 12, struct.pack("<I", 0xC000009A)), ctx)
    assert (f["kind"], f["status"], f["irp"]) == \
        ("request_alloc_failed", 0xC000009A, 0xFFFFFA8000C0FFEE)   # IRP of the dispatch line


def test_wpp_without_tmf_is_counted_and_warned():
    ctx = D.DecodeContext(source="w.etl", diagnostics=Diagnostics())
    assert D.WPP(wpp_record(KMDF_GUID, 12, b"\0\0\0\0"), ctx) == []
    assert D.WPP(wpp_record(KMDF_GUID, 12, b"\0\0\0\0"), ctx) == []
    assert ctx.diagnostics.counters["wpp_unformatted"] == 2
    assert len(ctx.diagnostics.warnings) == 1 and "--tmf" in ctx.diagnostics.warnings[0]


def test_wpp_failure_line_takes_the_dispatch_of_its_own_thread(tmp_path):
    (tmp_path / f"{KMDF_GUID}.tmf").write_text(KMDF_TMF)
    ctx = D.DecodeContext(source="w.etl", diagnostics=Diagnostics(), tmf_dirs=[tmp_path])

    def on_thread(rec, tid):
        rec.tid = tid
        return rec
    dispatch = lambda irp: struct.pack("<QQ", 0x7FF0, 0xD0) + b"IRP_MJ_READ\0" + \
        struct.pack("<iQ", 0, irp)  # noqa: E731
    D.WPP(on_thread(wpp_record(KMDF_GUID, 11, dispatch(0xA1)), 1), ctx)
    D.WPP(on_thread(wpp_record(KMDF_GUID, 11, dispatch(0xB2)), 2), ctx)   # another CPU's buffer
    (f,) = D.WPP(on_thread(wpp_record(KMDF_GUID, 12, struct.pack("<I", 0xC000009A)), 1), ctx)
    assert (f["kind"], f["irp"]) == ("request_alloc_failed", 0xA1)
