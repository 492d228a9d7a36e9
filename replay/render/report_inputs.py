"""What the report page draws besides its JSON documents: the time span of its charts, the
timelines reduced to the points drawn (html_charts.reduce_steps), how many IRPs matter, and the
per-IRP rows of what it shows (stories, strip points, the detailed incidents).

Two ways to the same inputs:

* `whole_inputs(cmp, ...)`: from a Comparison that kept every IRP (compare(keep=True));
* `ReportWatch`: handed to compare(watch=...) over a spool, it gathers them as the chunks pass:
  each timeline reduced as it is produced (html_charts.StepReducer, the step maximum over each
  detailed incident's bins), and only the per-IRP rows the page shows kept (`pick`); memory is
  the page's, not the trace's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from fpreplay.replay import whatif
from fpreplay.replay.render import html_charts as charts
from fpreplay.replay.render.html_timelines import STORY_LIMIT
from fpreplay.schema import FAILED_ACTUALS, STARVED_ACTUALS


@dataclass
class ReportInputs:
    """t0, t1: the charts' time axis; series: ("outstanding",) and ("failures",) as traced,
    (what, policy) for what in parked / in_use / failures -> the reduced (xs, ys); matter: the
    IRPs that matter outside the listed ones (None: count them in cmp.per_irp)."""

    t0: int
    t1: int
    series: dict = field(default_factory=dict)
    matter: int | None = None


def time_span(irps: pl.DataFrame, trace_start_ns: int | None) -> tuple[int, int]:
    """The charts' axis: from the trace start (or first arrival) to the last arrival or
    completion. irps: every IRP's arrive_ns and complete_ns."""
    t0 = int(irps["arrive_ns"].min()) if irps.height else 0
    if trace_start_ns is not None and trace_start_ns <= t0:
        # Charts count seconds from the trace start, as --range does: a time read off a chart
        # can be typed into --range as it is.
        t0 = int(trace_start_ns)
    t1 = int(irps.select(pl.max_horizontal(pl.col("arrive_ns").max(),
                                           pl.col("complete_ns").max())).item() or t0 + 1)
    return t0, max(t1, t0 + 1)


def policy_failures(outcomes: pl.DataFrame) -> pl.DataFrame:
    """Cumulative IRPs the simulation failed for want of memory (refused, or allocation failed
    without forward progress: the trace's failures, by the same names), by completion time."""
    return (outcomes.filter(pl.col("outcome").is_in(FAILED_ACTUALS))
            .select(pl.coalesce("complete_ns", "deliver_ns").alias("ts_ns")).drop_nulls()
            .sort("ts_ns").with_row_index("n", offset=1))


def whole_inputs(cmp: whatif.Comparison, trace_start_ns: int | None) -> ReportInputs:
    """The inputs from a comparison that kept every IRP."""
    t0, t1 = time_span(cmp.per_irp, trace_start_ns)
    actual = whatif.actual_timeline(cmp.per_irp)
    series = {("outstanding",): charts.reduce_steps(actual["ts_ns"], actual["outstanding"],
                                                     t0, t1),
              ("failures",): charts.reduce_steps(actual["ts_ns"], actual["failures"], t0, t1)}
    for p in cmp.policies:
        total = cmp.total(p)
        series["parked", p] = charts.reduce_steps(total["ts_ns"], total["parked"], t0, t1)
        series["in_use", p] = charts.reduce_steps(total["ts_ns"], total["reserved_in_use"],
                                                  t0, t1)
        f = policy_failures(cmp.outcomes[p])
        series["failures", p] = charts.reduce_steps(f["ts_ns"], f["n"], t0, t1)
    return ReportInputs(t0, t1, series)


class WindowMax:
    """The largest value of a step series over each window [lo, hi], counting the value carried
    in (render.json's _step_max), from the series handed on in pieces in time order."""

    NONE = np.iinfo(np.int64).min

    def __init__(self, windows: list[tuple[int, int]]):
        self.lo = np.array([lo for lo, _ in windows], dtype=np.int64)
        self.hi = np.array([hi for _, hi in windows], dtype=np.int64)
        self.best = np.full(len(windows), self.NONE, dtype=np.int64)
        self.before = np.full(len(windows), self.NONE, dtype=np.int64)

    def add(self, ts: np.ndarray, ys: np.ndarray) -> None:
        if not len(ts) or not len(self.lo):
            return
        a = np.searchsorted(ts, self.lo, side="left")
        b = np.searchsorted(ts, self.hi, side="right")
        got = a > 0
        self.before[got] = ys[a[got] - 1]      # the latest value before the window opens
        for i in np.flatnonzero(b > a):
            self.best[i] = max(self.best[i], int(ys[a[i]:b[i]].max()))

    def value(self, i: int) -> int:
        v = max(self.best[i], self.before[i])
        return int(v) if v != self.NONE else 0


class _ActualStream:
    """Outstanding IRPs and cumulative failures as traced (whatif.actual_timeline), produced in
    time order from chunks in arrival order: an event before the chunk's last arrival can no
    longer be preceded by one to come (later IRPs arrive, and so complete, no earlier)."""

    def __init__(self, t0: int, t1: int, windows: list[tuple[int, int]]):
        self.outstanding = charts.StepReducer(t0, t1)
        self.failures = charts.StepReducer(t0, t1)
        self.window = WindowMax(windows)
        self.pending = pl.DataFrame(schema={"ts_ns": pl.Int64, "d": pl.Int64, "f": pl.Int64,
                                            "k": pl.Int8, "row": pl.Int64})
        self.level = self.failed = 0
        self.rows = 0

    def add(self, chunk: pl.DataFrame) -> None:
        n = chunk.height
        rows = pl.int_range(self.rows, self.rows + n, dtype=pl.Int64).alias("row")
        self.rows += n
        starts = chunk.select(pl.col("arrive_ns").cast(pl.Int64).alias("ts_ns"),
                              pl.lit(1, pl.Int64).alias("d"),
                              pl.col("actual").is_in(FAILED_ACTUALS).cast(pl.Int64).alias("f"),
                              pl.lit(0, pl.Int8).alias("k"), rows)
        ends = chunk.select(pl.col("complete_ns").cast(pl.Int64).alias("ts_ns"),
                            pl.lit(-1, pl.Int64).alias("d"), pl.lit(0, pl.Int64).alias("f"),
                            pl.lit(1, pl.Int8).alias("k"), rows).drop_nulls("ts_ns")
        # An IRP without an arrival counts from the start (the whole table sorts it first).
        unknown = starts.filter(pl.col("ts_ns").is_null())
        self.level += unknown.height
        self.failed += int(unknown["f"].sum())
        pending = pl.concat([self.pending, starts.drop_nulls("ts_ns"), ends])
        mark = chunk["arrive_ns"].max()
        if mark is None:
            self.pending = pending
            return
        ready = pending.filter(pl.col("ts_ns") < mark)
        self.pending = pending.filter(pl.col("ts_ns") >= mark)
        self._emit(ready)

    def _emit(self, events: pl.DataFrame) -> None:
        if not events.height:
            return
        events = events.sort("ts_ns", "k", "row")
        ts = events["ts_ns"].to_numpy()
        out = self.level + np.cumsum(events["d"].to_numpy())
        failed = self.failed + np.cumsum(events["f"].to_numpy())
        self.level, self.failed = int(out[-1]), int(failed[-1])
        self.outstanding.add(ts, out)
        self.failures.add(ts, failed)
        self.window.add(ts, out)

    def finish(self) -> None:
        self._emit(self.pending)
        self.pending = self.pending.clear()


class _FailureCount:
    """A policy's cumulative failures (policy_failures) reduced as its failed IRPs are settled,
    in any order: their times kept while few enough to draw each, else counted per column."""

    def __init__(self, t0: int, t1: int, columns: int = charts.COLUMNS):
        self.t0, self.t1, self.columns = t0, t1, columns
        self.span = max(1, t1 - t0)
        self.below = 0
        self.times: list[np.ndarray] | None = []
        self.inside = 0
        self.count = np.zeros(columns + 1, dtype=np.int64)
        self.first = np.full(columns + 1, np.iinfo(np.int64).max, dtype=np.int64)

    def add(self, ts: np.ndarray) -> None:
        self.below += int((ts < self.t0).sum())
        ts = ts[(ts >= self.t0) & (ts <= self.t1)]
        if not len(ts):
            return
        self.inside += len(ts)
        b = (ts - self.t0) * self.columns // self.span
        np.add.at(self.count, b, 1)
        np.minimum.at(self.first, b, ts)
        if self.times is not None:
            self.times.append(ts)
            if self.inside + (self.below > 0) > 2 * self.columns:
                self.times = None

    def result(self) -> tuple[list[int], list[float]]:
        carried = [(self.t0, float(self.below))] if self.below else []
        if self.inside + len(carried) <= 2 * self.columns:
            ts = np.sort(np.concatenate(self.times)) if self.times else np.zeros(0, np.int64)
            pts = carried + [(int(t), float(self.below + k + 1)) for k, t in enumerate(ts)]
            return charts._corners(pts, self.t1) if pts else ([], [])
        count = self.count.copy()
        first = self.first.copy()
        if carried:
            first[0] = self.t0
        keys = np.flatnonzero((count > 0) | (first != np.iinfo(np.int64).max))
        level = self.below + np.cumsum(count)
        pts = [(int(first[k]), float(level[k])) for k in keys for _ in (0, 1)]
        return charts._corners(pts, self.t1)


class ReportWatch:
    """compare(watch=...)'s report: what the page draws gathered as the chunks pass (see the
    module). windows: the detailed incidents' (start_ns, end_ns); bins: the (lo, hi) of their
    timelines' bins; listed: the (irp, arrive_ns) the page lists besides (never completed)."""

    def __init__(self, t0: int, t1: int, policies: list[str], windows: list[tuple[int, int]],
                 bins: list[tuple[int, int]], listed: list[tuple[int, int]],
                 limit: int = STORY_LIMIT):
        self.t0, self.t1, self.policies = t0, t1, policies
        self.windows, self.bins = windows, bins
        self.listed = pl.DataFrame({"irp": [i for i, _ in listed],
                                    "arrive_ns": [a for _, a in listed]},
                                   schema={"irp": pl.UInt64, "arrive_ns": pl.Int64}).unique()
        self.limit = limit
        self.actual = _ActualStream(t0, t1, bins)
        self.fails = {p: _FailureCount(t0, t1) for p in policies}
        self.kept_changed = self.kept_starved = 0
        self.matter = 0
        self.series: dict = {}
        self.bin_max: dict = {}       # (policy, column, lo, hi) -> step max
        self.high_waters: dict = {}   # (policy, lo, hi) -> window_high_water

    # compare's hooks
    def chunk(self, chunk: pl.DataFrame) -> None:
        self.actual.add(chunk)

    def pick(self, base: pl.DataFrame, vs: list[pl.DataFrame]) -> pl.Series:
        """The rows of a block (in row order) the page may show; counts on the way the IRPs
        that matter and each policy's failures."""
        for p, v in zip(self.policies, vs):
            if not v.height:     # (a trace without IRPs: its empty block has no times)
                continue
            failed = v.filter(pl.col("outcome").is_in(FAILED_ACTUALS)).select(
                pl.coalesce("complete_ns", "deliver_ns").cast(pl.Int64)).to_series()
            self.fails[p].add(failed.drop_nulls().to_numpy())
        changed = np.zeros(base.height, dtype=bool)
        for v in vs:
            changed |= (v["verdict"] != "same").fill_null(False).to_numpy()
        starved = base["actual"].is_in(STARVED_ACTUALS).fill_null(False).to_numpy()
        self.matter += int((changed | starved).sum())
        arrive = base["arrive_ns"].cast(pl.Int64)
        special = np.zeros(base.height, dtype=bool)
        for lo, hi in self.windows:
            special |= arrive.is_between(lo, hi).fill_null(False).to_numpy()
        if self.listed.height:
            hit = (base.select(pl.col("irp").cast(pl.UInt64), arrive).with_row_index("_i")
                   .join(self.listed, on=["irp", "arrive_ns"], how="semi")["_i"].to_numpy())
            special[hit] = True
        # The first `limit` changed IRPs and the first `limit` starved ones outside the
        # windows and lists: the stories are told in that order (changed first, by arrival).
        c = changed & ~special
        s = starved & ~changed & ~special
        take_c = c & (np.cumsum(c) + self.kept_changed <= self.limit)
        take_s = s & (np.cumsum(s) + self.kept_starved <= self.limit)
        self.kept_changed += int(take_c.sum())
        self.kept_starved += int(take_s.sum())
        return pl.Series(special | take_c | take_s)

    def result(self, policy: str, result) -> None:
        """A policy's replay is done: its timeline reduced, then let go."""
        tl = result.timeline
        total = whatif.total_timeline(tl)
        self.series["parked", policy] = charts.reduce_steps(total["ts_ns"], total["parked"],
                                                            self.t0, self.t1)
        self.series["in_use", policy] = charts.reduce_steps(
            total["ts_ns"], total["reserved_in_use"], self.t0, self.t1)
        from fpreplay.replay.render.json import _step_max

        for lo, hi in self.bins:
            for col in ("reserved_in_use", "parked"):
                self.bin_max[policy, col, lo, hi] = _step_max(total, col, lo, hi)
        for lo, hi in self.windows:
            self.high_waters[policy, lo, hi] = whatif.window_high_water(tl, lo, hi)

    # after compare
    def finish(self) -> ReportInputs:
        self.actual.finish()
        self.series["outstanding",] = self.actual.outstanding.result()
        self.series["failures",] = self.actual.failures.result()
        for p in self.policies:
            self.series["failures", p] = self.fails[p].result()
        return ReportInputs(self.t0, self.t1, self.series, self.matter)

    def step_max(self, policy: str | None, col: str, lo: int, hi: int) -> int:
        """The step maximum over one of the bins: a policy's total, or (None) outstanding as
        traced."""
        if policy is None:
            return self.actual.window.value(self.bins.index((lo, hi)))
        return self.bin_max[policy, col, lo, hi]

    def high_water(self, policy: str, lo: int, hi: int) -> int:
        return self.high_waters[policy, lo, hi]


def streamed_report(source, irps: pl.DataFrame, incidents: pl.DataFrame,
                    listed: list[tuple[int, int]], policies, *, read, memory: str):
    """compare for the report in one pass over the source (an IrpSource of a spool) keeping only
    what the page shows: (the Comparison, its per_irp and outcomes only those IRPs; the
    incidents document: the incidents the page details in full, the others' overview rows;
    the ReportInputs). irps: every IRP's REPORT_COLUMNS (arrive_ns, complete_ns, deliver_ns,
    actual, irp at least); listed: the (irp, arrive_ns) the page lists besides the incidents'
    (never completed); read: the TraceRead (events, inputs, warnings, trace start)."""
    from fpreplay.replay.render import json as render_json
    from fpreplay.replay.render.html import detailed_incidents

    settings = source.settings
    rows = [render_json.incident_dict(i) for i in incidents.iter_rows(named=True)]
    detailed = detailed_incidents(rows)
    chosen = incidents.filter(pl.col("incident").is_in([i["incident"] for i in detailed]))
    windows = [(i["start_ns"], i["end_ns"]) for i in detailed]
    bins = list(dict.fromkeys(b for i in detailed for b in render_json.incident_bins(i)))
    t0, t1 = time_span(irps, read.trace_start_ns)
    watch = ReportWatch(t0, t1, [whatif.as_policy(p).text for p in policies], windows, bins,
                        [(i, a) for i, a in listed if i is not None and a is not None])
    cmp = whatif.compare(source, policies, events=read.events, settings=settings,
                         incidents=incidents if settings.window else None, keep=False,
                         watch=watch)
    inputs = watch.finish()
    inside = irps.filter(pl.any_horizontal(
        [pl.col("arrive_ns").is_between(lo, hi) for lo, hi in windows] or [pl.lit(False)]))
    per = whatif.incident_outcomes(cmp, chosen, inside, high_water=watch.high_water)
    doc = render_json.incidents_document(read.inputs, memory, cmp, chosen, per,
                                         read.diagnostics.warnings, step_max=watch.step_max)
    full = {i["incident"]: i for i in doc["incidents"]}
    doc["incidents"] = [full.get(r["incident"], r) for r in rows]
    return cmp, doc, inputs
