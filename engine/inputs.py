"""The replay's per-IRP inputs, computed once for all IRPs with polars/numpy: the queue each IRP
goes to, whether its allocation fails under the memory model (the verifier's draws included), what
the policy says, how long the driver holds it and with which status; and the queue operations
the model can replay."""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import ConfigError
from fpreplay.schema import (FAILED_ACTUALS, IO_QUEUE_MAJORS, IRP_EXTENSION_COLUMNS, QUEUE_KINDS,
                             STARVED_ACTUALS, conform_irps, paging_expr)

from .config import DriverModel, MemoryModel, examine_verdicts
from .facts import TraceFacts, observed_hold
from .status import ACTION_FAIL, ACTION_USE_RESERVED, STATUS_SUCCESS

DEFAULT_SERVICE_NS = 1_000_000
_OP_METHOD = {"queue_start": "start", "queue_stop": "stop", "queue_stop_purge": "stop_and_purge",
              "queue_purge": "purge", "queue_drain": "drain"}


def lcg_fail_mask(count: int, seed: int) -> np.ndarray:
    """The first `count` ForwardProgressFailRandom draws of LcgRandom(seed), all at once."""
    return lcg_draws(count, seed)[0]


def lcg_draws(count: int, state: int) -> tuple[np.ndarray, int]:
    """The next `count` ForwardProgressFailRandom draws of an LcgRandom whose state is `state`,
    and its state after them (a replay fed in chunks continues each device's generator).

    The LCG is affine, so draw k is (A^k * seed + C_k) mod 2^32; the (A^k, C_k) prefix is built
    by repeated composition (log2(count) numpy passes) instead of a Python loop.
    """
    if count == 0:
        return np.zeros(0, dtype=bool), state & 0xFFFFFFFF
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
    s = (a * np.uint64(state & 0xFFFFFFFF) + c) & mask
    value = (s >> np.uint64(16)) & np.uint64(0x7FFF)
    return (value % np.uint64(17)) == 0, int(s[-1])


class Draws:
    """Each device's random generator under the memory model (`random:P`: numpy's, seeded;
    `verifier-random`: the framework's LCG), continued from one chunk of IRPs to the next."""

    def __init__(self, memory: MemoryModel, seed: int):
        self.memory = memory
        self.seed = memory.seed if memory.seed is not None else seed
        self._state: dict[int, object] = {}

    def take(self, device: int, count: int) -> np.ndarray:
        """The device's next `count` draws: True = the allocation fails."""
        if self.memory.kind == "random":
            rng = self._state.setdefault(device, None) or np.random.default_rng(self.seed)
            self._state[device] = rng
            return rng.random(count) < self.memory.probability
        mask, self._state[device] = lcg_draws(count, self._state.get(device, self.seed))
        return mask


def _hold_and_status(df: pl.DataFrame, service_time_ns: int | None,
                     facts: TraceFacts) -> pl.DataFrame:
    """How long the driver holds each IRP once delivered, and the status it completes it with.

    Delivery seen in the trace (deliver_ns known) and completed: complete_ns - deliver_ns, the
    driver's own hold; for an IRP that waited parked, service_ns would count the wait again.
    Otherwise served in the trace (service_ns known): observed service and status. Completed in
    the trace without a service time and not failed by the framework: complete_ns - arrive_ns,
    observed status. Never completed in the trace (actual incomplete): never completes. IRPs the
    trace never saw served (alloc_failed, refused): median observed hold (as above) of the same
    device's served IRPs with the same major, else of all its served IRPs, else 1 ms, or
    --service-time; they complete STATUS_SUCCESS. The medians are the whole trace's (facts).
    """
    failed_in_trace = pl.col("actual").is_in(FAILED_ACTUALS).fill_null(False)
    df = df.with_columns(observed_hold().alias("_observed_hold"))
    if service_time_ns is not None:
        estimate = pl.lit(service_time_ns, dtype=pl.Int64)
    else:
        overall, by_major = facts.hold_all, facts.hold_by_major
        device_wide = pl.col("_dev").cast(pl.Int64).replace_strict(
            list(overall), list(overall.values()), default=DEFAULT_SERVICE_NS,
            return_dtype=pl.Int64)
        estimate = (pl.col("_dev").cast(pl.Int64) * 256 + pl.col("major")).replace_strict(
            list(by_major), list(by_major.values()), default=device_wide, return_dtype=pl.Int64)
    hold = (pl.when(pl.col("_observed_hold").is_not_null()).then(pl.col("_observed_hold"))
            .when(pl.col("complete_ns").is_not_null() & ~failed_in_trace)
            .then(pl.col("complete_ns") - pl.col("arrive_ns"))
            .when(failed_in_trace).then(estimate)
            .otherwise(None))
    dstatus = (pl.when(failed_in_trace).then(pl.lit(STATUS_SUCCESS, pl.UInt32))
               .otherwise(pl.col("status").fill_null(STATUS_SUCCESS)))
    return df.with_columns(hold.clip(lower_bound=0).cast(pl.Int64).alias("_hold"),
                           dstatus.cast(pl.UInt32).alias("_dstatus")).drop("_observed_hold")


def route_queues(df: pl.DataFrame, driver: DriverModel) -> pl.Series:
    """`_queue`: the driver model's queue each IRP reaches (the queue the trace names if the
    model has it, else by major, else the default queue)."""
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
            incidents, service_time_ns, facts: TraceFacts, draws: Draws, tally: Counter,
            row_offset: int = 0) -> pl.DataFrame:
    """The table the replay runs on, in processing order (arrival, then input order), for one
    chunk of the lifecycle table (rows numbered from `row_offset`); `facts` says what needs the
    whole trace, `draws` continues each device's generator, `tally` counts what the replay's
    warnings will say (prepare_warnings words them once, for every chunk).

    Columns added: _dev (index into facts.devices), _queue, _io (the IRP reaches an I/O queue),
    _fpq (that queue has forward progress), _hold, _dstatus, _fail (no ordinary request),
    _res (EvtIoAllocateRequestResources fails), _verdict (the policy's action)."""
    df = conform_irps(irps).with_row_index("row", offset=row_offset).with_columns(
        (irps[c].cast(t, strict=False) if c in irps.columns else pl.lit(None, t)).alias(c)
        for c, t in IRP_EXTENSION_COLUMNS.items())   # the extensions where the table has them
    missing = df["arrive_ns"].null_count()
    if missing:
        tally["arrive_missing"] += missing
        first = facts.first_arrival_ns
        df = df.with_columns(pl.col("arrive_ns").fill_null(
            pl.lit(first, pl.Int64) if first is not None else pl.col("arrive_ns").min())
            .fill_null(0))
    # Processing order: arrival time, then input order.
    if not df["arrive_ns"].is_sorted():    # lifecycle tables usually come in arrival order
        df = df.sort(["arrive_ns", "row"])
    devices = facts.devices
    dev = (pl.lit(0, pl.UInt32) if len(devices) <= 1 else
           pl.col("device").replace_strict(devices, list(range(len(devices))),
                                           return_dtype=pl.UInt32))
    tally["major_unknown_replayed_as_io"] += df["major"].null_count()
    # `paging` is the framework's own test; fill it where the table does not say. Without
    # irp_flags, a paging that is not true is a guess (the lifecycles write false for unknown).
    df = df.with_columns(dev.alias("_dev"), route_queues(df, driver),
                         pl.col("paging").fill_null(paging_expr()), _reaches_queue(),
                         (~pl.col("paging").fill_null(False) & pl.col("irp_flags").is_null())
                         .alias("_paging_unknown"))
    df = _hold_and_status(df, service_time_ns, facts)
    is_fp = pl.col("_queue").is_in([q for q, p in fp_queues.items() if p is not None])
    injectable = is_fp & pl.col("_io")
    actual_failed = pl.col("actual").is_in(STARVED_ACTUALS).fill_null(False)
    # A failed EvtIoAllocateRequestResources is not a failed allocation: the request object was
    # created (so the verifier's injection still draws for it), then the driver's callback failed.
    observed_resources = actual_failed & (pl.col("alloc_failure") == "resources").fill_null(False)
    df = _allocation_failures(df, memory, actual_failed & ~observed_resources, injectable,
                              incidents, draws)
    df = _resources_failures(df, driver, fp_queues, memory, observed_resources & pl.col("_io"),
                             tally)
    _count_paging_unknown(df, fp_queues, tally)
    return df.with_columns(_verdicts(df, fp_queues).alias("_verdict"), is_fp.alias("_fpq"))


# What prepare counts, in the order its warnings are given: (tally key, counted in the
# counters, the warning with {n} for the count).
_PREPARE_WARNINGS = (
    ("arrive_missing", False,
     "{n} IRP(s) without arrive_ns were simulated at the first arrival time"),
    ("major_unknown_replayed_as_io", True,
     "{n} IRP(s) without a major function were replayed as I/O-queue requests (READ, WRITE or "
     "DEVICE_CONTROL would reach the queue; other majors would not)"),
    ("resources_failures_not_replayed", True,
     "{n} IRP(s) whose EvtIoAllocateRequestResources failed in the trace are on queues where "
     "the driver model registers no such callback (or has no forward-progress policy): the "
     "framework never calls it there, so they keep their ordinary request; set "
     "request_resources = true on the queue in --config to replay those failures"),
    ("paging_unknown_taken_as_non_paging", True,
     "{n} IRP(s) without irp_flags (the trace does not say whether they are paging I/O) met a "
     "paging policy without an ordinary request: taken as non-paging, so refused"),
)


def prepare_warnings(tally: Counter, diag: Diagnostics) -> None:
    """The warnings and counters of what prepare counted, over every chunk, in one order."""
    for key, counted, message in _PREPARE_WARNINGS:
        n = tally[key]
        if n:
            if counted:
                diag.count(key, n)
            diag.warn(message.format(n=n))


def _count_paging_unknown(df: pl.DataFrame, fp_queues: dict, tally: Counter) -> None:
    """A paging:N policy decides by the IRP's paging flag; where the trace gives neither
    irp_flags nor paging the IRP is taken as non-paging, and so refused: count them."""
    paging_queues = [q for q, p in fp_queues.items() if p is not None and p.kind == "paging"]
    if not paging_queues:
        return
    tally["paging_unknown_taken_as_non_paging"] += df.select(
        (pl.col("_paging_unknown") & pl.col("_io") & pl.col("_fail")
         & pl.col("_queue").is_in(paging_queues)).sum()).item()


def _reaches_queue() -> pl.Expr:
    """`_io`: only READ, WRITE, DEVICE_CONTROL and INTERNAL_DEVICE_CONTROL reach an I/O queue
    (FxDevice::GetDispatchPackage; forward-progress.md 3.7): every other major passes by the
    queues at its observed times. An IRP whose major the trace does not tell is taken as
    reaching its queue (counted and warned)."""
    return pl.col("major").is_in(IO_QUEUE_MAJORS).fill_null(True).alias("_io")


def _allocation_failures(df: pl.DataFrame, memory: MemoryModel, observed: pl.Expr,
                         injectable: pl.Expr, incidents, draws: Draws):
    """`_fail`: the IRP gets no ordinary request object under the memory model. `observed`
    replays the trace's failures; fail-all and verifier-random inject on top, only where the
    framework would (an IRP reaching a forward-progress queue); `random` and `window` replace
    them, again only for IRPs that reach a queue. Every random draw is per device, so that a
    device replays the same alone or with others."""
    kind = memory.kind
    if kind == "window":
        if incidents is None:
            raise ConfigError("memory model 'window' needs the detected low-memory incidents")
        if isinstance(incidents, pl.DataFrame):
            incidents = incidents.select("start_ns", "end_ns").rows()
        in_window = pl.lit(False)
        for start, end in incidents:
            in_window = in_window | pl.col("arrive_ns").is_between(int(start), int(end))
        return df.with_columns((in_window & pl.col("_io")).alias("_fail"))
    if kind == "random":
        return df.with_columns(pl.Series("_fail", _per_device(df, pl.col("_io"), draws)))
    df = df.with_columns((observed & pl.col("_io")).alias("_fail"))
    if kind == "fail-all":
        return df.with_columns((pl.col("_fail") | injectable).alias("_fail"))
    if kind == "verifier-random":
        # Draws happen only after a real allocation succeeded on a forward-progress queue, in
        # arrival order, from the device's one generator shared by its queues (4.7).
        drawn = _per_device(df, injectable & ~pl.col("_fail"), draws)
        return df.with_columns((pl.col("_fail") | pl.Series(drawn)).alias("_fail"))
    return df


def _per_device(df: pl.DataFrame, where: pl.Expr, draws: Draws) -> np.ndarray:
    """A boolean per row: each device's next draws spread over its rows where `where` holds, in
    processing order; False elsewhere."""
    mask = np.zeros(df.height, dtype=bool)
    picked = df.select(where.fill_null(False).alias("w"), "_dev").with_row_index("_i") \
        .filter(pl.col("w"))
    for (d,), rows in picked.partition_by("_dev", as_dict=True, maintain_order=True).items():
        idx = rows["_i"].to_numpy()
        mask[idx] = draws.take(int(d), len(idx))
    return mask


def _verdicts(df: pl.DataFrame, fp_queues: dict) -> pl.Expr:
    """The policy's action for every IRP, per queue (evaluated even where unused: cheap)."""
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
    return verdict


def _resources_failures(df: pl.DataFrame, driver: DriverModel, fp_queues: dict,
                        memory: MemoryModel, observed: pl.Expr, tally: Counter) -> pl.DataFrame:
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
    tally["resources_failures_not_replayed"] += df.select(
        (observed & ~pl.col("_fail") & ~pl.col("_res")).sum()).item()
    return df.with_columns((pl.col("_fail") | pl.col("_res")).alias("_fail"))


def queue_operations(queue_ops: pl.DataFrame | None, driver: DriverModel, devices: list,
                     diag: Diagnostics) -> list[tuple]:
    """(ts, method, queue name, device index) of every queue operation the model can replay, in
    time order. An operation acts on its own device's queue only; one that names no device goes
    to the unnamed device, or to the only device of the trace; with several named devices it
    cannot be placed and is ignored (counted and warned). Operations on a device without IRPs
    change nothing and are dropped."""
    if queue_ops is None or queue_ops.height == 0:
        return []
    cols = queue_ops.columns
    ops = queue_ops.select(
        pl.col("ts_ns").cast(pl.Int64),
        pl.col("kind").cast(pl.String),
        *[(pl.col(c).cast(pl.String) if c in cols else pl.lit(None, pl.String)).alias(c)
          for c in ("queue", "device")],
    ).with_row_index("_i").filter(pl.col("kind").is_in(QUEUE_KINDS) & pl.col("ts_ns").is_not_null())
    ops = ops.sort(["ts_ns", "_i"])
    single = len(driver.queues) == 1
    queues = {q.name for q in driver.queues}
    index = {d: i for i, d in enumerate(devices)}
    if None not in index and len(devices) == 1:
        index[None] = 0
    out, unknown, unplaced = [], 0, 0
    for ts, kind, qname, device in ops.select("ts_ns", "kind", "queue", "device").iter_rows():
        if qname is None:
            qname = driver.default_queue.name
        elif qname not in queues:
            if not single:
                unknown += 1
                continue
            qname = driver.queues[0].name
        if device not in index:
            unplaced += device is None
            continue
        out.append((ts, _OP_METHOD[kind], qname, index[device]))
    if unknown:
        diag.warn(f"{unknown} queue operation(s) name a queue the driver model does not have; "
                  "ignored")
        diag.count("queue_ops_unknown_queue", unknown)
    if unplaced:
        diag.warn(f"{unplaced} queue operation(s) name no device while the trace has "
                  f"{len(devices)} devices: ignored (a queue operation acts on one device only)")
        diag.count("queue_ops_without_device", unplaced)
    return out
