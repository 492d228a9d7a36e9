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

import gc
import heapq
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import ConfigError
from fpreplay.schema import (IRP_EXTENSION_COLUMNS, IRP_MJ_CREATE, QUEUE_KINDS, conform_irps,
                             paging_expr)

from .config import DriverModel, MemoryModel, examine_verdicts
from .model import Device, ForwardProgressPolicy, Irp
from .policies import Precomputed
from .status import (ACTION_FAIL, ACTION_USE_RESERVED, POLICY_ALWAYS, POLICY_EXAMINE,
                     POLICY_PAGING, STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES,
                     STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS, STATUS_UNSUCCESSFUL)

OUTCOMES = ("normal", "reserved", "parked_reserved", "refused", "cancelled", "invalid_state",
            "alloc_failed", "parked_at_end")
OUTCOME_SCHEMA = {
    "row": pl.UInt32, "queue": pl.String, "outcome": pl.String, "status": pl.UInt32,
    "alloc_failed": pl.Boolean, "parked": pl.Boolean, "deliver_ns": pl.Int64,
    "complete_ns": pl.Int64, "park_wait_ns": pl.Int64, "reserved_id": pl.Int32,
}
TIMELINE_SCHEMA = {
    "queue": pl.String, "ts_ns": pl.Int64, "reserved_in_use": pl.Int64,
    "reserved_total": pl.Int64, "parked": pl.Int64, "outstanding": pl.Int64,
}
DEFAULT_SERVICE_NS = 1_000_000
POOL_BUILD_LIMIT = 1 << 16       # reserved requests built as objects before capping (see simulate)
_POLICY_CODE = {"always": POLICY_ALWAYS, "paging": POLICY_PAGING, "examine": POLICY_EXAMINE}
_OP_METHOD = {"queue_start": "start", "queue_stop": "stop", "queue_stop_purge": "stop_and_purge",
              "queue_purge": "purge", "queue_drain": "drain"}
# Which `actual` values the observed memory model treats as a failed allocation.
_OBSERVED_FAILED = ("alloc_failed", "refused", "reserved")
_FATE_OUTCOME = {"alloc_failed": "alloc_failed", "refused": "refused", "cancelled": "cancelled",
                 "invalid_state": "invalid_state"}


@dataclass
class SimulationResult:
    outcomes: pl.DataFrame
    timeline: pl.DataFrame
    reserve_high_water: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


def simulated_actual() -> pl.Expr:
    """The contract's `actual` vocabulary for a simulated outcome (over `outcome`, `status`), so
    that a replay can be compared with what the trace saw."""
    status = pl.col("status")
    return (pl.when(pl.col("outcome").is_in(["reserved", "parked_reserved"]))
            .then(pl.lit("reserved"))
            .when(pl.col("outcome").is_in(["refused", "alloc_failed", "cancelled",
                                           "invalid_state"])).then(pl.col("outcome"))
            .when(pl.col("outcome") == "parked_at_end").then(pl.lit("incomplete"))
            .when(status.is_null()).then(pl.lit("incomplete"))
            .when(status == STATUS_CANCELLED).then(pl.lit("cancelled"))
            .when(status == STATUS_INVALID_DEVICE_STATE).then(pl.lit("invalid_state"))
            .when(status >= 0xC0000000).then(pl.lit("failed"))
            .otherwise(pl.lit("ok")).alias("actual"))


# --- per-IRP inputs, vectorized ----------------------------------------------------------------
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
    failed_in_trace = pl.col("actual").is_in(["alloc_failed", "refused"]).fill_null(False)
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


def _prepare(irps: pl.DataFrame, driver: DriverModel, memory: MemoryModel, fp_queues: dict,
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
    actual_failed = pl.col("actual").is_in(_OBSERVED_FAILED).fill_null(False)
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


# --- the event loop over the queue model -------------------------------------------------------
class _NullLog:
    """The replay reads outcomes off the IRPs; the effect log would only cost memory."""

    __slots__ = ()

    def append(self, item) -> None:
        pass


def _request_resources(queue, request) -> int:
    """The driver's EvtIoAllocateRequestResources: fails where the trace saw it fail."""
    return STATUS_INSUFFICIENT_RESOURCES if request.irp.payload[8] else STATUS_SUCCESS


class _Replay:
    """Drives a model Device with the rows that need event-by-event simulation."""

    def __init__(self, driver: DriverModel, fp_queues: dict, race_windows: bool,
                 diag: Diagnostics, pool_caps: dict[str, int]):
        self.diag = diag
        self.race = race_windows
        dev = self.device = Device(bound_version=driver.bound_version)
        dev.tracing = False
        dev.log = _NullLog()
        self.queues = {}
        self.cancelable = {}
        for qm in driver.queues:
            q = dev.create_queue(qm.name, qm.dispatch, qm.limit, default=qm.default,
                                 majors=qm.majors)
            q.allow_zero_length = True     # the trace shows what the driver did with them
            q.ready_notify = self._retrieve_all
            self.queues[qm.name] = q
            self.cancelable[qm.name] = qm.cancelable
            pol = fp_queues[qm.name]
            if pol is not None:
                fail_at = qm.reserved_resources_fail_at
                res_cb = None
                if qm.reserved_resources:
                    calls = [0]

                    def res_cb(queue, request, calls=calls, fail_at=fail_at):
                        calls[0] += 1
                        return STATUS_INSUFFICIENT_RESOURCES if calls[0] == fail_at \
                            else STATUS_SUCCESS
                code = _POLICY_CODE[pol.kind]
                status = q.assign_forward_progress(ForwardProgressPolicy(
                    total=min(pol.reserved, pool_caps.get(qm.name, pol.reserved)), policy=code,
                    reserved_resources=res_cb,
                    request_resources=_request_resources if qm.request_resources else None,
                    strategy=Precomputed(code, pol.kind)))
                assert status == STATUS_SUCCESS   # failing pre-allocations were found earlier
        dev.on_present = self._on_present
        dev.on_irp_complete = self._on_complete
        self.now = 0
        self.heap: list = []
        self.seq = 0
        self.snapshots: list[tuple] = []
        self.last_state: dict[str, tuple] = {}

    def _retrieve_all(self, q):
        # A manual queue's driver retrieves whatever is ready when notified.
        while q.retrieve_next() is not None:
            pass

    def _on_present(self, q, r):
        irp = r.irp
        rec = irp.payload
        rec[0] = self.now
        rec[1] = r.reserved
        rec[2] = r.index
        if self.cancelable[q.name]:
            self.device.mark_cancelable(r)
        hold = rec[4]
        if hold is not None:
            self.seq += 1
            heapq.heappush(self.heap, (self.now + hold, 0, self.seq, r, irp))

    def _on_complete(self, irp):
        irp.payload[3] = self.now

    def snapshot(self, q) -> None:
        fp = q.fp
        state = (len(fp.in_use) if fp else 0, len(fp.parked) if fp else 0, q.driver_count)
        if self.last_state.get(q.name) != state:
            self.last_state[q.name] = state
            self.snapshots.append((q.name, self.now, *state))

    def run(self, arrivals: list[tuple], ops: list[tuple]) -> None:
        """arrivals: (ts, irp) sorted; ops: (ts, method, queue) sorted."""
        dev, heap = self.device, self.heap
        ai, oi, na, no = 0, 0, len(arrivals), len(ops)
        inf = float("inf")
        while True:
            ta = arrivals[ai][0] if ai < na else inf
            to = ops[oi][0] if oi < no else inf
            tc = heap[0][0] if heap else inf
            if tc <= ta and tc <= to:
                if tc == inf:
                    break
                t, _, _, r, irp = heapq.heappop(heap)
                self.now = t
                if irp.done or r.irp is not irp:
                    continue                          # already completed (cancelled) earlier
                if self.race and ai < na and arrivals[ai][0] == t:
                    a = arrivals[ai][1]
                    qa = self.queues[a.payload[6]]
                    if qa is r.owner and not a.alloc_ok and not r.owner.fp.free:
                        # Lost wake-up (5.9): this arrival races the last member's recycle.
                        dev.concurrent_arrival = (qa, a)
                        ai += 1
                q = r.current_queue
                owner = r.owner
                dev.complete(r, irp.payload[5])
                if dev.concurrent_arrival is not None:   # the race did not open: arrive normally
                    qa, a = dev.concurrent_arrival
                    dev.concurrent_arrival = None
                    qa.arrive(a)
                self.snapshot(q)
                if owner is not None and owner is not q:
                    self.snapshot(owner)
            elif to <= ta:
                t, method, q = ops[oi]
                oi += 1
                self.now = t
                try:
                    getattr(q, method)()
                except Exception as e:               # a bugcheck in the real system
                    self.diag.warn(f"queue {q.name}: {method} at {t} failed: {e}")
                self.snapshot(q)
            else:
                t, irp = arrivals[ai]
                ai += 1
                self.now = t
                q = self.queues[irp.payload[6]]
                q.arrive(irp)
                self.snapshot(q)


def _queue_ops(queue_ops: pl.DataFrame | None, driver: DriverModel,
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
    op_list = _queue_ops(queue_ops, driver, diag)
    df = _prepare(irps, driver, memory, fp_queues, incidents, service_time_ns, seed, diag)

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
    replay = _Replay(driver, fp_queues, race_windows, diag, caps)
    ops = [(ts, method, replay.queues[name]) for ts, method, name in op_list]
    df = df.with_columns(slow_expr.alias("_slow"))

    slow = df.filter(pl.col("_slow")).select(
        "row", "arrive_ns", "major", "minor", "irp_flags", "bytes", "_queue", "_fail",
        "_verdict", "_hold", "_dstatus", "_res")
    arrivals, irp_objs = [], []
    gc_was_enabled = gc.isenabled()
    gc.disable()     # many small long-lived objects: the cyclic collector only costs time here
    try:             # (reading the outcomes off them too: their tuples would trigger it)
        _run_slow(slow, arrivals, irp_objs, replay, ops)
        return _collect(df, irp_objs, replay, driver, fp_queues, diag)
    finally:
        if gc_was_enabled:
            gc.enable()


def _run_slow(slow, arrivals, irp_objs, replay, ops) -> None:
    for row, arrive, major, minor, flags, nbytes, qname, fail, verdict, hold, dstatus, res in \
            slow.iter_rows():
        # payload: deliver_ns, reserved, reserved index, complete_ns, hold, status, queue,
        # arrive_ns, does EvtIoAllocateRequestResources fail (the allocation itself succeeded)
        irp = Irp(row, major if major is not None else 0xFF, minor=minor or 0, flags=flags or 0,
                  length=nbytes, alloc_ok=not fail or res, verdict=int(verdict), row=row,
                  payload=[None, False, None, None, hold, dstatus, qname, arrive, res])
        arrivals.append((arrive, irp))
        irp_objs.append(irp)
    replay.run(arrivals, ops)


class IrpOutcome(NamedTuple):
    """One IRP's fate in the simulation: a row of SimulationResult.outcomes, field for field."""

    row: int
    queue: str
    outcome: str
    status: int | None
    alloc_failed: bool
    parked: bool
    deliver_ns: int | None
    complete_ns: int | None
    park_wait_ns: int | None
    reserved_id: int | None


def _record(irp: Irp) -> IrpOutcome:
    """Read the model's verdict off an IRP the event loop ran."""
    deliver, reserved, index, complete, _, _, queue, arrive, _ = irp.payload
    if deliver is not None:
        outcome = "parked_reserved" if irp.parked else ("reserved" if reserved else "normal")
    elif irp.done:
        outcome = _FATE_OUTCOME.get(irp.fate, "normal")
    elif irp.location is not None and irp.location[0] == "parked":
        outcome = "parked_at_end"
    else:        # bound to a request, waiting in a queue that never dispatched it
        r = irp.request
        outcome = ("parked_reserved" if irp.parked else "reserved") \
            if r is not None and r.reserved else "normal"
    return IrpOutcome(irp.row, queue, outcome, irp.status, not irp.alloc_ok, irp.parked,
                      deliver, complete,
                      deliver - arrive if deliver is not None and irp.parked else None,
                      index if reserved else None)


def _collect(df, irp_objs, replay, driver, fp_queues, diag) -> SimulationResult:

    # Column by column (a row-wise frame of NamedTuples costs more than the records do).
    records = [_record(irp) for irp in irp_objs]
    columns = zip(*records) if records else ([] for _ in OUTCOME_SCHEMA)
    slow_out = pl.DataFrame([pl.Series(name, values, dtype=dtype)
                             for (name, dtype), values in zip(OUTCOME_SCHEMA.items(), columns)])
    del records

    # Fast rows, vectorized: normal delivery, refusal, or a non-FP allocation failure.
    refused = pl.col("_fpq") & pl.col("_not_create") & pl.col("_fail")
    fast_cols = df.filter(~pl.col("_slow")).select(
        pl.col("row"),
        pl.col("_queue").alias("queue"),
        pl.when(~pl.col("_fail")).then(pl.lit("normal"))
        .when(refused).then(pl.lit("refused")).otherwise(pl.lit("alloc_failed")).alias("outcome"),
        pl.when(~pl.col("_fail")).then(pl.when(pl.col("_hold").is_not_null())
                                       .then(pl.col("_dstatus")))
        .when(refused).then(pl.lit(STATUS_UNSUCCESSFUL, pl.UInt32))
        .otherwise(pl.lit(STATUS_INSUFFICIENT_RESOURCES, pl.UInt32)).cast(pl.UInt32)
        .alias("status"),
        (pl.col("_fail") & ~pl.col("_res")).alias("alloc_failed"),
        pl.lit(False).alias("parked"),
        pl.when(~pl.col("_fail")).then(pl.col("arrive_ns")).cast(pl.Int64).alias("deliver_ns"),
        pl.when(~pl.col("_fail")).then(pl.col("arrive_ns") + pl.col("_hold"))
        .otherwise(pl.col("arrive_ns")).cast(pl.Int64).alias("complete_ns"),
        pl.lit(None, pl.Int64).alias("park_wait_ns"),
        pl.lit(None, pl.Int32).alias("reserved_id"),
    )
    outcomes = pl.concat([fast_cols.cast(OUTCOME_SCHEMA), slow_out]).sort("row")

    timeline = _timeline(replay, df, driver, fp_queues)
    high = {name: (q.fp.high_water if q.fp is not None else 0)
            for name, q in replay.queues.items()}
    lost = sum(1 for code, _ in replay.device.diagnostics if code == "LOST_WAKEUP")
    if lost:
        diag.warn(f"race window: {lost} IRP(s) parked while a reserved request went back to the "
                  "free list (lost wake-up); they wait for the next recycle")
        diag.count("lost_wakeup", lost)
    for code, detail in replay.device.diagnostics:
        if code != "LOST_WAKEUP":
            diag.warn(f"{code}: {detail}")
    counts = outcomes["outcome"].value_counts()
    for o, c in counts.iter_rows():
        diag.count(f"outcome_{o}", c)
    return SimulationResult(outcomes=outcomes, timeline=timeline, reserve_high_water=high,
                            warnings=list(diag.warnings), counters=dict(diag.counters))


def _timeline(replay: _Replay, df: pl.DataFrame, driver: DriverModel, fp_queues) -> pl.DataFrame:
    """One row per (queue, time) at which a count changed, from the model's snapshots plus the
    vectorized rows' deliveries (+1 outstanding) and completions (-1)."""
    names = [q.name for q in driver.queues]
    qid = {n: i for i, n in enumerate(names)}
    snaps = pl.DataFrame(replay.snapshots, schema={"queue": pl.String, "ts_ns": pl.Int64,
                                                   "in_use": pl.Int64, "parked": pl.Int64,
                                                   "out": pl.Int64}, orient="row")
    snaps = snaps.select(pl.col("queue").replace_strict(qid, return_dtype=pl.UInt32).alias("q"),
                         "ts_ns", "in_use", "parked", "out")
    deltas = snaps.with_columns(
        (pl.col(c) - pl.col(c).shift(1, fill_value=0).over("q")).alias(c)
        for c in ("in_use", "parked", "out"))
    fast = df.filter(~pl.col("_slow") & ~pl.col("_fail")).select(
        pl.col("_queue").replace_strict(qid, return_dtype=pl.UInt32).alias("q"),
        "arrive_ns", "_hold")
    zero = pl.lit(0, pl.Int64)
    # Each part is already in time order per queue (snapshots are taken as the loop runs, df is
    # sorted by arrival) except the completions: sort those, then merge instead of a full sort.
    plus = fast.select("q", pl.col("arrive_ns").alias("ts_ns"), zero.alias("in_use"),
                       zero.alias("parked"), pl.lit(1, pl.Int64).alias("out"))
    minus = fast.filter(pl.col("_hold").is_not_null()).select(
        "q", (pl.col("arrive_ns") + pl.col("_hold")).alias("ts_ns"), zero.alias("in_use"),
        zero.alias("parked"), pl.lit(-1, pl.Int64).alias("out")).sort("ts_ns")
    parts = []
    for i in range(len(names)):
        merged = None
        for part in (deltas, plus, minus):
            p = part.filter(pl.col("q") == i) if len(names) > 1 else part
            merged = p if merged is None else merged.merge_sorted(p, key="ts_ns")
        parts.append(merged.with_columns(pl.col(c).cum_sum()
                                         for c in ("in_use", "parked", "out")))
    tl = pl.concat(parts)
    # Keep the state after the last change at each (queue, time).
    last = (pl.col("q") != pl.col("q").shift(-1)) | (pl.col("ts_ns") != pl.col("ts_ns").shift(-1))
    tl = tl.filter(last.fill_null(True))
    # ...and only where something changed (net-zero moments, e.g. an IRP served in 0 ns, go).
    changed = pl.lit(False)
    for c in ("in_use", "parked", "out"):
        changed = changed | (pl.col(c) != pl.col(c).shift(1, fill_value=0).over("q"))
    tl = tl.filter(changed)
    totals = [fp_queues[n].reserved if fp_queues[n] is not None else 0 for n in names]
    return tl.select(
        pl.col("q").replace_strict(list(range(len(names))), names, return_dtype=pl.String)
        .alias("queue"),
        "ts_ns", pl.col("in_use").alias("reserved_in_use"),
        pl.col("q").replace_strict(list(range(len(names))), totals, return_dtype=pl.Int64)
        .alias("reserved_total"),
        "parked", pl.col("out").alias("outstanding")).cast(TIMELINE_SCHEMA)
