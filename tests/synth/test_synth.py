"""The trace synthesizer: its encoder, container, records, KMDF model and determinism, checked
against independent readers (pyfwnt, dissect.etl, etl-parser) and the project's own reader."""

from __future__ import annotations

import json
import struct
import uuid
from collections import Counter
from pathlib import Path

import polars as pl
import pyfwnt
import pytest
from hypothesis import given, strategies as st

from conftest import etl_parser_tracelogging
from fpreplay.errors import ConfigError
from fpreplay.lifecycles import build_lifecycles
from fpreplay.replay.cli import main as cli_main
from fpreplay.schema import (
    STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE,
    STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
)
from fpreplay.synth import synthesize
from fpreplay.synth.records import provider_guid, tl_event_metadata
from fpreplay.synth.xpress import compress

# --- LZ77 Xpress ------------------------------------------------------------------------------


def _roundtrip(data: bytes) -> None:
    from dissect.util.compression import lzxpress

    packed = compress(data)
    assert pyfwnt.lzxpress_decompress(packed, len(data)) == data if data else True
    assert lzxpress.decompress(packed) == data


@given(st.binary(max_size=3000))
def test_xpress_round_trips_random_bytes(data):
    _roundtrip(data)


@given(st.lists(st.sampled_from([b"\0", b"\xff", b"IRP ", b"ab", b"\x13\xc0\x01"]), max_size=2000))
def test_xpress_round_trips_repetitive_bytes(parts):
    _roundtrip(b"".join(parts))


@pytest.mark.parametrize("n", [7, 10, 25, 280, 300, 32768, 32771, 70000])
def test_xpress_long_matches_use_every_length_form(n):
    # Runs exercise the nibble, the byte and the 16-bit length extensions; libfwnt reads the
    # 16-bit count as signed, so long runs must split below 0x8000 and still decode.
    _roundtrip(b"x" + bytes(n) + b"y" * n)


def test_xpress_compresses_etw_like_data():
    data = (struct.pack("<HBBHHQ", 3, 0x11, 0xC0, 0x44, 0x10A, 123) + bytes(52)) * 500
    assert len(compress(data)) < len(data) // 10


# --- TraceLogging encoding --------------------------------------------------------------------

def test_provider_guid_is_the_documented_name_hash():
    # TraceLogging docs: "SimpleTraceLoggingProvider" -> {0205c616-cf97-5c11-9756-56a2cee02ca7}
    assert provider_guid("SimpleTraceLoggingProvider") == uuid.UUID(
        "0205c616-cf97-5c11-9756-56a2cee02ca7")


def test_tracelogging_metadata_layout():
    meta = tl_event_metadata("IrpComplete", ("Irp", "Status"))
    assert struct.unpack_from("<H", meta)[0] == len(meta)
    assert meta[2] == 0                                   # no event tags
    assert meta[3:].startswith(b"IrpComplete\0Irp\0")
    # Irp: UINT64 with a hex out-type; Status: UINT32 with the NTSTATUS out-type.
    assert meta.endswith(b"Irp\0\x8a\x04Status\0\x88\x0e")


# --- scenarios ---------------------------------------------------------------------------------

def _scenario(tmp_path: Path, body: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


BASE = """
[trace]
seed = 5
duration = "1s"
cpus = 2
buffer_size = 8192
"""


def _run(tmp_path, body, **kw):
    scen = _scenario(tmp_path, BASE + body)
    return synthesize(scen, tmp_path / "trace.etl", **kw)


def _one_queue(policy: str, arrivals: str, *, queue: str = "default",
               fail: tuple[str, str] | None = ("0s", "1s"), then: str = "") -> str:
    """A scenario body: device "d" with one queue under `policy`, one [[arrivals]] table, every
    request allocation failing in the `fail` window (start, end), then more tables."""
    body = (f'[[device]]\nname = "d"\n[[device.queue]]\nname = "{queue}"\npolicy = "{policy}"\n'
            f"[[arrivals]]\n{arrivals}\n")
    if fail:
        body += f'[[pressure]]\nstart = "{fail[0]}"\nend = "{fail[1]}"\nfail = "always"\n'
    return body + then


def _queue_ops(queue: str, *ops: tuple[str, str]) -> str:
    """[[queue_op]] tables: (at, op) on `queue` of device "d"."""
    return "".join(f'[[queue_op]]\nat = "{at}"\nqueue = "{queue}"\nop = "{op}"\n' for at, op in ops)


def _by_fate(truth):
    cols = truth["per_irp_columns"]
    rows = [dict(zip(cols, r)) for r in truth["per_irp"]]
    return rows


def test_non_fp_queue_completes_alloc_failures_with_insufficient_resources(tmp_path):
    r = _run(tmp_path, _one_queue("none", "rate = 300", fail=("0.2s", "0.6s")))
    rows = _by_fate(r.truth)
    inside = [x for x in rows if r.truth["start_ns"] + 200_000_000 <= x["arrive_ns"]
              < r.truth["start_ns"] + 600_000_000]
    outside = [x for x in rows if x not in inside]
    assert inside and outside
    assert all(x["status"] == STATUS_INSUFFICIENT_RESOURCES and x["actual"] == "alloc_failed"
               for x in inside)
    assert all(x["status"] == STATUS_SUCCESS and x["actual"] == "ok" for x in outside)


def test_paging_policy_refuses_non_paging_and_reserves_paging(tmp_path):
    r = _run(tmp_path, _one_queue("paging:64", "rate = 300\npaging = 0.5\nmix = { read = 1.0 }"))
    rows = _by_fate(r.truth)
    paging = [x for x in rows if x["irp_flags"] & 0x2]
    other = [x for x in rows if not x["irp_flags"] & 0x2]
    assert paging and other
    # forward-progress.md 4.2 step B: STATUS_UNSUCCESSFUL, not insufficient resources.
    assert all(x["status"] == STATUS_UNSUCCESSFUL and x["actual"] == "refused" for x in other)
    assert all(x["actual"] == "reserved" and x["status"] == STATUS_SUCCESS for x in paging)


def test_exhausted_pool_parks_fifo_and_recycles(tmp_path):
    r = _run(tmp_path, _one_queue("always:1", 'rate = 2000\nend = "0.05s"\nservice = "fixed:2ms"'))
    rows = [x for x in _by_fate(r.truth)]
    assert r.truth["parked"] > 10 and r.truth["fate"]["parked_then_reserved"] == r.truth["parked"]
    # One reserved request: deliveries never overlap, and parked IRPs are served in arrival order.
    done = sorted((x["complete_ns"], x["arrive_ns"]) for x in rows)
    assert [a for _, a in done] == sorted(a for _, a in done)
    assert r.truth["queues"]["d/default"]["reserve_high_water"] == 1
    assert r.truth["park_wait_ns"]["max"] > 0


def test_purge_cancels_parked_and_refuses_later_arrivals(tmp_path):
    r = _run(tmp_path, _one_queue("always:1", 'rate = 800\nservice = "fixed:5ms"', queue="q",
                                  then=_queue_ops("q", ("0.3s", "purge"))))
    fate = r.truth["fate"]
    assert fate["cancelled_parked"] > 0 and fate["invalid_state"] > 0
    rows = _by_fate(r.truth)
    purge = r.truth["start_ns"] + 300_000_000
    assert all(x["status"] == STATUS_CANCELLED for x in rows if x["fate"] == "cancelled_parked")
    assert all(x["arrive_ns"] >= purge and x["status"] == STATUS_INVALID_DEVICE_STATE
               for x in rows if x["fate"] == "invalid_state")


@pytest.mark.parametrize("body, words", [
    ("[[device]]\nname='d'\n[[arrivals]]\nrate='fast'\n", "rate"),
    ("[[device]]\nname='d'\n[[device.queue]]\npolicy='always:0'\n", "policy"),
    ("[[device]]\nname='d'\n[[pressure]]\nstart='0s'\nend='1s'\nfail='sometimes'\n", "fail"),
    ("[[device]]\nname='d'\n[[queue_op]]\nat='1s'\nop='explode'\n", "op"),
    ("[[device]]\nname='d'\nbogus=1\n", "bogus"),
    ("", "device"),
    # one duration grammar (fpreplay.units): a bare number is no duration, even in seconds
    ("[[device]]\nname='d'\n[[arrivals]]\nrate=5\nend=1\n", r"\[\[arrivals\]\] #1 end 1: .*unit"),
    ("[[device]]\nname='d'\n[[pressure]]\nstart=0\nend='1s'\n", r"\[\[pressure\]\] #1 start"),
    ("[[device]]\nname='d'\n[[arrivals]]\nrate=5\nservice='fixed:2'\n", "service '2'"),
    ("[[device]]\nname='d'\n[[arrivals]]\nrate=5\nmix={ pnp2 = 1 }\n", "pnp2"),
    ("[[device]]\nname='d'\n[[arrivals]]\nrate=5\nmix={ 0x1C = 1 }\n", "0x1C.*0..0x1B"),
    ("completions = 'sometimes'\n[[device]]\nname = 'd'\n", "completions"),
    ("kernel = ['diskio', 'etw']\n[[device]]\nname = 'd'\n", "kernel"),
    ("[[device]]\nname = 'd'\n[[device]]\nname = 'd'\n", "two devices named 'd'"),
    ("[[device]]\nname = 'd'\n[[arrivals]]\nrate = 5\nthreads = 0\n", "threads"),
])
def test_bad_scenarios_are_config_errors(tmp_path, body, words):
    with pytest.raises(ConfigError, match=words):
        _run(tmp_path, body)


@pytest.mark.parametrize("name, major", [
    ("read", 3), ("IRP_MJ_FLUSH_BUFFERS", 9), ("flush", 9), ("Device_Control", 14),
    ("ioctl", 14), ("scsi", 15), ("internal_ioctl", 15), ("cleanup", 0x12), ("pnp", 0x1B),
    ("0x0E", 14), (4, 4),
])
def test_scenario_majors_are_the_irp_mj_names_and_a_few_short_ones(name, major):
    from fpreplay.synth.scenario import parse_major

    assert parse_major(name, "mix") == major


def test_cli_synth_writes_trace_and_exits_2_on_bad_input(tmp_path, capsys):
    scen = _scenario(tmp_path, BASE + "[[device]]\nname='d'\n[[arrivals]]\nrate=50\n")
    out = tmp_path / "t.etl"
    assert cli_main(["synth", str(scen), "-o", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "fpreplay.synth/1" and doc["irps"] > 0
    assert out.stat().st_size > 0 and (tmp_path / "t.truth.json").exists()
    assert cli_main(["synth", str(tmp_path / "missing.toml"), "-o", str(out)]) == 2
    assert "missing.toml" in capsys.readouterr().err


# --- the container, checked by independent readers ---------------------------------------------

SCENARIO_ALL = """
[[device]]
name = "d"
disk = 3
[[device.queue]]
policy = "always:2"
[[arrivals]]
rate = 250
mix = { read = 0.5, write = 0.4, flush = 0.1 }
paging = 0.5
[[pressure]]
start = "0.3s"
end = "0.5s"
fail = "random:0.7"
[[queue_op]]
at = "0.8s"
op = "purge"
"""


@pytest.mark.parametrize("compressed", [False, True])
def test_dissect_reads_whole_trace_and_agrees_on_irps(tmp_path, compressed):
    from dissect.etl.etl import ETL

    scen = _scenario(tmp_path, BASE + f"compressed = {str(compressed).lower()}\n" + SCENARIO_ALL)
    r = synthesize(scen, tmp_path / "trace.etl")
    with open(r.trace, "rb") as fh:
        etl = ETL(fh)
        assert etl.logfile_header.header.BuffersWritten == r.truth["buffers"]
        records = list(etl)
    assert len(records) == r.truth["records"]
    symbols = Counter(rec.event.symbol() for rec in records)
    irps = {int(x[0], 16) for x in r.truth["per_irp"]}
    disk_irps = {rec.event.Irp for rec in records
                 if rec.event.symbol() in ("DiskIo/Read", "DiskIo/Write", "DiskIo/ReadInit",
                                           "DiskIo/WriteInit")}
    assert disk_irps and disk_irps <= irps
    assert symbols["DiskIo/ReadInit"] == symbols["DiskIo/Read"] > 0
    eh = [rec.header for rec in records if type(rec.header).__name__ == "EventHeader"]
    # dissect.etl 3.14 prints EVENT_HEADER GUIDs byte-swapped (etw-formats.md fact 15).
    providers = {uuid.UUID(bytes=h.provider_id.bytes_le) for h in eh}
    assert providers == {provider_guid("Contoso.StorDrv")}


def test_etl_parser_decodes_tracelogging_names_and_fields(tmp_path):
    # Uncompressed buffers are covered by the samples (tests/test_samples.py).
    scen = _scenario(tmp_path, BASE + "compressed = true\n" + SCENARIO_ALL)
    r = synthesize(scen, tmp_path / "trace.etl")
    events = etl_parser_tracelogging(r.trace)
    names = Counter(n for n, _ in events)
    assert names["IrpDispatch"] == r.truth["irps"]
    assert names["ReservedRequestUsed"] == r.truth["actual"]["reserved"]
    assert names["QueuePurge"] == 1
    dispatched = {f["Irp"] for n, f in events if n == "IrpDispatch"}
    assert dispatched == {int(x[0], 16) for x in r.truth["per_irp"]}
    first = next(f for n, f in events if n == "IrpDispatch")
    assert set(first) == {"Irp", "Queue", "Device", "Major", "Minor", "IrpFlags", "Bytes", "Offset"}
    assert first["Device"] == "d"


def test_file_order_is_not_time_order_and_project_reader_agrees(tmp_path):
    from fpreplay.parsers import read_inputs

    r = _run(tmp_path, SCENARIO_ALL)
    read = read_inputs([r.trace])
    assert read.records == r.truth["records"]
    ts = _file_order_timestamps(r.trace)
    assert any(b < a for a, b in zip(ts, ts[1:])), "per-CPU buffers should interleave"
    lc = build_lifecycles(read.events, read.diagnostics)
    got = dict(lc.group_by("actual").len().iter_rows())
    assert got == {k: v for k, v in r.truth["actual"].items() if v}


def _file_order_timestamps(path: Path) -> list[int]:
    from dissect.etl.etl import ETL

    with open(path, "rb") as fh:
        return [rec.header.time_delta for rec in ETL(fh)]


def test_same_scenario_and_seed_give_identical_bytes(tmp_path):
    body = BASE + "ifr = true\ncompressed = true\n" + SCENARIO_ALL
    scen = _scenario(tmp_path, body)
    for d in "abc":
        (tmp_path / d).mkdir()
    a = synthesize(scen, tmp_path / "a" / "trace.etl")
    b = synthesize(scen, tmp_path / "b" / "trace.etl")
    c = synthesize(scen, tmp_path / "c" / "trace.etl", seed=99)
    assert a.trace.read_bytes() == b.trace.read_bytes()
    assert a.ifr.read_bytes() == b.ifr.read_bytes()
    assert a.truth_path.read_bytes() == b.truth_path.read_bytes()
    assert a.trace.read_bytes() != c.trace.read_bytes()


def test_lost_events_are_counted_in_header_and_buffer_flags(tmp_path):
    from fpreplay.parsers import read_inputs

    r = _run(tmp_path, "lost_events = 3\n" + SCENARIO_ALL)
    assert r.truth["events_lost"] > 0 and r.truth["actual"]["incomplete"] == 3
    read = read_inputs([r.trace])
    assert read.events_lost == r.truth["events_lost"] + r.truth["buffers_flagged_lost"]


def test_fileio_family_adds_the_file_system_irp_with_its_status(tmp_path):
    from dissect.etl.etl import ETL

    from fpreplay.parsers import read_inputs

    r = _run(tmp_path, 'kernel = ["diskio", "driver", "fileio"]\n' + SCENARIO_ALL)
    fs = [x for x in _by_fate(r.truth) if x["fate"] == "fs_layer"]
    disk = [x for x in _by_fate(r.truth) if x["fate"] != "fs_layer"]
    assert fs and not {x["irp"] for x in fs} & {x["irp"] for x in disk}
    with open(r.trace, "rb") as fh:
        opend = [rec.event for rec in ETL(fh) if rec.event.symbol() == "FileIo/OperationEnd"]
    statuses = Counter(e.NtStatus for e in opend)
    assert statuses[STATUS_INVALID_DEVICE_STATE] > 0 and statuses[STATUS_SUCCESS] > 0
    assert len(opend) == sum(1 for x in fs if x["complete_ns"] is not None)
    read = read_inputs([r.trace])
    lc = build_lifecycles(read.events, read.diagnostics)
    assert dict(lc.group_by("actual").len().iter_rows()) == {
        k: v for k, v in r.truth["actual"].items() if v}


def test_wpp_messages_and_tmf_agree_with_the_ifr_text(tmp_path):
    from dissect.etl.etl import ETL

    from fpreplay.parsers import ReadOptions, read_inputs
    from fpreplay.parsers.wpp import load_tmf_dir
    from fpreplay.synth import wpp as W

    r = _run(tmp_path, "wpp = true\nifr = true\n" + SCENARIO_ALL)
    assert r.truth["wpp_messages"] == r.truth["ifr_lines"] > 0
    with open(r.trace, "rb") as fh:
        kinds = Counter(type(rec.header).__name__ for rec in ETL(fh))
    assert kinds["MessageTraceHeader"] == r.truth["wpp_messages"]
    # The project's TMF formatter renders every packed message exactly as the IFR dump prints it.
    catalog = load_tmf_dir([r.tmf_dir])
    ifr_lines = [ln.split(" ", 2)[2] for ln in r.ifr.read_text().splitlines()
                 if ln[:1].isdigit() and ": " in ln]
    sample = {"dispatch": (0x29FCB9441918, 0xFFFFD60341DCFAD0, 3, 0, 0xFFFFC58A06340000),
              "not_accepting": (0x5E7F3A6D6FD8, "WdfIoQueuePurged", "", 0x3A75F9C10000,
                                STATUS_INVALID_DEVICE_STATE),
              "completing": (0x3A75F9C10000, 0xFFFFC58A06340000, 4096, STATUS_SUCCESS)}
    for key, args in sample.items():
        m = W.MESSAGES[key]
        f = catalog.format(m.guid, m.number, W.pack_args(key, args), 8)
        assert f"{f.function} - {f.text}" == W.render(key, args)
    assert any(ln.startswith("FxPkgIo::Dispatch - WDFDEVICE 0x") for ln in ifr_lines)
    read = read_inputs([r.trace], ReadOptions(tmf_dirs=[r.tmf_dir]))
    names = Counter(read.events["event_name"].to_list())
    assert names["IFR/Dispatch"] == r.truth["irps"]
    lc = build_lifecycles(read.events, read.diagnostics)
    assert dict(lc.group_by("actual").len().iter_rows()) == {
        k: v for k, v in r.truth["actual"].items() if v}


# --- binary WPP: the same rows as the IFR text -------------------------------------------------
STOP_PURGE_START = BASE + 'wpp = true\nifr = true\ninstrumentation = false\nkernel = ["driver"]\n' \
    + _one_queue("always:1", 'rate = 400\nservice = "fixed:2ms"', queue="q", fail=None,
                 then=_queue_ops("q", ("0.3s", "stop"), ("0.4s", "purge"), ("0.5s", "start")))

def test_binary_wpp_yields_the_implied_queue_rows_of_the_ifr_text(tmp_path):
    # The purge shows only as "Cancelling WDFREQUEST" lines; the queue_purge row they imply must
    # come out of the .etl's WPP records as it does out of the IFR dump, once, at its time (the
    # per-CPU buffers put later Cancelling lines before earlier Queuing lines in the file).
    from fpreplay.parsers import ReadOptions, read_inputs

    r = synthesize(_scenario(tmp_path, STOP_PURGE_START), tmp_path / "trace.etl")
    binary = read_inputs([r.trace], ReadOptions(tmf_dirs=[r.tmf_dir])).events
    text = read_inputs([r.ifr]).events

    def queue_rows(ev):
        return ev.filter(pl.col("kind").str.starts_with("queue_")).select("ts_ns", "kind").rows()

    purge_ns = r.truth["start_ns"] + 400_000_000
    assert queue_rows(binary) == queue_rows(text)
    assert [k for _, k in queue_rows(binary)] == ["queue_purge", "queue_start"]
    assert queue_rows(binary)[0][0] == purge_ns
    # ... and every other framework row too (the text reader keeps no `other` rows)
    ifr_binary = binary.filter(pl.col("event_name").str.starts_with("IFR/")
                               & (pl.col("kind") != "other"))
    assert Counter(ifr_binary["kind"].to_list()) == Counter(text["kind"].to_list())
    lc = build_lifecycles(binary)
    assert dict(lc.group_by("actual").len().iter_rows()) == {
        k: v for k, v in r.truth["actual"].items() if v}


def test_a_good_tmf_dir_is_loaded_once_and_used(tmp_path):
    from fpreplay.parsers import ReadOptions, read_inputs
    from fpreplay.parsers.wpp import tmf as T

    r = synthesize(_scenario(tmp_path, STOP_PURGE_START), tmp_path / "trace.etl")
    loaded = []
    real = T.load_tmf_file
    T.load_tmf_file = lambda path, catalog=None: (loaded.append(path), real(path, catalog))[1]
    try:
        T._LOADED.clear()
        read = read_inputs([r.trace, r.ifr], ReadOptions(tmf_dirs=[r.tmf_dir]))
    finally:
        T.load_tmf_file = real
    assert sorted(loaded) == sorted(r.tmf_dir.glob("*.tmf"))     # each file once
    assert read.events.filter(pl.col("event_name") == "IFR/Dispatch").height == 2 * r.truth["irps"]


@pytest.mark.parametrize("trace_opts, policy", [
    ('instrumentation = false\nifr = true\n', "paging:4"),
    ('instrumentation = false\nkernel = ["diskio"]\n', "always:2"),
    ('instrumentation = true\nifr = true\n', "always:1"),
    ('instrumentation = false\nwpp = true\nkernel = ["driver", "fileio"]\n', "none"),
])
def test_truth_is_what_the_written_sources_show(tmp_path, trace_opts, policy):
    """`actual` in truth.json counts only evidence the written files carry (contract 4)."""
    from fpreplay.parsers import ReadOptions, read_inputs

    body = SCENARIO_ALL.replace('policy = "always:2"', f'policy = "{policy}"')
    r = _run(tmp_path, trace_opts + body)
    inputs = [r.trace] + ([r.ifr] if r.ifr else [])
    read = read_inputs(inputs, ReadOptions(tz="UTC", tmf_dirs=[r.tmf_dir] if r.tmf_dir else []))
    lc = build_lifecycles(read.events, read.diagnostics)
    assert dict(lc.group_by("actual").len().iter_rows()) == {
        k: v for k, v in r.truth["actual"].items() if v}


def test_examine_policy_follows_the_drivers_rule(tmp_path):
    rule = "examine:64:major = 4 AND bytes >= 65536"
    r = _run(tmp_path, _one_queue(rule, "rate = 300\nmix = { read = 0.5, write = 0.5 }\n"
                                        "sizes = [4096, 65536]", then=f'[truth]\npolicies = ["{rule}"]\n'))
    cols = r.truth["per_irp_columns"]
    rows = [dict(zip(cols, x)) for x in r.truth["per_irp"]]
    assert {x["actual"] for x in rows} == {"reserved", "refused"}
    for x in rows:
        big_write = x["major"] == 4 and x["bytes"] >= 65536
        assert x["actual"] == ("reserved" if big_write else "refused")
        assert x["status"] == (STATUS_SUCCESS if big_write else STATUS_UNSUCCESSFUL)
    # Replaying the driver's own policy under observed memory changes nothing.
    row = r.truth["compare"]["policies"][0]
    assert row["regressed"] == row["rescued"] == 0
    assert row["still_failed"] == r.truth["actual"]["refused"]


def test_bad_examine_rule_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="examine rule"):
        _run(tmp_path, "[[device]]\nname='d'\n[[device.queue]]\npolicy='examine:2:majr ==== 4'\n")


def test_bench_trace_generator_repeats_a_whole_scenario(tmp_path):
    import importlib.util

    from fpreplay.parsers import read_inputs

    spec = importlib.util.spec_from_file_location(
        "make_gb_trace", Path(__file__).resolve().parents[2] / "bench" / "make_gb_trace.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    scen = _scenario(tmp_path, BASE + SCENARIO_ALL.replace("[[queue_op]]\nat = \"0.8s\"\nop = "
                                                           "\"purge\"\n", ""))
    out = tmp_path / "big.etl"
    assert mod.main(["--scenario", str(scen), "--size-mb", "1", "-o", str(out)]) == 0
    one = synthesize(scen, tmp_path / "trace.etl").truth
    read = read_inputs([out])
    reps = (read.records - 1) // (one["records"] - 1)
    assert out.stat().st_size >= 1 << 20 and reps >= 2
    assert read.records == 1 + reps * (one["records"] - 1)
