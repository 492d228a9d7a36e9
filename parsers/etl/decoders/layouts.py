"""Payload layouts of the IRP-bearing events, declared once as construct Structs.

One declaration serves both directions: the synthesizer builds payloads with
`layout(name, pointer_size).build({...})`, and the decoders read the fixed-size prefix of the same
declaration through a struct.Struct compiled from it (`fixed(name, pointer_size)`), because
construct's parse is ~50x too slow for a path that runs on every IRP event. A trailing
variable-length field (a NUL-terminated UTF-16 name) is read separately (`utf16z`).

Layouts follow ../shared/design/etw-formats.md section 2 (offsets verified on real x64/x86 files
where the document says so). "P" fields are pointers of the record's own width (4 or 8): every
layout exists in both widths. Field names are the ones Microsoft's MOF/manifests use.

    LAYOUT NAME             used by
    DiskIo_RW_v2/_v3        DiskIo 10/11 Read/Write (+ 55/56 optical); Kernel-Disk 10/11 (v2 shape)
    DiskIo_Init_v2/_v3      DiskIo 12/13/15 ReadInit/WriteInit/FlushInit (+ 58-60)
    DiskIo_Flush_v2/_v3     DiskIo 14 FlushBuffers (+ 57); Kernel-Disk 14 (v2 shape)
    DiskIo_RedirectedInit   DiskIo 16
    DrvMjFnCall             DiskIo 34 (driver delay events, packed)
    DrvIrpMatch             DiskIo 35 DrvMjFnRet, 53 DrvComplReqRet
    DrvRoutineIrp           DiskIo 37 DrvComplRout, 52 DrvComplReq
    FileIo_Create_v2/_v3    FileIo 64 Create, 78 CreateNew; Kernel-File 12/30 (v3 shape)
    FileIo_Simple_v2/_v3    FileIo 65/66/73 Cleanup/Close/Flush; Kernel-File 13/14/21
    FileIo_RW_v2/_v3        FileIo 67/68 Read/Write; Kernel-File 15/16 (+ExtraFlags)
    FileIo_Info_v2/_v3      FileIo 69/70/71/74/75; Kernel-File 17/18/19/22/23/29
    FileIo_DirEnum_v2/_v3   FileIo 72/77; Kernel-File 20/25
    FileIo_OpEnd            FileIo 76 OperationEnd; Kernel-File 24
    SplitIo_VolMgr          SplitIo 32
    PageFault_HardFault     PageFault 32
    KernelMemory_MemInfo    Microsoft-Windows-Kernel-Memory 1 (v1), prefix only
"""

from __future__ import annotations

import struct
from functools import lru_cache

from construct import CString, FormatField, Int8ul, Int32ul, Int64sl, Int64ul, Struct

U32, U64, I64 = Int32ul, Int64ul, Int64sl
WSTR = CString("utf_16_le")


def pointer(pointer_size: int):
    return Int64ul if pointer_size == 8 else Int32ul


def _declare(P) -> dict[str, Struct]:
    """Every layout for one pointer width (P = the pointer field type)."""
    return {
        "DiskIo_RW_v2": Struct("DiskNumber" / U32, "IrpFlags" / U32, "TransferSize" / U32,
                               "Reserved" / U32, "ByteOffset" / I64, "FileObject" / P,
                               "Irp" / P, "HighResResponseTime" / U64),
        "DiskIo_RW_v3": Struct("DiskNumber" / U32, "IrpFlags" / U32, "TransferSize" / U32,
                               "Reserved" / U32, "ByteOffset" / I64, "FileObject" / P,
                               "Irp" / P, "HighResResponseTime" / U64,
                               "IssuingThreadId" / U32),
        "DiskIo_Init_v2": Struct("Irp" / P),
        "DiskIo_Init_v3": Struct("Irp" / P, "IssuingThreadId" / U32),
        "DiskIo_Flush_v2": Struct("DiskNumber" / U32, "IrpFlags" / U32,
                                  "HighResResponseTime" / U64, "Irp" / P),
        "DiskIo_Flush_v3": Struct("DiskNumber" / U32, "IrpFlags" / U32,
                                  "HighResResponseTime" / U64, "Irp" / P,
                                  "IssuingThreadId" / U32),
        "DiskIo_RedirectedInit": Struct("Irp" / P, "FileKey" / P),
        "DrvMjFnCall": Struct("MajorFunction" / U32, "MinorFunction" / U32, "RoutineAddr" / P,
                              "FileObject" / P, "Irp" / P, "UniqMatchId" / U32),
        "DrvIrpMatch": Struct("Irp" / P, "UniqMatchId" / U32),
        "DrvRoutineIrp": Struct("Routine" / P, "Irp" / P, "UniqMatchId" / U32),
        "FileIo_Create_v2": Struct("IrpPtr" / P, "TTID" / P, "FileObject" / P,
                                   "CreateOptions" / U32, "FileAttributes" / U32,
                                   "ShareAccess" / U32, "OpenPath" / WSTR),
        "FileIo_Create_v3": Struct("IrpPtr" / P, "FileObject" / P, "TTID" / U32,
                                   "CreateOptions" / U32, "FileAttributes" / U32,
                                   "ShareAccess" / U32, "OpenPath" / WSTR),
        "FileIo_Simple_v2": Struct("IrpPtr" / P, "TTID" / P, "FileObject" / P, "FileKey" / P),
        "FileIo_Simple_v3": Struct("IrpPtr" / P, "FileObject" / P, "FileKey" / P, "TTID" / U32),
        "FileIo_RW_v2": Struct("Offset" / U64, "IrpPtr" / P, "TTID" / P, "FileObject" / P,
                               "FileKey" / P, "IoSize" / U32, "IoFlags" / U32),
        "FileIo_RW_v3": Struct("Offset" / U64, "IrpPtr" / P, "FileObject" / P, "FileKey" / P,
                               "TTID" / U32, "IoSize" / U32, "IoFlags" / U32),
        "FileIo_Info_v2": Struct("IrpPtr" / P, "TTID" / P, "FileObject" / P, "FileKey" / P,
                                 "ExtraInfo" / P, "InfoClass" / U32),
        "FileIo_Info_v3": Struct("IrpPtr" / P, "FileObject" / P, "FileKey" / P,
                                 "ExtraInfo" / P, "TTID" / U32, "InfoClass" / U32),
        "FileIo_DirEnum_v2": Struct("IrpPtr" / P, "TTID" / P, "FileObject" / P, "FileKey" / P,
                                    "Length" / U32, "InfoClass" / U32, "FileIndex" / U32,
                                    "FileName" / WSTR),
        "FileIo_DirEnum_v3": Struct("IrpPtr" / P, "FileObject" / P, "FileKey" / P,
                                    "TTID" / U32, "Length" / U32, "InfoClass" / U32,
                                    "FileIndex" / U32, "FileName" / WSTR),
        "FileIo_OpEnd": Struct("IrpPtr" / P, "ExtraInfo" / P, "NtStatus" / U32),
        "SplitIo_VolMgr": Struct("ParentIrp" / P, "ChildIrp" / P),
        "PageFault_HardFault": Struct("InitialTime" / U64, "ReadOffset" / U64,
                                      "VirtualAddress" / P, "FileObject" / P,
                                      "TThreadId" / U32, "ByteCount" / U32),
        # MemInfo v1: counts of pages per list, pointer-sized; only the prefix fpreplay reads.
        "KernelMemory_MemInfo": Struct("PriorityLevels" / Int8ul, "ZeroPageCount" / P,
                                       "FreePageCount" / P, "ModifiedPageCount" / P,
                                       "ModifiedNoWritePageCount" / P, "BadPageCount" / P),
    }


LAYOUTS: dict[int, dict[str, Struct]] = {4: _declare(Int32ul), 8: _declare(Int64ul)}


def layout(name: str, pointer_size: int) -> Struct:
    """The construct declaration of one payload layout for one pointer width (for writing)."""
    return LAYOUTS[pointer_size][name]


@lru_cache(maxsize=None)
def fixed(name: str, pointer_size: int) -> tuple[struct.Struct, tuple[str, ...]]:
    """The fixed-size prefix of a layout compiled to struct.Struct, with its field names.

    Fields are taken in order until the first one that is not a plain integer (a string tail).
    """
    fmt, names = "<", []
    for sc in layout(name, pointer_size).subcons:
        if not isinstance(sc.subcon, FormatField):
            break
        fmt += sc.subcon.fmtstr[1:]
        names.append(sc.name)
    return struct.Struct(fmt), tuple(names)


def utf16z(data: bytes, offset: int) -> str:
    """A NUL-terminated UTF-16LE string starting at `offset` (unterminated: up to the end)."""
    end = offset
    n = len(data) - 1
    while end < n:
        if data[end] == 0 and data[end + 1] == 0:
            break
        end += 2
    return bytes(data[offset:end]).decode("utf-16-le", errors="replace")
