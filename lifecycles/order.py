"""Final lifecycle rows into the spool in arrival order, with memory bounded whatever stays open.

The stream settles an instance (no later event can change its row) long before the instances
that arrived before it may settle: an inverted-call IOCTL stays open for the whole trace, and
every IRP that arrives after it must follow it in the table. So rows are released against a
watermark: the earliest arrival of an instance not yet settled, and the time of the first event
not yet processed (every later instance arrives at or after it). A settled row that arrives
before the watermark can never be preceded by a row still to come, so it goes to the spool;
the others are held.

Held rows stay in memory up to HELD_MAX_ROWS; past it they are sorted by arrival and written
as one Parquet "run". Runs are merged into the spool when the watermark passes them: each run is
read a block (BLOCK_ROWS) at a time from a cursor, and a block merge releases every row up to the
smallest last key among the blocks. Memory is then the held rows, one block per run and the open
instances, whatever the trace's length; the disk holds what waits. Why not one sort at the end:
the spool must be read back many times (the what-if replays several policies over it) and cheap
to read, so it is written once, already in order, as plain sequential files; and why not a merge
of every batch's rows on each read: each read would pay it, and a trace where nothing stays open
(the usual case) would pay it for nothing, when here its rows pass straight to the spool.

The order is (arrive_ns, _inst): _inst numbers instances in the order of their first events, the
order build_lifecycles always gave to IRPs that arrive at one instant.
"""

from __future__ import annotations

import polars as pl

from fpreplay.lifecycles.spool import IrpSpool

HELD_MAX_ROWS = 262_144
BLOCK_ROWS = 4_096
KEY = ["arrive_ns", "_inst"]


def _upto(key: tuple[int, int]) -> pl.Expr:
    """Rows whose (arrive_ns, _inst) is at most `key`."""
    return (pl.col("arrive_ns") < key[0]) | ((pl.col("arrive_ns") == key[0])
                                             & (pl.col("_inst") <= key[1]))


def _prefix(rows: pl.DataFrame, *conditions: pl.Expr | None) -> int:
    """How many first rows of `rows` (sorted by KEY) meet every condition (None: any row)."""
    conditions = [c for c in conditions if c is not None]
    if not conditions:
        return rows.height
    return int(rows.select(pl.all_horizontal(conditions).sum()).item())


class _Run:
    """Held rows sorted by KEY in a Parquet file, read a block at a time from a cursor."""

    def __init__(self, spool: IrpSpool, rows: pl.DataFrame, number: int) -> None:
        self.path = spool.scratch_dir() / f"held-{number:06d}.parquet"
        rows.write_parquet(self.path, compression="lz4", row_group_size=BLOCK_ROWS,
                           statistics=False)
        self.rows = rows.height
        self.cursor = 0
        self.block = rows.head(0)

    def head(self) -> pl.DataFrame:
        """The rows of the current block not yet released (the next block when it is spent)."""
        if self.block.height == 0 and self.cursor < self.rows:
            self.block = pl.scan_parquet(self.path).slice(self.cursor, BLOCK_ROWS).collect()
            self.cursor += self.block.height
        return self.block

    def last_of_file(self) -> bool:
        return self.cursor >= self.rows

    def take(self, n: int) -> pl.DataFrame:
        taken, self.block = self.block.head(n), self.block.slice(n)
        return taken

    def done(self) -> bool:
        return self.block.height == 0 and self.cursor >= self.rows


class ArrivalOrder:
    """Settled rows in (add), rows out to the spool in arrival order (see the module)."""

    def __init__(self, spool: IrpSpool) -> None:
        self.spool = spool
        self.held: pl.DataFrame | None = None
        self.runs: list[_Run] = []
        self._made = 0

    def add(self, settled: pl.DataFrame, watermark: int | None) -> None:
        """Settled rows (any order); every row still to come arrives at or after `watermark`
        (None: none comes, release everything)."""
        if settled.height:
            self.held = settled if self.held is None else pl.concat(
                [self.held, settled], how="vertical_relaxed")
        if self.held is None and not self.runs:
            return
        if watermark is None:
            ready, self.held = self.held, None
        elif self.held is not None:
            early = self.held["arrive_ns"] < watermark
            ready = self.held.filter(early) if not early.all() else self.held
            self.held = self.held.filter(~early) if not early.all() else None
        else:
            ready = None
        if ready is not None and ready.height == 0:
            ready = None
        if ready is not None:
            ready = ready.sort(KEY)
        if self.runs:
            self._merge(ready, watermark)
        elif ready is not None:
            self.spool.append(ready)
        if self.held is not None and self.held.height > HELD_MAX_ROWS:
            self.runs.append(_Run(self.spool, self.held.sort(KEY), self._made))
            self._made += 1
            self.held = None

    def _merge(self, ready: pl.DataFrame | None, watermark: int | None) -> None:
        """Release the runs' rows that arrive before `watermark`, with `ready` (sorted), in
        order, a block at a time."""
        before = None if watermark is None else pl.col("arrive_ns") < watermark
        while True:
            active = [r for r in self.runs
                      if r.head().height and (watermark is None
                                              or r.block["arrive_ns"][0] < watermark)]
            if not active:
                break
            # Every row up to the smallest last key of a block whose run goes on is final.
            bounds = [tuple(r.block.select(KEY).row(-1)) for r in active if not r.last_of_file()]
            upto = _upto(min(bounds)) if bounds else None
            out = []
            for r in active:
                n = _prefix(r.block, before, upto)
                if n:
                    out.append(r.take(n))
            if ready is not None:
                n = _prefix(ready, None, upto)
                if n:
                    out.append(ready.head(n))
                    ready = ready.slice(n) if n < ready.height else None
            if not out:
                break
            self.spool.append(pl.concat(out, how="vertical_relaxed").sort(KEY))
        for r in [r for r in self.runs if r.done()]:
            r.path.unlink(missing_ok=True)
        self.runs = [r for r in self.runs if not r.done()]
        if ready is not None and ready.height:
            self.spool.append(ready)
