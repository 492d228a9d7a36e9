"""The machinery every table-driven payload decoder shares: pick a layout by version and size,
unpack its fixed prefix with a precompiled struct, turn fields into an event row.

A `PayloadDecoder` is what the registries in decoders/__init__.py hold: `decode(record, ctx)`.
"""

from __future__ import annotations

from collections.abc import Callable

from fpreplay.parsers.etl.decoders.layouts import fixed, utf16z
from fpreplay.schema import IRP_FLAGS_PRIORITY_MASK

Row = dict
FieldMap = Callable[[dict, object], Row]   # (fields, record) -> row (without kind/event_name)
# The same mapping for many records at once: payload field name -> pl.Expr in, event-table
# column -> pl.Expr (or a constant, or None for an explicit null) out, keys as `fields` gives.
ColumnMap = Callable[[dict], dict]

NOT_PRIORITY = ~IRP_FLAGS_PRIORITY_MASK & 0xFFFFFFFF


def irp_flags(value: int | None) -> int | None:
    """`Irp->Flags` with the I/O priority bits (17-19) masked off (contract section 3)."""
    return None if value is None else value & NOT_PRIORITY


def short_payload(record, ctx, name: str, need: int) -> list[Row]:
    """A payload too short for its layout: count it, warn once per event name, yield nothing."""
    ctx.diagnostics.count("payload_too_short")
    ctx.diagnostics.warn_repeated(
        f"{ctx.source}: short {name}", f"byte {record.file_offset}",
        f"{ctx.source}: {name} record(s) with a payload shorter than the {need}-byte layout "
        f"were skipped (first at byte {record.file_offset}, {len(record.payload)} bytes)")
    return []


class PayloadDecoder:
    """Decode one event type: `layouts` maps the lowest event version a layout applies to onto
    its name in layouts.py; the newest layout the record's version and size allow is used (a
    shorter payload falls back to an older layout rather than being lost)."""

    __slots__ = ("event_name", "kind", "versions", "fields", "columns", "tail", "_compiled")

    def __init__(self, event_name: str, kind: str, layouts: dict[int, str], fields: FieldMap,
                 tail: str | None = None, columns: ColumnMap | None = None):
        self.event_name = event_name
        self.kind = kind
        self.versions = sorted(layouts.items(), reverse=True)   # newest first
        self.fields = fields
        # `fields` over polars columns, for the reader's batch path (see ColumnMap); every
        # decoder that has one is checked against `fields` by tests/parsers/test_etl_batch.py.
        self.columns = columns
        self.tail = tail          # name of a trailing UTF-16 string field, if any
        self._compiled: dict[int, list] = {}

    def layout_for(self, version: int, pointer_size: int):
        """(struct, names) of the layout a payload of this version gets when it is long enough
        for it (the first choice of __call__); None for a version below every layout."""
        for min_version, st, names in self._candidates(pointer_size):
            if version >= min_version:
                return st, names
        return None

    def _candidates(self, pointer_size: int) -> list:
        c = self._compiled.get(pointer_size)
        if c is None:
            c = [(v,) + fixed(name, pointer_size) for v, name in self.versions]
            self._compiled[pointer_size] = c
        return c

    def __call__(self, record, ctx) -> list[Row]:
        payload = record.payload
        n = len(payload)
        cands = self._candidates(record.pointer_size)
        for min_version, st, names in cands:
            if record.version >= min_version and n >= st.size:
                break
        else:
            # An unknown version byte: the newest layout the payload is long enough for.
            for _, st, names in cands:
                if n >= st.size:
                    break
            else:
                need = min(c[1].size for c in cands)
                return short_payload(record, ctx, self.event_name, need)
        values = dict(zip(names, st.unpack_from(payload, 0)))
        if self.tail is not None:
            values[self.tail] = utf16z(payload, st.size)
        row = self.fields(values, record)
        if row.get("irp") == 0:
            row["irp"] = None      # fast I/O and some driver events log a null IRP pointer
        row["kind"] = self.kind
        row["event_name"] = self.event_name
        return [row]
