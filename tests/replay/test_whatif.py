"""The what-if library (fpreplay.replay.whatif) on the real engine and lifecycle builder."""

from __future__ import annotations

import polars as pl
import pytest

from fpreplay.errors import ConfigError
from fpreplay.replay import whatif
from fpreplay.schema import (
    STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_UNSUCCESSFUL, conform_irps,
)
from scenario_tables import MS, T0, scenario_events, scenario_irps

FIVE_MS = whatif.WhatIfSettings(service_time_ns=5 * MS)


def test_verdicts_classify_each_irp_against_what_happened():
    irps = conform_irps(pl.DataFrame({"arrive_ns": [0, 1, 2, 3, 4, 5],
                                      "actual": ["alloc_failed", "refused", "alloc_failed",
                                                 "ok", "reserved", "ok"]}))
    outcomes = pl.DataFrame({
        "row": [5, 4, 3, 2, 1, 0],     # any order: matched by row
        "queue": [None] * 6,
        "outcome": ["normal", "alloc_failed", "cancelled", "refused", "parked_reserved",
                    "reserved"],
        "status": [0, STATUS_INSUFFICIENT_RESOURCES, STATUS_CANCELLED, STATUS_UNSUCCESSFUL, 0, 0],
        "alloc_failed": [False, True, False, True, True, True],
        "parked": [False, False, False, False, True, False],
        "deliver_ns": [5, None, 3, None, 9, 0], "complete_ns": [6, 4, 3, 2, 10, 1],
        "park_wait_ns": [None, None, None, None, 8, None],
        "reserved_id": [None, None, None, None, 0, 1]},
        schema_overrides={"row": pl.UInt32, "status": pl.UInt32})
    v = whatif.verdicts(irps, outcomes)
    assert v["verdict"].to_list() == ["rescued", "rescued", "still_failed", "regressed",
                                      "regressed", "same"]
    s = whatif.summarize("always:1", v, 1)
    assert (s["rescued"], s["still_failed"], s["regressed"], s["parked"]) == (2, 1, 2, 1)
    assert s["park_wait_ns"] == {"p50": 8, "p99": 8, "max": 8}
    assert (s["cancelled"], s["invalid_state"]) == (1, 0)


def test_compare_scenario_numbers_trace_back_to_irps():
    cmp = whatif.compare(scenario_irps(), ["none", "always:1", "paging:1"],
                         events=scenario_events(), settings=FIVE_MS)
    rows = {s["policy"]: s for s in cmp.summaries}
    # always:1: the three failed IRPs arrive 1 ms apart and each holds the one reserved request
    # 5 ms, so 0x2002 parks 4 ms and 0x2003 parks 8 ms; all three are rescued.
    assert (rows["always:1"]["rescued"], rows["always:1"]["parked"]) == (3, 2)
    assert rows["always:1"]["park_wait_ns"] == {"p50": 4 * MS, "p99": 8 * MS, "max": 8 * MS}
    assert rows["always:1"]["reserve_high_water"] == 1
    # paging:1 refuses the non-paging 0x2003.
    assert (rows["paging:1"]["rescued"], rows["paging:1"]["still_failed"]) == (2, 1)
    # none fails the IRP that really was served from the reserve.
    assert (rows["none"]["still_failed"], rows["none"]["regressed"]) == (3, 1)
    assert cmp.observed["still_failed"] == 3 and cmp.observed["reserve_high_water"] == 1
    assert cmp.actual["alloc_failed"] == 3 and cmp.actual["incomplete"] == 1
    # Every number is a filter of the per-IRP table.
    for p, s in rows.items():
        col = cmp.per_irp[f"{p}:verdict"]
        for key in ("rescued", "still_failed", "regressed"):
            assert s[key] == (col == key).sum()
        assert s["parked"] == cmp.per_irp[f"{p}:parked"].sum()
    by_irp = dict(zip(cmp.per_irp["irp"].to_list(), cmp.per_irp["always:1:park_wait_ns"]))
    assert by_irp[0x2002] == 4 * MS and by_irp[0x2003] == 8 * MS


def test_explain_tells_each_policy_story():
    cmp = whatif.compare(scenario_irps(), ["always:1", "paging:1"], settings=FIVE_MS)
    [story] = whatif.explain(cmp, "0x2003")
    assert story["actual"] == "alloc_failed" and story["arrive_ns"] == T0 + 1002 * MS
    always, paging = story["policies"]
    assert always["outcome"] == "parked_reserved" and always["verdict"] == "rescued"
    assert "parked for 8 ms" in always["story"]
    assert paging["outcome"] == "refused" and paging["status"] == STATUS_UNSUCCESSFUL
    assert "0xC0000001" in paging["story"]
    with pytest.raises(ConfigError, match="no IRP with that address"):
        whatif.explain(cmp, "0xdead")
    with pytest.raises(ConfigError, match="not an IRP address"):
        whatif.explain(cmp, "zz")


def test_sweep_finds_the_smallest_reserves():
    s = whatif.sweep(scenario_irps(), "always", budget_ns=5 * MS, settings=FIVE_MS)
    assert s.peak_demand == 3 and s.max_reserved == 3
    assert s.rows["reserved"].to_list() == [1, 2, 3]
    assert s.rows["parked"].to_list() == [2, 1, 0]
    assert s.min_reserved_no_park == 3
    assert s.min_reserved_within_budget == 2        # p99 wait 3 ms at N = 2, 8 ms at N = 1
    paging = whatif.sweep(scenario_irps(), "paging", max_reserved=2, settings=FIVE_MS)
    assert paging.peak_demand is None and paging.rows["still_failed"].to_list() == [1, 1]
    assert paging.min_reserved_no_park == 2


def test_sweep_bisects_beyond_the_exhaustive_range():
    # 40 IRPs fail at the same instant: 40 reserved requests are needed for none to park.
    irps = conform_irps(pl.DataFrame({
        "irp": list(range(1, 41)), "major": [3] * 40, "arrive_ns": [1000] * 40,
        "status": [STATUS_INSUFFICIENT_RESOURCES] * 40, "actual": ["alloc_failed"] * 40}))
    s = whatif.sweep(irps, "always", max_reserved=500, budget_ns=3 * MS, settings=FIVE_MS)
    assert s.min_reserved_no_park == 40
    # N = 20 serves the parked 20 after 5 ms: a 3 ms budget needs all 40.
    assert s.min_reserved_within_budget == 40
    assert s.rows.height < 60                        # a grid and a bisection, not 500 runs
    assert s.rows.filter(pl.col("reserved") == 39)["parked"].item() == 1


def test_user_errors_are_config_errors():
    irps = scenario_irps()
    with pytest.raises(ConfigError):
        whatif.compare(irps, ["always:zero"])
    with pytest.raises(ConfigError, match="at least one"):
        whatif.compare(irps, [])
    with pytest.raises(ConfigError, match="twice"):
        whatif.compare(irps, ["always:2", "always:2"])
    with pytest.raises(ConfigError, match="sweep kind 'sometimes'"):
        whatif.sweep(irps, "sometimes")
    with pytest.raises(ConfigError):
        whatif.compare(irps, ["examine:4:no_such_column = 1"])


def test_timelines_sum_queues_and_count_open_irps():
    tl = pl.DataFrame({"queue": ["a", "b", "a", None], "ts_ns": [1, 2, 3, 4],
                       "reserved_in_use": [1, 2, 0, 5], "reserved_total": [4, 4, 4, 8],
                       "parked": [0, 1, 0, 0], "outstanding": [1, 3, 1, 5]})
    total = whatif.total_timeline(tl)
    assert total["reserved_in_use"].to_list() == [1, 3, 2, 7]
    assert total["parked"].to_list() == [0, 1, 1, 1]
    assert whatif.concurrency_peak(pl.Series([0, 1, 5]), pl.Series([2, None, 6])) == 2
    assert whatif.concurrency_peak(pl.Series([0, 2]), pl.Series([2, 3])) == 1  # end frees first
    at = whatif.actual_timeline(scenario_irps())
    # 0x4001 never completes, so 0x5001 makes two open at once.
    assert at["outstanding"].max() == 2 and at["failures"].max() == 3


def test_explain_tells_every_instance_of_a_reused_address():
    irps = conform_irps(pl.DataFrame({
        "irp": [0xA0, 0xA0, 0xB0], "major": [3, 3, 3], "arrive_ns": [0, 10 * MS, 5 * MS],
        "complete_ns": [1 * MS, None, 6 * MS], "service_ns": [1 * MS, None, 1 * MS],
        "status": [0, None, 0], "actual": ["ok", "alloc_failed", "ok"]})).sort("arrive_ns")
    cmp = whatif.compare(irps, ["none", "always:1"], settings=FIVE_MS)
    # the IRP a policy changes is told first, though it arrived second (issue 14)
    changed, same = whatif.explain(cmp, "a0")          # hex without 0x is an address too
    assert (same["arrive_ns"], same["actual"]) == (0, "ok")
    assert [p["outcome"] for p in same["policies"]] == ["normal", "normal"]
    assert (changed["arrive_ns"], changed["actual"]) == (10 * MS, "alloc_failed")
    assert [p["verdict"] for p in changed["policies"]] == ["still_failed", "rescued"]
    # ADDRESS@TIME: the IRP in flight then, else the last to arrive before it
    assert [s["arrive_ns"] for s in whatif.explain(cmp, 0xA0, at_ns=500_000)] == [0]
    assert [s["arrive_ns"] for s in whatif.explain(cmp, 0xA0, at_ns=9 * MS)] == [0]
    assert [s["arrive_ns"] for s in whatif.explain(cmp, 0xA0, at_ns=11 * MS)] == [10 * MS]


def test_a_queue_operation_acts_on_its_own_device_named_in_any_source_words():
    """Two disks, always:1 each, one IRP parked on each; a purge the trace shows on the first
    disk (named by its kernel alias) cancels that disk's parked IRP only (issue 9: one queue set
    per device; forward-progress.md 6.5)."""
    from fpreplay.engine import parse_policy
    from fpreplay.schema import conform_events, conform_irps

    ms = 1_000_000
    irps = conform_irps(pl.DataFrame({
        "irp": [1, 2, 3, 4], "device": ["stordrv0", "stordrv0", "stordrv1", "stordrv1"],
        "device_alias": ["disk0", "disk0", "disk1", "disk1"], "major": [3, 3, 3, 3],
        "arrive_ns": [0, ms, 0, ms], "status": [0xC000009A] * 4,
        "actual": ["alloc_failed"] * 4}), keep_extra=True)
    events = conform_events(pl.DataFrame({
        "ts_ns": [2 * ms], "kind": ["queue_purge"], "queue": [None], "device": ["disk0"]}))
    settings = whatif.WhatIfSettings(service_time_ns=10 * ms)
    cmp = whatif.compare(irps, [parse_policy("always:1")], events=events, settings=settings)
    outcome = dict(zip(cmp.per_irp["irp"], cmp.per_irp["always:1:status"]))
    assert outcome[2] == 0xC0000120              # parked on disk0 when disk0 was purged
    assert outcome[4] == 0                       # parked on disk1: served when disk1's request
    assert not [w for w in cmp.warnings if "queue operation" in w]   # came back
