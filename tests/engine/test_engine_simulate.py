"""simulate() and the engine's option parsers: what a user of compare/sweep would notice."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import fpreplay.engine as engine
from fpreplay.engine import (load_driver_model, parse_duration_ns, parse_memory, parse_policy,
                             simulate)
from fpreplay.engine.model import LcgRandom
from fpreplay.engine.outcomes import OUTCOME_SCHEMA
from fpreplay.errors import ConfigError
from fpreplay.schema import (STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES,
                             STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS, STATUS_UNSUCCESSFUL)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bench_engine import make_irps  # noqa: E402

MS = 1_000_000


def table(rows):
    """IRP rows as dicts -> an fpreplay.irps/1-shaped frame (missing keys are null)."""
    cols = ["irp", "queue", "major", "irp_flags", "arrive_ns", "complete_ns", "status",
            "service_ns", "actual"]
    schema = {"irp": pl.UInt64, "queue": pl.String, "major": pl.UInt8, "irp_flags": pl.UInt32,
              "arrive_ns": pl.Int64, "complete_ns": pl.Int64, "status": pl.UInt32,
              "service_ns": pl.Int64, "actual": pl.String}
    return pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], schema=schema)


def ok(t, service=MS, major=3, **kw):
    return {"arrive_ns": t, "complete_ns": t + service, "service_ns": service, "status": 0,
            "actual": "ok", "major": major, **kw}


def starved(t, major=3, **kw):
    return {"arrive_ns": t, "complete_ns": t, "status": STATUS_INSUFFICIENT_RESOURCES,
            "actual": "alloc_failed", "major": major, **kw}


def run(rows, policy="always:1", memory="observed", config=None, **kw):
    driver = load_driver_model(config, parse_policy(policy) if policy else None)
    return simulate(table(rows), driver, parse_memory(memory), **kw)


def col(res, name):
    return res.outcomes[name].to_list()


# --- the docstring example ------------------------------------------------------------------
def test_docstring_example_runs():
    result = doctest.testmod(engine, verbose=False)
    assert result.attempted >= 5 and result.failed == 0


# --- option parsers -------------------------------------------------------------------------
def test_parse_policy_values():
    assert parse_policy("always:8") == engine.Policy("always", 8, None, "always:8")
    p = parse_policy("examine:8:paging OR major = 4")
    assert (p.kind, p.reserved, p.sql) == ("examine", 8, "paging OR major = 4")
    assert parse_policy("none").forward_progress is False
    assert parse_policy("paging:0x10").reserved == 16


@pytest.mark.parametrize("text", ["sometimes:3", "always", "always:0", "always:x", "examine:4",
                                  "examine:4:nosuchcolumn = 1", "examine:4:major = ",
                                  "paging:4:major = 3", "", "always:-2"])
def test_parse_policy_rejects_with_one_line(text):
    with pytest.raises(ConfigError) as e:
        parse_policy(text)
    assert "\n" not in str(e.value) and "policy" in str(e.value)


def test_parse_memory_and_duration():
    assert parse_memory("verifier-random:42") == engine.MemoryModel("verifier-random", None, 42,
                                                                    "verifier-random:42")
    m = parse_memory("random:0.25:9")
    assert (m.kind, m.probability, m.seed) == ("random", 0.25, 9)
    assert parse_memory("window").kind == "window"
    for bad in ("sometimes", "random", "random:2", "random:x", "fail-all:3", "verifier-random:z"):
        with pytest.raises(ConfigError):
            parse_memory(bad)
    assert parse_duration_ns("2ms") == 2_000_000
    assert parse_duration_ns("1.5us") == 1_500
    assert parse_duration_ns("3s") == 3_000_000_000 and parse_duration_ns("7ns") == 7
    for bad in ("2", "ms", "2 hours", "-1ms"):
        with pytest.raises(ConfigError):
            parse_duration_ns(bad)


# --- driver model -----------------------------------------------------------------------------
CONFIG = """
bound_version = "1.11"
[[queues]]
name = "io"
majors = ["READ", "IRP_MJ_WRITE"]
dispatch = "parallel:2"
policy = "paging:2"
[[queues]]
name = "ctl"
majors = [0x0e]
dispatch = "sequential"
fp_capable = false
[instrumentation]
IrpDispatch = "MyDispatch"
"""


def write(tmp_path, text):
    p = tmp_path / "driver.toml"
    p.write_text(text)
    return p


def test_load_driver_model_default_and_toml(tmp_path):
    d = load_driver_model(None)
    assert [q.name for q in d.queues] == ["default"] and d.default_queue.dispatch == "parallel"
    d = load_driver_model(write(tmp_path, CONFIG))
    io, ctl, default = d.queues
    assert (io.majors, io.dispatch, io.limit, io.policy.text) == ((3, 4), "parallel", 2,
                                                                  "paging:2")
    assert ctl.dispatch == "sequential" and default.default and d.bound_version == (1, 11)
    # --policy replaces every fp-capable queue's policy, not the others'.
    d = load_driver_model(write(tmp_path, CONFIG), parse_policy("always:4"))
    assert [q.policy.text for q in d.queues] == ["always:4", "none", "always:4"]


@pytest.mark.parametrize("text,needle", [
    ('[[queues]]\nname = "a"\nmajors = ["READ", "BOGUS"]\n', "unknown major function 'BOGUS'"),
    ('[[queues]]\nname = "a"\ndispatch = "fifo"\n', "dispatch 'fifo'"),
    ('[[queues]]\nname = "a"\ncolour = "red"\n', "unknown key(s) colour"),
    ('[[queues]]\nname = "a"\npolicy = "always:0"\n', "more than 0"),
    ('[[queues]]\nname = "a"\nmajors = [3]\n[[queues]]\nname = "b"\nmajors = [3]\n',
     "routed to both"),
    ('[[queues]]\nname = "a"\n[[queues]]\nname = "a"\n', "declared twice"),
    ("[[queues]\n", "not valid TOML"),
    ("queues = 3\n", "array of tables"),
])
def test_load_driver_model_errors(tmp_path, text, needle):
    with pytest.raises(ConfigError) as e:
        load_driver_model(write(tmp_path, text))
    assert needle in str(e.value) and "driver.toml" in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_driver_model(tmp_path / "nope.toml")


# --- the arrival path in the replay -----------------------------------------------------------
def test_pool_serves_parks_and_recycles_in_order():
    res = run([starved(0), starved(10), starved(20), ok(30)], policy="always:1",
              service_time_ns=100)
    assert col(res, "outcome") == ["reserved", "parked_reserved", "parked_reserved", "normal"]
    assert col(res, "deliver_ns") == [0, 100, 200, 30]
    assert col(res, "park_wait_ns") == [None, 90, 180, None]
    assert col(res, "reserved_id") == [0, 0, 0, None]
    assert col(res, "status") == [STATUS_SUCCESS] * 4
    assert res.reserve_high_water == {"default": 1}
    tl = res.timeline.filter(pl.col("ts_ns") <= 20)
    assert tl.select("ts_ns", "reserved_in_use", "parked").rows() == [(0, 1, 0), (10, 1, 1),
                                                                       (20, 1, 2)]


def test_without_policy_allocation_failures_stay_failed():
    res = run([starved(0), ok(5)], policy="none")
    assert col(res, "outcome") == ["alloc_failed", "normal"]
    assert col(res, "status") == [STATUS_INSUFFICIENT_RESOURCES, 0]
    assert col(res, "alloc_failed") == [True, False]


def test_paging_policy_refuses_non_paging_and_other_majors_never_use_the_pool():
    # FSCTL and CREATE never reach an I/O queue (3.7): they keep what the trace saw.
    rows = [starved(0, irp_flags=0x43), starved(1, irp_flags=0x40), starved(2, major=0x0D,
                                                                          irp_flags=2),
            starved(3, major=0, irp_flags=2)]
    res = run(rows, policy="paging:4")
    assert col(res, "outcome") == ["reserved", "refused", "alloc_failed", "alloc_failed"]
    assert col(res, "status")[1:] == [STATUS_UNSUCCESSFUL, STATUS_INSUFFICIENT_RESOURCES,
                                      STATUS_INSUFFICIENT_RESOURCES]
    assert col(res, "queue") == ["default", "default", None, None]


def test_examine_rule_is_sql_over_lifecycle_columns():
    rows = [starved(0, major=4), starved(1, major=3), starved(2, major=3, irp_flags=2),
            starved(3, major=3, paging=True), starved(4, major=0x0E, queue="x"),
            starved(5, major=0x0E, queue="y")]
    table_ = table(rows).with_columns(pl.Series("paging", [False, False, None, True, False,
                                                           False]))
    driver = load_driver_model(None, parse_policy("examine:9:paging OR major = 4 OR queue = 'x'"))
    res = simulate(table_, driver, parse_memory("observed"))
    # A null `paging` is the framework's own test on irp_flags and major.
    assert col(res, "outcome") == ["reserved", "refused", "reserved", "reserved", "reserved",
                                   "refused"]
    with pytest.raises(ConfigError, match="examine SQL"):
        run(rows, policy="examine:4:count(*) > 1")


# --- service-time rule ------------------------------------------------------------------------
def test_service_time_rule():
    rows = [ok(0, service=2 * MS, major=3), ok(0, service=4 * MS, major=3),
            ok(0, service=10 * MS, major=4), starved(100, major=3), starved(100, major=4),
            starved(100, major=0x0E)]
    res = run(rows, policy="always:8")
    served_for = [c - d for c, d in zip(col(res, "complete_ns")[3:], col(res, "deliver_ns")[3:])]
    # Same major's median, else the median of all served IRPs.
    assert served_for == [3 * MS, 10 * MS, 4 * MS]
    res = run(rows, policy="always:8", service_time_ns=parse_duration_ns("7us"))
    served_for = [c - d for c, d in zip(col(res, "complete_ns")[3:], col(res, "deliver_ns")[3:])]
    assert served_for == [7_000] * 3
    assert col(res, "complete_ns")[:3] == [2 * MS, 4 * MS, 10 * MS]   # observed ones kept
    res = run([starved(0)], policy="always:1")
    assert col(res, "complete_ns") == [MS]                 # nothing served at all: 1 ms


def test_incomplete_irps_hold_their_request_to_the_end():
    rows = [starved(0), starved(1), {"arrive_ns": 2, "actual": "incomplete", "major": 3}]
    res = run(rows, policy="always:1", service_time_ns=10)
    assert col(res, "outcome") == ["reserved", "parked_reserved", "normal"]
    assert col(res, "status")[2] is None and col(res, "complete_ns")[2] is None
    assert res.timeline["outstanding"].to_list()[-1] == 1


# --- memory models ----------------------------------------------------------------------------
def test_fail_all_fails_every_fp_allocation_but_not_creates():
    rows = [ok(i * 10, major=3) for i in range(4)] + [ok(50, major=0)]
    res = run(rows, policy="always:2", memory="fail-all")
    assert col(res, "alloc_failed") == [True] * 4 + [False]
    assert col(res, "outcome") == ["reserved", "reserved", "parked_reserved", "parked_reserved",
                                   "normal"]
    res = run(rows, policy="none", memory="fail-all")      # no FP queue: no injection
    assert not any(col(res, "alloc_failed"))


def test_verifier_random_is_the_framework_generator():
    for seed in (0, 1, 12345, 0xFFFFFFFF):
        ref = LcgRandom(seed)
        expected = [ref.next_fail() for _ in range(3000)]
        assert engine.lcg_fail_mask(3000, seed).tolist() == expected
    rows = [ok(i, major=3) for i in range(400)] + [starved(400)]
    res = run(rows, policy="always:400", memory="verifier-random:77")
    ref = LcgRandom(77)
    # Draws only for allocations that really succeeded: the starved IRP takes none.
    assert col(res, "alloc_failed") == [ref.next_fail() for _ in range(400)] + [True]
    again = run(rows, policy="always:400", memory="verifier-random", seed=77)
    assert again.outcomes.equals(res.outcomes)


def test_random_memory_is_seeded():
    rows = [ok(i, major=3) for i in range(2000)]
    a = run(rows, memory="random:0.1:5", policy="none")
    b = run(rows, memory="random:0.1:5", policy="none")
    c = run(rows, memory="random:0.1:6", policy="none")
    assert a.outcomes.equals(b.outcomes) and not a.outcomes.equals(c.outcomes)
    assert 0.07 < np.mean(col(a, "alloc_failed")) < 0.13


def test_window_memory_fails_inside_incidents_only():
    rows = [ok(t) for t in (0, 100, 200, 300)]
    res = run(rows, memory="window", policy="none", incidents=[(100, 200)])
    assert col(res, "alloc_failed") == [False, True, True, False]
    frame = pl.DataFrame({"start_ns": [250], "end_ns": [400]})
    res = run(rows, memory="window", policy="none", incidents=frame)
    assert col(res, "alloc_failed") == [False, False, False, True]
    with pytest.raises(ConfigError, match="incidents"):
        run(rows, memory="window")


# --- queue operations from the trace ------------------------------------------------------------
def ops(*items):
    return pl.DataFrame({"ts_ns": [t for t, _, _ in items], "kind": [k for _, k, _ in items],
                         "queue": [q for _, _, q in items]},
                        schema={"ts_ns": pl.Int64, "kind": pl.String, "queue": pl.String})


def test_purge_then_start_replayed_at_their_times():
    rows = [starved(0), starved(10), ok(60), starved(70), ok(200)]
    res = run(rows, policy="always:1", service_time_ns=100,
              queue_ops=ops((50, "queue_purge", None), (150, "queue_start", None)))
    # The parked IRP is cancelled by the purge; a normal arrival after it meets a closed queue;
    # a starved one parks regardless (parking ignores queue state) and meets the closed queue
    # when the member recycles at 100; after the start all is normal again.
    assert col(res, "outcome") == ["reserved", "cancelled", "invalid_state", "invalid_state",
                                   "normal"]
    assert col(res, "status")[1:4] == [STATUS_CANCELLED, STATUS_INVALID_DEVICE_STATE,
                                       STATUS_INVALID_DEVICE_STATE]
    assert col(res, "parked") == [False, True, False, True, False]
    assert col(res, "complete_ns")[3] == 100


def test_stop_queues_and_start_dispatches():
    rows = [ok(0, service=10), ok(20, service=10)]
    res = run(rows, policy="none", queue_ops=ops((10, "queue_stop", None),
                                                 (500, "queue_start", None)))
    assert col(res, "deliver_ns") == [0, 500] and col(res, "complete_ns") == [10, 510]


def test_several_queues_routing_and_named_operations(tmp_path):
    config = write(tmp_path, CONFIG)
    rows = [starved(0, major=3), starved(1, major=0x0E), starved(2, major=0x0F),
            starved(3, major=0x0F, queue="io"), starved(4, major=9)]
    res = run(rows, policy=None, config=config)
    assert col(res, "queue") == ["io", "ctl", "default", "io", None]    # FLUSH: no queue (3.7)
    assert col(res, "outcome") == ["refused", "alloc_failed", "alloc_failed", "refused",
                                   "alloc_failed"]
    res = run(rows, policy="always:1", config=config,
              queue_ops=ops((0, "queue_purge", "ctl"), (0, "queue_drain", "nosuch")))
    assert col(res, "outcome") == ["reserved", "alloc_failed", "reserved", "parked_reserved",
                                   "alloc_failed"]
    assert any("do not have" in w or "does not have" in w for w in res.warnings)


def test_failed_pre_allocation_leaves_a_plain_queue(tmp_path):
    config = write(tmp_path, '[[queues]]\nname = "default"\npolicy = "always:4"\n'
                             'reserved_resources_fail_at = 3\n')
    res = run([starved(0)], policy=None, config=config)
    assert col(res, "outcome") == ["alloc_failed"] and res.reserve_high_water == {"default": 0}
    assert any("pre-allocation" in w for w in res.warnings)


# --- race windows -------------------------------------------------------------------------------
def test_lost_wakeup_race_window_is_an_option():
    rows = [starved(0), starved(100)]       # B arrives exactly when A's member recycles
    plain = run(rows, policy="always:1", service_time_ns=100)
    assert col(plain, "outcome") == ["reserved", "reserved"] and not plain.warnings
    raced = run(rows, policy="always:1", service_time_ns=100, race_windows=True)
    assert col(raced, "outcome") == ["reserved", "parked_at_end"]
    assert any("lost wake-up" in w for w in raced.warnings)


# --- the fast path against the event-loop reference, at size ------------------------------------
def test_fast_path_agrees_with_reference_on_a_large_stream(tmp_path):
    irps = make_irps(6000, 0.1, seed=4)
    for policy in ("always:4", "paging:2", "none"):
        driver = load_driver_model(None, parse_policy(policy))
        fast = simulate(irps, driver, parse_memory("observed"))
        ref = simulate(irps, driver, parse_memory("observed"), fast=False)
        assert fast.outcomes.equals(ref.outcomes) and fast.timeline.equals(ref.timeline)
        assert fast.reserve_high_water == ref.reserve_high_water
    driver = load_driver_model(write(tmp_path, CONFIG), parse_policy("always:3"))
    t0 = irps["arrive_ns"].min()
    q = ops((t0 + 2_000_000, "queue_stop_purge", "io"), (t0 + 3_000_000, "queue_start", "io"))
    fast = simulate(irps, driver, parse_memory("verifier-random:3"), queue_ops=q)
    ref = simulate(irps, driver, parse_memory("verifier-random:3"), queue_ops=q, fast=False)
    assert fast.outcomes.equals(ref.outcomes) and fast.timeline.equals(ref.timeline)
    assert set(fast.outcomes["outcome"]) >= {"normal", "parked_reserved", "cancelled"}


def test_outcomes_schema_and_input_order():
    rows = [starved(50), ok(0), starved(10)]
    res = run(rows, policy="always:1", service_time_ns=100)
    assert res.outcomes.schema == pl.Schema(OUTCOME_SCHEMA)
    assert col(res, "row") == [0, 1, 2]
    assert col(res, "outcome") == ["parked_reserved", "normal", "reserved"]
    assert list(res.timeline.columns) == ["queue", "ts_ns", "reserved_in_use", "reserved_total",
                                          "parked", "outstanding"]


def test_a_huge_reserve_is_not_built_object_by_object():
    rows = [starved(i) for i in range(50)]
    res = run(rows, policy="always:4000000000", service_time_ns=10_000)
    assert col(res, "outcome") == ["reserved"] * 50
    assert res.timeline["reserved_total"].unique().to_list() == [4_000_000_000]
    assert res.reserve_high_water == {"default": 50}
