"""The record walk has two implementations, C (`_walkc`, built by setup.py when a compiler is
there) and pure Python (scan.py, used when the extension is absent or
FPREPLAY_PURE_PYTHON_WALK=1): both must give the same records on every buffer, and a read through
either gives the same event tables, warnings and counters."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from hypothesis import given, strategies as st
from polars.testing import assert_frame_equal

from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.api import ReadOptions, read_inputs
from fpreplay.parsers.etl import scan as S
from fpreplay.parsers.etl.stream import iter_buffers, unpack_buffer

from conftest import REAL, SAMPLES, real_trace

REAL_TRACES = ["etl/net.4.5.2.x64.etl.zip", "etl/net.4.5.2.x86.etl.zip", "etl/filtrace_diskio.etl",
               "format_only/ebpf_ebpforwindows.etl", "format_only/ShutdownPerfDiagLogger.etl",
               "format_only/tx_HTTP_Server.etl", "format_only/perfview_primitive-types.etl",
               "format_only/krabsetw_powershell.etl", "format_only/lxcore_kernel.etl",
               "format_only/perfview_SelfDescribingSingleEvent.etl"]
SAMPLE_TRACES = sorted(p.parent.name for p in SAMPLES.glob("*/trace.etl"))

needs_c = pytest.mark.skipif(S._C_SCAN is None, reason="the C walk is not built here "
                             "(no compiler at install, or FPREPLAY_PURE_PYTHON_WALK=1)")


def _buffers(path):
    d = Diagnostics()
    for offset, _, data in iter_buffers(path, d):
        unpacked = unpack_buffer(path, offset, data, d)
        if unpacked is not None:
            _, _, events, start, end, _ = unpacked
            yield events, start, end


@needs_c
@pytest.mark.parametrize("relative", REAL_TRACES)
def test_c_and_python_walks_agree_on_every_buffer_of_real_traces(relative):
    buffers = records = 0
    for events, start, end in _buffers(real_trace(relative)):
        c = S._C_SCAN(events, start, end, S.TABLE)
        assert c == S.scan_python(events, start, end)
        buffers += 1
        records += len(c[0]) // S.RECORD.itemsize
    assert buffers and records


@needs_c
@given(st.binary(min_size=0, max_size=600), st.integers(0, 64), st.integers(0, 700))
def test_c_and_python_walks_agree_on_arbitrary_bytes(data, start, end):
    """Damage: whatever the bytes, both stop at the same record for the same reason."""
    assert S._C_SCAN(data, start, end, S.TABLE) == S.scan_python(data, start, end)


def test_walk_stops_at_fill_and_at_a_record_that_does_not_fit():
    # An EVENT_HEADER (0xC0 marker, type 0x13) of 0x50 bytes, then zero fill.
    rec = (0x50).to_bytes(2, "little") + bytes([0x13, 0xC0]) + bytes(0x4C)
    recs, stop, at, _ = S.scan(rec + bytes(16), 0, 0x60)
    assert (len(recs), stop, at) == (1, S.STOP_FILL, 0x50)
    assert recs["off"].tolist() == [0] and recs["size"].tolist() == [0x50]
    recs, stop, at, size = S.scan(rec, 0, 0x48)          # the buffer ends inside the record
    assert (len(recs), stop, at, size) == (0, S.STOP_BAD, 0, 0x50)


def _same_reads(path, monkeypatch, options=None):
    compiled = read_inputs([path], options)
    with monkeypatch.context() as m:
        m.setattr(S, "_C_SCAN", None)
        python = read_inputs([path], options)
    assert compiled.records == python.records
    assert compiled.diagnostics.warnings == python.diagnostics.warnings
    assert dict(compiled.diagnostics.counters) == dict(python.diagnostics.counters)
    assert_frame_equal(compiled.events, python.events)
    return python


@pytest.mark.parametrize("relative", REAL_TRACES[:4])
@pytest.mark.parametrize("all_records", [False, True])
def test_python_walk_reads_real_traces_as_the_compiled_one(relative, all_records, monkeypatch):
    read = _same_reads(real_trace(relative), monkeypatch, ReadOptions(all_records=all_records))
    assert read.records > 0


@pytest.mark.parametrize("sample", SAMPLE_TRACES)
def test_python_walk_reads_samples_as_the_compiled_one(sample, monkeypatch):
    read = _same_reads(SAMPLES / sample / "trace.etl", monkeypatch)
    assert read.events.height > 0


def test_env_var_forces_the_python_walk():
    code = "from fpreplay.parsers.etl import scan; print(scan.COMPILED)"
    env = {**os.environ, "FPREPLAY_PURE_PYTHON_WALK": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_python_walk_gives_the_record_array():
    """The fallback's arrays are typed as the C ones (numpy views over one bytes object)."""
    path = REAL / "etl" / "filtrace_diskio.etl"
    if not path.exists():
        path = SAMPLES / SAMPLE_TRACES[0] / "trace.etl"
    events, start, end = next(_buffers(path))
    raw, stop, _, _ = S.scan_python(events, start, end)
    recs = np.frombuffer(raw, dtype=S.RECORD)
    assert len(recs) > 0 and stop in (S.STOP_END, S.STOP_FILL)
    assert (np.diff(recs["off"].astype(np.int64)) >= recs["size"][:-1]).all()


@pytest.mark.parametrize("path", ["etl/net.4.5.2.x64.etl.zip", "format_only/ebpf_ebpforwindows.etl",
                                  "format_only/ShutdownPerfDiagLogger.etl", "sample"])
def test_all_header_rows_are_each_kinds_row(path):
    """--all's header rows, gathered in numpy many buffers at a time, hold for each record what
    its HeaderKind.row reads from it alone (an untimed record: the time before it in its
    buffer); the records without one are exactly those a decoder made rows of."""
    from fpreplay.parsers.etl.headers import KINDS
    from fpreplay.parsers.etl.walk import Walker

    trace = SAMPLES / "e-two-disks-every-source" / "trace.etl" if path == "sample" \
        else real_trace(path)
    d, stats = Diagnostics(), {}
    walker = Walker(trace, ReadOptions(all_records=True), d, stats)
    expected, seq = {}, 0
    for offset, _, data in iter_buffers(trace, d):
        walker.buffer(offset, data)
        events, start, end = next(_buffers_of(trace, offset, data))
        recs, _, _, _ = S.scan(events, start, end)
        last = None
        for off, size, tm in zip(recs["off"].tolist(), recs["size"].tolist(), recs["tm"].tolist()):
            seq += 1
            ts, pid, tid, prov, eid, op, ver, name, _ = KINDS[tm].row(events, off, size,
                                                                      walker.reg, Diagnostics())
            last = ts if ts is not None else last
            expected[seq] = (last, pid, tid, prov, eid, op, ver, KINDS[tm].name, name)
    walker.drain()
    frame = pl.concat(walker.header_frames)
    got = {r[0]: r[1:] for r in frame.select(
        "_seq", "_ts_raw", "pid", "tid", "provider", "event_id", "opcode", "version",
        "header_kind", "event_name").iter_rows()}
    assert got == {s: expected[s] for s in got}
    decoded = {r["_seq"] for r in walker.rows} | {
        s for p in walker.plans.kernel.values() if p is not None for k in p.keys
        for s in (k >> 16).tolist()} | {
        s for p in walker.plans.tl.values() if p is not None for c in p.chunks
        for s in c["_seq"].tolist()}
    assert set(expected) - set(got) == decoded
    assert got and len(got) + len(decoded) == len(expected)


def _buffers_of(path, offset, data):
    unpacked = unpack_buffer(path, offset, data, Diagnostics())
    if unpacked is not None:
        yield unpacked[2], unpacked[3], unpacked[4]
