"""The two tables of the outside contract (../shared/design/contract.md sections 3 and 4).

One place for column names, dtypes, kinds and the NTSTATUS values the tables speak of. Readers
build frames and pass them through `conform_events`; the lifecycle builder produces frames that
`conform_irps` accepts; the engine and the reports read these names and nothing else.
"""

from __future__ import annotations

import polars as pl

EVENTS_SCHEMA_NAME = "fpreplay.events/1"
IRPS_SCHEMA_NAME = "fpreplay.irps/1"

# --- section 3: the event table -------------------------------------------------------------
EVENT_COLUMNS: dict[str, pl.DataType] = {
    "ts_ns": pl.Int64,
    "kind": pl.String,
    "irp": pl.UInt64,
    "request": pl.UInt64,
    "queue": pl.String,
    "device": pl.String,
    "major": pl.UInt8,
    "minor": pl.UInt8,
    "irp_flags": pl.UInt32,
    "status": pl.UInt32,
    "bytes": pl.UInt64,
    "offset": pl.UInt64,
    "file_object": pl.UInt64,
    "pid": pl.UInt32,
    "tid": pl.UInt32,
    "cpu": pl.UInt16,
    "source": pl.String,
    "event_name": pl.String,
}

# Extra columns that `fpreplay events --all` adds so that every record is one row.
ALL_RECORD_COLUMNS: dict[str, pl.DataType] = {
    "provider": pl.String,      # provider / event-class GUID, lower case, no braces
    "event_id": pl.UInt16,      # EVENT_HEADER descriptor Id, or WPP message number
    "opcode": pl.UInt8,         # kernel opcode (HookId low byte) / classic Type / descriptor opcode
    "version": pl.UInt8,
    "header_kind": pl.String,   # system, compact, perfinfo, event_trace, instance, event_header, wpp, ...
}

EVENT_KINDS = (
    "irp_dispatch",
    "irp_complete",
    "request_alloc_failed",
    "request_resources_failed",
    "reserved_request_used",
    "fp_policy_refused",
    "queue_start",
    "queue_stop",
    "queue_stop_purge",
    "queue_purge",
    "queue_drain",
    "memory_pressure",
    "other",
)
QUEUE_KINDS = ("queue_start", "queue_stop", "queue_stop_purge", "queue_purge", "queue_drain")

# Mask for the I/O priority bits (17-19) that DiskIo packs into IrpFlags.
IRP_FLAGS_PRIORITY_MASK = 0x000E0000
IRP_PAGING_IO = 0x2
IRP_MJ_CREATE = 0x00
IRP_MJ_CLOSE = 0x02
IRP_MJ_READ = 0x03
IRP_MJ_WRITE = 0x04
IRP_MJ_FLUSH_BUFFERS = 0x09
IRP_MJ_FILE_SYSTEM_CONTROL = 0x0D
IRP_MJ_DEVICE_CONTROL = 0x0E
IRP_MJ_INTERNAL_DEVICE_CONTROL = 0x0F
IRP_MJ_SHUTDOWN = 0x10
IRP_MJ_CLEANUP = 0x12

# IRP_MJ_* names without the prefix, index = major function code (wdm.h).
IRP_MJ_NAMES = (
    "CREATE", "CREATE_NAMED_PIPE", "CLOSE", "READ", "WRITE", "QUERY_INFORMATION",
    "SET_INFORMATION", "QUERY_EA", "SET_EA", "FLUSH_BUFFERS", "QUERY_VOLUME_INFORMATION",
    "SET_VOLUME_INFORMATION", "DIRECTORY_CONTROL", "FILE_SYSTEM_CONTROL", "DEVICE_CONTROL",
    "INTERNAL_DEVICE_CONTROL", "SHUTDOWN", "LOCK_CONTROL", "CLEANUP", "CREATE_MAILSLOT",
    "QUERY_SECURITY", "SET_SECURITY", "POWER", "SYSTEM_CONTROL", "DEVICE_CHANGE", "QUERY_QUOTA",
    "SET_QUOTA", "PNP",
)

# The majors KMDF hands to its I/O package and so to an I/O queue (FxDevice::GetDispatchPackage;
# forward-progress.md 3.7): only these can meet a reserved request. CREATE/CLOSE/CLEANUP/SHUTDOWN
# go to the general package, PNP/POWER/SYSTEM_CONTROL elsewhere, the rest to the default handler.
IO_QUEUE_MAJORS = (IRP_MJ_READ, IRP_MJ_WRITE, IRP_MJ_DEVICE_CONTROL,
                   IRP_MJ_INTERNAL_DEVICE_CONTROL)
# The majors the framework can complete with STATUS_INSUFFICIENT_RESOURCES for want of a request
# object: the I/O-queue majors (on a queue without a forward-progress policy) and creates (the
# general package's ordinary allocation, forward-progress.md 3.7; contract section 4). Any other
# major so completed is the driver's own failure.
ALLOC_FAILURE_MAJORS = (IRP_MJ_CREATE, *IO_QUEUE_MAJORS)


def text_twin(column: str) -> str | None:
    """The name of a numeric column's text twin in a CSV or NDJSON table (`irp` -> `irp_hex`,
    `status` and `<policy>:status` -> `..._name`, `major` -> `major_name`), or None. The twins
    are written beside the numbers for people (replay/render/text_columns.py) and dropped when
    the table is read back (parsers/table.py): the numbers are the data."""
    if column in ("irp", "file_object"):
        return f"{column}_hex"
    if column in ("status", "major") or column.endswith(":status"):
        return f"{column}_name"
    return None


def major_name(major: int | None) -> str:
    """'READ' for 3; '0x1C' for a code outside the table; '-' for unknown."""
    if major is None:
        return "-"
    return IRP_MJ_NAMES[major] if 0 <= major < len(IRP_MJ_NAMES) else f"0x{major:02X}"


def is_paging(irp_flags: int, major: int) -> bool:
    """`paging` of one IRP: the test paging_expr() applies to a frame, for a single IRP."""
    return bool(irp_flags & IRP_PAGING_IO) and major != IRP_MJ_FILE_SYSTEM_CONTROL


def paging_expr() -> pl.Expr:
    """The `paging` column from `irp_flags` and `major`: the framework's own test (paging flag set,
    not IRP_MJ_FILE_SYSTEM_CONTROL; forward-progress.md 4.3). False when the flags are unknown."""
    return (((pl.col("irp_flags").cast(pl.Int64) & IRP_PAGING_IO) != 0)
            & (pl.col("major") != IRP_MJ_FILE_SYSTEM_CONTROL).fill_null(True)).fill_null(False)\
        .alias("paging")

# --- NTSTATUS values the tables and the engine speak of ------------------------------------------
STATUS_SUCCESS = 0x00000000
STATUS_PENDING = 0x00000103
STATUS_UNSUCCESSFUL = 0xC0000001
STATUS_INSUFFICIENT_RESOURCES = 0xC000009A
STATUS_CANCELLED = 0xC0000120
STATUS_INVALID_DEVICE_STATE = 0xC0000184
STATUS_INVALID_DEVICE_REQUEST = 0xC0000010


# NTSTATUS values by name: what WPP's %!STATUS! prints and what `-o` text columns show.
NTSTATUS_NAMES: dict[int, str] = {
    STATUS_SUCCESS: "STATUS_SUCCESS",
    0x00000102: "STATUS_TIMEOUT",
    STATUS_PENDING: "STATUS_PENDING",
    0x80000005: "STATUS_BUFFER_OVERFLOW",
    0x80000011: "STATUS_DEVICE_BUSY",
    0x8000001A: "STATUS_NO_MORE_ENTRIES",
    STATUS_UNSUCCESSFUL: "STATUS_UNSUCCESSFUL",
    0xC0000002: "STATUS_NOT_IMPLEMENTED",
    0xC0000008: "STATUS_INVALID_HANDLE",
    0xC000000D: "STATUS_INVALID_PARAMETER",
    0xC000000E: "STATUS_NO_SUCH_DEVICE",
    STATUS_INVALID_DEVICE_REQUEST: "STATUS_INVALID_DEVICE_REQUEST",
    0xC0000011: "STATUS_END_OF_FILE",
    0xC0000016: "STATUS_MORE_PROCESSING_REQUIRED",
    0xC0000017: "STATUS_NO_MEMORY",
    0xC0000022: "STATUS_ACCESS_DENIED",
    0xC0000023: "STATUS_BUFFER_TOO_SMALL",
    0xC0000056: "STATUS_DELETE_PENDING",
    STATUS_INSUFFICIENT_RESOURCES: "STATUS_INSUFFICIENT_RESOURCES",
    0xC000009D: "STATUS_DEVICE_NOT_CONNECTED",
    0xC00000A3: "STATUS_DEVICE_NOT_READY",
    0xC00000B5: "STATUS_IO_TIMEOUT",
    0xC00000BB: "STATUS_NOT_SUPPORTED",
    STATUS_CANCELLED: "STATUS_CANCELLED",
    STATUS_INVALID_DEVICE_STATE: "STATUS_INVALID_DEVICE_STATE",
    0xC0000206: "STATUS_INVALID_BUFFER_SIZE",
    0xC01C0004: "STATUS_FLT_DISALLOW_FAST_IO",
}


def status_name(status: int | None) -> str | None:
    """STATUS_SUCCESS for 0; an unnamed status as its hex value (0xC0000243)."""
    if status is None:
        return None
    return NTSTATUS_NAMES.get(status & 0xFFFFFFFF, f"0x{status & 0xFFFFFFFF:08X}")


def nt_success(status: int) -> bool:
    """NT_SUCCESS: the top bit clear (success and informational codes; warnings 0x8... fail)."""
    return (status & 0x80000000) == 0


def nt_error(status: int | None) -> bool:
    """NT_ERROR: severity "error", the top two bits set (unknown status: not an error)."""
    return status is not None and status >= 0xC0000000


def nt_error_expr(status: pl.Expr) -> pl.Expr:
    """nt_error over a column (null: not an error)."""
    return status.fill_null(0) >= 0xC0000000

# --- section 4: the IRP lifecycle table -----------------------------------------------------------
IRP_COLUMNS: dict[str, pl.DataType] = {
    "irp": pl.UInt64,
    "device": pl.String,
    "queue": pl.String,
    "major": pl.UInt8,
    "minor": pl.UInt8,
    "irp_flags": pl.UInt32,
    "bytes": pl.UInt64,
    "paging": pl.Boolean,
    "arrive_ns": pl.Int64,
    "complete_ns": pl.Int64,
    "status": pl.UInt32,
    "service_ns": pl.Int64,
    "actual": pl.String,
    "evidence": pl.String,
}

# Extension columns of the lifecycle table: the lifecycle builder adds them after the contract's
# columns and the engine reads them where present; they are not required columns of
# fpreplay.irps/1 (a table without them is still a valid input: null everywhere).
IRP_EXTENSION_COLUMNS: dict[str, pl.DataType] = {
    # When the driver received the IRP, where the trace shows it: a `reserved_request_used` event
    # (the driver's EvtIo callback saw WdfRequestIsReserved) or the IFR presentation line
    # "Calling driver EvtIo… for WDFREQUEST …"; null otherwise. For an IRP that waited parked,
    # complete_ns - deliver_ns is how long the driver really held it (service_ns includes the wait).
    "deliver_ns": pl.Int64,
    # Why the framework had no ordinary request for the IRP, where the trace says so:
    # "request" (the request object could not be created: request_alloc_failed, or a framework
    # message tied to the IRP), "resources" (the driver's EvtIoAllocateRequestResources failed:
    # request_resources_failed), "inferred" (no framework message: only a completion with
    # STATUS_INSUFFICIENT_RESOURCES and no request, of a major in ALLOC_FAILURE_MAJORS; counted
    # and warned, replayed as "request"), or null.
    "alloc_failure": pl.String,
    # The file object the IRP was sent for, from the first of its events that names one (FileIo,
    # DrvMjFnCall, DiskIo); null if none does. IRP_MJ_CLEANUP flushes the parked IRPs of its file
    # object (forward-progress.md 3.7, edge case 62): the replay matches them by this column.
    "file_object": pl.UInt64,
    # The other names the IRP's sources gave its device ("disk0, 0xffffe0012345a000"), comma
    # separated; `device` is the one name every IRP of that device shares (lifecycles/devices.py:
    # the driver's own name first, then a \Device path, a device object, a disk number).
    "device_alias": pl.String,
}
ALLOC_FAILURE_KINDS = ("request", "resources", "inferred")

# `actual` values in the order the contract decides them (first match wins).
ACTUAL_OUTCOMES = (
    "reserved",
    "refused",
    "alloc_failed",
    "cancelled",
    "invalid_state",
    "failed",
    "incomplete",
    "ok",
)
# The outcomes where the trace saw the framework short of a request object (memory ran out)...
STARVED_ACTUALS = ("alloc_failed", "refused", "reserved")
# ... and those of them where the IRP failed for it (the reserve did not save it).
FAILED_ACTUALS = ("alloc_failed", "refused")


def _conform(df: pl.DataFrame, columns: dict[str, pl.DataType], required: tuple[str, ...],
             what: str, keep_extra: bool) -> pl.DataFrame:
    missing = [c for c in required if c not in df.columns]
    if missing:
        from fpreplay.errors import FpreplayError

        raise FpreplayError(f"{what}: required column(s) missing: {', '.join(missing)}")
    exprs = []
    for name, dtype in columns.items():
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype, strict=False))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    if keep_extra:
        exprs += [pl.col(c) for c in df.columns if c not in columns]
    return df.select(exprs)


def conform_events(df: pl.DataFrame, keep_extra: bool = False) -> pl.DataFrame:
    """Cast an event frame to `fpreplay.events/1`: every column present, in order, typed."""
    return _conform(df, EVENT_COLUMNS, ("ts_ns", "kind"), "event table", keep_extra)


def conform_irps(df: pl.DataFrame, keep_extra: bool = False) -> pl.DataFrame:
    """Cast a lifecycle frame to `fpreplay.irps/1`. With keep_extra, other columns follow, the
    extension columns (IRP_EXTENSION_COLUMNS) among them cast to their dtypes."""
    out = _conform(df, IRP_COLUMNS, ("arrive_ns",), "IRP table", keep_extra)
    if keep_extra:
        out = out.with_columns(pl.col(c).cast(t, strict=False)
                               for c, t in IRP_EXTENSION_COLUMNS.items() if c in out.columns)
    return out


def empty_events() -> pl.DataFrame:
    return pl.DataFrame(schema=EVENT_COLUMNS)


def empty_irps() -> pl.DataFrame:
    return pl.DataFrame(schema=IRP_COLUMNS)
