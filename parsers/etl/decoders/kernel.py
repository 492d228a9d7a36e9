"""Kernel-logger events that carry IRPs: DiskIo (+ driver delay events), FileIo v2/v3, SplitIo,
PageFault/HardFault (etw-formats.md sections 2.2-2.6).

Kinds (contract section 3): Inits, DrvMjFnCall and FileIo operations are `irp_dispatch`;
Read/Write/FlushBuffers, DrvComplReq and FileIo OpEnd are `irp_complete`; the other driver delay
events (Ret, completion routine) are `other` rows that still carry the IRP; a HardFault is a
`memory_pressure` signal (a paging read someone waited for; storms of them mark low memory).

Device identity: DiskIo and Kernel-Disk completions name the disk as "disk<N>" (the DiskNumber);
Inits carry no disk number, so their rows have no device and the lifecycle takes the device
from the completion of the same IRP instance. Evidence from several sources merges on the IRP
address (plus time), never on the device: `device` is an attribute of an instance, filled by the
first event that knows it. FileIo has no device (it is the file-system IRP, a different IRP from
the disk's; etw-formats.md 2.9).

Major function: DiskIo Inits and completions carry none; it follows from the opcode
(Read* -> IRP_MJ_READ, Write* -> IRP_MJ_WRITE, Flush* -> IRP_MJ_FLUSH_BUFFERS), as it does for
FileIo operations. DrvMjFnCall carries the real one.
"""

from __future__ import annotations

import polars as pl

from fpreplay.parsers.etl.decoders.common import NOT_PRIORITY, PayloadDecoder, irp_flags
from fpreplay.schema import IRP_MJ_FLUSH_BUFFERS, IRP_MJ_READ, IRP_MJ_WRITE

GROUP_DISKIO = 0x01
GROUP_PAGEFAULT = 0x02
GROUP_FILEIO = 0x04
GROUP_SPLITIO = 0x1B


def _disk(n: int) -> str:
    return f"disk{n}"


# Each `*_columns` below is the `fields` function above it over polars columns (the reader's
# batch path); tests/parsers/test_etl_batch.py holds every pair to the same rows.
def _disk_column(n: pl.Expr) -> pl.Expr:
    return pl.lit("disk") + n.cast(pl.String)


def _flags_column(flags: pl.Expr) -> pl.Expr:
    return flags & NOT_PRIORITY


def _irp_only(name: str):
    return (lambda v, rec: {"irp": v[name]}), (lambda v: {"irp": v[name]})


# --- DiskIo -----------------------------------------------------------------------------------

def _rw_fields(major):
    def fields(v, rec):
        return {"irp": v["Irp"], "device": _disk(v["DiskNumber"]), "major": major,
                "irp_flags": irp_flags(v["IrpFlags"]), "bytes": v["TransferSize"],
                "offset": v["ByteOffset"] if v["ByteOffset"] >= 0 else None,
                "file_object": v["FileObject"], "tid": v.get("IssuingThreadId")}
    return fields


def _rw_columns(major):
    def columns(v):
        offset = v["ByteOffset"]
        return {"irp": v["Irp"], "device": _disk_column(v["DiskNumber"]), "major": major,
                "irp_flags": _flags_column(v["IrpFlags"]), "bytes": v["TransferSize"],
                "offset": pl.when(offset >= 0).then(offset), "file_object": v["FileObject"],
                "tid": v.get("IssuingThreadId")}
    return columns


def _flush_fields(v, rec):
    return {"irp": v["Irp"], "device": _disk(v["DiskNumber"]), "major": IRP_MJ_FLUSH_BUFFERS,
            "irp_flags": irp_flags(v["IrpFlags"]), "tid": v.get("IssuingThreadId")}


def _flush_columns(v):
    return {"irp": v["Irp"], "device": _disk_column(v["DiskNumber"]),
            "major": IRP_MJ_FLUSH_BUFFERS, "irp_flags": _flags_column(v["IrpFlags"]),
            "tid": v.get("IssuingThreadId")}


def _init_fields(major):
    def fields(v, rec):
        # The SYSTEM header already holds the issuing thread; the walker fills tid/pid from it.
        return {"irp": v["Irp"], "major": major}
    return fields


def _init_columns(major):
    return lambda v: {"irp": v["Irp"], "major": major}


def _drv_call_fields(v, rec):
    return {"irp": v["Irp"], "major": v["MajorFunction"] & 0xFF,
            "minor": v["MinorFunction"] & 0xFF, "file_object": v["FileObject"] or None}


def _drv_call_columns(v):
    fo = v["FileObject"]
    return {"irp": v["Irp"], "major": v["MajorFunction"] & 0xFF,
            "minor": v["MinorFunction"] & 0xFF, "file_object": pl.when(fo != 0).then(fo)}


def _redirected_fields(v, rec):
    return {"irp": v["Irp"], "file_object": v["FileKey"]}


def _redirected_columns(v):
    return {"irp": v["Irp"], "file_object": v["FileKey"]}


_IRP = _irp_only("Irp")


def _diskio(name, kind, layouts, fields_columns):
    fields, columns = fields_columns
    return PayloadDecoder(name, kind, layouts, fields, columns=columns)


DISKIO_RW = {2: "DiskIo_RW_v2", 3: "DiskIo_RW_v3"}
DISKIO_INIT = {2: "DiskIo_Init_v2", 3: "DiskIo_Init_v3"}
DISKIO_FLUSH = {2: "DiskIo_Flush_v2", 3: "DiskIo_Flush_v3"}


def _rw(name: str, major: int) -> PayloadDecoder:
    """A completed read or write: disk, size, offset; the major follows from the opcode."""
    return _diskio(f"DiskIo/{name}", "irp_complete", DISKIO_RW,
                   (_rw_fields(major), _rw_columns(major)))


def _init(name: str, major: int) -> PayloadDecoder:
    """An Init (the IRP sent down): only the IRP; the major follows from the opcode."""
    return _diskio(f"DiskIo/{name}", "irp_dispatch", DISKIO_INIT,
                   (_init_fields(major), _init_columns(major)))


def _flush(name: str) -> PayloadDecoder:
    return _diskio(f"DiskIo/{name}", "irp_complete", DISKIO_FLUSH,
                   (_flush_fields, _flush_columns))


# opcode -> decoder
DISKIO: dict[int, PayloadDecoder] = {
    10: _rw("Read", IRP_MJ_READ), 11: _rw("Write", IRP_MJ_WRITE),
    12: _init("ReadInit", IRP_MJ_READ), 13: _init("WriteInit", IRP_MJ_WRITE),
    14: _flush("FlushBuffers"), 15: _init("FlushInit", IRP_MJ_FLUSH_BUFFERS),
    16: _diskio("DiskIo/IoRedirectedInit", "irp_dispatch", {0: "DiskIo_RedirectedInit"},
                (_redirected_fields, _redirected_columns)),
    55: _rw("OpticalRead", IRP_MJ_READ), 56: _rw("OpticalWrite", IRP_MJ_WRITE),
    57: _flush("OpticalFlushBuffers"),
    58: _init("OpticalReadInit", IRP_MJ_READ), 59: _init("OpticalWriteInit", IRP_MJ_WRITE),
    60: _init("OpticalFlushInit", IRP_MJ_FLUSH_BUFFERS),
    # Driver delay events (flag DRIVER). Only DrvMjFnCall knows the major/minor function.
    34: _diskio("DiskIo/DrvMjFnCall", "irp_dispatch", {0: "DrvMjFnCall"},
                (_drv_call_fields, _drv_call_columns)),
    35: _diskio("DiskIo/DrvMjFnRet", "other", {0: "DrvIrpMatch"}, _IRP),
    37: _diskio("DiskIo/DrvComplRout", "other", {0: "DrvRoutineIrp"}, _IRP),
    52: _diskio("DiskIo/DrvComplReq", "irp_complete", {0: "DrvRoutineIrp"}, _IRP),
    53: _diskio("DiskIo/DrvComplReqRet", "other", {0: "DrvIrpMatch"}, _IRP),
}

# --- FileIo -----------------------------------------------------------------------------------
# The FileIo operation implies the IRP major function.
IRP_MJ = {"Create": 0x00, "Cleanup": 0x12, "Close": 0x02, "Read": 0x03, "Write": 0x04,
          "SetInfo": 0x06, "Delete": 0x06, "Rename": 0x06, "DirEnum": 0x0C, "Flush": 0x09,
          "QueryInfo": 0x05, "FSControl": 0x0D, "DirNotify": 0x0C, "CreateNew": 0x00}


def _fileio_row(op: str, flags):
    """The row of a FileIo operation from its fields (values or polars columns); `flags` maps
    IoFlags to irp_flags in the same form."""
    major = IRP_MJ[op]

    def row_of(v):
        row = {"irp": v["IrpPtr"], "major": major, "file_object": v["FileObject"],
               "tid": v["TTID"] & 0xFFFFFFFF}
        if "IoSize" in v:
            row["bytes"] = v["IoSize"]
            row["offset"] = v["Offset"]
            row["irp_flags"] = flags(v["IoFlags"])
        return row
    return row_of


def fileio_fields(op: str):
    row_of = _fileio_row(op, irp_flags)
    return lambda v, rec: row_of(v)


def _fileio_columns(op: str):
    return _fileio_row(op, _flags_column)


def opend_fields(v, rec):
    return {"irp": v["IrpPtr"], "status": v["NtStatus"]}


def _opend_columns(v):
    return {"irp": v["IrpPtr"], "status": v["NtStatus"]}


FILEIO_OPS = {
    64: ("Create", "FileIo_Create", "OpenPath"), 78: ("CreateNew", "FileIo_Create", "OpenPath"),
    65: ("Cleanup", "FileIo_Simple", None), 66: ("Close", "FileIo_Simple", None),
    73: ("Flush", "FileIo_Simple", None),
    67: ("Read", "FileIo_RW", None), 68: ("Write", "FileIo_RW", None),
    69: ("SetInfo", "FileIo_Info", None), 70: ("Delete", "FileIo_Info", None),
    71: ("Rename", "FileIo_Info", None), 74: ("QueryInfo", "FileIo_Info", None),
    75: ("FSControl", "FileIo_Info", None),
    72: ("DirEnum", "FileIo_DirEnum", "FileName"), 77: ("DirNotify", "FileIo_DirEnum", "FileName"),
}

FILEIO: dict[int, PayloadDecoder] = {
    opcode: PayloadDecoder(f"FileIo/{op}", "irp_dispatch",
                           {2: f"{base}_v2", 3: f"{base}_v3"}, fileio_fields(op), tail=tail,
                           columns=_fileio_columns(op))
    for opcode, (op, base, tail) in FILEIO_OPS.items()
}
FILEIO[76] = PayloadDecoder("FileIo/OpEnd", "irp_complete", {0: "FileIo_OpEnd"}, opend_fields,
                            columns=_opend_columns)

# --- SplitIo, PageFault -----------------------------------------------------------------------

SPLITIO = {
    # The child IRP is the one the disk layer sees (the event table has one IRP column; the
    # parent stays in the payload, which `--all` users can still read from the raw trace).
    32: _diskio("SplitIo/VolMgr", "other", {0: "SplitIo_VolMgr"}, _irp_only("ChildIrp")),
}

PAGEFAULT = {
    32: _diskio("PageFault/HardFault", "memory_pressure", {0: "PageFault_HardFault"},
                ((lambda v, rec: {"file_object": v["FileObject"], "offset": v["ReadOffset"],
                                  "tid": v["TThreadId"]}),
                 (lambda v: {"file_object": v["FileObject"], "offset": v["ReadOffset"],
                             "tid": v["TThreadId"]}))),
}


def register(kernel: dict) -> None:
    for group, table in ((GROUP_DISKIO, DISKIO), (GROUP_FILEIO, FILEIO),
                         (GROUP_SPLITIO, SPLITIO), (GROUP_PAGEFAULT, PAGEFAULT)):
        for opcode, decoder in table.items():
            kernel[(group, opcode)] = decoder
