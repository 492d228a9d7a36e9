"""`compare`: the IRPs replayed under each policy, set against what actually happened; and the
same comparison cut to each low-memory incident."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import polars as pl

from fpreplay.engine import Policy
from fpreplay.replay.whatif.assumptions import seeds_warning
from fpreplay.replay.whatif.outcomes import (
    actual_counts, add_warnings, high_water, observed_from, observed_row, queue_operations,
    summarize, total_timeline, window_high_water, window_incidents,
)
from fpreplay.replay.whatif.recommend import Recommendation, from_comparison
from fpreplay.replay.whatif.seeds import combine_rows, figure_range
from fpreplay.replay.whatif.settings import WhatIfSettings, parse_policies
from fpreplay.replay.whatif.sizing import Sweep, peak_demand, recommend_size, sweep_kind
from fpreplay.replay.whatif.stream import Job, as_source, replay_pass
from fpreplay.schema import FAILED_ACTUALS, STARVED_ACTUALS


@dataclass
class Comparison:
    policies: list[str]
    actual: dict[str, int]
    observed: dict                       # the "what actually happened" row, same keys as a policy
    summaries: list[dict]
    per_irp: pl.DataFrame | None         # None unless kept (compare(keep=True))
    outcomes: dict[str, pl.DataFrame]    # policy -> SimulationResult.outcomes (kept ones)
    timelines: dict[str, pl.DataFrame]   # policy -> SimulationResult.timeline (when built)
    pool_sizes: dict[str, int]           # policy -> N
    warnings: list[str] = field(default_factory=list)
    # Several seeds run (verifier-random without a seed): their seeds, and each seed's own
    # Comparison. `summaries` are then medians with a `range` per figure (seeds.combine_rows);
    # per_irp, outcomes and timelines are the first seed's run.
    seeds: list[int] = field(default_factory=list)
    runs: list[Comparison] = field(default_factory=list, repr=False)
    irps: int = 0                        # IRPs compared
    span: tuple = (None, None)           # first arrival, last arrival or completion
    _totals: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    def total(self, policy: str) -> pl.DataFrame:
        """The policy's timeline summed over queues (computed once)."""
        if policy not in self._totals:
            self._totals[policy] = total_timeline(self.timelines.get(policy))
        return self._totals[policy]


# The lifecycle columns the per-IRP table starts from, where the lifecycles have them.
_BASE_COLUMNS = ("irp", "arrive_ns", "complete_ns", "device", "queue", "major", "minor",
                 "paging", "bytes", "status", "actual", "evidence")


def compare(irps, policies: Sequence[Policy | str], *, events: pl.DataFrame | None = None,
            settings: WhatIfSettings | None = None, incidents: pl.DataFrame | None = None,
            keep: bool = True, timeline: bool | None = None, explain_irp: int | None = None,
            sink: Callable[[pl.DataFrame], None] | None = None, watch=None) -> Comparison:
    """Replay the IRPs under each policy (a Policy or its text) and set each against what
    actually happened; once per seed when the seed is unknowable (WhatIfSettings.runs). Every
    simulation is fed the table's chunks in lockstep (stream.replay_pass): one pass.

    irps: the lifecycle table, or an IrpSpool (read a chunk at a time) or IrpSource.
    keep: per_irp and each policy's outcomes, every IRP's row (memory grows with the trace);
    else only what the summaries need, the rows of the IRPs at address `explain_irp` (for
    explain), and sink(rows) handed the first run's per-IRP rows in order as soon as every
    policy has settled them (compare -o writes so). timeline: build the policies' timelines
    (default: as keep; only the report draws them). watch (keep=False, one run): what the report
    gathers as the pass goes (render.report_inputs.ReportWatch): watch.chunk(chunk) each chunk,
    watch.pick(rows, verdicts) the per-IRP rows to keep (per_irp and outcomes hold only those,
    numbered anew), watch.result(policy, SimulationResult) each replay's result, whose timeline
    is then let go."""
    settings = settings or WhatIfSettings()
    parsed = parse_policies(policies)
    source = as_source(irps, settings)
    warnings = [*seeds_warning(settings), *source.warnings()]
    ops = queue_operations(events, aliases=source.aliases)
    if settings.window and incidents is None:
        incidents = window_incidents(source.whole(), events, settings)
    runs = settings.runs()
    jobs = [Job(p, run) for run in runs for p in parsed]
    side = _TraceSide(source.columns)
    if watch is not None and (keep or len(runs) > 1):
        raise ValueError("compare(watch=...) is for one run that keeps no IRP")
    tables = _PerIrpTables(parsed, len(runs), keep, explain_irp, sink, watch)

    def chunk_seen(chunk: pl.DataFrame) -> None:
        side.add(chunk)
        watch.chunk(chunk)

    def result_in(job: Job) -> None:
        watch.result(job.policy.text, job.result)
        job.result.timeline = job.result.timeline.clear()

    replay_pass(source, jobs, queue_ops=ops, incidents=incidents,
                timeline=(keep or watch is not None) if timeline is None else timeline,
                keep=keep, sink=tables.add if tables.wanted else None,
                base_columns=_BASE_COLUMNS, on_chunk=side.add if watch is None else chunk_seen,
                on_result=None if watch is None else result_in)
    tables.finish(source)
    actual, observed = side.actual(), side.observed()
    out = []
    for r in range(len(runs)):
        mine = jobs[r * len(parsed):(r + 1) * len(parsed)]
        run_warnings: list[str] = []
        for job in mine:
            add_warnings(run_warnings, job.result)
        out.append(Comparison(
            policies=[p.text for p in parsed], actual=actual, observed=observed,
            summaries=[j.tally.summary(j.policy.text, high_water(j.result)) for j in mine],
            per_irp=tables.per_irp(r), outcomes=tables.outcomes(r, mine),
            timelines={j.policy.text: j.result.timeline for j in mine},
            pool_sizes={j.policy.text: int(j.policy.reserved or 0) for j in mine},
            warnings=run_warnings, irps=source.height, span=side.span))
    for r in out:
        add_warnings(warnings, r)
    if len(out) == 1:
        return replace(out[0], warnings=warnings)
    return replace(out[0], summaries=[combine_rows([r.summaries[i] for r in out])
                                      for i in range(len(parsed))],
                   warnings=warnings, seeds=settings.seeds, runs=out, _totals={})


class _TraceSide:
    """What compare needs of the trace itself, summed as its chunks pass: the `actual` counts,
    the IRPs served from the reserve (the observed row), the trace's span."""

    def __init__(self, columns: list[str]):
        self.counts: dict[str, int] = actual_counts(pl.DataFrame({"actual": []},
                                                                  schema={"actual": pl.String}))
        self.reserved: list[pl.DataFrame] = []
        self.first = self.last = None
        self.deliver = "deliver_ns" in columns

    def add(self, chunk: pl.DataFrame) -> None:
        for value, n in chunk.group_by("actual").len().iter_rows():
            self.counts[str(value)] = self.counts.get(str(value), 0) + int(n)
        self.reserved.append(chunk.filter(pl.col("actual") == "reserved").select(
            "irp", "arrive_ns", "complete_ns", "actual",
            *(["deliver_ns"] if self.deliver else [])))
        lo, hi = chunk.select(pl.col("arrive_ns").min().alias("lo"), pl.max_horizontal(
            pl.col("arrive_ns").max(), pl.col("complete_ns").max()).alias("hi")).row(0)
        if lo is not None and (self.first is None or lo < self.first):
            self.first = lo
        if hi is not None and (self.last is None or hi > self.last):
            self.last = hi

    @property
    def span(self) -> tuple:
        return self.first, self.last

    def actual(self) -> dict[str, int]:
        return self.counts

    def observed(self) -> dict:
        reserved = pl.concat(self.reserved) if self.reserved else pl.DataFrame(
            schema={"irp": pl.UInt64, "arrive_ns": pl.Int64, "complete_ns": pl.Int64,
                    "actual": pl.String})
        return observed_from(self.counts, reserved)


class _PerIrpTables:
    """compare's per-IRP tables built from the rows replay_pass hands on in order: each run's
    whole table (keep), the first run's rows of one IRP address (explain), the first run's rows
    handed to a sink as they come."""

    def __init__(self, policies: list[Policy], n_runs: int, keep: bool, explain_irp, sink,
                 watch=None):
        self.texts = [p.text for p in policies]
        self.n_runs, self.keep, self.explain_irp, self.sink = n_runs, keep, explain_irp, sink
        self.watch = watch
        self.blocks: list[list[pl.DataFrame]] = [[] for _ in range(n_runs)]
        self.told: list[pl.DataFrame] = []          # explain: the address's rows
        self.told_outcomes: list[list[pl.DataFrame]] = []
        self.wanted = keep or explain_irp is not None or sink is not None or watch is not None
        self.emitted = False

    def add(self, base: pl.DataFrame, vs: list[pl.DataFrame]) -> None:
        k = len(self.texts)
        self.emitted = True
        for r in range(self.n_runs if self.keep else 1):
            block = base.with_columns(
                col for p, v in zip(self.texts, vs[r * k:(r + 1) * k]) for col in (
                    v["outcome"].alias(f"{p}:outcome"), v["sim_status"].alias(f"{p}:status"),
                    v["parked"].alias(f"{p}:parked"),
                    v["park_wait_ns"].alias(f"{p}:park_wait_ns"),
                    v["verdict"].alias(f"{p}:verdict")))
            if self.keep:
                self.blocks[r].append(block)
            if r == 0 and self.sink is not None:
                self.sink(block)
            if r == 0 and (self.explain_irp is not None or self.watch is not None):
                mine = (self.watch.pick(block, vs[:k]) if self.watch is not None else
                        (base["irp"] == self.explain_irp).fill_null(False))
                if mine.any() or (self.watch is not None and not self.told):
                    self.told.append(block.filter(mine))
                    self.told_outcomes.append([v.filter(mine) for v in vs[:k]])

    def finish(self, source) -> None:
        """A table without rows still has its columns: an empty block when none came."""
        if self.wanted and not any(self.blocks) and not self.told and not self.emitted:
            base = source.whole().select([c for c in _BASE_COLUMNS if c in source.columns])
            empty = pl.DataFrame(schema={"outcome": pl.String, "sim_status": pl.UInt32,
                                         "parked": pl.Boolean, "park_wait_ns": pl.Int64,
                                         "verdict": pl.String})
            self.add(base.clear(), [empty] * (len(self.texts) * self.n_runs))

    def per_irp(self, r: int) -> pl.DataFrame | None:
        if self.keep:
            return pl.concat(self.blocks[r])
        if r == 0 and (self.explain_irp is not None or self.watch is not None):
            return pl.concat(self.told) if self.told else pl.DataFrame(
                schema={"irp": pl.UInt64, "arrive_ns": pl.Int64})
        return None

    def outcomes(self, r: int, jobs: list[Job]) -> dict[str, pl.DataFrame]:
        """Each policy's outcomes: kept ones; else those of the explained IRPs (rows numbered
        as per_irp's)."""
        if self.keep:
            return {j.policy.text: j.result.outcomes for j in jobs}
        if r or not self.told:
            return {}
        out = {}
        for i, p in enumerate(self.texts):
            o = pl.concat([parts[i] for parts in self.told_outcomes])
            if not o.height:     # (no IRP kept: the outcomes' columns, no row)
                from fpreplay.engine.outcomes import OUTCOME_SCHEMA

                out[p] = pl.DataFrame(schema=OUTCOME_SCHEMA)
                continue
            out[p] = o.drop("actual", "verdict").rename({"sim_status": "status"}).with_columns(
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"))
        return out


def default_policies(irps, settings: WhatIfSettings,
                     events: pl.DataFrame | None = None) -> list[Policy]:
    """When the user names no policy: no forward progress, and `always` and `paging` with a
    reserve as large as the trace's peak demand (so the difference shown is the policy's).
    irps: a lifecycle table, IrpSpool or IrpSource."""
    source = as_source(irps, settings)
    ops = queue_operations(events, aliases=source.aliases)
    incidents = window_incidents(source.whole(), events, settings) if settings.window else None
    peak = max(1, *(peak_demand(source, sweep_kind("always"), run, ops, incidents)
                    for run in settings.runs()))
    return parse_policies(["none", f"always:{peak}", f"paging:{peak}"])


def incident_outcomes(cmp: Comparison, incidents: pl.DataFrame,
                      irps: pl.DataFrame, high_water=None) -> list[dict]:
    """Per incident: what happened and, per policy, the compare row over the IRPs that arrived
    inside it; and the IRPs that decided it (those that failed or used the reserve for real, or
    whose verdict under some policy is not `same`). irps: the lifecycles `cmp` was made from.
    With several seeds each policy's row is the median over them, with ranges; the deciding IRPs
    are the first seed's. high_water(policy, start_ns, end_ns): the reserve's high-water mark
    inside an incident (default: window_high_water of cmp's timelines); cmp.per_irp and irps
    need hold only the IRPs that arrived inside the incidents."""
    if cmp.runs:
        each = [incident_outcomes(r, incidents, irps) for r in cmp.runs]
        return [{**first, "policies": [combine_rows([e[i]["policies"][j] for e in each])
                                       for j in range(len(first["policies"]))]}
                for i, first in enumerate(each[0])]
    out = []
    tagged = cmp.per_irp.with_row_index("_row")
    for inc in incidents.iter_rows(named=True):
        arrived_inside = pl.col("arrive_ns").is_between(inc["start_ns"], inc["end_ns"])
        inside = tagged.filter(arrived_inside)
        per_policy = []
        for p in cmp.policies:
            v = inside.select(
                "actual", pl.col(f"{p}:outcome").alias("outcome"),
                pl.col(f"{p}:status").alias("sim_status"),
                pl.col(f"{p}:park_wait_ns").alias("park_wait_ns"),
                pl.col(f"{p}:verdict").alias("verdict"),
                pl.col(f"{p}:parked").alias("parked"))
            hw = (window_high_water(cmp.timelines.get(p), inc["start_ns"], inc["end_ns"])
                  if high_water is None else high_water(p, inc["start_ns"], inc["end_ns"]))
            per_policy.append(summarize(p, v, hw))
        deciding = inside.filter(
            pl.col("actual").is_in(STARVED_ACTUALS)
            | pl.any_horizontal([pl.col(f"{p}:verdict") != "same" for p in cmp.policies])
            if cmp.policies else pl.col("actual").is_in(FAILED_ACTUALS))
        out.append({"incident": inc, "observed": observed_row(irps.filter(arrived_inside)),
                    "policies": per_policy, "irps": deciding})
    return out


def recommend(cmp: Comparison, irps, *, events: pl.DataFrame | None = None,
              settings: WhatIfSettings | None = None, sized: Sweep | None = None
              ) -> Recommendation:
    """The recommendation rule (recommend.py) over a comparison: its best kind, sized by
    `sized` when that sweep is of the same kind (with its budget, as `report` has it), else by
    the compared sizes. When no compared size of the kind serves without parking, its peak
    demand is measured (one more replay per seed, the median over the seeds): the sweep's
    smallest size with no parking."""
    rec = from_comparison(cmp.summaries)
    if rec.kind is not None and sized is not None and sized.kind == rec.kind:
        return recommend_size(sized)
    if rec.kind is None or rec.reserved is not None:
        return rec
    settings = settings or WhatIfSettings()
    source = as_source(irps, settings)
    ops = queue_operations(events, aliases=source.aliases)
    incidents = window_incidents(source.whole(), events, settings) if settings.window else None
    peaks = [peak_demand(source, sweep_kind(rec.kind), run, ops, incidents)
             for run in settings.runs()]
    return from_comparison(cmp.summaries, {rec.kind: figure_range(peaks)["median"]})
