"""Symbolic names WPP prints and KMDF messages contain: NTSTATUS (%!STATUS!) and IRP_MJ_*
(%!IRPMJ!).

One table each, used both to format (value -> name) and to parse text back (name -> value).
"""

from __future__ import annotations

import re

from fpreplay import schema

# The names live with the other NTSTATUS facts in the contract (fpreplay.schema).
NTSTATUS_NAMES: dict[int, str] = schema.NTSTATUS_NAMES
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
