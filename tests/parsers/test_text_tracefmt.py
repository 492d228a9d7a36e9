"""tracefmt output: known WPP messages in -> the same events out."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from fpreplay.lifecycles import build_lifecycles
from fpreplay.parsers import ReadOptions, read_inputs
from fpreplay.parsers.formats import sniff

T0 = datetime(2024, 11, 22, 4, 49, 12, tzinfo=timezone.utc)


def stamp(ms: float, hires: bool) -> str:
    t = datetime.fromtimestamp(T0.timestamp() + ms / 1000, timezone.utc)
    frac = f"{t.microsecond:06d}0" if hires else f"{t.microsecond // 1000:03d}"
    return t.strftime("%m/%d/%Y-%H:%M:%S.") + frac


def line(cpu, pid, tid, ms, msg, hires=False, name="Wdf01000"):
    return f"[{cpu}]{pid:04X}.{tid:04X}::{stamp(ms, hires)} [{name}]{msg}"


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 7), st.integers(1, 0xFFFF)), min_size=1, max_size=10),
       st.booleans())
def test_round_trip(tmp_path_factory, irps, hires):
    out, expected = [], []
    ms = 0.0
    for i, (ok, cpu, tid) in enumerate(irps):
        irp = 0xFFFFC58806B50000 + 0x40 * i
        ms += 1
        out.append(line(cpu, 4, tid, ms, f"WDFDEVICE 0x000029FCB9441918 !devobj 0xFFFFD60341DCFAD0 "
                                          f"0x00000004(IRP_MJ_WRITE), IRP_MN 0, IRP 0x{irp:016X}", hires))
        expected.append(("irp_dispatch", irp, None, cpu, tid))
        ms += 1
        if ok:
            out.append(line(cpu, 4, tid, ms, f"Completing WDFREQUEST 0x00003A77F9C19F68 for IRP 0x{irp:016X} "
                                              "with Information 0x200, STATUS_SUCCESS", hires))
            expected.append(("irp_complete", irp, 0, cpu, tid))
        else:
            out.append(line(cpu, 4, tid, ms, "Could not create WDFREQUEST, STATUS_INSUFFICIENT_RESOURCES", hires))
            expected.append(("request_alloc_failed", irp, 0xC000009A, cpu, tid))
    path = tmp_path_factory.mktemp("tf") / "out.txt"
    path.write_text("\n".join(out) + "\n")
    assert sniff(path) == "tracefmt"
    trace = read_inputs([path], ReadOptions(tz="UTC"))
    got = [(r["kind"], r["irp"], r["status"], r["cpu"], r["tid"]) for r in trace.events.iter_rows(named=True)]
    assert got == expected
    assert set(trace.events["pid"].to_list()) == {4}
    t0 = int(T0.timestamp()) * 10**9
    assert trace.events["ts_ns"][0] == t0 + 1_000_000
    assert build_lifecycles(trace.events)["actual"].to_list() == ["ok" if ok else "alloc_failed"
                                                                  for ok, _, _ in irps]


def test_docs_example_and_unknown_messages(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("EventTrace\n[0]0C40.0C3C::09/20/2004-14:41:31.625 [tracedrv]Hello, 1 Hi\n"
                    "[1]0C40.0C3C::09/20/2004-14:41:31.626 [tracedrv]Unknown( 12): GUID=2d4b1c3a-0000-"
                    "0000-0000-000000000000 (No Format Information found).\n")
    trace = read_inputs([path], ReadOptions(all_records=True, tz="UTC"))
    ev = trace.events
    assert ev["kind"].to_list() == ["other", "other"]
    assert (ev["pid"][0], ev["tid"][0], ev["cpu"][1]) == (0x0C40, 0x0C3C, 1)
    assert ev["ts_ns"][0] == int(datetime(2004, 9, 20, 14, 41, 31, tzinfo=timezone.utc).timestamp()) * 10**9 + 625_000_000
    assert trace.diagnostics.counters["wpp_unformatted"] == 1
    assert not trace.diagnostics.counters["bad_lines"]
    assert any("could not decode" in w and str(path) in w for w in trace.diagnostics.warnings)
    # without --all nothing IRP-relevant is left, but both records were read
    assert read_inputs([path], ReadOptions(tz="UTC")).records == 2


def test_custom_prefix_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACE_FORMAT_PREFIX", "%4!s! %9!d! %!FUNC!: ")
    path = tmp_path / "out.txt"
    path.write_text("[0]0004.0008::11/22/2024-04:49:12.001 [x]first line in the default layout\n"
                    "11/22/2024-04:49:12.002 3 FxPkgIo::Dispatch: WDFDEVICE 0x1 !devobj 0x2 "
                    "0x00000003(IRP_MJ_READ), IRP_MN 0, IRP 0xFFFF000000001000\n")
    ev = read_inputs([path], ReadOptions(tz="UTC")).events
    assert ev["kind"].to_list() == ["irp_dispatch"] and ev["cpu"][0] == 3 and ev["irp"][0] == 0xFFFF000000001000


def test_bad_lines_counted(tmp_path):
    path = tmp_path / "out.txt"
    good = line(0, 4, 8, 1, "Could not create WDFREQUEST, STATUS_INSUFFICIENT_RESOURCES")
    path.write_text("\n".join([good, good, "garbage in the middle", good, good[:20]]) + "\n")
    trace = read_inputs([path], ReadOptions(tz="UTC"))
    assert trace.diagnostics.counters["bad_lines"] == 2
    assert trace.records == 5
    assert "line 3" in " ".join(trace.diagnostics.warnings)
