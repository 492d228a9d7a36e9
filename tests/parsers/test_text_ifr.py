"""KMDF in-flight-recorder dumps (wdflogdump / rcdrlogdump text): known events in -> same events out."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import polars as pl
import pytest
from hypothesis import given, strategies as st

from fpreplay.lifecycles import build_lifecycles
from fpreplay.parsers import ReadOptions, read_inputs
from fpreplay.parsers.text import ifr

QUEUE = 0x00005E7F3A6D6FD8
DEVOBJ = 0xFFFF8A0C1F0A2E30
T0 = datetime(2024, 11, 22, 4, 49, 12, tzinfo=timezone.utc)
T0_NS = int(T0.timestamp()) * 1_000_000_000
STATUS = {"ok": ("STATUS_SUCCESS", 0), "cancelled": ("STATUS_CANCELLED", 0xC0000120),
          "failed": ("STATUS_IO_TIMEOUT", 0xC00000B5)}
MJ = {3: "IRP_MJ_READ", 4: "IRP_MJ_WRITE", 0xE: "IRP_MJ_DEVICE_CONTROL"}


def framework_log(outcomes):
    """(function, message) per IFR record, and the events a reader must produce from them."""
    lines, events = [], []
    for i, (outcome, major, size) in enumerate(outcomes):
        irp = 0xFFFF8A0C1E2E0000 + 0x100 * i
        req = 0x00005E7F3A1C0000 + 0x10 * i
        lines.append(("FxPkgIo::Dispatch", f"WDFDEVICE 0x00005E7F3A6D3FD8 !devobj 0x{DEVOBJ:016X} "
                      f"0x{major:08x}({MJ[major]}), IRP_MN 0, IRP 0x{irp:016X}"))
        events.append(("irp_dispatch", irp, None, major))
        if outcome == "alloc_failed":
            lines.append(("FxPkgIo::DispatchStep2", "Could not create WDFREQUEST, STATUS_INSUFFICIENT_RESOURCES"))
            events.append(("request_alloc_failed", irp, 0xC000009A, major))
        elif outcome == "refused":
            lines.append(("FxRequest::_CreateForPackage", "Memory allocation failed STATUS_INSUFFICIENT_RESOURCES"))
            events.append(("request_alloc_failed", irp, 0xC000009A, major))
            lines.append(("FxIoQueue::GetReservedRequest", f"Forward action on WDFQUEUE 0x{QUEUE:016X} says "
                          f"that framework should fail the Irp 0x{irp:016X}, STATUS_UNSUCCESSFUL"))
            events.append(("fp_policy_refused", irp, 0xC0000001, major))
        else:
            lines.append(("FxIoQueue::QueueRequest", f"Queuing WDFREQUEST 0x{req:016X} on WDFQUEUE 0x{QUEUE:016X}"))
            name, value = STATUS[outcome]
            lines.append(("FxRequest::Complete", f"Completing WDFREQUEST 0x{req:016X} for IRP 0x{irp:016X} "
                          f"with Information 0x{size:x}, {name}"))
            events.append(("irp_complete", irp, value, None))
    return lines, events


def write_dump(path, lines, layout="timed", tz_hours=0):
    out = ["Trace searchpath is: C:\\symbols"]
    if layout == "timed":
        out.append("Trace format prefix is: %7!u!: %4!s! %!FUNC! - ")
    out += ["Trying to extract TMF information from - C:\\symbols\\Wdf01000.pdb",
            f"There are {len(lines)} log entries", "--- start of log ---"]
    for seq, (func, msg) in enumerate(lines, 1):
        t = datetime.fromtimestamp(T0.timestamp() + seq * 0.001 + tz_hours * 3600, timezone.utc)
        stamp = t.strftime("%m/%d/%Y-%H:%M:%S.") + f"{t.microsecond:06d}0"
        if layout == "timed":
            out.append(f"{seq}: {stamp} {func} - {msg}")
        elif layout == "default":
            out.append(f"{seq}: {func} - {msg}")
        elif layout == "rcdr":
            out.append(f"03 SLT01 DCI03 {seq}: {func} - {msg}")
        elif layout == "custom":
            out.append(f"[0]0000 TRACE_LEVEL_VERBOSE {func}:{msg}")
    out += ["---- end of log ----", "0 error events encountered in logs"]
    path.write_text("\n".join(out) + "\n")
    return path


def got_events(trace):
    df = trace.events
    return [(r["kind"], r["irp"], r["status"], r["major"] if r["kind"] != "irp_complete" else None)
            for r in df.iter_rows(named=True)]


outcome_st = st.lists(st.tuples(st.sampled_from(["ok", "alloc_failed", "refused", "cancelled", "failed"]),
                                st.sampled_from([3, 4, 0xE]), st.integers(0, 1 << 20)),
                      min_size=1, max_size=12)


@given(outcome_st)
def test_round_trip_events_and_lifecycles(tmp_path_factory, outcomes):
    lines, expected = framework_log(outcomes)
    path = write_dump(tmp_path_factory.mktemp("ifr") / "dump.txt", lines)
    trace = read_inputs([path], ReadOptions(tz="UTC"))
    assert got_events(trace) == expected
    assert trace.events["ts_ns"].to_list() == sorted(trace.events["ts_ns"].to_list())
    assert trace.events["ts_ns"][0] == T0_NS + 1_000_000
    assert trace.records == len(lines)
    irps = build_lifecycles(trace.events).sort("arrive_ns")
    assert irps["actual"].to_list() == [o for o, _, _ in outcomes]
    served = irps.filter(pl.col("actual") == "ok")
    assert served["bytes"].to_list() == [s for o, _, s in outcomes if o == "ok"]


@pytest.mark.parametrize("layout", ["default", "rcdr", "custom"])
def test_other_prefix_layouts_read_the_same_events(tmp_path, layout):
    lines, expected = framework_log([("ok", 3, 512), ("refused", 4, 0), ("alloc_failed", 0xE, 0)])
    trace = read_inputs([write_dump(tmp_path / "d.txt", lines, layout)], ReadOptions())
    assert got_events(trace) == expected
    # no times in these prefixes: log order kept, and the user is told
    assert trace.events["ts_ns"].is_sorted()
    assert any("carry no time" in w for w in trace.diagnostics.warnings)


def test_local_time_is_converted_with_tz(tmp_path):
    lines, _ = framework_log([("ok", 3, 512)])
    path = write_dump(tmp_path / "d.txt", lines, tz_hours=1)      # the target ran at UTC+1
    berlin = read_inputs([path], ReadOptions(tz="Europe/Berlin"))
    fixed = read_inputs([path], ReadOptions(tz="+01:00"))
    assert berlin.events["ts_ns"][0] == fixed.events["ts_ns"][0] == T0_NS + 1_000_000
    assert not any("assuming UTC" in w for w in berlin.diagnostics.warnings)
    utc = read_inputs([path], ReadOptions())
    assert utc.events["ts_ns"][0] == T0_NS + 3_600_000_000_000 + 1_000_000
    assert any("assuming UTC" in w for w in utc.diagnostics.warnings)


def test_real_usbip_lines_with_their_custom_prefix(tmp_path):
    # the two real lines quoted in etw-formats.md section 3.5 (usbip-win2 issue 52)
    path = tmp_path / "usbip.txt"
    path.write_text(
        "--- start of log ---\n"
        "[0]0000 TRACE_LEVEL_VERBOSE Vf_VerifyWdfDeviceWdmDispatchIrpToIoQueue:WDFDEVICE 0x000029FCB9441918 "
        "!devobj 0xFFFFD60341DCFAD0 0x0000000f(IRP_MJ_INTERNAL_DEVICE_CONTROL), IRP_MN 0, IRP 0xFFFFD60343780010\n"
        "[0]0000 TRACE_LEVEL_VERBOSE FxRequest::Complete:Completing WDFREQUEST 0x00003A77F9C19F68 for IRP "
        "0xFFFFC58806B53B50 with Information 0x0, STATUS_SUCCESS\n"
        "---- end of log ----\n")
    ev = read_inputs([path], ReadOptions()).events
    assert ev["kind"].to_list() == ["irp_dispatch", "irp_complete"]
    assert ev["irp"].to_list() == [0xFFFFD60343780010, 0xFFFFC58806B53B50]
    assert ev["major"][0] == 0x0F and ev["device"][0] == "0xffffd60341dcfad0"
    assert ev["request"][1] == 0x3A77F9C19F68 and ev["status"][1] == 0 and ev["cpu"][0] == 0


def test_garbage_and_cut_lines_are_counted_and_the_rest_parsed(tmp_path):
    lines, expected = framework_log([("ok", 3, 512), ("refused", 4, 0)])
    path = write_dump(tmp_path / "d.txt", lines)
    text = path.read_text().splitlines()
    start = text.index("--- start of log ---")
    text.insert(start + 3, "\x00\x01 garbage that is no record")
    text.insert(start + 5, "DiskRead,       8612,        xperf.exe (3984),      11844")
    text.insert(start + 7, "7: 11/22/2024-04:4")                      # cut mid-prefix
    path.write_text("\n".join(text) + "\n")
    trace = read_inputs([path], ReadOptions(tz="UTC"))
    assert got_events(trace) == expected
    assert trace.diagnostics.counters["bad_lines"] == 3
    warning = next(w for w in trace.diagnostics.warnings if "bad line" in w)
    assert str(path) in warning and f"line {start + 4}" in warning


def test_sniffed_as_ifr_and_docstring_example_reads(tmp_path):
    doc = ifr.__doc__
    body = doc[doc.index("    Trace searchpath is:"):doc.index("    ---- end of log ----") + 24]
    path = tmp_path / "example.txt"
    path.write_text("\n".join(ln[4:] for ln in body.splitlines()) + "\n")
    from fpreplay.parsers.formats import sniff

    assert sniff(path) == "ifr"
    trace = read_inputs([path], ReadOptions(all_records=True, tz="UTC"))
    assert trace.events["kind"].to_list() == ["irp_dispatch", "other", "irp_complete", "irp_dispatch",
                                              "request_alloc_failed", "fp_policy_refused"]
    assert trace.events["irp"][1] == 0xFFFF8A0C1E2E6A20 and trace.events["bytes"][2] == 0x1000
    assert trace.events["queue"][5] == "0x5e7f3a6d6fd8" and trace.events["status"][5] == 0xC0000001
    assert not trace.diagnostics.counters["bad_lines"]


def test_unknown_text_exits_2_with_one_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\nmilk, eggs\n")
    r = subprocess.run([sys.executable, "-m", "fpreplay.replay", "events", str(path), "-o",
                        str(tmp_path / "o.csv")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and str(path) in r.stderr and "Traceback" not in r.stderr


def test_sample_ifr_dump_agrees_with_its_truth():
    """The synthesizer's IFR dump of sample c: what the framework log alone can show."""
    import json
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "traces" / "samples" / "c-purge-during-incident"
    if not (sample / "ifr.txt").exists():
        pytest.skip("sample c has no IFR dump")
    truth = json.loads((sample / "truth.json").read_text())
    trace = read_inputs([sample / "ifr.txt"], ReadOptions(tz="UTC"))
    assert trace.records == truth["ifr_lines"] and not trace.diagnostics.counters["bad_lines"]
    irps = build_lifecycles(trace.events)
    assert len(irps) == truth["irps"]
    counts = dict(irps.group_by("actual").len().iter_rows())
    # a reserved request is not traced (forward-progress.md 8.3): those IRPs show as alloc_failed
    assert counts.get("alloc_failed", 0) == truth["actual"]["alloc_failed"] + truth["actual"]["reserved"]
    assert counts.get("ok", 0) == truth["actual"]["ok"]
    # per IRP instance: every completion the log shows lands on the right instance, at its time
    per = pl.DataFrame(truth["per_irp"], schema=truth["per_irp_columns"], orient="row")
    per = per.with_columns(pl.col("irp").map_elements(lambda x: int(x, 16), return_dtype=pl.UInt64),
                           pl.col("arrive_ns").alias("t_arrive"), pl.col("complete_ns").alias("t_complete"))
    joined = irps.sort("arrive_ns").join_asof(
        per.select("irp", "t_arrive", "t_complete", "fate").sort("t_arrive"), left_on="arrive_ns",
        right_on="t_arrive", by="irp", strategy="nearest", tolerance=20_000, check_sortedness=False)
    assert joined["fate"].null_count() == 0
    by_fate = dict(joined.group_by("fate").agg(pl.col("status").drop_nulls().unique().sort()).iter_rows())
    assert by_fate.get("invalid_state", []) == [0xC0000184]
    assert by_fate.get("cancelled_parked", []) == []           # cancelled untraced: no completion
    assert set(by_fate.get("ok", [0])) == {0}
    served = joined.filter(pl.col("complete_ns").is_not_null())
    assert ((served["complete_ns"] - served["t_complete"]).abs() <= 5_000).all()


def test_dump_without_markers(tmp_path):
    lines, expected = framework_log([("ok", 3, 512), ("alloc_failed", 4, 0)])
    path = tmp_path / "nomarkers.txt"
    path.write_text("0: kd> !wdfkd.wdflogdump stordrv\nTrace searchpath is: C:\\symbols\n"
                    "There are 5 log entries\n"
                    + "\n".join(f"{n}: {func} - {msg}" for n, (func, msg) in enumerate(lines, 1))
                    + "\nnot a record\n")
    from fpreplay.parsers.formats import sniff

    assert sniff(path) == "ifr"
    trace = read_inputs([path], ReadOptions())
    assert got_events(trace) == expected
    assert trace.diagnostics.counters["bad_lines"] == 1 and trace.records == len(lines) + 1
