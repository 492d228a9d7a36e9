"""What the user tells the engine: policies, memory models and the driver model.

Every bad string or config raises fpreplay.errors.ConfigError with one clear line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from fpreplay.errors import ConfigError
from fpreplay.schema import IRP_COLUMNS, IRP_MJ_NAMES

POLICY_KINDS = ("none", "always", "paging", "examine")

_MAJOR_BY_NAME = {n: i for i, n in enumerate(IRP_MJ_NAMES)}
_MAJOR_BY_NAME["SCSI"] = _MAJOR_BY_NAME["INTERNAL_DEVICE_CONTROL"]


# --- policies -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """One `--policy` value. kind: none | always | paging | examine."""

    kind: str
    reserved: int
    sql: str | None
    text: str

    @property
    def forward_progress(self) -> bool:
        return self.kind != "none"


NO_POLICY = Policy("none", 0, None, "none")


def _sql_predicate(sql: str, text: str) -> pl.Expr:
    from fpreplay.examine_rule import vet_examine_rule

    try:
        sql = vet_examine_rule(sql, IRP_COLUMNS)
    except ConfigError as e:
        raise ConfigError(f"policy {text!r}: {e}") from None
    try:
        expr = pl.sql_expr(sql)
        # Dry run over an empty lifecycle table: catches unknown columns and type errors now.
        pl.DataFrame(schema=IRP_COLUMNS).select(expr.cast(pl.Boolean))
    except Exception as e:  # polars raises several types for bad SQL
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"policy {text!r}: bad examine SQL {sql!r}: {first}") from None
    return expr


def parse_policy(text: str) -> Policy:
    """`none`, `always:N`, `paging:N` or `examine:N:SQL` (contract section 5).

    >>> parse_policy("paging:16")
    Policy(kind='paging', reserved=16, sql=None, text='paging:16')
    """
    s = (text or "").strip()
    if s.lower() == "none":
        return Policy("none", 0, None, "none")
    parts = s.split(":", 2)
    kind = parts[0].strip().lower()
    if kind not in POLICY_KINDS:
        raise ConfigError(f"policy {text!r}: unknown kind {parts[0]!r} "
                          "(expected none, always:N, paging:N or examine:N:SQL)")
    if len(parts) < 2 or not parts[1].strip():
        raise ConfigError(f"policy {text!r}: missing the number of reserved requests, "
                          f"e.g. {kind}:8")
    try:
        n = int(parts[1].strip(), 0)
    except ValueError:
        raise ConfigError(f"policy {text!r}: {parts[1]!r} is not a number of reserved "
                          "requests") from None
    if n <= 0:
        raise ConfigError(f"policy {text!r}: need more than 0 reserved requests")
    if n > 0xFFFFFFFF:
        raise ConfigError(f"policy {text!r}: {n} reserved requests do not fit a ULONG")
    if kind == "examine":
        if len(parts) < 3 or not parts[2].strip():
            raise ConfigError(f"policy {text!r}: examine needs an SQL rule, "
                              "e.g. examine:8:paging OR major = 4")
        sql = parts[2].strip()
        _sql_predicate(sql, s)
        return Policy("examine", n, sql, s)
    if len(parts) > 2:
        raise ConfigError(f"policy {text!r}: only examine takes a rule after N")
    return Policy(kind, n, None, s)


def examine_verdicts(policy: Policy, irps: pl.DataFrame) -> pl.Series:
    """The Examine rule over every IRP at once: True = use a reserved request, else fail.

    A null (the rule cannot decide) counts as "fail": the framework refuses anything that is not
    UseReservedRequest (section 4.2).
    """
    expr = _sql_predicate(policy.sql, policy.text)
    try:
        out = irps.select(expr.cast(pl.Boolean).fill_null(False).alias("v")).to_series()
    except Exception as e:
        raise ConfigError(f"policy {policy.text!r}: examine SQL failed on the IRP table: "
                          f"{str(e).strip().splitlines()[0]}") from None
    if out.len() != irps.height:  # an aggregate expression: not a per-IRP rule
        raise ConfigError(f"policy {policy.text!r}: examine SQL must be a per-IRP boolean "
                          "expression")
    return out


# --- memory models -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryModel:
    """kind: observed | fail-all | verifier-random | random | window (contract section 6)."""

    kind: str
    probability: float | None = None
    seed: int | None = None
    text: str = ""


def _seed(value: str, text: str) -> int:
    try:
        return int(value, 0)
    except ValueError:
        raise ConfigError(f"memory model {text!r}: seed {value!r} is not an integer") from None


def parse_memory(text: str) -> MemoryModel:
    """observed | fail-all | verifier-random[:SEED] | random:P[:SEED] | window."""
    s = (text or "").strip()
    parts = s.split(":")
    kind = parts[0].lower()
    if kind in ("observed", "fail-all", "window"):
        if len(parts) > 1:
            raise ConfigError(f"memory model {text!r}: {kind} takes no parameters")
        return MemoryModel(kind, text=s)
    if kind == "verifier-random":
        if len(parts) > 2:
            raise ConfigError(f"memory model {text!r}: expected verifier-random[:SEED]")
        return MemoryModel(kind, seed=_seed(parts[1], s) if len(parts) == 2 else None, text=s)
    if kind == "random":
        if len(parts) not in (2, 3) or not parts[1]:
            raise ConfigError(f"memory model {text!r}: expected random:P[:SEED] with P in [0, 1]")
        try:
            p = float(parts[1])
        except ValueError:
            raise ConfigError(f"memory model {text!r}: probability {parts[1]!r} is not a "
                              "number") from None
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"memory model {text!r}: probability {p} is outside [0, 1]")
        return MemoryModel(kind, probability=p,
                           seed=_seed(parts[2], s) if len(parts) == 3 else None, text=s)
    raise ConfigError(f"memory model {text!r}: expected observed, fail-all, "
                      "verifier-random[:SEED], random:P[:SEED] or window")


# --- the driver model --------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueModel:
    name: str
    majors: tuple[int, ...] = ()
    default: bool = False
    dispatch: str = "parallel"          # sequential | parallel | manual
    limit: int | None = None            # parallel:LIMIT
    policy: Policy = NO_POLICY
    fp_capable: bool = True             # --policy applies to this queue
    request_resources: bool = False     # EvtIoAllocateRequestResources registered
    reserved_resources: bool = False    # EvtIoAllocateResourcesForReservedRequest registered
    reserved_resources_fail_at: int | None = None  # that callback fails on its k-th call (1-based)
    cancelable: bool = False            # the driver marks the requests it holds cancelable


@dataclass(frozen=True)
class DriverModel:
    queues: tuple[QueueModel, ...]
    bound_version: tuple[int, int] = (1, 33)
    source: str = "default"
    instrumentation: dict = field(default_factory=dict, compare=False)

    @property
    def default_queue(self) -> QueueModel:
        return next(q for q in self.queues if q.default)

    def queue(self, name: str | None) -> QueueModel | None:
        if name is None:
            return self.default_queue
        return next((q for q in self.queues if q.name == name), None)

    def with_policy(self, policy: Policy) -> "DriverModel":
        """The model with `policy` (a --policy) on every queue whose `fp_capable` is true."""
        return replace(self, queues=tuple(replace(q, policy=policy) if q.fp_capable else q
                                          for q in self.queues))

    def routing(self) -> dict[int, str]:
        """major -> queue name for every major code 0..255."""
        table = {m: self.default_queue.name for m in range(256)}
        for q in self.queues:
            for m in q.majors:
                table[m] = q.name
        return table


def parse_major(value, where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {value!r} is not a major function")
    if isinstance(value, int):
        if 0 <= value <= 0xFF:
            return value
        raise ConfigError(f"{where}: major function {value} is out of range")
    if isinstance(value, str):
        name = value.strip().upper()
        if name.startswith("IRP_MJ_"):
            name = name[7:]
        if name in _MAJOR_BY_NAME:
            return _MAJOR_BY_NAME[name]
        try:
            return parse_major(int(value, 0), where)
        except ValueError:
            pass
    raise ConfigError(f"{where}: unknown major function {value!r}")


def parse_dispatch(value: str, where: str) -> tuple[str, int | None]:
    s = str(value).strip().lower()
    if s in ("sequential", "parallel", "manual"):
        return s, None
    m = re.fullmatch(r"parallel:(\d+)", s)
    if m and int(m.group(1)) > 0:
        return "parallel", int(m.group(1))
    raise ConfigError(f"{where}: dispatch {value!r}: expected sequential, parallel, "
                      "parallel:LIMIT (LIMIT > 0) or manual")


_QUEUE_KEYS = {"name", "majors", "default", "dispatch", "policy", "fp_capable",
               "request_resources", "reserved_resources", "reserved_resources_fail_at",
               "cancelable"}


def _queue_from_table(t: dict, where: str) -> QueueModel:
    unknown = set(t) - _QUEUE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(_QUEUE_KEYS))})")
    name = t.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: every queue needs a name")
    where = f"{where} ({name})"
    majors = t.get("majors", [])
    if not isinstance(majors, list):
        majors = [majors]
    dispatch, limit = parse_dispatch(t.get("dispatch", "parallel"), where)
    policy = t.get("policy", "none")
    if not isinstance(policy, str):
        raise ConfigError(f"{where}: policy must be a string such as 'always:8'")
    bools = {}
    for key in ("default", "fp_capable", "request_resources", "reserved_resources", "cancelable"):
        if key in t and not isinstance(t[key], bool):
            raise ConfigError(f"{where}: {key} must be true or false")
        bools[key] = t.get(key)
    fail_at = t.get("reserved_resources_fail_at")
    if fail_at is not None and (not isinstance(fail_at, int) or fail_at < 1):
        raise ConfigError(f"{where}: reserved_resources_fail_at must be a positive integer")
    try:
        pol = parse_policy(policy)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return QueueModel(
        name=name.strip(), majors=tuple(parse_major(m, where) for m in majors),
        default=bool(bools["default"]) or name.strip() == "default", dispatch=dispatch,
        limit=limit, policy=pol,
        fp_capable=True if bools["fp_capable"] is None else bools["fp_capable"],
        request_resources=bool(bools["request_resources"]),
        reserved_resources=bool(bools["reserved_resources"]) or fail_at is not None,
        reserved_resources_fail_at=fail_at, cancelable=bool(bools["cancelable"]))


def _bound_version(value, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(value))
    if not m:
        raise ConfigError(f"{where}: bound_version {value!r}: expected e.g. \"1.33\"")
    return int(m.group(1)), int(m.group(2))


def load_driver_model(path: Path | None, policy: Policy | None = None) -> DriverModel:
    """The driver model: a TOML file (contract section 5), or the default one queue.

    `policy` (from --policy) replaces the policy of every queue whose `fp_capable` is true (the
    default); set `fp_capable = false` on a queue to keep it out of the what-if.

    TOML layout::

        bound_version = "1.33"            # optional, KMDF version the driver was built against
        [[queues]]
        name = "io"                       # "default" (or default = true) catches unrouted majors
        majors = ["READ", "WRITE", 0x0e]  # IRP_MJ_ names (with or without prefix) or numbers
        dispatch = "parallel:4"           # sequential | parallel | parallel:LIMIT | manual
        policy = "paging:16"              # none | always:N | paging:N | examine:N:SQL
        request_resources = false         # EvtIoAllocateRequestResources registered
        reserved_resources = false        # EvtIoAllocateResourcesForReservedRequest registered
        cancelable = false                # driver marks requests it holds cancelable
        fp_capable = true                 # --policy applies to this queue
        [instrumentation]                 # event-name mappings: read by the parsers, kept here
    """
    if path is None:
        q = QueueModel(name="default", default=True, dispatch="parallel")
        model = DriverModel(queues=(q,))
    else:
        where = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"{where}: cannot read driver config: {e.strerror or e}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{where}: not valid TOML: {e}") from None
        except RecursionError:
            raise ConfigError(f"{where}: not valid TOML: arrays or tables nested too deeply") \
                from None
        unknown = set(data) - {"queues", "queue", "bound_version", "instrumentation", "driver"}
        if unknown:
            raise ConfigError(f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))}")
        for key in ("driver", "instrumentation"):
            if not isinstance(data.get(key, {}), dict):
                raise ConfigError(f"{where}: '{key}' must be a table ([{key}])")
        unknown = set(data.get("driver", {})) - {"bound_version"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) in [driver]: "
                              f"{', '.join(sorted(unknown))} (queues are [[queues]] tables at "
                              "the top level)")
        raw = data.get("queues", data.get("queue", []))
        if isinstance(raw, dict):      # [queues.NAME] tables
            raw = [{"name": k, **v} if isinstance(v, dict) else v for k, v in raw.items()]
        if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
            raise ConfigError(f"{where}: 'queues' must be an array of tables ([[queues]])")
        queues = [_queue_from_table(t, f"{where}: queue {i + 1}") for i, t in enumerate(raw)]
        names = [q.name for q in queues]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"{where}: queue name(s) declared twice: {', '.join(sorted(dup))}")
        defaults = [q for q in queues if q.default]
        if len(defaults) > 1:
            raise ConfigError(f"{where}: more than one default queue: "
                              f"{', '.join(q.name for q in defaults)}")
        if not defaults:
            queues.append(QueueModel(name="default", default=True))
        seen: dict[int, str] = {}
        for q in queues:
            for m in q.majors:
                if m in seen and seen[m] != q.name:
                    raise ConfigError(f"{where}: major 0x{m:02x} routed to both {seen[m]!r} and "
                                      f"{q.name!r}")
                seen[m] = q.name
        bv = data.get("bound_version", data.get("driver", {}).get("bound_version", "1.33"))
        model = DriverModel(queues=tuple(queues), bound_version=_bound_version(bv, where),
                            source=where, instrumentation=dict(data.get("instrumentation", {})))
    return model if policy is None else model.with_policy(policy)
