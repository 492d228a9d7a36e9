"""The 59 edge cases of forward-progress.md section 10, one test per case number: queue states,
dispatch types and completion paths (cases 31-59; test_engine_edge_cases.py has cases 1-30). The
setup they share, and its conventions, is in kmdf_edge.py.
"""

from __future__ import annotations

import pytest

from fpreplay.engine.model import (MANUAL, PARALLEL, SEQUENTIAL, BugCheck, Device,
                                   ForwardProgressPolicy, Irp, LcgRandom)
from fpreplay.engine.status import (STATUS_CANCELLED, STATUS_DELETE_PENDING,
                                    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_REQUEST,
                                    STATUS_INVALID_DEVICE_STATE, STATUS_PENDING, STATUS_SUCCESS,
                                    WDF_QUEUE_FATAL_ERROR, WDF_VIOLATION)

from kmdf_edge import (READ, WRITE, arrive_starved, completions, events, fp_queue, ids,
                       presented, presented_request, starved, traced)


# --- Queue states ---------------------------------------------------------------------------
def test_case_31_purge_parked_cancelled_purge_complete_waits_for_members():
    dev, q = fp_queue(n=2)
    a, b, p1, p2 = arrive_starved(q, "A", "B", "P1", "P2")
    q.purge(lambda q: None)
    assert p1.status == p2.status == STATUS_CANCELLED
    assert events(dev, "purge_complete") == []
    dev.complete(a.request, STATUS_SUCCESS)
    assert events(dev, "purge_complete") == [] and ids(q.fp.free) == ["A.R1"]
    dev.complete(b.request, STATUS_SUCCESS)
    assert events(dev, "purge_complete") == [("A",)] and ids(q.fp.free) == ["A.R1", "A.R2"]


def _queued_member_and_parked():
    dev, q = fp_queue(n=2, dispatch=SEQUENTIAL)
    a, b, p1, p2 = arrive_starved(q, "A", "B", "P1", "P2")
    assert presented(dev) == ["A"] and list(q.main) == [b.request]
    return dev, q, a, b, p1, p2


@pytest.mark.parametrize("operation, parked_status", [
    # Case 32: purge cancels the queued member B first; its recycle binds P1, which the purge
    # (no longer accepting) fails; that recycles again into P2: STATUS_INVALID_DEVICE_STATE.
    ("purge", STATUS_INVALID_DEVICE_STATE),
    # Case 33: stop-and-purge takes the parked IRPs as a snapshot first: all STATUS_CANCELLED.
    ("stop_and_purge", STATUS_CANCELLED),
], ids=["case_32_purge_recycle_race", "case_33_stop_and_purge_snapshots_parked_first"])
def test_case_32_33_parked_irps_under_purge_and_stop_and_purge(operation, parked_status):
    dev, q, a, b, p1, p2 = _queued_member_and_parked()
    member = b.request
    getattr(q, operation)()
    assert completions(dev) == [("B", STATUS_CANCELLED), ("P1", parked_status),
                                ("P2", parked_status)]
    assert list(q.fp.free) == [member] and not q.fp.parked


def test_case_34_drain():
    dev, q = fp_queue(n=2, dispatch=SEQUENTIAL)
    a, b, p = starved("A"), Irp("B", READ), starved("P1")
    q.arrive(a)
    q.arrive(starved("A2"))
    q.arrive(b)
    q.arrive(p)
    q.drain(lambda q: None)
    assert p.status == STATUS_CANCELLED
    late = Irp("L", READ)
    assert q.arrive(late) == STATUS_INVALID_DEVICE_STATE and late.status == \
        STATUS_INVALID_DEVICE_STATE
    dev.complete(a.request, STATUS_SUCCESS)
    assert presented(dev)[-1] == "A2"                       # queued requests still presented
    dev.complete(presented_request(dev, q, "A2"), STATUS_SUCCESS)
    assert presented(dev)[-1] == "B" and events(dev, "purge_complete") == []
    dev.complete(b.request, STATUS_SUCCESS)
    assert events(dev, "purge_complete") == [("A",)]


def test_case_35_stop_leaves_parked_recycle_queues_start_presents():
    dev, q = fp_queue(n=1)
    a, p = arrive_starved(q, "A", "P")
    q.stop()
    assert list(q.fp.parked) == [p]
    dev.complete(a.request, STATUS_SUCCESS)
    assert not q.fp.parked and list(q.main) == [p.request] and presented(dev) == ["A"]
    q.start()
    assert presented(dev) == ["A", "P"]


def test_case_36_after_purge():
    dev, q = fp_queue(n=1)
    q.purge()
    a = starved("A")
    assert q.arrive(a) == STATUS_INVALID_DEVICE_STATE and ids(q.fp.free) == ["A.R1"]
    # No free member: park, then a later completion while still purged -> invalid state.
    dev, q = fp_queue(n=1)
    x = starved("X")
    q.arrive(x)
    q.purge()
    p = starved("P")
    assert q.arrive(p) == STATUS_PENDING
    dev.complete(x.request, STATUS_SUCCESS)
    assert p.status == STATUS_INVALID_DEVICE_STATE
    # Restarted first: presented normally.
    dev, q = fp_queue(n=1)
    x = starved("X")
    q.arrive(x)
    q.purge()
    p = starved("P")
    q.arrive(p)
    q.start()
    assert list(q.fp.parked) == [p]                         # start does not look at parked IRPs
    dev.complete(x.request, STATUS_SUCCESS)
    assert presented(dev) == ["X", "P"] and not p.done


def test_case_37_after_purge_resources_callback_still_runs():
    dev, q = fp_queue(req=lambda q, r: STATUS_SUCCESS)
    q.purge()
    a = Irp("A", READ)
    assert q.arrive(a) == STATUS_INVALID_DEVICE_STATE
    kinds = [e[0] for e in dev.log if e[0] in ("request_resources_cb", "complete", "cleanup")]
    assert kinds == ["request_resources_cb", "complete", "cleanup"]


def test_case_38_purge_complete_before_parked_invalid_state():
    dev, q = fp_queue(n=1)
    a = starved("A")
    q.arrive(a)
    q.purge(lambda q: None)
    p1, p2 = arrive_starved(q, "P1", "P2")
    dev.log.clear()
    dev.complete(a.request, STATUS_SUCCESS)
    order = [e for e in dev.log if e[0] in ("complete", "purge_complete")]
    assert order == [("complete", "A", STATUS_SUCCESS), ("purge_complete", "A"),
                     ("complete", "P1", STATUS_INVALID_DEVICE_STATE),
                     ("complete", "P2", STATUS_INVALID_DEVICE_STATE)]


def test_case_39_manual_purge_complete_during_cancel_step():
    dev = Device()
    q = dev.create_queue("A", MANUAL, default=True)
    b = dev.create_queue("B")
    q.assign_forward_progress(ForwardProgressPolicy(1))
    a = starved("A")
    q.arrive(a)
    dev.forward(q.retrieve_next(), b)                       # the member now lives on B
    n = Irp("N", READ)
    q.arrive(n)                                             # never presented, queued
    p = starved("P")
    q.arrive(p)
    dev.log.clear()
    q.purge(lambda q: None)
    order = [e[:3] for e in dev.log if e[0] in ("complete", "purge_complete")]
    assert order == [("complete", "N", STATUS_CANCELLED), ("purge_complete", "A"),
                     ("complete", "P", STATUS_CANCELLED)]


def test_case_40_forwarded_member_does_not_delay_owner_purge():
    dev = Device()
    q = dev.create_queue("A", default=True)
    b = dev.create_queue("B")
    q.assign_forward_progress(ForwardProgressPolicy(1))
    a, p = starved("A"), starved("P")
    q.arrive(a)
    member = a.request
    dev.forward(member, b)
    assert presented(dev) == ["A", "A"]                     # presented again on B
    q.arrive(p)
    q.purge(lambda q: None)
    assert events(dev, "purge_complete") == [("A",)]
    assert p.status == STATUS_CANCELLED
    p2 = starved("P2")
    q.arrive(p2)                                            # parks on the purged owner
    dev.complete(member, STATUS_SUCCESS)
    assert p2.status == STATUS_INVALID_DEVICE_STATE and list(q.fp.free) == [member]


def test_case_41_forwarded_member_cancelled_on_other_queue():
    dev = Device()
    q = dev.create_queue("A", default=True)
    b = dev.create_queue("B", SEQUENTIAL)
    q.assign_forward_progress(ForwardProgressPolicy(1))
    b.arrive(Irp("X", READ))                                # keeps B busy
    a, p = starved("A"), starved("P")
    q.arrive(a)
    member = a.request
    dev.forward(member, b)
    assert list(b.main) == [member]
    q.arrive(p)
    b.purge()
    assert a.status == STATUS_CANCELLED
    assert p.request is member and presented(dev)[-1] == "P"
    assert member.current_queue is q


def test_case_42_stop_after_purge_reopens_accept():
    dev, q = fp_queue()
    q.purge()
    q.stop()
    a = Irp("A", READ)
    assert q.arrive(a) == STATUS_PENDING and list(q.main) == [a.request]
    q.start()
    assert presented(dev) == ["A"]


def test_case_43_power_purge():
    dev, q = fp_queue(n=1)
    q.arrive(starved("A"))
    p = starved("P")
    q.arrive(p)
    dev.power_purge()
    assert p.status == STATUS_CANCELLED
    q.stop()                                                # neither Stop nor Start re-opens
    assert not q.accept and traced(dev, "is shut down, preventing queue from accepting requests")
    q.start()
    assert not q.accept


def test_case_44_second_purge_callback_and_deleted_queue_bugcheck():
    dev, q = fp_queue(n=1)
    q.arrive(starved("A"))
    q.purge(lambda q: None)
    with pytest.raises(BugCheck) as e:
        q.purge(lambda q: None)
    assert (e.value.code, e.value.parameter1, e.value.status) == \
        (WDF_VIOLATION, WDF_QUEUE_FATAL_ERROR, STATUS_INVALID_DEVICE_REQUEST)
    dev2, q2 = fp_queue(n=1)
    q2.delete()
    with pytest.raises(BugCheck) as e:
        q2.purge()
    assert e.value.status == STATUS_DELETE_PENDING and e.value.code == 0x10D
    # Drain shares purge's slot; stop and stop-and-purge have their own (IdleComplete).
    for operation in ("drain", "stop", "stop_and_purge"):
        dev, q = fp_queue(n=1)
        q.arrive(Irp("A", READ))                   # held by the driver: nothing completes yet
        getattr(q, operation)(lambda queue: None)
        with pytest.raises(BugCheck) as e:
            getattr(q, operation)(lambda queue: None)
        assert e.value.status == STATUS_INVALID_DEVICE_REQUEST, operation
        assert traced(dev, "callback registered"), operation
        dev, q = fp_queue(n=1)
        q.delete()
        with pytest.raises(BugCheck) as e:
            getattr(q, operation)()
        assert e.value.status == STATUS_DELETE_PENDING, operation


def test_case_45_cleanup_by_file_object():
    dev, q = fp_queue(n=2, dispatch=SEQUENTIAL)
    x = Irp("X", READ, file="G")
    q.arrive(x)                                             # with the driver
    m = starved("M", file="F")
    q.arrive(m)                                             # pool member queued, file F
    q.arrive(starved("Y", file="G"))                        # second member queued
    p1, p2, p3 = starved("P1", file="F"), starved("P2", file="G"), starved("P3", file="F")
    for i in (p1, p2, p3):
        q.arrive(i)
    dev.cleanup("F")
    assert p1.status == p3.status == STATUS_CANCELLED
    assert m.status == STATUS_CANCELLED and p2.request is not None and p2.request.reserved
    assert not q.fp.parked


def test_case_46_deletion_with_parked_irps():
    dev, q = fp_queue(n=1)
    a, p = arrive_starved(q, "A", "P")
    q.delete()
    assert p.status == STATUS_CANCELLED and not q.deleted
    assert events(dev, "pool_freed") == []
    dev.complete(a.request, STATUS_SUCCESS)
    assert q.deleted and events(dev, "pool_freed") == [("A",)]
    assert dev.diagnostics == []


# --- Dispatch types and completion paths ----------------------------------------------------
def _case47(sync_r2: bool, dispatch=SEQUENTIAL, limit=None):
    dev, q = fp_queue(n=2, dispatch=dispatch, limit=limit)
    a, b, p, x = starved("A"), starved("B"), starved("P"), Irp("X", READ)
    for i in (a, b, p, x):
        q.arrive(i)
    assert presented(dev) == ["A"] and list(q.fp.parked) == [p]
    r1, r2 = a.request, b.request
    if sync_r2:
        q.io_default = lambda q, r: dev.complete(r, STATUS_SUCCESS) if r is r2 else None
    dev.complete(r1, STATUS_SUCCESS)
    return dev, q, a, b, p, x, r1, r2


def test_case_47_sequential_presentation_order():
    dev, q, a, b, p, x, r1, r2 = _case47(sync_r2=False)
    assert presented(dev) == ["A", "B"] and list(q.main) == [x.request, r1] and p.request is r1
    dev.complete(r2, STATUS_SUCCESS)
    dev.complete(x.request, STATUS_SUCCESS)
    assert presented(dev) == ["A", "B", "X", "P"]
    # Variant: R2 completes synchronously inside its callback and wins P.
    dev, q, a, b, p, x, r1, r2 = _case47(sync_r2=True)
    assert p.request is r2 and list(q.fp.free) == [r1]
    assert presented(dev) == ["A", "B", "X"]
    dev.complete(x.request, STATUS_SUCCESS)
    assert presented(dev) == ["A", "B", "X", "P"]


def test_case_48_parallel_limit_one_gates_like_sequential():
    dev, q, a, b, p, x, r1, r2 = _case47(sync_r2=False, dispatch=PARALLEL, limit=1)
    assert list(q.main) == [x.request, r1]
    dev.complete(r2, STATUS_SUCCESS)
    dev.complete(x.request, STATUS_SUCCESS)
    assert presented(dev) == ["A", "B", "X", "P"]


def test_case_49_manual_queue_ready_notify_and_retrieve():
    dev = Device()
    q = dev.create_queue("A", MANUAL, default=True)
    q.assign_forward_progress(ForwardProgressPolicy(1))
    q.ready_notify = lambda q: None
    a, p = starved("A"), starved("P")
    q.arrive(a)
    assert events(dev, "ready_notify") == [("A",)]
    r = q.retrieve_next()
    assert r is a.request and r.reserved
    q.arrive(p)
    dev.complete(r, STATUS_SUCCESS)
    assert list(q.main) == [r] and events(dev, "ready_notify") == [("A",), ("A",)]
    assert q.retrieve_next().irp is p


def test_case_50_zero_length_read_auto_completed():
    dev, q = fp_queue(n=1)
    a = starved("A", length=0)
    q.arrive(a)
    assert a.status == STATUS_SUCCESS and events(dev, "present") == []
    assert events(dev, "zero_length") and ids(q.fp.free) == ["A.R1"]


def test_case_51_no_handler_invalid_device_request():
    dev, q = fp_queue(n=1)
    q.io_default = None
    a = starved("A", major=0x0E)
    q.arrive(a)
    assert a.status == STATUS_INVALID_DEVICE_REQUEST == 0xC0000010
    assert ids(q.fp.free) == ["A.R1"]


def test_case_52_send_and_forget_recycles_at_once():
    dev, q = fp_queue(n=1)
    a, p = arrive_starved(q, "A", "P")
    dev.send_and_forget(a.request)
    assert not a.done and presented(dev) == ["A", "P"]      # lower driver still owns A


@pytest.mark.parametrize("verifier", [False, True])
def test_case_53_recycle_timing_relative_to_forward(verifier):
    dev = Device(kmdf_verifier=verifier)
    q = dev.create_queue("A", SEQUENTIAL, default=True)
    other = dev.create_queue("B")
    q.assign_forward_progress(ForwardProgressPolicy(1))
    held = Irp("H", READ)
    other.arrive(held)                                      # a request the driver owns on B
    first, a, p = starved("F"), starved("A"), starved("P")
    q.io_default = lambda queue, r: None
    q.arrive(first)                                         # F -> R1, with the driver
    q.arrive(a)                                             # parked
    q.arrive(p)                                             # parked

    def handler(queue, r):
        # Inside EvtIoRead for A: complete the pool member, then forward another request.
        if r.irp is a:
            dev.complete(r, STATUS_SUCCESS)
            dev.forward(held.request, queue)

    q.io_default = handler
    dev.log.clear()
    dev.complete(first.request, STATUS_SUCCESS)             # R1 recycled to A, A presented
    order = [e[0] for e in dev.log if e[0] in ("bind", "forward")]
    assert order == (["bind", "bind", "forward"] if not verifier else ["bind", "forward", "bind"])
    # Verifier off: P was queued before H arrived, so P is presented first; on: H first.
    assert presented(dev) == (["A", "P"] if not verifier else ["A", "H"])
    assert [r.irp.id for r in q.main] == (["H"] if not verifier else ["P"])


def retrieved_member(bound_version):
    """A manual FP queue whose one pool member (carrying starved IRP A) the driver retrieved."""
    dev, q = fp_queue(n=1, dispatch=MANUAL, bound_version=bound_version)
    a = starved("A")
    q.arrive(a)
    return dev, q, a, q.retrieve_next()


def test_case_54_requeue_after_purge_cancels_on_1_11():
    dev, q, a, r = retrieved_member((1, 11))
    q.purge()
    assert dev.requeue(r) == STATUS_SUCCESS
    assert a.status == STATUS_CANCELLED and list(q.fp.free) == [r]


def test_case_54_requeue_after_stop_and_purge_cancels_on_every_version():
    # Section 6.12: StopAndPurge sets cancel_dispatched whatever the bound version.
    dev, q, a, r = retrieved_member((1, 9))
    q.stop_and_purge()
    assert dev.requeue(r) == STATUS_SUCCESS
    assert a.status == STATUS_CANCELLED and list(q.fp.free) == [r] and not dev.diagnostics


def test_case_55_requeue_after_purge_legacy_strands_request():
    dev, q, a, r = retrieved_member((1, 9))
    q.purge(lambda q: None)
    assert dev.requeue(r) == STATUS_SUCCESS
    assert list(q.main) == [r] and not a.done
    assert events(dev, "purge_complete") == []
    assert [d[0] for d in dev.diagnostics] == ["LEGACY_REQUEUE_AFTER_PURGE"]


@pytest.mark.parametrize("dispatch", [SEQUENTIAL, PARALLEL])
def test_case_56_requeue_only_on_manual(dispatch):
    dev, q = fp_queue(dispatch=dispatch)
    a = starved("A")
    q.arrive(a)
    assert dev.requeue(a.request) == STATUS_INVALID_DEVICE_REQUEST
    assert traced(dev, "Requeue is allowed only for a manual queue")


def test_case_57_is_reserved():
    seen = []
    dev, q = fp_queue(n=1, res=lambda q, r: seen.append(("res", r.is_reserved)) or 0,
                      req=lambda q, r: seen.append(("req", r.is_reserved)) or
                      (STATUS_INSUFFICIENT_RESOURCES if r.irp.id == "B" else 0))
    q.io_default = lambda q, r: seen.append((r.irp.id, r.is_reserved))
    a, b = Irp("A", READ), Irp("B", READ)
    q.arrive(a)
    q.arrive(b)
    dev.complete(b.request, STATUS_SUCCESS)
    c = Irp("C", READ, alloc_ok=False)
    q.arrive(c)
    assert seen == [("res", True), ("req", False), ("A", False), ("req", False), ("B", True),
                    ("C", True)]


def test_case_58_lost_wakeup():
    dev, q = fp_queue(n=1)
    a = starved("A")
    q.arrive(a)
    b = starved("B")
    dev.concurrent_arrival = (q, b)                        # B races A's recycle
    dev.complete(a.request, STATUS_SUCCESS)
    assert list(q.fp.parked) == [b] and ids(q.fp.free) == ["A.R1"]   # stranded
    assert [d[0] for d in dev.diagnostics] == ["LOST_WAKEUP"]
    c = starved("C")
    q.arrive(c)
    assert c.request.id == "A.R1" and list(q.fp.parked) == [b]        # C overtakes B
    dev.complete(c.request, STATUS_SUCCESS)
    assert presented(dev) == ["A", "C", "B"]                          # next recycle serves B


def test_case_59_fail_random_follows_the_lcg():
    seed = 12345
    dev = Device(fault_injection="random", seed=seed)
    qa = dev.create_queue("A", default=True, majors=(READ,))
    qb = dev.create_queue("B", majors=(WRITE,))
    for q in (qa, qb):
        q.assign_forward_progress(ForwardProgressPolicy(100000))
    irps = [Irp(i, READ if i % 2 else WRITE) for i in range(4000)]
    for i in irps:
        dev.dispatch_irp(i)
    injected = [e[1] for e in dev.log if e[0] == "injected"]
    ref = LcgRandom(seed)
    expected = [i.id for i in irps if ref.next_fail()]        # one generator, both queues
    assert [e[1] for e in events(dev, "injected")] == expected
    assert {q for q in injected} == {"A", "B"}
    assert abs(len(expected) / len(irps) - 1928 / 32768) < 0.012
    # The framework's numbers: seed 0 -> first value (12345 >> 16) & 0x7fff == 0 -> fails.
    assert LcgRandom(0).next_value() == 0 and LcgRandom(0).next_fail()
