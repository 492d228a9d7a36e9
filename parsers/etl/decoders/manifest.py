"""Manifest-based (EVENT_HEADER) providers whose events carry IRPs or memory signals
(etw-formats.md 2.7). Layouts are written from the public field lists, keyed by (provider, Id).

Microsoft-Windows-Kernel-File events have the FileIo v3 shapes (Irp, FileObject, FileKey,
IssuingThreadId u32, ...); Microsoft-Windows-Kernel-Disk read/write/flush have the DiskIo v2
shapes, so they share the declarations in layouts.py with the kernel-logger events.
Microsoft-Windows-Kernel-Memory MemInfo becomes `memory_pressure` with `bytes` = available memory
(zero + free + standby pages); working-set out-swaps are `memory_pressure` without a size.
"""

from __future__ import annotations

import struct

from fpreplay.parsers.etl.decoders.common import PayloadDecoder, irp_flags, short_payload
from fpreplay.parsers.etl.decoders.kernel import FILEIO_OPS, fileio_fields, opend_fields
from fpreplay.schema import IRP_MJ_FLUSH_BUFFERS, IRP_MJ_READ, IRP_MJ_WRITE

KERNEL_FILE = "edd08927-9cc4-4e65-b970-c2560fb5c289"
KERNEL_DISK = "c7bde69a-e1e0-4177-b6ef-283ad1525271"
KERNEL_MEMORY = "d1d93ef7-e1f2-4f45-9943-03d245fe6c00"
PAGE_SIZE = 4096

# --- Microsoft-Windows-Kernel-File ------------------------------------------------------------
# id -> FileIo operation. The payloads are FileIo's v3 ones (layout family and trailing string
# as kernel.FILEIO_OPS says for that operation, same fields -> row mapping); only ids differ.
KERNEL_FILE_OPS = {
    12: "Create", 30: "CreateNew", 13: "Cleanup", 14: "Close", 21: "Flush", 15: "Read",
    16: "Write", 17: "SetInfo", 18: "Delete", 19: "Rename", 29: "Rename", 22: "QueryInfo",
    23: "FSControl", 20: "DirEnum", 25: "DirNotify",
}
_FILEIO_SHAPE = {op: (base, tail) for op, base, tail in FILEIO_OPS.values()}
# The manifest's names for the operations where they differ from FileIo's.
_KF_NAMES = {"SetInfo": "SetInformation", "QueryInfo": "QueryInformation", "FSControl": "FSCTL",
             "CreateNew": "CreateNewFile"}

KERNEL_FILE_DECODERS = {
    id_: PayloadDecoder(f"Kernel-File/{_KF_NAMES.get(op, op)}", "irp_dispatch",
                        {0: f"{_FILEIO_SHAPE[op][0]}_v3"}, fileio_fields(op),
                        tail=_FILEIO_SHAPE[op][1])
    for id_, op in KERNEL_FILE_OPS.items()
}
KERNEL_FILE_DECODERS[24] = PayloadDecoder(
    "Kernel-File/OperationEnd", "irp_complete", {0: "FileIo_OpEnd"}, opend_fields)

# --- Microsoft-Windows-Kernel-Disk ------------------------------------------------------------


def _kd_rw(major):
    def fields(v, rec):
        return {"irp": v["Irp"], "device": f"disk{v['DiskNumber']}", "major": major,
                "irp_flags": irp_flags(v["IrpFlags"]), "bytes": v["TransferSize"],
                "offset": v["ByteOffset"] if v["ByteOffset"] >= 0 else None,
                "file_object": v["FileObject"]}
    return fields


KERNEL_DISK_DECODERS = {
    10: PayloadDecoder("Kernel-Disk/DiskRead", "irp_complete", {0: "DiskIo_RW_v2"},
                       _kd_rw(IRP_MJ_READ)),
    11: PayloadDecoder("Kernel-Disk/DiskWrite", "irp_complete", {0: "DiskIo_RW_v2"},
                       _kd_rw(IRP_MJ_WRITE)),
    14: PayloadDecoder("Kernel-Disk/DiskFlush", "irp_complete", {0: "DiskIo_Flush_v2"},
                       lambda v, rec: {"irp": v["Irp"], "device": f"disk{v['DiskNumber']}",
                                       "major": IRP_MJ_FLUSH_BUFFERS,
                                       "irp_flags": irp_flags(v["IrpFlags"])}),
}

# --- Microsoft-Windows-Kernel-Memory ----------------------------------------------------------


def meminfo(record, ctx) -> list[dict]:
    """MemInfo v1: PriorityLevels u8, then pointer-sized page counts: zero, free, modified,
    modified-no-write, bad, standby[PriorityLevels], ... Available = zero + free + standby."""
    p = record.pointer_size
    data = record.payload
    if len(data) < 1:
        return short_payload(record, ctx, "Kernel-Memory/MemInfo", 1 + 5 * p)
    levels = data[0]
    need = 1 + (5 + levels) * p
    if len(data) < need:
        return short_payload(record, ctx, "Kernel-Memory/MemInfo", need)
    counts = struct.unpack_from("<" + ("Q" if p == 8 else "I") * (5 + levels), data, 1)
    zero, free = counts[0], counts[1]
    standby = sum(counts[5:5 + levels])
    return [{"kind": "memory_pressure", "event_name": "Kernel-Memory/MemInfo",
             "bytes": (zero + free + standby) * PAGE_SIZE}]


def _swap(name):
    def decode(record, ctx):
        return [{"kind": "memory_pressure", "event_name": f"Kernel-Memory/{name}"}]
    return decode


KERNEL_MEMORY_DECODERS = {1: meminfo, 4: _swap("WorkingSetOutSwapStart"),
                          5: _swap("WorkingSetOutSwapStop")}


def register(manifest: dict) -> None:
    for provider, table in ((KERNEL_FILE, KERNEL_FILE_DECODERS),
                            (KERNEL_DISK, KERNEL_DISK_DECODERS),
                            (KERNEL_MEMORY, KERNEL_MEMORY_DECODERS)):
        for id_, decoder in table.items():
            manifest[(provider, id_)] = decoder
