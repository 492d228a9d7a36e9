"""Property tests of the engine over random IRP streams and random queue operations."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from fpreplay.engine import (OUTCOMES, load_driver_model, parse_memory, parse_policy, simulate,
                             simulated_actual)
from fpreplay.engine.config import DriverModel, QueueModel
from fpreplay.engine.model import (MANUAL, PARALLEL, SEQUENTIAL, Device, ForwardProgressPolicy,
                                   Irp)
from fpreplay.engine.status import ACTION_FAIL, ACTION_USE_RESERVED, STATUS_SUCCESS
from fpreplay.schema import IO_QUEUE_MAJORS, QUEUE_KINDS

# --- the model, event by event --------------------------------------------------------------
model_ops = st.lists(st.one_of(
    st.tuples(st.just("arrive"), st.booleans(), st.sampled_from([ACTION_USE_RESERVED] * 3
                                                                + [ACTION_FAIL]),
              st.booleans()),
    st.tuples(st.just("complete"), st.integers(0, 50)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("retrieve")),
    st.tuples(st.sampled_from(["purge", "stop", "start", "drain", "stop_and_purge"])),
), max_size=60)


def check_pool(q, n):
    fp = q.fp
    free, in_use = set(fp.free), set(fp.in_use)
    assert len(fp.free) + len(fp.in_use) == n                   # reserved in use + free == N
    assert not free & in_use and free | in_use == set(fp.members)
    assert all(r.irp is None for r in fp.free)
    if fp.parked:
        assert not fp.free                                      # parks only with none free


@given(n=st.integers(1, 4), dispatch=st.sampled_from([(PARALLEL, None), (PARALLEL, 2),
                                                      (SEQUENTIAL, None), (MANUAL, None)]),
       ops=model_ops, verifier=st.booleans())
def test_model_invariants_under_random_operations(n, dispatch, ops, verifier):
    dev = Device(kmdf_verifier=verifier)
    q = dev.create_queue("A", dispatch[0], dispatch[1], default=True)
    from fpreplay.engine.policies import Precomputed
    q.assign_forward_progress(ForwardProgressPolicy(n, strategy=Precomputed(1, "always")))
    irps = []
    for op in ops:
        if op[0] == "arrive":
            irp = Irp(len(irps), alloc_ok=op[1], verdict=op[2], cancel=op[3] and not op[1])
            irps.append(irp)
            q.arrive(irp)
        elif op[0] == "complete":
            owned = list(q.driver_owned)
            if owned:
                dev.complete(owned[op[1] % len(owned)], STATUS_SUCCESS)
        elif op[0] == "cancel":
            if irps:
                irp = irps[op[1] % len(irps)]
                if not irp.done:
                    dev.cancel_irp(irp)
        elif op[0] == "retrieve":
            if dispatch[0] == MANUAL:
                q.retrieve_next()
        else:
            getattr(q, op[0])()
        check_pool(q, n)
    # Parked IRPs are served in arrival order: binds of parked IRPs follow their park order.
    park_order = [e[2] for e in dev.log if e[0] == "park"]
    bound = [e[3] for e in dev.log if e[0] == "bind"]
    assert bound == sorted(bound, key=park_order.index)
    # Every IRP is in exactly one place: completed, parked, queued, or with the driver.
    for irp in irps:
        places = [irp.done, irp in q.fp.parked, any(r.irp is irp for r in q.main),
                  any(r.irp is irp for r in q.driver_owned)]
        assert sum(places) == 1, (irp, places)


# --- simulate(), over random lifecycle tables ------------------------------------------------
STATUS_OF = {"ok": 0, "reserved": 0, "failed": 0xC0000010, "cancelled": 0xC0000120,
             "invalid_state": 0xC0000184, "alloc_failed": 0xC000009A, "refused": 0xC0000001,
             "incomplete": None}


@st.composite
def irp_tables(draw, actuals=tuple(STATUS_OF), max_n=30):
    n = draw(st.integers(0, max_n))
    rows = []
    for i in range(n):
        arrive = draw(st.integers(0, 40)) * 1000
        actual = draw(st.sampled_from(actuals))
        service = draw(st.integers(0, 30)) * 1000
        never_served = actual in ("alloc_failed", "refused")
        rows.append({
            "irp": 0x1000 + i, "major": draw(st.sampled_from([0, 3, 4, 0x0D, 0x0E])),
            "irp_flags": draw(st.sampled_from([0, 2, 0x40, 0x43])), "arrive_ns": arrive,
            "complete_ns": None if actual == "incomplete" else
            arrive + (0 if never_served else service),
            "service_ns": None if never_served or actual == "incomplete" else service,
            "status": STATUS_OF[actual], "actual": actual,
        })
    schema = {"irp": pl.UInt64, "major": pl.UInt8, "irp_flags": pl.UInt32, "arrive_ns": pl.Int64,
              "complete_ns": pl.Int64, "service_ns": pl.Int64, "status": pl.UInt32,
              "actual": pl.String}
    return pl.DataFrame(rows, schema=schema)


queue_op_tables = st.lists(st.tuples(st.integers(0, 60).map(lambda t: t * 1000),
                                     st.sampled_from(QUEUE_KINDS)), max_size=4).map(
    lambda ops: pl.DataFrame({"ts_ns": [t for t, _ in ops], "kind": [k for _, k in ops],
                              "queue": [None] * len(ops)},
                             schema={"ts_ns": pl.Int64, "kind": pl.String, "queue": pl.String}))

policies = st.sampled_from(["none", "always:1", "always:2", "paging:1", "paging:3",
                            "examine:2:paging OR major = 4"])
dispatches = st.sampled_from([("parallel", None), ("parallel", 2), ("sequential", None),
                              ("manual", None)])
memories = st.sampled_from(["observed", "fail-all", "verifier-random:7", "random:0.3:5"])


def driver_for(policy: str, dispatch) -> DriverModel:
    q = QueueModel(name="default", default=True, dispatch=dispatch[0], limit=dispatch[1],
                   policy=parse_policy(policy))
    return DriverModel(queues=(q,))


@given(irps=irp_tables(), policy=policies, dispatch=dispatches, memory=memories,
       ops=queue_op_tables)
def test_simulation_properties(irps, policy, dispatch, memory, ops):
    driver = driver_for(policy, dispatch)
    mem = parse_memory(memory)
    res = simulate(irps, driver, mem, queue_ops=ops, seed=3)
    out = res.outcomes
    # Every IRP ends in exactly one outcome, one row per input row, in input order.
    assert out.height == irps.height and out["row"].to_list() == list(range(irps.height))
    assert out["outcome"].null_count() == 0 and set(out["outcome"]) <= set(OUTCOMES)
    both = pl.concat([irps.select("arrive_ns"), out], how="horizontal")
    # Nothing is delivered (or completed) before it arrives.
    assert both.filter(pl.col("deliver_ns") < pl.col("arrive_ns")).height == 0
    assert both.filter(pl.col("complete_ns") < pl.col("arrive_ns")).height == 0
    n = parse_policy(policy).reserved
    tl = res.timeline
    assert tl.filter((pl.col("reserved_in_use") < 0) | (pl.col("reserved_in_use") > n)).height == 0
    # Parking only when no reserved request is free (race windows off).
    assert tl.filter((pl.col("parked") > 0) & (pl.col("reserved_in_use") < n)).height == 0
    assert res.reserve_high_water["default"] <= n
    # Parked IRPs are served in arrival order.
    # (One bound to a reserved request but still queued when the trace ends has no deliver_ns.)
    served = both.filter(pl.col("outcome") == "parked_reserved").sort("arrive_ns", "row")
    waits = [float("inf") if t is None else t for t in served["deliver_ns"].to_list()]
    assert waits == sorted(waits)
    # The fast path and the all-event-loop reference agree, and runs are deterministic.
    ref = simulate(irps, driver, mem, queue_ops=ops, seed=3, fast=False)
    assert out.equals(ref.outcomes) and res.timeline.equals(ref.timeline)
    again = simulate(irps, driver, mem, queue_ops=ops, seed=3)
    assert out.equals(again.outcomes) and res.timeline.equals(again.timeline)


@given(irps=irp_tables(), kind=st.sampled_from(["always", "paging"]), dispatch=dispatches,
       memory=memories)
def test_unlimited_reserve_never_parks(irps, kind, dispatch, memory):
    res = simulate(irps, driver_for(f"{kind}:{irps.height + 1}", dispatch),
                   parse_memory(memory), seed=1)
    assert not res.outcomes["parked"].any()
    assert "parked_reserved" not in res.outcomes["outcome"].to_list()


@given(irps=irp_tables(actuals=("ok", "failed", "cancelled", "invalid_state", "alloc_failed",
                                "incomplete")))
def test_observed_memory_without_policy_reproduces_actual(irps):
    """Policy none + memory observed, default driver model, replays what happened. (IRPs the
    trace saw reserved or refused need a forward-progress queue, so without one they become
    alloc_failed; a sequential or limited queue would change when IRPs are served.)"""
    res = simulate(irps, load_driver_model(None), parse_memory("observed"))
    got = res.outcomes.select(simulated_actual())["actual"]
    assert got.to_list() == irps["actual"].to_list()
    both = pl.concat([irps, res.outcomes.rename({"status": "sim_status",
                                                 "complete_ns": "sim_complete_ns"})],
                     how="horizontal")
    served = both.filter(pl.col("service_ns").is_not_null())
    assert served["sim_complete_ns"].to_list() == served["complete_ns"].to_list()
    assert served["sim_status"].to_list() == served["status"].to_list()


@given(irps=irp_tables(), dispatch=dispatches)
def test_refused_and_reserved_become_alloc_failed_without_policy(irps, dispatch):
    """(On an I/O queue: other majors keep what the trace saw, see test_engine_devices.)"""
    res = simulate(irps, driver_for("none", dispatch), parse_memory("observed"))
    was = irps["actual"].is_in(["refused", "reserved", "alloc_failed"]) \
        & irps["major"].is_in(IO_QUEUE_MAJORS)
    assert res.outcomes.filter(was)["outcome"].to_list() == ["alloc_failed"] * int(was.sum())


def test_default_driver_model_is_the_property_driver():
    d = load_driver_model(None, parse_policy("always:2"))
    assert d == driver_for("always:2", ("parallel", None))
