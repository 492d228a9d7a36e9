"""Kernel DiskIo / FileIo / PageFault events as text tools print them -> event-table rows.

tracerpt (CSV: positional payload; XML: named Data) and `xperf -a dumper` (its own column names)
all reduce an event to (class, opcode, fields by MOF name) and call `kernel_row`. Payload field
orders are etw-formats.md sections 2.2-2.6. Event names, kinds, class GUIDs and the major
function a FileIo operation implies come from the .etl decoders' tables
(fpreplay.parsers.etl.decoders.kernel, fpreplay.parsers.etl.reader.KERNEL_GROUPS), so a text
export and the .etl it came from give the same rows.
"""

from __future__ import annotations

from fpreplay.parsers.etl.decoders.kernel import DISKIO, FILEIO, FILEIO_OPS, IRP_MJ, PAGEFAULT
from fpreplay.parsers.etl.decoders.manifest import (KERNEL_DISK, KERNEL_DISK_DECODERS, KERNEL_FILE,
                                                    KERNEL_FILE_DECODERS, KERNEL_FILE_OPS)
from fpreplay.parsers.etl.reader import KERNEL_GROUPS
from fpreplay.parsers.text.common import mask_priority, parse_int
from fpreplay.parsers.wpp.symbols import parse_status
from fpreplay.schema import IRP_MJ_FLUSH_BUFFERS, IRP_MJ_READ, IRP_MJ_WRITE

# Event names and kinds are the .etl decoders' (one table for binary and text); only the way
# fields are found differs: text gives them by name (XML, xperf headers) or position (CSV).
DECODERS = {"DiskIo": DISKIO, "FileIo": FILEIO, "PageFault": PAGEFAULT}
CLASS_BY_GUID = {guid: name for name, guid in KERNEL_GROUPS.values() if name in DECODERS}
OPCODE_NAMES: dict[str, dict[int, str]] = {
    cls: {op: dec.event_name.split("/", 1)[1] for op, dec in table.items()}
    for cls, table in DECODERS.items()}
OPCODE_NAMES["FileIo"].update({0: "Name", 32: "FileCreate", 35: "FileDelete", 36: "FileRundown"})
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


# The IRP major function each FileIo operation implies (the decoders' table), and DiskIo's by
# the same rule the decoders use (Read* -> READ, Write* -> WRITE, Flush* -> FLUSH_BUFFERS).
FILEIO_MAJOR = {op: IRP_MJ[name] for op, (name, _, _) in FILEIO_OPS.items()}
DISKIO_MAJOR = {op: (IRP_MJ_READ if "Read" in name else IRP_MJ_WRITE if "Write" in name
                     else IRP_MJ_FLUSH_BUFFERS)
                for op, name in OPCODE_NAMES["DiskIo"].items() if name.endswith(("Read", "Write",
                "FlushBuffers", "ReadInit", "WriteInit", "FlushInit"))}
DISK_COMPLETIONS = {op for op, dec in DISKIO.items() if dec.kind == "irp_complete" and op in DISKIO_MAJOR}
DISK_INITS = {op for op, dec in DISKIO.items() if dec.kind == "irp_dispatch" and op in DISKIO_MAJOR}

_IRP = ("Irp", "IrpPtr", "IORequestPacket")
_BYTES = ("TransferSize", "IoSize", "IOSize", "ByteCount")
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
    dec = DECODERS.get(cls, {}).get(opcode)
    name = dec.event_name if dec else f"{cls}/{OPCODE_NAMES.get(cls, {}).get(opcode, opcode)}"
    kind = dec.kind if dec else "other"
    row: dict = {"event_name": name, "kind": kind, "opcode": opcode}
    irp = _first(f, _IRP)
    if irp is not None:
        row["irp"] = irp
    fo = _first(f, ("FileObject",))
    if fo:
        row["file_object"] = fo
    tid = _first(f, _TID)
    if tid is not None and tid != 0xFFFFFFFF:
        row["tid"] = tid
    if cls == "DiskIo":
        if opcode in DISKIO_MAJOR:
            row["major"] = DISKIO_MAJOR[opcode]
        disk = _first(f, ("DiskNumber",))
        if disk is not None:
            row["device"] = f"disk{disk}"       # as the .etl decoder names a disk
        if opcode in DISK_COMPLETIONS:
            row["irp_flags"] = mask_priority(_first(f, ("IrpFlags",)))
            row["bytes"] = _first(f, _BYTES)
            row["offset"] = _first(f, _OFFSET)
        elif opcode == 34:
            major, minor = _first(f, ("MajorFunction",)), _first(f, ("MinorFunction",))
            row["major"] = None if major is None else major & 0xFF
            row["minor"] = None if minor is None else minor & 0xFF
    elif cls == "FileIo":
        if opcode in FILEIO_MAJOR:
            row["major"] = FILEIO_MAJOR[opcode]
            if opcode in (67, 68):
                row["bytes"] = _first(f, _BYTES)
                row["offset"] = _first(f, _OFFSET)
                row["irp_flags"] = mask_priority(_first(f, ("IoFlags", "IOFlags", "IrpFlags")))
        elif opcode == 76:
            st = f.get("NtStatus", f.get("Status"))
            row["status"] = parse_status(st) if isinstance(st, str) else st
    elif cls == "PageFault" and kind == "memory_pressure":
        row["offset"] = _first(f, _OFFSET)
    return row


# --- manifest providers that repeat the kernel events (etw-formats.md 2.7) -------------------------
MANIFEST_PROVIDERS = {KERNEL_FILE: "Microsoft-Windows-Kernel-File", KERNEL_DISK: "Microsoft-Windows-Kernel-Disk"}
MANIFEST_BY_NAME = {name: guid for guid, name in MANIFEST_PROVIDERS.items()}
_KF = {"create": ["Irp", "FileObject", "IssuingThreadId", "CreateOptions", "CreateAttributes", "ShareAccess",
                  "FileName"],
       "simple": ["Irp", "FileObject", "FileKey", "IssuingThreadId"],
       "rw": ["ByteOffset", "Irp", "FileObject", "FileKey", "IssuingThreadId", "IOSize", "IOFlags", "ExtraFlags"],
       "info": ["Irp", "FileObject", "FileKey", "ExtraInformation", "IssuingThreadId", "InfoClass"],
       "dir": ["Irp", "FileObject", "FileKey", "IssuingThreadId", "Length", "InfoClass", "FileIndex", "FileName"]}
_KF_FAMILY = {"FileIo_Create": "create", "FileIo_Simple": "simple", "FileIo_RW": "rw", "FileIo_Info": "info",
              "FileIo_DirEnum": "dir"}
# (provider GUID, event id) -> payload field names in template order (tracerpt CSV)
MANIFEST_FIELDS: dict[tuple[str, int], list[str]] = {
    (KERNEL_FILE, id_): _KF[_KF_FAMILY[base]] for id_, (_, base, _) in KERNEL_FILE_OPS.items()}
MANIFEST_FIELDS[(KERNEL_FILE, 24)] = ["Irp", "ExtraInformation", "Status"]
MANIFEST_FIELDS[(KERNEL_DISK, 10)] = MANIFEST_FIELDS[(KERNEL_DISK, 11)] = [
    "DiskNumber", "IrpFlags", "TransferSize", "Reserved", "ByteOffset", "FileObject", "IORequestPacket",
    "HighResResponseTime"]
MANIFEST_FIELDS[(KERNEL_DISK, 14)] = ["DiskNumber", "IrpFlags", "HighResResponseTime", "IORequestPacket"]


def manifest_row(provider: str, event_id: int, f: dict) -> dict | None:
    """Kernel-File / Kernel-Disk events: the FileIo / DiskIo rows, under the decoders' names."""
    if provider == KERNEL_DISK and event_id in KERNEL_DISK_DECODERS:
        row = kernel_row("DiskIo", event_id, f)          # ids 10/11/14 are DiskIo's opcodes
        dec = KERNEL_DISK_DECODERS[event_id]
    elif provider == KERNEL_FILE and event_id in KERNEL_FILE_DECODERS:
        op = 76 if event_id == 24 else OPCODE_BY_NAME["FileIo"][KERNEL_FILE_OPS[event_id][0].lower()]
        row = kernel_row("FileIo", op, f)
        dec = KERNEL_FILE_DECODERS[event_id]
    else:
        return None
    row.update(event_name=dec.event_name, kind=dec.kind, opcode=None, event_id=event_id)
    return row
