"""The lifecycle extensions and what the engine does with them: a parked IRP's driver hold time
(deliver_ns) and EvtIoAllocateRequestResources failures told apart from allocation failures
(alloc_failure)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from conftest import SAMPLES
from fpreplay.diagnostics import Diagnostics
from fpreplay.engine import load_driver_model, parse_memory, parse_policy, simulate
from fpreplay.lifecycles import build_lifecycles
from fpreplay.replay.cli import main as cli_main
from fpreplay.schema import (IRP_EXTENSION_COLUMNS, STATUS_INSUFFICIENT_RESOURCES,
                             STATUS_SUCCESS, STATUS_UNSUCCESSFUL, conform_events)

MS = 1_000_000


def events(rows: list[dict]) -> pl.DataFrame:
    return conform_events(pl.DataFrame(rows, infer_schema_length=None))


# --- deliver_ns -------------------------------------------------------------------------------
def test_deliver_ns_is_the_reserved_request_use_or_the_ifr_presentation():
    lc = build_lifecycles(events([
        {"ts_ns": 0, "kind": "irp_dispatch", "irp": 0xA0, "event_name": "Drv/IrpDispatch"},
        {"ts_ns": 7 * MS, "kind": "reserved_request_used", "irp": 0xA0,
         "event_name": "Drv/ReservedRequestUsed"},
        {"ts_ns": 8 * MS, "kind": "irp_complete", "irp": 0xA0, "status": 0,
         "event_name": "Drv/IrpComplete"},
        # IFR (VERBOSE): queued, then presented to the driver 2 ms later (a stopped queue)
        {"ts_ns": 1 * MS, "kind": "irp_dispatch", "irp": 0xB0, "event_name": "IFR/Dispatch"},
        {"ts_ns": 1 * MS + 1000, "kind": "other", "irp": 0xB0, "request": 0x51,
         "event_name": "IFR/Queuing WDFREQUEST"},
        {"ts_ns": 3 * MS, "kind": "other", "request": 0x51, "event_name": "IFR/Calling driver"},
        {"ts_ns": 4 * MS, "kind": "irp_complete", "irp": 0xB0, "request": 0x51, "status": 0,
         "event_name": "IFR/Completing WDFREQUEST"},
        # nothing shows the delivery
        {"ts_ns": 2 * MS, "kind": "irp_dispatch", "irp": 0xC0, "event_name": "Drv/IrpDispatch"},
        {"ts_ns": 5 * MS, "kind": "irp_complete", "irp": 0xC0, "status": 0,
         "event_name": "Drv/IrpComplete"},
    ]))
    assert list(lc.columns[-len(IRP_EXTENSION_COLUMNS):]) == list(IRP_EXTENSION_COLUMNS)
    got = {r["irp"]: (r["deliver_ns"], r["service_ns"], r["actual"])
           for r in lc.iter_rows(named=True)}
    assert got == {0xA0: (7 * MS, 8 * MS, "reserved"), 0xB0: (3 * MS, 3 * MS, "ok"),
                   0xC0: (None, 3 * MS, "ok")}


def _one(**kw) -> dict:
    row = {"irp": 1, "major": 3, "arrive_ns": 0, "complete_ns": 6 * MS, "service_ns": 6 * MS,
           "status": 0, "actual": "reserved"}
    row.update(kw)
    return row


def test_engine_holds_a_delivered_irp_for_its_driver_time_not_its_wait():
    # The IRP waited parked 5 ms, then the driver held it 1 ms: replayed with a free reserved
    # request it is delivered at once and completes after 1 ms, not 6 ms.
    driver = load_driver_model(None, parse_policy("always:1"))
    with_delivery = simulate(pl.DataFrame([_one(deliver_ns=5 * MS)]), driver,
                             parse_memory("observed"))
    assert with_delivery.outcomes.select("outcome", "deliver_ns", "complete_ns").row(0) == \
        ("reserved", 0, 1 * MS)
    without = simulate(pl.DataFrame([_one()]), driver, parse_memory("observed"))
    assert without.outcomes["complete_ns"].to_list() == [6 * MS]


def test_never_served_irps_are_estimated_from_driver_hold_times():
    # An allocation failure the trace never saw served holds the median driver time of served
    # IRPs of its major: 1 ms (the parked IRP's 6 ms service counts its wait).
    rows = [_one(deliver_ns=5 * MS),
            {"irp": 2, "major": 3, "arrive_ns": 10 * MS, "complete_ns": None, "service_ns": None,
             "status": STATUS_INSUFFICIENT_RESOURCES, "actual": "alloc_failed",
             "alloc_failure": "request", "deliver_ns": None}]
    res = simulate(pl.DataFrame(rows), load_driver_model(None, parse_policy("always:1")),
                   parse_memory("observed"))
    assert res.outcomes.filter(pl.col("row") == 1).select("outcome", "complete_ns").row(0) == \
        ("reserved", 11 * MS)


def test_driver_own_policy_replays_the_parking_the_trace_shows(capsys):
    # traces/samples/b-pool-ran-dry: the driver had always:2; 177 IRPs really waited parked,
    # median 2.9 ms. Replaying always:2 must tell the same story (it said 213 and 115 ms when
    # a parked IRP's wait was counted as its service time).
    truth = json.loads((SAMPLES / "b-pool-ran-dry" / "truth.json").read_text(encoding="utf-8"))
    assert cli_main(["compare", str(SAMPLES / "b-pool-ran-dry" / "trace.etl"), "--policy",
                     "always:2", "--json", "--quiet"]) == 0
    row = json.loads(capsys.readouterr().out)["policies"][0]
    assert abs(row["parked"] - truth["parked"]) <= truth["parked"] * 0.05
    real_p50 = truth["park_wait_ns"]["p50"]
    assert abs(row["park_wait_ns"]["p50"] - real_p50) <= real_p50 * 0.1
    assert row["reserve_high_water"] == 2


# --- alloc_failure: request vs resources ------------------------------------------------------
def test_lifecycles_tell_resources_failures_from_allocation_failures():
    lc = build_lifecycles(events([
        {"ts_ns": 0, "kind": "irp_dispatch", "irp": 0xA0, "event_name": "Drv/IrpDispatch"},
        {"ts_ns": 10, "kind": "request_resources_failed", "irp": 0xA0,
         "event_name": "Drv/RequestResourcesFailed"},
        {"ts_ns": 20, "kind": "reserved_request_used", "irp": 0xA0,
         "event_name": "Drv/ReservedRequestUsed"},
        {"ts_ns": 900, "kind": "irp_complete", "irp": 0xA0, "status": 0,
         "event_name": "Drv/IrpComplete"},
        {"ts_ns": 100, "kind": "irp_dispatch", "irp": 0xB0, "event_name": "Drv/IrpDispatch"},
        {"ts_ns": 110, "kind": "request_alloc_failed", "irp": 0xB0,
         "event_name": "Drv/RequestAllocFailed"},
        {"ts_ns": 120, "kind": "irp_complete", "irp": 0xB0, "status": STATUS_INSUFFICIENT_RESOURCES,
         "event_name": "Drv/IrpComplete"},
        # no failure event at all: the status alone says so, an inference (warned)
        {"ts_ns": 200, "kind": "irp_dispatch", "irp": 0xC0, "event_name": "DiskIo/ReadInit"},
        {"ts_ns": 210, "kind": "irp_complete", "irp": 0xC0, "status": STATUS_INSUFFICIENT_RESOURCES,
         "event_name": "DiskIo/Read"},
        {"ts_ns": 300, "kind": "irp_dispatch", "irp": 0xD0, "event_name": "DiskIo/ReadInit"},
        {"ts_ns": 310, "kind": "irp_complete", "irp": 0xD0, "status": 0,
         "event_name": "DiskIo/Read"},
    ]))
    got = {r["irp"]: (r["actual"], r["alloc_failure"]) for r in lc.iter_rows(named=True)}
    assert got == {0xA0: ("reserved", "resources"), 0xB0: ("alloc_failed", "request"),
                   0xC0: ("alloc_failed", "inferred"), 0xD0: ("ok", None)}


def _failing(kind: str, flags: int = 0x43) -> pl.DataFrame:
    return pl.DataFrame([
        {"irp": 1, "major": 3, "irp_flags": flags, "arrive_ns": 0, "complete_ns": 10,
         "service_ns": None, "status": STATUS_UNSUCCESSFUL, "actual": "refused",
         "alloc_failure": kind},
        {"irp": 2, "major": 3, "irp_flags": 0, "arrive_ns": 0, "complete_ns": MS,
         "service_ns": MS, "status": 0, "actual": "ok", "alloc_failure": None},
    ])


def _config(tmp_path, request_resources: bool, policy: str = "none"):
    p = tmp_path / "driver.toml"
    p.write_text(f'[[queues]]\nname = "default"\npolicy = "{policy}"\n'
                 f"request_resources = {'true' if request_resources else 'false'}\n",
                 encoding="utf-8")
    return p


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("policy, callback, kind, outcome, status", [
    # The callback is registered and the policy uses the reserve: the same path as a failed
    # allocation (forward-progress.md 4.1 step 5e).
    ("always:1", True, "resources", "reserved", STATUS_SUCCESS),
    ("paging:1", True, "resources", "reserved", STATUS_SUCCESS),
    # ...including the policy's refusal of a non-paging IRP (4.6)
    ("examine:1:major = 4", True, "resources", "refused", STATUS_UNSUCCESSFUL),
    # No callback registered: the framework never calls it, the IRP keeps its ordinary request.
    ("always:1", False, "resources", "normal", STATUS_SUCCESS),
    # No forward-progress policy: the callback is never called either.
    ("none", True, "resources", "normal", STATUS_SUCCESS),
    # A failed allocation is not rescued by the callback's registration.
    ("none", True, "request", "alloc_failed", STATUS_INSUFFICIENT_RESOURCES),
    ("always:1", False, "request", "reserved", STATUS_SUCCESS),
])
def test_simulate_honours_resources_failures(tmp_path, fast, policy, callback, kind, outcome,
                                             status):
    driver = load_driver_model(_config(tmp_path, callback), parse_policy(policy))
    res = simulate(_failing(kind), driver, parse_memory("observed"), fast=fast)
    first = res.outcomes.row(0, named=True)
    assert (first["outcome"], first["status"]) == (outcome, status)
    assert first["alloc_failed"] == (kind == "request")
    assert res.outcomes.row(1, named=True)["outcome"] == "normal"
    not_replayed = kind == "resources" and outcome == "normal"
    assert res.counters.get("resources_failures_not_replayed", 0) == int(not_replayed)
    assert any("EvtIoAllocateRequestResources" in w for w in res.warnings) == not_replayed


def test_verifier_injection_draws_for_a_resources_failure(tmp_path):
    # fail-all injects after every successful allocation on a forward-progress queue, before the
    # callback: a resources failure is then an allocation failure (alloc_failed True).
    driver = load_driver_model(_config(tmp_path, True), parse_policy("always:2"))
    res = simulate(_failing("resources"), driver, parse_memory("fail-all"))
    assert res.outcomes["alloc_failed"].to_list() == [True, True]
    assert res.outcomes["outcome"].to_list() == ["reserved", "reserved"]


def test_empty_input_keeps_the_extension_columns():
    lc = build_lifecycles(events([{"ts_ns": 1, "kind": "other", "event_name": "x"}]),
                          Diagnostics())
    assert lc.height == 0 and set(IRP_EXTENSION_COLUMNS) <= set(lc.columns)


# --- lost events ------------------------------------------------------------------------------
def test_lost_events_are_counted_and_irps_open_across_them_reported():
    from fpreplay.parsers import read_inputs

    truth = json.loads((SAMPLES / "a-paging-storm" / "truth.json").read_text(encoding="utf-8"))
    read = read_inputs([SAMPLES / "a-paging-storm" / "trace.etl"])
    assert read.diagnostics.counters["events_lost"] == read.events_lost == 8
    assert len(read.lost_windows) == truth["buffers_flagged_lost"] == 2
    lc = build_lifecycles(read.events, read.diagnostics, read.lost_windows)
    incomplete = lc.filter(pl.col("actual") == "incomplete")
    assert incomplete.height == truth["actual"]["incomplete"] == 2
    assert all(e.endswith("events were lost while it was open") for e in incomplete["evidence"])
    assert read.diagnostics.counters["irps_open_across_lost_events"] >= 2
    assert any("EVENTS_LOST" in w and "2 never completed" in w
               for w in read.diagnostics.warnings)
    # the same trace without the windows: nothing is said about them
    quiet = Diagnostics()
    lc2 = build_lifecycles(read.events, quiet)
    assert "irps_open_across_lost_events" not in quiet.counters
    assert not any("lost" in e for e in lc2["evidence"])


def test_open_across_a_lost_window_by_time():
    rows = [  # dispatch, completion (None: never)
        ("A", 0, 5), ("B", 10, 20), ("C", 30, None), ("D", 100, 110), ("E", 200, 210)]
    ev = []
    for i, (name, a, c) in enumerate(rows):
        irp = 0x100 + i
        ev.append({"ts_ns": a, "kind": "irp_dispatch", "irp": irp, "event_name": "Drv/IrpDispatch"})
        if c is not None:
            ev.append({"ts_ns": c, "kind": "irp_complete", "irp": irp, "status": 0,
                       "event_name": "Drv/IrpComplete"})
    diag = Diagnostics()
    # a window 15..25 (B), one with an unknown end from 205 (C never completes, E), and one
    # with an unknown start up to -1 (nothing)
    lc = build_lifecycles(events(ev), diag, [(15, 25), (205, None), (None, -1)])
    assert diag.counters["irps_open_across_lost_events"] == 3     # B, C, E
    by_irp = dict(zip(lc["irp"].to_list(), lc["evidence"].to_list()))
    assert by_irp[0x102].endswith("events were lost while it was open")
    assert not by_irp[0x100].endswith("open") and not by_irp[0x103].endswith("open")


# --- the framework messages of several threads ---------------------------------------------
def test_thread_streams_share_the_drivers_parked_irps():
    from fpreplay.parsers.kmdf_messages import KmdfMessageStream

    a = KmdfMessageStream()
    b = a.thread_stream()
    a.rows("WDFDEVICE 0x1 !devobj 0x2 0x00000003(IRP_MJ_READ), IRP_MN 0, IRP 0xAB00")
    a.rows("Memory allocation failed STATUS_INSUFFICIENT_RESOURCES")
    a.rows("WDFDEVICE 0x1 !devobj 0x2 0x00000003(IRP_MJ_READ), IRP_MN 0, IRP 0xCD00")  # parked
    # a reserved request recycled on another thread serves the IRP parked on the first
    served = b.rows("Queuing WDFREQUEST 0x5000 on WDFQUEUE 0x7000")
    assert served[-1]["irp"] == 0xAB00 and served[-1]["request"] == 0x5000
    done = a.rows("Completing WDFREQUEST 0x5000 for IRP 0xAB00 with Information 0x0, "
                  "STATUS_SUCCESS")
    assert done[-1]["kind"] == "irp_complete"
    assert b.index == a.index == 5


# --- --tmf checked up front ---------------------------------------------------------------------
def _ifr_text(tmp_path):
    p = tmp_path / "ifr.txt"
    p.write_text("--- start of log ---\n"
                 "1: 11/20/2026-05:40:00.0033990 FxPkgIo::Dispatch - WDFDEVICE 0x1 !devobj 0x2 "
                 "0x00000003(IRP_MJ_READ), IRP_MN 0, IRP 0xFFFFC58A06340000\n", encoding="utf-8")
    return p


@pytest.mark.parametrize("make, words", [
    (lambda d: None, ["no such TMF file or directory"]),
    (lambda d: d.mkdir(), ["no .tmf files"]),
    (lambda d: (d.mkdir(), (d / "x.tmf").write_text("#typev broken\n", encoding="utf-8")),
     ["x.tmf", "line 1"]),
])
def test_a_bad_tmf_dir_is_one_line_even_for_text_inputs(tmp_path, capsys, make, words):
    from fpreplay.errors import InputError
    from fpreplay.parsers import ReadOptions, read_inputs

    tmf = tmp_path / "tmf"
    make(tmf)
    text = _ifr_text(tmp_path)
    with pytest.raises(InputError) as e:
        read_inputs([text], ReadOptions(tmf_dirs=[tmf]))
    assert all(w in str(e.value) for w in words)
    assert cli_main(["irps", str(text), "--tz", "UTC", "--tmf", str(tmf), "-o",
                     str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmf) in err[0] and "Traceback" not in err[0]


# --- one declaration per layout / name table --------------------------------------------------
def test_synth_tracelogging_events_are_what_the_decoder_reads_back():
    from fpreplay.parsers.etl.decoders import tracelogging as TL
    from fpreplay.synth.records import FIELD_TYPE, tl_event, tl_event_metadata, tl_provider_traits

    fields = tuple(FIELD_TYPE)
    meta = tl_event_metadata("ReservedRequestUsed", fields)
    back = TL.parse_metadata(meta)
    assert back.name == "ReservedRequestUsed" and [f.name for f in back.fields] == list(fields)
    assert TL.build_metadata(back) == meta
    values = {"Irp": 0xFFFFC58A06340000, "Request": 0x3A75F9C10000, "Queue": "0x5e7f3a6d6fd8",
              "Device": "stordrv", "Major": 3, "Minor": 0, "IrpFlags": 0x43,
              "Status": 0xC000009A, "Bytes": 4096, "Offset": 1 << 33}
    decoded, problem = TL.decode_payload(back, TL.encode_payload(tl_event("X", fields), values), 8)
    assert problem is None and decoded == values
    assert tl_provider_traits("Contoso.StorDrv") == TL.provider_traits("Contoso.StorDrv")


def test_synth_framework_messages_print_status_and_major_names_as_tracefmt_does():
    # The IFR/WPP text uses the parsers' one table of NTSTATUS and IRP_MJ names, so every status
    # the framework can report reads back (STATUS_NO_MEMORY was missing from a private table).
    from fpreplay.parsers.kmdf_messages import match
    from fpreplay.synth import wpp as W

    line = W.render("completing", (0x5000, 0xAB00, 0, 0xC0000017))
    assert line.endswith("STATUS_NO_MEMORY")
    assert match(line.split(" - ", 1)[1])[1]["status"] == 0xC0000017
    pnp = W.render("dispatch", (1, 2, 0x1B, 0, 0xAB00))
    assert "0x0000001b(IRP_MJ_PNP)" in pnp
    assert match(pnp.split(" - ", 1)[1])[1]["major"] == 0x1B
