"""Kernel DiskIo / FileIo / PageFault events as text tools print them -> event-table rows.

tracerpt (CSV: positional payload; XML: named Data) and `xperf -a dumper` (its own column names)
all reduce an event to (class, opcode, fields by MOF name) and call `kernel_row`. Payload field
orders are etw-formats.md sections 2.2-2.6; kinds are contract section 3.
"""

from __future__ import annotations

from fpreplay.parsers.text.common import mask_priority, parse_int
from fpreplay.parsers.wpp.symbols import parse_status
from fpreplay.schema import IRP_MJ_CREATE, IRP_MJ_FILE_SYSTEM_CONTROL, IRP_MJ_FLUSH_BUFFERS, IRP_MJ_READ, IRP_MJ_WRITE

DISKIO_GUID = "3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c"
FILEIO_GUID = "90cbdc39-4a3e-11d1-84f4-0000f80464e3"
PAGEFAULT_GUID = "3d6fa8d3-fe05-11d0-9dda-00c04fd7ba7c"
CLASS_BY_GUID = {DISKIO_GUID: "DiskIo", FILEIO_GUID: "FileIo", PAGEFAULT_GUID: "PageFault"}

OPCODE_NAMES: dict[str, dict[int, str]] = {
    "DiskIo": {10: "Read", 11: "Write", 12: "ReadInit", 13: "WriteInit", 14: "FlushBuffers",
               15: "FlushInit", 34: "DrvMjFnCall", 35: "DrvMjFnRet", 37: "DrvComplRout",
               52: "DrvComplReq", 53: "DrvComplReqRet", 55: "OpticalRead", 56: "OpticalWrite",
               57: "OpticalFlushBuffers", 58: "OpticalReadInit", 59: "OpticalWriteInit",
               60: "OpticalFlushInit"},
    "FileIo": {0: "Name", 32: "FileCreate", 35: "FileDelete", 36: "FileRundown", 64: "Create",
               65: "Cleanup", 66: "Close", 67: "Read", 68: "Write", 69: "SetInfo", 70: "Delete",
               71: "Rename", 72: "DirEnum", 73: "Flush", 74: "QueryInfo", 75: "FSControl",
               76: "OpEnd", 77: "DirNotify"},
    "PageFault": {32: "HardFault"},
}
OPCODE_BY_NAME = {cls: {name.lower(): op for op, name in ops.items()} for cls, ops in OPCODE_NAMES.items()}
OPCODE_BY_NAME["FileIo"]["operationend"] = 76

_V3 = 3
_P = ["DiskNumber", "IrpFlags", "TransferSize", "Reserved", "ByteOffset", "FileObject", "Irp",
      "HighResResponseTime"]
_FLUSH = ["DiskNumber", "IrpFlags", "HighResResponseTime", "Irp"]
_SIMPLE_V2 = ["IrpPtr", "TTID", "FileObject", "FileKey"]
_SIMPLE_V3 = ["IrpPtr", "FileObject", "FileKey", "TTID"]
_INFO_V2 = ["IrpPtr", "TTID", "FileObject", "FileKey", "ExtraInfo", "InfoClass"]
_INFO_V3 = ["IrpPtr", "FileObject", "FileKey", "ExtraInfo", "TTID", "InfoClass"]
_DIR_V2 = ["IrpPtr", "TTID", "FileObject", "FileKey", "Length", "InfoClass", "FileIndex", "FileName"]
_DIR_V3 = ["IrpPtr", "FileObject", "FileKey", "TTID", "Length", "InfoClass", "FileIndex", "FileName"]

# (class, opcode) -> (fields before v3, fields from v3) in payload order (tracerpt CSV).
PAYLOAD_FIELDS: dict[tuple[str, int], tuple[list[str], list[str]]] = {}
for _op in (10, 11, 55, 56):
    PAYLOAD_FIELDS[("DiskIo", _op)] = (_P, _P + ["IssuingThreadId"])
for _op in (12, 13, 15, 58, 59, 60):
    PAYLOAD_FIELDS[("DiskIo", _op)] = (["Irp"], ["Irp", "IssuingThreadId"])
for _op in (14, 57):
    PAYLOAD_FIELDS[("DiskIo", _op)] = (_FLUSH, _FLUSH + ["IssuingThreadId"])
PAYLOAD_FIELDS[("DiskIo", 34)] = (["MajorFunction", "MinorFunction", "RoutineAddr", "FileObject", "Irp",
                                   "UniqMatchId"],) * 2
for _op in (35, 53):
    PAYLOAD_FIELDS[("DiskIo", _op)] = (["Irp", "UniqMatchId"],) * 2
PAYLOAD_FIELDS[("DiskIo", 37)] = (["Routine", "IrpPtr", "UniqMatchId"],) * 2
PAYLOAD_FIELDS[("DiskIo", 52)] = (["RoutineAddr", "Irp", "UniqMatchId"],) * 2
PAYLOAD_FIELDS[("FileIo", 64)] = (["IrpPtr", "TTID", "FileObject", "CreateOptions", "FileAttributes",
                                   "ShareAccess", "OpenPath"],
                                  ["IrpPtr", "FileObject", "TTID", "CreateOptions", "FileAttributes",
                                   "ShareAccess", "OpenPath"])
for _op in (65, 66, 73):
    PAYLOAD_FIELDS[("FileIo", _op)] = (_SIMPLE_V2, _SIMPLE_V3)
for _op in (67, 68):
    PAYLOAD_FIELDS[("FileIo", _op)] = (["Offset", "IrpPtr", "TTID", "FileObject", "FileKey", "IoSize", "IoFlags"],
                                       ["Offset", "IrpPtr", "FileObject", "FileKey", "TTID", "IoSize", "IoFlags",
                                        "ExtraFlags"])
for _op in (69, 70, 71, 74, 75):
    PAYLOAD_FIELDS[("FileIo", _op)] = (_INFO_V2, _INFO_V3)
for _op in (72, 77):
    PAYLOAD_FIELDS[("FileIo", _op)] = (_DIR_V2, _DIR_V3)
PAYLOAD_FIELDS[("FileIo", 76)] = (["IrpPtr", "ExtraInfo", "NtStatus"],) * 2
for _op in (0, 32, 35, 36):
    PAYLOAD_FIELDS[("FileIo", _op)] = (["FileObject", "FileName"],) * 2
PAYLOAD_FIELDS[("PageFault", 32)] = (["InitialTime", "ReadOffset", "VirtualAddress", "FileObject",
                                      "TThreadId", "ByteCount"],) * 2


def payload_names(cls: str, opcode: int, version: int, count: int) -> list[str] | None:
    """MOF field names of a positional payload; the field count breaks v2/v3 ties."""
    layouts = PAYLOAD_FIELDS.get((cls, opcode))
    if layouts is None:
        return None
    old, new = layouts
    for cand in ((new, old) if version >= _V3 else (old, new)):
        if len(cand) == count or (cand is new and count == len(cand) - 1 and cand[-1] == "ExtraFlags"):
            return cand[:count]
    return None


# The IRP major function each FileIo / DiskIo operation implies.
FILEIO_MAJOR = {64: IRP_MJ_CREATE, 65: 0x12, 66: 0x02, 67: IRP_MJ_READ, 68: IRP_MJ_WRITE, 69: 0x06,
                70: 0x06, 71: 0x06, 72: 0x0C, 73: IRP_MJ_FLUSH_BUFFERS, 74: 0x05,
                75: IRP_MJ_FILE_SYSTEM_CONTROL, 77: 0x0C}
DISKIO_MAJOR = {10: IRP_MJ_READ, 12: IRP_MJ_READ, 55: IRP_MJ_READ, 58: IRP_MJ_READ,
                11: IRP_MJ_WRITE, 13: IRP_MJ_WRITE, 56: IRP_MJ_WRITE, 59: IRP_MJ_WRITE,
                14: IRP_MJ_FLUSH_BUFFERS, 15: IRP_MJ_FLUSH_BUFFERS, 57: IRP_MJ_FLUSH_BUFFERS,
                60: IRP_MJ_FLUSH_BUFFERS}
DISK_COMPLETIONS = {10, 11, 14, 55, 56, 57}
DISK_INITS = {12, 13, 15, 58, 59, 60}

_IRP = ("Irp", "IrpPtr")
_BYTES = ("TransferSize", "IoSize", "ByteCount")
_OFFSET = ("ByteOffset", "Offset", "ReadOffset")
_TID = ("IssuingThreadId", "TTID", "TThreadId")


def _first(f: dict, names) -> int | None:
    for n in names:
        v = f.get(n)
        if v is not None:
            if isinstance(v, str):
                v = parse_int(v)
                if v is None:
                    continue
            return v
    return None


def kernel_row(cls: str, opcode: int, f: dict) -> dict:
    """Event-table columns for one kernel event; `f` maps MOF field names to text or ints.

    Always returns a row; kind `other` for events that are not IRP/memory relevant."""
    name = OPCODE_NAMES.get(cls, {}).get(opcode, str(opcode))
    row: dict = {"event_name": f"{cls}/{name}", "kind": "other", "opcode": opcode}
    irp = _first(f, _IRP)
    if irp is not None:
        row["irp"] = irp
    fo = _first(f, ("FileObject",))
    if fo is not None:
        row["file_object"] = fo
    tid = _first(f, _TID)
    if tid is not None and tid != 0xFFFFFFFF:
        row["tid"] = tid
    if cls == "DiskIo":
        major = DISKIO_MAJOR.get(opcode)
        if major is not None:
            row["major"] = major
        disk = _first(f, ("DiskNumber",))
        if disk is not None:
            row["device"] = f"disk{disk}"       # as the .etl decoder names a disk
        if opcode in DISK_INITS:
            row["kind"] = "irp_dispatch"
        elif opcode in DISK_COMPLETIONS:
            row["kind"] = "irp_complete"
            row["irp_flags"] = mask_priority(_first(f, ("IrpFlags",)))
            row["bytes"] = _first(f, _BYTES)
            row["offset"] = _first(f, _OFFSET)
        elif opcode == 34:
            row["kind"] = "irp_dispatch"
            row["major"] = _first(f, ("MajorFunction",))
            row["minor"] = _first(f, ("MinorFunction",))
        elif opcode == 52:
            row["kind"] = "irp_complete"
    elif cls == "FileIo":
        if opcode in FILEIO_MAJOR:
            row["kind"] = "irp_dispatch"
            row["major"] = FILEIO_MAJOR[opcode]
            if opcode in (67, 68):
                row["bytes"] = _first(f, _BYTES)
                row["offset"] = _first(f, _OFFSET)
                row["irp_flags"] = mask_priority(_first(f, ("IoFlags", "IrpFlags")))
        elif opcode == 76:
            row["kind"] = "irp_complete"
            st = f.get("NtStatus")
            row["status"] = parse_status(st) if isinstance(st, str) else st
    elif cls == "PageFault" and opcode == 32:
        # a hard fault is the memory manager paging in: low-memory evidence (contract section 3)
        row["kind"] = "memory_pressure"
        row["offset"] = _first(f, _OFFSET)
    return row
