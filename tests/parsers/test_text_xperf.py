"""`xperf -a dumper` text: the real public lines parse to the right values; round trips."""

from __future__ import annotations

from hypothesis import given, strategies as st

from conftest import real_trace
from fpreplay.lifecycles import build_lifecycles
from fpreplay.parsers import ReadOptions, read_inputs
from fpreplay.parsers.formats import sniff


def uncomment(name, tmp_path):
    """The oppat fixtures are Lua comments (`-- ` + dumper text); give the reader the dumper text."""
    src = real_trace(f"text/{name}")
    lines = [ln[3:] if ln.startswith("-- ") else ln[2:] for ln in src.read_text().splitlines()]
    lines = [ln for ln in lines if ln.strip() and "Copyright" not in ln and "License" not in ln]
    out = tmp_path / name
    out.write_text("\n".join(lines) + "\n")
    return out


def test_real_snia_exchange_row_old_layout():
    path = real_trace("text/snia_exchange_xperf_dumper_line.txt")
    assert sniff(path) == "xperf_dumper"
    trace = read_inputs([path], ReadOptions())
    done = trace.events.filter(trace.events["kind"] == "irp_complete").row(0, named=True)
    assert done["irp"] == 0xFFFFFADE691B3010 and done["offset"] == 0x4E5EC22E00
    assert done["bytes"] == 0x2000 and done["irp_flags"] == 0x901 and done["device"] == "disk4"
    assert (done["pid"], done["tid"], done["cpu"]) == (11008, 12260, None)
    assert done["file_object"] == 0xFFFFFADE6BD7D7A0 and done["major"] == 3
    assert done["ts_ns"] == 723291 * 1000
    start = trace.events.filter(trace.events["kind"] == "irp_dispatch")["ts_ns"].to_list()
    assert start == [(723291 - 4388) * 1000]              # back-dated by ElapsedTime (µs)
    assert trace.records == 1


def test_real_oppat_disk_read_new_layout(tmp_path):
    trace = read_inputs([uncomment("oppat_xperf_dumper_etw_DiskReadWrite.comment.txt", tmp_path)], ReadOptions())
    done = trace.events.filter(trace.events["kind"] == "irp_complete").row(0, named=True)
    assert done["irp"] == 0xFFFFE288B23F1B20 and done["offset"] == 0x018F0B8000 and done["bytes"] == 0x1000
    assert done["irp_flags"] == 0x43                       # 0x060043 with priority 3 masked off
    assert (done["pid"], done["tid"], done["cpu"], done["device"]) == (3984, 11844, 1, "disk0")
    assert done["file_object"] == 0xFFFFE288272D0D20 and done["ts_ns"] == 8612 * 1000
    irps = build_lifecycles(trace.events)
    assert irps["service_ns"].to_list() == [283_000] and irps["paging"].to_list() == [True]


def test_real_oppat_fileio_write_opend_pairs(tmp_path):
    trace = read_inputs([uncomment("oppat_xperf_dumper_etw_FileIo.comment.txt", tmp_path)],
                        ReadOptions(all_records=True))
    ev = trace.events
    assert ev["kind"].to_list() == ["other", "irp_dispatch", "irp_complete", "irp_dispatch", "irp_complete", "other"]
    io = ev.filter(ev["kind"] != "other")
    assert set(io["irp"].to_list()) == {0xFFFFE288851F8608}
    assert io["status"].to_list() == [None, 0xC01C0004, None, 0]
    assert io["offset"].to_list()[0] == 0xCE and io["bytes"].to_list() == [0x41, 0, 0x41, 0x41]
    assert io["irp_flags"].to_list()[2] == 0xA00             # 0x60A00 without the priority bits
    assert io["major"].to_list() == [4, 4, 4, 4] and io["tid"].to_list() == [11224] * 4
    # the fast-I/O try (0xC01C0004) is the lifecycle builder's to judge; the IRP path after it is
    # one served write of 8 µs
    irps = build_lifecycles(ev).sort("arrive_ns")
    last = irps.row(-1, named=True)
    assert (last["actual"], last["service_ns"], last["status"], last["major"]) == ("ok", 8000, 0, 4)
    assert trace.records == 6 and not trace.diagnostics.counters["bad_lines"]


def test_real_oppat_hardfault(tmp_path):
    trace = read_inputs([uncomment("oppat_xperf_dumper_etw_HardFault.comment.txt", tmp_path)], ReadOptions())
    row = trace.events.row(0, named=True)
    assert row["kind"] == "memory_pressure" and row["offset"] == 0x00053B8000
    assert row["file_object"] == 0xFFFFE288272D0D20 and row["ts_ns"] == 8729_000 and row["pid"] == 3984


COLS = {
    "DiskReadInit": "TimeStamp,     Process Name ( PID),   ThreadID, CPU,             IrpPtr",
    "DiskRead": "TimeStamp,     Process Name ( PID),   ThreadID, CPU,             IrpPtr,   ByteOffset,     "
                "IOSize, ElapsedTime,  DiskNum, IrpFlags, DiskSvcTime, I/O Pri,  VolSnap,         FileObject, FileName",
    "DiskWriteInit": "TimeStamp,     Process Name ( PID),   ThreadID, CPU,             IrpPtr",
    "DiskWrite": "TimeStamp,     Process Name ( PID),   ThreadID, CPU,             IrpPtr,   ByteOffset,     "
                 "IOSize, ElapsedTime,  DiskNum, IrpFlags, DiskSvcTime, I/O Pri,  VolSnap,         FileObject, FileName",
}


@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(1, 1 << 20), st.integers(0, 1 << 36),
                          st.sampled_from([0x43, 0x60043, 0x20000, 0x0A])), min_size=1, max_size=10))
def test_round_trip_with_header(tmp_path_factory, ios):
    out = ["BeginHeader"] + [f"{k:>14},  {v}" for k, v in COLS.items()] + ["EndHeader"]
    expected = []
    t = 1000
    for i, (write, with_init, size, off, flags) in enumerate(ios):
        irp = 0xFFFFE288B23F0000 + 0x80 * i
        kind = "DiskWrite" if write else "DiskRead"
        if with_init:
            out.append(f"{kind + 'Init':>14}, {t:10d}, System (4), 44, 1, 0x{irp:016x}")
            expected.append(("irp_dispatch", irp, t * 1000, None, None))
        t += 5
        out.append(f"{kind:>14}, {t + 100:10d}, System (4), 44, 1, 0x{irp:016x}, 0x{off:010x}, 0x{size:08x}, "
                   f"{100 if with_init else 90:10d}, 0, 0x{flags:06x}, 50, 3, Original, 0xffffe288272d0d20, "
                   f'"C:\\pagefile.sys"')
        if not with_init:
            expected.append(("irp_dispatch", irp, (t + 10) * 1000, None, None))
        expected.append(("irp_complete", irp, (t + 100) * 1000, size, flags & ~0xE0000))
        t += 200
    path = tmp_path_factory.mktemp("xp") / "dump.txt"
    path.write_text("\n".join(out) + "\n")
    assert sniff(path) == "xperf_dumper"
    trace = read_inputs([path], ReadOptions())
    got = sorted(((r["kind"], r["irp"], r["ts_ns"], r["bytes"] if r["kind"] == "irp_complete" else None,
                   r["irp_flags"] if r["kind"] == "irp_complete" else None)
                  for r in trace.events.iter_rows(named=True)), key=lambda x: (x[2], x[0]))
    assert got == sorted(expected, key=lambda x: (x[2], x[0]))
    irps = build_lifecycles(trace.events).sort("arrive_ns")
    assert irps["bytes"].to_list() == [s for _, _, s, _, _ in ios]
    assert irps["paging"].to_list() == [bool(f & 2) for *_, f in ios]
    assert irps["major"].to_list() == [4 if w else 3 for w, *_ in ios]


def test_bad_and_cut_rows_counted(tmp_path):
    good = ("      DiskRead,       8612,        xperf.exe (3984),      11844,   1, 0xffffe288b23f1b20, "
            "0x018f0b8000, 0x00001000,         283,        0, 0x060043,         283,       3, Original, "
            '0xffffe288272d0d20, "C:\\$Mft"')
    path = tmp_path / "d.txt"
    path.write_text("\n".join([good, "random words, more words", good.replace("8612", "8700"),
                               "DiskRead, notanumber, x", good[:60]]) + "\n")
    trace = read_inputs([path], ReadOptions())
    assert trace.diagnostics.counters["bad_lines"] == 3
    assert trace.events.filter(trace.events["kind"] == "irp_complete")["ts_ns"].to_list() == [8612000, 8700000]
    warning = next(w for w in trace.diagnostics.warnings if "bad line" in w)
    assert "line 2" in warning and "line 4" in warning and "line 5" in warning


def test_driver_rows_with_and_without_a_header(tmp_path):
    row = "   DrvMjFnCall,       9000,        System (4),         44,   0, 0x0000000e, 0x00000000, 0xfffff80012345678, 0xffffe288272d0d20, 0xffffe288b23f1b20, 17"
    bare = tmp_path / "bare.txt"
    bare.write_text(row + "\n")
    t = read_inputs([bare], ReadOptions(all_records=True))
    assert t.events["kind"].to_list() == ["other"] and t.diagnostics.counters["xperf_rows_without_layout"] == 1
    assert not t.diagnostics.counters["bad_lines"]
    named = tmp_path / "named.txt"
    named.write_text("   DrvMjFnCall,  TimeStamp, Process Name ( PID), ThreadID, CPU, MajorFunction, MinorFunction, "
                     "RoutineAddr, FileObject, IrpPtr, UniqMatchId\n" + row + "\n")
    ev = read_inputs([named], ReadOptions()).events
    assert ev["kind"].to_list() == ["irp_dispatch"]
    assert (ev["major"][0], ev["minor"][0], ev["irp"][0]) == (0x0E, 0, 0xFFFFE288B23F1B20)
    assert ev["event_name"][0] == "DiskIo/DrvMjFnCall"


def test_disk_flush_and_write_without_header_new_layout(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text(
        "  DiskWriteInit,       9000,        System (4),         44,   0, 0xffffe288b23f2000\n"
        "      DiskWrite,       9400,        System (4),         44,   0, 0xffffe288b23f2000, 0x0000010000, "
        "0x00010000,         400,        1, 0x00000a,         380,       2, Original, 0xffffe288272d0d20, "
        '"C:\\pagefile.sys"\n'
        "      DiskFlush,       9500,        System (4),         44,   0, 0xffffe288b23f3000,          50,"
        "        1, 0x060000,          40,       3\n")
    ev = read_inputs([path], ReadOptions()).events
    assert ev["kind"].to_list() == ["irp_dispatch", "irp_complete", "irp_dispatch", "irp_complete"]
    assert ev["event_name"].to_list()[2:] == ["DiskIo/FlushInit (from ElapsedTime)", "DiskIo/FlushBuffers"]
    assert ev["major"].to_list() == [4, 4, 9, 9] and ev["ts_ns"][2] == 9_450_000
    assert (ev["bytes"][1], ev["offset"][1], ev["irp_flags"][1], ev["device"][1]) == (0x10000, 0x10000, 0xA, "disk1")
    assert ev["irp_flags"][3] == 0 and ev["bytes"][3] is None
    irps = build_lifecycles(ev).sort("arrive_ns")
    assert irps["service_ns"].to_list() == [400_000, 50_000] and irps["paging"].to_list() == [True, False]
