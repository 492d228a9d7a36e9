"""Batch plans: records whose every instance decodes the same way, decoded a flush at a time.

  * a kernel event (HookId, header type, Version word) whose decoder has a column form: the
    walk only copies each record's fixed part into the plan; the flush reads them all as one
    numpy record array and maps the fields with polars (the decoder's `columns`);
  * a TraceLogging metadata blob (with its provider): its payload -> columns function is
    compiled once (decoders/tl_compiled.py) and run per event into plain tuples.

Anything a plan cannot read exactly as the per-record decoders would goes the per-record way:
tests/parsers/test_etl_batch.py holds both paths to the same rows.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.headers import (
    EVENT_PAYLOAD_AT, EVENT_PROVIDER, EXT_ITEM, KINDS, TID_PID_TS, TID_PID_TS_AT,
    kernel_header_length,
)
from fpreplay.parsers.etl.providers import KERNEL_UUIDS, kernel_provider
from fpreplay.parsers.etl.walk_all import rows_at
from fpreplay.schema import ALL_RECORD_COLUMNS, EVENT_COLUMNS

_NP_FORMAT = {"b": "i1", "B": "u1", "h": "<i2", "H": "<u2", "i": "<i4", "I": "<u4",
              "l": "<i4", "L": "<u4", "q": "<i8", "Q": "<u8"}
_TS_FORMAT = _NP_FORMAT[L.packed(L.SYSTEM_TRACE_HEADER, "SystemTime", "SystemTime").format[1:]]
_U32_FORMAT = _NP_FORMAT[L.packed(L.SYSTEM_TRACE_HEADER, "ThreadId", "ThreadId").format[1:]]
_DTYPES = {**EVENT_COLUMNS, **ALL_RECORD_COLUMNS}
_CONSTANT_ITEMS_KEPT = 16          # distinct extended-data prefixes remembered per provider


def kernel_provider_text(hook: int) -> str | None:
    """A kernel record's --all provider column, as the per-record path writes it."""
    provider = KERNEL_UUIDS.get(kernel_provider(hook))
    return str(provider) if provider else None


class KernelPlan:
    """How to decode every record of one kernel event (HookId, header type, version word) whose
    decoder has a column form: the walker only copies each record's fixed part (header and
    payload layout) into `raw`; the flush reads all of them at once as a numpy record array and
    maps the fields with polars. A record too short for the layout goes the per-record way
    (which falls back to older layouts or warns)."""

    __slots__ = ("dec", "need", "dtype", "names", "system", "raw", "keys", "count", "extra")

    def __init__(self, dec, htype: int, version_word: int, hook: int | None = None):
        kind = KINDS[(L.MARKER_TRACE_HEADER << 8) | htype]
        # --all (hook given): the header columns every record of the plan shares
        self.extra = None if hook is None else {
            "provider": kernel_provider_text(hook), "event_id": None, "opcode": hook & 0xFF,
            "version": version_word & 0xFF, "header_kind": kind.name}
        hlen = kernel_header_length(kind.min_size, version_word)
        st, names = dec.layout_for(version_word & 0xFF, kind.pointer_size)
        self.dec = dec
        self.need = hlen + st.size                 # smallest record size that fits the layout
        self.system = kind.tid_at is not None      # PERFINFO headers carry no thread/process
        fields = {"_ts_raw": (_TS_FORMAT, kind.ts_at)}
        if self.system:
            fields.update(tid=(_U32_FORMAT, kind.tid_at), pid=(_U32_FORMAT, kind.pid_at))
        pos = hlen
        for name, code in zip(names, st.format[1:]):
            fields[f"f_{name}"] = (_NP_FORMAT[code], pos)
            pos += struct.calcsize("<" + code)
        self.names = names
        self.dtype = np.dtype({"names": list(fields), "formats": [f for f, _ in fields.values()],
                               "offsets": [o for _, o in fields.values()],
                               "itemsize": self.need})
        self.raw: list[np.ndarray] = []            # rows of `need` bytes, one per record
        self.keys: list[np.ndarray] = []           # record sequence number << 16 | cpu
        self.count = 0                             # records held

    def add(self, data, offsets: np.ndarray, keys: np.ndarray) -> None:
        """The records at `offsets` of `data` (bytes or a uint8 array, in record order): their
        fixed parts copied in one gather."""
        raw = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
        self.raw.append(rows_at(raw, offsets, self.need))
        self.keys.append(keys.astype(np.int64, copy=False))
        self.count += len(keys)

    def frame(self, source: str) -> pl.DataFrame:
        raw = np.concatenate(self.raw) if len(self.raw) > 1 else self.raw[0]
        recs = np.ascontiguousarray(raw).view(self.dtype).ravel()
        keys = np.concatenate(self.keys) if self.keys else np.zeros(0, dtype=np.int64)
        data = {name: np.ascontiguousarray(recs[name]) for name in self.dtype.names}
        data["_seq"] = keys >> 16
        data["cpu"] = (keys & 0xFFFF).astype(np.uint16)
        df = pl.DataFrame(data)
        del recs
        self.raw, self.keys, self.count = [], [], 0
        # The row a decoder's `fields` would give, then what the walker fills in when absent.
        row = self.dec.columns({n: pl.col(f"f_{n}") for n in self.names})
        if row.get("irp") is not None:
            irp = row["irp"]
            row["irp"] = pl.when(irp != 0).then(irp)   # a null IRP pointer: no IRP
        base = {"cpu": pl.col("cpu"),
                "pid": pl.col("pid") if self.system else None,
                "tid": pl.col("tid") if self.system else None,
                "source": source, "kind": self.dec.kind, "event_name": self.dec.event_name}
        base.update(row)
        base.update(self.extra or {})
        exprs = [pl.col("_ts_raw"), pl.col("_seq")]
        for name, value in base.items():
            dtype = _DTYPES[name]
            expr = value if isinstance(value, pl.Expr) else pl.lit(value)
            exprs.append(expr.cast(dtype, strict=False).alias(name))
        return df.select(exprs)


class TlPlan:
    """One TraceLogging metadata blob (with its provider): the kind and name of its events and,
    when its fields are wanted, the compiled payload -> instrumentation columns function (one
    record at a time) and its numpy program (many records at a time, tl_batch.py)."""

    __slots__ = ("kind", "event_name", "names", "columns", "program", "rows", "chunks", "count")

    def __init__(self, kind: str, event_name: str, names: tuple, columns, program=None):
        self.kind, self.event_name, self.names, self.columns = kind, event_name, names, columns
        self.program = program
        self.rows: list[tuple] = []       # (tid, pid, ts, seq, cpu, *column values)
        self.chunks: list[dict] = []      # rows decoded many at a time (tl_batch.chunk_frame)
        self.count = 0

    def frame(self, source: str) -> pl.DataFrame:
        names = ("tid", "pid", "_ts_raw", "_seq", "cpu", *self.names)
        dtypes = {**EVENT_COLUMNS, "_ts_raw": pl.Int64, "_seq": pl.Int64}
        from fpreplay.parsers.etl.tl_batch import chunk_frame

        frames = [chunk_frame(self.chunks)] if self.chunks else []
        if self.rows:
            frames.append(pl.DataFrame([
                pl.Series(n, c, dtype=dtypes[n], strict=False)
                for n, c in zip(names, zip(*self.rows))]))
        self.rows, self.chunks, self.count = [], [], 0
        df = pl.concat(frames) if len(frames) > 1 else frames[0]
        return df.select([c for c in df.columns if df[c].null_count() < df.height]) \
            .with_columns(source=pl.lit(source), kind=pl.lit(self.kind),
                          event_name=pl.lit(self.event_name))


class Plans:
    """The plans of one read, found or made as the walk meets their events. `kernel` and `tl`
    map a key to its plan, or to None where the per-record path must decode."""

    def __init__(self, reg, ctx, all_records: bool = False):
        self.reg, self.ctx = reg, ctx
        self.all = all_records            # --all: rows carry the header columns too
        self.kernel: dict[int, KernelPlan | None] = {}
        self.tl: dict[tuple, TlPlan | None] = {}
        # provider GUID bytes -> header type -> [(extended-data bytes, plan)]: the extended data
        # of a provider's events repeats (metadata and traits only), so one comparison in place
        # of walking and copying it finds the plan.
        self.tl_recent: dict[bytes, dict[int, list]] = {}

    def kernel_plan(self, key: int, dec, htype: int, version_word: int):
        """The plan for a kernel event key (Version word << 32 | type << 16 | HookId), made and
        remembered at its first record."""
        plan = None
        if getattr(dec, "columns", None) is not None \
                and dec.layout_for(version_word & 0xFF, L.HEADER_TYPES[htype][2]) is not None:
            plan = KernelPlan(dec, htype, version_word, key & 0xFFFF if self.all else None)
        self.kernel[key] = plan
        return plan

    def tl_batch(self, data, off: int, size: int, htype: int, cpu: int, seq: int) -> bool:
        """A TraceLogging event decoded by its metadata's compiled plan into the plan's rows;
        False (nothing done) for anything the reference path must see: no or unreadable
        metadata, damaged items or payload, field types the plan does not read."""
        end = off + size
        start = p = off + EVENT_PAYLOAD_AT
        guid = data[off + EVENT_PROVIDER.start:off + EVENT_PROVIDER.stop]
        recent = self.tl_recent.get(guid)
        seen = recent.get(htype) if recent is not None else None
        plan = None
        if seen:
            for ext, known in seen:
                if data.startswith(ext, start, end):
                    plan, p = known, start + len(ext)
                    break
        if plan is None:
            plan, p = self._tl_plan_of(data, guid, htype, start, end)
            if plan is None:
                return False
        if plan.columns is None:
            plan.rows.append((*TID_PID_TS.unpack_from(data, off + TID_PID_TS_AT), seq, cpu))
            plan.count += 1
            return True
        try:
            values = plan.columns(bytes(data[p:end]))
        except (ValueError, struct.error):
            return False
        plan.rows.append((*TID_PID_TS.unpack_from(data, off + TID_PID_TS_AT), seq, cpu,
                          *values))
        plan.count += 1
        return True

    def tl_many(self, big: np.ndarray, offs: np.ndarray, sizes: np.ndarray,
                htypes: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """EVENT_HEADER records with extended items no manifest decoder takes (at `offs` of
        `big`, keys: sequence number << 16 | cpu), decoded many at a time (tl_batch.py) into
        their plans; records with no TraceLogging metadata are done with. Returns masks of the
        records the per-record path must see (what tl_batch declines, it declines too) and of
        those decoded here."""
        from fpreplay.parsers.etl import tl_batch as B

        end = offs + sizes
        plain, pay, meta_at, meta_len, traits_at, traits_len = B.ext_chains(
            big, B.payload_start(offs), end)
        rest, taken = ~plain, np.zeros(len(offs), dtype=bool)
        tl = np.flatnonzero(plain & (meta_at >= 0))
        if not tl.size:
            return rest, taken
        nuls = B._Nuls(big)
        for key, members in B.plan_groups(big, offs[tl], htypes[tl], meta_at[tl], meta_len[tl],
                                          traits_at[tl], traits_len[tl]):
            at = tl[members]
            plan = self.tl.get(key, 0)
            if plan == 0:
                plan = self._tl_plan(key)
            if plan is None or (plan.columns is not None and plan.program is None):
                rest[at] = True
                continue
            columns = {}
            if plan.columns is not None:
                ok, columns = B.decode_group(plan.program, big, nuls, pay[at], end[at])
                if not ok.all():
                    rest[at[~ok]] = True
                    at = at[ok]
                    columns = {c: B.keep(v, ok) for c, v in columns.items()}
            if at.size:
                head = B.head_columns(big, offs[at], keys[at])
                if self.all:
                    head.update(B.header_columns(big, offs[at], self.reg.guid(key[2]),
                                                 KINDS[(L.MARKER_TRACE_HEADER << 8) | key[3]]))
                head.update((n, columns[n]) for n in plan.names)
                plan.chunks.append(head)
                plan.count += int(at.size)
                taken[at] = True
        return rest, taken

    def _tl_plan_of(self, data, guid, htype: int, start: int, end: int):
        """(plan or None, payload offset) from an event's extended items: its metadata and
        traits pick the plan; a chain of nothing but those is remembered for the next event."""
        meta = traits = None
        only_constant = True       # nothing but metadata and traits (same every event)
        linked = True
        p = start
        while p + 8 <= end:
            item_size, ext_type, linkage, data_size = EXT_ITEM.unpack_from(data, p)
            if item_size < 8 or p + item_size > end:
                return None, p
            if ext_type == L.EXT_TYPE_EVENT_SCHEMA_TL:
                meta = bytes(data[p + 8:p + 8 + min(data_size, item_size - 8)])
            elif ext_type == L.EXT_TYPE_PROV_TRAITS:
                traits = bytes(data[p + 8:p + 8 + min(data_size, item_size - 8)])
            else:
                only_constant = False
            p += item_size
            if not linkage & 1:
                linked = False
                break
        if meta is None:
            return None, p
        key = (meta, traits, bytes(guid), htype)
        plan = self.tl.get(key, 0)
        if plan == 0:
            plan = self._tl_plan(key)
        if plan is not None and only_constant and not linked:   # the chain ended by itself
            seen = self.tl_recent.setdefault(bytes(guid), {}).setdefault(htype, [])
            if len(seen) < _CONSTANT_ITEMS_KEPT:
                seen.append((bytes(data[start:p]), plan))
        return plan, p

    def _tl_plan(self, key: tuple):
        """(kind, event name, payload -> columns or None) for one metadata blob, as
        tracelogging.decode decides them; None when the reference path must decode."""
        from fpreplay.parsers.etl.decoders import tracelogging as TL
        from fpreplay.parsers.etl.decoders.tl_compiled import compile_columns
        from fpreplay.parsers.etl.tl_batch import compile_program

        meta, traits, guid, htype = key
        plan = None
        try:
            event = TL.parse_metadata(meta)
        except (TL.TlFormatError, struct.error, RecursionError):
            event = None
        if event is not None:
            guid_text = self.reg.guid(guid)
            provider = TL.provider_name(traits, guid_text)
            kind = TL.INSTRUMENTATION_KINDS.get(event.name.lower())
            wanted = TL.fields_wanted(self.ctx, kind, provider, guid_text)
            psize = L.HEADER_TYPES[htype][2]
            compiled = compile_columns(event, psize) if wanted else ((), None)
            if compiled is not None:
                program = compile_program(event, psize) if wanted else None
                plan = TlPlan(kind or "other", f"{provider}/{event.name}", *compiled, program)
        self.tl[key] = plan
        return plan

    def frames(self, source: str) -> list[pl.DataFrame]:
        """Everything the plans hold, as frames; empties them."""
        return [p.frame(source) for p in self.kernel.values() if p is not None and p.keys] \
            + [p.frame(source) for p in self.tl.values() if p is not None and p.count]

    def pending(self) -> int:
        """Rows the plans hold."""
        return sum(p.count for p in self.kernel.values() if p is not None) \
            + sum(p.count for p in self.tl.values() if p is not None)
