"""tracerpt CSV and XML exports: known kernel events in -> the same events and lifecycles out."""

from __future__ import annotations

from hypothesis import given, strategies as st
import polars as pl

from fpreplay.lifecycles import build_lifecycles
from fpreplay.parsers import ReadOptions, read_inputs
from fpreplay.parsers.formats import sniff

FT0 = 132404547798258120                     # a FILETIME (2020-07-29)
NS0 = (FT0 - 116444736000000000) * 100
HEADER = ("Event Name, Type, Event ID, Version, Channel, Level, Opcode, Task, Keyword, PID, TID, "
          "Processor Number, Instance ID, Parent Instance ID, Activity ID, Related Activity ID, "
          "Clock-Time, Kernel(ms), User(ms), User Data")
ZERO = "{00000000-0000-0000-0000-000000000000}"

# one disk IRP: (is_write, size, offset, irp_flags incl. priority bits, disk) ; one file IRP: status
io_st = st.tuples(st.booleans(), st.integers(1, 1 << 20), st.integers(0, 1 << 40),
                  st.sampled_from([0x0, 0x43, 0x60043, 0x2000A, 0x403]), st.integers(0, 3),
                  st.sampled_from([0, 0xC000009A, 0xC0000120, 0xC0000185]))


def csv_rows(ios):
    rows, expected = [HEADER], []
    t = FT0
    for i, (write, size, off, flags, disk, status) in enumerate(ios):
        irp, fo = 0xFFFFFA83033B0000 + 0x100 * i, 0xFFFFF8A0016B9140
        op_init, op_done, name = (13, 11, "Write") if write else (12, 10, "Read")
        major = 4 if write else 3
        rows.append(f"DiskIo, {name}Init, 0, 3, 0, 0, {op_init}, 0, 0x0, 0x00000F94, 0x00000AE0, 7, , , {ZERO}, , "
                    f"{t}, 0, 0, 0x{irp:016X}, 2784")
        expected.append(("irp_dispatch", irp, major, None, None, None, None, (t - FT0) * 100))
        t += 1000
        rows.append(f"DiskIo, {name}, 0, 3, 0, 0, {op_done}, 0, 0x0, 0xFFFFFFFF, 0xFFFFFFFF, 0, , , {ZERO}, , "
                    f"{t}, 0, 0, {disk}, 0x{flags:08X}, {size}, 0, {off}, 0x{fo:016X}, 0x{irp:016X}, 1000, 2784")
        expected.append(("irp_complete", irp, major, flags & ~0xE0000, size, off, None, (t - FT0) * 100))
        t += 10
        firp = 0xFFFFE288851F0000 + 0x100 * i
        rows.append(f"FileIo, Write, 0, 3, 0, 0, 68, 0, 0x0, 0x00000F94, 0x00000AE0, 1, , , {ZERO}, , {t}, 0, 0, "
                    f"{off}, 0x{firp:016X}, 0x{fo:016X}, 0x{fo:016X}, 2784, {size}, 0x{flags:X}, 0")
        expected.append(("irp_dispatch", firp, 4, flags & ~0xE0000, size, off, None, (t - FT0) * 100))
        t += 10
        rows.append(f"FileIo, OpEnd, 0, 3, 0, 0, 76, 0, 0x0, 0x00000F94, 0x00000AE0, 1, , , {ZERO}, , {t}, 0, 0, "
                    f"0x{firp:016X}, {size}, 0x{status:08X}")
        expected.append(("irp_complete", firp, None, None, None, None, status, (t - FT0) * 100))
        t += 10
    return rows, expected


def got(trace):
    return [(r["kind"], r["irp"], r["major"], r["irp_flags"], r["bytes"], r["offset"], r["status"],
             r["ts_ns"] - NS0) for r in trace.events.iter_rows(named=True)]


def actual_for(status):
    return {0: "ok", 0xC000009A: "alloc_failed", 0xC0000120: "cancelled", 0xC0000185: "failed"}[status]


@given(st.lists(io_st, min_size=1, max_size=8))
def test_csv_round_trip(tmp_path_factory, ios):
    rows, expected = csv_rows(ios)
    path = tmp_path_factory.mktemp("rpt") / "out.csv"
    path.write_text("\n".join(rows) + "\n")
    assert sniff(path) == "tracerpt_csv"
    trace = read_inputs([path], ReadOptions())
    assert got(trace) == expected
    assert trace.records == 4 * len(ios) and trace.trace_start_ns == NS0
    irps = build_lifecycles(trace.events).sort("arrive_ns")
    assert len(irps) == 2 * len(ios)
    file_irps = irps.filter(irps["major"].is_not_null() & (irps["irp"] >= 0xFFFFE288851F0000)
                            & (irps["irp"] < 0xFFFFE28885200000))
    assert file_irps["actual"].to_list() == [actual_for(s) for *_, s in ios]


def xml_event(cls_guid, opcode, version, t_iso, data, pid="4294967295", tid="4294967295"):
    fields = "".join(f'<Data Name="{k}">{v}</Data>' for k, v in data.items())
    return (f'<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">\n'
            f' <System><Provider Guid="{{9e814aad-3204-11d2-9a82-006008a86939}}" /><EventID>0</EventID>'
            f'<Version>{version}</Version><Level>0</Level><Task>0</Task><Opcode>{opcode}</Opcode>'
            f'<Keywords>0x0</Keywords>\n  <TimeCreated SystemTime="{t_iso}" /><Execution ProcessID="{pid}" '
            f'ThreadID="{tid}" ProcessorID="2" KernelTime="0" UserTime="0" /><Channel /><Computer /></System>\n'
            f' <EventData>{fields}</EventData>\n'
            f' <RenderingInfo Culture="en-US"><Opcode>x</Opcode><Provider>MSNT_SystemTrace</Provider></RenderingInfo>\n'
            f' <ExtendedTracingInfo xmlns="http://schemas.microsoft.com/win/2004/08/events/trace"><EventGuid>'
            f'{{{cls_guid}}}</EventGuid></ExtendedTracingInfo>\n</Event>')


DISK = "3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c"
FILE = "90cbdc39-4a3e-11d1-84f4-0000f80464e3"
PF = "3d6fa8d3-fe05-11d0-9dda-00c04fd7ba7c"


def test_xml_round_trip_and_damaged_event(tmp_path):
    irp = 0xFFFFFA83033B3680
    events = [
        xml_event(DISK, 12, 3, "2020-07-29T00:06:19.825812000Z", {"Irp": f"0x{irp:X}", "IssuingThreadId": "2784"},
                  pid="3988", tid="2784"),
        xml_event(DISK, 10, 3, "2020-07-29T00:06:19.836760000Z",
                  {"DiskNumber": "0", "IrpFlags": "0x60043", "TransferSize": "20480", "Reserved": "0",
                   "ByteOffset": "5669618688", "FileObject": "0xFFFFF8A0016B9140", "Irp": f"0x{irp:X}",
                   "HighResResponseTime": "109469", "IssuingThreadId": "2784"}),
        '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><broken></Event>',
        xml_event(FILE, 76, 3, "2020-07-29T02:06:19.9+02:00",
                  {"IrpPtr": "0xFFFFE288851F8608", "ExtraInfo": "0x0", "NtStatus": "0xC01C0004"}),
        xml_event(PF, 32, 2, "2020-07-29T00:06:20Z",
                  {"InitialTime": "1", "ReadOffset": "0x53b8000", "VirtualAddress": "0xffffa88fbf2b8000",
                   "FileObject": "0xffffe288272d0d20", "TThreadId": "11844", "ByteCount": "4096"}),
    ]
    path = tmp_path / "out.xml"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<Events>\n' + "\n".join(events)
                    + '\n<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>\n')
    assert sniff(path) == "tracerpt_xml"
    trace = read_inputs([path], ReadOptions())
    ev = trace.events
    assert ev["kind"].to_list() == ["irp_dispatch", "irp_complete", "irp_complete", "memory_pressure"]
    assert ev["irp"].to_list()[:2] == [irp, irp]
    assert (ev["irp_flags"][1], ev["bytes"][1], ev["offset"][1], ev["device"][1]) == (0x43, 20480, 5669618688, "disk0")
    assert (ev["pid"][0], ev["tid"][0], ev["tid"][1], ev["cpu"][1]) == (3988, 2784, 2784, 2)
    assert ev["status"][2] == 0xC01C0004
    assert ev["ts_ns"][2] - ev["ts_ns"][1] == 63_240_000                # +02:00 honoured
    assert ev["offset"][3] == 0x53B8000
    assert trace.diagnostics.counters["bad_lines"] == 2 and trace.records == 6
    life = build_lifecycles(ev)
    assert life.filter(life["irp"] == irp)["service_ns"].to_list() == [10_948_000]


def test_csv_bad_rows_and_raw_clock(tmp_path):
    rows, _ = csv_rows([(False, 4096, 0, 0x43, 0, 0)])
    rows.insert(2, "DiskIo, Read, 0, 3, 0, 0, 10, 0, 0x0, 0xFFFFFFFF, 0xFFFFFFFF, 0, , , x, , 13240454779, 0, 0, 1, 2")
    rows.insert(3, "complete nonsense")
    rows.append(rows[1][:40])
    path = tmp_path / "out.csv"
    path.write_text("\n".join(rows) + "\n")
    trace = read_inputs([path], ReadOptions())
    assert trace.diagnostics.counters["bad_lines"] == 3
    assert len(trace.events) == 4
    assert "line 3" in " ".join(trace.diagnostics.warnings)
    raw = tmp_path / "raw.csv"
    raw.write_text(HEADER + "\n" + rows[1].replace(str(FT0), "123456") + "\n")
    t = read_inputs([raw], ReadOptions())
    assert t.events["ts_ns"].to_list() == [12_345_600] and any("raw clock" in w for w in t.diagnostics.warnings)


def test_utf16_and_gzip_text_with_progress(tmp_path):
    import gzip

    rows, expected = csv_rows([(True, 4096, 512, 0x43, 1, 0)])
    text = "\n".join(rows) + "\n"
    u16 = tmp_path / "unicode.csv"
    u16.write_bytes(text.encode("utf-16"))                   # BOM + UTF-16LE, as -en Unicode writes
    gz = tmp_path / "out.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    for path in (u16, gz):
        assert sniff(path) == "tracerpt_csv"
        seen = []
        trace = read_inputs([path], ReadOptions(progress=seen.append))
        assert got(trace) == expected
        assert seen and seen[-1] == path.stat().st_size


def test_cut_gzip_text_keeps_what_was_read_with_a_warning(tmp_path):
    """Contract: a truncated file is read as far as it goes (warning, exit 0), as for .etl.gz."""
    import gzip
    import random

    rng = random.Random(3)                  # incompressible noise in the IRPs: a long stream
    rows, expected = csv_rows([(bool(i % 2), rng.randrange(1, 1 << 20), rng.randrange(1 << 30), 0, 1, 0)
                               for i in range(3000)])
    data = gzip.compress(("\n".join(rows) + "\n").encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    trace = read_inputs([cut], ReadOptions())
    assert 0 < trace.events.height < len(expected)
    assert got(trace)[:100] == expected[:100]
    assert trace.diagnostics.counters["text_truncated"] == 1
    assert any("damaged compressed stream" in w and str(cut) in w for w in trace.diagnostics.warnings)


def iso(ft):
    from datetime import datetime, timezone

    ns = (ft - 116444736000000000) * 100
    return datetime.fromtimestamp(ns // 10**9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns % 10**9:09d}Z"


@given(st.lists(io_st, min_size=1, max_size=6))
def test_xml_round_trip(tmp_path_factory, ios):
    """The same IRPs as the CSV round trip, written as tracerpt XML: the same events come back."""
    _, expected = csv_rows(ios)
    out, t = [], FT0
    for i, (write, size, off, flags, disk, status) in enumerate(ios):
        irp, fo, firp = 0xFFFFFA83033B0000 + 0x100 * i, 0xFFFFF8A0016B9140, 0xFFFFE288851F0000 + 0x100 * i
        out.append(xml_event(DISK, 13 if write else 12, 3, iso(t), {"Irp": f"0x{irp:X}", "IssuingThreadId": "2784"}))
        t += 1000
        out.append(xml_event(DISK, 11 if write else 10, 3, iso(t), {
            "DiskNumber": disk, "IrpFlags": f"0x{flags:X}", "TransferSize": size, "Reserved": 0, "ByteOffset": off,
            "FileObject": f"0x{fo:X}", "Irp": f"0x{irp:X}", "HighResResponseTime": 1000, "IssuingThreadId": 2784}))
        t += 10
        out.append(xml_event(FILE, 68, 3, iso(t), {
            "Offset": off, "IrpPtr": f"0x{firp:X}", "FileObject": f"0x{fo:X}", "FileKey": f"0x{fo:X}",
            "TTID": 2784, "IoSize": size, "IoFlags": f"0x{flags:X}"}))
        t += 10
        out.append(xml_event(FILE, 76, 3, iso(t), {"IrpPtr": f"0x{firp:X}", "ExtraInfo": size,
                                                   "NtStatus": f"0x{status:08X}"}))
        t += 10
    path = tmp_path_factory.mktemp("rx") / "out.xml"
    path.write_text("<?xml version='1.0'?>\n<Events>" + "".join(out) + "</Events>\n")   # events back to back
    trace = read_inputs([path], ReadOptions())
    assert got(trace) == expected
    assert trace.records == 4 * len(ios) and not trace.diagnostics.counters["bad_lines"]


def test_kernel_file_and_kernel_disk_manifest_events(tmp_path):
    kf, kd = "Microsoft-Windows-Kernel-File", "Microsoft-Windows-Kernel-Disk"
    base = "0, 4, 0, 0, 0x0, 0x00000F94, 0x00000AE0, 1, , , {0}, , {1}, 0, 0, "
    rows = [HEADER,
            f"{kf}, win:Info, 16, 1, " + base.format(ZERO, FT0) + "0x10, 0xFFFFE28800001000, 0xFFFF1, 0xFFFF1, 2784, "
            "4096, 0x60A00, 0",
            f"{kf}, win:Info, 24, 1, " + base.format(ZERO, FT0 + 10) + "0xFFFFE28800001000, 4096, 0xC000009A",
            f"{kd}, win:Info, 10, 1, " + base.format(ZERO, FT0 + 20) + "2, 0x43, 512, 0, 99, 0xFFFF1, "
            "0xFFFFE28800002000, 10",
            f"{kf}, win:Info, 16, 1, " + base.format(ZERO, FT0 + 30) + "0x10, 0xFFFFE28800003000",
            # an id fpreplay does not decode (NameCreate): any payload, `other`, not a bad line
            f"{kf}, win:Info, 10, 1, " + base.format(ZERO, FT0 + 40) + "0xFFFF1, \\Device\\x"]
    path = tmp_path / "kf.csv"
    path.write_text("\n".join(rows) + "\n")
    trace = read_inputs([path], ReadOptions())
    ev = trace.events
    assert ev["event_name"].to_list() == ["Kernel-File/Write", "Kernel-File/OperationEnd", "Kernel-Disk/DiskRead"]
    assert ev["kind"].to_list() == ["irp_dispatch", "irp_complete", "irp_complete"]
    assert (ev["bytes"][0], ev["offset"][0], ev["irp_flags"][0], ev["major"][0]) == (4096, 0x10, 0xA00, 4)
    assert ev["status"][1] == 0xC000009A and ev["irp"][1] == 0xFFFFE28800001000
    assert (ev["device"][2], ev["irp_flags"][2], ev["bytes"][2], ev["irp"][2]) == ("disk2", 0x43, 512, 0xFFFFE28800002000)
    assert trace.diagnostics.counters["bad_lines"] == 1                 # the cut Kernel-File row
    assert build_lifecycles(ev).sort("arrive_ns")["actual"].to_list()[0] == "alloc_failed"
    every = read_inputs([path], ReadOptions(all_records=True)).events
    assert every.filter(pl.col("event_name").str.starts_with(kf))["event_id"].to_list() == [10]
    xml = tmp_path / "kf.xml"
    xml.write_text("<Events>" + xml_event("{edd08927-9cc4-4e65-b970-c2560fb5c289}".strip("{}"), 0, 1,
                                          "2020-07-29T00:06:19.8Z", {"Irp": "0xFFFFE28800001000",
                                                                     "ExtraInformation": "0", "Status": "0x0"})
                   .replace("<EventID>0</EventID>", "<EventID>24</EventID>")
                   .replace("{9e814aad-3204-11d2-9a82-006008a86939}", "{edd08927-9cc4-4e65-b970-c2560fb5c289}")
                   + "</Events>\n")
    x = read_inputs([xml], ReadOptions()).events
    assert x["event_name"].to_list() == ["Kernel-File/OperationEnd"] and x["status"].to_list() == [0]
