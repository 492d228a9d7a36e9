"""The watermark merge: per-CPU buffers arrive out of time order, so decoded rows wait in a
bounded pending table and are released once every recently active CPU has logged past them."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

PENDING_FLUSH_ROWS = 200_000                       # rows collected before trying to release some
PENDING_MAX_ROWS = 500_000                         # bound on rows waiting for a slow CPU


class Merge:
    """Rows of one trace's walker, released in time order (_ts_raw, then record order)."""

    def __init__(self, walker, flush_rows: int | None = None):
        self.walker = walker
        self.flush_rows = flush_rows or PENDING_FLUSH_ROWS
        # The walker classifies records in bunches (walk.py): never more than a flush's worth.
        walker.defer_records = min(walker.defer_records, self.flush_rows)
        self.pending: pl.DataFrame | None = None
        self.unseen_expired = False                # stopped waiting for CPUs that never logged
        self.released_upto: int | None = None

    def flush(self, final: bool = False) -> Iterator[pl.DataFrame]:
        """Release every pending row no CPU can still precede (all rows if final)."""
        w = self.walker
        if not final and w.rows_waiting() < self.flush_rows:
            return
        df = w.take_frame()
        if df is not None and "source" in df.columns:
            df = df.drop("source")      # the walker's file on every row: put back on release
        if df is not None:
            self.pending = df if self.pending is None else pl.concat(
                [self.pending, df], how="diagonal_relaxed")
        if self.pending is None or self.pending.height == 0:
            return
        pending = self.pending.sort(["_ts_raw", "_seq"], nulls_last=False, maintain_order=True)
        if final:
            out, rest = pending, None
        else:
            cut = self._cut(pending["_ts_raw"])
            out, rest = pending.head(cut), pending.slice(cut)
        self.pending = rest
        if out.height:
            lo = out["_ts_raw"].drop_nulls()
            if self.released_upto is not None and lo.len() and lo.min() < self.released_upto:
                w.diag.count("etl_rows_released_late")
            if lo.len():
                self.released_upto = lo.max()
            yield out.drop(["_ts_raw", "_seq"]).with_columns(source=pl.lit(w.source))

    def _cut(self, ts: pl.Series) -> int:
        """How many of the sorted pending rows can go. Each CPU's buffers come in time order, so
        nothing older than the slowest CPU's newest record can still arrive. A CPU that went
        quiet would hold every row back: past PENDING_MAX_ROWS stop waiting for the slowest
        until it logs again. CPUs not seen yet (the header says how many there are) could
        precede anything."""
        w = self.walker
        marks = {c: t for c, t in w.cpu_last_ts.items() if c not in w.cpu_expired}
        unseen = w.logfile is not None and not self.unseen_expired \
            and len(w.cpu_last_ts) < w.logfile.NumberOfProcessors
        cut = 0 if unseen or not marks else ts.search_sorted(min(marks.values()), "right")
        while ts.len() - cut > PENDING_MAX_ROWS and (unseen or marks):
            if unseen:
                unseen, self.unseen_expired = False, True
            else:
                del marks[min(marks, key=marks.__getitem__)]
                w.cpu_expired = set(w.cpu_last_ts) - set(marks)
            w.diag.count("etl_merge_forced")
            cut = ts.search_sorted(min(marks.values()), "right") if marks else ts.len()
        return cut
