"""Helpers for the what-if, incident, CLI and report tests (no tests of its own).

`scenario_events()` writes a small event table in the contract's section 3 format. Until the
engine (fpreplay.engine.simulate) and the lifecycle builder (fpreplay.lifecycles) land, the
`stand_ins` fixture puts minimal stand-ins in their place; once they exist it changes nothing and
the tests run against the real ones. The stand-ins implement only what the scenarios need, the
way the contract describes it: one default queue, parallel dispatch, observed memory.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import polars as pl
import pytest

from fpreplay.schema import (
    STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
    conform_events, conform_irps,
)

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000   # 2023-11-14 22:13:20 UTC


def ev(t_ms: float, kind: str, irp: int | None = None, **kw) -> dict:
    return {"ts_ns": T0 + int(t_ms * MS), "kind": kind, "irp": irp, **kw}


def scenario_rows() -> list[dict]:
    """Disk device `disk0`, one queue. 4 served reads, then an incident at 1000 ms: 3 IRPs fail
    allocation (two of them paging) 1 ms apart, 100 ms later 1 is served from the reserve, a
    memory-pressure signal just before; one IRP never completes; and one is cancelled.
    With --service-time 5ms and always:1, 0x2002 parks 4 ms and 0x2003 parks 8 ms."""
    rows = []
    common = {"device": "disk0", "major": 3, "irp_flags": 0, "bytes": 4096}
    for i in range(4):                      # 0, 10, 20, 30 ms; 2 ms each
        a = 0x1000 + i
        rows += [ev(10 * i, "irp_dispatch", a, **common),
                 ev(10 * i + 2, "irp_complete", a, status=STATUS_SUCCESS, **common)]
    rows.append(ev(999, "memory_pressure", bytes=10 * MS))
    for k, (a, flags) in enumerate([(0x2001, 0x2), (0x2002, 0x2), (0x2003, 0x0)]):
        t = 1000 + k
        rows += [ev(t, "irp_dispatch", a, **{**common, "irp_flags": flags}),
                 ev(t, "request_alloc_failed", a, device="disk0"),
                 ev(t + 0.01, "irp_complete", a, status=STATUS_INSUFFICIENT_RESOURCES,
                    **{**common, "irp_flags": flags})]
    rows += [ev(1100, "irp_dispatch", 0x3001, **{**common, "irp_flags": 0x2}),
             ev(1100, "reserved_request_used", 0x3001, device="disk0"),
             ev(1103, "irp_complete", 0x3001, status=STATUS_SUCCESS,
                **{**common, "irp_flags": 0x2})]
    rows += [ev(3000, "irp_dispatch", 0x4001, **common),
             ev(3001, "irp_dispatch", 0x5001, **common),
             ev(3003, "irp_complete", 0x5001, status=STATUS_CANCELLED, **common)]
    return rows


def scenario_events() -> pl.DataFrame:
    return conform_events(pl.DataFrame(scenario_rows(), infer_schema_length=None))


def write_scenario(tmp_path, fmt: str = "parquet"):
    df = scenario_events()
    path = tmp_path / f"scenario.{fmt}"
    if fmt == "parquet":
        df.write_parquet(path)
    else:
        df.write_ndjson(path)
    return path


# --- stand-in lifecycle builder ---------------------------------------------------------------

def _stand_in_lifecycles(events: pl.DataFrame, diagnostics=None) -> pl.DataFrame:
    open_: dict[int, dict] = {}
    done = []
    for r in events.sort("ts_ns", maintain_order=True).iter_rows(named=True):
        a, kind = r["irp"], r["kind"]
        if kind == "irp_dispatch":
            open_[a] = {**{k: r[k] for k in ("irp", "device", "queue", "major", "minor",
                                             "irp_flags", "bytes")},
                        "arrive_ns": r["ts_ns"], "complete_ns": None, "status": None,
                        "ev": set()}
        elif a in open_ and kind in ("request_alloc_failed", "request_resources_failed",
                                     "reserved_request_used", "fp_policy_refused"):
            open_[a]["ev"].add(kind)
        elif kind == "irp_complete" and a in open_:
            x = open_.pop(a)
            x.update(complete_ns=r["ts_ns"], status=r["status"])
            done.append(x)
    done += open_.values()
    rows = []
    for x in done:
        e, st = x.pop("ev"), x["status"]
        if "reserved_request_used" in e:
            actual = "reserved"
        elif "fp_policy_refused" in e:
            actual = "refused"
        elif e & {"request_alloc_failed", "request_resources_failed"}:
            actual = "alloc_failed"
        elif x["complete_ns"] is None:
            actual = "incomplete"
        elif st == STATUS_CANCELLED:
            actual = "cancelled"
        elif st is not None and st >= 0xC0000000:
            actual = "failed"
        else:
            actual = "ok"
        served = actual in ("ok", "reserved", "cancelled", "failed")
        rows.append({**x, "paging": bool((x["irp_flags"] or 0) & 2) and x["major"] != 0x0D,
                     "service_ns": (x["complete_ns"] - x["arrive_ns"])
                     if served and x["complete_ns"] is not None else None,
                     "actual": actual, "evidence": ",".join(sorted(e)) or None})
    df = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    return conform_irps(df).sort("arrive_ns") if rows else conform_irps(
        pl.DataFrame({"arrive_ns": []}, schema={"arrive_ns": pl.Int64}))


# --- stand-in engine --------------------------------------------------------------------------

@dataclass
class _Policy:
    kind: str
    reserved: int
    sql: str | None
    text: str


@dataclass
class _Result:
    outcomes: pl.DataFrame
    timeline: pl.DataFrame
    reserve_high_water: dict
    warnings: list = field(default_factory=list)


def _parse_policy(text: str):
    from fpreplay.errors import ConfigError

    s = text.strip()
    if s == "none":
        return _Policy("none", 0, None, s)
    parts = s.split(":", 2)
    if parts[0] not in ("always", "paging", "examine") or len(parts) < 2:
        raise ConfigError(f"policy {text!r}: expected none, always:N, paging:N or examine:N:SQL")
    try:
        n = int(parts[1])
    except ValueError:
        raise ConfigError(f"policy {text!r}: {parts[1]!r} is not a number") from None
    if n <= 0:
        raise ConfigError(f"policy {text!r}: need more than 0 reserved requests")
    return _Policy(parts[0], n, parts[2] if len(parts) > 2 else None, s)


def _parse_duration_ns(text: str) -> int:
    from fpreplay.errors import ConfigError

    for unit, scale in (("ms", MS), ("us", 1000), ("ns", 1), ("s", 1_000_000_000)):
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * scale)
            except ValueError:
                break
    raise ConfigError(f"duration {text!r}: expected a number and a unit, e.g. 2ms")


def _parse_memory(text: str):
    from fpreplay.errors import ConfigError

    if text != "observed":
        raise ConfigError(f"memory model {text!r}: the stand-in engine knows only observed")
    return text


def _simulate(irps, driver, memory, *, queue_ops=None, incidents=None, service_time_ns=None,
              seed=0, race_windows=False):
    import heapq

    policy = driver
    rows = irps.with_row_index("row").sort("arrive_ns", maintain_order=True).to_dicts()
    out = {}
    free = policy.reserved
    parked: list[dict] = []
    ends: list[tuple[int, int]] = []   # (time a reserved request frees, row)
    timeline = []
    in_use = hw = 0
    service = service_time_ns or MS

    def serve(r, t, parked_flag):
        nonlocal in_use, hw
        in_use += 1
        hw = max(hw, in_use)
        done = t + (r["service_ns"] if r["service_ns"] is not None else service)
        heapq.heappush(ends, (done, r["row"]))
        out[r["row"]] = {"outcome": "parked_reserved" if parked_flag else "reserved",
                         "status": STATUS_SUCCESS, "parked": parked_flag,
                         "deliver_ns": t, "complete_ns": done,
                         "park_wait_ns": t - r["arrive_ns"] if parked_flag else None,
                         "reserved_id": 0}

    def release_until(t):
        nonlocal in_use
        while ends and ends[0][0] <= t:
            done, _ = heapq.heappop(ends)
            in_use -= 1
            if parked:
                serve(parked.pop(0), done, True)
            timeline.append((done, in_use, len(parked)))

    for r in rows:
        release_until(r["arrive_ns"])
        if r["actual"] not in ("alloc_failed", "refused", "reserved"):
            out[r["row"]] = {"outcome": "normal", "status": r["status"], "parked": False,
                             "deliver_ns": r["arrive_ns"], "complete_ns": r["complete_ns"],
                             "park_wait_ns": None, "reserved_id": None}
            continue
        if policy.kind == "none":
            out[r["row"]] = {"outcome": "alloc_failed", "status": STATUS_INSUFFICIENT_RESOURCES,
                             "parked": False, "deliver_ns": None,
                             "complete_ns": r["arrive_ns"], "park_wait_ns": None,
                             "reserved_id": None}
        elif policy.kind == "paging" and not r["paging"]:
            out[r["row"]] = {"outcome": "refused", "status": STATUS_UNSUCCESSFUL,
                             "parked": False, "deliver_ns": None, "complete_ns": r["arrive_ns"],
                             "park_wait_ns": None, "reserved_id": None}
        elif in_use < free:
            serve(r, r["arrive_ns"], False)
        else:
            parked.append(r)
            out[r["row"]] = {"outcome": "parked_at_end", "status": None, "parked": True,
                             "deliver_ns": None, "complete_ns": None, "park_wait_ns": None,
                             "reserved_id": None}
        timeline.append((r["arrive_ns"], in_use, len(parked)))
    release_until(1 << 62)
    outcomes = pl.DataFrame([{"row": i, "queue": None, **out[i]} for i in range(irps.height)],
                            schema={"row": pl.UInt32, "queue": pl.String, "outcome": pl.String,
                                    "status": pl.UInt32, "parked": pl.Boolean,
                                    "deliver_ns": pl.Int64, "complete_ns": pl.Int64,
                                    "park_wait_ns": pl.Int64, "reserved_id": pl.Int32},
                            orient="row") if irps.height else pl.DataFrame(
        schema={"row": pl.UInt32, "queue": pl.String, "outcome": pl.String, "status": pl.UInt32,
                "parked": pl.Boolean, "deliver_ns": pl.Int64, "complete_ns": pl.Int64,
                "park_wait_ns": pl.Int64, "reserved_id": pl.Int32})
    outcomes = outcomes.with_columns(pl.col("parked").fill_null(False))
    tl = pl.DataFrame([{"queue": None, "ts_ns": t, "reserved_in_use": u,
                        "reserved_total": policy.reserved, "parked": p, "outstanding": u + p}
                       for t, u, p in timeline],
                      schema={"queue": pl.String, "ts_ns": pl.Int64, "reserved_in_use": pl.Int64,
                              "reserved_total": pl.Int64, "parked": pl.Int64,
                              "outstanding": pl.Int64})
    return _Result(outcomes, tl.sort("ts_ns", maintain_order=True), {None: hw}, [])


STAND_IN_ENGINE = types.SimpleNamespace(
    parse_policy=_parse_policy, parse_memory=_parse_memory, parse_duration_ns=_parse_duration_ns,
    load_driver_model=lambda path, policy=None: policy, simulate=_simulate)


def real_engine_present() -> bool:
    try:
        import fpreplay.engine as engine
    except ImportError:
        return False
    return hasattr(engine, "simulate")


def real_lifecycles_present() -> bool:
    try:
        import fpreplay.lifecycles as lc
    except ImportError:
        return False
    return hasattr(lc, "build_lifecycles")


@pytest.fixture
def stand_ins(monkeypatch):
    """Stand-ins for the engine and lifecycle builder where the real ones have not landed."""
    from fpreplay.replay import whatif

    if not real_engine_present():
        monkeypatch.setattr(whatif, "_engine", lambda: STAND_IN_ENGINE)
    if not real_lifecycles_present():
        module = types.ModuleType("fpreplay.lifecycles")
        module.build_lifecycles = _stand_in_lifecycles
        monkeypatch.setitem(sys.modules, "fpreplay.lifecycles", module)
    yield
