"""Building single ETW records: kernel DiskIo / driver / FileIo events and TraceLogging events.

Every byte layout comes from a construct declaration shared with the readers: record headers from
fpreplay.parsers.etl.layouts, kernel payloads from fpreplay.parsers.etl.decoders.layouts, the
TraceLogging metadata, traits and payloads from the writing side of
fpreplay.parsers.etl.decoders.tracelogging (the inverse of what it reads).
"""

from __future__ import annotations

import uuid
from functools import lru_cache

from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.decoders.layouts import layout
from fpreplay.parsers.etl.decoders import tracelogging as TL
from fpreplay.parsers.etl.decoders.tracelogging import provider_guid

# Kernel groups and opcodes (etw-formats.md 2.1-2.4).
GROUP_DISKIO = 0x01
GROUP_FILEIO = 0x04
DISKIO_READ, DISKIO_WRITE, DISKIO_READ_INIT, DISKIO_WRITE_INIT = 10, 11, 12, 13
DISKIO_FLUSH, DISKIO_FLUSH_INIT = 14, 15
DRV_MJ_FN_CALL, DRV_COMPL_REQ = 34, 52
FILEIO_OPEND = 76

_DISKIO_RW = layout("DiskIo_RW_v3", 8)
_DISKIO_INIT = layout("DiskIo_Init_v3", 8)
_DISKIO_FLUSH = layout("DiskIo_Flush_v3", 8)
_DRV_CALL = layout("DrvMjFnCall", 8)
_DRV_COMPL = layout("DrvRoutineIrp", 8)
_OPEND = layout("FileIo_OpEnd", 8)
_FILEIO_RW = layout("FileIo_RW_v3", 8)
FILEIO_READ, FILEIO_WRITE = 67, 68


def _system(group: int, opcode: int, version: int, ts: int, tid: int, pid: int,
            payload: bytes) -> bytes:
    head = L.SYSTEM_TRACE_HEADER.build(dict(
        Version=version, HeaderType=L.HT_SYSTEM64, MarkerFlags=L.MARKER_TRACE_HEADER,
        Size=L.SYSTEM_TRACE_HEADER.sizeof() + len(payload), HookId=(group << 8) | opcode,
        ThreadId=tid, ProcessId=pid, SystemTime=ts, KernelTime=0, UserTime=0))
    return head + payload


def _perfinfo(group: int, opcode: int, version: int, ts: int, payload: bytes) -> bytes:
    head = L.PERFINFO_TRACE_HEADER.build(dict(
        Version=version, HeaderType=L.HT_PERFINFO64, MarkerFlags=L.MARKER_TRACE_HEADER,
        Size=L.PERFINFO_TRACE_HEADER.sizeof() + len(payload), HookId=(group << 8) | opcode,
        SystemTime=ts))
    return head + payload


def diskio_init(ts: int, tid: int, pid: int, *, write: bool, irp: int,
                flush: bool = False) -> bytes:
    op = DISKIO_FLUSH_INIT if flush else (DISKIO_WRITE_INIT if write else DISKIO_READ_INIT)
    return _system(GROUP_DISKIO, op, 3, ts, tid, pid,
                   _DISKIO_INIT.build(dict(Irp=irp, IssuingThreadId=tid)))


def diskio_complete(ts: int, *, write: bool, irp: int, disk: int, irp_flags: int, size: int,
                    offset: int, file_object: int, response_ticks: int, tid: int) -> bytes:
    """Read (10) / Write (11) completion: PERFINFO header, no thread of its own."""
    payload = _DISKIO_RW.build(dict(
        DiskNumber=disk, IrpFlags=irp_flags, TransferSize=size, Reserved=0, ByteOffset=offset,
        FileObject=file_object, Irp=irp, HighResResponseTime=response_ticks,
        IssuingThreadId=tid))
    return _perfinfo(GROUP_DISKIO, DISKIO_WRITE if write else DISKIO_READ, 3, ts, payload)


def diskio_flush_complete(ts: int, *, irp: int, disk: int, irp_flags: int, response_ticks: int,
                          tid: int) -> bytes:
    payload = _DISKIO_FLUSH.build(dict(DiskNumber=disk, IrpFlags=irp_flags,
                                       HighResResponseTime=response_ticks, Irp=irp,
                                       IssuingThreadId=tid))
    return _perfinfo(GROUP_DISKIO, DISKIO_FLUSH, 3, ts, payload)


def drv_mj_fn_call(ts: int, tid: int, pid: int, *, major: int, minor: int, routine: int,
                   file_object: int, irp: int, match_id: int) -> bytes:
    payload = _DRV_CALL.build(dict(MajorFunction=major, MinorFunction=minor, RoutineAddr=routine,
                                   FileObject=file_object, Irp=irp, UniqMatchId=match_id))
    return _system(GROUP_DISKIO, DRV_MJ_FN_CALL, 3, ts, tid, pid, payload)


def drv_compl_req(ts: int, tid: int, pid: int, *, routine: int, irp: int, match_id: int) -> bytes:
    return _system(GROUP_DISKIO, DRV_COMPL_REQ, 3, ts, tid, pid,
                   _DRV_COMPL.build(dict(Routine=routine, Irp=irp, UniqMatchId=match_id)))


def fileio_opend(ts: int, tid: int, pid: int, *, irp: int, info: int, status: int) -> bytes:
    return _system(GROUP_FILEIO, FILEIO_OPEND, 3, ts, tid, pid,
                   _OPEND.build(dict(IrpPtr=irp, ExtraInfo=info, NtStatus=status)))


def fileio_rw(ts: int, tid: int, pid: int, *, write: bool, irp: int, file_object: int,
              file_key: int, offset: int, size: int, io_flags: int) -> bytes:
    """FileIo Read (67) / Write (68) v3: the file system's IRP, logged when it is issued."""
    payload = _FILEIO_RW.build(dict(Offset=offset, IrpPtr=irp, FileObject=file_object,
                                    FileKey=file_key, TTID=tid, IoSize=size, IoFlags=io_flags))
    return _system(GROUP_FILEIO, FILEIO_WRITE if write else FILEIO_READ, 3, ts, tid, pid, payload)


# --- TraceLogging -------------------------------------------------------------------------------
TL_CHANNEL = 11          # the channel TraceLoggingWrite puts on every event


# field type name -> (TraceLogging in-type, out-type; 0: none)
_FIELD_TYPES = {
    "u8": (TL.IN_UINT8, 0),
    "u16": (TL.IN_UINT16, 0),
    "u32": (TL.IN_UINT32, 0),
    "u64": (TL.IN_UINT64, 0),
    "hex32": (TL.IN_HEXINT32, 0),
    # TraceLoggingUInt64 with a hex display hint: pointers and handles print as 0x...
    "ptr": (TL.IN_UINT64, TL.OUT_HEX),
    "ntstatus": (TL.IN_UINT32, TL.OUT_NTSTATUS),
    "str": (TL.IN_ANSISTRING, TL.OUT_UTF8),
}

# The driver instrumentation's fields (contract section 3) and their TraceLogging types.
FIELD_TYPE = {"Irp": "ptr", "Request": "ptr", "Queue": "str", "Device": "str", "Major": "u8",
              "Minor": "u8", "IrpFlags": "hex32", "Status": "ntstatus", "Bytes": "u64",
              "Offset": "u64"}


@lru_cache(maxsize=256)
def tl_event(name: str, fields: tuple[str, ...]) -> TL.TlEvent:
    """The instrumentation event `name` with these fields, as the decoder describes events."""
    return TL.TlEvent(name, [TL.TlField(f, *_FIELD_TYPES[FIELD_TYPE[f]]) for f in fields])


@lru_cache(maxsize=256)
def tl_event_metadata(name: str, fields: tuple[str, ...]) -> bytes:
    return TL.build_metadata(tl_event(name, fields))


@lru_cache(maxsize=16)
def tl_provider_traits(provider: str) -> bytes:
    return TL.provider_traits(provider)


def _ext_item(ext_type: int, data: bytes, more: bool) -> bytes:
    item_size = (L.EXTENDED_ITEM_HEADER.sizeof() + len(data) + 7) & ~7
    head = L.EXTENDED_ITEM_HEADER.build(dict(ItemSize=item_size, ExtType=ext_type,
                                             Linkage=1 if more else 0, DataSize=len(data)))
    return head + data + b"\0" * (item_size - 8 - len(data))


@lru_cache(maxsize=256)
def _tl_ext_block(provider: str, name: str, fields: tuple[str, ...]) -> bytes:
    return (_ext_item(L.EXT_TYPE_PROV_TRAITS, tl_provider_traits(provider), True)
            + _ext_item(L.EXT_TYPE_EVENT_SCHEMA_TL, tl_event_metadata(name, fields), False))


def tracelogging_event(ts: int, tid: int, pid: int, *, provider: str, name: str,
                       values: dict, level: int = 4, keyword: int = 0) -> bytes:
    """One TraceLoggingWrite event: EVENT_HEADER64, PROV_TRAITS + EVENT_SCHEMA_TL items, payload."""
    fields = tuple(values)
    ext = _tl_ext_block(provider, name, fields)
    plain = {f: str(values[f]) if FIELD_TYPE[f] == "str" else int(values[f]) for f in fields}
    payload = TL.encode_payload(tl_event(name, fields), plain)
    size = L.EVENT_HEADER.sizeof() + len(ext) + len(payload)
    head = L.EVENT_HEADER.build(dict(
        Size=size, HeaderType=L.HT_EVENT_HEADER64, MarkerFlags=L.MARKER_TRACE_HEADER,
        Flags=L.EVENT_HEADER_FLAG_EXTENDED_INFO, EventProperty=0, ThreadId=tid, ProcessId=pid,
        TimeStamp=ts, ProviderId=provider_guid(provider), Id=0, Version=0, Channel=TL_CHANNEL,
        Level=level, Opcode=0, Task=0, Keyword=keyword, KernelTime=0, UserTime=0,
        ActivityId=uuid.UUID(int=0)))
    return head + ext + payload
