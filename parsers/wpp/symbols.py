"""Symbolic names WPP prints and KMDF messages contain: NTSTATUS (%!STATUS!) and IRP_MJ_*
(%!IRPMJ!).

One table each, used both to format (value -> name) and to parse text back (name -> value).
"""

from __future__ import annotations

import re

from fpreplay import schema

NTSTATUS_NAMES: dict[int, str] = {
    schema.STATUS_SUCCESS: "STATUS_SUCCESS",
    0x00000102: "STATUS_TIMEOUT",
    schema.STATUS_PENDING: "STATUS_PENDING",
    0x80000005: "STATUS_BUFFER_OVERFLOW",
    0x80000011: "STATUS_DEVICE_BUSY",
    0x8000001A: "STATUS_NO_MORE_ENTRIES",
    schema.STATUS_UNSUCCESSFUL: "STATUS_UNSUCCESSFUL",
    0xC0000002: "STATUS_NOT_IMPLEMENTED",
    0xC0000008: "STATUS_INVALID_HANDLE",
    0xC000000D: "STATUS_INVALID_PARAMETER",
    0xC000000E: "STATUS_NO_SUCH_DEVICE",
    schema.STATUS_INVALID_DEVICE_REQUEST: "STATUS_INVALID_DEVICE_REQUEST",
    0xC0000011: "STATUS_END_OF_FILE",
    0xC0000016: "STATUS_MORE_PROCESSING_REQUIRED",
    0xC0000017: "STATUS_NO_MEMORY",
    0xC0000022: "STATUS_ACCESS_DENIED",
    0xC0000023: "STATUS_BUFFER_TOO_SMALL",
    0xC0000056: "STATUS_DELETE_PENDING",
    schema.STATUS_INSUFFICIENT_RESOURCES: "STATUS_INSUFFICIENT_RESOURCES",
    0xC000009D: "STATUS_DEVICE_NOT_CONNECTED",
    0xC00000A3: "STATUS_DEVICE_NOT_READY",
    0xC00000B5: "STATUS_IO_TIMEOUT",
    0xC00000BB: "STATUS_NOT_SUPPORTED",
    schema.STATUS_CANCELLED: "STATUS_CANCELLED",
    schema.STATUS_INVALID_DEVICE_STATE: "STATUS_INVALID_DEVICE_STATE",
    0xC0000206: "STATUS_INVALID_BUFFER_SIZE",
    0xC01C0004: "STATUS_FLT_DISALLOW_FAST_IO",
}
NTSTATUS_VALUES: dict[str, int] = {name: value for value, name in NTSTATUS_NAMES.items()}

IRP_MJ_NAMES: tuple[str, ...] = tuple(f"IRP_MJ_{name}" for name in schema.IRP_MJ_NAMES)
IRP_MJ_VALUES: dict[str, int] = {name: i for i, name in enumerate(IRP_MJ_NAMES)}
IRP_MJ_VALUES["IRP_MJ_SCSI"] = 0x0F


def format_status(value: int) -> str:
    """%!STATUS!: the symbolic name where known, else the hex value (tracefmt's fallback)."""
    return NTSTATUS_NAMES.get(value & 0xFFFFFFFF, f"0x{value & 0xFFFFFFFF:08x}")


def format_irpmj(value: int) -> str:
    """%!IRPMJ! as KMDF prints it: `0x00000003(IRP_MJ_READ)`."""
    name = IRP_MJ_NAMES[value] if 0 <= value < len(IRP_MJ_NAMES) else "IRP_MJ_?"
    return f"0x{value:08x}({name})"


_HEX_IN_PARENS = re.compile(r"\(\s*(0x[0-9a-fA-F]+)\s*\)")


def parse_status(text: str) -> int | None:
    """NTSTATUS from text: `STATUS_SUCCESS`, `0xc000009a`, `STATUS_X(0xc000009a)`, `-1073741670`."""
    text = text.strip().rstrip(".,;")
    m = _HEX_IN_PARENS.search(text)
    if m:
        return int(m.group(1), 16) & 0xFFFFFFFF
    if text in NTSTATUS_VALUES:
        return NTSTATUS_VALUES[text]
    try:
        return int(text, 0) & 0xFFFFFFFF
    except ValueError:
        return None


def parse_irpmj(text: str) -> int | None:
    """IRP major function from `0x0000000f(IRP_MJ_INTERNAL_DEVICE_CONTROL)`, `IRP_MJ_READ`
    or `3`."""
    text = text.strip()
    head = text.split("(", 1)[0].strip()
    if head in IRP_MJ_VALUES:
        return IRP_MJ_VALUES[head]
    try:
        return int(head, 0)
    except ValueError:
        pass
    m = re.search(r"IRP_MJ_\w+", text)
    return IRP_MJ_VALUES.get(m.group(0)) if m else None
