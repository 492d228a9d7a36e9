"""The replay's per-IRP inputs, computed once for all IRPs with polars/numpy: the queue each IRP
goes to, whether its allocation fails under the memory model (the verifier's draws included), what
the policy says, how long the driver holds it and with which status; and the queue operations
the model can replay."""

from __future__ import annotations

import numpy as np
import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import ConfigError
from fpreplay.schema import (FAILED_ACTUALS, IRP_EXTENSION_COLUMNS, IRP_MJ_CREATE, QUEUE_KINDS,
                             STARVED_ACTUALS, conform_irps, paging_expr)

from .config import DriverModel, MemoryModel, examine_verdicts
from .status import ACTION_FAIL, ACTION_USE_RESERVED, STATUS_SUCCESS

DEFAULT_SERVICE_NS = 1_000_000
_OP_METHOD = {"queue_start": "start", "queue_stop": "stop", "queue_stop_purge": "stop_and_purge",
              "queue_purge": "purge", "queue_drain": "drain"}


def lcg_fail_mask(count: int, seed: int) -> np.ndarray:
    """The first `count` ForwardProgressFailRandom draws of LcgRandom(seed), all at once.

    The LCG is affine, so draw k is (A^k * seed + C_k) mod 2^32; the (A^k, C_k) prefix is built
    by repeated composition (log2(count) numpy passes) instead of a Python loop.
    """
    if count == 0:
        return np.zeros(0, dtype=bool)
    mask = np.uint64(0xFFFFFFFF)
    a = np.full(count, 1103515245, dtype=np.uint64)
    c = np.full(count, 12345, dtype=np.uint64)
    step = 1
    while step < count:
        # position i composes with position i - step: f_i o f_(i-step)
        a_prev, c_prev = a[:-step].copy(), c[:-step].copy()
        c[step:] = (a[step:] * c_prev + c[step:]) & mask
        a[step:] = (a[step:] * a_prev) & mask
        step *= 2
    s = (a * np.uint64(seed & 0xFFFFFFFF) + c) & mask
    value = (s >> np.uint64(16)) & np.uint64(0x7FFF)
    return (value % np.uint64(17)) == 0


def _hold_and_status(df: pl.DataFrame, service_time_ns: int | None) -> pl.DataFrame:
    """How long the driver holds each IRP once delivered, and the status it completes it with.

    Delivery seen in the trace (deliver_ns known) and completed: complete_ns - deliver_ns, the
    driver's own hold; for an IRP that waited parked, service_ns would count the wait again.
    Otherwise served in the trace (service_ns known): observed service and status. Completed in
    the trace without a service time and not failed by the framework: complete_ns - arrive_ns,
    observed status. Never completed in the trace (actual incomplete): never completes. IRPs the
    trace never saw served (alloc_failed, refused): median observed hold (as above) of served
    IRPs with the same major, else of all served IRPs, else 1 ms, or --service-time; they
    complete STATUS_SUCCESS.
    """
    failed_in_trace = pl.col("actual").is_in(FAILED_ACTUALS).fill_null(False)
    observed = (pl.when(pl.col("deliver_ns").is_not_null() & pl.col("complete_ns").is_not_null()
                        & ~failed_in_trace)
                .then(pl.col("complete_ns") - pl.col("deliver_ns"))
                .otherwise(pl.col("service_ns")))
    df = df.with_columns(observed.alias("_observed_hold"))
    served = df.filter(pl.col("service_ns").is_not_null())
    overall = served["_observed_hold"].median() if served.height else None
    overall = DEFAULT_SERVICE_NS if overall is None else int(overall)
    by_major = served.filter(pl.col("major").is_not_null()).group_by("major").agg(
        pl.col("_observed_hold").median().round(0).cast(pl.Int64).alias("_med"))
    if service_time_ns is not None:
        estimate = pl.lit(service_time_ns, dtype=pl.Int64)
    elif by_major.height:
        estimate = pl.col("major").replace_strict(by_major["major"], by_major["_med"],
                                                  default=overall, return_dtype=pl.Int64)
    else:
        estimate = pl.lit(overall, dtype=pl.Int64)
    hold = (pl.when(pl.col("_observed_hold").is_not_null()).then(pl.col("_observed_hold"))
            .when(pl.col("complete_ns").is_not_null() & ~failed_in_trace)
            .then(pl.col("complete_ns") - pl.col("arrive_ns"))
            .when(failed_in_trace).then(estimate)
            .otherwise(None))
    dstatus = (pl.when(failed_in_trace).then(pl.lit(STATUS_SUCCESS, pl.UInt32))
               .otherwise(pl.col("status").fill_null(STATUS_SUCCESS)))
    return df.with_columns(hold.clip(lower_bound=0).cast(pl.Int64).alias("_hold"),
                           dstatus.cast(pl.UInt32).alias("_dstatus")).drop("_observed_hold")


def _route(df: pl.DataFrame, driver: DriverModel) -> pl.Series:
    names = [q.name for q in driver.queues]
    routing = driver.routing()
    by_major = pl.col("major").cast(pl.Int64).replace_strict(
        list(routing), list(routing.values()), default=driver.default_queue.name,
        return_dtype=pl.String).fill_null(driver.default_queue.name)
    if len(names) == 1:      # one queue receives every IRP of the trace
        return pl.Series("_queue", [names[0]] * df.height, dtype=pl.String)
    return df.select(pl.when(pl.col("queue").is_in(names)).then(pl.col("queue"))
                     .otherwise(by_major).alias("_queue")).to_series()


def prepare(irps: pl.DataFrame, driver: DriverModel, memory: MemoryModel, fp_queues: dict,
             incidents, service_time_ns, seed, diag: Diagnostics) -> pl.DataFrame:
    df = conform_irps(irps).with_row_index("row").with_columns(
        (irps[c].cast(t, strict=False) if c in irps.columns else pl.lit(None, t)).alias(c)
        for c, t in IRP_EXTENSION_COLUMNS.items())   # the extensions where the table has them
    if df["arrive_ns"].null_count():
        diag.warn(f"{df['arrive_ns'].null_count()} IRP(s) without arrive_ns were simulated at the "
                  "first arrival time")
        df = df.with_columns(pl.col("arrive_ns").fill_null(pl.col("arrive_ns").min()).fill_null(0))
    # `paging` is the framework's own test; fill it where the table does not say.
    df = df.with_columns(_route(df, driver), pl.col("paging").fill_null(paging_expr()))
    df = _hold_and_status(df, service_time_ns)
    # Processing order: arrival time, then input order.
    if not df["arrive_ns"].is_sorted():    # lifecycle tables usually come in arrival order
        df = df.sort(["arrive_ns", "row"])
    is_fp = pl.col("_queue").is_in([q for q, p in fp_queues.items() if p is not None])
    not_create = pl.col("major").fill_null(0xFF) != IRP_MJ_CREATE
    injectable = is_fp & not_create
    actual_failed = pl.col("actual").is_in(STARVED_ACTUALS).fill_null(False)
    # A failed EvtIoAllocateRequestResources is not a failed allocation: the request object was
    # created (so the verifier's injection still draws for it), then the driver's callback failed.
    observed_resources = actual_failed & (pl.col("alloc_failure") == "resources").fill_null(False)
    kind = memory.kind
    if kind == "window":
        if incidents is None:
            raise ConfigError("memory model 'window' needs the detected low-memory incidents")
        if isinstance(incidents, pl.DataFrame):
            incidents = incidents.select("start_ns", "end_ns").rows()
        in_window = pl.lit(False)
        for start, end in incidents:
            in_window = in_window | pl.col("arrive_ns").is_between(int(start), int(end))
        df = df.with_columns(in_window.alias("_fail"))
    elif kind == "random":
        rng = np.random.default_rng(memory.seed if memory.seed is not None else seed)
        df = df.with_columns(pl.Series("_fail", rng.random(df.height) < memory.probability))
    else:
        df = df.with_columns((actual_failed & ~observed_resources).alias("_fail"))
        if kind == "fail-all":
            df = df.with_columns((pl.col("_fail") | injectable).alias("_fail"))
        elif kind == "verifier-random":
            # Draws happen only after a real allocation succeeded on a forward-progress queue,
            # in arrival order, from one generator shared by the device's queues (4.7).
            draw = injectable & ~pl.col("_fail")
            k = df.select(draw.sum()).item()
            fails = lcg_fail_mask(k, memory.seed if memory.seed is not None else seed)
            idx = df.select(pl.arg_where(draw)).to_series().to_numpy()
            mask = np.zeros(df.height, dtype=bool)
            mask[idx] = fails
            df = df.with_columns((pl.col("_fail") | pl.Series(mask)).alias("_fail"))
    df = _resources_failures(df, driver, fp_queues, memory, observed_resources & not_create, diag)
    # The policy's action for every IRP, per queue (evaluated even where unused: it is cheap).
    paging = pl.when(pl.col("irp_flags").is_null()).then(pl.col("paging")) \
        .otherwise(paging_expr())
    verdict = pl.lit(ACTION_USE_RESERVED, dtype=pl.Int8)
    for qname, pol in fp_queues.items():
        if pol is None or pol.kind == "always":
            continue
        if pol.kind == "paging":
            use = paging
        else:
            use = pl.Series(examine_verdicts(pol, df))
        verdict = pl.when(pl.col("_queue") == qname).then(
            pl.when(use).then(ACTION_USE_RESERVED).otherwise(ACTION_FAIL).cast(pl.Int8)
        ).otherwise(verdict)
    return df.with_columns(verdict.alias("_verdict"), is_fp.alias("_fpq"),
                           not_create.alias("_not_create"))


def _resources_failures(df: pl.DataFrame, driver: DriverModel, fp_queues: dict,
                        memory: MemoryModel, observed: pl.Expr, diag: Diagnostics) -> pl.DataFrame:
    """`_res`: the driver's EvtIoAllocateRequestResources fails for the IRP (forward-progress.md
    4.1 step 5); `_fail` then also holds (no ordinary request: the policy decides, as for a
    failed allocation). The framework calls that callback only on a forward-progress queue that
    registers it, after a successful allocation, never for a create: elsewhere the trace's
    callback failure cannot happen and the IRP keeps its ordinary request. `random` and `window`
    replace the trace's failures, these included."""
    if memory.kind in ("random", "window"):
        return df.with_columns(pl.lit(False).alias("_res"))
    with_cb = [qm.name for qm in driver.queues
               if fp_queues[qm.name] is not None and qm.request_resources]
    res = observed & ~pl.col("_fail") & pl.col("_queue").is_in(with_cb)
    df = df.with_columns(res.alias("_res"))
    lost = df.select((observed & ~pl.col("_fail") & ~pl.col("_res")).sum()).item()
    if lost:
        diag.count("resources_failures_not_replayed", lost)
        diag.warn(f"{lost} IRP(s) whose EvtIoAllocateRequestResources failed in the trace are on "
                  "queues where the driver model registers no such callback (or has no "
                  "forward-progress policy): the framework never calls it there, so they keep "
                  "their ordinary request; set request_resources = true on the queue in --config "
                  "to replay those failures")
    return df.with_columns((pl.col("_fail") | pl.col("_res")).alias("_fail"))


def queue_operations(queue_ops: pl.DataFrame | None, driver: DriverModel,
               diag: Diagnostics) -> list[tuple]:
    """(ts, method, queue name) of every queue operation the model can replay, in time order."""
    if queue_ops is None or queue_ops.height == 0:
        return []
    cols = queue_ops.columns
    ops = queue_ops.select(
        pl.col("ts_ns").cast(pl.Int64),
        pl.col("kind").cast(pl.String),
        (pl.col("queue").cast(pl.String) if "queue" in cols else pl.lit(None, pl.String))
        .alias("queue"),
    ).with_row_index("_i").filter(pl.col("kind").is_in(QUEUE_KINDS) & pl.col("ts_ns").is_not_null())
    ops = ops.sort(["ts_ns", "_i"])
    single = len(driver.queues) == 1
    queues = {q.name for q in driver.queues}
    out, unknown = [], 0
    for ts, kind, qname in ops.select("ts_ns", "kind", "queue").iter_rows():
        if qname is None:
            qname = driver.default_queue.name
        elif qname not in queues:
            if not single:
                unknown += 1
                continue
            qname = driver.queues[0].name
        out.append((ts, _OP_METHOD[kind], qname))
    if unknown:
        diag.warn(f"{unknown} queue operation(s) name a queue the driver model does not have; "
                  "ignored")
        diag.count("queue_ops_unknown_queue", unknown)
    return out
