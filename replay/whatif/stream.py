"""The what-if's replays over the lifecycle table a chunk at a time: every simulation a command
runs (a policy, a sweep size, a seed) is fed the same chunk in turn (lockstep), so one pass over
the table serves them all, and only what the answer needs is kept: the summary counters, the park
waits behind the percentiles, and, when asked, the per-IRP rows (row order, every policy's
columns side by side) handed to a sink as soon as every simulation has settled them.

The table is an `IrpSource`: a polars frame (one chunk: the whole-table answer, by the same code)
or an IrpSpool (lifecycles.spool) read in chunks, each with what the driver config tells applied
(assumptions.apply_inferred). What needs the whole trace before the first IRP (the engine's
TraceFacts) comes from a first pass over a few columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from fpreplay.engine import Policy, SimulationResult, Simulator, TraceFacts, survey
from fpreplay.engine.facts import SURVEY_COLUMNS
from fpreplay.replay.whatif.assumptions import apply_inferred, inferred_warning
from fpreplay.replay.whatif.outcomes import percentiles, verdict_columns
from fpreplay.replay.whatif.settings import WhatIfSettings
from fpreplay.schema import ACTUAL_OUTCOMES, STATUS_CANCELLED, STATUS_INVALID_DEVICE_STATE

CHUNK_ROWS = 65_536
_CODES = {a: i for i, a in enumerate(ACTUAL_OUTCOMES)}
# The columns apply_inferred reads besides `actual`.
_INFERRED_COLUMNS = ("alloc_failure", "major", "queue")


class IrpSource:
    """The lifecycle table a command replays: a DataFrame or an IrpSpool (see the module)."""

    def __init__(self, irps, settings: WhatIfSettings, rows: int | None = None):
        """rows: chunk size (a spool's default CHUNK_ROWS; a frame is one chunk unless given)."""
        self.settings = settings
        self.rows = rows
        self.table = irps if isinstance(irps, pl.DataFrame) else None
        self.spool = None if self.table is not None else irps
        self._facts: TraceFacts | None = None
        self._inferred: int | None = None

    @property
    def columns(self) -> list[str]:
        return list(self.table.columns if self.table is not None else self.spool.columns)

    @property
    def height(self) -> int:
        return self.table.height if self.table is not None else self.spool.height

    @property
    def aliases(self) -> dict[str, str]:
        if self.table is not None:
            from fpreplay.lifecycles.devices import alias_map

            return alias_map(self.table)
        return dict(self.spool.aliases)

    def whole(self) -> pl.DataFrame:
        """The whole table, as the what-if replays it. Only memory model `window` asks for it:
        detect_incidents reads every IRP of the trace (its signals and per-incident counts)."""
        whole = self.table if self.table is not None else self.spool.collect()
        return apply_inferred(whole, self.settings)[0]

    def chunks(self, columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
        """The table in arrival order, as the what-if replays it, only `columns` if given."""
        for chunk, _ in self._chunks(columns):
            yield chunk

    def _chunks(self, columns: list[str] | None) -> Iterator[tuple[pl.DataFrame, int]]:
        have = self.columns
        read = None if columns is None else [c for c in dict.fromkeys(
            [*columns, "actual", *_INFERRED_COLUMNS]) if c in have]
        if self.table is not None:
            table = self.table if read is None else self.table.select(read)
            raw = iter([table]) if self.rows is None else (
                table.slice(i, self.rows) for i in range(0, max(table.height, 1), self.rows))
        else:
            raw = self.spool.chunks(read, rows=self.rows or CHUNK_ROWS)
        for chunk in raw:
            chunk, n = apply_inferred(chunk, self.settings)
            yield (chunk if columns is None else
                   chunk.select([c for c in columns if c in chunk.columns])), n

    def facts(self) -> TraceFacts:
        """The engine's TraceFacts (one pass over a few columns, then kept), and on the way
        how many IRPs the driver config turns into the driver's own failures."""
        if self._facts is None:
            inferred = [0]

            def counted():
                for chunk, n in self._chunks(list(SURVEY_COLUMNS)):
                    inferred[0] += n
                    yield chunk
            self._facts = survey(counted())
            self._inferred = inferred[0]
        return self._facts

    def warnings(self) -> list[str]:
        """What the trace cannot tell (assumptions), counted over the whole table."""
        self.facts()
        return inferred_warning(self.settings, self._inferred)


def as_source(irps, settings: WhatIfSettings) -> IrpSource:
    """An IrpSource of a lifecycle table or IrpSpool (an IrpSource as it is)."""
    return irps if isinstance(irps, IrpSource) else IrpSource(irps, settings)


@dataclass
class Job:
    """One simulation of a pass: a policy under one run's settings (WhatIfSettings.runs)."""

    policy: Policy
    settings: WhatIfSettings
    sim: Simulator | None = None
    tally: SummaryTally | None = None
    result: SimulationResult | None = None
    kept: list[pl.DataFrame] = field(default_factory=list)


class SummaryTally:
    """A compare row (contract section 7) summed as outcomes are settled: the counts, and the
    park waits of the IRPs served after parking (the percentiles need every one)."""

    def __init__(self):
        self.counts = dict.fromkeys(("rescued", "still_failed", "regressed", "parked",
                                     "cancelled", "invalid_state"), 0)
        self.waits: list[pl.Series] = []

    def add(self, v: pl.DataFrame) -> None:
        c = self.counts
        got = v.select(
            (pl.col("verdict") == "rescued").sum().alias("rescued"),
            (pl.col("verdict") == "still_failed").sum().alias("still_failed"),
            (pl.col("verdict") == "regressed").sum().alias("regressed"),
            pl.col("parked").sum().alias("parked"),
            (pl.col("sim_status") == STATUS_CANCELLED).sum().alias("cancelled"),
            (pl.col("sim_status") == STATUS_INVALID_DEVICE_STATE).sum().alias("invalid_state"),
        ).row(0, named=True)
        for k, n in got.items():
            c[k] += int(n or 0)
        waits = v.filter(pl.col("parked") & (pl.col("outcome") == "parked_reserved"))
        if waits.height:
            self.waits.append(waits["park_wait_ns"])

    def summary(self, policy_text: str, reserve_high_water: int) -> dict:
        c = self.counts
        waits = pl.concat(self.waits) if self.waits else pl.Series([], dtype=pl.Int64)
        return {"policy": policy_text, "rescued": c["rescued"],
                "still_failed": c["still_failed"], "regressed": c["regressed"],
                "parked": c["parked"], "park_wait_ns": percentiles(waits),
                "cancelled": c["cancelled"], "invalid_state": c["invalid_state"],
                "reserve_high_water": int(reserve_high_water)}


class _Actuals:
    """Each row's `actual`, one byte a row, to set a settled outcome against."""

    def __init__(self):
        self.codes = np.zeros(1 << 16, dtype=np.uint8)
        self.n = 0

    def add(self, actual: pl.Series) -> None:
        codes = actual.replace_strict(_CODES, default=255, return_dtype=pl.UInt8).to_numpy()
        if self.n + len(codes) > len(self.codes):
            grown = np.zeros(max(2 * len(self.codes), self.n + len(codes)), dtype=np.uint8)
            grown[:self.n] = self.codes[:self.n]
            self.codes = grown
        self.codes[self.n:self.n + len(codes)] = codes
        self.n += len(codes)

    def of(self, rows: pl.Series) -> pl.Series:
        codes = pl.Series("actual", self.codes[rows.to_numpy()], dtype=pl.UInt8)
        return codes.replace_strict(list(range(len(ACTUAL_OUTCOMES))), list(ACTUAL_OUTCOMES),
                                    default=None, return_dtype=pl.String)


def replay_pass(source: IrpSource, jobs: list[Job], *, queue_ops=None, incidents=None,
                timeline: bool = False, keep: bool = False,
                sink: Callable[[pl.DataFrame, list[pl.DataFrame]], None] | None = None,
                base_columns: tuple[str, ...] = (),
                on_chunk: Callable[[pl.DataFrame], None] | None = None,
                on_result: Callable[[Job], None] | None = None) -> None:
    """One pass over the source's chunks feeding every job's Simulator in turn. Each job ends
    with its tally (summary counters) and result (SimulationResult; its outcomes every row's
    when `keep`, else none). sink(base, verdicts): the rows every job has settled, in row order,
    as the source's `base_columns` and each job's verdict frame (outcome columns, verdict).
    on_chunk(chunk): each chunk as it passes (what the answer needs besides the replays);
    on_result(job): each job as soon as its result is in (before the next job finishes)."""
    facts = source.facts()
    for job in jobs:
        s = job.settings
        job.sim = Simulator(s.driver.with_policy(job.policy), s.memory, facts=facts,
                            queue_ops=queue_ops, incidents=incidents,
                            service_time_ns=s.service_time_ns, seed=s.seed or 0,
                            timeline=timeline)
        job.tally, job.kept = SummaryTally(), []
    actuals = _Actuals()
    align = _Aligner(len(jobs)) if sink is not None else None
    for chunk in source.chunks():
        if on_chunk is not None:
            on_chunk(chunk)
        actuals.add(chunk["actual"])
        if align is not None:
            align.base(chunk.select([c for c in base_columns if c in chunk.columns]))
        for i, job in enumerate(jobs):
            _settled(job, job.sim.feed(chunk), actuals, keep, align, i)
        if align is not None:
            align.emit(sink)
    for i, job in enumerate(jobs):
        job.result = job.sim.finish()
        _settled(job, job.result.outcomes, actuals, keep, align, i)
        job.sim = None
        if on_result is not None:
            on_result(job)
        if keep:
            job.result.outcomes = pl.concat(job.kept).sort("row") if job.kept else \
                job.result.outcomes
            job.kept = []
    if align is not None:
        align.emit(sink)


def _settled(job: Job, out: pl.DataFrame, actuals: _Actuals, keep: bool, align, i: int) -> None:
    if not out.height and not keep:
        return
    v = verdict_columns(out.rename({"status": "sim_status"}).with_columns(
        actuals.of(out["row"])))
    job.tally.add(v)
    if keep:
        job.kept.append(out)
    if align is not None:
        align.add(i, v)


class _Aligner:
    """Rows handed on in row order once every job has settled them."""

    def __init__(self, n_jobs: int):
        self.next = 0
        self.bases: list[pl.DataFrame] = []
        self.pending: list[list[pl.DataFrame]] = [[] for _ in range(n_jobs)]

    def base(self, frame: pl.DataFrame) -> None:
        self.bases.append(frame)

    def add(self, i: int, v: pl.DataFrame) -> None:
        if v.height:
            self.pending[i].append(v)

    def emit(self, sink) -> None:
        per_job = []
        ready = sum(b.height for b in self.bases)
        for frames in self.pending:
            v = pl.concat(frames).sort("row") if frames else None
            per_job.append(v)
            rows = v["row"].to_numpy() if v is not None else np.zeros(0, dtype=np.int64)
            gap = np.nonzero(rows != self.next + np.arange(len(rows)))[0]
            ready = min(ready, int(gap[0]) if len(gap) else len(rows))
        if ready:
            base = pl.concat(self.bases) if len(self.bases) > 1 else self.bases[0]
            self.bases = [base.slice(ready)] if base.height > ready else []
            sink(base.slice(0, ready), [v.slice(0, ready) for v in per_job])
            self.next += ready
        self.pending = [[v.slice(ready)] if v is not None and v.height > ready else []
                        for v in per_job]
