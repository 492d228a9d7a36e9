"""`fpreplay analyze`, `compare`, `sweep`, `incidents` and `report`: the answers users act on.

Each command reads its inputs, computes with fpreplay.replay.whatif / fpreplay.incidents, builds
one JSON document (render_json) and prints it (--json) or draws it (render, render_html).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from fpreplay.errors import FpreplayError
from fpreplay.replay import render, render_json, whatif
from fpreplay.replay.app import (
    ConfigOpt, Inputs, JsonOpt, MemoryOpt, OutOpt, PolicyOpt, ProviderOpt, QuietOpt, RangeOpt,
    ServiceTimeOpt, TmfOpt, TzOpt, app, print_warnings, stdout_console,
)
from fpreplay.replay.loading import load_irps

ExplainOpt = Annotated[Optional[str], typer.Option(
    "--explain", help="Tell one IRP's story under each policy (its address, e.g. 0xffffa001…).")]
KindOpt = Annotated[str, typer.Option(
    "--kind", help="Policy kind to size: always, paging or examine:SQL.")]
MaxOpt = Annotated[Optional[int], typer.Option(
    "--max", help="Largest reserve size to try (default: the peak demand).", min=1)]
BudgetOpt = Annotated[Optional[str], typer.Option(
    "--budget", help="Park-wait budget, e.g. 2ms: report the smallest reserve whose p99 park "
                     "wait fits it.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for the simulation's randomness.")]
HtmlOutOpt = Annotated[Optional[Path], typer.Option(
    "-o", "--output", help="The HTML file to write (required).")]
GapOpt = Annotated[Optional[str], typer.Option(
    "--gap", help="Signals closer than this belong to one incident (default 500ms).")]


def _read(inputs, tmf, tz, provider, range_, quiet):
    return load_irps(inputs, tmf=tmf, tz=tz, providers=provider, range_s=range_, quiet=quiet)


def _settings(config, memory, service_time, seed) -> whatif.WhatIfSettings:
    if config is not None and not Path(config).is_file():
        raise FpreplayError(f"{config}: no such driver config file")
    return whatif.WhatIfSettings(config=config, memory=memory, service_time=service_time,
                                 seed=seed)


def _duration(text: str | None, option: str) -> int | None:
    try:
        return whatif.parse_duration(text)
    except FpreplayError as e:
        raise FpreplayError(f"{option} {text}: {e}") from None


def _incidents(read, irps, gap):
    from fpreplay.incidents import DEFAULT_GAP_NS, detect_incidents

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


def _emit(doc: dict, json_: bool, draw) -> None:
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
        from fpreplay.parsers.table import write_table

        write_table(df, output)


@app.command()
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

    -o writes the IRP lifecycle table (schema fpreplay.irps/1)."""
    read, irps = _read(inputs, tmf, tz, provider, range_, quiet)
    incidents = _incidents(read, irps, gap)
    doc = render_json.analyze_document(read, irps, incidents)
    _write(irps, output)
    print_warnings(doc["warnings"], quiet)
    _emit(doc, json_, render.render_analyze)


@app.command()
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

    -o writes the per-IRP table: actual against each policy's outcome, status, park wait and
    verdict (rescued, still_failed, regressed, same)."""
    settings = _settings(config, memory, service_time, seed)
    read, irps = _read(inputs, tmf, tz, provider, range_, quiet)
    cmp = whatif.compare(irps, list(policy or []), events=read.events, settings=settings)
    stories = whatif.explain(cmp, explain) if explain else None
    doc = render_json.compare_document(read.inputs, memory, cmp, read.diagnostics.warnings,
                                       stories)
    _write(cmp.per_irp, output)
    print_warnings(doc["warnings"], quiet)
    _emit(doc, json_, render.render_compare)


@app.command()
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

    -o writes one row per reserve size tried."""
    settings = _settings(config, memory, service_time, seed)
    whatif.sweep_policy(kind, 1)
    budget_ns = _duration(budget, "--budget")
    read, irps = _read(inputs, tmf, tz, provider, range_, quiet)
    s = whatif.sweep(irps, kind, max_reserved=max_, budget_ns=budget_ns, events=read.events,
                     settings=settings)
    doc = render_json.sweep_document(read.inputs, memory, s, read.diagnostics.warnings)
    _write(s.rows, output)
    print_warnings(doc["warnings"], quiet)
    _emit(doc, json_, render.render_sweep)


def _incident_analysis(read, irps, policy, settings, gap):
    incidents = _incidents(read, irps, gap)
    policies = list(policy or []) or whatif.default_policies(irps, settings, read.events)
    cmp = whatif.compare(irps, policies, events=read.events, settings=settings,
                         incidents=incidents if settings.memory.startswith("window") else None)
    per = whatif.incident_outcomes(cmp, incidents, read.events)
    doc = render_json.incidents_document(read.inputs, settings.memory, cmp, incidents, per,
                                         read.diagnostics.warnings)
    return incidents, cmp, per, doc


@app.command()
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

    -o writes the incident table."""
    settings = _settings(config, memory, service_time, seed)
    read, irps = _read(inputs, tmf, tz, provider, range_, quiet)
    found, _, _, doc = _incident_analysis(read, irps, policy, settings, gap)
    _write(found, output)
    print_warnings(doc["warnings"], quiet)
    _emit(doc, json_, render.render_incidents)


@app.command()
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
    sweep curve and a section per incident. -o FILE.html is required."""
    from fpreplay.replay.render_html import render_report

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
    s = whatif.sweep(irps, kind, max_reserved=max_, budget_ns=budget_ns, events=read.events,
                     settings=settings)
    sweep_doc = render_json.sweep_document(read.inputs, memory, s, read.diagnostics.warnings)
    html = render_report(analyze_doc, compare_doc, sweep_doc, inc_doc, cmp)
    output.write_text(html, encoding="utf-8")
    print_warnings(compare_doc["warnings"], quiet)
    if not quiet:
        render.stderr_note(f"wrote {output}")
