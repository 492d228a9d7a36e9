"""Replay an IRP lifecycle table through the queue model under a policy and a memory model.

Per-IRP inputs (does the allocation fail, what the policy says, how long the driver holds it,
with which status) are computed once per run for all IRPs with polars/numpy. Then:

* IRPs that provably cannot interact with anything are settled vectorized: on a queue that
  dispatches in parallel without a limit and sees no queue operation, a request is presented at
  once and never waits, so an IRP that allocates normally is delivered at its arrival and
  completes after its service time; refusals and non-forward-progress allocation failures are
  completed at arrival. None of them touches the reserved pool.
* Everything else (IRPs that need a reserved request, and every IRP of a queue with a dispatch
  limit, a sequential/manual type or queue operations) runs event by event through
  `fpreplay.engine.model` — the same model the edge-case tests drive.

`simulate(..., fast=False)` runs every IRP through the model: the reference the fast path is
tested against.

Simultaneous events are applied in this order: completions, then queue operations, then
arrivals; ties keep input order.
"""

from __future__ import annotations

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.perf import cyclic_gc_paused
from fpreplay.schema import IRP_MJ_CLEANUP

from .config import DriverModel, MemoryModel
from .event_loop import Replay, assignable_policies, run_slow
from .inputs import prepare, queue_operations
from .outcomes import SimulationResult, collect
from .status import ACTION_USE_RESERVED

POOL_BUILD_LIMIT = 1 << 16       # reserved requests built as objects before capping (see simulate)


def simulate(irps: pl.DataFrame, driver: DriverModel, memory: MemoryModel, *,
             queue_ops: pl.DataFrame | None = None,
             incidents: list[tuple[int, int]] | pl.DataFrame | None = None,
             service_time_ns: int | None = None, seed: int = 0, race_windows: bool = False,
             fast: bool = True) -> SimulationResult:
    """Replay `irps` (fpreplay.irps/1) through `driver` under `memory`; see the module doc.

    incidents: [start_ns, end_ns] windows (or a frame with those columns) for memory `window`.
    """
    diag = Diagnostics()
    fp_queues = assignable_policies(driver, diag)
    df, devices = prepare(irps, driver, memory, fp_queues, incidents, service_time_ns, seed, diag)
    op_list = queue_operations(queue_ops, driver, devices, diag)
    nq = len(driver.queues)
    qindex = {q.name: i for i, q in enumerate(driver.queues)}
    df = df.with_columns(
        (pl.col("_dev") * nq + pl.col("_queue").replace_strict(qindex, return_dtype=pl.UInt32))
        .alias("_qkey"))
    needs_pool = pl.col("_fpq") & pl.col("_io") & pl.col("_fail") & \
        (pl.col("_verdict") == ACTION_USE_RESERVED)
    df = df.with_columns(_needs_event_loop(driver, op_list, needs_pool, nq, fast).alias("_slow"))
    users = dict(df.group_by("_qkey").agg(needs_pool.sum()).iter_rows())
    # An IRP_MJ_CLEANUP of a known file object flushes that file object's IRPs on its device.
    cleanup = (pl.col("major") == IRP_MJ_CLEANUP) & pl.col("file_object").is_not_null()
    slow = df.filter((pl.col("_slow") & pl.col("_io")) | cleanup.fill_null(False)).select(
        "_dev", "row", "arrive_ns", "major", "minor", "irp_flags", "bytes", "_queue", "_fail",
        "_verdict", "_hold", "_dstatus", "_res", "file_object", "_io",
        pl.when(pl.col("actual") == "cancelled").then(pl.col("complete_ns")).alias("_cancel"))
    replays, irp_objs = [], []
    # Many small long-lived objects (and the outcome tuples read off them): pause the collector.
    with cyclic_gc_paused():
        for d, rows in enumerate(_per_device(slow, len(devices))):
            sizes = _pool_sizes(fp_queues, {name: int(users.get(d * nq + i) or 0)
                                            for name, i in qindex.items()})
            replay = Replay(driver, fp_queues, race_windows, diag, sizes, key_base=d * nq)
            ops = [(ts, method, replay.queues[name]) for ts, method, name, dev in op_list
                   if dev == d]
            if rows.height and rows["_io"].any():
                irp_objs += run_slow(rows.drop("_dev"), replay, ops)
            replays.append(replay)
        return collect(df, irp_objs, replays, devices, driver, fp_queues, diag)


def _needs_event_loop(driver: DriverModel, op_list: list[tuple], needs_pool: pl.Expr, nq: int,
                      fast: bool) -> pl.Expr:
    """Which IRPs need the event loop: pool users; everything on a queue that can make requests
    wait (sequential, manual, a parallel limit); on a queue with operations, every IRP not
    entirely over (arrived and completed) before the first operation reaches it. IRPs that
    reach no queue never do: they pass by at their observed times."""
    if not fast:
        return pl.col("_io")
    busy = [q.name for q in driver.queues if q.dispatch != "parallel" or q.limit is not None]
    qindex = {q.name: i for i, q in enumerate(driver.queues)}
    first_op: dict[int, int] = {}
    for ts, _, name, dev in op_list:
        first_op.setdefault(dev * nq + qindex[name], ts)
    slow = needs_pool | pl.col("_queue").is_in(busy)
    if first_op:
        t_op = pl.col("_qkey").replace_strict(first_op, default=None, return_dtype=pl.Int64)
        # A failed allocation that does not use the pool completes at arrival.
        ends = pl.when(pl.col("_fail")).then(pl.col("arrive_ns")) \
            .otherwise(pl.col("arrive_ns") + pl.col("_hold"))
        over_before = (pl.col("arrive_ns") < t_op) & (ends <= t_op)   # completions go first
        slow = slow | (t_op.is_not_null() & ~over_before.fill_null(False))
    return slow & pl.col("_io")


def _per_device(slow: pl.DataFrame, n_devices: int) -> list[pl.DataFrame]:
    """The event-loop rows of each device, in processing order."""
    if n_devices <= 1:
        return [slow]
    parts = slow.partition_by("_dev", as_dict=True, maintain_order=True)
    empty = slow.clear()
    return [parts.get((d,), empty) for d in range(n_devices)]


def _pool_sizes(fp_queues: dict, users: dict[str, int]) -> dict[str, int]:
    """How many reserved requests to build per queue of one device. A pool larger than the
    IRPs that could ever use it never runs out: beyond POOL_BUILD_LIMIT build only what can be
    used (a huge N would otherwise allocate N objects), and one where no IRP of the device can
    use it (it is never taken from, so its size changes nothing); reserved_total still
    reports N."""
    sizes = {}
    for name, pol in fp_queues.items():
        if pol is None:
            continue
        if not users[name]:
            sizes[name] = 1
        elif pol.reserved > POOL_BUILD_LIMIT:
            sizes[name] = max(POOL_BUILD_LIMIT, users[name] + 1)
    return sizes
