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


def _number(v, mask):
    """A numeric column's value from a string field (None: not a number), as _as_int reads it."""
    s = v.strip()
    try:
        v = int(s, 16) if s.lower().startswith("0x") else int(s)
    except ValueError:
        return None
    return v & mask if mask is not None else v


def field_plan(event: TlEvent, pointer_size: int):
    """How an event's payload reads, shared by the per-record function below and the numpy
    program (tl_batch.py): (fields, columns) where fields are (struct code, or "ansi"/"utf16")
    in payload order and columns (name, field index, conversion, mask) in
    INSTRUMENTATION_COLUMNS order, the conversion one of text, hex, hexbool (a text column
    from a number), number (a numeric column from text), bool, int. None when the event has a
    field this fast path does not read (arrays, structs, floats, binary...) or names one
    column twice; the reference path then decodes it."""
    if len({f.name for f in event.fields}) < len(event.fields):
        return None           # a repeated name: the reference's dict keeps only the last
    fields, columns = [], {}
    for i, f in enumerate(event.fields):
        if f.count or f.members:
            return None
        if f.in_type in _INT_TYPES or f.in_type == IN_POINTER:
            fields.append(("Q" if pointer_size == 8 else "I") if f.in_type == IN_POINTER
                          else _FIXED[f.in_type].format[1:])
        elif f.in_type in (IN_ANSISTRING, IN_UNICODESTRING):
            fields.append("ansi" if f.in_type == IN_ANSISTRING else "utf16")
        else:
            return None
        col = INSTRUMENTATION_FIELDS.get(f.name.lower())
        if col is None:
            continue
        if col in columns:
            return None
        boolean = f.in_type == IN_BOOL32 or f.out_type == OUT_BOOLEAN
        is_text = fields[-1] in ("ansi", "utf16")
        if col in _TEXT_COLUMNS:
            how = "text" if is_text else ("hexbool" if boolean else "hex")
        elif is_text:
            how = "number"
        else:
            how = "bool" if boolean else "int"
        columns[col] = (col, i, how, _MASK.get(col))
    return fields, [columns[c] for c in INSTRUMENTATION_COLUMNS if c in columns]


_EXPR = {"text": "{v}", "hex": "f'0x{{{v}:x}}'", "hexbool": "f'0x{{int(bool({v})):x}}'",
         "number": "_number({v}, {mask})", "bool": "int(bool({v}))", "int": "{v}"}


def compile_columns(event: TlEvent, pointer_size: int):
    """(columns, payload bytes -> tuple of their values) for an event's instrumentation fields,
    or None where field_plan declines.

    The function is generated once per metadata (the way namedtuple builds its class): one
    struct unpack per run of fixed-size fields, a NUL search per string, the column conversions
    of instrumentation_columns written out per field."""
    plan = field_plan(event, pointer_size)
    if plan is None:
        return None
    fields, columns = plan
    body, fmt, run, pos = [], "<", [], "0"
    env = {"PayloadDamage": PayloadDamage, "_ansi": _ansi, "_utf16": _utf16,
           "_number": _number}

    def close_run():
        nonlocal fmt, run, pos
        if run:
            k = len(env)
            env[f"S{k}"] = st = struct.Struct(fmt)
            body.append(f"start = {pos}")
            body.append(f"end = start + {st.size}")
            body.append("if end > n: raise PayloadDamage")
            body.append(f"{', '.join(run)}, = S{k}.unpack_from(payload, start)")
            pos = "end"
        fmt, run = "<", []

    for i, code in enumerate(fields):
        if code in ("ansi", "utf16"):
            close_run()
            body.append(f"v{i}, end = _{code}(payload, {pos})")
            pos = "end"
        else:
            fmt += code
            run.append(f"v{i}")
    close_run()
    exprs = []
    for _, i, how, mask in columns:
        expr = _EXPR[how].format(v=f"v{i}", mask=mask)
        if mask is not None and how in ("bool", "int"):
            expr = f"({expr}) & {mask}"
        exprs.append(expr)
    body.append(f"return ({''.join(e + ', ' for e in exprs)})")
    src = "def decode(payload):\n    n = len(payload)\n" + "".join(
        f"    {line}\n" for line in body)
    exec(src, env)      # noqa: S102 - code built above from field types, not from input text
    return tuple(c for c, *_ in columns), env["decode"]
