"""What needs every IRP of the trace, done once the stream has emitted them all.

The stream emits each instance's row as soon as no event can change it (build.py, order.py),
with what the row itself knows: its events' attributes, its own names for its device (`_dev*`),
its broken-lifecycle note. Four things need the whole trace, and are learned incrementally,
then applied as the spool is read back (finalize), so a row emitted early reads back as the
whole-table build gives it:

* the one name per device (devices.DeviceNames: the distinct name combinations, a handful);
* IRP-less allocation-failure messages tied by device and time (outcome.tie_irpless_failures):
  the messages (rare) and the candidate completions (STATUS_INSUFFICIENT_RESOURCES) are kept
  while reading, a candidate only while a message within TIE_WINDOW_NS of its completion is
  seen or may still come (a storm has thousands of such completions and no message); the tie
  is made at the end, with the final device names, into a small map;
* the lost-event windows, known when the reader is done;
* the outcomes (outcome.decide_outcomes) that depend on the tie, and the fast-I/O tries dropped.

The counts the warnings give (broken, lost, undecided, fast-I/O) are summed by one pass over the
spool at the end, so the warnings come out once, in the words and the order of one build.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles.broken import (
    broken_counts, fs_incomplete, lost_counts, mark_lost, report_broken, report_lost,
)
from fpreplay.lifecycles.devices import DEVICE_COLUMNS, DeviceNames
from fpreplay.lifecycles.outcome import (
    TIE_WINDOW_NS, decide_outcomes, tie_candidates, tie_irpless_failures, undecided_counts,
    warn_undecided,
)
from fpreplay.lifecycles.spool import IrpSpool
from fpreplay.schema import IRP_COLUMNS, IRP_EXTENSION_COLUMNS, conform_irps, empty_irps

STATUS_FLT_DISALLOW_FAST_IO = 0xC01C0004   # a fast-I/O try, not an IRP (etw-formats.md 2.4)
PRUNE_ROWS = 65_536      # candidates added between two tries to drop some
_TIE_COLUMNS = ["_inst", "status", "complete_ns", "major", *DEVICE_COLUMNS]


def _fast_io() -> pl.Expr:
    return (pl.col("status") == STATUS_FLT_DISALLOW_FAST_IO).fill_null(False)


def empty_lifecycles() -> pl.DataFrame:
    return empty_irps().with_columns(pl.lit(None, dtype=t).alias(c)
                                     for c, t in IRP_EXTENSION_COLUMNS.items())


class Finisher:
    """Learns from each emitted row (add), then finishes the spool (finish)."""

    def __init__(self) -> None:
        self.names = DeviceNames()
        self._candidates: list[pl.DataFrame] = []
        self._kept = self._pruned = 0           # candidates kept, and after the last pruning
        self._tied: pl.DataFrame | None = None
        self._lost: list = []

    def add(self, rows: pl.DataFrame, now: int | None, loose: list[pl.DataFrame]) -> None:
        """Rows emitted (raw: before finalize); every event still to come is at or after
        `now`; `loose`: the IRP-less allocation-failure messages so far."""
        self.names.add(rows, _fast_io())
        cand = rows.filter(tie_candidates())
        if cand.height:
            self._candidates.append(cand.select(_TIE_COLUMNS))
            self._kept += cand.height
        if now is not None and self._kept >= self._pruned + PRUNE_ROWS:
            self._prune(now, loose)

    def _prune(self, now: int, loose: list[pl.DataFrame]) -> None:
        """Drop the candidates no message can be tied to: none within TIE_WINDOW_NS of the
        completion, and none can come (the window has passed)."""
        said = np.sort(np.concatenate([f["ts_ns"].to_numpy() for f in loose])) if loose \
            else np.empty(0, dtype=np.int64)
        cand = pl.concat(self._candidates, how="vertical_relaxed")
        done = cand["complete_ns"].to_numpy()
        k = np.searchsorted(said, done - TIE_WINDOW_NS, side="left")
        near = k < len(said)
        near[near] = said[k[near]] <= done[near] + TIE_WINDOW_NS
        keep = near | (done >= now - TIE_WINDOW_NS)
        self._candidates = [cand.filter(pl.Series(keep))]
        self._kept = self._pruned = int(keep.sum())

    def finish(self, spool: IrpSpool, loose: pl.DataFrame, names: pl.Series,
               lost_windows, diagnostics: Diagnostics) -> None:
        """Decide what needed the whole trace, count and warn, and give the spool its
        finalize (see the module)."""
        self.names.resolve(diagnostics)
        # A message names its device as its source does: in the lifecycles' words for the tie.
        loose = loose.with_columns(pl.col("device").replace(self.names.alias_map(False)))
        cand = (self.names.apply(pl.concat(self._candidates, how="vertical_relaxed"))
                if self._candidates else
                empty_irps().with_columns(pl.lit(0, dtype=pl.Int64).alias("_inst")))
        if loose.height:
            tied = tie_irpless_failures(cand, loose, diagnostics)
            self._tied = tied.filter(pl.col("_tied_name").is_not_null()).select(
                "_inst", "_tied_name", "_tied_kind")
        self._candidates = []
        self._lost = lost_windows or []
        self._count(spool, names, diagnostics)

    def _count(self, spool: IrpSpool, names: pl.Series, diagnostics: Diagnostics) -> None:
        """One pass over the spool: each piece becomes the table's rows, and the counts the
        warnings give are summed."""
        undecided, lost, broken, fs_open, fast, kept = [0, 0], [0, 0, 0], [], [0], [0], [0]

        def final(raw: pl.DataFrame) -> pl.DataFrame:
            lc = self.decided(raw)
            for i, n in enumerate(undecided_counts(lc)):
                undecided[i] += n
            broken.append(broken_counts(lc.select(
                pl.when(pl.col("_orphan")).then(pl.lit("orphan")).otherwise(pl.col("_note"))
                .alias("_note"), "_opener", "actual")))
            fs_open[0] += fs_incomplete(lc)
            if self._lost:
                for i, n in enumerate(lost_counts(lc, self._lost)):
                    lost[i] += n
            table = self.table(lc)
            fast[0] += lc.height - table.height
            kept[0] += table.height
            return table

        spool.rewrite(final)
        warn_undecided(diagnostics, *undecided)
        # After the outcomes: an instance whose allocation failed or was refused ended there
        # (the framework fails it in its dispatch, which no source logs as a completion).
        report_broken(diagnostics, pl.concat(broken) if broken else pl.DataFrame(
            schema={"_note": pl.String, "_opener": pl.String, "len": pl.UInt32}), fs_open[0],
            names)
        report_lost(diagnostics, *lost)
        if fast[0]:
            diagnostics.count("fast_io_attempts", fast[0])
            diagnostics.warn(f"{fast[0]} fast-I/O attempt(s) a filter refused (status "
                             "0xC01C0004, the I/O manager then retries with an IRP) are not IRPs "
                             "and are not in the table")
        spool.finish(kept[0], self.names.alias_map(), empty_lifecycles())

    def decided(self, raw: pl.DataFrame) -> pl.DataFrame:
        """Emitted rows with their device names, ties, outcomes and lost-event marks."""
        lc = self.names.apply(raw)
        if self._tied is not None and self._tied.height:
            lc = lc.join(self._tied, on="_inst", how="left", maintain_order="left")
        else:
            lc = lc.with_columns(pl.lit(None, dtype=pl.String).alias("_tied_name"),
                                 pl.lit(None, dtype=pl.String).alias("_tied_kind"))
        lc = decide_outcomes(lc)
        return mark_lost(lc, self._lost) if self._lost else lc

    @staticmethod
    def table(lc: pl.DataFrame) -> pl.DataFrame:
        """Decided rows as the lifecycle table's: the fast-I/O tries dropped, the contract's
        columns, then the extensions (fpreplay.schema.IRP_EXTENSION_COLUMNS)."""
        lc = lc.filter(~_fast_io())
        return conform_irps(lc.select([c for c in (*IRP_COLUMNS, *IRP_EXTENSION_COLUMNS)
                                       if c in lc.columns]), keep_extra=True)
