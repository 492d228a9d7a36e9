"""Helpers for the what-if, incident, CLI and report tests (no tests of its own).

`scenario_events()` is a small event table in the contract's section 3 format; the tests write it
as .parquet or .ndjson and run it through the real readers, lifecycle builder and engine.
"""

from __future__ import annotations

import polars as pl

from fpreplay.schema import (
    STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_SUCCESS, conform_events,
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


def scenario_irps() -> pl.DataFrame:
    from fpreplay.diagnostics import Diagnostics
    from fpreplay.lifecycles import build_lifecycles

    return build_lifecycles(scenario_events(), Diagnostics())
