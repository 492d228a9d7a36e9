"""The .etl reader against the real public traces (../shared/traces/real, see SOURCES.md):
record totals, every header kind, time base against PerfView's own dump, zip/gz streams."""

from __future__ import annotations

import gzip
import json
import re
import struct
import zipfile
from collections import Counter

import polars as pl
import pytest

from conftest import real_trace
from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.api import ReadOptions, read_inputs
from fpreplay.parsers.etl import decoders as D
from fpreplay.parsers.etl import merge
from fpreplay.parsers.etl import reader as R
from fpreplay.parsers.etl.providers import HEADER_SENTINEL, Registry
from fpreplay.replay.cli import main

# Totals from SOURCES.md: every record of every header kind, the trace header included.
TOTALS = {
    "etl/net.4.5.2.x64.etl.zip": 179_474,
    "etl/net.4.5.2.x86.etl.zip": 168_298,
    "etl/filtrace_diskio.etl": 11_096,
    "format_only/perfview_SelfDescribingSingleEvent.etl": 23,
    "format_only/perfview_primitive-types.etl": 7,
    "format_only/krabsetw_powershell.etl": 114,
    "format_only/tx_HTTP_Server.etl": 2_042,
    "format_only/ebpf_ebpforwindows.etl": 13_872,
    "format_only/filtrace_etw.etl": 23_249,
    "format_only/AMSITrace.etl": 21,
    "format_only/ShutdownPerfDiagLogger.etl": 17_078,
    "format_only/lxcore_kernel.etl": 4,
}


@pytest.mark.parametrize("name", sorted(TOTALS))
def test_events_all_writes_one_row_per_record(name, tmp_path, capsys):
    path = real_trace(name)
    out = tmp_path / "all.parquet"
    code = main(["events", str(path), "--all", "-o", str(out), "--json", "--quiet"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["records"] == TOTALS[name]
    df = pl.read_parquet(out)
    assert df.height == TOTALS[name]
    assert df["ts_ns"].null_count() == 0 and df["ts_ns"].is_sorted()
    assert df["header_kind"].null_count() == 0 and df["provider"].null_count() == 0


def test_every_real_file_is_read_to_the_end_without_warnings():
    for name in TOTALS:
        d, stats = Diagnostics(), {}
        rows = sum(b.height for b in R.read_events(real_trace(name), ReadOptions(), d, stats))
        assert stats["records"] == TOTALS[name], name
        assert [w for w in d.warnings if "lost events" not in w] == [], name
        assert rows <= stats["records"]


def _spy_everything(monkeypatch):
    """Make every registry lookup hit a decoder that records the EtlRecord it is given."""
    seen: list = []

    def spy(rec, ctx):
        seen.append(rec)
        return []

    class Every(dict):
        def get(self, key, default=None):
            return spy

        def __bool__(self):
            return True

    original = Registry.__init__

    def init(self):
        original(self)
        # Every HookId held (the walk reads which HookIds a decoder wants from the keys).
        self.kernel = {hook: spy for hook in range(1, 1 << 16)}
        self.kernel[0] = HEADER_SENTINEL
        self.manifest = Every()
        self.classic = Every()
        self.wpp = spy

    monkeypatch.setattr(Registry, "__init__", init)
    return seen


@pytest.mark.parametrize("name, expect", [
    # (header kind, pointer size) -> count; the x86 capture mixes 64-bit kernel records with
    # the 32-bit EVENT_HEADERs of a WOW64 process (etw-formats.md fact 6).
    ("etl/net.4.5.2.x86.etl.zip", {("perfinfo", 8): 115_091, ("system", 8): 4_471,
                                   ("system", 4): 2, ("event_trace", 8): 8_162,
                                   ("event_trace", 4): 73, ("event_header", 4): 39_425,
                                   ("event_header", 8): 1_073}),
    ("format_only/ShutdownPerfDiagLogger.etl", {("system", 8): 8_433 - 1,
                                                ("perfinfo", 8): 8_645}),
    ("format_only/tx_HTTP_Server.etl", {("event_header", 8): 2_041}),
])
def test_walker_builds_records_of_every_header_kind(name, expect, monkeypatch):
    seen = _spy_everything(monkeypatch)
    stats = {}
    for _ in R.read_events(real_trace(name), ReadOptions(), Diagnostics(), stats):
        pass
    kinds = Counter((r.header_kind, r.pointer_size) for r in seen)
    for key, n in expect.items():
        assert kinds[key] == n, (key, kinds)
    assert sum(kinds.values()) == stats["records"] - 1       # all but EventTrace/Header
    for r in seen:
        assert r.ts_ns is not None and r.cpu is not None
        if r.header_kind == "perfinfo":
            assert r.pid is None and r.tid is None       # PERFINFO headers carry neither


def test_diskio_payload_sizes_match_perfview_datalen(monkeypatch):
    """DataLen in PerfView's dump: ReadInit 12 (Irp + IssuingThreadId), Read 52 on x64."""
    seen = _spy_everything(monkeypatch)
    for _ in R.read_events(real_trace("etl/net.4.5.2.x64.etl.zip"), ReadOptions(),
                           Diagnostics(), {}):
        pass
    sizes = {(r.opcode, len(r.payload)) for r in seen if r.group == 1 and r.opcode in (10, 12)}
    assert sizes == {(10, 52), (12, 12)}


# --- time base and walking against PerfView's own dump ------------------------------------------
_BASELINE_LINE = re.compile(r"EVENT ([\d,]+\.\d{3}): Windows Kernel/DiskIO/(\w+) (.*)")
_IRP_FLAG_NAMES = [(0x1, "Nocache"), (0x2, "MountCompletion"), (0x4, "SynchronousApi"),
                   (0x8, "AssociatedIrp"), (0x10, "BufferedIo"), (0x20, "DeallocateBuffer"),
                   (0x40, "InputOperation")]


def _perfview_irp_flags(flags: int) -> str:
    """PerfView's rendering of IrpFlags (priority bits masked), values cut at 20 chars."""
    names = [n for bit, n in _IRP_FLAG_NAMES if flags & bit] or ["None"]
    text = ", ".join(names)
    return text if len(text) <= 20 else text[:20] + "..."


def _baseline(trace: str) -> list[tuple[str, int, dict]]:
    path = real_trace(f"text/perfview_baselines/{trace}.baseline.txt")
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _BASELINE_LINE.match(line)
        if m:
            us = int(m.group(1).replace(",", "").replace(".", ""))   # ms with 3 decimals
            fields = dict(re.findall(r"(\w+)=([^;]*);", m.group(3)))
            out.append((m.group(2), us, fields))
    return out


def _baseline_counts(trace: str) -> dict[int, int]:
    """The dump's `COUNT Windows Kernel/DiskIO/<Opcode>:N` lines, keyed by DiskIo opcode."""
    path = real_trace(f"text/perfview_baselines/{trace}.baseline.txt")
    ops = {"Read": 10, "Write": 11, "ReadInit": 12, "WriteInit": 13, "FlushBuffers": 14,
           "FlushInit": 15}
    return {ops[m[0]]: int(m[1]) for m in re.findall(
        r"^COUNT Windows Kernel/DiskIO/(\w+):(\d+)", path.read_text(errors="replace"), re.M)}


def _int(text: str) -> int:
    return int(text.replace(",", ""), 0)


def _check_baseline(trace: str, events: list[dict], start_ns: int) -> int:
    """Every DiskIO line of the dump has an event with the same Irp (and size, offset, flags
    where the line has them) at the same microsecond since the trace start."""
    by_irp: dict[int, list[dict]] = {}
    for e in events:
        by_irp.setdefault(e["irp"], []).append(e)
    lines = _baseline(trace)
    assert len(lines) >= 24
    for op, us, f in lines:
        candidates = [e for e in by_irp.get(int(f["Irp"], 16), [])
                      if (e["ts_ns"] - start_ns + 500) // 1000 == us]   # half up, as shown
        assert candidates, (op, us, f)
        e = candidates[0]
        if "TransferSize" in f:
            assert e["bytes"] == _int(f["TransferSize"])
            assert e["offset"] == _int(f["ByteOffset"])
        if "IrpFlags" in f:
            assert _perfview_irp_flags(e["irp_flags"] & ~0xE0000) == f["IrpFlags"], (e, f)
    return len(lines)


@pytest.mark.parametrize("trace", ["net.4.5.2.x64", "net.4.5.2.x86"])
def test_diskio_agrees_with_perfview_via_records(trace, monkeypatch):
    """Walker + time base alone: DiskIo v3 payloads decoded here from the EtlRecords."""
    events = []

    def decode(rec, ctx):
        p, fmt = rec.payload, "<Q" if rec.pointer_size == 8 else "<I"
        e = {"ts_ns": rec.ts_ns, "op": rec.opcode}
        if rec.opcode in (10, 11):
            _, e["irp_flags"], e["bytes"], _, e["offset"] = struct.unpack_from("<IIIIQ", p)
            e["irp"] = struct.unpack_from(fmt, p, 24 + rec.pointer_size)[0]
        elif rec.opcode == 14:
            e["irp_flags"] = struct.unpack_from("<I", p, 4)[0]
            e["irp"] = struct.unpack_from(fmt, p, 16)[0]
        else:
            e["irp"] = struct.unpack_from(fmt, p)[0]
        events.append(e)
        return []

    for op in (10, 11, 12, 13, 14, 15):
        monkeypatch.setitem(D.KERNEL, (1, op), decode)
    stats = {}
    for _ in R.read_events(real_trace(f"etl/{trace}.etl.zip"), ReadOptions(), Diagnostics(),
                           stats):
        pass
    assert _check_baseline(trace, events, stats["trace_start_ns"]) > 0
    assert Counter(e["op"] for e in events) == _baseline_counts(trace)


@pytest.mark.parametrize("trace", ["net.4.5.2.x64", "net.4.5.2.x86"])
def test_diskio_event_table_agrees_with_perfview(trace):
    """The same check on the event table the user gets (walker + the DiskIo payload decoder)."""
    if (1, 10) not in D.KERNEL:
        pytest.skip("no DiskIo payload decoder registered in fpreplay.parsers.etl.decoders")
    read = read_inputs([real_trace(f"etl/{trace}.etl.zip")], ReadOptions())
    disk = read.events.filter(pl.col("event_name").str.starts_with("DiskIo/"))
    assert _check_baseline(trace, disk.to_dicts(), read.trace_start_ns) > 0
    names = {10: "Read", 11: "Write", 12: "ReadInit", 13: "WriteInit", 14: "FlushBuffers",
             15: "FlushInit"}
    counts = Counter(disk["event_name"].to_list())
    assert {op: counts[f"DiskIo/{n}"] for op, n in names.items()} == _baseline_counts(trace)


# --- streams -------------------------------------------------------------------------------------
def test_gz_and_zip_read_as_streams_like_the_plain_file(tmp_path):
    src = real_trace("etl/filtrace_diskio.etl")
    gz = tmp_path / "d.etl.gz"
    with gzip.open(gz, "wb") as g:
        g.write(src.read_bytes())
    zp = tmp_path / "d.etl.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("readme.txt", "not the trace")
        z.write(src, "inner/diskio.etl")
    results = []
    for p in (src, gz, zp):
        read = read_inputs([p], ReadOptions(all_records=True))
        results.append((read.records, read.events.drop("source")))
    assert results[0][0] == results[1][0] == results[2][0] == TOTALS["etl/filtrace_diskio.etl"]
    assert results[0][1].equals(results[1][1]) and results[0][1].equals(results[2][1])


@pytest.mark.parametrize("name", ["format_only/ShutdownPerfDiagLogger.etl",
                                  "etl/net.4.5.2.x64.etl.zip"])
def test_progress_is_reported_in_input_file_bytes(name):
    """Bytes of the file on disk (compressed ones for a .zip), what the progress bar sizes by."""
    path = real_trace(name)
    calls = []
    read_inputs([path], ReadOptions(progress=calls.append))
    assert len(calls) >= 3 and calls == sorted(calls)
    assert path.stat().st_size * 0.8 < calls[-1] <= path.stat().st_size


@pytest.mark.parametrize("all_records", [False, True])
def test_merge_releases_rows_in_time_order_while_reading(monkeypatch, all_records):
    """Bounded merge: with a small flush size, batches come out long before the end of the
    file, each and all together in time order, although per-CPU buffers are interleaved."""
    monkeypatch.setattr(merge, "PENDING_FLUSH_ROWS", 200)
    path = real_trace("etl/net.4.5.2.x64.etl.zip")
    consumed = []
    opts = ReadOptions(all_records=all_records, progress=consumed.append)
    d, stats, batches, first_at = Diagnostics(), {}, [], None
    for batch in R.read_events(path, opts, d, stats):
        if first_at is None:
            first_at = consumed[-1] if consumed else 0
        batches.append(batch)
    assert len(batches) > 3 and first_at < path.stat().st_size / 2
    ts = pl.concat([b.select("ts_ns") for b in batches])["ts_ns"]
    assert ts.is_sorted() and d.counters.get("etl_rows_released_late", 0) == 0
    assert sum(b.height for b in batches) == (stats["records"] if all_records else 3_177)
