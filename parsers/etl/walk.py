"""The walk: every record of every buffer, counted, and the ones a decoder wants decoded.

Per buffer scan.py walks the records (C when built, else Python): offsets, sizes and prefix
words as a numpy array. Every DEFER_RECORDS records `drain` classifies them in numpy by their
TypeMarker's HeaderKind (headers.WALK) and the registries: kernel events with a batch plan
(plans.py) are gathered into it, the other records a decoder wants go to it one by one as an
EtlRecord; misses cost nothing more. With --all every record also becomes a row of its kind's
header fields (walk_all.py). Decoded rows wait in the walker until the merge (merge.py) takes
them as a frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.clock import FILETIME_UNIX_EPOCH, Clock
from fpreplay.parsers.etl.headers import (
    BY_CLASS, BY_HOOK, BY_MESSAGE, BY_PROVIDER, CLASSIC_GUID, CLASSIC_TYPE_AT, HEADER_SENTINEL,
    KINDS, MANIFEST_KEY, SKIPPED, SYSTEM, WALK, has_tl_schema,
    record_ts,
)
from fpreplay.parsers.etl.plans import Plans
from fpreplay.parsers.etl.providers import KERNEL_GROUPS, Registry
from fpreplay.parsers.etl.record import EtlRecord
from fpreplay.parsers.etl.scan import STOP_BAD, STOP_END, STOP_FILL, scan
from fpreplay.parsers.etl.walk_all import buffer_times, header_rows, rows_at, unique_rows
from fpreplay.parsers.etl.stream import unpack_buffer
from fpreplay.schema import ALL_RECORD_COLUMNS, EVENT_COLUMNS

_LOGFILE_AT = L.SYSTEM_TRACE_HEADER.sizeof()        # TRACE_LOGFILE_HEADER follows the header
DEFER_RECORDS = 16_384            # records walked before they are classified and decoded
# Which registry a TypeMarker's kind uses, as a small code per TypeMarker for numpy.
C_HOOK, C_PROVIDER, C_CLASS, C_MESSAGE, C_SKIPPED, C_UNKNOWN = range(6)
_CODES = {BY_HOOK: C_HOOK, BY_PROVIDER: C_PROVIDER, BY_CLASS: C_CLASS, BY_MESSAGE: C_MESSAGE,
          SKIPPED: C_SKIPPED}
LOOKUP = np.array([_CODES.get(lookup, C_UNKNOWN) for _, _, lookup in WALK], dtype=np.uint8)


class Walker:
    """The records of one trace, buffer by buffer: the clock from its EventTrace/Header,
    decoded rows (per record, in batch plans, or every record with --all), per-CPU progress for
    the merge, and what was counted on the way."""

    def __init__(self, path: Path, options, diagnostics: Diagnostics, stats: dict):
        from fpreplay.parsers.etl.decoders import DecodeContext

        self.path = path
        self.source = str(path)
        self.all = bool(options.all_records)
        self.diag = diagnostics
        self.stats = stats
        self.reg = Registry()
        self.ctx = DecodeContext(source=self.source, diagnostics=diagnostics,
                                 tmf_dirs=list(options.tmf_dirs),
                                 providers=list(options.providers))
        self.plans = Plans(self.reg, self.ctx, self.all)
        self.kernel_hit = np.zeros(65536, dtype=bool)   # HookIds a kernel decoder wants
        self.pending: list[tuple] = []             # walked buffers waiting for `drain`
        self.pending_records = 0
        self.defer_records = min(DEFER_RECORDS, options.batch_rows or DEFER_RECORDS)
        self.kernel_hit[[h for h, d in self.reg.kernel.items() if d is not None]] = True
        self.clock: Clock | None = None
        self.logfile = None
        self.records = 0
        self.seq = 0
        self.rows: list[dict] = []                 # decoded rows of the current flush window
        self.header_frames: list[pl.DataFrame] = []     # --all rows of undecoded records
        self.cpu_last_ts: dict[int, int] = {}      # cpu -> newest raw ts seen on it
        self.cpu_expired: set[int] = set()         # quiet CPUs the merge stopped waiting for,
                                                   # until they log again
        self.decoder_failures: dict[str, int] = {}
        self.buffer_max_ts: int | None = None
        self.last_ts: int | None = None            # an untimed WPP message's time
        self._waiting: int | None = None           # rows_waiting, until drained again

    # --- one buffer ----------------------------------------------------------------------------
    def buffer(self, file_offset: int, data: bytes) -> None:
        """Walk one buffer (decompressed here if it is compressed)."""
        unpacked = unpack_buffer(self.path, file_offset, data, self.diag)
        if unpacked is None:
            return
        cpu, flag, events, start, end, base = unpacked
        if flag & L.BUFFER_FLAG_EVENTS_LOST:
            self.stats["events_lost_buffers"] = self.stats.get("events_lost_buffers", 0) + 1
        if flag & L.BUFFER_FLAG_BUFFER_LOST:
            self.stats["buffers_lost_flagged"] = self.stats.get("buffers_lost_flagged", 0) + 1
        before = self.cpu_last_ts.get(cpu)
        self.buffer_max_ts = None
        self._walk(events, start, end, cpu, base)
        self.cpu_expired.discard(cpu)
        ts = self.buffer_max_ts        # how far this CPU has logged
        if ts is not None and ts > self.cpu_last_ts.get(cpu, ts - 1):
            self.cpu_last_ts[cpu] = ts
        if flag & L.BUFFER_FLAG_EVENTS_LOST and self.clock is not None:
            # The events were lost while this buffer was the CPU's current one: after the CPU's
            # previous buffer, up to this buffer's last record (None: unknown bound).
            self.stats.setdefault("lost_windows", []).append(
                (self.clock.to_ns(before) if before is not None else None,
                 self.clock.to_ns(ts) if ts is not None else None))

    def _walk(self, data, off: int, end: int, cpu: int, base: int) -> None:
        """Every record of one buffer, decoding what a decoder wants. `base` + offset = the
        record's position for messages. The structural walk (scan.py, C when built) runs now;
        classifying and decoding wait until DEFER_RECORDS records are walked (`drain`), so
        that numpy works on many buffers at once. Until the trace header has set the clock,
        and for a buffer whose walk stopped early (damage), they run at once."""
        recs, stop, stop_at, stop_size = scan(data, off, end)
        times = None
        if self.all:
            recs, bad, *times = buffer_times(self, data, recs, end)
            if bad is not None:
                stop, (stop_at, stop_size) = STOP_BAD, bad
            self.buffer_max_ts = times[-1]
        n = len(recs)
        self.pending.append((data, recs, stop, stop_at, stop_size, end, cpu, base, self.records,
                             times))
        self.records += n
        self.pending_records += n
        if not self.all:
            # Records of a buffer are (nearly) in time order: its last one tells how far the
            # CPU got.
            self.buffer_max_ts = record_ts(data, int(recs["off"][-1])) if n else None
        if self.clock is None or stop != STOP_END or self.pending_records >= self.defer_records:
            self.drain()

    def drain(self) -> None:
        """Classify and decode the records of the buffers walked so far, in record order: the
        kernel events a batch plan takes are copied to it in one gather per plan, TraceLogging
        events decoded many at a time (tl_batch.py), and only the other records a decoder
        wants cost a Python step each. Each buffer's own warnings (a walk stopped early, a
        record of no known kind) come after its records' ones."""
        pending = self.pending
        if not pending:
            return
        self.pending, self.pending_records = [], 0
        self._waiting = None
        counts = np.array([len(p[1]) for p in pending], dtype=np.int64)
        starts = np.zeros(len(pending) + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        total = int(starts[-1])
        recs_dtype = pending[0][1].dtype
        if len(pending) == 1:
            recs = pending[0][1]
            big = np.frombuffer(pending[0][0], dtype=np.uint8)
            offs = recs["off"].astype(np.int64)
        else:
            # as plain bytes: concatenating structured arrays promotes their dtype per array
            recs = np.concatenate([p[1].view(np.uint8) for p in pending]).view(recs_dtype)
            lengths = np.array([len(p[0]) for p in pending], dtype=np.int64)
            at = np.zeros(len(pending), dtype=np.int64)
            np.cumsum(lengths[:-1], out=at[1:])
            big = np.concatenate([np.frombuffer(p[0], dtype=np.uint8) for p in pending])
            offs = recs["off"].astype(np.int64) + np.repeat(at, counts)
        idx = unknown = np.zeros(0, dtype=np.int64)
        decoded: list[int] = []                  # --all: records a decoder made rows of
        if total:
            idx, unknown, taken = self._classify(pending, big, recs, offs, starts)
            decoded += taken.tolist()
        bounds = np.searchsorted(idx, starts).tolist()
        unknown_at = np.searchsorted(unknown, starts).tolist()
        for b, (data, brecs, stop, stop_at, stop_size, end, cpu, base, first, times) in \
                enumerate(pending):
            lo, hi = bounds[b], bounds[b + 1]
            if self.all:
                self.last_ts = int(times[0][-1]) if len(brecs) and times[1][-1] else None
                if hi > lo:
                    local = idx[lo:hi] - starts[b]
                    decoded += (self._per_record_all(data, brecs, local, cpu, base, first,
                                                     times) + starts[b]).tolist()
            elif hi > lo:
                self._per_record(data, brecs, idx[lo:hi] - starts[b], cpu, base, first)
            if stop == STOP_FILL:
                self._fill_inside(base + stop_at, end - stop_at)
            elif stop == STOP_BAD:
                self._bad_record(base + stop_at, stop_size, end - stop_at)
            if unknown_at[b + 1] > unknown_at[b]:
                i = int(unknown[unknown_at[b]] - starts[b])
                self._unknown_kind(base + int(brecs["off"][i]),
                                   KINDS[int(brecs["tm"][i])].name)
        if self.all and total:
            self._header_rows(pending, big, recs, offs, counts, starts, decoded)

    def _classify(self, pending, big, recs, offs, starts):
        """(sorted indices of the drained records that take the per-record way, indices of
        records of no known kind, indices of those a plan decoded). Kernel events with a batch
        plan and TraceLogging events go to their plans here."""
        reg = self.reg
        code = LOOKUP[recs["tm"]]
        wanted = []                              # index arrays for the per-record path
        firsts = np.array([p[8] for p in pending], dtype=np.int64)
        cpus = np.array([p[6] for p in pending], dtype=np.int64)

        def keys(at):          # sequence number << 16 | cpu (--all numbers records from 1)
            which = np.searchsorted(starts, at, side="right") - 1
            return ((firsts[which] + at - starts[which] + self.all) << 16) | cpus[which]

        taken = []
        hits = np.flatnonzero((code == C_HOOK) & self.kernel_hit[recs["w3"]])
        if hits.size:
            rest = self._kernel_hits(big, recs, offs, hits, keys(hits))
            wanted.append(rest)
            taken.append(np.setdiff1d(hits, rest, assume_unique=True))
        if reg.manifest or reg.tracelogging is not None:
            at = np.flatnonzero(code == C_PROVIDER)
            manifest, tl = self._provider_hits(big, recs, offs, at)
            wanted.append(manifest)
            if tl.size:
                rest, done = self.plans.tl_many(big, offs[tl], recs["size"][tl].astype(np.int64),
                                                recs["tm"][tl] & 0xFF, keys(tl))
                taken.append(tl[done])
                tl = tl[rest]
            wanted.append(tl)
        if reg.classic:
            at = np.flatnonzero(code == C_CLASS)
            if at.size:
                wanted.append(at[_registry_hits(big, offs[at], _CLASSIC_KEY,
                                                self._classic_keys)])
        if reg.wpp is not None:
            wanted.append(np.flatnonzero(code == C_MESSAGE))
        idx = np.concatenate(wanted) if wanted else np.zeros(0, dtype=np.int64)
        idx.sort()
        taken = np.concatenate(taken) if taken else idx[:0]
        return idx, np.flatnonzero(code == C_UNKNOWN), taken

    def _header_rows(self, pending, big, recs, offs, counts, starts, decoded) -> None:
        """--all: the header rows of the drained records no decoder made rows of."""
        keep = np.ones(len(recs), dtype=bool)
        keep[decoded] = False
        firsts = np.array([p[8] for p in pending], dtype=np.int64)
        local = np.arange(len(recs), dtype=np.int64) - np.repeat(starts[:-1], counts)
        seqs = np.repeat(firsts, counts) + local + 1
        cpus = np.repeat(np.array([p[6] for p in pending], dtype=np.int64), counts)
        filled = np.concatenate([p[9][0] for p in pending])
        known = np.concatenate([p[9][1] for p in pending])
        wpp = {int(starts[b]) + i: v for b, p in enumerate(pending) for i, v in p[9][2].items()}
        self.header_frames.append(header_rows(self, big, recs, offs, keep, seqs, cpus, filled,
                                              known, wpp))
        self.seq = int(seqs[-1])

    def _per_record_all(self, data, recs, idx, cpu: int, base: int, first: int, times):
        """--all: the records at `idx` a decoder may want, through it; returns the indices of
        those it made rows of (they get no header row)."""
        reg = self.reg
        kernel, manifest, classic = reg.kernel.get, reg.manifest, reg.classic
        tracelogging = reg.tracelogging
        filled, known = times[0], times[1]
        made = []
        for i, (off, size, type_marker, w3, _w0, w2) in zip(idx.tolist(), recs[idx].tolist()):
            kind, _, lookup = WALK[type_marker]
            self.last_ts = int(filled[i]) if known[i] else None
            if lookup is BY_HOOK:
                dec = kernel(w3)
                if dec is HEADER_SENTINEL:
                    self._trace_header(data, off, size, type_marker & 0xFF, base + off)
                    dec = reg.kernel_user_header
            elif lookup is BY_PROVIDER:
                dec = manifest.get(data[off + MANIFEST_KEY.start:off + MANIFEST_KEY.stop])
                if dec is None and tracelogging is not None \
                        and w2 & L.EVENT_HEADER_FLAG_EXTENDED_INFO and has_tl_schema(data, off, size):
                    dec = tracelogging
            elif lookup is BY_CLASS:
                dec = classic.get((data[off + CLASSIC_GUID.start:off + CLASSIC_GUID.stop],
                                   data[off + CLASSIC_TYPE_AT]))
            else:
                dec = reg.wpp
            if dec is not None:
                self.seq = first + i + 1
                if self.decode(dec, kind, data, off, size, cpu, base + off):
                    made.append(i)
        return np.array(made, dtype=np.int64)

    def _kernel_hits(self, big, recs, offs, hits, keys):
        """Kernel records a decoder wants (`keys`: their sequence number << 16 | cpu): those a
        batch plan takes go to it in one gather per plan; returns the indices that go the
        per-record way (the trace header, events without a plan, records too short for their
        plan's layout)."""
        sel = recs[hits]
        plan_keys = (sel["w0"].astype(np.int64) << 32) \
            | ((sel["tm"] & 0xFF).astype(np.int64) << 16) | sel["w3"].astype(np.int64)
        uniq, inv = np.unique(plan_keys, return_inverse=True)
        rest = []
        kernel, plans = self.reg.kernel, self.plans
        sizes = recs["size"]
        for j, key in enumerate(uniq.tolist()):
            members = np.flatnonzero(inv == j) if len(uniq) > 1 else np.arange(hits.size)
            dec = kernel[key & 0xFFFF]
            if dec is HEADER_SENTINEL:
                rest.append(hits[members])
                continue
            plan = plans.kernel.get(key, 0)
            if plan == 0:
                plan = plans.kernel_plan(key, dec, (key >> 16) & 0xFF, key >> 32)
            if plan is None:
                rest.append(hits[members])
                continue
            fits = sizes[hits[members]] >= plan.need
            if not fits.all():
                rest.append(hits[members[~fits]])
                members = members[fits]
            if members.size:
                plan.add(big, offs[hits[members]], keys[members])
        return np.concatenate(rest) if rest else hits[:0]

    def _provider_hits(self, big, recs, offs, at):
        """The EVENT_HEADER records at `at` a manifest decoder wants, and those with extended
        items (which TraceLogging may want) that no manifest decoder takes."""
        if not at.size:
            return at, at
        reg = self.reg
        hit = _registry_hits(big, offs[at], _MANIFEST_KEY, self._manifest_keys) \
            if reg.manifest else np.zeros(at.size, dtype=bool)
        if reg.tracelogging is None:
            return at[hit], at[:0]
        extended = (recs["w2"][at] & L.EVENT_HEADER_FLAG_EXTENDED_INFO) != 0
        return at[hit], at[extended & ~hit]

    def _manifest_keys(self, key: bytes) -> bool:
        return self.reg.manifest.get(key) is not None

    def _classic_keys(self, key: bytes) -> bool:
        return self.reg.classic.get((key[:16], key[16])) is not None

    def _per_record(self, data, recs, idx, cpu: int, base: int, first: int) -> None:
        """The records at `idx` (in record order) through their decoders, one by one, as the
        registries say."""
        reg = self.reg
        kernel = reg.kernel.get
        manifest, classic, tracelogging = reg.manifest, reg.classic, reg.tracelogging
        key_at, key_end = MANIFEST_KEY.start, MANIFEST_KEY.stop
        guid_at, guid_end, type_at = CLASSIC_GUID.start, CLASSIC_GUID.stop, CLASSIC_TYPE_AT
        extended, has_tl = L.EVENT_HEADER_FLAG_EXTENDED_INFO, has_tl_schema
        offs = recs["off"]
        walk = WALK
        for i, (off, size, type_marker, w3, _w0, w2) in zip(idx.tolist(), recs[idx].tolist()):
            kind, _, lookup = walk[type_marker]
            if lookup is BY_HOOK:
                dec = kernel(w3)
                if dec is HEADER_SENTINEL:
                    self._trace_header(data, off, size, type_marker & 0xFF, base + off)
                    dec = reg.kernel_user_header
            elif lookup is BY_PROVIDER:
                dec = manifest.get(data[off + key_at:off + key_end])
                if dec is None and tracelogging is not None and w2 & extended \
                        and has_tl(data, off, size):
                    batched = self.plans.tl_batch(data, off, size, type_marker & 0xFF, cpu,
                                                  first + i)
                    dec = None if batched else tracelogging
            elif lookup is BY_CLASS:
                dec = classic.get((data[off + guid_at:off + guid_end], data[off + type_at]))
            else:                                    # BY_MESSAGE
                dec = reg.wpp
                self.last_ts = record_ts(data, int(offs[i - 1])) if i > 0 else None
            if dec is not None:
                self.seq = first + i
                self.decode(dec, kind, data, off, size, cpu, base + off)

    def _bad_record(self, at: int, size: int, room: int) -> None:
        self.diag.warn_repeated(
            f"{self.path}: bad record", f"byte {at}",
            f"{self.path}: byte {at}: record size {size} does not fit the {room} bytes left in "
            "its buffer; rest of that buffer skipped")
        self.diag.count("etl_bad_records")

    def _fill_inside(self, at: int, room: int) -> None:
        """Fill (zero or 0xFF bytes) where the buffer header says records go on: a zeroed or
        overwritten region, or a damaged FilledBytes (integrity.py)."""
        self.diag.warn_repeated(
            f"{self.path}: fill inside records", f"byte {at}",
            f"{self.path}: byte {at}: zero or 0xFF bytes where the buffer's records go on for "
            f"{room} more bytes (a zeroed region or a damaged header); rest of that buffer "
            "skipped")
        self.diag.count("etl_bad_records")

    def _unknown_kind(self, at: int, kind: str) -> None:
        """A record of no header kind a current writer uses: real traces have none, a walk
        that lost its way over damaged bytes reads them (its records are miscounted)."""
        self.diag.warn_repeated(
            f"{self.path}: unknown record kind", f"byte {at}",
            f"{self.path}: byte {at}: record of no known header kind ({kind}): damaged bytes "
            "or a writer fpreplay does not know; counted, not decoded")
        self.diag.count("etl_unknown_records")

    # --- decoding one record -------------------------------------------------------------------
    def decode(self, dec, kind, data, off, size, cpu, file_offset) -> int:
        """Run one decoder; returns how many rows it added. A payload that breaks a decoder is
        counted and named in a warning, never a traceback: the bytes are untrusted."""
        try:
            rec = kind.record(self, data, off, size, cpu, file_offset)
            rows = dec(rec, self.ctx)
        except Exception as e:  # noqa: BLE001 - decoders parse untrusted bytes
            name = getattr(dec, "__qualname__", repr(dec))
            n = self.decoder_failures.get(name, 0)
            self.decoder_failures[name] = n + 1
            self.diag.count("etl_undecodable_records")
            if n == 0:
                self.diag.warn(f"{self.path}: byte {file_offset}: record could not be decoded "
                               f"({name}: {e}); such records are counted, not decoded")
            return 0
        if not rows:
            return 0
        for row in rows:
            row["_seq"] = self.seq
            row["_ts_raw"] = rec.ts_raw
            if row.get("ts_ns") is None and rec.ts_ns is not None:
                row["ts_ns"] = rec.ts_ns
            row.setdefault("cpu", cpu)
            row.setdefault("pid", rec.pid)
            row.setdefault("tid", rec.tid)
            row.setdefault("source", self.source)
            row.setdefault("kind", "other")
            if row.get("event_name") is None:
                row["event_name"] = default_name(rec)
            if self.all:
                row.setdefault("provider", str(rec.provider) if rec.provider else None)
                row.setdefault("event_id", rec.event_id)
                row.setdefault("opcode", rec.opcode)
                row.setdefault("version", rec.version)
                row.setdefault("header_kind", rec.header_kind)
        self.rows.extend(rows)
        return len(rows)

    # --- the trace header ----------------------------------------------------------------------
    def _trace_header(self, data, off: int, size: int, htype: int, file_offset: int) -> None:
        """EventTrace/Header: the first one sets the clock; merged files repeat it (ignored)."""
        if self.clock is not None or htype not in (L.HT_SYSTEM32, L.HT_SYSTEM64):
            return
        layout = L.TRACE_LOGFILE_HEADER64 if htype == L.HT_SYSTEM64 else L.TRACE_LOGFILE_HEADER32
        if size < _LOGFILE_AT + layout.sizeof():
            self.diag.warn(f"{self.path}: byte {file_offset}: trace header record too short "
                           f"({size} bytes)")
            return
        lf = layout.parse(bytes(data[off + _LOGFILE_AT: off + _LOGFILE_AT + layout.sizeof()]))
        t0 = SYSTEM.unpack_from(data, off)[-1]     # SystemTime
        try:
            self.clock = Clock(lf.ReservedFlags, lf.StartTime, t0, lf.PerfFreq, lf.CpuSpeedInMHz)
        except ValueError as e:
            self.diag.warn(f"{self.path}: byte {file_offset}: trace header: {e}; "
                           "timestamps treated as 10 MHz ticks from the header's time")
            try:
                self.clock = Clock(L.CLOCK_QPC, lf.StartTime, t0, 10_000_000, 0)
            except ValueError:
                self.clock = Clock(L.CLOCK_QPC, FILETIME_UNIX_EPOCH, t0, 10_000_000, 0)
        self.logfile = lf
        self.ctx.state["clock"] = self.clock
        self.ctx.state["logfile_header"] = lf
        self.stats["trace_start_ns"] = self.clock.start_ns
        if lf.ReservedFlags not in (L.CLOCK_QPC, L.CLOCK_SYSTEM_TIME, L.CLOCK_CPU_CYCLES):
            self.diag.warn(f"{self.path}: clock type {lf.ReservedFlags} unknown; treated as QPC")

    # --- what the merge takes ------------------------------------------------------------------
    def rows_waiting(self) -> int:
        """Rows decoded and not taken yet (asked after every buffer: only `drain` and
        `take_frame` change it, so it is counted once after each)."""
        if self._waiting is None:
            self._waiting = len(self.rows) + sum(f.height for f in self.header_frames) \
                + self.plans.pending()
        return self._waiting

    def take_frame(self) -> pl.DataFrame | None:
        """Rows collected since the last call as one frame with _ts_raw/_seq/ts_ns."""
        self.drain()
        self._waiting = None
        frames = []
        if self.rows:
            schema = dict(EVENT_COLUMNS)
            if self.all:
                schema.update(ALL_RECORD_COLUMNS)
            schema["_ts_raw"] = pl.Int64
            schema["_seq"] = pl.Int64
            rows = self.rows
            # Column by column, not strict: a value a damaged payload pushed out of its dtype's
            # range becomes null instead of failing the whole read. Unknown keys are dropped.
            frames.append(pl.DataFrame([
                pl.Series(name, [r.get(name) for r in rows], dtype=dtype, strict=False)
                for name, dtype in schema.items()]))
            self.rows = []
        frames += self.plans.frames(self.source)
        frames += self.header_frames
        self.header_frames = []
        if not frames:
            return None
        df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        if "ts_ns" not in df.columns:
            df = df.with_columns(ts_ns=pl.lit(None, dtype=pl.Int64))
        if self.clock is not None:
            df = df.with_columns(ts_ns=pl.coalesce(pl.col("ts_ns"),
                                                   self.clock.expr(pl.col("_ts_raw"))))
        return df


# Where a registry's key sits in a record: the manifest's provider GUID + event id, the
# classic one's class GUID then Type byte.
_MANIFEST_KEY = np.arange(MANIFEST_KEY.start, MANIFEST_KEY.stop, dtype=np.int64)
_CLASSIC_KEY = np.concatenate([np.arange(CLASSIC_GUID.start, CLASSIC_GUID.stop),
                               [CLASSIC_TYPE_AT]]).astype(np.int64)


def _registry_hits(data, offs, span, held) -> np.ndarray:
    """Which of the records at `offs` have a key (the bytes at `span` from each) that `held`
    says a registry holds: the keys gathered at once, each distinct one looked up once."""
    raw = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    keys = rows_at(raw, offs + int(span[0]), len(span)) if span is _MANIFEST_KEY \
        else raw[offs.astype(np.int64)[:, None] + span]
    uniq, inv = unique_rows(keys)
    return np.array([held(u.tobytes()) for u in uniq], dtype=bool)[inv]


def default_name(rec: EtlRecord) -> str:
    """A decoded row's event name when its decoder gives none."""
    if rec.group is not None:
        name = KERNEL_GROUPS.get(rec.group, (f"Kernel{rec.group:#04x}",))[0]
        return f"{name}/{rec.opcode}"
    if rec.header_kind == "wpp":
        return f"WPP/{rec.provider}/{rec.event_id}"
    if rec.event_id is not None:
        return f"{rec.provider}/{rec.event_id}"
    return f"{rec.provider}/{rec.opcode}"


