"""Every source per IRP and several devices (issue 9): traces in which each IRP is seen by DiskIo,
DrvMjFnCall, a FileIo/OpEnd naming the IRP itself and the driver's TraceLogging events (and the
IFR), one IRP's completion records all at one instant on different CPUs in a drawn order; devices
each with their own queues and pools; majors that never reach a queue (forward-progress.md 3.7)."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from conftest import SAMPLES
from fpreplay.parsers import ReadOptions, read_inputs
from fpreplay.schema import (
    IRP_MJ_CLEANUP, IRP_MJ_FLUSH_BUFFERS, STATUS_CANCELLED, STATUS_SUCCESS,
)
from fpreplay.synth import dump_truth, lifecycle_rows, model, scenario, synthesize
from fpreplay.synth.expect import compare_expectation

SAMPLE = SAMPLES / "e-two-disks-every-source"
MS = 1_000_000

TRACE = """
[trace]
seed = 9
duration = "0.6s"
cpus = 4
buffer_size = 16384
kernel = ["diskio", "driver", "opend"]
completions = "one-instant"
"""


def _devices(*policies: str, rate: int = 300, mix: str = "{ read = 0.8, write = 0.2 }",
             more: str = "") -> str:
    """Devices d0, d1, ... with one queue under each policy, each with its own arrivals; every
    allocation fails from 0.1 s to 0.4 s."""
    out = []
    for n, policy in enumerate(policies):
        out.append(f'[[device]]\nname = "d{n}"\ndisk = {n}\n[[device.queue]]\npolicy = "{policy}"\n'
                   f'[[arrivals]]\ndevice = "d{n}"\nrate = {rate}\nmix = {mix}\npaging = 0.5\n'
                   f'service = "fixed:2ms"\n')
    return "".join(out) + ('[[pressure]]\nstart = "0.1s"\nend = "0.4s"\nfail = "always"\n'
                           + more)


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _simulate(tmp_path: Path, text: str):
    return model.simulate(scenario.from_dict(tomllib.loads(text), tmp_path / "s.toml"))


def _parked(sim, device=None) -> int:
    return sum(1 for irp in sim.irps
               if irp.parked_ns is not None and device in (None, irp.device))


def _rows(truth: dict) -> list[dict]:
    cols = truth["per_irp_columns"]
    return [dict(zip(cols, r)) for r in truth["per_irp"]]


def _completions(events: pl.DataFrame) -> pl.DataFrame:
    """One row per IRP instance's completion instant: the records' names and CPUs in read order."""
    return (events.filter(pl.col("kind") == "irp_complete")
            .group_by("irp", "ts_ns", maintain_order=True)
            .agg(pl.col("event_name"), pl.col("cpu")))


# --- the writer -----------------------------------------------------------------------------------

def test_one_instant_completions_are_on_different_cpus_in_a_drawn_order(tmp_path):
    r = synthesize(_write(tmp_path, TRACE + _devices("always:2", "paging:1")),
                   tmp_path / "trace.etl")
    done = _completions(read_inputs([r.trace]).events)
    # every completed IRP: its records at one instant (one group), each on its own CPU
    assert done.height == sum(1 for x in _rows(r.truth) if x["complete_ns"] is not None)
    assert all(len(set(c)) == len(c) for c in done["cpu"].to_list())
    names = [tuple(n) for n in done["event_name"].to_list()]
    full = [n for n in names if len(n) == 4]
    assert len(full) > len(names) // 2
    for n in full:       # the driver completed it: every source says so
        assert {"Contoso.StorDrv/IrpComplete", "DiskIo/DrvComplReq", "FileIo/OpEnd"} < set(n)
        assert len(set(n) & {"DiskIo/Read", "DiskIo/Write"}) == 1
    # the order is drawn: every source comes first somewhere
    assert {n[0].split("/")[0] for n in full} == {"Contoso.StorDrv", "DiskIo", "FileIo"}
    assert len(set(names)) >= 12


def test_same_seed_same_bytes_and_the_order_leaves_the_irps_alone(tmp_path):
    text = TRACE + "ifr = true\n" + _devices("always:1", "always:1")
    scen = _write(tmp_path, text)
    for d in "abcd":
        (tmp_path / d).mkdir()
    runs = [synthesize(scen, tmp_path / d / "trace.etl") for d in "ab"]
    assert runs[0].trace.read_bytes() == runs[1].trace.read_bytes()
    assert runs[0].ifr.read_bytes() == runs[1].ifr.read_bytes()
    assert runs[0].truth_path.read_bytes() == runs[1].truth_path.read_bytes()
    other = synthesize(scen, tmp_path / "c" / "trace.etl", seed=10)
    assert other.trace.read_bytes() != runs[0].trace.read_bytes()
    # Staggered completions draw nothing of their own: the same IRPs, fates and arrivals.
    staggered = synthesize(_write(tmp_path, text.replace("one-instant", "staggered"), "t.toml"),
                           tmp_path / "d" / "trace.etl")
    keep = ("irp", "arrive_ns", "major", "irp_flags", "status", "actual", "fate")
    assert [[x[k] for k in keep] for x in _rows(staggered.truth)] == \
        [[x[k] for k in keep] for x in _rows(runs[0].truth)]


def test_the_sample_is_what_its_scenario_makes(tmp_path):
    out = tmp_path / "trace.etl"
    r = synthesize(SAMPLE / "scenario.toml", out, truth=tmp_path / "truth.json")
    assert out.read_bytes() == (SAMPLE / "trace.etl").read_bytes()
    assert dump_truth(r.truth) == (SAMPLE / "truth.json").read_text(encoding="utf-8")
    assert out.stat().st_size < 700_000


def test_fpreplay_synth_writes_the_sample(tmp_path, capsys):
    """The command a user runs writes the every-source, two-device sample from its scenario."""
    from fpreplay.replay.cli import main as cli_main

    out = tmp_path / "trace.etl"
    assert cli_main(["synth", str(SAMPLE / "scenario.toml"), "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["irps"] == 468
    assert out.read_bytes() == (SAMPLE / "trace.etl").read_bytes()
    assert (tmp_path / "truth.json").read_text(encoding="utf-8") == \
        (SAMPLE / "truth.json").read_text(encoding="utf-8")


def test_the_sample_shows_what_its_readme_says():
    truth = json.loads((SAMPLE / "truth.json").read_text(encoding="utf-8"))
    rows = _rows(truth)
    devices = {d.name: d for d in scenario.load(SAMPLE / "scenario.toml").devices}
    assert len(devices) == 2 and truth["queues"]["stordrv0/default"]["policy"] == "always:1"
    assert truth["queues"]["stordrv1/default"]["policy"] == "paging:2"
    assert truth["actual"]["refused"] == 38
    # flushes inside the low-memory window are served: they never reach a queue
    window = [truth["start_ns"] + 400 * MS, truth["start_ns"] + 700 * MS]
    flushes = [x for x in rows if x["major"] == IRP_MJ_FLUSH_BUFFERS
               and window[0] <= x["arrive_ns"] < window[1]]
    assert flushes and all(x["actual"] == "ok" for x in flushes)
    assert (truth["irps"], truth["actual"]["reserved"], truth["parked"]) == (468, 247, 152)
    assert sum(1 for x in rows if x["major"] == IRP_MJ_FLUSH_BUFFERS) == 41
    # the compare rows are those of one pool per device
    by = {p["policy"]: p for p in truth["compare"]["policies"]}
    assert by["always:1"]["reserve_high_water"] == 1
    assert (by["always:1"]["parked"], by["always:2"]["parked"]) == (246, 74)


# --- KMDF as the synthesizer models it --------------------------------------------------------

def test_each_device_has_its_own_pool(tmp_path):
    """Edge case 60: two devices with `always:1` each serve their own starved IRPs from their own
    reserved request; one device's busy request never makes the other's IRPs park."""
    sim = _simulate(tmp_path, TRACE + _devices("always:1", "always:1", rate=150))
    held = {d.name: [] for d in sim.sc.devices}
    for irp in sim.irps:
        if irp.reserved:
            held[irp.device.name].append((irp.delivered_ns, irp.complete_ns))
    for spans in held.values():      # one reserved request per device: no two overlap...
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # ... but the two devices' reserved requests are held at once, again and again
    a, b = held.values()
    both = sum(1 for s in a for t in b if s[0] < t[1] and t[0] < s[1])
    assert both > 5
    # The truth's what-if keeps them apart too: one pool for both would park more.
    rows = lifecycle_rows(sim)
    own = compare_expectation(rows, "always:1", [])
    shared = compare_expectation([dict(x, device="one") for x in rows], "always:1", [])
    assert own["parked"] == _parked(sim) < shared["parked"]


def test_replaying_each_devices_own_policy_changes_nothing():
    sc = scenario.load(SAMPLE / "scenario.toml")
    sim = model.simulate(sc)
    rows = lifecycle_rows(sim)
    for d in sc.devices:
        mine = [x for x in rows if x["device"] == d.name]
        row = compare_expectation(mine, str(d.queues[0].policy), [])
        assert row["rescued"] == row["regressed"] == 0
        assert row["still_failed"] == sum(1 for x in mine if x["actual"] == "refused")
        assert row["parked"] == _parked(sim, d) > 0


def test_majors_that_never_reach_a_queue_are_never_failed(tmp_path):
    """Edge case 61 in the synthesizer: FLUSH_BUFFERS, CLOSE, CLEANUP allocate no request, so
    memory never fails them, no policy refuses them, and a purged queue does not refuse them."""
    r = synthesize(_write(tmp_path, TRACE + 'ifr = true\n' + _devices(
        "paging:1", mix="{ read = 0.5, flush = 0.2, close = 0.15, cleanup = 0.15 }",
        more='[[queue_op]]\nat = "0.45s"\nop = "purge"\n'
             '[truth]\npolicies = ["always:1", "none"]\n')), tmp_path / "trace.etl")
    rows = _rows(r.truth)
    other = [x for x in rows if x["major"] != 3]
    assert {x["major"] for x in other} == {IRP_MJ_FLUSH_BUFFERS, 0x02, IRP_MJ_CLEANUP}
    assert all(x["actual"] == "ok" and x["status"] == STATUS_SUCCESS for x in other)
    reads = Counter(x["actual"] for x in rows if x["major"] == 3)
    assert reads["invalid_state"] > 0 and reads["refused"] + reads["reserved"] > 0
    text = r.ifr.read_text(encoding="utf-8")
    assert text.count("Could not create WDFREQUEST") + text.count("Memory allocation failed") \
        == reads["alloc_failed"] + reads["refused"] + reads["reserved"]
    # ... and the truth's what-if leaves them as they were
    for p in r.truth["compare"]["policies"]:
        assert p["regressed"] <= reads["ok"] + reads["reserved"]


def test_cleanup_cancels_the_parked_irps_of_its_file_object(tmp_path):
    """Edge case 62: a thread's IRP_MJ_CLEANUP completes that thread's parked IRPs with
    STATUS_CANCELLED at its arrival; other threads' parked IRPs stay parked."""
    body = _devices("always:1", rate=900, mix="{ read = 0.9, cleanup = 0.1 }")
    body = body.replace('service = "fixed:2ms"', 'service = "fixed:2ms"\nthreads = 3')
    sim = _simulate(tmp_path, TRACE + body)
    cleanups = [i for i in sim.irps if i.major == IRP_MJ_CLEANUP]
    cancelled = [i for i in sim.irps if i.fate == "cancelled_parked"]
    assert cleanups and cancelled
    for p in cancelled:
        by = [c for c in cleanups if c.file_object == p.file_object
              and c.arrive_ns < p.complete_ns <= c.arrive_ns + MS]
        assert len(by) == 1 and p.status == STATUS_CANCELLED
        assert by[0].complete_ns > p.complete_ns         # before the cleanup itself completes
    assert any(i.fate == "parked_then_reserved" for i in sim.irps)


def test_the_truths_what_if_flushes_parked_irps_by_file_object_too():
    def irp(n, arrive, major=3, actual="alloc_failed", fo=1, done=None, device="d"):
        return {"irp": n, "device": device, "major": major, "paging": True, "irp_flags": 0x43,
                "arrive_ns": arrive * MS, "complete_ns": None if done is None else done * MS,
                "deliver_ns": None, "status": None if done is None else 0,
                "service_ns": None if done is None else (done - arrive) * MS,
                "actual": actual, "file_object": fo}

    rows = [irp(1, 0, actual="reserved", done=10), irp(2, 1), irp(3, 2, fo=2),
            irp(4, 3, major=IRP_MJ_CLEANUP, actual="ok", done=4),
            irp(5, 3, device="e")]           # another device's parked IRP of that file object
    rows.append(irp(6, 0, actual="reserved", done=10, device="e"))
    row = compare_expectation(rows, "always:1", [])
    # IRP 2 (file object 1) is cancelled at the cleanup; IRP 3 is served when IRP 1 completes;
    # on device e the cleanup of device d changes nothing.
    assert row["cancelled"] == 1 and row["parked"] == 3 and row["rescued"] == 2
    assert row["park_wait_ns"]["max"] == 10 * MS - 2 * MS


def test_every_source_reads_back_with_the_project_reader(tmp_path):
    r = synthesize(_write(tmp_path, TRACE + "wpp = true\n" + _devices("always:1", "none")),
                   tmp_path / "trace.etl")
    read = read_inputs([r.trace], ReadOptions(tmf_dirs=[r.tmf_dir]))
    assert read.records == r.truth["records"]
    opend = read.events.filter(pl.col("event_name") == "FileIo/OpEnd")
    rows = _rows(r.truth)
    # one OpEnd per completed IRP, naming the IRP itself, with its status
    assert sorted(zip(opend["irp"].to_list(), opend["status"].to_list())) == sorted(
        (int(x["irp"], 16), x["status"]) for x in rows if x["complete_ns"] is not None)
    assert set(read.events["device"].drop_nulls().unique()) >= {"d0", "d1"}


# --- read back: one lifecycle per IRP ----------------------------------------------------------

@pytest.mark.parametrize("sources", ["", "ifr = true\n", "wpp = true\n"])
def test_every_irp_is_one_lifecycle_with_the_truths_outcome_status_and_times(tmp_path, sources):
    """Issue 9: every source sees every IRP, an IRP's completions share one instant on different
    CPUs in any order, and still each IRP is exactly one lifecycle with the truth's outcome,
    status, arrival and completion."""
    from fpreplay.lifecycles import build_lifecycles

    r = synthesize(_write(tmp_path, TRACE + sources + _devices(
        "always:1", "paging:1", mix="{ read = 0.6, write = 0.3, flush = 0.1 }",
        more='[[queue_op]]\nat = "0.3s"\ndevice = "d0"\nop = "purge"\n'
             '[[queue_op]]\nat = "0.35s"\ndevice = "d0"\nop = "start"\n')),
        tmp_path / "trace.etl")
    read = read_inputs([r.trace] + ([r.ifr] if r.ifr else []),
                       ReadOptions(tz="UTC", tmf_dirs=[r.tmf_dir] if r.tmf_dir else []))
    lc = build_lifecycles(read.events, read.diagnostics)
    rows = _rows(r.truth)
    assert r.truth["fate"]["invalid_state"] > 0          # IRPs refused by the purged queue
    assert lc.height == len(rows) == r.truth["irps"]
    keys = ("irp", "arrive_ns", "complete_ns", "status", "actual")
    got = sorted(lc.select(keys).rows())
    want = sorted((int(x["irp"], 16), *(x[k] for k in keys[1:])) for x in rows)
    assert got == want


def test_the_truths_cleanup_cancels_queued_irps_of_its_file_object_as_the_engine_does():
    """Edge case 62 and FlushByFileObject (forward-progress.md 3.7, CLEANUP in section 9): the
    file object's requests still in a stopped queue are cancelled too, a cancelled reserved
    request serves the next parked IRP; the truth's what-if and the engine agree."""
    from fpreplay.engine import load_driver_model, parse_memory, parse_policy, simulate

    def irp(n, arrive, fo, actual="ok", major=3, done=None):
        done = arrive + 9 if done is None else done
        return {"irp": n, "device": "d", "queue": None, "major": major, "paging": False,
                "irp_flags": 0, "arrive_ns": arrive * MS, "complete_ns": done * MS,
                "deliver_ns": None, "status": 0, "service_ns": (done - arrive) * MS,
                "actual": actual, "file_object": fo}

    rows = [irp(1, 1, 1, "reserved"), irp(2, 2, 2, "alloc_failed", done=2), irp(3, 2, 1),
            irp(4, 3, 1, major=IRP_MJ_CLEANUP, done=4), irp(5, 4, 2)]
    for r in rows[1:2]:
        r.update(status=0xC000009A, service_ns=None)
    ops = [(MS // 2, "queue_stop", "d"), (5 * MS, "queue_start", "d")]
    row = compare_expectation(rows, "always:1", ops)
    # IRPs 1 (its reserved request) and 3 of file object 1 wait in the stopped queue and are
    # cancelled by the cleanup; IRP 1's reserved request then serves parked IRP 2, presented when
    # the queue starts at 5 ms; IRP 5 (file object 2) waits in the queue and is served.
    assert (row["cancelled"], row["parked"], row["rescued"], row["regressed"]) == (2, 1, 1, 2)
    assert row["park_wait_ns"]["max"] == 3 * MS
    driver = load_driver_model(None, parse_policy("always:1"))
    ops_frame = pl.DataFrame([{"ts_ns": t, "kind": k, "queue": None, "device": d}
                              for t, k, d in ops],
                             schema={"ts_ns": pl.Int64, "kind": pl.String, "queue": pl.String,
                                     "device": pl.String})
    table = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("irp").cast(pl.UInt64), pl.col("major").cast(pl.UInt8),
        pl.col("status").cast(pl.UInt32), pl.col("file_object").cast(pl.UInt64))
    for fast in (True, False):
        res = simulate(table, driver, parse_memory("observed"), queue_ops=ops_frame, fast=fast)
        out = res.outcomes.sort("row")
        assert out["outcome"].to_list()[:3] == ["cancelled", "parked_reserved", "cancelled"]
        assert out["status"].to_list()[0] == STATUS_CANCELLED
        assert out["deliver_ns"].to_list()[1] == 5 * MS
