"""The scenario file (TOML): what the synthesizer is asked to make happen.

    [trace]      seed, start (UTC, RFC 3339), duration, cpus, buffer_size, compressed, provider
                 (the driver's TraceLogging provider name), kernel (which kernel event families:
                 "diskio", "driver", "fileio", "opend"; below), instrumentation (driver
                 TraceLogging events), ifr (also write the in-flight-recorder text dump), wpp (the
                 framework's messages also as WPP records in the .etl, TMF files beside it),
                 lost_events, completions ("staggered" or "one-instant"; below)
    [[device]]   one table per WDFDEVICE (as many as wanted, each with its own queues, reserved
                 pools and queue states, forward-progress.md 3.7): name (unique: the Device
                 field of the driver's events), disk (the DiskIo disk number), and its queues as
                 [[device.queue]]: name, policy ("none",
                 "always:N", "paging:N", "examine:N:SQL" - the driver's
                 EvtIoWdmIrpForForwardProgress as a rule over major, minor, irp_flags, bytes,
                 offset, paging), majors (which IRP major functions it receives; the first
                 queue without `majors` gets the rest)
    [[arrivals]] device, start, end, rate (IRPs/s, Poisson), mix ({read = .7, write = .3}: weights
                 by major function), sizes, paging (share of IRPs with IRP_PAGING_IO), service (mean
                 service time, exponential; "fixed:2ms" for a constant), priority (0-7),
                 threads (how many threads issue them; a thread's IRPs share its file object, so
                 its IRP_MJ_CLEANUP cancels those of them that are parked; default: thousands)
    [[pressure]] start, end, fail ("always", "random:P", or a table {read = P, write = P}),
                 available_mb (the memory gauge reported while it lasts); memory is the
                 machine's, so a window fails request allocations on every device
    [[queue_op]] at, device, queue, op ("purge", "stop", "stop_purge", "drain", "start")
    [truth]      policies: the policies whose `fpreplay compare` result truth.json states (each
                 device with its own instance of the policy, its own pool);
                 sweep = { kind = "always", max = N }: the `fpreplay sweep --max N` rows too

Kernel families: "diskio" (DiskIo Init and completion of reads, writes and flushes), "driver"
(DrvMjFnCall / DrvComplReq), "fileio" (the file system's own IRP above each read/write, another
address, with FileIo Read/Write and an OpEnd carrying the status), "opend" (FileIo/OpEnd naming the
driver's IRP itself, with its final status, as a writer that logs every source per IRP does).
`completions = "staggered"` (default) writes an IRP's completion records a few microseconds apart
on one or two CPUs; "one-instant" writes them all at the instant the IRP completes, in an order
drawn from the seed, each on another CPU (as far as there are CPUs): the DiskIo completion,
DrvComplReq, the OpEnd and the driver's IrpComplete, whichever the trace has; the framework's own
completing line (IFR/WPP) joins them at that instant on the CPU of the call that writes it.
Every IRP then still has exactly one lifecycle.

KMDF routes by major function (forward-progress.md 3.7): only READ, WRITE, DEVICE_CONTROL and
INTERNAL_DEVICE_CONTROL reach a queue (and so a policy, the reserved pool, parking and the queue's
state); a create needs an ordinary request; every other major (FLUSH_BUFFERS, CLEANUP, ...) goes
round the queues, so memory pressure never fails it and a purged queue never refuses it.

Durations are strings with a unit, "2ms", "1.5s", "250us", "10ns" (fpreplay.units, the one grammar
of every duration fpreplay reads; a bare number is refused). IRP major functions are written as
their IRP_MJ names ("read", "IRP_MJ_FLUSH_BUFFERS", any case), a few short names ("flush", "fsctl",
"ioctl", "internal_ioctl", "scsi") or numbers. Every problem is a ConfigError naming the scenario
file and the key.

Limits (what can be generated in bounded time and memory; beyond them the scenario is refused):
a rate is at most 1,000,000 IRPs/s (arrivals are at least 1 us apart); all arrivals together
ask for at most 2,000,000 IRPs on average (rate x window); duration is at most 86400s (24
hours); mix weights are finite, none negative and at least one positive; counts (cpus 1..64,
threads 1..3840, sizes 0..4 GiB-1, disk 0..2^32-1, lost_events 0..2,000,000, sweep max
1..4096) are integers in range.
An examine rule (a queue's or a [truth] policy's) is vetted by fpreplay.examine_rule, as the
engine vets one: columns, literals, operators and a few scalar functions, nothing that reaches
a file.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from fpreplay.errors import ConfigError
from fpreplay.examine_rule import vet_examine_rule
from fpreplay.schema import IRP_COLUMNS, IRP_MJ_NAMES
from fpreplay.units import parse_duration_ns

# Short names scenarios may use for a few majors, beside the IRP_MJ names themselves.
MAJOR_ALIASES = {"flush": "FLUSH_BUFFERS", "fsctl": "FILE_SYSTEM_CONTROL",
                 "ioctl": "DEVICE_CONTROL", "internal_ioctl": "INTERNAL_DEVICE_CONTROL",
                 "scsi": "INTERNAL_DEVICE_CONTROL"}
_MAJOR_BY_NAME = {name.lower(): code for code, name in enumerate(IRP_MJ_NAMES)}
_MAJOR_BY_NAME.update({a: _MAJOR_BY_NAME[n.lower()] for a, n in MAJOR_ALIASES.items()})
_MAX_MAJOR = len(IRP_MJ_NAMES) - 1
QUEUE_OPS = ("purge", "stop", "stop_purge", "drain", "start")
KERNEL_FAMILIES = ("diskio", "driver", "fileio", "opend")
COMPLETIONS = ("staggered", "one-instant")
# What can be generated (the module docstring's limits): arrivals are at least 1 us apart, and
# every IRP is a simulated object with its records in memory.
MAX_RATE = 1_000_000             # IRPs per second, per [[arrivals]]
MAX_IRPS = 2_000_000             # IRPs all arrivals ask for on average (rate x window, summed)
MAX_DURATION_NS = 86_400 * 10**9  # 24h ([[pressure]] samples the memory gauge every 100 ms)
MAX_WEIGHT = 1e12                # a mix weight


def parse_major(value, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_MAJOR:
        return value
    key = str(value).lower().removeprefix("irp_mj_")
    if key in _MAJOR_BY_NAME:
        return _MAJOR_BY_NAME[key]
    try:
        n = int(str(value), 0)
    except ValueError:
        raise ConfigError(f"{where}: unknown IRP major function {value!r}") from None
    if not 0 <= n <= _MAX_MAJOR:
        raise ConfigError(f"{where}: IRP major function {value!r} out of range 0..0x{_MAX_MAJOR:X}")
    return n


@dataclass
class Policy:
    kind: str            # none | always | paging | examine
    reserve: int = 0
    rule: str | None = None   # examine: SQL over the IRP's lifecycle columns, true = use reserve
    sql: str | None = None    # the rule as vetted (fpreplay.examine_rule): what polars evaluates

    @classmethod
    def parse(cls, text: str, where: str, columns=None) -> "Policy":
        """`none`, `always:N`, `paging:N` or `examine:N:SQL`; an examine rule is vetted by the
        engine's vetter (fpreplay.examine_rule) over `columns` (default: the IRP attributes the
        synthesized driver's rule sees) before polars sees it."""
        text = str(text).strip()
        if text.lower() == "none":
            return cls("none", 0)
        m = re.fullmatch(r"(?is)(always|paging):(\d{1,9})|(examine):(\d{1,9}):(.+)", text)
        n = m and int(m.group(2) or m.group(4))
        if not m or n < 1:
            raise ConfigError(f"{where}: policy {text!r} must be none, always:N, paging:N or "
                              "examine:N:SQL (1 <= N <= 999999999)")
        if m.group(3):
            rule = m.group(5)
            try:
                sql = vet_examine_rule(rule, columns or EXAMINE_SAMPLE_ROW)
                if columns is None:
                    import polars as pl

                    pl.DataFrame(EXAMINE_SAMPLE_ROW).select(pl.sql_expr(sql))
            except ConfigError as e:
                raise ConfigError(f"{where}: examine rule: {e}") from None
            except Exception as e:   # polars raises several kinds for a bad expression
                raise ConfigError(f"{where}: examine rule {rule!r}: {e}".splitlines()[0]) from None
            return cls("examine", n, rule, sql)
        return cls(m.group(1).lower(), n)

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        return f"{self.kind}:{self.reserve}" + (f":{self.rule}" if self.rule else "")


# The IRP attributes the synthesized driver's Examine rule may test (the lifecycle columns of
# contract section 4 it knows when an IRP arrives).
EXAMINE_SAMPLE_ROW = {"major": [3], "minor": [0], "irp_flags": [0x43], "bytes": [4096],
                      "offset": [0], "paging": [True]}


@dataclass
class Queue:
    name: str
    policy: Policy
    majors: set[int] | None      # None: every major no other queue of the device claims
    handle: int = 0              # WDFQUEUE handle (bit-inverted object pointer)


@dataclass
class Device:
    name: str
    disk: int
    queues: list[Queue]
    handle: int = 0              # WDFDEVICE handle
    devobj: int = 0              # DEVICE_OBJECT address
    dispatch_routine: int = 0

    def queue_for(self, major: int) -> Queue:
        for q in self.queues:
            if q.majors is not None and major in q.majors:
                return q
        for q in self.queues:
            if q.majors is None:
                return q
        return self.queues[0]


@dataclass
class Arrivals:
    device: str
    start_ns: int
    end_ns: int
    rate: float
    mix: list[tuple[int, float]]
    sizes: list[int]
    paging: float
    service_ns: int
    service_fixed: bool
    priority: int
    threads: int | None          # None: any of ~4,000 threads; N: IRPs of N threads share file objects


@dataclass
class Pressure:
    start_ns: int
    end_ns: int
    fail_all: float | None                  # probability for every major, or None
    fail_by_major: dict[int, float]
    available_mb: int

    def fail_probability(self, major: int) -> float:
        if self.fail_all is not None:
            return self.fail_all
        return self.fail_by_major.get(major, 0.0)


@dataclass
class QueueOp:
    at_ns: int
    device: str
    queue: str
    op: str


@dataclass
class Scenario:
    path: Path
    seed: int
    start_unix_ns: int
    duration_ns: int
    cpus: int
    buffer_size: int
    compressed: bool
    provider: str
    kernel: set[str]
    instrumentation: bool
    ifr: bool
    wpp: bool
    lost_events: int
    completions: str
    devices: list[Device]
    arrivals: list[Arrivals]
    pressure: list[Pressure]
    queue_ops: list[QueueOp]
    truth_policies: list[str] = field(default_factory=list)
    truth_sweep: tuple[str, int] | None = None     # (kind, max N) for `fpreplay sweep`

    def device(self, name: str) -> Device:
        for d in self.devices:
            if d.name == name:
                return d
        raise ConfigError(f"{self.path}: no device named {name!r}")


def _get(table: dict, key: str, where: str, default=None, required: bool = False):
    if key in table:
        return table[key]
    if required:
        raise ConfigError(f"{where}: missing required key {key!r}")
    return default


def _num(value, where: str, kind=float):
    """A finite number from the scenario, or a ConfigError naming the key."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {value!r} is not a number")
    try:
        n = kind(value)
    except (TypeError, ValueError, OverflowError):
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{where}: {value!r} is not {what}") from None
    if kind is float and not math.isfinite(n):
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    return n


def _bounded(value, where: str, low: int, high: int) -> int:
    """An integer from the scenario within low..high, or a ConfigError naming the key."""
    n = _num(value, where, int)
    if not low <= n <= high:
        raise ConfigError(f"{where}: {n} outside {low:,}..{high:,}")
    return n


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _probability(value, where: str) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}: {value!r} is not a probability") from None
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"{where}: probability {p} outside 0..1")
    return p


def load(path: Path | str, seed: int | None = None) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read scenario: {e}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return from_dict(doc, path, seed)


def from_dict(doc: dict, path: Path, seed: int | None = None) -> Scenario:
    """The scenario a parsed TOML document describes, checked step by step; each problem is a
    ConfigError naming the file and the key."""
    where = str(path)
    _check_keys(doc, {"trace", "device", "arrivals", "pressure", "queue_op", "truth"}, where)
    sc = _trace(_table(doc, "trace", where), path, seed)
    sc.devices = [_device(d, i, where) for i, d in enumerate(_tables(doc, "device", where))]
    _check_devices(sc, where)
    sc.arrivals = [_arrivals(a, f"{where} [[arrivals]] #{i + 1}", sc)
                   for i, a in enumerate(_tables(doc, "arrivals", where))]
    _check_volume(sc, where)
    sc.pressure = [_pressure(p, f"{where} [[pressure]] #{i + 1}")
                   for i, p in enumerate(_tables(doc, "pressure", where))]
    sc.queue_ops = [_queue_op(o, f"{where} [[queue_op]] #{i + 1}", sc)
                    for i, o in enumerate(_tables(doc, "queue_op", where))]
    _truth(_table(doc, "truth", where), sc, where)
    return sc


def _table(doc: dict, key: str, where: str) -> dict:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


def _tables(doc: dict, key: str, where: str) -> list[dict]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: {key} must be [[{key}]] tables")
    return value


def _start_ns(start, tw: str) -> int:
    try:
        dt = start if isinstance(start, datetime) else datetime.fromisoformat(
            str(start).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{tw}: start {start!r} is not an RFC 3339 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 10**9 + dt.microsecond * 1000


def _trace(t: dict, path: Path, seed: int | None) -> Scenario:
    """[trace]: the Scenario with its trace-wide settings, no devices yet."""
    tw = f"{path} [trace]"
    _check_keys(t, {"seed", "start", "duration", "cpus", "buffer_size", "compressed", "provider",
                    "kernel", "instrumentation", "ifr", "wpp", "lost_events", "completions"}, tw)
    kernel_list = _get(t, "kernel", tw, ["diskio", "driver"])
    kernel = set(map(str, kernel_list)) if isinstance(kernel_list, list) else {str(kernel_list)}
    if kernel - set(KERNEL_FAMILIES):
        raise ConfigError(f"{tw}: kernel families must be among {', '.join(KERNEL_FAMILIES)}")
    cpus = _bounded(_get(t, "cpus", tw, 4), f"{tw} cpus", 1, 64)
    buffer_size = _num(_get(t, "buffer_size", tw, 65536), f"{tw} buffer_size", int)
    if buffer_size % 1024 or not 4096 <= buffer_size <= 1 << 20:
        raise ConfigError(f"{tw}: buffer_size must be a multiple of 1024 between 4 KiB and 1 MiB")
    duration_ns = parse_duration_ns(_get(t, "duration", tw, required=True), f"{tw} duration")
    if not 0 < duration_ns <= MAX_DURATION_NS:
        raise ConfigError(f"{tw}: duration must be positive and at most 86400s (24 hours)")
    completions = str(_get(t, "completions", tw, "staggered"))
    if completions not in COMPLETIONS:
        raise ConfigError(f"{tw}: completions must be {' or '.join(map(repr, COMPLETIONS))}")
    return Scenario(
        path=path,
        seed=_num(seed if seed is not None else _get(t, "seed", tw, 1), f"{tw} seed", int),
        start_unix_ns=_start_ns(_get(t, "start", tw, "2026-11-20T03:00:00Z"), tw),
        duration_ns=duration_ns, cpus=cpus, buffer_size=buffer_size,
        compressed=bool(_get(t, "compressed", tw, False)),
        provider=str(_get(t, "provider", tw, "Contoso.StorDrv")),
        kernel=kernel,
        instrumentation=bool(_get(t, "instrumentation", tw, True)),
        ifr=bool(_get(t, "ifr", tw, False)),
        wpp=bool(_get(t, "wpp", tw, False)),
        lost_events=_bounded(_get(t, "lost_events", tw, 0), f"{tw} lost_events", 0, MAX_IRPS),
        completions=completions,
        devices=[], arrivals=[], pressure=[], queue_ops=[],
    )


def _device(d: dict, i: int, where: str) -> Device:
    """One [[device]] with its [[device.queue]] tables."""
    dw = f"{where} [[device]] #{i + 1}"
    _check_keys(d, {"name", "disk", "queue"}, dw)
    queues = []
    for j, q in enumerate(_tables({"queue": d.get("queue", [{"name": "default"}])}, "queue", dw)):
        qw = f"{dw} [[device.queue]] #{j + 1}"
        _check_keys(q, {"name", "policy", "majors"}, qw)
        majors = q.get("majors")
        if majors is not None and not isinstance(majors, list):
            raise ConfigError(f"{qw}: majors must be a list")
        queues.append(Queue(
            name=str(_get(q, "name", qw, "default" if j == 0 else f"queue{j}")),
            policy=Policy.parse(_get(q, "policy", qw, "none"), f"{qw} policy"),
            majors=None if majors is None else {parse_major(m, f"{qw} majors") for m in majors}))
    if not queues:
        raise ConfigError(f"{dw}: a device needs a queue")
    return Device(name=str(_get(d, "name", dw, required=True)),
                  disk=_bounded(_get(d, "disk", dw, i), f"{dw} disk", 0, 0xFFFF_FFFF),
                  queues=queues)


def _check_devices(sc: Scenario, where: str) -> None:
    if not sc.devices:
        raise ConfigError(f"{where}: at least one [[device]] is needed")
    names = [d.name for d in sc.devices]
    if len(set(names)) < len(names):
        raise ConfigError(f"{where} [[device]]: two devices named "
                          f"{next(n for n in names if names.count(n) > 1)!r}")


def _mix(a: dict, aw: str) -> list[tuple[int, float]]:
    """`mix`: weights by major function, each finite and not negative, at least one positive."""
    mix_raw = _get(a, "mix", aw, {"read": 1.0})
    if not isinstance(mix_raw, dict):
        raise ConfigError(f"{aw}: mix must be a table such as {{ read = 0.7, write = 0.3 }}")
    mix = []
    for k, v in mix_raw.items():
        w = _num(v, f"{aw} mix {k}")
        if not 0 <= w <= MAX_WEIGHT:
            raise ConfigError(f"{aw}: mix weight {k} = {v!r} must be between 0 and {MAX_WEIGHT:g}")
        mix.append((parse_major(k, f"{aw} mix"), w))
    if not mix or sum(w for _, w in mix) <= 0:
        raise ConfigError(f"{aw}: mix needs a positive weight")
    return mix


def _arrivals(a: dict, aw: str, sc: Scenario) -> Arrivals:
    """One [[arrivals]] stream; its rate bounded by what can be generated (MAX_RATE)."""
    _check_keys(a, {"device", "start", "end", "rate", "mix", "sizes", "paging", "service",
                    "priority", "threads"}, aw)
    threads = a.get("threads")
    if threads is not None:
        threads = _bounded(threads, f"{aw} threads", 1, 0xF00)
    dev = str(_get(a, "device", aw, sc.devices[0].name))
    sc.device(dev)
    service = str(_get(a, "service", aw, "2ms"))
    a_start = parse_duration_ns(a["start"], f"{aw} start") if "start" in a else 0
    a_end = parse_duration_ns(a["end"], f"{aw} end") if "end" in a else sc.duration_ns
    if a_end <= a_start:
        raise ConfigError(f"{aw}: end must be after start")
    sizes = _get(a, "sizes", aw, [4096])
    if not isinstance(sizes, list) or not sizes:
        raise ConfigError(f"{aw}: sizes must be a list of byte counts")
    sizes = [_bounded(s, f"{aw} sizes", 0, 0xFFFF_FFFF) for s in sizes]
    rate = _num(_get(a, "rate", aw, required=True), f"{aw} rate")
    if not 0 < rate <= MAX_RATE:
        raise ConfigError(f"{aw}: rate {rate:g} must be positive and at most {MAX_RATE:,} IRPs "
                          "per second (arrivals are at least 1 us apart)")
    return Arrivals(
        device=dev, start_ns=a_start, end_ns=a_end, rate=rate, mix=_mix(a, aw), sizes=sizes,
        paging=_probability(_get(a, "paging", aw, 0.0), f"{aw} paging"),
        service_ns=parse_duration_ns(service.removeprefix("fixed:"), f"{aw} service"),
        service_fixed=service.startswith("fixed:"),
        priority=_num(_get(a, "priority", aw, 2), f"{aw} priority", int) & 7,
        threads=threads)


def _check_volume(sc: Scenario, where: str) -> None:
    """The IRPs the arrivals ask for on average stay within MAX_IRPS (memory: each IRP is a
    simulated object with its records)."""
    expected = sum(a.rate * (min(a.end_ns, sc.duration_ns) - a.start_ns) / 1e9
                   for a in sc.arrivals if a.start_ns < sc.duration_ns)
    if expected > MAX_IRPS:
        raise ConfigError(f"{where} [[arrivals]]: rates x windows ask for {expected:,.0f} IRPs; "
                          f"at most {MAX_IRPS:,} can be generated")


def _pressure(p: dict, pw: str) -> Pressure:
    """One [[pressure]] window."""
    _check_keys(p, {"start", "end", "fail", "available_mb"}, pw)
    fail = _get(p, "fail", pw, "always")
    fail_all, by_major = None, {}
    if isinstance(fail, dict):
        by_major = {parse_major(k, f"{pw} fail"): _probability(v, f"{pw} fail")
                    for k, v in fail.items()}
    elif str(fail) == "always":
        fail_all = 1.0
    elif str(fail).startswith("random:"):
        fail_all = _probability(str(fail)[7:], f"{pw} fail")
    else:
        raise ConfigError(f"{pw}: fail must be 'always', 'random:P' or a table of majors")
    window = Pressure(
        start_ns=parse_duration_ns(_get(p, "start", pw, required=True), f"{pw} start"),
        end_ns=parse_duration_ns(_get(p, "end", pw, required=True), f"{pw} end"),
        fail_all=fail_all, fail_by_major=by_major,
        available_mb=_bounded(_get(p, "available_mb", pw, 24), f"{pw} available_mb", 0,
                              1 << 40))
    if window.end_ns <= window.start_ns:
        raise ConfigError(f"{pw}: end must be after start")
    return window


def _queue_op(o: dict, ow: str, sc: Scenario) -> QueueOp:
    """One [[queue_op]]: a purge, stop, drain or start of a device's queue."""
    _check_keys(o, {"at", "device", "queue", "op"}, ow)
    op = str(_get(o, "op", ow, required=True))
    if op not in QUEUE_OPS:
        raise ConfigError(f"{ow}: op must be one of {', '.join(QUEUE_OPS)}")
    dev = sc.device(str(_get(o, "device", ow, sc.devices[0].name)))
    qname = str(_get(o, "queue", ow, dev.queues[0].name))
    if qname not in {q.name for q in dev.queues}:
        raise ConfigError(f"{ow}: device {dev.name!r} has no queue {qname!r}")
    return QueueOp(parse_duration_ns(_get(o, "at", ow, required=True), f"{ow} at"),
                   dev.name, qname, op)


def _truth(truth: dict, sc: Scenario, where: str) -> None:
    """[truth]: the policies truth.json compares (examine rules vetted as the engine vets them)
    and the sweep it states."""
    tw = f"{where} [truth]"
    _check_keys(truth, {"policies", "sweep"}, tw)
    policies = truth.get("policies", [])
    if not isinstance(policies, list):
        raise ConfigError(f"{tw}: policies must be a list")
    sc.truth_policies = [str(p) for p in policies]
    for text in sc.truth_policies:
        Policy.parse(text, f"{tw} policies", columns=IRP_COLUMNS)
    sweep = truth.get("sweep")
    if sweep is not None:
        sw = f"{tw} sweep"
        if not isinstance(sweep, dict) or str(sweep.get("kind", "always")) not in ("always",
                                                                                  "paging"):
            raise ConfigError(f"{sw}: must be a table {{ kind = \"always\"|\"paging\", max = N }}")
        sc.truth_sweep = (str(sweep.get("kind", "always")),
                          _bounded(sweep.get("max", 16), f"{sw} max", 1, 4096))
