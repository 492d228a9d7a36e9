"""Replay an IRP lifecycle table through the queue model under a policy and a memory model.

Per-IRP inputs (does the allocation fail, what the policy says, how long the driver holds it,
with which status) are computed once per run for all IRPs with polars/numpy. Then:

* IRPs that provably cannot interact with anything are settled vectorized: on a queue that
  dispatches in parallel without a limit and sees no queue operation, a request is presented at
  once and never waits, so an IRP that allocates normally is delivered at its arrival and
  completes after its service time; refusals and non-forward-progress allocation failures are
  completed at arrival. None of them touches the reserved pool.
* Everything else (IRPs that need a reserved request, and every IRP of a queue with a dispatch
  limit, a sequential/manual type or queue operations) runs event by event through
  `fpreplay.engine.model` — the same model the edge-case tests drive.

`simulate(..., fast=False)` runs every IRP through the model: the reference the fast path is
tested against.

`Simulator` is the same replay fed the lifecycle table a chunk at a time (in arrival order):
`feed(chunk)` returns the outcomes of the IRPs it can settle (every vectorized row; an
event-loop IRP once completed), `finish()` the rest and the SimulationResult. What needs the
whole trace up front (its devices, first arrival and median holds: engine.facts) comes from a
first cheap pass, `survey(chunks)`; what carries from chunk to chunk: each device's model (its
pools built lazily and grown as users come, see Replay.grow_pools), the IRPs still queued, held
or parked, and each device's random generator. `simulate` is one chunk fed to it.

Simultaneous events are applied in this order: completions, then queue operations, then
arrivals; ties keep input order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.perf import cyclic_gc_paused
from fpreplay.schema import IRP_MJ_CLEANUP

from .config import DriverModel, MemoryModel
from .event_loop import Replay, assignable_policies, run_slow
from .facts import TraceFacts, survey
from .inputs import Draws, prepare, prepare_warnings, queue_operations
from .outcomes import (OUTCOME_SCHEMA, OUTCOMES, SimulationResult, build_timeline, empty_timeline,
                       finish_diagnostics, high_waters, records_frame, vectorized_outcomes)
from .status import ACTION_USE_RESERVED

POOL_BUILD_LIMIT = 1 << 16       # reserved requests built as objects before capping (see simulate)
_SLOW_COLUMNS = ("_dev", "row", "arrive_ns", "major", "minor", "irp_flags", "bytes", "_queue",
                 "_fail", "_verdict", "_hold", "_dstatus", "_res", "file_object", "_io")


def simulate(irps: pl.DataFrame, driver: DriverModel, memory: MemoryModel, *,
             queue_ops: pl.DataFrame | None = None,
             incidents: list[tuple[int, int]] | pl.DataFrame | None = None,
             service_time_ns: int | None = None, seed: int = 0, race_windows: bool = False,
             fast: bool = True, timeline: bool = True) -> SimulationResult:
    """Replay `irps` (fpreplay.irps/1) through `driver` under `memory`; see the module doc.

    incidents: [start_ns, end_ns] windows (or a frame with those columns) for memory `window`.
    timeline: build the per-queue timeline (else an empty one).
    """
    sim = Simulator(driver, memory, facts=survey([irps]), queue_ops=queue_ops,
                    incidents=incidents, service_time_ns=service_time_ns, seed=seed,
                    race_windows=race_windows, fast=fast, timeline=timeline, keep=True)
    sim.feed(irps)
    return sim.finish()


class Simulator:
    """One replay fed in chunks (see the module doc). facts: survey() of the whole table;
    keep: finish() returns every IRP's outcome (else only those settled at the end: the caller
    kept what feed returned)."""

    def __init__(self, driver: DriverModel, memory: MemoryModel, *, facts: TraceFacts,
                 queue_ops: pl.DataFrame | None = None, incidents=None,
                 service_time_ns: int | None = None, seed: int = 0, race_windows: bool = False,
                 fast: bool = True, timeline: bool = False, keep: bool = False):
        self.driver, self.memory, self.facts = driver, memory, facts
        self.incidents, self.service_time_ns = incidents, service_time_ns
        self.race, self.fast, self.timeline, self.keep = race_windows, fast, timeline, keep
        self.diag = Diagnostics()
        self.fp_queues = assignable_policies(driver, self.diag)
        self.ops_diag, self.run_diag = Diagnostics(), Diagnostics()
        self.op_list = queue_operations(queue_ops, driver, facts.devices, self.ops_diag)
        self.nq = len(driver.queues)
        self.qindex = {q.name: i for i, q in enumerate(driver.queues)}
        self.first_op: dict[int, int] = {}
        for ts, _, name, dev in self.op_list:
            self.first_op.setdefault(dev * self.nq + self.qindex[name], ts)
        self.draws = Draws(memory, seed)
        self.tally: Counter = Counter()
        self.users: Counter = Counter()          # pool users so far, per (device, queue) key
        self.replays: dict[int, Replay] = {}
        self.pending: list = []                  # event-loop IRPs not completed yet
        self.kept: list[pl.DataFrame] = []
        self.fast_rows: list[pl.DataFrame] = []  # the timeline's vectorized deliveries
        self.outcome_counts: Counter = Counter()
        self.rows = 0
        self.last_arrival: int | None = None

    def feed(self, chunk: pl.DataFrame) -> pl.DataFrame:
        """Replay the next rows of the table (rows numbered on from the previous chunks'); the
        outcomes (OUTCOME_SCHEMA) of those IRPs, and earlier ones, whose fate is now known."""
        df = prepare(chunk, self.driver, self.memory, self.fp_queues, self.incidents,
                     self.service_time_ns, self.facts, self.draws, self.tally, self.rows)
        self.rows += chunk.height
        if not df.height:
            return pl.DataFrame(schema=OUTCOME_SCHEMA)
        first, last = df["arrive_ns"][0], df["arrive_ns"][-1]
        if self.last_arrival is not None and first < self.last_arrival:
            raise ValueError(f"IRP chunks out of arrival order ({first} after {self.last_arrival})")
        self.last_arrival = last
        df = df.with_columns((pl.col("_dev") * self.nq + pl.col("_queue").replace_strict(
            self.qindex, return_dtype=pl.UInt32)).alias("_qkey"))
        needs_pool = pl.col("_fpq") & pl.col("_io") & pl.col("_fail") & \
            (pl.col("_verdict") == ACTION_USE_RESERVED)
        df = df.with_columns(self._needs_event_loop(needs_pool).alias("_slow"))
        for key, n in df.filter(needs_pool).group_by("_qkey").len().iter_rows():
            self.users[key] += n
        if self.timeline:
            self.fast_rows.append(df.filter(~pl.col("_slow") & ~pl.col("_fail") & pl.col("_io"))
                                  .select(pl.col("_qkey").alias("q"), "arrive_ns", "_hold"))
        parts = [vectorized_outcomes(df).cast(OUTCOME_SCHEMA)]
        # An IRP_MJ_CLEANUP of a known file object flushes that file object's IRPs on its device.
        cleanup = (pl.col("major") == IRP_MJ_CLEANUP) & pl.col("file_object").is_not_null()
        slow = df.filter((pl.col("_slow") & pl.col("_io")) | cleanup.fill_null(False)).select(
            *_SLOW_COLUMNS,
            pl.when(pl.col("actual") == "cancelled").then(pl.col("complete_ns")).alias("_cancel"))
        del df
        # Many small long-lived objects (and the outcome tuples read off them): pause the GC.
        with cyclic_gc_paused():
            ran = set()
            for d, rows in _per_device(slow):
                replay = self.replays.get(d)
                if replay is None and not rows["_io"].any():
                    continue        # only cleanups, and no IRP of the device to flush yet
                replay = replay or self._replay(d)
                replay.grow_pools(self._pool_sizes(d))
                self.pending += run_slow(rows.drop("_dev"), replay, final=False, until=last)
                ran.add(d)
            for d, replay in self.replays.items():    # what comes before any later arrival
                if d not in ran:
                    replay.run([], final=False, until=last)
            parts.append(self._settled(finished=False))
        return self._emit(parts)

    def finish(self) -> SimulationResult:
        """Run every device to the end; the result (outcomes: see `keep`)."""
        with cyclic_gc_paused():
            for d in sorted(self.replays):
                self.replays[d].run([], final=True)
            last = self._settled(finished=True)
        outcomes = self._emit([last])
        if self.keep:
            outcomes = pl.concat(self.kept).sort("row") if self.kept else outcomes
            self.kept = []
        replays = [self.replays.get(d) or self._replay(d, build=False)
                   for d in range(max(len(self.facts.devices), 1))]
        diag = self.diag
        prepare_warnings(self.tally, diag)
        for other in (self.ops_diag, self.run_diag):
            for w in other.warnings:
                diag.warn(w)
            for name, n in other.counters.items():
                diag.count(name, n)
        finish_diagnostics(replays, diag)
        for o in OUTCOMES:
            if self.outcome_counts[o]:
                diag.count(f"outcome_{o}", self.outcome_counts[o])
        timeline = (build_timeline(replays, self.fast_rows, self.driver, self.fp_queues,
                                   self.facts.devices) if self.timeline else empty_timeline())
        self.fast_rows = []
        return SimulationResult(outcomes=outcomes, timeline=timeline,
                                reserve_high_water=high_waters(replays, self.driver,
                                                               self.facts.devices),
                                warnings=list(diag.warnings), counters=dict(diag.counters))

    # --- helpers --------------------------------------------------------------------------
    def _replay(self, d: int, build: bool = True) -> Replay:
        ops = [(ts, method, name) for ts, method, name, dev in self.op_list if dev == d]
        replay = Replay(self.driver, self.fp_queues, self.race, self.run_diag,
                        {name: 1 for name in self.fp_queues}, key_base=d * self.nq, ops=ops,
                        timeline=self.timeline)
        if build:
            self.replays[d] = replay
        return replay

    def _pool_sizes(self, d: int) -> dict[str, int]:
        """How many reserved requests each pool of device d needs so far: one more than its
        users (a pool larger than that is never exhausted: see Replay.grow_pools), at most N."""
        return {name: self.users[d * self.nq + i] + 1 for name, i in self.qindex.items()
                if self.fp_queues[name] is not None}

    def _settled(self, finished: bool) -> pl.DataFrame:
        """The event-loop IRPs now completed (all of them when finished)."""
        if finished:
            done, self.pending = self.pending, []
        else:
            done = [irp for irp in self.pending if irp.done]
            if done:
                self.pending = [irp for irp in self.pending if not irp.done]
        return records_frame(done)

    def _emit(self, parts: list[pl.DataFrame]) -> pl.DataFrame:
        out = pl.concat([p for p in parts if p.height] or [parts[0]]).sort("row")
        for o, n in out["outcome"].value_counts().iter_rows():
            self.outcome_counts[o] += n
        if self.keep:
            self.kept.append(out)
        return out

    def _needs_event_loop(self, needs_pool: pl.Expr) -> pl.Expr:
        """Which IRPs need the event loop: pool users; everything on a queue that can make
        requests wait (sequential, manual, a parallel limit); on a queue with operations, every
        IRP not entirely over (arrived and completed) before the first operation reaches it.
        IRPs that reach no queue never do: they pass by at their observed times."""
        if not self.fast:
            return pl.col("_io")
        busy = [q.name for q in self.driver.queues
                if q.dispatch != "parallel" or q.limit is not None]
        slow = needs_pool | pl.col("_queue").is_in(busy)
        if self.first_op:
            t_op = pl.col("_qkey").replace_strict(self.first_op, default=None,
                                                  return_dtype=pl.Int64)
            # A failed allocation that does not use the pool completes at arrival.
            ends = pl.when(pl.col("_fail")).then(pl.col("arrive_ns")) \
                .otherwise(pl.col("arrive_ns") + pl.col("_hold"))
            over_before = (pl.col("arrive_ns") < t_op) & (ends <= t_op)   # completions go first
            slow = slow | (t_op.is_not_null() & ~over_before.fill_null(False))
        return slow & pl.col("_io")


def _per_device(slow: pl.DataFrame):
    """(device index, its event-loop rows in processing order) for each device with any."""
    for (d,), rows in slow.partition_by("_dev", as_dict=True, maintain_order=True).items():
        yield int(d), rows


def chunked(irps: pl.DataFrame, rows: int) -> Iterable[pl.DataFrame]:
    """A table as chunks of at most `rows` rows (tests and benches feed a Simulator so)."""
    for start in range(0, max(irps.height, 1), rows):
        yield irps.slice(start, rows)
