"""The options commands share, each defined once and parsed once, before any input is read.

Single options carry their parser (`--gap 2ms` arrives as nanoseconds, `--policy` as Policy
objects). Options that travel together form a group: a function whose parameters are the
options and whose result is one typed object (`Trace`, `Simulation`). A command takes the group
as one parameter annotated with that type; `option_groups` shows typer the group's options in
its place and hands the command the object.

The library raises ConfigErrors about a value in its own words ("duration '2x': ..."); the
parsers here add the option's name once: "--gap: duration '2x': ...".
"""

from __future__ import annotations

import functools
import importlib
import inspect
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, TypeVar, get_type_hints

import typer

from fpreplay.errors import ConfigError
from fpreplay.units import TimeBound, ordered_bounds, parse_duration_ns, parse_time_bound

if TYPE_CHECKING:
    from fpreplay.engine import MemoryModel
    from fpreplay.replay.whatif import WhatIfSettings

T = TypeVar("T")


def option_value(option: str, parse: Callable[..., T], value) -> T:
    """parse(value), a ConfigError about the value prefixed with the option that gave it."""
    try:
        return parse(value)
    except ConfigError as e:
        raise ConfigError(f"{option}: {e}") from None


def _parser(option: str, parse: Callable | str) -> Callable:
    """The option's parser; given as "module:function", the module is imported when the option
    is parsed, not when the command is declared (`fpreplay --help` imports no engine)."""
    if isinstance(parse, str):
        return functools.partial(_parse_with, option, parse)
    return functools.partial(option_value, option, parse)


def _parse_with(option: str, spec: str, value):
    module, name = spec.split(":")
    return option_value(option, getattr(importlib.import_module(module), name), value)


# --- single options -----------------------------------------------------------------------------
def file_option(*names: str, metavar: str = "FILE", help: str) -> Any:
    """The declaration of an optional file option: a Path, or None when not given."""
    return Annotated[Optional[Path], typer.Option(*names, metavar=metavar, help=help)]


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
OutOpt = file_option("-o", "--output", help="Write a table: .parquet, .csv, .ndjson or .jsonl.")
ConfigOpt = file_option("--config", metavar="FILE.toml",
                        help="Driver model (TOML): queues, routing, dispatch types, policies.")
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no notes on "
                                        "stderr.")]
# Parsed values are the library's objects (engine.Policy, whatif.SweepKind); declared as Any so
# that declaring the commands imports neither.
PolicyOpt = Annotated[Optional[list[Any]], typer.Option(
    "--policy", metavar="P", parser=_parser("--policy", "fpreplay.engine:parse_policy"),
    help="none, always:N, paging:N or examine:N:SQL; repeatable.")]
ExplainOpt = Annotated[Optional[Any], typer.Option(
    "--explain", metavar="IRP[@TIME]",
    parser=_parser("--explain", "fpreplay.replay.whatif:parse_irp_at"),
    help="Tell one IRP's story under each policy: its address (0xffffa001…), the IRPs that a "
         "policy changes first; ADDRESS@05:06:07.123 picks the one in flight then.")]
KindOpt = Annotated[Any, typer.Option(
    "--kind", metavar="K", parser=_parser("--kind", "fpreplay.replay.whatif:sweep_kind"),
    help="Policy kind to size: always, paging or examine:SQL.")]
MaxOpt = Annotated[Optional[int], typer.Option(
    "--max", metavar="N", min=1, help="Largest reserve size to try (default: the peak demand).")]
BudgetOpt = Annotated[Optional[int], typer.Option(
    "--budget", metavar="DURATION", parser=_parser("--budget", parse_duration_ns),
    help="Park-wait budget, e.g. 2ms: report the smallest reserve whose p99 park wait fits it.")]
GapOpt = Annotated[Optional[int], typer.Option(
    "--gap", metavar="DURATION", parser=_parser("--gap", parse_duration_ns),
    help="Signals closer than this belong to one incident (default 500ms).")]


# --- groups -------------------------------------------------------------------------------------
_GROUPS: dict[type, Callable] = {}


def option_group(build: Callable[..., T]) -> Callable[..., T]:
    """Register `build` as the parser of the group whose type it returns."""
    _GROUPS[get_type_hints(build)["return"]] = build
    return build


def option_groups(command: Callable) -> Callable:
    """Let `command` take option groups: typer sees each group's options where the group's
    parameter stands; the command receives what the group's function built from them."""
    hints = get_type_hints(command, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[Callable, list[str]]] = {}
    for p in inspect.signature(command).parameters.values():
        build = _GROUPS.get(hints[p.name])
        if build is None:
            params.append(p.replace(annotation=hints[p.name], kind=p.KEYWORD_ONLY))
            continue
        build_hints = get_type_hints(build, include_extras=True)
        names = list(inspect.signature(build).parameters)
        params += [q.replace(annotation=build_hints[q.name], kind=q.KEYWORD_ONLY)
                   for q in inspect.signature(build).parameters.values()]
        groups[p.name] = (build, names)

    @functools.wraps(command)
    def run(**values):
        for name, (build, names) in groups.items():
            values[name] = build(**{n: values.pop(n) for n in names})
        return command(**values)

    run.__signature__ = inspect.Signature(params)
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run


def shell_words(*groups) -> str:
    """The inputs and options as the user gave them, for the next command we suggest."""
    return " ".join(shlex.quote(w) for g in groups for w in g.words)


# Where the answer goes (contract section 1).
@dataclass(frozen=True)
class Answer:
    output: Path | None
    json: bool
    quiet: bool


@option_group
def answer_options(output: OutOpt = None, json_: JsonOpt = False,
                   quiet: QuietOpt = False) -> Answer:
    return Answer(output=output, json=json_, quiet=quiet)


# The inputs and how to read them (contract section 2).
@dataclass(frozen=True)
class Trace:
    inputs: list[Path]
    tmf: list[Path]
    tz: str | None
    providers: list[str]
    time_range: tuple[TimeBound, TimeBound] | None   # --range as written

    @property
    def range_s(self) -> tuple[float, float] | None:
        """--range as seconds after the trace start, when both ends were written so (batch runs
        each trace with them); None without --range."""
        if self.time_range is None:
            return None
        if any(b.offset_ns is None for b in self.time_range):
            raise ConfigError(f"--range {self.time_range[0].text} {self.time_range[1].text}: "
                              "here only times after each trace's start (1.5, 1500ms), not "
                              "clock times")
        return tuple(b.offset_ns / 1e9 for b in self.time_range)

    @property
    def words(self) -> list[str]:
        words = [str(p) for p in self.inputs]
        for d in self.tmf:
            words += ["--tmf", str(d)]
        if self.tz:
            words += ["--tz", self.tz]
        for name in self.providers:
            words += ["--provider", name]
        if self.time_range:
            words += ["--range", *(b.text for b in self.time_range)]
        return words


@option_group
def trace_options(
    inputs: Annotated[list[Path], typer.Argument(
        metavar="INPUT", show_default=False,
        help="Traces: .etl/.etl.zip/.etl.gz, IFR or tracefmt text, tracerpt CSV/XML, xperf "
             "dumper text, or fpreplay event tables; - reads standard input.")],
    tmf: Annotated[Optional[list[Path]], typer.Option(
        "--tmf", metavar="DIR", help="Directory of TMF files for WPP messages.")] = None,
    tz: Annotated[Optional[str], typer.Option(
        "--tz", metavar="ZONE",
        help="Time zone of text inputs whose clock is local time (e.g. Europe/Berlin, "
             "+02:00).")] = None,
    provider: Annotated[Optional[list[str]], typer.Option(
        "--provider", metavar="NAME",
        help="Also decode this TraceLogging provider by name.")] = None,
    range_: Annotated[Optional[tuple[str, str]], typer.Option(
        "--range", metavar="T1 T2",
        help="Only events between T1 and T2: after the trace start (1.5 = seconds, 1500ms) or "
             "UTC clock times as the tables print them (05:06:07.123, "
             "2026-12-05T05:06:07Z).")] = None,
) -> Trace:
    """Checked before a byte is read: a user who mistyped --tz hears about it even when no input
    needs it (it would otherwise be ignored silently). read_inputs checks --tmf itself."""
    if tz is not None:
        from fpreplay.parsers.text.common import parse_tz

        parse_tz(tz)   # its error names --tz already
    time_range = None
    if range_ is not None:
        t1, t2 = (option_value(f"--range {' '.join(range_)}", parse_time_bound, t)
                  for t in range_)
        if not ordered_bounds(t1, t2):
            raise ConfigError(f"--range {' '.join(range_)}: expected T1 < T2 (0 <= T1 for "
                              "times after the trace start)")
        time_range = (t1, t2)
    return Trace(inputs=list(inputs), tmf=list(tmf or []), tz=tz, providers=list(provider or []),
                 time_range=time_range)


# What every simulation of the command shares (contract sections 5 and 6), parsed once.
@dataclass(frozen=True)
class Simulation:
    settings: WhatIfSettings
    words: list[str]

    @property
    def memory(self) -> MemoryModel:
        return self.settings.memory


@option_group
def simulation_options(
    config: ConfigOpt = None,
    memory: Annotated[str, typer.Option(
        "--memory", metavar="MODEL",
        help="What fails in the what-if: observed, fail-all, verifier-random[:SEED], "
             "random:P[:SEED], window.")] = "observed",
    service_time: Annotated[Optional[str], typer.Option(
        "--service-time", metavar="DURATION",
        help="How long the driver holds an IRP the trace never saw served, e.g. 2ms.")] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", metavar="N",
        help="Seed for the simulation's randomness (default 0; verifier-random without a seed "
             "runs seeds 1-5 and reports ranges).")] = None,
) -> Simulation:
    from fpreplay.engine import load_driver_model, parse_memory
    from fpreplay.replay import whatif

    settings = whatif.WhatIfSettings(
        driver=option_value("--config", load_driver_model, config),
        memory=option_value("--memory", parse_memory, memory),
        service_time_ns=(None if service_time is None else
                         option_value("--service-time", parse_duration_ns, service_time)),
        seed=seed)
    words = []
    if config:
        words += ["--config", str(config)]
    if memory and memory != "observed":
        words += ["--memory", memory]
    if service_time:
        words += ["--service-time", service_time]
    if seed is not None:
        words += ["--seed", str(seed)]
    return Simulation(settings=settings, words=words)
