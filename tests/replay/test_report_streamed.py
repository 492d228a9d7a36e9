"""The report's inputs gathered while streaming (render/report_inputs.py) are the whole-table
ones: the timelines reduced as they pass give the points reduce_steps gives the whole series, and
a sample cut into many small chunks gives the same charts, stories, strip points and incident
sections as the comparison that kept every IRP."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from fpreplay.replay import whatif
from fpreplay.replay.render import html_charts as charts
from fpreplay.replay.render import json as render_json
from fpreplay.replay.render.html import detailed_incidents
from fpreplay.replay.render.html_timelines import pick_stories, strip_points
from fpreplay.replay.render.report_inputs import (
    _FailureCount, policy_failures, streamed_report, whole_inputs,
)

from test_whatif_chunks import POLICIES
from test_whatif_chunks import sample as chunk_sample  # noqa: F401  (a fixture)


def _pieces(n: int, rng: random.Random) -> list[tuple[int, int]]:
    cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(0, 12)))) if n > 1 else []
    bounds = [0, *cuts, n]
    return list(zip(bounds, bounds[1:]))


@pytest.mark.parametrize("seed", range(40))
def test_step_series_reduced_in_pieces_is_reduce_steps(seed):
    rng = random.Random(seed)
    n = rng.choice([0, 1, 5, 25, 300])
    ts = np.sort(np.array([rng.randint(0, 1000) for _ in range(n)], dtype=np.int64))
    ys = np.array([rng.randint(0, 9) for _ in range(n)], dtype=np.int64)
    t0, t1 = rng.choice([(0, 1000), (200, 700), (990, 5000), (-50, 10)])
    columns = rng.choice([3, 10, 1500])
    want = charts.reduce_steps(pl.Series(ts), pl.Series(ys), t0, t1, columns)
    got = charts.StepReducer(t0, t1, columns)
    for lo, hi in _pieces(n, rng):
        got.add(ts[lo:hi], ys[lo:hi])
    assert got.result() == want


@pytest.mark.parametrize("seed", range(40))
def test_failures_counted_in_any_order_are_the_cumulative_line(seed):
    rng = random.Random(seed)
    n = rng.choice([0, 1, 7, 40, 400])
    ts = np.array([rng.randint(0, 1000) for _ in range(n)], dtype=np.int64)
    t0, t1 = rng.choice([(0, 1000), (200, 700), (-5, 3)])
    columns = rng.choice([4, 16, 1500])
    outcomes = pl.DataFrame({"outcome": ["refused"] * n, "complete_ns": ts,
                             "deliver_ns": [None] * n}, schema={
        "outcome": pl.String, "complete_ns": pl.Int64, "deliver_ns": pl.Int64})
    f = policy_failures(outcomes)
    want = charts.reduce_steps(f["ts_ns"], f["n"], t0, t1, columns)
    got = _FailureCount(t0, t1, columns)
    for lo, hi in _pieces(n, rng):
        got.add(ts[lo:hi])
    assert got.result() == want


@pytest.fixture(scope="module")
def sample(chunk_sample):
    """A sample (test_whatif_chunks' three) as the report reads it, its incidents cut by a
    short gap into more than the page details."""
    from fpreplay.diagnostics import Diagnostics
    from fpreplay.lifecycles.incidents import detect_incidents

    events, irps = chunk_sample
    read = SimpleNamespace(events=events, inputs=["trace.etl"], trace_start_ns=None,
                           diagnostics=Diagnostics())
    return read, irps, detect_incidents(events, irps, gap_ns=2_000_000)


def test_report_streamed_in_small_chunks_draws_the_whole_table_page(sample):
    read, irps, incidents = sample
    settings = whatif.WhatIfSettings()
    never = irps.filter(pl.col("actual") == "incomplete").sort("arrive_ns").head(3)
    listed = list(zip(never["irp"].to_list(), never["arrive_ns"].to_list()))
    whole = whatif.compare(irps, POLICIES, events=read.events, settings=settings)
    whole_doc = render_json.incidents_document(
        read.inputs, "observed", whole, incidents,
        whatif.incident_outcomes(whole, incidents, irps), read.diagnostics.warnings)
    lean, doc, inputs = streamed_report(whatif.IrpSource(irps, settings, rows=17), irps,
                                        incidents, listed, POLICIES, read=read,
                                        memory="observed")
    assert lean.summaries == whole.summaries and lean.per_irp.height < whole.per_irp.height

    want = whole_inputs(whole, read.trace_start_ns)
    assert (inputs.t0, inputs.t1) == (want.t0, want.t1)
    assert inputs.series == want.series and len(want.series) == 2 + 3 * len(POLICIES)
    assert any(xs for xs, _ in want.series.values())

    # The incidents the page details: the same sections; the others their overview row.
    detailed = {i["incident"] for i in detailed_incidents(whole_doc["incidents"])}
    assert len(whole_doc["incidents"]) > len(detailed) >= 1
    for got, exp in zip(doc["incidents"], whole_doc["incidents"], strict=True):
        if exp["incident"] in detailed:
            assert got == exp
        else:
            assert got == render_json.incident_dict(
                incidents.row(by_predicate=pl.col("incident") == exp["incident"], named=True))

    # The stories told and the strip's points: as from every IRP.
    shown = [(r["irp"], r["arrive_ns"]) for i in whole_doc["incidents"]
             if i["incident"] in detailed for r in i["irp_list"]] + listed
    for limit in (300, 5, 0):
        stories, matter, told = pick_stories(whole, shown, limit=limit)
        assert pick_stories(lean, shown, limit=limit,
                            matter_count=inputs.matter if limit == 300 else None)[0] == stories
    stories, matter, _ = pick_stories(whole, shown)
    assert pick_stories(lean, shown, matter_count=inputs.matter)[1] == matter and stories
    assert strip_points(lean, stories, inputs.t0) == strip_points(whole, stories, want.t0)


def test_report_watch_keeps_the_page_not_the_trace(sample):
    """Outside the detailed incidents only the first STORY_LIMIT changed and starved IRPs of
    each kind are kept (a limit of 2 here)."""
    from fpreplay.replay.render.report_inputs import ReportWatch

    read, irps, incidents = sample
    settings = whatif.WhatIfSettings()
    watch = ReportWatch(0, 1 << 62, POLICIES, [], [], [], limit=2)
    lean = whatif.compare(whatif.IrpSource(irps, settings, rows=5), POLICIES, events=read.events,
                          settings=settings, keep=False, watch=watch)
    assert 0 < lean.per_irp.height <= 4
    assert set(lean.outcomes) == set(POLICIES)
    assert all(o.height == lean.per_irp.height for o in lean.outcomes.values())
    assert watch.finish().matter > 4 or irps.height < 50
