"""Damaged .etl input never yields a traceback or a hang: either one InputError naming the file
and byte offset (nothing readable), or what could be read plus a warning naming the offset."""

from __future__ import annotations

import gzip
import random

from hypothesis import given
from hypothesis import strategies as st

from conftest import real_trace
from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import InputError
from fpreplay.parsers.api import ReadOptions, read_inputs
from fpreplay.parsers.etl.reader import read_events
from fpreplay.replay.cli import main

DISKIO_RECORDS = 11_096


def _read(path, all_records=False):
    d, stats = Diagnostics(), {}
    rows = sum(b.height for b in read_events(path, ReadOptions(all_records=all_records), d,
                                             stats))
    return rows, stats, d


def test_unreadable_etl_is_one_line_exit_2(tmp_path, capsys):
    # Looks like a buffer header followed by a trace-header marker, but the size is impossible.
    bad = tmp_path / "bad.etl"
    bad.write_bytes(b"\x20\x00\x00\x00" + bytes(0x44) + b"\x02\x00\x02\xc0" + bytes(200))
    code = main(["events", str(bad), "-o", str(tmp_path / "x.parquet")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "byte 0" in lines[0]


def test_random_bytes_after_a_valid_header_buffer(tmp_path, capsys):
    src = real_trace("format_only/lxcore_kernel.etl").read_bytes()
    junk = tmp_path / "junk.etl"
    junk.write_bytes(src[:8192] + random.Random(7).randbytes(20_000))
    code = main(["events", str(junk), "--all", "-o", str(tmp_path / "x.csv"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err
    assert "byte 8192" in out                         # the warning names where it went wrong


def test_trace_cut_at_many_offsets(tmp_path):
    """Cuts inside the header buffer, inside compressed blocks and on buffer boundaries."""
    data = real_trace("etl/filtrace_diskio.etl").read_bytes()
    cuts = sorted({0x48 + 1, 1024, 1024 + 0x48, 1024 + 0x48 + 100, 16637, 16637 + 5000}
                  | {random.Random(n).randrange(1100, len(data)) for n in range(12)})
    previous = 0
    for cut in cuts:
        p = tmp_path / f"cut{cut}.etl"
        p.write_bytes(data[:cut])
        try:
            rows, stats, d = _read(p, all_records=True)
        except InputError as e:
            assert cut < 1024 and str(p) in str(e) and "byte" in str(e)
            continue
        assert 0 < stats["records"] < DISKIO_RECORDS and rows == stats["records"]
        assert stats["records"] >= previous           # a longer prefix never reads less
        previous = stats["records"]
        assert any("byte " in w and "cut" in w for w in d.warnings), (cut, d.warnings)


def test_truncated_gzip_stream(tmp_path):
    data = gzip.compress(real_trace("etl/filtrace_diskio.etl").read_bytes())
    p = tmp_path / "t.etl.gz"
    p.write_bytes(data[: len(data) * 2 // 3])
    rows, stats, d = _read(p)
    assert 0 < stats["records"] < DISKIO_RECORDS
    assert any("damaged compressed stream" in w or "cut" in w for w in d.warnings)


def test_corrupt_xpress_block_in_a_real_trace(tmp_path):
    data = bytearray(real_trace("etl/filtrace_diskio.etl").read_bytes())
    data[16637 + 0x48 + 40: 16637 + 0x48 + 400] = b"\xff" * 360     # inside buffer 2's stream
    p = tmp_path / "x.etl"
    p.write_bytes(bytes(data))
    rows, stats, d = _read(p)
    assert 0 < stats["records"] < DISKIO_RECORDS
    assert any("byte 16637" in w for w in d.warnings), d.warnings


def _mutation_check(tmp_path, name: str, base: bytes, edits, cut) -> None:
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    p = tmp_path / name
    p.write_bytes(bytes(data))
    try:
        read = read_inputs([p], ReadOptions(all_records=True))
    except InputError as e:
        assert str(p) in str(e)
        return
    assert read.events.height == read.records
    assert all(str(p) in w for w in read.diagnostics.warnings)
    # Without --all the walk takes its fast path; it must see the same records.
    assert read_inputs([p], ReadOptions()).records == read.records


@given(edits=st.lists(st.tuples(st.integers(0, 24_575), st.integers(0, 255)), max_size=12),
       cut=st.none() | st.integers(0, 24_576))
def test_mutated_uncompressed_trace(tmp_path_factory, edits, cut):
    base = real_trace("format_only/lxcore_kernel.etl").read_bytes()     # 3 x 8 KiB buffers
    _mutation_check(tmp_path_factory.mktemp("m"), "m.etl", base, edits, cut)


@given(edits=st.lists(st.tuples(st.integers(0, 29_378), st.integers(0, 255)), max_size=12),
       cut=st.none() | st.integers(0, 29_379))
def test_mutated_compressed_trace(tmp_path_factory, edits, cut):
    base = real_trace("etl/filtrace_diskio.etl").read_bytes()[:29_379]   # header + 2 LZ77 buffers
    _mutation_check(tmp_path_factory.mktemp("c"), "c.etl", base, edits, cut)


def test_corrupt_zip_and_gzip_members(tmp_path):
    import zipfile

    src = real_trace("etl/filtrace_diskio.etl").read_bytes()
    zp = tmp_path / "d.etl.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("d.etl", src)
    gz = tmp_path / "d.etl.gz"
    gz.write_bytes(gzip.compress(src))
    for p in (zp, gz):
        data = bytearray(p.read_bytes())
        mid = len(data) // 2
        data[mid:mid + 64] = bytes(64)                  # wreck the deflate stream mid-way
        p.write_bytes(bytes(data))
        rows, stats, d = _read(p)
        assert 0 < stats["records"] < DISKIO_RECORDS
        # Deflate damage shows either as a stream error or as garbage buffers; both are named.
        assert d.warnings and all(str(p) in w and "byte " in w for w in d.warnings), d.warnings


def test_a_zips_second_etl_member_is_named_in_a_warning(tmp_path):
    """Only one .etl of a zip is read; the others are named, not silently ignored."""
    import zipfile

    src = real_trace("etl/filtrace_diskio.etl").read_bytes()
    zp = tmp_path / "two.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes.txt", "not a trace")
        z.writestr("a.etl", src)
        z.writestr("b.etl", src)
    rows, stats, d = _read(zp)
    assert stats["records"] == DISKIO_RECORDS
    assert f"{zp}: the zip holds 2 .etl files; only a.etl is read (b.etl not: unzip and " \
        "give each as its own input)" in d.warnings
    one = tmp_path / "one.zip"
    with zipfile.ZipFile(one, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes.txt", "not a trace")
        z.writestr("a.etl", src)
    assert not any(".etl files" in w for w in _read(one)[2].warnings)
