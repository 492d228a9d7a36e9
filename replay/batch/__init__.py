"""A fleet of traces: each analysed on its own, the answers gathered per trace and across them.

    from fpreplay.replay.batch import BatchSpec, run_batch
    result = run_batch(["lab/"], "out/", BatchSpec(policies=(parse_policy("always:4"),)))
    result.summary          # one row per trace and policy (also out/summary.parquet)

The output directory is a Hive-partitioned Parquet dataset that polars, DuckDB and Spark read as
it is: `irps/trace=NAME/part-0.parquet` (each trace's per-IRP table, as `compare -o` writes it),
`summary.parquet` (one row per trace and policy), `incidents.parquet` (one row per incident, with
its trace), and `traces/NAME.json` (each trace's record, which makes a re-run skip it while its
files and fpreplay are unchanged).

Traces run one after another, in a process pool (`jobs`), or on a Dask cluster (`scheduler`: an
address, or "local" for a LocalCluster on this machine): the same per-trace function
(`run.run_trace`) everywhere; Dask is an extra (`pip install 'fpreplay[cluster]'`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from fpreplay.errors import ConfigError
from fpreplay.outputs import write_atomically
from fpreplay.replay.batch.plan import TraceJob, plan_traces
from fpreplay.replay.batch.run import (BatchSpec, incidents_frame, is_current, record_path,
                                       run_trace, summary_frame)

__all__ = ["BatchSpec", "BatchResult", "TraceJob", "plan_traces", "run_batch", "run_trace",
           "fleet_verdict"]


@dataclass
class BatchResult:
    records: list[dict]              # one per trace, in plan order
    ran: list[str]                   # traces analysed by this run
    skipped: list[str]               # traces whose stored result was current
    summary: pl.DataFrame
    incidents: pl.DataFrame
    fleet: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r["status"] != "ok"]


def _run_local(todo: list[TraceJob], spec: BatchSpec, out_dir: Path, jobs: int,
               done: Callable[[TraceJob, dict], None]) -> None:
    if jobs <= 1 or len(todo) <= 1:
        for job in todo:
            done(job, run_trace(job, spec, out_dir))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: polars' thread pool does not survive fork.
    with ProcessPoolExecutor(max_workers=jobs,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_trace, job, spec, str(out_dir)): job for job in todo}
        for fut in as_completed(futures):
            done(futures[fut], fut.result())


def _run_dask(todo: list[TraceJob], spec: BatchSpec, out_dir: Path, scheduler: str, jobs: int,
              done: Callable[[TraceJob, dict], None]) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("a Dask scheduler needs Dask distributed: pip install "
                          "'fpreplay[cluster]'") from None
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as e:
            raise ConfigError(f"Dask scheduler {scheduler}: cannot connect ({e})") from None
    try:
        futures = client.map(run_trace, todo, spec=spec, out_dir=str(out_dir), pure=False)
        by_key = {f.key: job for f, job in zip(futures, todo)}
        for fut in as_completed(futures):
            done(by_key[fut.key], fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_batch(inputs: Sequence[str | Path], out_dir: str | Path, spec: BatchSpec, *,
              jobs: int = 1, scheduler: str | None = None,
              progress: Callable[[TraceJob, dict, bool], None] | None = None) -> BatchResult:
    """Analyse every trace among `inputs` on its own and gather the answers in `out_dir`.

    progress(job, record, skipped) is called as each trace finishes (or is found current)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: not a directory")
    if jobs < 1:
        raise ConfigError(f"jobs {jobs}: must be at least 1")
    plan = plan_traces([Path(p) for p in inputs], out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    skipped, todo = [], []
    for job in plan:
        if is_current(out_dir, job):
            records[job.name] = json.loads(record_path(out_dir, job.name).read_text("utf-8"))
            skipped.append(job.name)
            if progress:
                progress(job, records[job.name], True)
        else:
            todo.append(job)

    def done(job: TraceJob, record: dict) -> None:
        records[job.name] = record
        if progress:
            progress(job, record, False)

    if todo:
        if scheduler:
            _run_dask(todo, spec, out_dir, scheduler, jobs, done)
        else:
            _run_local(todo, spec, out_dir, jobs, done)
    ordered = [records[job.name] for job in plan]
    summary, incidents = summary_frame(ordered), incidents_frame(ordered)
    write_atomically(out_dir / "summary.parquet", summary.write_parquet)
    write_atomically(out_dir / "incidents.parquet", incidents.write_parquet)
    return BatchResult(records=ordered, ran=[j.name for j in todo], skipped=skipped,
                       summary=summary, incidents=incidents,
                       fleet=fleet_verdict(ordered, spec))


def fleet_verdict(records: list[dict], spec: BatchSpec) -> dict:
    """The answer across traces: the reserve size that would have served every trace (the largest
    any trace needs), and for each compared policy of the sized kind, on how many traces it
    would have sufficed and what the others need.

    A trace "needs" the smallest reserve of the sized kind with which no IRP waits parked (with a
    budget: whose p99 park wait fits it); a trace with no starved IRP needs none."""
    ok = [r for r in records if r["status"] == "ok"]
    needs = {r["trace"]: r["sweep"]["needed_reserved"] for r in ok}
    known = [n for n in needs.values() if n is not None]
    kind = spec.kind.text
    verdict = {"kind": kind, "traces": len(records), "analysed": len(ok),
               "failed_to_read": len(records) - len(ok),
               "needs": needs, "recommended_reserved": max(known) if known else None,
               "unsizable": sorted(t for t, n in needs.items() if n is None),
               "policies": []}
    for policy in spec.policies:
        if policy.kind != spec.kind.policy.kind or policy.sql != spec.kind.policy.sql:
            continue
        n = int(policy.reserved or 0)
        short = sorted(((t, m) for t, m in needs.items() if m is None or m > n),
                       key=lambda tm: (tm[1] is None, tm[1] or 0, tm[0]))
        verdict["policies"].append({"policy": policy.text, "sufficed": len(ok) - len(short),
                                    "others": [{"trace": t, "needs": m} for t, m in short]})
    return verdict
