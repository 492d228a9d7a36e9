"""`sweep`: outcomes against reserve sizes, to find how many reserved requests a policy needs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import polars as pl

from fpreplay.engine import Policy, examine_verdicts, parse_policy
from fpreplay.errors import ConfigError
from fpreplay.replay.whatif.assumptions import seeds_warning
from fpreplay.replay.whatif.outcomes import (
    add_warnings, high_water, queue_operations, window_incidents,
)
from fpreplay.replay.whatif.recommend import Recommendation, fits, from_sweep
from fpreplay.replay.whatif.seeds import combine_rows, figure_range
from fpreplay.replay.whatif.settings import WhatIfSettings
from fpreplay.replay.whatif.stream import Job, as_source, replay_pass
from fpreplay.schema import empty_irps

# A sweep tries every size up to this; beyond it a grid plus a bisection for the answers.
SWEEP_EXHAUSTIVE = 64
# Upper bound on the pool tried when measuring peak demand: more would never be configured.
PEAK_PROBE_CAP = 65_536


@dataclass(frozen=True)
class SweepKind:
    """What a sweep sizes: `always`, `paging` or `examine:SQL`, as the user wrote it, and its
    policy at one reserved request (an examine rule is checked once, not per size)."""

    text: str
    policy: Policy

    def at(self, n: int) -> Policy:
        """The policy with n reserved requests."""
        head = f"{self.policy.kind}:{n}"
        return replace(self.policy, reserved=n,
                       text=f"{head}:{self.policy.sql}" if self.policy.sql else head)


def sweep_kind(kind: str | SweepKind) -> SweepKind:
    """`always`, `paging` or `examine:SQL` (the examine rule's SQL checked now)."""
    if isinstance(kind, SweepKind):
        return kind
    if kind in ("always", "paging"):
        return SweepKind(kind, parse_policy(f"{kind}:1"))
    sql = kind[len("examine:"):].strip() if kind.startswith("examine:") else ""
    if not sql:
        raise ConfigError(f"sweep kind {kind!r}: expected always, paging or examine:SQL")
    # The rule's errors name the kind as written: the user never typed `examine:1:SQL`.
    policy = Policy("examine", 1, sql, kind)
    examine_verdicts(policy, empty_irps())
    return SweepKind(kind, policy)


@dataclass
class Sweep:
    kind: str
    rows: pl.DataFrame
    max_reserved: int
    peak_demand: int | None
    min_reserved_no_park: int | None
    budget_ns: int | None
    min_reserved_within_budget: int | None
    warnings: list[str] = field(default_factory=list)
    # Several seeds run (verifier-random without a seed): their seeds; `rows` and the three
    # answers above are then medians, each row's ranges in row_ranges and the answers' in ranges.
    seeds: list[int] = field(default_factory=list)
    row_ranges: list[dict] = field(default_factory=list)
    ranges: dict = field(default_factory=dict)


def peak_demand(irps, kind: SweepKind, settings: WhatIfSettings,
                queue_ops=None, incidents=None) -> int:
    """Reserved requests in use at once when the pool never runs out (irps: a lifecycle table,
    IrpSpool or IrpSource)."""
    return _Sizer(as_source(irps, settings), kind, settings, queue_ops, incidents).peak()


class _Sizer:
    """One seed's sweep: each size simulated once, the smallest sizes found by bisection. The
    sizes asked at once (fill) are replayed in lockstep: one pass over the table."""

    def __init__(self, source, kind: SweepKind, settings: WhatIfSettings, ops, incidents):
        self.source, self.kind, self.settings = source, kind, settings
        self.ops, self.incidents = ops, incidents
        self.cache: dict[int, dict] = {}
        self.warnings: list[str] = []

    def _run(self, policies: list[Policy]) -> list[Job]:
        jobs = [Job(p, self.settings) for p in policies]
        replay_pass(self.source, jobs, queue_ops=self.ops, incidents=self.incidents)
        for job in jobs:
            add_warnings(self.warnings, job.result)
        return jobs

    def peak(self) -> int:
        cap = max(1, min(self.source.height, PEAK_PROBE_CAP))
        return high_water(self._run([self.kind.at(cap)])[0].result)

    def fill(self, sizes: list[int]) -> None:
        """Replay every size not tried yet, in one pass."""
        todo = [n for n in dict.fromkeys(sizes) if n not in self.cache]
        if not todo:
            return
        for n, job in zip(todo, self._run([self.kind.at(n) for n in todo])):
            s = job.tally.summary(job.policy.text, high_water(job.result))
            self.cache[n] = {"reserved": n} | {k: s[k] for k in _ROW_KEYS}

    def row(self, n: int) -> dict:
        self.fill([n])
        return self.cache[n]

    def smallest(self, ok) -> int | None:
        """The smallest size whose row is ok. Parking and waits only shrink as the pool grows,
        so bisect between the grid points tried."""
        tried = sorted(self.cache)
        first = next((n for n in tried if ok(self.cache[n])), None)
        if first is None:
            return None
        lo, hi = max([n for n in tried if n < first], default=0), first
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(self.row(mid)):
                hi = mid
            else:
                lo = mid
        return hi


_ROW_KEYS = ("rescued", "still_failed", "regressed", "parked", "park_wait_ns",
             "reserve_high_water")


def _sizes(max_reserved: int) -> list[int]:
    if max_reserved <= SWEEP_EXHAUSTIVE:
        return list(range(1, max_reserved + 1))
    # 1..16, then about 24 sizes spaced evenly on a log scale
    step = (max_reserved / 16) ** (1 / 24)
    return sorted({*range(1, 17), max_reserved,
                   *(min(max_reserved, round(16 * step ** k)) for k in range(1, 25))})


_ROW_SCHEMA = {"reserved": pl.UInt32, "rescued": pl.UInt32, "still_failed": pl.UInt32,
               "regressed": pl.UInt32, "parked": pl.UInt32, "reserve_high_water": pl.UInt32,
               "park_wait_p50_ns": pl.Int64, "park_wait_p99_ns": pl.Int64,
               "park_wait_max_ns": pl.Int64}


def sweep(irps, kind: str | SweepKind = "always", *,
          max_reserved: int | None = None, budget_ns: int | None = None,
          events: pl.DataFrame | None = None, settings: WhatIfSettings | None = None) -> Sweep:
    """Outcomes against reserve sizes 1..max (default: up to the peak demand); once per seed
    when the seed is unknowable (WhatIfSettings.runs), every size any seed tried run for all."""
    settings = settings or WhatIfSettings()
    kind = sweep_kind(kind)   # checked before any work
    if max_reserved is not None and max_reserved < 1:
        raise ConfigError(f"largest reserve size {max_reserved}: must be at least 1")
    source = as_source(irps, settings)
    warnings = [*seeds_warning(settings), *source.warnings()]
    ops = queue_operations(events, aliases=source.aliases)
    incidents = window_incidents(source.whole(), events, settings) if settings.window else None
    sizers = [_Sizer(source, kind, run, ops, incidents) for run in settings.runs()]
    answers: dict[str, list] = {}
    if max_reserved is None:
        answers["peak_demand"] = [z.peak() for z in sizers]
        max_reserved = max(1, *answers["peak_demand"])
    for z in sizers:
        z.fill(_sizes(max_reserved))
    answers["min_reserved_no_park"] = [z.smallest(fits) for z in sizers]
    if budget_ns is not None:
        answers["min_reserved_within_budget"] = [
            z.smallest(lambda r: fits(r, budget_ns)) for z in sizers]
    sizes = sorted(set().union(*(z.cache for z in sizers)))
    for z in sizers:
        warnings += [w for w in z.warnings if w not in warnings]
    if len(sizers) == 1:
        rows, row_ranges, ranges = [sizers[0].row(n) for n in sizes], [], {}
        found = {k: v[0] for k, v in answers.items()}
    else:
        combined = [combine_rows([z.row(n) for z in sizers]) for n in sizes]
        rows = [{k: v for k, v in r.items() if k != "range"} for r in combined]
        row_ranges = [r["range"] for r in combined]
        ranges = {k: figure_range(v) for k, v in answers.items()}
        found = {k: r["median"] for k, r in ranges.items()}
    frame = pl.DataFrame([{**{k: v for k, v in r.items() if k != "park_wait_ns"},
                           "park_wait_p50_ns": r["park_wait_ns"]["p50"],
                           "park_wait_p99_ns": r["park_wait_ns"]["p99"],
                           "park_wait_max_ns": r["park_wait_ns"]["max"]} for r in rows],
                         schema=_ROW_SCHEMA)
    return Sweep(kind=kind.text, rows=frame, max_reserved=max_reserved,
                 peak_demand=found.get("peak_demand"),
                 min_reserved_no_park=found["min_reserved_no_park"], budget_ns=budget_ns,
                 min_reserved_within_budget=found.get("min_reserved_within_budget"),
                 warnings=warnings, seeds=settings.seeds, row_ranges=row_ranges,
                 ranges=ranges)


def sweep_rows(s: Sweep) -> list[dict]:
    """The rows of the JSON document (contract 7), park waits nested; with several seeds each
    row's `range` per figure."""
    rows = [{"reserved": r["reserved"], "rescued": r["rescued"],
             "still_failed": r["still_failed"], "regressed": r["regressed"],
             "parked": r["parked"], "reserve_high_water": r["reserve_high_water"],
             "park_wait_ns": {"p50": r["park_wait_p50_ns"], "p99": r["park_wait_p99_ns"],
                              "max": r["park_wait_max_ns"]}}
            for r in s.rows.iter_rows(named=True)]
    for row, ranges in zip(rows, s.row_ranges):
        row["range"] = {k: v for k, v in ranges.items() if k != "reserved"}
    return rows


def recommend_size(s: Sweep) -> Recommendation:
    """The recommendation rule (recommend.py) over a sweep: with its budget the smallest size
    whose p99 park wait fits, else the smallest at which nothing parks."""
    answer = s.min_reserved_within_budget if s.budget_ns is not None else s.min_reserved_no_park
    if s.peak_demand == 0:
        answer = 0                     # nothing waited for a request: no reserve needed
    return from_sweep(s.kind, sweep_rows(s), answer, s.budget_ns)
