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

from .config import DriverModel, MemoryModel
from .event_loop import Replay, run_slow
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
    fp_queues = {q.name: (q.policy if q.policy.forward_progress else None) for q in driver.queues}
    for qm in driver.queues:
        pol, fail_at = fp_queues[qm.name], qm.reserved_resources_fail_at
        if pol is not None and fail_at is not None and fail_at <= pol.reserved:
            # Section 3.4: the failing callback rolls the pool back to zero: not an FP queue.
            diag.warn(f"queue {qm.name}: EvtIoAllocateResourcesForReservedRequest fails on call "
                      f"{fail_at} of the pre-allocation; the queue has no reserved requests")
            fp_queues[qm.name] = None
    op_list = queue_operations(queue_ops, driver, diag)
    df = prepare(irps, driver, memory, fp_queues, incidents, service_time_ns, seed, diag)

    # Which rows need the event loop: pool users; everything on a queue that can make requests
    # wait (sequential, manual, a parallel limit); on a queue with operations, every IRP not
    # entirely over (arrived and completed) before the first operation reaches it.
    busy = [q.name for q in driver.queues if q.dispatch != "parallel" or q.limit is not None]
    first_op: dict[str, int] = {}
    for ts, _, name in op_list:
        first_op.setdefault(name, ts)
    needs_pool = pl.col("_fpq") & pl.col("_not_create") & pl.col("_fail") & \
        (pl.col("_verdict") == ACTION_USE_RESERVED)
    slow_expr = needs_pool | pl.col("_queue").is_in(busy)
    if first_op:
        t_op = pl.col("_queue").replace_strict(first_op, default=None, return_dtype=pl.Int64)
        # A failed allocation that does not use the pool completes at arrival.
        ends = pl.when(pl.col("_fail")).then(pl.col("arrive_ns")) \
            .otherwise(pl.col("arrive_ns") + pl.col("_hold"))
        over_before = (pl.col("arrive_ns") < t_op) & (ends <= t_op)   # completions go first
        slow_expr = slow_expr | (t_op.is_not_null() & ~over_before.fill_null(False))
    if not fast:
        slow_expr = pl.lit(True)
    # A pool larger than the IRPs that could ever use it never runs out: build only what can be
    # used (a huge N would otherwise allocate N objects); reserved_total still reports N.
    users = dict(df.group_by("_queue").agg(needs_pool.sum()).iter_rows())
    caps = {}
    for name, pol in fp_queues.items():
        if pol is not None and pol.reserved > POOL_BUILD_LIMIT:
            caps[name] = max(POOL_BUILD_LIMIT, int(users.get(name) or 0) + 1)
    replay = Replay(driver, fp_queues, race_windows, diag, caps)
    ops = [(ts, method, replay.queues[name]) for ts, method, name in op_list]
    df = df.with_columns(slow_expr.alias("_slow"))

    slow = df.filter(pl.col("_slow")).select(
        "row", "arrive_ns", "major", "minor", "irp_flags", "bytes", "_queue", "_fail",
        "_verdict", "_hold", "_dstatus", "_res")
    arrivals, irp_objs = [], []
    # Many small long-lived objects (and the outcome tuples read off them): pause the collector.
    with cyclic_gc_paused():
        run_slow(slow, arrivals, irp_objs, replay, ops)
        return collect(df, irp_objs, replay, driver, fp_queues, diag)
