"""TraceLogging instrumentation events decoded by a plan compiled once per metadata blob.

`tracelogging.decode` reads a payload field by field into a dict and maps it onto columns; that
is the reference, and what every event this module cannot take still goes through. For the
common shape (scalar integers, pointers and strings, no arrays or structs) `compile_columns`
builds, once per distinct metadata, a function from payload bytes straight to the instrumentation
columns (INSTRUMENTATION_COLUMNS order) with the same values `instrumentation_columns` gives.
It raises on any payload damage, so that the caller can hand that record to the reference path,
which reports the damage.
"""

from __future__ import annotations

import struct

from fpreplay.parsers.etl.decoders.common import NOT_PRIORITY
from fpreplay.parsers.etl.decoders.tracelogging import (
    _FIXED, _TEXT_COLUMNS, IN_ANSISTRING, IN_BOOL32, IN_POINTER, IN_UNICODESTRING,
    INSTRUMENTATION_FIELDS, OUT_BOOLEAN, TlEvent,
)

INSTRUMENTATION_COLUMNS = ("irp", "request", "queue", "device", "major", "minor", "irp_flags",
                           "status", "bytes", "offset")
_COLUMN_INDEX = {c: i for i, c in enumerate(INSTRUMENTATION_COLUMNS)}
_INT_TYPES = frozenset((3, 4, 5, 6, 7, 8, 9, 10, 13, 17, 20, 21))   # _FIXED minus floats
_MASK = {"major": 0xFF, "minor": 0xFF, "status": 0xFFFFFFFF,
         "irp_flags": 0xFFFFFFFF & NOT_PRIORITY}


class PayloadDamage(ValueError):
    """The payload does not hold what the metadata promises (the reference path reports it)."""


def _ansi(payload: bytes, off: int) -> tuple[str, int]:
    end = payload.find(b"\0", off)
    if end < 0:
        raise PayloadDamage
    return payload[off:end].decode("utf-8", errors="replace"), end + 1


def _utf16(payload: bytes, off: int) -> tuple[str, int]:
    pos = off
    while True:        # the first NUL code unit at an even distance from the start
        end = payload.find(b"\0\0", pos)
        if end < 0:
            raise PayloadDamage
        if (end - off) & 1 == 0:
            return payload[off:end].decode("utf-16-le", errors="replace"), end + 2
        pos = end + 1


def compile_columns(event: TlEvent, pointer_size: int):
    """payload bytes -> tuple of INSTRUMENTATION_COLUMNS values (None where not given), or None
    when the event has a field this fast path does not read (the reference path then does)."""
    # steps: (struct or None, string reader or None, [(column index, mask, text, bool), ...])
    steps: list = []
    fmt, targets = "<", []

    def close_run():
        nonlocal fmt, targets
        if targets:
            steps.append((struct.Struct(fmt), None, targets))
        fmt, targets = "<", []

    if len({f.name for f in event.fields}) < len(event.fields):
        return None           # a repeated name: the reference's dict keeps only the last
    for f in event.fields:
        if f.count or f.members:
            return None
        col = INSTRUMENTATION_FIELDS.get(f.name.lower())
        target = None if col is None else (_COLUMN_INDEX[col], _MASK.get(col),
                                           col in _TEXT_COLUMNS,
                                           f.in_type == IN_BOOL32 or f.out_type == OUT_BOOLEAN)
        if f.in_type in _INT_TYPES or f.in_type == IN_POINTER:
            fmt += ("Q" if pointer_size == 8 else "I") if f.in_type == IN_POINTER \
                else _FIXED[f.in_type].format[1:]
            targets.append(target)
        elif f.in_type in (IN_ANSISTRING, IN_UNICODESTRING):
            close_run()
            steps.append((None, _ansi if f.in_type == IN_ANSISTRING else _utf16, [target]))
        else:
            return None
    close_run()

    def decode(payload: bytes) -> tuple:
        out = [None] * len(INSTRUMENTATION_COLUMNS)
        off = 0
        for st, read, tgts in steps:
            if st is not None:
                if off + st.size > len(payload):
                    raise PayloadDamage
                values = st.unpack_from(payload, off)
                off += st.size
            else:
                v, off = read(payload, off)
                values = (v,)
            for t, v in zip(tgts, values):
                if t is None:
                    continue
                i, mask, text, boolean = t
                if type(v) is str:
                    if not text:
                        s = v.strip()
                        try:
                            v = int(s, 16) if s.lower().startswith("0x") else int(s)
                        except ValueError:
                            continue
                elif text:
                    v = f"0x{int(bool(v)) if boolean else v:x}"
                elif boolean:
                    v = int(bool(v))
                if mask is not None and type(v) is int:
                    v &= mask
                out[i] = v
        return tuple(out)

    return decode
