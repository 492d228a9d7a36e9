"""One trace of a batch, analysed on its own: a pure function of the trace's files and the batch's
settings, so that a process pool or a Dask worker can run it anywhere the files are readable.

It writes the trace's per-IRP table (`irps/trace=NAME/part-0.parquet`) and, last, its record
(`traces/NAME.json`: what the trace is, when it was read, and every figure of its summary); a
record whose file size, modification time and fpreplay version still match means the trace is
done, which is what lets an interrupted batch resume.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from fpreplay import __version__
from fpreplay.engine import Policy
from fpreplay.errors import FpreplayError
from fpreplay.outputs import write_atomically
from fpreplay.replay.batch.plan import TraceJob
from fpreplay.replay.whatif import (
    SweepKind, WhatIfSettings, compare, recommend_size, sweep, sweep_kind,
)
from fpreplay.schema import FAILED_ACTUALS


@dataclass(frozen=True)
class BatchSpec:
    """What every trace of a batch is asked, parsed once (picklable: it travels to workers)."""

    policies: tuple[Policy, ...]
    kind: SweepKind = field(default_factory=lambda: sweep_kind("always"))
    budget_ns: int | None = None
    settings: WhatIfSettings = field(default_factory=WhatIfSettings)
    gap_ns: int | None = None
    providers: tuple[str, ...] = ()
    tz: str | None = None
    tmf: tuple[Path, ...] = ()                      # besides the folders the plan found
    range_s: tuple[float, float] | None = None


def record_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / "traces" / f"{name}.json"


def irps_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / "irps" / f"trace={name}" / "part-0.parquet"


def identity(job: TraceJob) -> dict:
    """What makes a stored result current: the files as they are now and this fpreplay."""
    return {"trace": job.name, "inputs": [str(p) for p in job.inputs],
            "tmf": [str(p) for p in job.tmf], "size": job.size, "mtime_ns": job.mtime_ns,
            "fpreplay": __version__}


def is_current(out_dir: Path, job: TraceJob) -> bool:
    try:
        stored = json.loads(record_path(out_dir, job.name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    want = identity(job)
    return all(stored.get(k) == want[k] for k in want)


def _write(path: Path, write) -> None:
    """A dataset file, its partition folder made first (workers make their own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, write)


def _flat_summary(row: dict, seeds: list[int]) -> dict:
    """One summary row as flat columns a query can name: `park_wait_p99_ns`, and with several
    verifier seeds each figure's spread as `<figure>_min` / `_max` beside its median (the figure
    itself) and the seeds run in `seeds`."""
    waits = row.get("park_wait_ns") or {}
    flat = {k: v for k, v in row.items() if k not in ("park_wait_ns", "range")}
    flat.update({f"park_wait_{q}_ns": waits.get(q) for q in ("p50", "p99", "max")})
    spread = {}
    for figure, r in (row.get("range") or {}).items():
        if figure == "park_wait_ns":
            for q, rq in (r or {}).items():
                spread[f"park_wait_{q}_ns"] = rq
        else:
            spread[figure] = r
    for figure, r in spread.items():
        flat[f"{figure}_min"] = (r or {}).get("min")
        flat[f"{figure}_max"] = (r or {}).get("max")
    flat["seeds"] = seeds if spread else None
    return flat


def _analyse(job: TraceJob, spec: BatchSpec, out_dir: Path) -> dict:
    from fpreplay.lifecycles import read_lifecycles
    from fpreplay.lifecycles.incidents import DEFAULT_GAP_NS, detect_incidents
    from fpreplay.parsers import InputStream, ReadOptions

    read, irps = read_lifecycles(InputStream(list(job.inputs), ReadOptions(
        tmf_dirs=[*job.tmf, *spec.tmf], providers=list(spec.providers), tz=spec.tz,
        range_s=spec.range_s)))
    incidents = detect_incidents(read.events, irps, gap_ns=spec.gap_ns or DEFAULT_GAP_NS)
    cmp = compare(irps, spec.policies, events=read.events, settings=spec.settings,
                  incidents=incidents)
    sized = sweep(irps, spec.kind, budget_ns=spec.budget_ns, events=read.events,
                  settings=spec.settings)
    _write(irps_path(out_dir, job.name), cmp.per_irp.write_parquet)
    starved = sized.peak_demand == 0
    needed = 0 if starved else recommend_size(sized).reserved   # the one rule (whatif)
    warnings = list(dict.fromkeys(read.diagnostics.warnings + cmp.warnings + sized.warnings))
    return {
        "status": "ok", "exit_status": 0, "error": None,
        "records": read.records, "events_lost": read.events_lost, "irps": irps.height,
        "failed": int(irps["actual"].is_in(FAILED_ACTUALS).sum()) if irps.height else 0,
        "actual": cmp.actual, "incidents": incidents.height,
        "summaries": [_flat_summary({**cmp.observed, "policy": "actual"}, [])]
        + [_flat_summary(s, cmp.seeds) for s in cmp.summaries],
        "sweep": {"kind": sized.kind, "peak_demand": sized.peak_demand,
                  "max_reserved": sized.max_reserved, "budget_ns": sized.budget_ns,
                  "min_reserved_no_park": sized.min_reserved_no_park,
                  "min_reserved_within_budget": sized.min_reserved_within_budget,
                  "needed_reserved": needed},
        "incident_rows": incidents.to_dicts(),
        "warnings": warnings,
    }


def run_trace(job: TraceJob, spec: BatchSpec, out_dir: str | Path) -> dict:
    """Analyse one trace; never raises for a bad trace: its record says what went wrong, with
    the exit status the single-trace commands would give (2 bad input, 1 a bug)."""
    out_dir = Path(out_dir)
    started = time.perf_counter()
    record = identity(job)
    try:
        record.update(_analyse(job, spec, out_dir))
    except FpreplayError as e:
        record.update(status="error", exit_status=2, error=str(e))
    except Exception as e:  # noqa: BLE001 - one trace's bug must not stop the fleet
        record.update(status="error", exit_status=1,
                      error=f"internal error: {type(e).__name__}: {e}")
    record["seconds"] = round(time.perf_counter() - started, 3)
    text = json.dumps(record, default=str)
    _write(record_path(out_dir, job.name),
                      lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return record


def summary_frame(records: list[dict]) -> pl.DataFrame:
    """One row per trace and policy (the observed `actual` row first); a trace that could not be
    read is one row with its error and exit status."""
    rows = []
    for r in records:
        base = {"trace": r["trace"], "path": r["inputs"][0] if r["inputs"] else None,
                "status": r["status"], "exit_status": r["exit_status"], "error": r.get("error"),
                "irps": r.get("irps"), "failed": r.get("failed"),
                "incidents": r.get("incidents"), "events_lost": r.get("events_lost"),
                "sweep_kind": (r.get("sweep") or {}).get("kind"),
                "needed_reserved": (r.get("sweep") or {}).get("needed_reserved"),
                "size": r["size"], "mtime_ns": r["mtime_ns"], "fpreplay": r["fpreplay"]}
        for s in r.get("summaries") or [{}]:
            rows.append({**base, **s})
    return pl.DataFrame(rows, infer_schema_length=None)


def incidents_frame(records: list[dict]) -> pl.DataFrame:
    frames = [pl.DataFrame(r["incident_rows"], infer_schema_length=None)
              .with_columns(pl.lit(r["trace"]).alias("trace"))
              for r in records if r.get("incident_rows")]
    if not frames:
        return pl.DataFrame(schema={"trace": pl.String})
    out = pl.concat(frames, how="diagonal_relaxed")
    return out.select("trace", pl.exclude("trace"))
