"""What a replay needs to know of the whole trace before its first IRP, so that a replay fed the
lifecycle table in chunks (engine.simulator.Simulator) answers as one fed the whole table:

* the trace's devices, in order of first arrival (each is one KMDF device with its own queues,
  pools and generator; a queue operation naming no device goes to the only one, if only one);
* the first arrival time (an IRP without arrive_ns is replayed then);
* each device's median hold time, per major and overall (an IRP the trace never saw served is
  held that long, contract section 4 on service_ns).

`survey(chunks)` learns them in one pass over a few columns (SURVEY_COLUMNS) of the table's
chunks, in arrival order; memory: the devices, and one hold time per IRP the trace saw served.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from fpreplay.schema import FAILED_ACTUALS

# The lifecycle columns survey reads (deliver_ns is an extension: read where the table has it).
SURVEY_COLUMNS = ("device", "major", "arrive_ns", "complete_ns", "service_ns", "deliver_ns",
                  "actual")
_TYPES = {"device": pl.String, "major": pl.Int64, "arrive_ns": pl.Int64, "complete_ns": pl.Int64,
          "service_ns": pl.Int64, "deliver_ns": pl.Int64, "actual": pl.String}


@dataclass(frozen=True)
class TraceFacts:
    """devices: `device` values in order of first arrival (None: the unnamed device);
    first_arrival_ns: the earliest arrive_ns (None: no IRP has one); hold_all: device index ->
    median observed hold of its served IRPs; hold_by_major: device index * 256 + major -> the
    same per major."""

    devices: list = field(default_factory=list)
    first_arrival_ns: int | None = None
    hold_all: dict[int, int] = field(default_factory=dict)
    hold_by_major: dict[int, int] = field(default_factory=dict)


def observed_hold() -> pl.Expr:
    """How long the driver held an IRP, as the trace shows it: complete_ns - deliver_ns where the
    trace shows the delivery (for an IRP that waited parked, service_ns would count the wait as
    driver time), else service_ns."""
    failed_in_trace = pl.col("actual").is_in(FAILED_ACTUALS).fill_null(False)
    return (pl.when(pl.col("deliver_ns").is_not_null() & pl.col("complete_ns").is_not_null()
                    & ~failed_in_trace)
            .then(pl.col("complete_ns") - pl.col("deliver_ns"))
            .otherwise(pl.col("service_ns")))


def survey_columns(available: Iterable[str]) -> list[str]:
    """The SURVEY_COLUMNS a table with `available` columns has (ask a spool for these)."""
    have = set(available)
    return [c for c in SURVEY_COLUMNS if c in have]


def survey(chunks: Iterable[pl.DataFrame]) -> TraceFacts:
    """TraceFacts of the lifecycle table given as `chunks` in arrival order (one chunk: the
    whole table). Columns beyond SURVEY_COLUMNS are ignored, missing ones read as null."""
    devices: dict = {}
    first = None
    served = []
    for chunk in chunks:
        df = chunk.select(
            (pl.col(c).cast(t, strict=False) if c in chunk.columns else pl.lit(None, t)).alias(c)
            for c, t in _TYPES.items())
        if not df.height:
            continue
        low = df["arrive_ns"].min()
        if low is not None and (first is None or low < first):
            first = low
        # Processing order (prepare's): arrival, an IRP without one at the first, then input.
        arrive = df["arrive_ns"].fill_null(low if low is not None else 0)
        order = df.select("device").with_columns(arrive.alias("t"))
        if not arrive.is_sorted():
            order = order.sort("t", maintain_order=True)
        for d in order["device"].unique(maintain_order=True).to_list():
            devices.setdefault(d, None)
        got = df.filter(pl.col("service_ns").is_not_null()).select(
            "device", "major", observed_hold().alias("_hold"))
        if got.height:
            served.append(got)
    names = list(devices)
    return TraceFacts(names, first, *_medians(served, names))


def _medians(served: list[pl.DataFrame], devices: list) -> tuple[dict, dict]:
    if not served:
        return {}, {}
    df = pl.concat(served)
    index = (pl.lit(0, pl.Int64) if len(devices) <= 1 else
             pl.col("device").replace_strict(devices, list(range(len(devices))),
                                             return_dtype=pl.Int64))
    df = df.with_columns(index.alias("_dev"))
    overall = df.group_by("_dev").agg(pl.col("_hold").median().cast(pl.Int64).alias("_all"))
    by_major = df.filter(pl.col("major").is_not_null()).group_by("_dev", "major").agg(
        (pl.col("_dev") * 256 + pl.col("major")).first().alias("_key"),
        pl.col("_hold").median().round(0).cast(pl.Int64).alias("_med"))
    return (dict(zip(overall["_dev"].to_list(), overall["_all"].to_list())),
            dict(zip(by_major["_key"].to_list(), by_major["_med"].to_list())))
