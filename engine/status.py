"""NTSTATUS values and WDF enumerations the queue model needs beyond those in fpreplay.schema.

The shared values (SUCCESS, PENDING, CANCELLED, ...) live in fpreplay.schema; these are the ones
only the engine speaks of (forward-progress.md section 1).
"""

from __future__ import annotations

from fpreplay.schema import (  # noqa: F401  (re-exported for the engine's modules)
    STATUS_CANCELLED,
    STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_DEVICE_STATE,
    STATUS_PENDING,
    STATUS_SUCCESS,
    STATUS_UNSUCCESSFUL,
)

STATUS_NOT_IMPLEMENTED = 0xC0000002
STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_DELETE_PENDING = 0xC0000056
STATUS_WDF_BUSY = 0xC0200204
STATUS_WDF_PAUSED = 0xC0200203
STATUS_DEVICE_BUSY = 0x80000011

# WDF_IO_FORWARD_PROGRESS_RESERVED_POLICY
POLICY_INVALID = 0
POLICY_ALWAYS = 1
POLICY_EXAMINE = 2
POLICY_PAGING = 3

# WDF_IO_FORWARD_PROGRESS_ACTION
ACTION_INVALID = 0
ACTION_FAIL = 1
ACTION_USE_RESERVED = 2

# sizeof(WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY) on 64-bit; the DDI checks exact equality.
FP_POLICY_STRUCT_SIZE = 0x28

WDF_VIOLATION = 0x10D
WDF_QUEUE_FATAL_ERROR = 0xA


def map_wdf_private(status: int) -> int:
    """What a WDF-private status becomes when a driver completes an IRP with it (section 5.2)."""
    if status in (STATUS_WDF_BUSY, STATUS_WDF_PAUSED):
        return STATUS_DEVICE_BUSY
    if (status & 0xFFFF0000) == 0xC0200000:  # other FACILITY_DRIVER_FRAMEWORK errors
        return STATUS_INVALID_DEVICE_REQUEST
    return status
