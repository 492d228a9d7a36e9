"""A replay fed the lifecycle table in chunks (Simulator) answers exactly as one fed the whole
table (simulate): per-IRP outcomes, timeline, high-water marks, warnings and counters."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpreplay.engine import Simulator, parse_memory, simulate, survey
from fpreplay.engine.config import DriverModel, QueueModel, parse_policy
from fpreplay.engine.simulation import chunked

STATUS_OF = {"ok": 0, "reserved": 0, "failed": 0xC0000010, "cancelled": 0xC0000120,
             "alloc_failed": 0xC000009A, "refused": 0xC0000001, "incomplete": None}
SCHEMA = {"irp": pl.UInt64, "device": pl.String, "major": pl.UInt8, "irp_flags": pl.UInt32,
          "file_object": pl.UInt64, "arrive_ns": pl.Int64, "complete_ns": pl.Int64,
          "service_ns": pl.Int64, "status": pl.UInt32, "actual": pl.String}


@st.composite
def tables(draw, max_n=40):
    """Lifecycle rows in arrival order on two devices, some IRPs long enough to stay open
    across any chunk boundary, addresses reused (a later IRP at an earlier one's address),
    cleanups of the file objects the I/O is on."""
    n = draw(st.integers(0, max_n))
    rows, t = [], 0
    for i in range(n):
        t += draw(st.integers(0, 3)) * 1000
        actual = draw(st.sampled_from(list(STATUS_OF)))
        major = draw(st.sampled_from([3, 4, 0x0E, 0x12, 0x0D]))
        service = draw(st.sampled_from([0, 1000, 5000, 40_000]))
        never = actual in ("alloc_failed", "refused")
        rows.append({
            "irp": 0x1000 + draw(st.integers(0, 5)), "device": draw(st.sampled_from(["d0", "d1"])),
            "major": major, "irp_flags": draw(st.sampled_from([0, 2, 0x43])),
            "file_object": draw(st.sampled_from([None, 7, 9])), "arrive_ns": t,
            "complete_ns": None if actual == "incomplete" else t + (0 if never else service),
            "service_ns": None if never or actual == "incomplete" else service,
            "status": STATUS_OF[actual], "actual": actual})
    return pl.DataFrame(rows, schema=SCHEMA)


def driver_for(policy: str, dispatch) -> DriverModel:
    q = QueueModel(name="default", default=True, dispatch=dispatch[0], limit=dispatch[1],
                   policy=parse_policy(policy), cancelable=True)
    return DriverModel(queues=(q,))


def chunked_run(irps: pl.DataFrame, sizes: list[int], driver, memory, **kw):
    """Feed `irps` cut into chunks of `sizes` rows (the last takes the rest); the result, its
    outcomes those feed and finish returned, in row order."""
    chunks, start = [], 0
    for size in sizes:
        chunks.append(irps.slice(start, size))
        start += size
    chunks.append(irps.slice(start))
    sim = Simulator(driver, memory, facts=survey(chunks), timeline=True, **kw)
    got = [sim.feed(c) for c in chunks]
    res = sim.finish()
    res.outcomes = pl.concat([*got, res.outcomes]).sort("row")
    return res


def assert_same(a, b) -> None:
    assert a.outcomes.equals(b.outcomes)
    assert a.timeline.equals(b.timeline)
    assert a.reserve_high_water == b.reserve_high_water
    assert a.warnings == b.warnings
    assert a.counters == b.counters


ops_tables = st.lists(st.tuples(st.integers(0, 120).map(lambda t: t * 1000),
                                st.sampled_from(["queue_stop", "queue_start", "queue_purge"]),
                                st.sampled_from(["d0", "d1"])), max_size=3).map(
    lambda ops: pl.DataFrame({"ts_ns": [t for t, _, _ in ops], "kind": [k for _, k, _ in ops],
                              "queue": [None] * len(ops), "device": [d for _, _, d in ops]},
                             schema={"ts_ns": pl.Int64, "kind": pl.String, "queue": pl.String,
                                     "device": pl.String}))


@settings(max_examples=150, deadline=None)
@given(irps=tables(), cuts=st.lists(st.integers(0, 12), max_size=6),
       policy=st.sampled_from(["none", "always:1", "always:3", "paging:2",
                               "examine:2:paging OR major = 4"]),
       dispatch=st.sampled_from([("parallel", None), ("parallel", 2), ("sequential", None)]),
       memory=st.sampled_from(["observed", "fail-all", "verifier-random:7", "random:0.4:5"]),
       ops=ops_tables, race=st.booleans())
def test_chunks_answer_as_the_whole_table(irps, cuts, policy, dispatch, memory, ops, race):
    driver, mem = driver_for(policy, dispatch), parse_memory(memory)
    whole = simulate(irps, driver, mem, queue_ops=ops, seed=3, race_windows=race)
    parts = chunked_run(irps, cuts, driver, mem, queue_ops=ops, seed=3, race_windows=race)
    assert_same(parts, whole)


def test_an_irp_open_across_a_boundary_settles_when_it_completes():
    """feed returns an event-loop IRP only once its fate is known: an IRP parked in the first
    chunk comes back with the chunk in which its reserved request is recycled."""
    irps = pl.DataFrame({
        "irp": [1, 2, 1], "major": [3, 3, 3], "arrive_ns": [0, 100, 5_000],
        "complete_ns": [None, None, 5_100], "service_ns": [None, None, 100],
        "status": [0xC000009A, 0xC000009A, 0], "actual": ["alloc_failed", "alloc_failed", "ok"]},
        schema_overrides={"irp": pl.UInt64, "major": pl.UInt8, "status": pl.UInt32})
    driver = driver_for("always:1", ("parallel", None))
    sim = Simulator(driver, parse_memory("observed"), facts=survey([irps]),
                    service_time_ns=1_000)
    first = sim.feed(irps.slice(0, 2))
    assert first["row"].to_list() == []          # row 0 holds the reserve, row 1 parks on it
    second = sim.feed(irps.slice(2))
    assert second.sort("row")["row"].to_list() == [0, 1, 2]
    assert second.filter(pl.col("row") == 1)["outcome"].item() == "parked_reserved"
    assert sim.finish().outcomes.height == 0


def test_chunks_out_of_arrival_order_are_refused():
    irps = pl.DataFrame({"irp": [1, 2], "major": [3, 3], "arrive_ns": [500, 100],
                         "complete_ns": [600, 200], "service_ns": [100, 100], "status": [0, 0],
                         "actual": ["ok", "ok"]})
    sim = Simulator(driver_for("always:1", ("parallel", None)), parse_memory("observed"),
                    facts=survey([irps]))
    sim.feed(irps.slice(0, 1))
    with pytest.raises(ValueError, match="arrival order"):
        sim.feed(irps.slice(1))


SAMPLES = Path(__file__).resolve().parents[2] / "traces" / "samples"


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir() if p.is_dir()))
def test_samples_in_chunks_answer_as_whole(sample):
    from fpreplay.lifecycles import build_lifecycles
    from fpreplay.parsers import ReadOptions, read_inputs
    from fpreplay.replay.whatif.outcomes import queue_operations

    d = SAMPLES / sample
    read = read_inputs([d / "trace.etl", *sorted(d.glob("*.txt"))], ReadOptions())
    irps = build_lifecycles(read.events, read.diagnostics)
    ops = queue_operations(read.events, irps)
    for policy, memory in (("always:8", "observed"), ("paging:2", "verifier-random:3"),
                           ("examine:4:paging OR major = 4", "fail-all")):
        driver = driver_for(policy, ("parallel", None))
        mem = parse_memory(memory)
        whole = simulate(irps, driver, mem, queue_ops=ops)
        step = max(1, irps.height // 7)
        parts = chunked_run(irps, [step] * 6, driver, mem, queue_ops=ops)
        assert_same(parts, whole)
        assert sum(c.height for c in chunked(irps, step)) == irps.height
