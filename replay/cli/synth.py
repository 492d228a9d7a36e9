"""`fpreplay synth SCENARIO.toml -o trace.etl`: write a real-format trace of a scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from fpreplay.errors import FpreplayError
from fpreplay.replay.cli.app import app, refuse_overwriting_inputs, stderr_console
from fpreplay.replay.cli.options import JsonOpt, QuietOpt, file_option

EtlOutOpt = file_option("-o", "--output", metavar="FILE.etl", help="The .etl to write.")
IfrOpt = file_option("--ifr", help="Also write the in-flight-recorder text dump here (default: "
                                   "beside the trace when the scenario asks for one).")
TruthOpt = file_option("--truth", help="Where to write the truth JSON (default: beside the "
                                       "trace).")


@app.command(short_help="A real-format trace (and its truth) from a scenario.")
def synth(
    scenario: Annotated[Path, typer.Argument(
        metavar="SCENARIO.toml", show_default=False,
        help="Scenario file (TOML): devices and queues, arrivals, memory pressure, queue "
             "operations.")],
    output: EtlOutOpt = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", metavar="N", help="Override the scenario's seed.")] = None,
    ifr: IfrOpt = None,
    truth: TruthOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write a real-format ETW trace of a scenario, plus the truth it encodes.

    \b
    Examples:
      fpreplay synth traces/samples/b-pool-ran-dry/scenario.toml -o out/trace.etl
      fpreplay synth my-scenario.toml --seed 7 --ifr out/ifr.txt -o out/trace.etl
    """
    from fpreplay.synth import synthesize

    if output is None:
        raise FpreplayError("-o FILE.etl is required")
    # Nothing it writes may be the scenario it reads (the truth and IFR dump land beside the
    # trace unless named).
    beside = output.with_name if output.stem == "trace" else (
        lambda name: output.with_name(f"{output.stem}.{name}"))
    for path in (output, ifr or beside("ifr.txt"), truth or beside("truth.json")):
        refuse_overwriting_inputs(path, [scenario])
    # `-o out/trace.etl` as the samples README shows it: make the folder rather than refuse.
    for path in (output, ifr, truth):
        if path is not None:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise FpreplayError(f"{path}: cannot write: {e.strerror or e}") from None
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
