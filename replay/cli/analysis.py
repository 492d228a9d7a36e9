"""`fpreplay analyze`, `compare`, `sweep`, `incidents` and `report`: the answers users act on.

Each command reads its inputs, computes with fpreplay.replay.whatif / fpreplay.incidents, builds
one JSON document (render_json) and prints it (--json) or draws it (render, render_html).
"""

from __future__ import annotations

import functools
import json
import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from fpreplay.errors import FpreplayError
from fpreplay.replay import whatif
from fpreplay.replay.render import json as render_json
from fpreplay.replay.render import terminal as render
from fpreplay.replay.cli.app import (
    ConfigOpt, Inputs, JsonOpt, MemoryOpt, OutOpt, PolicyOpt, ProviderOpt, QuietOpt, RangeOpt,
    ServiceTimeOpt, TmfOpt, TzOpt, app, print_warnings, stdout_console, write_output,
)
from fpreplay.replay.cli.loading import load_irps

ExplainOpt = Annotated[Optional[str], typer.Option(
    "--explain", metavar="IRP",
    help="Tell one IRP's story under each policy (its address, e.g. 0xffffa001…).")]
KindOpt = Annotated[str, typer.Option(
    "--kind", metavar="K", help="Policy kind to size: always, paging or examine:SQL.")]
MaxOpt = Annotated[Optional[int], typer.Option(
    "--max", metavar="N", min=1, help="Largest reserve size to try (default: the peak demand).")]
BudgetOpt = Annotated[Optional[str], typer.Option(
    "--budget", metavar="DURATION",
    help="Park-wait budget, e.g. 2ms: report the smallest reserve whose p99 park wait fits it.")]
SeedOpt = Annotated[int, typer.Option(
    "--seed", metavar="N", help="Seed for the simulation's randomness.")]
HtmlOutOpt = Annotated[Optional[Path], typer.Option(
    "-o", "--output", metavar="FILE.html", help="The HTML file to write (required).")]
GapOpt = Annotated[Optional[str], typer.Option(
    "--gap", metavar="DURATION",
    help="Signals closer than this belong to one incident (default 500ms).")]


def _read(inputs, tmf, tz, provider, range_, quiet):
    return load_irps(inputs, tmf=tmf, tz=tz, providers=provider, range_s=range_, quiet=quiet)


def _args(inputs, tmf=None, tz=None, provider=None, range_=None, config=None,
          memory="observed", service_time=None, seed=0) -> str:
    """The inputs and options as the user gave them, for the next command we suggest."""
    words = [str(p) for p in inputs]
    for d in tmf or []:
        words += ["--tmf", str(d)]
    if tz:
        words += ["--tz", tz]
    for name in provider or []:
        words += ["--provider", name]
    if range_:
        words += ["--range", f"{range_[0]:g}", f"{range_[1]:g}"]
    if config:
        words += ["--config", str(config)]
    if memory and memory != "observed":
        words += ["--memory", memory]
    if service_time:
        words += ["--service-time", service_time]
    if seed:
        words += ["--seed", str(seed)]
    return " ".join(shlex.quote(w) for w in words)


def _settings(config, memory, service_time, seed) -> whatif.WhatIfSettings:
    if config is not None and not Path(config).is_file():
        raise FpreplayError(f"{config}: no such driver config file")
    if service_time is not None:
        _duration(service_time, "--service-time")
    return whatif.WhatIfSettings(config=config, memory=memory, service_time=service_time,
                                 seed=seed)


def _duration(text: str | None, option: str) -> int | None:
    try:
        return whatif.parse_duration(text)
    except FpreplayError as e:
        raise FpreplayError(f"{option} {text}: {e}") from None


def _incidents(read, irps, gap):
    from fpreplay.lifecycles.incidents import DEFAULT_GAP_NS, detect_incidents

    gap_ns = _duration(gap, "--gap") if gap else DEFAULT_GAP_NS
    return detect_incidents(read.events, irps, gap_ns=gap_ns)


def _reader_went_away() -> None:
    """stdout closed early (`| head`): stop quietly with status 0, like other Unix tools, not
    rich's default exit 1. Point stdout at /dev/null so the final flush cannot fail again."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise BrokenPipeError


def _answer(doc: dict, table, output: Path | None, json_: bool, quiet: bool, draw) -> None:
    """Every answering command's ending: the table to -o, warnings on stderr, then the document
    printed (--json) or drawn."""
    _write(table, output)
    print_warnings(doc["warnings"], quiet)
    try:
        if json_:
            print(json.dumps(doc, default=str), flush=True)
        else:
            console = stdout_console()
            console.on_broken_pipe = _reader_went_away
            draw(doc, console)
    except BrokenPipeError:
        _reader_went_away()


def _write(df, output: Path | None) -> None:
    if output is not None:
        import polars as pl

        from fpreplay.parsers.table import write_table

        if output.suffix.lower() == ".csv":   # CSV has no lists: devices "a;b", as a cell
            df = df.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(";")
                                 for c, t in df.schema.items() if isinstance(t, pl.List))
        write_output(lambda: write_table(df, output), output)


@app.command(short_help="What actually happened: outcomes, low-memory incidents.")
def analyze(
    inputs: Inputs,
    output: OutOpt = None,
    gap: GapOpt = None,
    tmf: TmfOpt = None,
    tz: TzOpt = None,
    provider: ProviderOpt = None,
    range_: RangeOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """What actually happened: IRPs, outcomes, low-memory incidents, IRPs never completed.

    \b
    Examples:
      fpreplay analyze trace.etl
      fpreplay analyze trace.etl driver-ifr.txt --tz UTC
      fpreplay analyze trace.etl --json | jq '.incidents'

    -o writes the IRP lifecycle table (schema fpreplay.irps/1)."""
    read, irps = _read(inputs, tmf, tz, provider, range_, quiet)
    incidents = _incidents(read, irps, gap)
    doc = render_json.analyze_document(read, irps, incidents)
    args = _args(inputs, tmf, tz, provider, range_)
    _answer(doc, irps, output, json_, quiet, functools.partial(render.render_analyze, args=args))


@app.command(short_help="Each policy replayed against what actually happened.")
def compare(
    inputs: Inputs,
    policy: PolicyOpt = None,
    output: OutOpt = None,
    explain: ExplainOpt = None,
    config: ConfigOpt = None,
    memory: MemoryOpt = "observed",
    service_time: ServiceTimeOpt = None,
    seed: SeedOpt = 0,
    tmf: TmfOpt = None,
    tz: TzOpt = None,
    provider: ProviderOpt = None,
    range_: RangeOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Each policy replayed against what actually happened, one row per policy.

    \b
    Examples:
      fpreplay compare trace.etl --policy always:8 --policy paging:8
      fpreplay compare trace.etl --policy "examine:8:paging OR major = 4"
      fpreplay compare trace.etl --policy always:2 --explain 0xffffa0012345b010
      fpreplay compare trace.etl --policy always:2 -o per-irp.csv

    -o writes the per-IRP table: actual against each policy's outcome, status, park wait and
    verdict (rescued, still_failed, regressed, same)."""
    settings = _settings(config, memory, service_time, seed)
    read, irps = _read(inputs, tmf, tz, provider, range_, quiet)
    cmp = whatif.compare(irps, list(policy or []), events=read.events, settings=settings)
    stories = whatif.explain(cmp, explain) if explain else None
    doc = render_json.compare_document(read.inputs, memory, cmp, read.diagnostics.warnings,
                                       stories)
    args = _args(inputs, tmf, tz, provider, range_, config, memory, service_time, seed)
    _answer(doc, cmp.per_irp, output, json_, quiet,
            functools.partial(render.render_compare, args=args))


@app.command(short_help="Reserve size against outcome: how many reserved requests.")
def sweep(
    inputs: Inputs,
    kind: KindOpt = "always",
    max_: MaxOpt = None,
    budget: BudgetOpt = None,
    output: OutOpt = None,
    config: ConfigOpt = None,
    memory: MemoryOpt = "observed",
    service_time: ServiceTimeOpt = None,
    seed: SeedOpt = 0,
    tmf: TmfOpt = None,
    tz: TzOpt = None,
    provider: ProviderOpt = None,
    range_: RangeOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Outcomes against reserve sizes 1..max: the smallest reserve at which nothing parks, and
    with --budget the smallest whose p99 park wait fits.

    \b
    Examples:
      fpreplay sweep trace.etl --budget 2ms
      fpreplay sweep trace.etl --kind paging --max 32
      fpreplay sweep trace.etl --memory fail-all --json | jq .min_reserved_no_park

    -o writes one row per reserve size tried."""
    settings = _settings(config, memory, service_time, seed)
    whatif.sweep_policy(kind, 1)
    budget_ns = _duration(budget, "--budget")
    read, irps = _read(inputs, tmf, tz, provider, range_, quiet)
    s = _sweep(irps, kind, max_, budget_ns, read.events, settings)
    doc = render_json.sweep_document(read.inputs, memory, s, read.diagnostics.warnings)
    args = _args(inputs, tmf, tz, provider, range_, config, memory, service_time, seed)
    _answer(doc, s.rows, output, json_, quiet, functools.partial(render.render_sweep, args=args))


def _sweep(irps, kind, max_, budget_ns, events, settings):
    """whatif.sweep, its errors in the words of --kind (the user never typed `examine:N:`)."""
    try:
        return whatif.sweep(irps, kind, max_reserved=max_, budget_ns=budget_ns, events=events,
                            settings=settings)
    except FpreplayError as e:
        msg = str(e)
        if msg.startswith("policy '") and "': " in msg:
            msg = f"--kind {kind!r}: " + msg.split("': ", 1)[1]
        raise FpreplayError(msg) from None


def _incident_analysis(read, irps, policy, settings, gap):
    incidents = _incidents(read, irps, gap)
    policies = list(policy or []) or whatif.default_policies(irps, settings, read.events)
    cmp = whatif.compare(irps, policies, events=read.events, settings=settings,
                         incidents=incidents if settings.memory.startswith("window") else None)
    per = whatif.incident_outcomes(cmp, incidents, irps)
    doc = render_json.incidents_document(read.inputs, settings.memory, cmp, incidents, per,
                                         read.diagnostics.warnings)
    return incidents, cmp, per, doc


@app.command(short_help="Post-mortem of every low-memory incident.")
def incidents(
    inputs: Inputs,
    policy: PolicyOpt = None,
    output: OutOpt = None,
    gap: GapOpt = None,
    config: ConfigOpt = None,
    memory: MemoryOpt = "observed",
    service_time: ServiceTimeOpt = None,
    seed: SeedOpt = 0,
    tmf: TmfOpt = None,
    tz: TzOpt = None,
    provider: ProviderOpt = None,
    range_: RangeOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Post-mortem of every low-memory incident: its timeline, what each policy would have done,
    and the IRPs that decided it. Without --policy: none, always:PEAK and paging:PEAK.

    \b
    Examples:
      fpreplay incidents trace.etl
      fpreplay incidents trace.etl driver-ifr.txt --tz UTC --policy always:4

    -o writes the incident table."""
    settings = _settings(config, memory, service_time, seed)
    read, irps = _read(inputs, tmf, tz, provider, range_, quiet)
    found, _, _, doc = _incident_analysis(read, irps, policy, settings, gap)
    args = _args(inputs, tmf, tz, provider, range_, config, memory, service_time, seed)
    _answer(doc, found, output, json_, quiet,
            functools.partial(render.render_incidents, args=args,
                              queue_ops=_queue_operations(read.events)))


def _queue_operations(events) -> list[tuple[int, str, str | None]]:
    """(time, kind, queue) of every queue start/stop/purge/drain the trace shows."""
    ops = whatif.queue_operations(events)
    if ops is None:
        return []
    return [(int(t), k, None if q is None else str(q)) for t, k, q in ops.iter_rows()]


@app.command(short_help="One self-contained HTML page to hand on (-o FILE.html).")
def report(
    inputs: Inputs,
    output: HtmlOutOpt = None,
    policy: PolicyOpt = None,
    kind: KindOpt = "always",
    max_: MaxOpt = None,
    budget: BudgetOpt = None,
    gap: GapOpt = None,
    config: ConfigOpt = None,
    memory: MemoryOpt = "observed",
    service_time: ServiceTimeOpt = None,
    seed: SeedOpt = 0,
    tmf: TmfOpt = None,
    tz: TzOpt = None,
    provider: ProviderOpt = None,
    range_: RangeOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """One self-contained HTML page (opens offline): summary tables, per-policy timelines, the
    sweep curve and a section per incident. -o FILE.html is required.

    \b
    Examples:
      fpreplay report trace.etl -o report.html
      fpreplay report trace.etl --policy always:8 --policy paging:8 --budget 2ms -o report.html
    """
    from fpreplay.replay.render.html import render_report

    if output is None or output.suffix.lower() not in (".html", ".htm"):
        raise FpreplayError("report needs -o FILE.html")
    settings = _settings(config, memory, service_time, seed)
    whatif.sweep_policy(kind, 1)
    budget_ns = _duration(budget, "--budget")
    read, irps = _read(inputs, tmf, tz, provider, range_, quiet)
    incidents_found, cmp, per, inc_doc = _incident_analysis(read, irps, policy, settings, gap)
    analyze_doc = render_json.analyze_document(read, irps, incidents_found)
    compare_doc = render_json.compare_document(read.inputs, memory, cmp,
                                               read.diagnostics.warnings)
    s = _sweep(irps, kind, max_, budget_ns, read.events, settings)
    sweep_doc = render_json.sweep_document(read.inputs, memory, s, read.diagnostics.warnings)
    args = _args(inputs, tmf, tz, provider, range_, config, memory, service_time, seed)
    html = render_report(analyze_doc, compare_doc, sweep_doc, inc_doc, cmp, args=args,
                         queue_ops=_queue_operations(read.events),
                         trace_start_ns=read.trace_start_ns)
    write_output(lambda: output.write_text(html, encoding="utf-8"), output)
    print_warnings(compare_doc["warnings"], quiet)
    if not quiet:
        render.stderr_note(f"wrote {output}")
