"""A customer's text file cannot hang the readers (issue 12): each case is generated here, run
through `fpreplay events` in a child process under a time limit and a 4 GiB address-space cap,
and must end in bounded time with the promised exit status and warning."""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
import time
import uuid

from fpreplay.parsers.wpp import load_tmf_dir
from fpreplay.parsers.wpp.tmf import MAX_PRINTF_WIDTH, format_printf

ADDRESS_SPACE = 4 << 30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_events(path, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """`fpreplay events PATH -o PATH.parquet ARGS` in a child process: (result, seconds)."""
    t = time.monotonic()
    out = f"{path}.parquet"
    proc = subprocess.run([sys.executable, "-m", "fpreplay.replay", "events", str(path), "-o", out,
                           *args],
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_cap_memory)
    return proc, time.monotonic() - t


# --- TMF formats ------------------------------------------------------------------------------
def test_huge_printf_widths_and_precisions_are_capped():
    for spec, value in (("999999999s", "x"), ("2147483647d", 5), (".99999999x", 255),
                        ("0" * 5000 + "1" * 5000 + "Z", 1), ("9" * 10_000 + "d", 1)):
        t = time.monotonic()
        text = format_printf(spec, value)
        assert time.monotonic() - t < 0.5 and len(text) <= MAX_PRINTF_WIDTH, spec[:20]
    assert format_printf("08X", 255) == "000000FF" and format_printf("-5d", 3) == "3    "
    assert format_printf(".3s", "abcdef") == "abc" and format_printf("2147483647d", 5) \
        == " " * (MAX_PRINTF_WIDTH - 1) + "5"


def test_a_tmf_with_huge_widths_formats_in_bounded_time(tmp_path):
    guid = uuid.UUID("1f0c3b5e-8a3d-4a52-9c1e-00000000abcd")
    (tmp_path / f"{guid}.tmf").write_text(
        f"// PDB:  Wdf01000.pdb\n{guid} Wdf01000 // SRC=x.cpp MJ= MN=\n"
        '#typev x_cpp1 10 "%0a=%10!999999999s! b=%11!2147483647d! c=%12!.99999999x!" '
        "//   LEVEL=TRACE_LEVEL_ERROR FLAGS=TRACINGIO FUNC=F\n"
        "{\na, ItemString -- 10\nb, ItemLong -- 11\nc, ItemLong -- 12\n}\n")
    catalog = load_tmf_dir([tmp_path])
    t = time.monotonic()
    msg = catalog.format(guid, 10, b"hi\0" + struct.pack("<ii", -7, 255), 8)
    assert time.monotonic() - t < 1
    assert msg.text.startswith("a=" + " " * (MAX_PRINTF_WIDTH - 2) + "hi b=")
    assert len(msg.text) < 4 * MAX_PRINTF_WIDTH and msg.text.endswith("ff")


# --- IFR / tracefmt prefixes ------------------------------------------------------------------
def test_a_backtracking_prefix_from_the_file_reads_in_bounded_time(tmp_path):
    """`%5%6` eight times then `Z`: as a backtracking regex each line took minutes."""
    lines = ["Trace searchpath is: C:\\symbols", "Trace format prefix is: " + "%5%6" * 8 + "Z",
             "There are 20 log entries", "--- start of log ---"]
    lines += [("x" * 90) + f" {i}" for i in range(20)]
    lines += ["---- end of log ----"]
    path = tmp_path / "dump.txt"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 4096
    proc, seconds = run_events(path)
    assert seconds < 30, seconds
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "20 bad line(s) skipped: line 5: no known prefix layout matches" in proc.stderr


# --- tracerpt XML -----------------------------------------------------------------------------
EVENT = ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
         '<Provider Guid="{{3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c}}"/><EventID>0</EventID>'
         '<Version>3</Version><Level>0</Level><Task>0</Task><Opcode>10</Opcode>'
         '<TimeCreated SystemTime="2024-11-22T04:49:12.{ms:03d}0000Z"/>'
         '<Execution ProcessID="4" ThreadID="8" ProcessorID="0"/></System>'
         '<EventData><Data Name="DiskNumber">0</Data></EventData></Event>')


def _xml(tmp_path, body: str, name: str = "t.xml"):
    path = tmp_path / name
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<Events>\n' + body)
    return path


def test_an_unclosed_event_reads_in_linear_time(tmp_path):
    """One <Event> never closed, then ~10 MB of lines: each line used to rescan all before it."""
    filler = "<Data Name=\"x\">" + "y" * 80 + "</Data>\n"
    body = EVENT.format(ms=1) + "\n" + "<Event><System>\n" + filler * 110_000
    path = _xml(tmp_path, body)
    assert path.stat().st_size > 9_000_000
    proc, seconds = run_events(path, "--all")
    assert seconds < 30, seconds
    assert proc.returncode == 0, proc.stderr
    assert "event cut off at the end of the file" in proc.stderr


def test_junk_after_the_events_is_a_warning(tmp_path):
    body = "".join(EVENT.format(ms=i) + "\n" for i in range(3)) + "</Events>\n" \
        + "J" * 2_000_000 + "\n"
    path = _xml(tmp_path, body)
    proc, seconds = run_events(path, "--all")
    assert seconds < 30 and proc.returncode == 0, proc.stderr
    assert "2,000,000 characters outside any <Event> are not XML" in proc.stderr
    assert str(path) in proc.stderr


def test_the_xml_around_the_events_is_no_junk(tmp_path):
    body = "".join(EVENT.format(ms=i) + "\n" for i in range(3)) + "</Events>\n"
    path = _xml(tmp_path, body)
    proc, _ = run_events(path, "--all")
    assert proc.returncode == 0 and "bad line" not in proc.stderr, proc.stderr
    # A root tag continued over lines, its attributes alone on a line, is markup too.
    multi = tmp_path / "multi.xml"
    multi.write_text('<?xml version="1.0"?>\n<Events\n  xmlns:x="urn:x"\n  a="b">\n' + body)
    proc, _ = run_events(multi, "--all")
    assert proc.returncode == 0 and "bad line" not in proc.stderr, proc.stderr


def test_junk_that_looks_like_markup_is_a_warning(tmp_path):
    """A long junk line of tag-like characters after the events: named, in bounded time (the
    case of issue 12 was 100 MB; 8 MB here)."""
    import random

    rng = random.Random(12)
    junk = "".join(rng.choice('ab ="<>/xyz09') for _ in range(8_000_000))
    body = "".join(EVENT.format(ms=i) + "\n" for i in range(3)) + "</Events>\n" + junk + "\n"
    path = _xml(tmp_path, body)
    proc, seconds = run_events(path, "--all")
    assert seconds < 60 and proc.returncode == 0, (seconds, proc.stderr)
    assert f"{path}: 1 bad line(s) skipped: line 7: " in proc.stderr, proc.stderr
    assert "characters outside any <Event> are not XML" in proc.stderr


def test_a_damaged_end_tag_loses_one_event_and_says_one(tmp_path):
    """`</Event>` damaged in the second of four events: that event is the one bad line; the
    event after it is read (it used to be swallowed with it: 2 lost, "1 bad line")."""
    from fpreplay.parsers import ReadOptions, read_inputs

    events = [EVENT.format(ms=i) for i in range(4)]
    events[1] = events[1].replace("</Event>", "</Evnt>")
    path = _xml(tmp_path, "\n".join(events) + "\n</Events>\n")
    read = read_inputs([path], ReadOptions(all_records=True))
    assert read.records == 4 and read.events.height == 3
    assert read.diagnostics.counters["bad_lines"] == 1
    [warning] = read.diagnostics.warnings
    assert warning.startswith(f"{path}: 1 bad line(s) skipped: line 4: malformed XML event "
                              "(mismatched tag"), warning
    # Every event whose end tag is damaged is one bad line: lost events and bad lines agree.
    for i in (0, 2):
        events[i] = events[i].replace("</Event>", "</Ev>")
    path.write_text('<?xml version="1.0"?>\n<Events>\n' + "\n".join(events) + "\n</Events>\n")
    read = read_inputs([path], ReadOptions(all_records=True))
    assert read.records - read.events.height == read.diagnostics.counters["bad_lines"] == 3
