"""The library: what the commands answer, as polars DataFrames, in three lines.

    >>> import fpreplay
    >>> trace = fpreplay.open("traces/samples/a-paging-storm/trace.etl")
    >>> trace.compare(["always:8", "paging:8"]).select("policy", "rescued", "still_failed").rows()
    [('actual', 0, 279), ('always:8', 279, 0), ('paging:8', 210, 69)]

`open` reads nothing: each table is read or computed the first time it is asked for, then kept.
The tables are the ones the commands print or write with `-o`, computed by the same functions
(parsers.read_inputs, lifecycles.read_lifecycles, lifecycles.detect_incidents, replay.whatif), so
the library and the CLI give the same numbers. docs/library.md is the guide.

Errors are fpreplay.errors: InputError for an input that cannot be read (file, byte offset),
ConfigError for a value that is wrong (a policy, a duration, a time zone).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

import polars as pl

from fpreplay.errors import ConfigError, InputError
from fpreplay.units import TimeBound, ordered_bounds, parse_duration_ns, parse_time_bound

if TYPE_CHECKING:
    from fpreplay.engine import DriverModel, Policy
    from fpreplay.parsers import ReadOptions, TraceRead
    from fpreplay.replay import whatif

__all__ = ["open", "Trace", "Recommendation", "summary_frame"]

PathLike = Union[str, "os.PathLike[str]"]
Duration = Union[str, int]          # "2ms", or nanoseconds
TimeLike = Union[str, float, int]   # seconds after the trace start, "1500ms", "05:06:07.123"
PolicyLike = Union[str, "Policy"]   # "always:8", "paging:4", "examine:8:paging OR major = 4"

_STDIN = "-"


def _ns(value: Duration | None, what: str) -> int | None:
    """A duration given as text with a unit ('2ms') or as integer nanoseconds."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"{what} {value}: must not be negative")
        return value
    return parse_duration_ns(value, what)


def _bound(value: TimeLike) -> TimeBound:
    return parse_time_bound(f"{value:g}" if isinstance(value, (int, float)) else str(value))


def _time_range(time_range: tuple[TimeLike, TimeLike] | None
                ) -> tuple[TimeBound, TimeBound] | None:
    if time_range is None:
        return None
    if len(time_range) != 2:
        raise ConfigError(f"time range {time_range!r}: expected two times (T1, T2)")
    t1, t2 = (_bound(t) for t in time_range)
    if not ordered_bounds(t1, t2):
        raise ConfigError(f"time range {t1.text} {t2.text}: expected T1 < T2 (0 <= T1 for "
                          "times after the trace start)")
    return t1, t2


def open(paths: PathLike | Sequence[PathLike], *, tz: str | None = None,
         tmf: Sequence[PathLike] = (), providers: Sequence[str] = (),
         time_range: tuple[TimeLike, TimeLike] | None = None,
         driver: PathLike | DriverModel | None = None,
         gap: Duration | None = None) -> Trace:
    """A trace to ask questions of; nothing is read until a table is asked for.

    paths: one input or several, merged on one timeline (a kernel .etl and the driver's IFR
    dump); any format `fpreplay formats` lists; "-" is standard input.
    tz: time zone of text inputs whose clock is local time ("Europe/Berlin", "+02:00").
    tmf: directories of TMF files for WPP messages. providers: TraceLogging providers to decode
    by name. time_range: only events between two times, as `--range` takes them (seconds after
    the trace start, "1500ms", or UTC clock times "05:06:07.123"). driver: the driver model, a
    TOML file (contract section 5) or a DriverModel; None is one default queue. gap: signals
    closer than this belong to one incident (default 500ms).

    The values are checked now (a mistyped zone raises ConfigError here, a missing file
    InputError), the inputs read later."""
    from fpreplay.engine import DriverModel, load_driver_model
    from fpreplay.parsers import ReadOptions
    from fpreplay.parsers.text.common import parse_tz

    names = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not names:
        raise ConfigError("no input to open: give at least one trace")
    for p in names:
        if str(p) != _STDIN and not Path(p).exists():
            raise InputError(p, "no such file")
    parse_tz(tz)
    options = ReadOptions(tmf_dirs=[Path(d) for d in tmf], providers=list(providers), tz=tz,
                          time_range=_time_range(time_range))
    if not isinstance(driver, DriverModel):
        driver = load_driver_model(None if driver is None else Path(driver))
    return Trace([Path(p) if str(p) != _STDIN else Path(_STDIN) for p in names], options,
                 driver, _ns(gap, "incident gap"))


@dataclass(frozen=True)
class Recommendation:
    """The one recommendation every command gives (replay/whatif/recommend.py: `rule` says it in
    words). policy: the --policy to use, None when no reserve is needed or none was compared;
    trade_off: each size of the kind against IRPs parked and their p99 park wait."""

    policy: str | None
    kind: str | None
    reserved: int | None
    budget_ns: int | None
    rule: str = field(repr=False)
    trade_off: pl.DataFrame = field(repr=False)

    @classmethod
    def of(cls, rec: whatif.Recommendation) -> Recommendation:
        d = rec.as_dict()
        trade = pl.DataFrame(d["trade_off"], schema={"reserved": pl.Int64, "parked": pl.Int64,
                                                     "park_wait_p99_ns": pl.Int64})
        return cls(d["policy"], d["kind"], d["reserved"], d["budget_ns"], d["rule"], trade)


_SUMMARY_SCHEMA = {
    "policy": pl.String, "rescued": pl.Int64, "still_failed": pl.Int64, "regressed": pl.Int64,
    "parked": pl.Int64, "park_wait_p50_ns": pl.Int64, "park_wait_p99_ns": pl.Int64,
    "park_wait_max_ns": pl.Int64, "cancelled": pl.Int64, "invalid_state": pl.Int64,
    "reserve_high_water": pl.Int64,
}
_WAIT = {"p50": "park_wait_p50_ns", "p99": "park_wait_p99_ns", "max": "park_wait_max_ns"}


def _flat(row: dict) -> dict:
    """A compare row (contract section 7) flattened: park_wait_ns.p99 -> park_wait_p99_ns."""
    out = {k: v for k, v in row.items() if k not in ("park_wait_ns", "range")}
    out.update({_WAIT[k]: v for k, v in (row.get("park_wait_ns") or {}).items() if k in _WAIT})
    return out


def summary_frame(rows: list[dict]) -> pl.DataFrame:
    """Compare rows (the `policies` of `compare --json`, with `observed` first) as one frame.
    With several seeds run, each figure is the median and `<figure>_min` / `<figure>_max` give
    its range over the seeds."""
    flat = [_flat(r) for r in rows]
    ranges = [_flat(r["range"]) if r.get("range") else {} for r in rows]
    frame = pl.DataFrame([{k: f.get(k) for k in _SUMMARY_SCHEMA} for f in flat],
                         schema=_SUMMARY_SCHEMA)
    spread = sorted({k for r in ranges for k in r}, key=list(_SUMMARY_SCHEMA).index)
    if not spread:
        return frame
    return frame.with_columns(
        pl.Series(f"{k}_{end}", [(r.get(k) or {}).get(end) for r in ranges], dtype=pl.Int64)
        for k in spread for end in ("min", "max"))


@dataclass
class _Read:
    """What one read of the inputs gave (the lifecycle read: the CLI's load_irps)."""

    read: TraceRead
    irps: pl.DataFrame
    incidents: pl.DataFrame | None = None


@dataclass
class _Asked:
    """Results computed so far, by their arguments, and the warnings they gave."""

    comparisons: dict[tuple, whatif.Comparison] = field(default_factory=dict)
    sweeps: dict[tuple, whatif.Sweep] = field(default_factory=dict)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def warn(self, stage: str, messages: list[str]) -> None:
        for m in messages:
            if (stage, m) not in self.warnings:
                self.warnings.append((stage, m))


class Trace:
    """One or more inputs on one timeline, read when a table is first asked for. Make one with
    `fpreplay.open`. Tables: `events`, `irps`, `incidents`, `warnings`; what-ifs: `compare`,
    `per_irp`, `sweep`, `recommend`. Each result is computed once and kept."""

    def __init__(self, inputs: list[Path], options: ReadOptions, driver: DriverModel,
                 gap_ns: int | None):
        self.inputs: list[Path] = inputs
        self._options = options
        self._driver = driver
        self._gap_ns = gap_ns
        self._events: TraceRead | None = None
        self._lifecycles: _Read | None = None
        self._asked = _Asked()

    def __repr__(self) -> str:
        names = ", ".join(str(p) for p in self.inputs)
        state = "read" if self._lifecycles or self._events else "not read yet"
        return f"<fpreplay.Trace {names} ({state})>"

    # --- what happened -------------------------------------------------------------------------
    def _lifecycle_read(self) -> _Read:
        if self._lifecycles is None:
            from fpreplay.lifecycles import read_lifecycles
            from fpreplay.parsers import InputStream

            read, irps = read_lifecycles(InputStream(self.inputs, self._options))
            self._lifecycles = _Read(read, irps)
        return self._lifecycles

    @property
    def events(self) -> pl.DataFrame:
        """The decoded, normalized events (schema fpreplay.events/1: `fpreplay events -o`)."""
        if self._events is None:
            from fpreplay.parsers import read_inputs

            self._events = read_inputs(self.inputs, self._options)
        return self._events.events

    @property
    def irps(self) -> pl.DataFrame:
        """One lifecycle per IRP instance (schema fpreplay.irps/1: `fpreplay irps -o`)."""
        return self._lifecycle_read().irps

    @property
    def incidents(self) -> pl.DataFrame:
        """One row per low-memory incident (the table `fpreplay incidents -o` writes)."""
        got = self._lifecycle_read()
        if got.incidents is None:
            from fpreplay.lifecycles import DEFAULT_GAP_NS, detect_incidents

            gap = DEFAULT_GAP_NS if self._gap_ns is None else self._gap_ns
            got.incidents = detect_incidents(got.read.events, got.irps, gap_ns=gap)
        return got.incidents

    @property
    def actual(self) -> dict[str, int]:
        """IRPs per actual outcome (ok, alloc_failed, refused, reserved, ...): `analyze`'s."""
        from fpreplay.replay import whatif

        return whatif.actual_counts(self.irps)

    @property
    def warnings(self) -> pl.DataFrame:
        """What reading assumed, repaired or could not tell, then what each what-if asked so far
        assumed: columns `stage` (read, compare, sweep) and `warning`, in the order given."""
        got = self._lifecycle_read()
        rows = [("read", w) for w in got.read.diagnostics.warnings]
        if self._events is not None:
            rows += [("read", w) for w in self._events.diagnostics.warnings
                     if ("read", w) not in rows]
        rows += [r for r in self._asked.warnings if r not in rows]
        return pl.DataFrame(rows, schema={"stage": pl.String, "warning": pl.String},
                            orient="row")

    # --- what a policy would have done ---------------------------------------------------------
    def _settings(self, memory: str, service_time: Duration | None, seed: int | None
                  ) -> whatif.WhatIfSettings:
        from fpreplay.engine import parse_memory
        from fpreplay.replay import whatif

        return whatif.WhatIfSettings(driver=self._driver, memory=parse_memory(memory),
                                     service_time_ns=_ns(service_time, "service time"),
                                     seed=seed)

    def _policies(self, policies: Sequence[PolicyLike] | None,
                  settings: whatif.WhatIfSettings) -> list[Policy]:
        """The policies given, checked as a set; none given: no forward progress, and always
        and paging sized to the trace's peak demand (what `incidents` and `report` compare)."""
        from fpreplay.replay import whatif

        if policies is None:
            got = self._lifecycle_read()
            return whatif.default_policies(got.irps, settings, got.read.events)
        if isinstance(policies, str):
            policies = [policies]
        return whatif.parse_policies(policies)

    def _compare(self, policies: Sequence[PolicyLike] | None, memory: str,
                 service_time: Duration | None, seed: int | None
                 ) -> tuple[whatif.Comparison, whatif.WhatIfSettings]:
        from fpreplay.replay import whatif

        settings = self._settings(memory, service_time, seed)
        parsed = self._policies(policies, settings)
        key = (tuple(p.text for p in parsed), memory, settings.service_time_ns, seed)
        if key not in self._asked.comparisons:
            got = self._lifecycle_read()
            cmp = whatif.compare(got.irps, parsed, events=got.read.events, settings=settings)
            self._asked.comparisons[key] = cmp
            self._asked.warn("compare", cmp.warnings)
        return self._asked.comparisons[key], settings

    def compare(self, policies: Sequence[PolicyLike] | None = None, *,
                memory: str = "observed", service_time: Duration | None = None,
                seed: int | None = None) -> pl.DataFrame:
        """Each policy replayed against what actually happened: one row per policy, after a first
        row `actual` (what the trace shows), as `fpreplay compare` prints it. Columns: policy,
        rescued, still_failed, regressed, parked, park_wait_p50_ns / _p99_ns / _max_ns (of the
        IRPs parked and then served), cancelled, invalid_state, reserve_high_water.

        policies: "none", "always:N", "paging:N", "examine:N:SQL" (or engine Policy objects);
        None compares none, always:PEAK and paging:PEAK. memory: what fails in the what-if
        (observed, fail-all, verifier-random[:SEED], random:P[:SEED], window). service_time:
        how long the driver holds an IRP the trace never saw served ("2ms"; None: the median
        observed). seed: the simulation's seed."""
        cmp, _ = self._compare(policies, memory, service_time, seed)
        return summary_frame([cmp.observed, *cmp.summaries])

    def per_irp(self, policies: Sequence[PolicyLike] | None = None, *,
                memory: str = "observed", service_time: Duration | None = None,
                seed: int | None = None) -> pl.DataFrame:
        """The per-IRP table of the same comparison (`fpreplay compare -o`): each IRP's actual
        outcome, then per policy `<policy>:outcome`, `:status`, `:parked`, `:park_wait_ns` and
        `:verdict` (rescued, still_failed, regressed, same). Same arguments as `compare`."""
        cmp, _ = self._compare(policies, memory, service_time, seed)
        return cmp.per_irp

    def _sweep(self, kind: str, max_reserved: int | None, budget_ns: int | None,
               settings: whatif.WhatIfSettings, memory: str, seed: int | None) -> whatif.Sweep:
        from fpreplay.replay import whatif

        key = (kind, max_reserved, budget_ns, memory, settings.service_time_ns, seed)
        if key not in self._asked.sweeps:
            got = self._lifecycle_read()
            s = whatif.sweep(got.irps, kind, max_reserved=max_reserved, budget_ns=budget_ns,
                             events=got.read.events, settings=settings)
            self._asked.sweeps[key] = s
            self._asked.warn("sweep", s.warnings)
        return self._asked.sweeps[key]

    def sweep(self, kind: str = "always", *, max_reserved: int | None = None,
              budget: Duration | None = None, memory: str = "observed",
              service_time: Duration | None = None, seed: int | None = None) -> pl.DataFrame:
        """Outcomes against reserve sizes 1..max_reserved (default: the trace's peak demand), one
        row per size tried, as `fpreplay sweep` prints it and `sweep -o` writes it: reserved,
        rescued, still_failed, regressed, parked, reserve_high_water, park_wait_p50_ns /
        _p99_ns / _max_ns. kind: always, paging or examine:SQL. budget: a park-wait budget
        ("2ms"), which `recommend` sizes against. Other arguments as `compare`."""
        settings = self._settings(memory, service_time, seed)
        s = self._sweep(kind, max_reserved, _ns(budget, "park-wait budget"), settings, memory,
                        seed)
        return s.rows

    def recommend(self, policies: Sequence[PolicyLike] | None = None, *,
                  budget: Duration | None = None, memory: str = "observed",
                  service_time: Duration | None = None, seed: int | None = None
                  ) -> Recommendation:
        """The policy to use, by the rule every command uses (Recommendation.rule): the compared
        kind that leaves the fewest IRPs failing, with the smallest reserve at which no IRP
        parks; with a budget ("2ms"), sized instead by a sweep of that kind to the smallest
        reserve whose p99 park wait fits it (what `report --budget` recommends)."""
        from fpreplay.replay import whatif

        cmp, settings = self._compare(policies, memory, service_time, seed)
        got = self._lifecycle_read()
        rec = whatif.recommend(cmp, got.irps, events=got.read.events, settings=settings)
        budget_ns = _ns(budget, "park-wait budget")
        if budget_ns is not None and rec.kind is not None:
            s = self._sweep(rec.kind, None, budget_ns, settings, memory, seed)
            rec = whatif.recommend(cmp, got.irps, events=got.read.events, settings=settings,
                                   sized=s)
        return Recommendation.of(rec)
