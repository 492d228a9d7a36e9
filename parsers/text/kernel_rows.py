"""Kernel DiskIo / FileIo / PageFault events as text tools print them -> event-table rows.

tracerpt (CSV: positional payload; XML: named Data) and `xperf -a dumper` (its own column names)
all reduce an event to (class, opcode, fields by name) and call `kernel_row` (or `manifest_row`
for Microsoft-Windows-Kernel-File / -Kernel-Disk). Everything a binary decoder also knows comes
from the .etl decoders, so that a text export and the .etl it came from give the same rows:
event names and kinds (fpreplay.parsers.etl.decoders.kernel / .manifest), payload field orders
(the construct layouts in fpreplay.parsers.etl.decoders.layouts), class GUIDs
(fpreplay.parsers.etl.providers.KERNEL_GROUPS) and the major function a FileIo operation implies.
What is text-only lives here: the several names text tools give one field (MOF, manifest and
dumper spellings) and the tolerance of a trailing field the layouts do not declare.
"""

from __future__ import annotations

from functools import lru_cache

from fpreplay.parsers.etl.decoders.common import irp_flags
from fpreplay.parsers.etl.decoders.kernel import DISKIO, FILEIO, FILEIO_OPS, IRP_MJ, PAGEFAULT
from fpreplay.parsers.etl.decoders.layouts import layout
from fpreplay.parsers.etl.decoders.manifest import (KERNEL_DISK, KERNEL_DISK_DECODERS, KERNEL_FILE,
                                                    KERNEL_FILE_DECODERS, KERNEL_FILE_OPS)
from fpreplay.parsers.etl.providers import KERNEL_GROUPS
from fpreplay.parsers.text.common import parse_int
from fpreplay.parsers.wpp.symbols import parse_status
from fpreplay.schema import IRP_MJ_FLUSH_BUFFERS, IRP_MJ_READ, IRP_MJ_WRITE

DECODERS = {"DiskIo": DISKIO, "FileIo": FILEIO, "PageFault": PAGEFAULT}
CLASS_BY_GUID = {guid: name for name, guid in KERNEL_GROUPS.values() if name in DECODERS}
OPCODE_NAMES: dict[str, dict[int, str]] = {
    cls: {op: dec.event_name.split("/", 1)[1] for op, dec in table.items()}
    for cls, table in DECODERS.items()}
# FileIo name events: no IRP, so no decoder; named here for `other` rows.
_FILE_NAME_EVENTS = {0: "Name", 32: "FileCreate", 35: "FileDelete", 36: "FileRundown"}
OPCODE_NAMES["FileIo"].update(_FILE_NAME_EVENTS)
OPCODE_BY_NAME = {cls: {name.lower(): op for op, name in ops.items()}
                  for cls, ops in OPCODE_NAMES.items()}
OPCODE_BY_NAME["FileIo"]["operationend"] = 76

MANIFEST_PROVIDERS = {KERNEL_FILE: "Microsoft-Windows-Kernel-File",
                      KERNEL_DISK: "Microsoft-Windows-Kernel-Disk"}
MANIFEST_BY_NAME = {name: guid for guid, name in MANIFEST_PROVIDERS.items()}
MANIFEST_DECODERS = {KERNEL_FILE: KERNEL_FILE_DECODERS, KERNEL_DISK: KERNEL_DISK_DECODERS}

# The IRP major function each FileIo operation implies (the decoders' table), and DiskIo's by
# the decoders' rule (Read* -> READ, Write* -> WRITE, Flush* -> FLUSH_BUFFERS).
FILEIO_MAJOR = {op: IRP_MJ[name] for op, (name, _, _) in FILEIO_OPS.items()}
DISKIO_MAJOR = {op: IRP_MJ_READ if "Read" in name else IRP_MJ_WRITE if "Write" in name
                else IRP_MJ_FLUSH_BUFFERS
                for op, name in OPCODE_NAMES["DiskIo"].items()
                if name.endswith(("Read", "Write", "FlushBuffers", "Init"))
                and "Redirected" not in name}
DISK_COMPLETIONS = {op for op in DISKIO_MAJOR if DISKIO[op].kind == "irp_complete"}
DISK_INITS = {op for op in DISKIO_MAJOR if DISKIO[op].kind == "irp_dispatch"}

# One field, the names text tools give it (MOF, manifest, decoder layout spellings).
_IRP = ("Irp", "IrpPtr", "IORequestPacket")
_BYTES = ("TransferSize", "IoSize", "IOSize", "ByteCount")
_OFFSET = ("ByteOffset", "Offset", "ReadOffset")
_TID = ("IssuingThreadId", "TTID", "TThreadId")
_IO_FLAGS = ("IoFlags", "IOFlags", "IrpFlags")
_STATUS = ("NtStatus", "Status")


def _layout_names(name: str) -> list[str]:
    return [sc.name for sc in layout(name, 8).subcons]


@lru_cache(maxsize=None)
def _decoder_layouts(dec) -> list[tuple[int, list[str]]]:
    """(lowest version, field names) of each layout a decoder knows, newest first (once per
    decoder: tracerpt CSV asks for every row)."""
    return [(version, _layout_names(name)) for version, name in dec.versions]


def _pick(layouts: list[tuple[int, list[str]]], version: int, count: int) -> list[str] | None:
    """The layout whose field count fits, preferring those the version allows. One trailing
    field more than declared is tolerated (FileIo Read/Write's ExtraFlags on newer builds)."""
    allowed = [names for v, names in layouts if v <= version]
    others = [names for v, names in layouts if v > version]
    for names in allowed + others:
        if len(names) == count:
            return names
    for names in allowed + others:
        if len(names) + 1 == count:
            return names + ["ExtraFlags"]
    return None


def payload_names(cls: str, opcode: int, version: int, count: int) -> list[str] | None:
    """Field names of a positional payload (tracerpt CSV), or None if no layout fits."""
    if cls == "FileIo" and opcode in _FILE_NAME_EVENTS:
        return ["FileObject", "FileName"] if count == 2 else None
    dec = DECODERS.get(cls, {}).get(opcode)
    return _pick(_decoder_layouts(dec), version, count) if dec is not None else None


def known_payload(cls: str, opcode: int | None) -> bool:
    return opcode in DECODERS.get(cls, {}) or (cls == "FileIo" and opcode in _FILE_NAME_EVENTS)


def manifest_payload_names(provider: str, event_id: int, count: int) -> list[str] | None:
    """Field names of a Kernel-File / Kernel-Disk payload in template order (tracerpt CSV)."""
    dec = MANIFEST_DECODERS.get(provider, {}).get(event_id)
    return _pick(_decoder_layouts(dec), 99, count) if dec is not None else None


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
    """Event-table columns for one kernel event; `f` maps field names to text or ints.

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
            row["irp_flags"] = irp_flags(_first(f, ("IrpFlags",)))
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
                row["irp_flags"] = irp_flags(_first(f, _IO_FLAGS))
        elif opcode == 76:
            st = next((f[n] for n in _STATUS if f.get(n) not in (None, "")), None)
            row["status"] = parse_status(st) if isinstance(st, str) else st
    elif cls == "PageFault" and kind == "memory_pressure":
        row["offset"] = _first(f, _OFFSET)
    return row


def manifest_row(provider: str, event_id: int | None, f: dict) -> dict | None:
    """Kernel-File / Kernel-Disk events: the FileIo / DiskIo rows, under the decoders' names."""
    if provider == KERNEL_DISK and event_id in KERNEL_DISK_DECODERS:
        row = kernel_row("DiskIo", event_id, f)          # ids 10/11/14 are DiskIo's opcodes
        dec = KERNEL_DISK_DECODERS[event_id]
    elif provider == KERNEL_FILE and event_id in KERNEL_FILE_DECODERS:
        op = 76 if event_id == 24 else \
            OPCODE_BY_NAME["FileIo"][KERNEL_FILE_OPS[event_id].lower()]
        row = kernel_row("FileIo", op, f)
        dec = KERNEL_FILE_DECODERS[event_id]
    else:
        return None
    row.update(event_name=dec.event_name, kind=dec.kind, opcode=None, event_id=event_id)
    return row
