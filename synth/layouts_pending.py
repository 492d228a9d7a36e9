"""Payload layouts the synthesizer writes whose owner's module did not exist yet when it was written.

These belong in `parsers/etl/decoders/` (DiskIo, FileIo, TraceLogging metadata) next to the code
that reads them, so that one construct declaration serves reading and writing; the lead merges
them there (etw-formats.md sections 2.2-2.4 and 1.8). Pointer-sized fields take the pointer size
of the event (4 or 8).
"""

from __future__ import annotations

from construct import CString, Int8ul, Int16ul, Int32ul, Int64sl, Int64ul, Struct


def _p(pointer_size: int):
    return Int64ul if pointer_size == 8 else Int32ul


def diskio_readwrite_v3(pointer_size: int = 8) -> Struct:
    """DiskIo Read (10) / Write (11) completion, TypeGroup1 v3: 52 bytes on x64, 44 on x86."""
    return Struct(
        "DiskNumber" / Int32ul,
        "IrpFlags" / Int32ul,
        "TransferSize" / Int32ul,
        "Reserved" / Int32ul,
        "ByteOffset" / Int64sl,
        "FileObject" / _p(pointer_size),
        "Irp" / _p(pointer_size),
        "HighResResponseTime" / Int64ul,
        "IssuingThreadId" / Int32ul,
    )


def diskio_init_v3(pointer_size: int = 8) -> Struct:
    """DiskIo ReadInit (12) / WriteInit (13) / FlushInit (15), TypeGroup2 v3."""
    return Struct("Irp" / _p(pointer_size), "IssuingThreadId" / Int32ul)


def diskio_flush_v3(pointer_size: int = 8) -> Struct:
    """DiskIo FlushBuffers (14), TypeGroup3 v3."""
    return Struct(
        "DiskNumber" / Int32ul,
        "IrpFlags" / Int32ul,
        "HighResResponseTime" / Int64ul,
        "Irp" / _p(pointer_size),
        "IssuingThreadId" / Int32ul,
    )


def drv_mj_fn_call(pointer_size: int = 8) -> Struct:
    """DiskIo group DrvMjFnCall (34), v2/v3, packed."""
    return Struct(
        "MajorFunction" / Int32ul,
        "MinorFunction" / Int32ul,
        "RoutineAddr" / _p(pointer_size),
        "FileObject" / _p(pointer_size),
        "Irp" / _p(pointer_size),
        "UniqMatchId" / Int32ul,
    )


def drv_mj_fn_ret(pointer_size: int = 8) -> Struct:
    """DrvMjFnRet (35) and DrvComplReqRet (53)."""
    return Struct("Irp" / _p(pointer_size), "UniqMatchId" / Int32ul)


def drv_compl_req(pointer_size: int = 8) -> Struct:
    """DrvComplReq (52): IoCompleteRequest was called for Irp."""
    return Struct("RoutineAddr" / _p(pointer_size), "Irp" / _p(pointer_size),
                  "UniqMatchId" / Int32ul)


def fileio_opend(pointer_size: int = 8) -> Struct:
    """FileIo OperationEnd (76), v2/v3: the completion NTSTATUS."""
    return Struct("IrpPtr" / _p(pointer_size), "ExtraInfo" / _p(pointer_size),
                  "NtStatus" / Int32ul)


# --- TraceLogging self-describing metadata (EVENT_SCHEMA_TL and PROV_TRAITS extended items) -----
# Event metadata: u16 total size, tag byte(s) (bit 7 = another tag byte follows), UTF-8 event
# name, then per field: UTF-8 name, in-type byte (bit 7 = an out-type byte follows), out-type.
TL_PROVIDER_TRAITS = Struct(
    "Size" / Int16ul,               # whole blob including this field
    "ProviderName" / CString("utf8"),
)

TL_FIELD = Struct(
    "Name" / CString("utf8"),
    "InType" / Int8ul,
)

TL_EVENT_HEAD = Struct(
    "Size" / Int16ul,               # whole blob including this field
    "Tags" / Int8ul,                # 0: no event tags (no continuation byte)
    "Name" / CString("utf8"),
)

# TraceLogging in-types used here (TraceLoggingProvider.h TlgIn*).
TLG_IN_ANSISTRING = 2
TLG_IN_UINT8 = 4
TLG_IN_UINT16 = 6
TLG_IN_UINT32 = 8
TLG_IN_UINT64 = 10
TLG_IN_HEXINT32 = 20
TLG_IN_HEXINT64 = 21
TLG_IN_CHAIN = 0x80   # an out-type byte follows
TLG_OUT_HEX = 4
TLG_OUT_NTSTATUS = 14
TLG_OUT_UTF8 = 35
