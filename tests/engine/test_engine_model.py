"""The queue model beyond the 59 cases: race knobs, error conditions, power, the replay's
cancelable driver."""

from __future__ import annotations

import polars as pl

from fpreplay.engine import load_driver_model, parse_memory, simulate
from fpreplay.engine.config import DriverModel, QueueModel, parse_policy
from fpreplay.engine.model import Device, ForwardProgressPolicy, Irp
from fpreplay.engine.status import STATUS_CANCELLED, STATUS_SUCCESS


def fp_device(**kw):
    dev = Device(**kw)
    q = dev.create_queue("A", default=True)
    q.assign_forward_progress(ForwardProgressPolicy(1))
    return dev, q


def test_deletion_waits_for_the_put_back_unless_the_race_knob_is_on():
    for race in (False, True):
        dev, q = fp_device(race_delete_vs_completion=race)
        a = Irp("A", alloc_ok=False)
        q.arrive(a)
        q.delete()
        dev.complete(a.request, STATUS_SUCCESS)
        assert q.deleted
        codes = [d[0] for d in dev.diagnostics]
        if race:
            assert codes == ["POOL_TEARDOWN_WITH_MEMBERS_IN_USE", "RECYCLE_INTO_DELETED_QUEUE"]
        else:
            kinds = [e[0] for e in dev.log]
            assert codes == [] and kinds.index("free") < kinds.index("pool_freed")
            assert ("destroy", "A.R1") in dev.log          # freed with the pool, once back


def test_forwarded_member_outliving_its_owner_is_an_error_condition():
    dev, q = fp_device()
    b = dev.create_queue("B")
    a = Irp("A", alloc_ok=False)
    q.arrive(a)
    member = a.request
    dev.forward(member, b)
    q.delete()                                  # owner's counts do not include the member
    assert q.deleted
    assert [d[0] for d in dev.diagnostics] == ["FORWARDED_MEMBER_OUTLIVES_OWNER"]
    dev.complete(member, STATUS_SUCCESS)        # put back, then the pool is torn down
    assert ("pool_freed", "A") in dev.log


def test_power_hold_queues_and_resume_dispatches_parked_stay_parked():
    dev, q = fp_device()
    a, p = Irp("A", alloc_ok=False), Irp("P", alloc_ok=False)
    q.arrive(a)
    q.arrive(p)
    dev.power_hold()
    dev.complete(a.request, STATUS_SUCCESS)
    assert list(q.main) == [p.request] and q.driver_count == 0   # recycled, queued
    dev.power_resume()
    assert q.driver_count == 1 and p.request.reserved


def test_replayed_driver_that_marks_requests_cancelable():
    irps = pl.DataFrame({"major": [3], "arrive_ns": [0], "complete_ns": [1000],
                         "service_ns": [1000], "status": [0], "actual": ["ok"]})
    ops = pl.DataFrame({"ts_ns": [400], "kind": ["queue_purge"], "queue": [None]},
                       schema={"ts_ns": pl.Int64, "kind": pl.String, "queue": pl.String})
    for cancelable, status, done in ((False, 0, 1000), (True, STATUS_CANCELLED, 400)):
        q = QueueModel(name="default", default=True, policy=parse_policy("always:1"),
                       cancelable=cancelable)
        res = simulate(irps, DriverModel(queues=(q,)), parse_memory("observed"), queue_ops=ops)
        assert res.outcomes.select("outcome", "status", "complete_ns").row(0) == \
            ("normal", status, done)
    assert load_driver_model(None).default_queue.cancelable is False


def test_idle_complete_waits_for_the_driver_not_for_queued_requests():
    from fpreplay.engine.model import SEQUENTIAL
    dev = Device()
    q = dev.create_queue("A", SEQUENTIAL, default=True)
    q.assign_forward_progress(ForwardProgressPolicy(2))
    a, b = Irp("A", alloc_ok=False), Irp("B")
    q.arrive(a)
    q.arrive(b)                                 # queued behind A
    fired = []
    q.stop(lambda queue: fired.append(len(queue.main)))
    assert fired == []                          # A is still with the driver
    dev.complete(a.request, STATUS_SUCCESS)
    assert fired == [1]                         # B still queued: idle only counts the driver
    assert ("idle_complete", "A") in dev.log and not b.done
    q.start()
    assert q.driver_count == 1 and b.request is not None


def test_purge_and_idle_callbacks_wait_for_the_outer_dispatch_loop():
    # Section 6.11: a Purge/Stop called from inside EvtIoRead after completing the last request
    # sees total == 0, but its callback fires only once the handler has returned (depth 1).
    for ddi in ("purge", "stop"):
        dev = Device()
        q = dev.create_queue("A", default=True)
        fired, in_handler = [], []

        def handler(queue, r, ddi=ddi):
            in_handler.append(True)
            dev.complete(r, STATUS_SUCCESS)
            getattr(queue, ddi)(lambda _q: fired.append(bool(in_handler)))
            in_handler.clear()

        q.io_default = handler
        q.arrive(Irp("A"))
        assert fired == [False], ddi


def test_stop_and_purge_spares_a_request_that_arrives_while_it_cancels():
    # Section 6.6 step 4: only requests queued when StopAndPurge began are cancelled; one that
    # arrives meanwhile (the queue still accepts) stays queued for the next Start.
    from fpreplay.engine.model import SEQUENTIAL
    dev = Device()
    q = dev.create_queue("A", SEQUENTIAL, default=True)
    a, b, x = Irp("A"), Irp("B"), Irp("X")
    q.arrive(a)                                 # with the driver
    q.arrive(b)                                 # queued behind A
    dev.on_irp_complete = lambda irp: q.arrive(x) if irp is b else None
    q.stop_and_purge()
    assert b.status == STATUS_CANCELLED and not x.done and list(q.main) == [x.request]


def test_wdf_private_completion_status_reaches_the_irp_mapped():
    # Section 5.2 step 1: the I/O manager never sees FACILITY_DRIVER_FRAMEWORK codes.
    from fpreplay.engine.status import (STATUS_DEVICE_BUSY, STATUS_INVALID_DEVICE_REQUEST,
                                        STATUS_WDF_BUSY, STATUS_WDF_PAUSED)
    for sent, seen in ((STATUS_WDF_BUSY, STATUS_DEVICE_BUSY),
                       (STATUS_WDF_PAUSED, STATUS_DEVICE_BUSY),
                       (0xC0200205, STATUS_INVALID_DEVICE_REQUEST),
                       (STATUS_CANCELLED, STATUS_CANCELLED)):
        dev, q = fp_device()
        a = Irp("A", alloc_ok=False)
        q.arrive(a)
        dev.complete(a.request, sent)
        assert a.status == seen, hex(sent)


def test_member_recycled_inside_the_callback_waits_at_the_queue_tail():
    # Section 5.6, verifier off: completing a pool member inside EvtIoRead recycles it at once,
    # but the parked IRP it takes is queued, and presented only after the callback returns.
    dev, q = fp_device()
    first, a, p = (Irp(n, alloc_ok=False) for n in ("F", "A", "P"))
    queued_inside = []

    def handler(queue, r):
        if r.irp is a:
            dev.complete(r, STATUS_SUCCESS)
            queued_inside.append([m.irp.id for m in queue.main])

    q.io_default = handler
    for irp in (first, a, p):
        q.arrive(irp)                           # F holds R1; A and P park
    dev.complete(first.request, STATUS_SUCCESS)
    assert queued_inside == [["P"]] and p.request is not None and not q.main


def test_replay_orders_simultaneous_events_completions_then_operations_then_arrivals():
    from fpreplay.engine.status import STATUS_INVALID_DEVICE_STATE
    irps = pl.DataFrame({"major": [3, 3, 3], "arrive_ns": [0, 0, 400],
                         "complete_ns": [400, 401, 500], "service_ns": [400, 401, 100],
                         "status": [0, 0, 0], "actual": ["ok", "ok", "ok"]})
    ops = pl.DataFrame({"ts_ns": [400], "kind": ["queue_purge"], "queue": [None]},
                       schema={"ts_ns": pl.Int64, "kind": pl.String, "queue": pl.String})
    q = QueueModel(name="default", default=True, policy=parse_policy("always:1"), cancelable=True)
    res = simulate(irps, DriverModel(queues=(q,)), parse_memory("observed"), queue_ops=ops)
    # Done at the purge's instant: not purged; still with the driver: cancelled; arriving then:
    # meets the purged queue.
    assert res.outcomes.select("status", "complete_ns").rows() == [
        (0, 400), (STATUS_CANCELLED, 400), (STATUS_INVALID_DEVICE_STATE, 400)]
