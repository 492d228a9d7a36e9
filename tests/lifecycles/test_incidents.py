"""Low-memory incident detection (fpreplay.incidents)."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from fpreplay.lifecycles.incidents import DEFAULT_GAP_NS, INCIDENT_COLUMNS, detect_incidents
from fpreplay.schema import STATUS_INSUFFICIENT_RESOURCES, conform_events, conform_irps
from scenario_tables import MS, T0, scenario_events, scenario_irps


def _events(rows):
    return conform_events(pl.DataFrame(rows, infer_schema_length=None))


def test_scenario_has_one_incident_with_its_facts():
    inc = detect_incidents(scenario_events(), scenario_irps())
    assert inc.height == 1
    i = inc.row(0, named=True)
    # The memory-pressure signal at 999 ms opens it; the reserved IRP at 1100 ms closes it.
    assert i["start_ns"] == T0 + 999 * MS and i["end_ns"] == T0 + 1100 * MS
    assert (i["alloc_failed"], i["refused"], i["reserved"]) == (3, 0, 1)
    assert i["insufficient_resources"] == 3 and i["memory_pressure"] == 1
    assert i["min_available_bytes"] == 10 * MS
    assert i["irps"] == 4 and i["failed_irps"] == 4
    assert i["paging_share"] == 0.75          # 0x2001, 0x2002, 0x3001 of the four
    assert i["devices"] == ["disk0"]


def test_storms_further_apart_than_the_gap_are_two_incidents():
    rows = [{"ts_ns": t, "kind": "request_alloc_failed", "device": d, "queue": q}
            for t, d, q in [(0, "a", "q1"), (10, "b", None), (DEFAULT_GAP_NS + 11, "c", "q2")]]
    inc = detect_incidents(_events(rows), None)
    assert inc["incident"].to_list() == [1, 2]
    assert inc["devices"].to_list() == [["a", "b"], ["c"]]
    assert inc["queues"].to_list() == [["q1"], ["q2"]]
    # A wider gap merges them.
    assert detect_incidents(_events(rows), None, gap_ns=DEFAULT_GAP_NS + 20).height == 1


def test_insufficient_resources_completion_and_pressure_alone_are_signals():
    rows = [{"ts_ns": 5, "kind": "irp_complete", "status": STATUS_INSUFFICIENT_RESOURCES},
            {"ts_ns": 6, "kind": "irp_complete", "status": 0},
            {"ts_ns": 7, "kind": "memory_pressure", "bytes": 123},
            {"ts_ns": 8, "kind": "irp_dispatch"}]
    inc = detect_incidents(_events(rows), None)
    assert inc.height == 1
    assert inc.row(0, named=True)["end_ns"] == 7
    assert inc["insufficient_resources"].item() == 1
    assert inc["memory_pressure"].item() == 1 and inc["min_available_bytes"].item() == 123
    assert inc["paging_share"].item() is None     # no failing IRP to share


def test_no_signal_no_incident_and_the_schema_holds():
    ok = _events([{"ts_ns": 1, "kind": "irp_dispatch"}, {"ts_ns": 2, "kind": "irp_complete",
                                                         "status": 0}])
    for inc in (detect_incidents(ok, None), detect_incidents(None, None),
                detect_incidents(ok, conform_irps(pl.DataFrame({"arrive_ns": [1],
                                                                "actual": ["ok"]})))):
        assert inc.height == 0
        assert dict(inc.schema) == INCIDENT_COLUMNS


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40),
       st.integers(min_value=1, max_value=2_000))
def test_incidents_partition_the_signals(times, gap):
    ev = _events([{"ts_ns": t, "kind": "request_alloc_failed"} for t in times])
    inc = detect_incidents(ev, None, gap_ns=gap)
    starts, ends = inc["start_ns"].to_list(), inc["end_ns"].to_list()
    assert sum(inc["signals"].to_list()) == len(times)
    for t in times:
        assert sum(s <= t <= e for s, e in zip(starts, ends)) == 1
    for k in range(1, len(starts)):
        assert starts[k] - ends[k - 1] > gap       # separated by more than the gap
    srt = sorted(times)
    assert all(b - a <= gap for a, b in zip(srt, srt[1:]) if any(
        s <= a and b <= e for s, e in zip(starts, ends)))


def _faults(n: int, spacing_ns: int, start: int = 0) -> list[dict]:
    return [{"ts_ns": start + k * spacing_ns, "kind": "memory_pressure",
             "event_name": "PageFault/HardFault"} for k in range(n)]


def test_ordinary_paging_is_not_low_memory_but_a_storm_is():
    from fpreplay.lifecycles.incidents import STORM_SIGNALS

    # A machine pages all the time: 1000 hard faults at 100 per second are no incident.
    assert detect_incidents(_events(_faults(1000, 10 * MS)), None).height == 0
    # One short of a storm within a second: none either.
    assert detect_incidents(_events(_faults(STORM_SIGNALS - 1, MS)), None).height == 0
    # 600 hard faults 1 ms apart: one incident holding all of them, the first ones included.
    inc = detect_incidents(_events(_faults(600, MS, start=T0)), None)
    assert inc.height == 1
    assert inc["memory_pressure"].item() == 600
    assert (inc["start_ns"].item(), inc["end_ns"].item()) == (T0, T0 + 599 * MS)


def test_available_memory_readings_count_only_when_low():
    from fpreplay.lifecycles.incidents import LOW_AVAILABLE_BYTES

    plenty = [{"ts_ns": k * 500 * MS, "kind": "memory_pressure", "bytes": 4 << 30}
              for k in range(10)]
    assert detect_incidents(_events(plenty), None).height == 0
    low = plenty + [{"ts_ns": 5 * 500 * MS + 1, "kind": "memory_pressure",
                     "bytes": LOW_AVAILABLE_BYTES - 1}]
    inc = detect_incidents(_events(low), None)
    assert inc.height == 1 and inc["min_available_bytes"].item() == LOW_AVAILABLE_BYTES - 1
    # A failure between plentiful readings: an incident of its own; the readings are no part of it.
    mixed = plenty + [{"ts_ns": 3 * 500 * MS + 10, "kind": "request_alloc_failed"}]
    inc = detect_incidents(_events(mixed), None)
    assert inc.height == 1 and inc["memory_pressure"].item() == 0
    assert inc["signals"].item() == 1
