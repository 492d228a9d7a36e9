"""Damaged text in every format: garbage and cut lines anywhere are counted, the rest is read."""

from __future__ import annotations

from hypothesis import given, strategies as st

from fpreplay.parsers import ReadOptions, read_inputs

IFR_HEAD = ["Trace format prefix is: %7!u!: %4!s! %!FUNC! - ", "--- start of log ---"]
IFR_LINE = ("{n}: 11/22/2024-04:49:12.{n:06d} FxRequest::Complete - Completing WDFREQUEST 0x00003A77F9C19F68 "
            "for IRP 0xFFFFC58806B5{n:04X} with Information 0x0, STATUS_SUCCESS")
TF_LINE = ("[1]0004.00A8::11/22/2024-04:49:12.{n:03d} [Wdf01000]Completing WDFREQUEST 0x00003A77F9C19F68 for "
           "IRP 0xFFFFC58806B5{n:04X} with Information 0x0, STATUS_SUCCESS")
XP_LINE = ("      DiskRead, {n:10d},        xperf.exe (3984),      11844,   1, 0xffffe288b23f{n:04x}, "
           "0x018f0b8000, 0x00001000,         283,        0, 0x060043,         283,       3, Original, "
           '0xffffe288272d0d20, "C:\\$Mft"')
CSV_HEAD = ["Event Name, Type, Event ID, Version, Channel, Level, Opcode, Task, Keyword, PID, TID, Processor Number, "
            "Instance ID, Parent Instance ID, Activity ID, Related Activity ID, Clock-Time, Kernel(ms), User(ms), "
            "User Data"]
CSV_LINE = ("DiskIo, Read, 0, 3, 0, 0, 10, 0, 0x0, 0xFFFFFFFF, 0xFFFFFFFF, 0, , , {{0}}, , {ft}, 0, 0, 0, "
            "0x00060043, 20480, 0, 5669618688, 0xFFFFF8A0016B9140, 0xFFFFFA83033B{n:04X}, 109469, 2784")

FORMATS = {
    "ifr": (IFR_HEAD, lambda n: IFR_LINE.format(n=n), ["---- end of log ----"]),
    "tracefmt": ([], lambda n: TF_LINE.format(n=n), []),
    "xperf": ([], lambda n: XP_LINE.format(n=n + 1000), []),
    "csv": (CSV_HEAD, lambda n: CSV_LINE.format(n=n, ft=132404547798258120 + n), []),
}
GARBAGE = ["\x01\x02 binary junk \x7f", "lorem ipsum dolor sit amet", "=====", "<Event><broken",
           "12345", "[x]yyyy.zzzz::not a time [p]msg"]


@given(st.sampled_from(sorted(FORMATS)), st.integers(3, 25),
       st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(GARBAGE + ["CUT"])), min_size=1, max_size=6))
def test_garbage_and_cut_lines(tmp_path_factory, fmt, count, damage):
    head, make, tail = FORMATS[fmt]
    body = [make(n) for n in range(1, count + 1)]
    inserted = []
    for pos, junk in damage:
        where = 1 + pos % len(body) if len(body) > 1 else 1     # never before the first good line
        text = body[where - 1][:18] if junk == "CUT" else junk  # a line cut inside its prefix
        body.insert(where, text)
        inserted.append(text)
    path = tmp_path_factory.mktemp("dmg") / "in.txt"
    path.write_text("\n".join(head + body + tail) + "\n")
    trace = read_inputs([path], ReadOptions(tz="UTC"))
    done = trace.events.filter(trace.events["kind"] == "irp_complete")
    assert len(done) == count and done["irp"].n_unique() == count
    assert trace.diagnostics.counters["bad_lines"] == len(inserted)
    assert any(str(path) in w and "bad line" in w for w in trace.diagnostics.warnings)
