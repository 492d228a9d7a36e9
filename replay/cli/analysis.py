"""`fpreplay analyze`, `compare`, `sweep`, `incidents` and `report`: the answers users act on.

Each command reads its inputs, computes with fpreplay.replay.whatif / fpreplay.lifecycles, builds
one JSON document (render_json) and prints it (--json) or draws it (render, render_html). Its
options arrive parsed (options.py): policies, durations in ns, the driver model read once.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from fpreplay.errors import FpreplayError
from fpreplay.replay.cli.app import (
    app, print_warnings, stderr_console, stdout_console, write_output, write_table_output,
)
from fpreplay.replay.cli.loading import load_irps, load_spool
from fpreplay.replay.cli.options import (
    Answer, BudgetOpt, ExplainOpt, GapOpt, KindOpt, MaxOpt, PolicyOpt, QuietOpt, Simulation,
    Trace, file_option, option_groups, option_value, shell_words,
)

# The layers below (polars, the engine, whatif, render) are imported inside the commands:
# `fpreplay --version` and `--help` import none of them (tests/replay/test_cli_startup.py).

# What analyze's document reads of each IRP (breakdowns, never-completed IRPs, incidents).
ANALYZE_COLUMNS = ("irp", "arrive_ns", "device", "device_alias", "queue", "major", "paging",
                   "actual")
# ...and what the report reads of every IRP besides (the driver's own policy, the charts' span,
# what happened inside each incident it details).
REPORT_COLUMNS = (*ANALYZE_COLUMNS, "complete_ns", "deliver_ns")

HtmlOutOpt = file_option("-o", "--output", metavar="FILE.html",
                         help="The HTML file to write (required).")


def _policies(policy) -> list | None:
    """The --policy values given, checked as a set (at least one, none twice); None if none."""
    from fpreplay.replay import whatif

    return option_value("--policy", whatif.parse_policies, policy) if policy else None


def _incidents(read, irps, gap_ns: int | None):
    from fpreplay.lifecycles.incidents import DEFAULT_GAP_NS, detect_incidents

    return detect_incidents(read.events, irps,
                            gap_ns=DEFAULT_GAP_NS if gap_ns is None else gap_ns)


def _reader_went_away() -> None:
    """stdout closed early (`| head`): stop quietly with status 0, like other Unix tools, not
    rich's default exit 1. Point stdout at /dev/null so the final flush cannot fail again."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise BrokenPipeError


def _answer(doc: dict, table, answer: Answer, draw) -> None:
    """Every answering command's ending: the table to -o, warnings on stderr, then the document
    printed (--json) or drawn."""
    if table is not None:     # (None: the command wrote its -o as it went)
        _write(table, answer.output, doc.get("inputs", ()))
    print_warnings(doc["warnings"], answer.quiet)
    try:
        if answer.json:
            print(json.dumps(doc, default=str), flush=True)
        else:
            console = stdout_console()
            console.on_broken_pipe = _reader_went_away
            draw(doc, console)
    except BrokenPipeError:
        _reader_went_away()


def _stream_out(output: Path, inputs, spool) -> None:
    """The spool's table to -o, chunk by chunk (replay/cli/tables.py)."""
    from fpreplay.replay.cli.tables import TableWriter

    writer = TableWriter(output, inputs)
    try:
        for block in spool.chunks():
            writer.write(block)
        if not writer.blocks:          # no IRP: the table's columns all the same
            writer.write(spool.collect())
        writer.finish()
    finally:
        writer.discard()


def _write(df, output: Path | None, inputs=()) -> None:
    if output is not None:
        write_table_output(df, output, inputs)


@app.command(short_help="What actually happened: outcomes, low-memory incidents.")
@option_groups
def analyze(
    gap: GapOpt = None,
    *,
    trace: Trace,
    answer: Answer,
) -> None:
    """What actually happened: IRPs, outcomes, low-memory incidents, IRPs never completed.

    \b
    Examples:
      fpreplay analyze trace.etl
      fpreplay analyze trace.etl driver-ifr.txt --tz UTC
      fpreplay analyze trace.etl --json | jq '.incidents'
      cat trace.etl | fpreplay analyze -

    -o writes the IRP lifecycle table (schema fpreplay.irps/1)."""
    from fpreplay.replay.render import json as render_json
    from fpreplay.replay.render import terminal as render

    read, spool = load_spool(trace, answer.quiet)
    with spool:
        if answer.output is not None:     # -o: the lifecycle table, written as it is read
            _stream_out(answer.output, read.inputs, spool)
        # The document's figures (breakdowns, never-completed IRPs, incidents with their IRP
        # counts) read every IRP: only the few columns they use are collected.
        irps = spool.collect([c for c in ANALYZE_COLUMNS if c in spool.columns])
    doc = render_json.analyze_document(read, irps, _incidents(read, irps, gap))
    _answer(doc, None, answer,
            functools.partial(render.render_analyze, args=shell_words(trace)))


@app.command(short_help="Each policy replayed against what actually happened.")
@option_groups
def compare(
    policy: PolicyOpt = None,
    explain: ExplainOpt = None,
    *,
    simulation: Simulation,
    trace: Trace,
    answer: Answer,
) -> None:
    """Each policy replayed against what actually happened, one row per policy.

    \b
    Examples:
      fpreplay compare trace.etl --policy always:8 --policy paging:8
      fpreplay compare trace.etl --policy "examine:8:paging OR major = 4"
      fpreplay compare trace.etl --policy always:2 --explain 0xffffa0012345b010
      fpreplay compare trace.etl --policy always:2 -o per-irp.csv
      fpreplay compare trace.etl --policy always:2 --explain 0xffffa0012345b010@05:40:00.750012

    -o writes the per-IRP table: actual against each policy's outcome, status, park wait and
    verdict (rescued, still_failed, regressed, same)."""
    from fpreplay.replay import whatif
    from fpreplay.replay.render import json as render_json
    from fpreplay.replay.render import terminal as render

    policies = option_value("--policy", whatif.parse_policies, policy or [])
    from fpreplay.replay.cli.tables import TableWriter

    read, spool = load_spool(trace, answer.quiet)
    settings = simulation.settings
    with spool:
        source = whatif.IrpSource(spool, settings)
        writer = None if answer.output is None else TableWriter(answer.output, read.inputs)
        try:
            # One pass over the spool replays every policy; -o is written as rows settle.
            cmp = whatif.compare(source, policies, events=read.events, settings=settings,
                                 keep=False, explain_irp=None if explain is None else explain[0],
                                 sink=None if writer is None else writer.write)
            if writer is not None:
                writer.finish()
        finally:
            if writer is not None:
                writer.discard()
        stories = None if explain is None else _explain(cmp, read, explain)
        rec = whatif.recommend(cmp, source, events=read.events, settings=settings)
    doc = render_json.compare_document(read.inputs, simulation.memory.text, cmp,
                                       read.diagnostics.warnings, stories, rec)
    _answer(doc, None, answer,
            functools.partial(render.render_compare, args=shell_words(trace, simulation)))


def _explain(cmp, read, explain) -> list[dict]:
    """--explain ADDRESS[@TIME]: the stories of the IRPs the address served, or of the one in
    flight at TIME (a clock time resolved on the trace's own day)."""
    from fpreplay.replay import whatif

    address, when = explain
    at_ns = None
    if when is not None:
        # The trace's span from its IRPs: after a streamed read `read.events` holds only the
        # side events, which may end early or be empty.
        first, last = cmp.span
        start = read.trace_start_ns if read.trace_start_ns is not None else first
        if start is not None:
            at_ns = when.resolve(start, last if last is not None else start)
    return option_value("--explain", lambda a: whatif.explain(cmp, a, at_ns=at_ns), address)


@app.command(short_help="Reserve size against outcome: how many reserved requests.")
@option_groups
def sweep(
    kind: KindOpt = "always",
    max_: MaxOpt = None,
    budget: BudgetOpt = None,
    *,
    simulation: Simulation,
    trace: Trace,
    answer: Answer,
) -> None:
    """Outcomes against reserve sizes 1..max: the smallest reserve at which nothing parks, and
    with --budget the smallest whose p99 park wait fits.

    \b
    Examples:
      fpreplay sweep trace.etl --budget 2ms
      fpreplay sweep trace.etl --kind paging --max 32
      fpreplay sweep trace.etl --memory fail-all --json | jq .min_reserved_no_park

    -o writes one row per reserve size tried."""
    from fpreplay.replay import whatif
    from fpreplay.replay.render import json as render_json
    from fpreplay.replay.render import terminal as render

    read, spool = load_spool(trace, answer.quiet)
    with spool:     # each pass over the spool replays every size it tries
        s = whatif.sweep(spool, kind, max_reserved=max_, budget_ns=budget, events=read.events,
                         settings=simulation.settings)
    doc = render_json.sweep_document(read.inputs, simulation.memory.text, s,
                                     read.diagnostics.warnings)
    _answer(doc, s.rows, answer,
            functools.partial(render.render_sweep, args=shell_words(trace, simulation)))


def _incident_analysis(read, irps, policies, simulation: Simulation, gap_ns):
    from fpreplay.replay import whatif
    from fpreplay.replay.render import json as render_json

    settings = simulation.settings
    incidents = _incidents(read, irps, gap_ns)
    policies = policies or whatif.default_policies(irps, settings, read.events)
    cmp = whatif.compare(irps, policies, events=read.events, settings=settings,
                         incidents=incidents if settings.window else None)
    per = whatif.incident_outcomes(cmp, incidents, irps)
    doc = render_json.incidents_document(read.inputs, simulation.memory.text, cmp, incidents,
                                         per, read.diagnostics.warnings)
    return incidents, cmp, per, doc


@app.command(short_help="Post-mortem of every low-memory incident.")
@option_groups
def incidents(
    policy: PolicyOpt = None,
    gap: GapOpt = None,
    *,
    simulation: Simulation,
    trace: Trace,
    answer: Answer,
) -> None:
    """Post-mortem of every low-memory incident: its timeline, what each policy would have done,
    and the IRPs that decided it. Without --policy: none, always:PEAK and paging:PEAK.

    \b
    Examples:
      fpreplay incidents trace.etl
      fpreplay incidents trace.etl driver-ifr.txt --tz UTC --policy always:4

    -o writes the incident table."""
    from fpreplay.replay.render import terminal as render

    policies = _policies(policy)
    read, irps = load_irps(trace, answer.quiet)
    found, _, _, doc = _incident_analysis(read, irps, policies, simulation, gap)
    _answer(doc, found, answer,
            functools.partial(render.render_incidents, args=shell_words(trace, simulation),
                              queue_ops=_queue_operations(read.events)))


def _queue_operations(events) -> list[tuple[int, str, str | None]]:
    """(time, kind, queue) of every queue start/stop/purge/drain the trace shows."""
    from fpreplay.replay import whatif

    ops = whatif.queue_operations(events)
    if ops is None:
        return []
    return [(int(t), k, None if q is None else str(q))
            for t, k, q in ops.select("ts_ns", "kind", "queue").iter_rows()]


@app.command(short_help="One self-contained HTML page to hand on (-o FILE.html).")
@option_groups
def report(
    output: HtmlOutOpt = None,
    policy: PolicyOpt = None,
    kind: KindOpt = "always",
    max_: MaxOpt = None,
    budget: BudgetOpt = None,
    gap: GapOpt = None,
    *,
    simulation: Simulation,
    trace: Trace,
    quiet: QuietOpt = False,
) -> None:
    """One self-contained HTML page (opens offline): summary tables, per-policy timelines, the
    sweep curve, a row per incident and a section for each (for the 20 with the most failed IRPs
    when there are more). -o FILE.html is required.

    \b
    Examples:
      fpreplay report trace.etl -o report.html
      fpreplay report trace.etl --policy always:8 --policy paging:8 --budget 2ms -o report.html
    """
    from fpreplay.replay import whatif
    from fpreplay.replay.render import json as render_json
    from fpreplay.replay.render.html import render_report

    if output is None or output.suffix.lower() not in (".html", ".htm"):
        raise FpreplayError("report needs -o FILE.html")
    policies = _policies(policy)
    settings = simulation.settings
    read, spool = load_spool(trace, quiet)
    with spool:
        source = whatif.IrpSource(spool, settings)
        # What reads every IRP besides the replays (incidents, the analyze summary, the
        # driver's own policy) reads only these columns.
        irps = spool.collect([c for c in REPORT_COLUMNS if c in spool.columns])
        # The driver's own policy is always among those drawn: its replay is the check on the
        # rest.
        traced = whatif.traced_policy(irps, settings.driver)
        policies = policies or whatif.default_policies(source, settings, read.events)
        if traced.policy is not None and traced.policy not in [p.text for p in policies]:
            policies = [*policies, *whatif.parse_policies([traced.policy])]
        incidents_found = _incidents(read, irps, gap)
        analyze_doc = render_json.analyze_document(read, irps, incidents_found)
        if len(settings.runs()) > 1:     # several seeds: every IRP of each run kept
            whole = spool.collect()
            cmp = whatif.compare(whole, policies, events=read.events, settings=settings,
                                 incidents=incidents_found if settings.window else None)
            per = whatif.incident_outcomes(cmp, incidents_found, whole)
            inc_doc = render_json.incidents_document(read.inputs, simulation.memory.text, cmp,
                                                     incidents_found, per,
                                                     read.diagnostics.warnings)
            inputs = None
            del whole
        else:
            from fpreplay.replay.render.report_inputs import streamed_report

            never = analyze_doc["never_completed"]["irps"]
            cmp, inc_doc, inputs = streamed_report(
                source, irps, incidents_found, [(r["irp"], r["arrive_ns"]) for r in never],
                policies, read=read, memory=simulation.memory.text)
        memory = simulation.memory.text
        s = whatif.sweep(source, kind, max_reserved=max_, budget_ns=budget, events=read.events,
                         settings=settings)
        rec = whatif.recommend(cmp, source, events=read.events, settings=settings, sized=s)
    compare_doc = render_json.compare_document(read.inputs, memory, cmp,
                                               read.diagnostics.warnings, recommendation=rec)
    sweep_doc = render_json.sweep_document(read.inputs, memory, s, read.diagnostics.warnings)
    html = render_report(analyze_doc, compare_doc, sweep_doc, inc_doc, cmp,
                         args=shell_words(trace, simulation),
                         queue_ops=_queue_operations(read.events),
                         trace_start_ns=read.trace_start_ns, traced=traced, inputs=inputs)
    write_output(lambda tmp: tmp.write_text(html, encoding="utf-8"), output, trace.inputs)
    warnings = [*compare_doc["warnings"], *sweep_doc["warnings"], *inc_doc["warnings"]]
    print_warnings(list(dict.fromkeys(warnings)), quiet)
    if not quiet:
        stderr_console().print(f"wrote {output}", markup=False)
