"""The trace synthesizer: a scenario (TOML) in, a real-format ETW trace out, plus the truth it
encodes.

    from fpreplay.synth import synthesize
    result = synthesize("scenario.toml", "trace.etl")       # also writes truth.json beside it
    result.truth["actual"]                                   # what `fpreplay irps` must find

Layers: scenario (the file) -> model (KMDF behaviour, emissions) -> emit (records, buffers, IFR
text) -> truth (what really happened and what `compare` must say). Same scenario and seed, same
bytes: nothing depends on the clock, the machine or dict ordering.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fpreplay.errors import FpreplayError
from fpreplay.outputs import write_atomically
from fpreplay.schema import ACTUAL_OUTCOMES, STARVED_ACTUALS, is_paging, nt_error

TRUTH_SCHEMA = "fpreplay.synth-truth/1"
DISPATCH_WHATS = ("diskio_init", "drv_call", "tl:IrpDispatch")
COMPLETE_WHATS = ("tl:IrpComplete", "drv_compl", "diskio_done", "opend")
SWEEP_ROW_KEYS = ("rescued", "still_failed", "regressed", "parked", "reserve_high_water",
                  "park_wait_ns")   # a `fpreplay sweep` row (contract section 7), after `reserved`
QUEUE_OP_KINDS = {"purge": "queue_purge", "stop": "queue_stop", "stop_purge": "queue_stop_purge",
                  "drain": "queue_drain", "start": "queue_start"}


@dataclass
class SynthResult:
    trace: Path
    ifr: Path | None
    truth_path: Path | None
    truth: dict
    tmf_dir: Path | None = None


def _first_times(sim) -> tuple[dict, dict, dict]:
    """Per IRP, the time of the first dispatch, completion and delivery (ReservedRequestUsed)
    record the trace holds."""
    from fpreplay.synth.model import kernel_record_written

    sc = sim.sc

    def present(e) -> bool:
        if e.what.startswith("tl:"):
            return sc.instrumentation
        return kernel_record_written(e.what, e.irp.major, sc.kernel)

    arrive, complete, deliver = {}, {}, {}
    for e in sim.emissions:
        if e.irp is None or not present(e):
            continue
        i = e.irp.index
        if e.what in DISPATCH_WHATS:
            if i not in arrive or e.ts_ns < arrive[i]:
                arrive[i] = e.ts_ns
        elif e.what in COMPLETE_WHATS and not e.irp.completion_lost:
            if i not in complete or e.ts_ns < complete[i]:
                complete[i] = e.ts_ns
        elif e.what == "tl:ReservedRequestUsed":
            if i not in deliver or e.ts_ns < deliver[i]:
                deliver[i] = e.ts_ns
    return arrive, complete, deliver


def lifecycle_rows(sim) -> list[dict]:
    """The IRP lifecycle table (contract section 4) the trace encodes, one dict per IRP."""
    start = sim.sc.start_unix_ns
    arrive, complete, deliver = _first_times(sim)
    rows = []
    for irp in sim.irps:
        a = start + arrive[irp.index]
        c = start + complete[irp.index] if irp.index in complete else None
        actual = irp.actual()
        rows.append({
            "irp": irp.addr, "device": irp.device.name, "major": irp.major, "minor": irp.minor,
            "irp_flags": irp.flags, "bytes": irp.size, "paging": irp.paging,
            "arrive_ns": a, "complete_ns": c,
            "deliver_ns": start + deliver[irp.index] if irp.index in deliver else None,
            "status": None if c is None else irp.status,
            "service_ns": (c - a) if (c is not None and actual in ("ok", "reserved")) else None,
            "actual": actual, "fate": irp.fate, "file_object": irp.file_object,
        })
        if irp.fs_addr is not None:
            rows.append(_fs_row(irp, start, a))
    return rows


def _fs_row(irp, start: int, disk_arrive: int) -> dict:
    """The file system's IRP of the "fileio" family: its own lifecycle row (FileIo layer). Its
    status is what OpEnd says, and no event says the driver received it (contract section 4)."""
    from fpreplay.schema import (STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES,
                                 STATUS_INVALID_DEVICE_STATE)

    a = start + irp.arrive_ns
    lost = irp.completion_lost or irp.complete_ns is None
    c = None if lost else start + irp.complete_ns + 3_000
    st = None if lost else irp.status
    if st is None:
        actual = "incomplete"
    elif st == STATUS_INSUFFICIENT_RESOURCES:
        actual = "alloc_failed"
    elif st == STATUS_CANCELLED:
        actual = "cancelled"
    elif st == STATUS_INVALID_DEVICE_STATE:
        actual = "invalid_state"
    elif nt_error(st):
        actual = "failed"
    else:
        actual = "ok"
    return {"irp": irp.fs_addr, "device": None, "major": irp.major, "minor": 0,
            "irp_flags": irp.flags, "bytes": irp.size, "paging": is_paging(irp.flags, irp.major),
            "arrive_ns": a, "complete_ns": c, "deliver_ns": None, "status": st,
            "service_ns": (c - a) if (c is not None and actual == "ok") else None,
            "actual": actual, "fate": "fs_layer"}


def build_truth(sim, counts: dict, trace: Path, ifr_lines: int | None) -> dict:
    from fpreplay.synth.expect import nearest_rank, compare_expectation

    sc = sim.sc
    rows = lifecycle_rows(sim)
    actual = dict.fromkeys(ACTUAL_OUTCOMES, 0)
    fate: dict[str, int] = {}
    for r in rows:
        actual[r["actual"]] += 1
        fate[r["fate"]] = fate.get(r["fate"], 0) + 1
    ops = [(sc.start_unix_ns + op.at_ns, QUEUE_OP_KINDS[op.op], op.device)
           for op in sc.queue_ops]
    policies = [compare_expectation(rows, p, ops) for p in sc.truth_policies]
    sweep = None
    if sc.truth_sweep is not None:
        kind, top = sc.truth_sweep
        sweep_rows = [compare_expectation(rows, f"{kind}:{n}", ops) for n in range(1, top + 1)]
        sweep = {"kind": kind, "max": top,
                 "min_reserved_no_park": next((n for n, r in enumerate(sweep_rows, 1)
                                               if r["parked"] == 0), None),
                 "rows": [{"reserved": n, **{k: r[k] for k in SWEEP_ROW_KEYS}}
                          for n, r in enumerate(sweep_rows, 1)]}
    incidents = []
    for p in sc.pressure:
        lo, hi = sc.start_unix_ns + p.start_ns, sc.start_unix_ns + p.end_ns
        failing = [r for r in rows if r["actual"] in STARVED_ACTUALS
                   and lo <= r["arrive_ns"] < hi]
        incidents.append({
            "start_ns": sc.start_unix_ns + p.start_ns, "end_ns": sc.start_unix_ns + p.end_ns,
            "available_bytes": p.available_mb * 1024 * 1024,
            "failing_irps": len(failing),
            "paging_share": round(sum(r["paging"] for r in failing) / len(failing), 4)
            if failing else 0.0,
        })
    queues = {f"{d.name}/{q.name}": {"handle": f"0x{q.handle:x}", "policy": str(q.policy),
                                     "reserve_high_water": sim.queues[(d.name, q.name)]
                                     .reserve_high_water}
              for d in sc.devices for q in d.queues}
    parked = [irp for irp in sim.irps if irp.parked_ns is not None]
    # What the driver really went through while parked (the trace cannot show it, 8.3).
    waits = [irp.delivered_ns - irp.arrive_ns for irp in parked if irp.delivered_ns is not None]
    return {
        "schema": TRUTH_SCHEMA,
        "scenario": sc.path.name,
        "seed": sc.seed,
        "trace": trace.name,
        "start_ns": sc.start_unix_ns,
        "duration_ns": sc.duration_ns,
        "provider": sc.provider,
        "records": counts["records"],
        "events_lost": counts["events_lost"],
        "buffers": counts["buffers"],
        "buffers_flagged_lost": counts["buffers_flagged_lost"],
        "ifr_lines": ifr_lines,
        "wpp_messages": counts["by_what"].get("wpp", 0),
        "irps": len(rows),
        "actual": actual,
        "fate": dict(sorted(fate.items())),
        "parked": len(parked),
        "park_wait_ns": nearest_rank(waits),
        "queues": queues,
        "incidents": incidents,
        "queue_ops": [{"ts_ns": t, "kind": k} for t, k, _ in ops],
        "compare": {"memory": "observed", "policies": policies},
        "sweep": sweep,
        "per_irp_columns": ["irp", "arrive_ns", "complete_ns", "major", "irp_flags", "status",
                            "actual", "fate", "bytes"],
        "per_irp": [[f"0x{r['irp']:x}", r["arrive_ns"], r["complete_ns"], r["major"],
                     r["irp_flags"], r["status"], r["actual"], r["fate"], r["bytes"]]
                    for r in rows],
    }


def dump_truth(truth: dict) -> str:
    """JSON with one IRP per line: readable, diffable, and byte-stable."""
    rows = truth["per_irp"]
    head = dict(truth, per_irp="@ROWS@")
    text = json.dumps(head, indent=1, sort_keys=False)
    body = ",\n  ".join(json.dumps(r, separators=(",", ":")) for r in rows)
    return text.replace('"@ROWS@"', "[\n  " + body + "\n ]" if rows else "[]") + "\n"


def _beside(trace: Path, name: str) -> Path:
    # trace.etl -> truth.json (the sample layout); other.etl -> other.truth.json
    return trace.with_name(name if trace.stem == "trace" else f"{trace.stem}.{name}")


def synthesize(scenario: Path | str, output: Path | str, *, seed: int | None = None,
               ifr: Path | str | None = None, truth: Path | str | None = None,
               write_truth: bool = True) -> SynthResult:
    """Write the trace of a scenario, its IFR dump when the scenario asks for one, and truth.json
    (beside the trace unless `truth` names another file)."""
    from fpreplay.synth import emit, model, scenario as scenario_mod

    output = Path(output)
    if output.exists() and output.is_dir():
        raise FpreplayError(f"{output}: is a directory; give the .etl file to write")
    sc = scenario_mod.load(scenario, seed)
    sim = model.simulate(sc)
    written: dict = {}

    def write(path: Path, how) -> None:
        """Into a temporary file beside `path`, renamed when complete (fpreplay.outputs): a
        full disk leaves no truncated trace, dump or truth behind. Never over the scenario."""
        try:
            if path.exists() and path.samefile(sc.path):
                raise FpreplayError(f"{path}: is the scenario it is made from; write the output "
                                    "elsewhere")
            write_atomically(path, lambda tmp: written.__setitem__(path, how(tmp)))
        except OSError as e:
            raise FpreplayError(f"{path}: cannot write: {e.strerror or e}") from None

    write(output, lambda tmp: emit.write_etl(sim, tmp, output.name))
    counts = written[output]
    ifr_path = None
    ifr_lines = None
    if sc.ifr or ifr is not None:
        ifr_path = Path(ifr) if ifr is not None else _beside(output, "ifr.txt")
        write(ifr_path, lambda tmp: emit.write_ifr(sim, tmp))
        ifr_lines = written[ifr_path]
    tmf_dir = None
    if sc.wpp:
        from fpreplay.synth.wpp import write_tmf_dir

        tmf_dir = _beside(output, "tmf")
        try:
            write_tmf_dir(tmf_dir)
        except OSError as e:
            raise FpreplayError(f"{tmf_dir}: cannot write: {e.strerror or e}") from None
    doc = build_truth(sim, counts, output, ifr_lines)
    truth_path = None
    if write_truth:
        truth_path = Path(truth) if truth is not None else _beside(output, "truth.json")
        write(truth_path, lambda tmp: tmp.write_text(dump_truth(doc), encoding="utf-8"))
    return SynthResult(trace=output, ifr=ifr_path, truth_path=truth_path, truth=doc,
                       tmf_dir=tmf_dir)
