"""compare and sweep fed the lifecycle table in chunks (the spool's way, every policy in
lockstep) answer as over the whole table: summaries, the observed row, per-IRP rows and outcomes,
the sweep's rows; and compare's per-IRP rows reach a sink in row order."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from fpreplay.replay import whatif

SAMPLES = Path(__file__).resolve().parents[2] / "traces" / "samples"
POLICIES = ["always:2", "paging:3", "examine:2:paging OR major = 4", "none"]


@pytest.fixture(scope="module", params=["a-paging-storm", "c-purge-during-incident",
                                        "e-two-disks-every-source"])
def sample(request):
    from fpreplay.lifecycles import build_lifecycles
    from fpreplay.parsers import ReadOptions, read_inputs

    d = SAMPLES / request.param
    if not (d / "trace.etl").is_file():
        pytest.skip(f"sample {request.param} is absent")
    read = read_inputs([d / "trace.etl", *sorted(d.glob("*.txt"))], ReadOptions())
    return read.events, build_lifecycles(read.events, read.diagnostics)


@pytest.mark.parametrize("memory", ["observed", "verifier-random"])
def test_compare_in_chunks_answers_as_whole(sample, memory):
    events, irps = sample
    from fpreplay.engine import parse_memory

    settings = whatif.WhatIfSettings(memory=parse_memory(memory))
    whole = whatif.compare(irps, POLICIES, events=events, settings=settings)
    source = whatif.IrpSource(irps, settings, rows=53)
    parts = whatif.compare(source, POLICIES, events=events, settings=settings)
    assert parts.summaries == whole.summaries and parts.observed == whole.observed
    assert parts.actual == whole.actual and parts.warnings == whole.warnings
    assert parts.per_irp.equals(whole.per_irp)
    for p in whole.policies:
        assert parts.outcomes[p].equals(whole.outcomes[p])
        assert parts.timelines[p].equals(whole.timelines[p])
    # Not kept: the summaries alone, and the per-IRP rows handed on in row order.
    got = []
    lean = whatif.compare(source, POLICIES, events=events, settings=settings, keep=False,
                          sink=got.append)
    assert lean.per_irp is None and lean.summaries == whole.summaries
    assert lean.irps == irps.height
    assert pl.concat(got).equals(whole.per_irp)     # (several seeds: the first seed's rows)


def test_explain_from_a_lean_compare_tells_the_same_story(sample):
    events, irps = sample
    address = irps["irp"][irps.height // 2]
    whole = whatif.compare(irps, POLICIES, events=events)
    lean = whatif.compare(whatif.IrpSource(irps, whatif.WhatIfSettings(), rows=40), POLICIES,
                          events=events, keep=False, explain_irp=address)
    assert whatif.explain(lean, address) == whatif.explain(whole, address)


def test_sweep_in_chunks_answers_as_whole(sample):
    events, irps = sample
    whole = whatif.sweep(irps, "always", events=events, budget_ns=1_000_000)
    parts = whatif.sweep(whatif.IrpSource(irps, whatif.WhatIfSettings(), rows=61), "always",
                         events=events, budget_ns=1_000_000)
    assert parts.rows.equals(whole.rows)
    assert (parts.peak_demand, parts.min_reserved_no_park, parts.min_reserved_within_budget) \
        == (whole.peak_demand, whole.min_reserved_no_park, whole.min_reserved_within_budget)
