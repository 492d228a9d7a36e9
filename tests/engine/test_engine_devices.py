"""Which IRPs meet which pool (forward-progress.md 3.7): one pool, queue set and verifier generator
per device; only READ, WRITE, DEVICE_CONTROL and INTERNAL_DEVICE_CONTROL reach a queue; an
IRP_MJ_CLEANUP flushes its file object; a refused policy assignment leaves a plain queue. Edge
cases 60-63 of section 10, each on the event-by-event model (simulate(fast=False), and the
model's Device where the case is about it) and on the vectorized fast path; then properties
over random multi-device streams.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpreplay.engine import load_driver_model, parse_memory, parse_policy, simulate
from fpreplay.engine.model import Device, ForwardProgressPolicy, Irp
from fpreplay.schema import (IO_QUEUE_MAJORS, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_FLUSH_BUFFERS,
                             QUEUE_KINDS, STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES,
                             STATUS_SUCCESS)

MS = 1_000_000
READ, WRITE = 0x03, 0x04
IRP_SCHEMA = {"irp": pl.UInt64, "device": pl.String, "queue": pl.String, "major": pl.UInt8,
              "irp_flags": pl.UInt32,
              "arrive_ns": pl.Int64, "complete_ns": pl.Int64, "service_ns": pl.Int64,
              "status": pl.UInt32, "actual": pl.String, "file_object": pl.UInt64}
OPS_SCHEMA = {"ts_ns": pl.Int64, "kind": pl.String, "queue": pl.String, "device": pl.String}


def table(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([{c: r.get(c) for c in IRP_SCHEMA} for r in rows], schema=IRP_SCHEMA)


def ok(t, service=MS, major=READ, **kw):
    return {"arrive_ns": t, "complete_ns": t + service, "service_ns": service, "status": 0,
            "actual": "ok", "major": major, **kw}


def starved(t, major=READ, **kw):
    return {"arrive_ns": t, "complete_ns": t, "status": STATUS_INSUFFICIENT_RESOURCES,
            "actual": "alloc_failed", "major": major, **kw}


def ops(*items) -> pl.DataFrame:
    return pl.DataFrame([dict(zip(OPS_SCHEMA, item)) for item in items], schema=OPS_SCHEMA)


def both_paths(rows, policy="always:1", memory="observed", **kw):
    """simulate() on the fast path and on the event loop alone; they must agree."""
    driver = load_driver_model(kw.pop("config", None), parse_policy(policy))
    fast = simulate(table(rows), driver, parse_memory(memory), **kw)
    slow = simulate(table(rows), driver, parse_memory(memory), fast=False, **kw)
    assert fast.outcomes.equals(slow.outcomes) and fast.timeline.equals(slow.timeline)
    assert fast.reserve_high_water == slow.reserve_high_water
    return fast, slow


def col(res, name):
    return res.outcomes[name].to_list()


# --- edge case 60: one pool per device ----------------------------------------------------------
def test_case_60_each_device_serves_from_its_own_pool():
    rows = [starved(0, device="disk0"), starved(1 * MS, device="disk1")]
    for res in both_paths(rows, service_time_ns=10 * MS):
        # Served at once, each from its own device's one reserved request; neither parks.
        assert col(res, "outcome") == ["reserved", "reserved"]
        assert col(res, "deliver_ns") == [0, 1 * MS] and col(res, "reserved_id") == [0, 0]
        assert res.reserve_high_water == {"disk0/default": 1, "disk1/default": 1}
        assert set(res.timeline["queue"]) == {"disk0/default", "disk1/default"}
        assert res.timeline.filter(pl.col("queue") == "disk1/default")["reserved_in_use"].max() \
            == 1


def test_case_60_a_purge_on_one_device_never_touches_another():
    rows = [starved(0, device="d0"), starved(1, device="d1"), starved(2, device="d0"),
            starved(3, device="d1")]
    for res in both_paths(rows, service_time_ns=10 * MS,
                          queue_ops=ops((5, "queue_purge", None, "d0"))):
        assert col(res, "outcome") == ["reserved", "reserved", "cancelled", "parked_reserved"]
        assert col(res, "status")[2:] == [STATUS_CANCELLED, STATUS_SUCCESS]
        assert col(res, "deliver_ns")[3] == 1 + 10 * MS        # d1's member, recycled


def test_one_device_keeps_the_single_device_outputs():
    rows = [starved(0), starved(1 * MS)]
    unnamed, _ = both_paths(rows, service_time_ns=10 * MS)
    named, _ = both_paths([dict(r, device="disk0") for r in rows], service_time_ns=10 * MS)
    assert unnamed.reserve_high_water == named.reserve_high_water == {"default": 1}
    assert unnamed.outcomes.equals(named.outcomes) and unnamed.timeline.equals(named.timeline)
    assert col(named, "outcome") == ["reserved", "parked_reserved"]
    # An IRP without a device is one more device (the unnamed one) beside named ones.
    mixed, _ = both_paths([rows[0], dict(rows[1], device="disk0")], service_time_ns=10 * MS)
    assert col(mixed, "outcome") == ["reserved", "reserved"]
    assert set(mixed.reserve_high_water) == {"(unnamed)/default", "disk0/default"}


def test_queue_operation_without_device_is_not_guessed_among_several():
    rows = [starved(0, device="d0"), starved(1, device="d0"), starved(2, device="d1")]
    fast, _ = both_paths(rows, service_time_ns=10 * MS, queue_ops=ops((5, "queue_purge", None,
                                                                        None)))
    assert col(fast, "outcome") == ["reserved", "parked_reserved", "reserved"]
    assert fast.counters["queue_ops_without_device"] == 1
    assert any("name no device" in w for w in fast.warnings)


# --- edge case 61: only the four majors reach a queue ---------------------------------------------
OTHER_MAJORS = (IRP_MJ_FLUSH_BUFFERS, IRP_MJ_CLOSE, IRP_MJ_CLEANUP)


def test_case_61_fail_all_injects_only_into_io_queue_majors():
    rows = [ok(0), ok(1, major=IRP_MJ_FLUSH_BUFFERS, service=7), ok(2, major=IRP_MJ_CLOSE),
            ok(3, major=IRP_MJ_CLEANUP, service=5, file_object=0xF0), ok(4, major=WRITE)]
    for res in both_paths(rows, policy="always:2", memory="fail-all"):
        assert col(res, "alloc_failed") == [True, False, False, False, True]
        assert col(res, "outcome") == ["reserved", "normal", "normal", "normal", "reserved"]
        # They complete as observed, on no queue.
        assert col(res, "complete_ns")[1:4] == [8, 2 + MS, 8]
        assert col(res, "queue") == ["default", None, None, None, "default"]


@pytest.mark.parametrize("memory", ["verifier-random:5", "random:0.5:3", "fail-all"])
def test_case_61_other_majors_draw_nothing(memory):
    """Inserting FLUSH/CLOSE IRPs between the reads changes none of the reads' outcomes: they
    spend no draw of the device's generator (nor of the random model)."""
    reads = [ok(t * 10, major=READ if t % 3 else WRITE) for t in range(300)]
    mixed = [r for t, read in enumerate(reads)
             for r in ([read, ok(t * 10 + 1, major=OTHER_MAJORS[t % 2])] if t % 2 else [read])]
    for rows in (reads, mixed):
        for r in rows:
            r["device"] = "disk"
    alone, _ = both_paths(reads, policy="always:4", memory=memory, service_time_ns=50)
    with_others, _ = both_paths(mixed, policy="always:4", memory=memory, service_time_ns=50)
    is_read = table(mixed)["major"].is_in(IO_QUEUE_MAJORS)
    keep = ["outcome", "status", "alloc_failed", "deliver_ns", "complete_ns", "reserved_id"]
    assert with_others.outcomes.filter(is_read).select(keep).equals(
        alone.outcomes.select(keep))
    assert alone.outcomes["alloc_failed"].sum() > 0


def test_case_61_model_other_majors_reach_no_queue_and_draw_nothing():
    for injection in ("all", "random"):
        dev = Device(fault_injection=injection, seed=99)
        q = dev.create_queue("A", default=True)
        q.assign_forward_progress(ForwardProgressPolicy(2))
        seed_before = dev.rng.seed
        others = [Irp(m, m, file="F") for m in OTHER_MAJORS]
        for irp in others:
            dev.dispatch_irp(irp)
        assert dev.rng.seed == seed_before and not [e for e in dev.log if e[0] == "injected"]
        assert all(i.request is None and not i.done for i in others)
        assert q.pool_state() == (2, 0, 0) and q.driver_count == 0
        dev.dispatch_irp(Irp("R", READ))
        assert (injection == "all") == bool([e for e in dev.log if e[0] == "injected"])


# --- edge case 62: IRP_MJ_CLEANUP flushes its file object's parked IRPs ---------------------------
def test_case_62_cleanup_cancels_its_file_objects_parked_irps():
    rows = [starved(0, file_object=0xA), starved(10, file_object=0xF),
            starved(20, file_object=0xA), ok(30, major=IRP_MJ_CLEANUP, service=4, file_object=0xF),
            starved(40, file_object=0xF)]
    for res in both_paths(rows, service_time_ns=100):
        assert col(res, "outcome") == ["reserved", "cancelled", "parked_reserved", "normal",
                                       "parked_reserved"]
        # Cancelled at the cleanup's arrival; the other file object's parked IRP stays parked
        # and is served in turn, as is one of the same file object that parks after it.
        assert col(res, "complete_ns")[1] == 30 and col(res, "status")[1] == STATUS_CANCELLED
        assert col(res, "deliver_ns")[2] == 100 and col(res, "deliver_ns")[4] == 200
        assert col(res, "complete_ns")[3] == 34                # the cleanup, as observed


def test_case_62_cleanup_stays_on_its_device():
    rows = [starved(0, device="d", file_object=0xF), starved(1, device="d", file_object=0xF),
            starved(0, device="e", file_object=0xF), starved(1, device="e", file_object=0xF),
            ok(5, major=IRP_MJ_CLEANUP, device="d", file_object=0xF)]
    for res in both_paths(rows, service_time_ns=100):
        assert col(res, "outcome")[:4] == ["reserved", "cancelled", "reserved",
                                           "parked_reserved"]


def test_case_62_model_cleanup_dispatch():
    dev = Device()
    q = dev.create_queue("A", default=True)
    q.assign_forward_progress(ForwardProgressPolicy(1))
    a, p1, p2 = (Irp(n, READ, alloc_ok=False, file=f) for n, f in (("A", "F"), ("P1", "F"),
                                                                  ("P2", "G")))
    for irp in (a, p1, p2):
        dev.dispatch_irp(irp)
    dev.dispatch_irp(Irp("C", IRP_MJ_CLEANUP, file="F"))
    assert p1.status == STATUS_CANCELLED and list(q.fp.parked) == [p2]
    assert a.request is not None and not a.done              # the driver's request stays


# --- edge case 63: a refused policy assignment leaves a plain queue -------------------------------
CONFIG_1_9 = """
bound_version = "1.9"
[[queues]]
name = "default"
[[queues]]
name = "side"
"""


def test_case_63_kmdf_1_9_policy_outside_dispatch_table_warns_and_goes_on(tmp_path):
    config = tmp_path / "driver.toml"
    config.write_text(CONFIG_1_9)
    rows = [starved(0), starved(1, queue="side")]
    for res in both_paths([dict(r) for r in rows], config=config):
        assert col(res, "outcome") == ["reserved", "alloc_failed"]
        assert col(res, "status")[1] == STATUS_INSUFFICIENT_RESOURCES
        assert res.reserve_high_water == {"default": 1, "side": 0}
        warning = next(w for w in res.warnings if "queue side" in w)
        assert "0xC000000D" in warning and "without forward progress" in warning
        assert res.counters["fp_policy_not_assigned"] == 1


def test_case_63_compare_does_not_stop(tmp_path, capsys):
    from conftest import SAMPLES
    from fpreplay.replay.cli import main as cli_main

    config = tmp_path / "driver.toml"
    config.write_text(CONFIG_1_9)
    argv = ["compare", str(SAMPLES / "d-healthy" / "trace.etl"), "--policy", "always:2",
            "--config", str(config), "--json", "--quiet"]
    assert cli_main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("queue side" in w and "without forward progress" in w for w in doc["warnings"])


# --- properties over random multi-device streams --------------------------------------------------
STATUS_OF = {"ok": 0, "reserved": 0, "failed": 0xC0000010, "cancelled": 0xC0000120,
             "invalid_state": 0xC0000184, "alloc_failed": 0xC000009A, "refused": 0xC0000001,
             "incomplete": None}
DEVICES = ("d0", "d1", None)
MAJORS = (0x00, 0x02, 0x03, 0x04, 0x09, 0x0E, 0x0F, 0x12)


@st.composite
def device_streams(draw, max_n=40):
    rows = []
    for i in range(draw(st.integers(0, max_n))):
        arrive = draw(st.integers(0, 40)) * 1000
        actual = draw(st.sampled_from(tuple(STATUS_OF)))
        service = draw(st.integers(0, 30)) * 1000
        never_served = actual in ("alloc_failed", "refused")
        rows.append({
            "irp": 0x1000 + i, "device": draw(st.sampled_from(DEVICES)),
            "major": draw(st.sampled_from(MAJORS)),
            "irp_flags": draw(st.sampled_from([0, 2, 0x43])), "arrive_ns": arrive,
            "complete_ns": None if actual == "incomplete" else
            arrive + (0 if never_served else service),
            "service_ns": None if never_served or actual == "incomplete" else service,
            "status": STATUS_OF[actual], "actual": actual,
            "file_object": draw(st.sampled_from([None, 1, 2]))})
    return table(rows)


device_ops = st.lists(st.tuples(st.integers(0, 60).map(lambda t: t * 1000),
                                st.sampled_from(QUEUE_KINDS), st.just(None),
                                st.sampled_from(DEVICES)), max_size=4).map(lambda x: ops(*x))
policies = st.sampled_from(["none", "always:1", "always:2", "paging:1",
                            "examine:2:paging OR major = 4"])
memories = st.sampled_from(["observed", "fail-all", "verifier-random:7", "random:0.3:5"])
dispatches = st.sampled_from([("parallel", None), ("parallel", 2), ("sequential", None),
                              ("manual", None)])


def driver_for(policy: str, dispatch):
    from fpreplay.engine.config import DriverModel, QueueModel

    return DriverModel(queues=(QueueModel(name="default", default=True, dispatch=dispatch[0],
                                          limit=dispatch[1], policy=parse_policy(policy)),))


def of_device(frame: pl.DataFrame, device) -> pl.DataFrame:
    return frame.filter(frame["device"].eq_missing(pl.lit(device, pl.String)))


@settings(max_examples=75, deadline=None)
@given(irps=device_streams(), policy=policies, memory=memories, dispatch=dispatches,
       queue_ops=device_ops)
def test_each_device_replays_the_same_alone_or_together(irps, policy, memory, dispatch,
                                                        queue_ops):
    driver, mem = driver_for(policy, dispatch), parse_memory(memory)
    together = simulate(irps, driver, mem, queue_ops=queue_ops, seed=3)
    devices = irps["device"].unique(maintain_order=True).to_list()
    for device in devices:
        mine = irps["device"].eq_missing(pl.lit(device, pl.String))
        # (An operation naming no device belongs to the trace's only device.)
        alone = simulate(irps.filter(mine), driver, mem, seed=3,
                         queue_ops=queue_ops if len(devices) == 1
                         else of_device(queue_ops, device))
        assert together.outcomes.filter(mine).drop("row").equals(alone.outcomes.drop("row"))
        label = "default" if len(devices) == 1 else f"{device or '(unnamed)'}/default"
        assert together.timeline.filter(pl.col("queue") == label).drop("queue").equals(
            alone.timeline.drop("queue"))
        assert together.reserve_high_water[label] == alone.reserve_high_water["default"]


KEEP = ["outcome", "status", "alloc_failed", "parked", "deliver_ns", "complete_ns",
        "park_wait_ns", "reserved_id", "queue"]


@settings(max_examples=75, deadline=None)
@given(irps=device_streams(), policy=policies, memory=memories, dispatch=dispatches,
       queue_ops=device_ops)
def test_majors_outside_the_io_queue_never_change_outcome(irps, policy, memory, dispatch,
                                                         queue_ops):
    other = ~irps["major"].is_in(IO_QUEUE_MAJORS)
    res = simulate(irps, driver_for(policy, dispatch), parse_memory(memory),
                   queue_ops=queue_ops, seed=3)
    base = simulate(irps, driver_for("none", ("parallel", None)), parse_memory("observed"))
    assert res.outcomes.filter(other).select(KEEP).equals(base.outcomes.filter(other)
                                                          .select(KEEP))
    # ... which is what the trace saw: observed completion and status, on no queue.
    seen = pl.concat([irps, res.outcomes.select(pl.col("complete_ns").alias("sim_complete"),
                                                pl.col("status").alias("sim_status"),
                                                pl.col("queue").alias("sim_queue"), "parked")],
                     how="horizontal").filter(other)
    assert seen["sim_complete"].equals(seen["complete_ns"], check_names=False)
    assert seen["sim_queue"].null_count() == seen.height and not seen["parked"].any()
    done = seen.filter(pl.col("complete_ns").is_not_null())
    assert done["sim_status"].to_list() == done["status"].fill_null(0).to_list()


@settings(max_examples=60, deadline=None)
@given(irps=device_streams(), policy=policies, memory=memories, dispatch=dispatches,
       queue_ops=device_ops)
def test_majors_outside_the_io_queue_take_no_draw_and_no_request(irps, policy, memory, dispatch,
                                                                queue_ops):
    """Without them (cleanups aside, which flush), every other IRP's outcome is the same: they
    spend no verifier or random draw, no request and no reserved request (a fixed service time,
    since the median of observed holds counts every served IRP)."""
    io = irps["major"].is_in(IO_QUEUE_MAJORS) | (irps["major"] == IRP_MJ_CLEANUP)
    # (Operations name their device: one naming none is placed by how many devices there are,
    # and dropping a device's only IRPs changes that.)
    queue_ops = queue_ops.filter(pl.col("device").is_not_null())
    driver, mem = driver_for(policy, dispatch), parse_memory(memory)
    res = simulate(irps, driver, mem, queue_ops=queue_ops, seed=3, service_time_ns=5000)
    without = simulate(irps.filter(io), driver, mem, queue_ops=queue_ops, seed=3,
                       service_time_ns=5000)
    assert res.outcomes.filter(io).drop("row").equals(without.outcomes.drop("row"))


# --- what a trace cannot tell, and what it does ----------------------------------------------------
def test_parked_irp_the_trace_saw_cancelled_is_cancelled_at_that_time():
    """The I/O manager cancels a parked IRP (_WdmCancelRoutineForReservedIrp): the replay
    completes it STATUS_CANCELLED at the trace's time instead of serving it later."""
    cancelled = {"arrive_ns": 1 * MS, "complete_ns": 3 * MS, "status": STATUS_CANCELLED,
                 "actual": "cancelled", "major": READ}
    rows = [ok(0, service=10 * MS), cancelled, ok(2 * MS)]
    for res in both_paths(rows, policy="always:1", memory="fail-all"):
        assert col(res, "outcome") == ["reserved", "cancelled", "parked_reserved"]
        assert col(res, "complete_ns")[1] == 3 * MS and col(res, "parked")[1]
        assert col(res, "status")[1] == STATUS_CANCELLED
        assert col(res, "deliver_ns")[2] == 10 * MS           # next in line once it is gone
        assert res.counters["parked_cancelled_as_in_trace"] == 1
    # Served before the trace's cancel: the driver has it; nothing is cancelled by the replay.
    res, _ = both_paths(rows, policy="always:2", memory="fail-all")
    assert col(res, "outcome")[1] == "reserved"
    assert "parked_cancelled_as_in_trace" not in res.counters


def test_paging_policy_counts_irps_without_flags_taken_as_non_paging():
    rows = [starved(0), starved(1), starved(2, irp_flags=0x43), starved(3, irp_flags=0)]
    for res in both_paths(rows, policy="paging:4"):
        assert col(res, "outcome") == ["refused", "refused", "reserved", "refused"]
        assert res.counters["paging_unknown_taken_as_non_paging"] == 2
        assert any("without irp_flags" in w for w in res.warnings)


def test_an_inferred_allocation_failure_replays_as_a_failed_request_allocation():
    """alloc_failure "inferred" (a STATUS_INSUFFICIENT_RESOURCES completion, no framework
    message) is replayed exactly as "request"; "resources" is not (no callback registered)."""
    rows = table([starved(0), starved(1), starved(2 * MS), ok(3 * MS)])
    driver = load_driver_model(None, parse_policy("always:1"))

    def run(kind, fast):
        irps = rows.with_columns(pl.lit(kind, pl.String).alias("alloc_failure"))
        return simulate(irps, driver, parse_memory("observed"), fast=fast,
                        service_time_ns=MS).outcomes
    for fast in (True, False):
        inferred = run("inferred", fast)
        assert inferred.equals(run("request", fast))
        assert inferred["outcome"].to_list()[:3] == ["reserved", "parked_reserved", "reserved"]
        assert not inferred.equals(run("resources", fast))
