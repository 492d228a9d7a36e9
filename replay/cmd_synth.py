"""`fpreplay synth SCENARIO.toml -o trace.etl`: write a real-format trace of a scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from fpreplay.errors import FpreplayError
from fpreplay.replay.app import JsonOpt, QuietOpt, app, stderr_console


@app.command()
def synth(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML): devices and queues, "
                                             "arrivals, memory pressure, queue operations.",
                                             show_default=False)],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="The .etl to write.")]
    = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Override the scenario's seed.")]
    = None,
    ifr: Annotated[Optional[Path], typer.Option("--ifr", help="Also write the in-flight-recorder "
                                                "text dump here (default: beside the trace when "
                                                "the scenario asks for one).")] = None,
    truth: Annotated[Optional[Path], typer.Option("--truth", help="Where to write the truth JSON "
                                                  "(default: beside the trace).")] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write a real-format ETW trace of a scenario, plus the truth it encodes."""
    from fpreplay.synth import synthesize

    if output is None:
        raise FpreplayError("-o FILE.etl is required")
    result = synthesize(scenario, output, seed=seed, ifr=ifr, truth=truth)
    t = result.truth
    summary = {"schema": "fpreplay.synth/1", "scenario": str(scenario), "output": str(output),
               "ifr": str(result.ifr) if result.ifr else None,
               "truth": str(result.truth_path) if result.truth_path else None,
               "seed": t["seed"], "records": t["records"], "events_lost": t["events_lost"],
               "irps": t["irps"], "actual": t["actual"]}
    if json_:
        print(json.dumps(summary))
        return
    if not quiet:
        counts = ", ".join(f"{k} {v}" for k, v in t["actual"].items() if v)
        stderr_console().print(f"wrote {output}: {t['records']} records, {t['irps']} IRPs "
                               f"({counts or 'none'})" + (f"; {result.ifr}" if result.ifr else "")
                               + f"; truth in {result.truth_path}", markup=False)
