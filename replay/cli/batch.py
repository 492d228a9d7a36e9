"""`fpreplay batch`: many traces, each analysed on its own, one dataset and one answer across
them (fpreplay.replay.batch does the work; this is its command line)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from fpreplay.errors import FpreplayError
from fpreplay.replay.cli.app import (
    app, print_warnings, stderr_console, stdout_console, write_output,
)
from fpreplay.replay.cli.options import (
    BudgetOpt, GapOpt, JsonOpt, KindOpt, PolicyOpt, QuietOpt, Simulation, Trace, file_option,
    option_groups, option_value,
)

BATCH_SCHEMA = "fpreplay.batch/1"
ReportOpt = file_option("--report", metavar="FILE.html",
                        help="Also write one self-contained HTML page across the traces.")


def _progress(quiet: bool, total: int):
    if quiet or not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(), console=stderr_console(),
                        transient=True)
    return progress, progress.add_task("traces", total=total)


def batch_document(result, out_dir: Path, spec) -> dict:
    """The fpreplay.batch/1 document of a run (a replay.batch BatchResult and its BatchSpec)."""
    from fpreplay.replay.render.batch import fleet_sentences

    doc = {"schema": BATCH_SCHEMA, "output": str(out_dir), "memory": spec.settings.memory.text,
           "budget_ns": spec.budget_ns, "ran": len(result.ran), "skipped": len(result.skipped),
           "traces": [{k: v for k, v in r.items() if k != "incident_rows"}
                      for r in result.records],
           "fleet": result.fleet}
    doc["fleet"]["statements"] = fleet_sentences(doc)
    return doc


@app.command(name="batch", short_help="Many traces: each on its own, one answer across them.")
@option_groups
def batch_command(
    output: Annotated[Path, typer.Option(
        "-o", "--output", metavar="DIR",
        help="Directory of the dataset (created; re-running skips traces already done).")],
    policy: PolicyOpt = None,
    kind: KindOpt = "always",
    budget: BudgetOpt = None,
    gap: GapOpt = None,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", metavar="N", min=1,
        help="Traces analysed at once, each in its own process (default 1).")] = 1,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", metavar="ADDRESS",
        help="Run on a Dask cluster: its scheduler's address, or 'local' for a LocalCluster of "
             "--jobs workers (needs the 'cluster' extra).")] = None,
    report: ReportOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    *,
    simulation: Simulation,
    trace: Trace,
) -> None:
    """Each trace analysed on its own (analyze, compare, sweep), the answers gathered in a
    Hive-partitioned Parquet dataset and summed up across traces.

    \b
    Examples:
      fpreplay batch lab/ -o results/ --policy always:4 --policy always:8
      fpreplay batch 'nightly/**/*.etl' -o results/ --jobs 2
      fpreplay batch lab/ -o results/ --scheduler tcp://scheduler:8786

    INPUT may be files, directories (searched recursively) or glob patterns. Files of one folder
    sharing a stem are one trace; a folder's only .etl takes its .txt dumps (IFR, tracefmt) as
    companions; .tmf files make their folder the --tmf of its traces (docs/batch.md). A trace
    that cannot be read is one row with its error; the exit status is 2 if any could not be."""
    from fpreplay.replay import batch, whatif
    from fpreplay.replay.render.batch import render_batch, render_batch_html

    policies = (option_value("--policy", whatif.parse_policies, policy) if policy
                else [whatif.as_policy(p) for p in ("always:4", "always:8")])
    kind = whatif.sweep_kind(kind)
    spec = batch.BatchSpec(policies=tuple(policies), kind=kind, budget_ns=budget,
                           settings=simulation.settings, gap_ns=gap,
                           providers=tuple(trace.providers), tz=trace.tz,
                           tmf=tuple(trace.tmf), range_s=trace.range_s)
    plan_size = len(batch.plan_traces(trace.inputs, output))
    progress, task = _progress(quiet, plan_size)

    def advance(job, record, skipped):
        if progress is not None:
            progress.update(task, advance=1, description=f"{job.name} ({job.size:,} bytes)")

    if progress is not None:
        with progress:
            result = batch.run_batch(trace.inputs, output, spec, jobs=jobs, scheduler=scheduler,
                                     progress=advance)
    else:
        result = batch.run_batch(trace.inputs, output, spec, jobs=jobs, scheduler=scheduler)
    doc = batch_document(result, output, spec)
    warnings = [f"{r['trace']}: {w}" for r in result.records for w in r.get("warnings", [])]
    print_warnings(warnings, quiet)
    if report is not None:
        page = render_batch_html(doc)
        write_output(lambda tmp: tmp.write_text(page, encoding="utf-8"), report, trace.inputs)
    if json_:
        print(json.dumps(doc, indent=2, default=str))
    else:
        render_batch(doc, stdout_console())
    if result.failed:
        raise FpreplayError(f"{len(result.failed)} of {len(result.records)} traces could not be "
                            "analysed: " + ", ".join(r["trace"] for r in result.failed[:5]))
