"""Fuzz every text reader and the TMF formatter (issue 12): a valid sample, damaged by
hypothesis (lines dropped, duplicated, cut, replaced by random text, bytes flipped), is read to
the end or refused with one InputError, never a traceback, in bounded time."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import FpreplayError
from fpreplay.parsers import ReadOptions
from fpreplay.parsers.formats import reader_for
from fpreplay.parsers.wpp import load_tmf_dir
from fpreplay.parsers.wpp.tmf import MAX_PRINTF_WIDTH, format_printf

from test_text_tracerpt import csv_rows
from test_untrusted_text import EVENT

STAMP = datetime(2024, 11, 22, 4, 49, 12, tzinfo=timezone.utc).strftime("%m/%d/%Y-%H:%M:%S")
IRP = "0xFFFF8A0C1E2E0000"

SAMPLES: dict[str, list[str]] = {
    "ifr": ["Trace searchpath is: C:\\symbols", "Trace format prefix is: %7!u!: %4!s! %!FUNC! - ",
            "There are 3 log entries", "--- start of log ---",
            f"1: {STAMP}.0010000 FxPkgIo::Dispatch - WDFDEVICE 0x00005E7F3A6D3FD8 !devobj "
            f"0xFFFF8A0C1F0A2E30 0x00000003(IRP_MJ_READ), IRP_MN 0, IRP {IRP}",
            f"2: {STAMP}.0020000 FxPkgIo::DispatchStep2 - Could not create WDFREQUEST, "
            "STATUS_INSUFFICIENT_RESOURCES",
            f"3: {STAMP}.0030000 FxRequest::Complete - Completing WDFREQUEST 0x00005E7F3A1C0000 "
            f"for IRP {IRP} with Information 0x200, STATUS_SUCCESS",
            "---- end of log ----"],
    "tracefmt": [f"[0]0F94.0AE0::{STAMP}.001 [Wdf01000]FxPkgIo::Dispatch WDFDEVICE "
                 f"0x00005E7F3A6D3FD8 !devobj 0xFFFF8A0C1F0A2E30 0x00000004(IRP_MJ_WRITE), "
                 f"IRP_MN 0, IRP {IRP}",
                 f"[1]0F94.0AE0::{STAMP}.002 [Wdf01000]Completing WDFREQUEST 0x00005E7F3A1C0000 "
                 f"for IRP {IRP} with Information 0x200, STATUS_CANCELLED"],
    "tracerpt_csv": csv_rows([(True, 4096, 512, 0x43, 0, 0xC000009A)])[0],
    "tracerpt_xml": ['<?xml version="1.0" encoding="UTF-8"?>', "<Events>",
                     *(EVENT.format(ms=i) for i in range(3)), "</Events>"],
    "xperf_dumper": ["               DiskRead,     723291, p0 (11008),      12260, "
                     "0xfffffade691b3010, 0x4e5ec22e00, 0x00002000,        4388,        4, "
                     "0x000901,        4388,       0,  Unknown, 0xfffffade6bd7d7a0, \"Disk6\""],
}

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=120)
EDIT = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 20)),
    st.tuples(st.just("repeat"), st.integers(0, 20)),
    st.tuples(st.just("cut"), st.integers(0, 20), st.integers(0, 400)),
    st.tuples(st.just("insert"), st.integers(0, 20), TEXT),
    st.tuples(st.just("flip"), st.integers(0, 20), st.integers(0, 400), st.characters()),
)


def damaged(lines: list[str], edits) -> str:
    lines = list(lines)
    for edit in edits:
        if not lines:
            break
        op, i = edit[0], edit[1] % len(lines)
        if op == "drop":
            del lines[i]
        elif op == "repeat":
            lines.insert(i, lines[i])
        elif op == "cut":
            lines[i] = lines[i][:edit[2]]
        elif op == "insert":
            lines.insert(i, edit[2])
        else:
            at = edit[2] % (len(lines[i]) + 1)
            lines[i] = lines[i][:at] + edit[3] + lines[i][at + 1:]
    return "\n".join(lines) + "\n"


def read_to_the_end(kind: str, path) -> None:
    """The reader of `kind` over the file: ends, or refuses it with one of fpreplay's errors."""
    t = time.monotonic()
    try:
        for _ in reader_for(kind)(path, ReadOptions(all_records=True, tz="UTC"), Diagnostics(), {}):
            pass
    except FpreplayError as e:
        assert str(e).strip() and "\n" not in str(e).strip()
    assert time.monotonic() - t < 10


@given(kind=st.sampled_from(sorted(SAMPLES)), edits=st.lists(EDIT, max_size=8))
def test_damaged_text_is_read_or_refused_in_one_line(tmp_path_factory, kind, edits):
    path = tmp_path_factory.mktemp("fuzz") / f"t.{kind}.txt"
    path.write_text(damaged(SAMPLES[kind], edits), encoding="utf-8", errors="surrogatepass")
    read_to_the_end(kind, path)


def test_every_sample_reads_as_its_reader_expects(tmp_path):
    """The undamaged samples are valid inputs, so the fuzzing starts from real structure."""
    from fpreplay.parsers import read_inputs
    from fpreplay.parsers.formats import sniff

    for kind, lines in SAMPLES.items():
        path = tmp_path / f"{kind}.txt"
        path.write_text("\n".join(lines) + "\n")
        assert sniff(path) == kind
        read = read_inputs([path], ReadOptions(all_records=True, tz="UTC"))
        assert read.events.height >= 1, kind
        assert not any("bad line" in w for w in read.diagnostics.warnings), (kind, read)


# --- the TMF formatter ------------------------------------------------------------------------
SPEC = st.text(st.sampled_from("-+ #0123456789.hlwzLIjtdiuxXopcsSeEfgG!%*"), max_size=40)
VALUE = st.one_of(st.integers(-(1 << 70), 1 << 70), st.text(max_size=50),
                  st.floats(allow_nan=True), st.binary(max_size=20))


@given(spec=SPEC, value=VALUE, size=st.sampled_from([1, 2, 4, 8]))
def test_printf_never_raises_and_stays_bounded(spec, value, size):
    text = format_printf(spec, value, size)
    assert isinstance(text, str)
    assert len(text) <= MAX_PRINTF_WIDTH + len(str(value)) + 64


@given(fmt=st.text(st.sampled_from("%!0123456789abcsdxXp.IlS-"), max_size=40),
       args=st.binary(max_size=64), pointer_size=st.sampled_from([4, 8]))
def test_tmf_messages_format_any_payload(tmp_path_factory, fmt, args, pointer_size):
    guid = uuid.UUID("1f0c3b5e-8a3d-4a52-9c1e-00000000f022")
    d = tmp_path_factory.mktemp("tmf")
    (d / f"{guid}.tmf").write_text(
        f"// PDB:  x.pdb\n{guid} x // SRC=x.c MJ= MN=\n"
        f'#typev x_c1 10 "%0{fmt.replace(chr(34), "")}" //   LEVEL=TRACE_LEVEL_ERROR FUNC=F\n'
        "{\na, ItemString -- 10\nb, ItemLong -- 11\nc, ItemPtr -- 12\nd, ItemWString -- 13\n}\n")
    t = time.monotonic()
    try:
        catalog = load_tmf_dir([d])
    except FpreplayError:
        return
    msg = catalog.format(guid, 10, args, pointer_size)
    assert msg is None or isinstance(msg.text, str)
    assert time.monotonic() - t < 5
