"""Damaged .etl input never yields a traceback or a hang: either one InputError naming the file
and byte offset (nothing readable), or what could be read plus a warning naming the offset."""

from __future__ import annotations

import gzip
import random

import pytest

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


_BASE_READS: dict = {}


def _base_read(name: str, base: bytes, tmp_path):
    """(records, warnings) of an undamaged base, read once."""
    if name not in _BASE_READS:
        p = tmp_path / f"base-{name.replace('/', '_').replace(':', '_')}"
        p.write_bytes(base)
        read = read_inputs([p], ReadOptions(all_records=True))
        _BASE_READS[name] = (read.records, [w.replace(str(p), "") for w in
                                            read.diagnostics.warnings])
    return _BASE_READS[name]


def _named(path, warnings, base_warnings) -> bool:
    """A warning the damage added, naming the file and a byte offset."""
    return any(str(path) in w and "byte " in w and w.replace(str(path), "") not in base_warnings
               for w in warnings)


def _mutation_check(tmp_path, name: str, base: bytes, edits, cut) -> None:
    base_records, base_warnings = _base_read(name, base, tmp_path)
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
    # Damage that changes the records read is named (issue 12: none is silently absorbed).
    if read.records != base_records:
        assert _named(p, read.diagnostics.warnings, base_warnings), \
            (read.records, base_records, read.diagnostics.warnings)
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


# --- every damage that changes the records read is named (issue 12) ------------------------------

def _buffers(path) -> list[tuple[int, bytes]]:
    from fpreplay.parsers.etl.stream import iter_buffers

    return [(offset, data) for offset, _, data in iter_buffers(path, Diagnostics())]


def _record_sizes(data: bytes) -> list[int]:
    """Offsets (in an uncompressed buffer) of its records' 16-bit Size fields."""
    from fpreplay.parsers.etl.headers import BY_HOOK, NO_MARKER, PREFIX_WORDS, WALK

    at, end, found = 0x48, len(data.rstrip(b"\xff")), []
    while at + 8 <= end:
        w0, type_marker, w2, _ = PREFIX_WORDS.unpack_from(data, at)
        kind, _, lookup = WALK[type_marker]
        size = w2 if lookup is BY_HOOK else w0 if lookup is not NO_MARKER else None
        if not size:
            break
        found.append(at + 4 if lookup is BY_HOOK else at)
        at += (size + 7) & ~7
    return found


def _damages(path, seed: int):
    """(label, must_warn, damaged bytes): buffers duplicated, shuffled, reversed; zeroed 4 KB
    regions; record sizes made wrong; single bytes flipped. `must_warn`: named even when the
    record count stays (a duplicate skipped, a reordering)."""
    rng = random.Random(seed)
    base = path.read_bytes()
    bufs = _buffers(path)
    chunks = [base[o:o + len(d)] for o, d in bufs]
    n = len(chunks)
    for i in sorted({1, n // 2, n - 1}):
        yield f"dup{i}", True, b"".join(chunks[:i + 1] + [chunks[i]] + chunks[i + 1:])
    yield "dup-at-end", True, base + chunks[n // 2]
    for i, j in sorted({(1, 2), (2, n - 1), (n // 2, n // 2 + 1)}):
        if 0 < i < j < n:
            c = list(chunks)
            c[i], c[j] = c[j], c[i]
            yield f"swap{i},{j}", True, b"".join(c)
    yield "reversed", True, chunks[0] + b"".join(reversed(chunks[1:]))
    for at in sorted({bufs[1][0], bufs[1][0] + 0x48, bufs[n // 2][0] + 1000,
                      rng.randrange(bufs[1][0], len(base) - 4096)}):
        yield f"zero4k@{at}", False, base[:at] + bytes(4096) + base[at + 4096:]
    uncompressed = [(o, d) for o, d in bufs[1:] if len(d) == len(bufs[1][1])
                    and not d[0x3C] & 0x40]
    for o, d in uncompressed[:2]:
        for field in _record_sizes(d)[1:3]:
            size = int.from_bytes(d[field:field + 2], "little")
            for wrong in (0, size - 8, size + 8, size + 24, 0xFFFF):
                at = o + field
                yield (f"size@{at}={wrong}", False,
                       base[:at] + (wrong & 0xFFFF).to_bytes(2, "little") + base[at + 2:])
    for k in range(24):
        at = rng.randrange(bufs[1][0], len(base))
        yield f"flip@{at}", False, base[:at] + bytes([base[at] ^ (1 << rng.randrange(8))]) \
            + base[at + 1:]


@pytest.mark.parametrize("trace", ["sample:d-healthy/trace.etl", "sample:b-pool-ran-dry/trace.etl",
                                   "real:format_only/krabsetw_powershell.etl"])
def test_every_damage_that_changes_the_records_read_is_named(tmp_path, trace):
    """Duplicated, shuffled or zeroed buffers, bad record sizes and flipped bytes: either
    nothing the reader reads changes, or a warning names the file and byte offset."""
    import time

    from conftest import SAMPLES

    kind, _, rel = trace.partition(":")
    path = SAMPLES / rel if kind == "sample" else real_trace(rel)
    base_records, base_warnings = _base_read(trace, path.read_bytes(), tmp_path)
    silent = []
    for label, must_warn, data in _damages(path, seed=len(trace)):
        p = tmp_path / f"{label}.etl"
        p.write_bytes(data)
        t0 = time.perf_counter()
        try:
            read = read_inputs([p], ReadOptions())     # the walk counts every record anyway
        except InputError as e:
            assert str(p) in str(e) and "byte" in str(e)
            continue
        assert time.perf_counter() - t0 < 20, label
        changed = read.records != base_records
        if (changed or must_warn) and not _named(p, read.diagnostics.warnings, base_warnings):
            silent.append((label, base_records, read.records))
        p.unlink()
    assert not silent, silent


@pytest.mark.parametrize("rel", ["etl/filtrace_diskio.etl", "etl/net.4.5.2.x86.etl.zip",
                                 "format_only/ShutdownPerfDiagLogger.etl",
                                 "format_only/tx_HTTP_Server.etl",
                                 "format_only/ebpf_ebpforwindows.etl",
                                 "format_only/perfview_SelfDescribingSingleEvent.etl"])
@pytest.mark.parametrize("all_records", [False, True], ids=["irp-walk", "all-walk"])
def test_undamaged_real_traces_raise_no_damage_warning(rel, all_records):
    """The invariants the damage checks rest on hold in real traces: no false alarm, on the walk
    `analyze` runs and on the one `events --all` runs."""
    _, stats, d = _read(real_trace(rel), all_records=all_records)
    alarms = ("duplicated", "out of order", "fill", "no known header kind", "damaged buffer",
              "sequence number")
    assert not [w for w in d.warnings if any(a in w for a in alarms)], d.warnings
    assert not {"etl_duplicate_buffers", "etl_buffers_out_of_order", "etl_bad_records",
                "etl_unknown_records", "etl_damaged_buffer_headers"} & set(d.counters)


@pytest.mark.parametrize("all_records", [False, True], ids=["irp-walk", "all-walk"])
def test_an_error_record_is_skipped_and_an_unknown_kind_is_named(tmp_path, all_records):
    """ETW writes an ERROR record (header type 0x0D) for an event it could not log: a known kind,
    skipped without a word; a header type no writer uses is named as possible damage."""
    import struct

    from fpreplay.synth.etlwriter import EtlWriter

    def trace(htype: int):
        path = tmp_path / f"kind{htype:02x}.etl"
        with open(path, "wb") as fh:
            w = EtlWriter(fh, start_unix_ns=1_700_000_000 * 10**9, t0_raw=10**7, ncpu=1,
                          buffer_size=0x1000)
            w.write(0, 10**7 + 5, struct.pack("<HBB", 16, htype, 0xC0) + bytes(12))
            w.close()
        rows, _, d = _read(path, all_records=all_records)
        return d

    error = trace(0x0D)
    assert "etl_unknown_records" not in error.counters, error.warnings
    assert not [w for w in error.warnings if "no known header kind" in w]
    unknown = trace(0x0F)
    assert unknown.counters.get("etl_unknown_records") == 1
    assert any("no known header kind" in w and "byte " in w for w in unknown.warnings)
