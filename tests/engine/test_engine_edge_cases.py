"""The 59 edge cases of forward-progress.md section 10, one test per case number.

R1..Rn are pool members in creation order ("A.R1", ...); A, B, C... are IRPs in arrival order.
Unless a test says otherwise: queue accepting and dispatching, verifier off, bound version 1.33.
"""

from __future__ import annotations

import pytest

from fpreplay.engine.model import (MANUAL, PARALLEL, SEQUENTIAL, BugCheck, Device,
                                   ForwardProgressPolicy, Irp, LcgRandom)
from fpreplay.engine.status import (ACTION_FAIL, ACTION_USE_RESERVED, POLICY_ALWAYS,
                                    POLICY_EXAMINE, POLICY_PAGING, STATUS_CANCELLED,
                                    STATUS_DELETE_PENDING, STATUS_INFO_LENGTH_MISMATCH,
                                    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_REQUEST,
                                    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER,
                                    STATUS_PENDING, STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
                                    WDF_QUEUE_FATAL_ERROR, WDF_VIOLATION)

READ, WRITE, FSCTL, CREATE = 0x03, 0x04, 0x0D, 0x00


def fp_queue(n=2, policy=POLICY_ALWAYS, dispatch=PARALLEL, limit=None, examine=None,
             res=None, req=None, name="A", **device_kw):
    dev = Device(**device_kw)
    q = dev.create_queue(name, dispatch, limit, default=True)
    status = q.assign_forward_progress(ForwardProgressPolicy(n, policy, examine, res, req))
    assert status == STATUS_SUCCESS
    return dev, q


def starved(name, major=READ, **kw):
    """An IRP whose normal request allocation fails (alloc✗)."""
    return Irp(name, major, alloc_ok=False, **kw)


def events(dev, kind):
    return [e[1:] for e in dev.log if e[0] == kind]


def presented(dev):
    """IRP ids in presentation order."""
    return [e[3] for e in dev.log if e[0] in ("present", "retrieve")]


def completions(dev):
    return [(e[1], e[2]) for e in dev.log if e[0] == "complete"]


def ids(requests):
    return [r.id for r in requests]


def traced(dev, text):
    return any(text in t for t in dev.traces)


# --- Assignment -----------------------------------------------------------------------------
def test_case_01_wrong_size():
    calls = []
    dev = Device()
    q = dev.create_queue("A", default=True)
    s = q.assign_forward_progress(ForwardProgressPolicy(
        4, size=0x18, reserved_resources=lambda q, r: calls.append(r) or STATUS_SUCCESS))
    assert s == STATUS_INFO_LENGTH_MISMATCH == 0xC0000004
    assert q.fp is None and calls == []


def test_case_02_wrong_size_checked_before_zero_requests():
    q = Device().create_queue("A", default=True)
    assert q.assign_forward_progress(ForwardProgressPolicy(0, size=0)) == \
        STATUS_INFO_LENGTH_MISMATCH


def test_case_03_examine_null_checked_before_zero_requests():
    dev = Device()
    q = dev.create_queue("A", default=True)
    assert q.assign_forward_progress(ForwardProgressPolicy(0, POLICY_EXAMINE)) == \
        STATUS_INVALID_PARAMETER
    assert traced(dev, "Examine callback can't be null")
    assert not traced(dev, "Need to have more than")


def test_case_04_zero_requests():
    dev = Device()
    q = dev.create_queue("A", default=True)
    assert q.assign_forward_progress(ForwardProgressPolicy(0)) == STATUS_INVALID_PARAMETER
    assert traced(dev, "Need to have more than  0 reserved Requests")


def test_case_05_already_configured():
    dev, q = fp_queue(n=3)
    before = ids(q.fp.free)
    assert q.assign_forward_progress(ForwardProgressPolicy(5)) == STATUS_INVALID_PARAMETER
    assert ids(q.fp.free) == before == ["A.R1", "A.R2", "A.R3"]


def test_case_06_top_level_check_only_before_1_11():
    for version, expected in (((1, 9), STATUS_INVALID_PARAMETER), ((1, 11), STATUS_SUCCESS)):
        dev = Device(bound_version=version)
        default = dev.create_queue("default", default=True)
        forwarded_only = dev.create_queue("B")
        assert forwarded_only.assign_forward_progress(ForwardProgressPolicy(2)) == expected
        assert traced(dev, "non-top level queue") == (expected != STATUS_SUCCESS)
        assert default.assign_forward_progress(ForwardProgressPolicy(2)) == STATUS_SUCCESS


def test_case_07_reserved_resource_callback_fails_midway_rolls_back():
    calls = []

    def res(q, r):
        calls.append(r.id)
        return STATUS_INSUFFICIENT_RESOURCES if len(calls) == 3 else STATUS_SUCCESS

    dev = Device()
    q = dev.create_queue("A", default=True)
    assert q.assign_forward_progress(ForwardProgressPolicy(5, reserved_resources=res)) == \
        STATUS_INSUFFICIENT_RESOURCES
    assert len(calls) == 3
    assert sorted(e[0] for e in events(dev, "cleanup")) == sorted(calls)
    assert sorted(e[0] for e in events(dev, "destroy")) == sorted(calls)
    assert q.fp is None and not q.supports_fp
    assert q.assign_forward_progress(ForwardProgressPolicy(5)) == STATUS_SUCCESS
    assert len(q.fp.free) == 5


@pytest.mark.parametrize("status,accepted", [(0x00000103, True), (0x80000005, False)])
def test_case_08_informational_succeeds_warning_fails(status, accepted):
    dev = Device()
    q = dev.create_queue("A", default=True)
    s = q.assign_forward_progress(ForwardProgressPolicy(3, reserved_resources=lambda q, r: status))
    assert (s == STATUS_SUCCESS) == accepted
    assert (q.fp is not None) == accepted
    if not accepted:
        assert s == 0x80000005 and len(events(dev, "reserved_resources_cb")) == 1


@pytest.mark.parametrize("code", [0, 7])
def test_case_09_invalid_policy_value_behaves_like_always(code):
    dev, q = fp_queue(n=1, policy=code)
    a = starved("A", major=0x0E)
    assert q.arrive(a) == STATUS_PENDING
    assert a.request.reserved and presented(dev) == ["A"]


@pytest.mark.parametrize("policy", [POLICY_ALWAYS, POLICY_PAGING])
def test_case_10_examine_callback_dead_under_other_policies(policy):
    calls = []
    dev, q = fp_queue(policy=policy, examine=lambda q, i: calls.append(i) or ACTION_FAIL)
    q.arrive(starved("A", flags=0x2))
    assert calls == [] and presented(dev) == ["A"]


@pytest.mark.parametrize("with_callback", [False, True])
def test_case_11_pool_cleanup_at_deletion_only_if_presented(with_callback):
    res = (lambda q, r: STATUS_SUCCESS) if with_callback else None
    dev, q = fp_queue(n=3, res=res)
    q.delete()
    assert q.deleted and events(dev, "pool_freed") == [("A",)]
    cleaned = [e[0] for e in events(dev, "cleanup")]
    assert cleaned == (["A.R1", "A.R2", "A.R3"] if with_callback else [])
    assert len(events(dev, "destroy")) == len(cleaned)


# --- Arrival / policy -----------------------------------------------------------------------
def _case12():
    dev, q = fp_queue(n=2)
    a, b, c = starved("A"), starved("B"), starved("C")
    results = [q.arrive(i) for i in (a, b, c)]
    return dev, q, a, b, c, results


def test_case_12_two_members_third_parks():
    dev, q, a, b, c, results = _case12()
    assert a.request.id == "A.R1" and b.request.id == "A.R2"
    assert presented(dev) == ["A", "B"]
    assert list(q.fp.parked) == [c] and results[2] == STATUS_PENDING
    assert q.pool_state() == (0, 2, 1)


def test_case_13_completion_recycles_to_parked_then_free():
    dev, q, a, b, c, _ = _case12()
    r1 = a.request
    dev.complete(r1, STATUS_SUCCESS)
    assert a.status == STATUS_SUCCESS and c.request is r1
    assert presented(dev) == ["A", "B", "C"] and not q.fp.free
    dev.complete(b.request, STATUS_SUCCESS)
    assert ids(q.fp.free) == ["A.R2"]


def test_case_14_free_list_rotation():
    dev, q = fp_queue(n=3)
    a = starved("A")
    q.arrive(a)
    assert a.request.id == "A.R1"
    dev.complete(a.request, STATUS_SUCCESS)
    assert ids(q.fp.free) == ["A.R2", "A.R3", "A.R1"]
    d = starved("D")
    q.arrive(d)
    assert d.request.id == "A.R2"


def test_case_15_paging_io_test():
    dev, q = fp_queue(policy=POLICY_PAGING)
    paging, sync_only, fsctl = (starved("P", WRITE, flags=0x2), starved("S", WRITE, flags=0x40),
                                starved("F", FSCTL, flags=0x2))
    q.arrive(paging)
    assert paging.request.reserved
    assert q.arrive(sync_only) == STATUS_UNSUCCESSFUL == 0xC0000001
    assert sync_only.status == STATUS_UNSUCCESSFUL and traced(dev, "Forward action")
    assert q.arrive(fsctl) == STATUS_UNSUCCESSFUL and fsctl.status == STATUS_UNSUCCESSFUL


def test_case_16_paging_policy_not_evaluated_when_allocation_succeeds():
    dev, q = fp_queue(policy=POLICY_PAGING)
    a = Irp("A", WRITE, flags=0)
    q.arrive(a)
    assert presented(dev) == ["A"] and not a.request.reserved
    assert not traced(dev, "Forward action")


def test_case_17_examine_fail_is_unsuccessful():
    dev, q = fp_queue(policy=POLICY_EXAMINE, examine=lambda q, i: ACTION_FAIL)
    a = starved("A")
    assert q.arrive(a) == STATUS_UNSUCCESSFUL
    assert a.status == STATUS_UNSUCCESSFUL != STATUS_INSUFFICIENT_RESOURCES


@pytest.mark.parametrize("value", [0, 3])
def test_case_18_examine_invalid_action(value):
    dev, q = fp_queue(policy=POLICY_EXAMINE, examine=lambda q, i: value)
    a = starved("A")
    assert q.arrive(a) == STATUS_UNSUCCESSFUL
    assert traced(dev, f"returned an invalid action {value}")
    assert ids(q.fp.free) == ["A.R1", "A.R2"]


def test_case_19_parked_irp_not_reexamined():
    dev, q = fp_queue(n=1, policy=POLICY_EXAMINE, examine=lambda q, i: ACTION_USE_RESERVED)
    a, b = starved("A"), starved("B")
    q.arrive(a)
    q.arrive(b)
    assert list(q.fp.parked) == [b]
    assert [e[1] for e in events(dev, "examine")] == ["A", "B"]
    dev.complete(a.request, STATUS_SUCCESS)
    assert presented(dev) == ["A", "B"]
    assert [e[1] for e in events(dev, "examine")] == ["A", "B"]


def test_case_20_resources_fail_reserved_request_carries_irp():
    seen = []
    dev, q = fp_queue(req=lambda q, r: STATUS_INSUFFICIENT_RESOURCES)
    q.io_handlers[READ] = lambda q, r: seen.append(r.is_reserved)
    a = Irp("A", READ)
    q.arrive(a)
    normal_id = events(dev, "cleanup")[0][0]
    assert isinstance(normal_id, int)                     # the normal request, destroyed
    assert events(dev, "destroy")[0][0] == normal_id
    assert a.request.id == "A.R1" and seen == [True]


def test_case_21_resources_fail_paging_refuses_non_paging():
    dev, q = fp_queue(policy=POLICY_PAGING, req=lambda q, r: STATUS_INSUFFICIENT_RESOURCES)
    a = Irp("A", READ, flags=0)
    assert q.arrive(a) == STATUS_UNSUCCESSFUL and a.status == STATUS_UNSUCCESSFUL


def test_case_22_resources_callback_then_examine():
    dev, q = fp_queue(policy=POLICY_EXAMINE, examine=lambda q, i: ACTION_USE_RESERVED,
                      req=lambda q, r: STATUS_INSUFFICIENT_RESOURCES)
    q.arrive(Irp("A", READ))
    order = [e[0] for e in dev.log if e[0] in ("request_resources_cb", "examine")]
    assert order == ["request_resources_cb", "examine"]


def test_case_23_non_fp_queue_allocation_failure():
    dev = Device()
    q = dev.create_queue("A", default=True)
    a = starved("A")
    assert q.arrive(a) == STATUS_INSUFFICIENT_RESOURCES == 0xC000009A
    assert a.status == STATUS_INSUFFICIENT_RESOURCES and traced(dev, "Could not create WDFREQUEST")


def test_case_24_fail_all_injection():
    req_calls = []
    dev = Device(fault_injection="all")
    q = dev.create_queue("A", default=True, majors=(READ,))
    other = dev.create_queue("B", majors=(WRITE,))
    q.assign_forward_progress(ForwardProgressPolicy(
        2, request_resources=lambda q, r: req_calls.append(r) or STATUS_SUCCESS))
    irps = [Irp(c, READ) for c in "ABCD"]
    for i in irps:
        dev.dispatch_irp(i)
    assert req_calls == []
    assert all(i.request is None or i.request.reserved for i in irps)
    assert q.driver_count == 2 and list(q.fp.parked) == irps[2:]
    w = Irp("W", WRITE)
    dev.dispatch_irp(w)
    assert not w.request.reserved and other.driver_count == 1   # no effect on a non-FP queue


def test_case_25_create_never_uses_the_pool():
    dev, q = fp_queue()
    c = starved("C", CREATE)
    assert q.arrive(c) == STATUS_INSUFFICIENT_RESOURCES
    assert c.status == STATUS_INSUFFICIENT_RESOURCES and ids(q.fp.free) == ["A.R1", "A.R2"]


def test_case_26_in_caller_context_skipped_for_reserved():
    dev, q = fp_queue(req=lambda q, r: STATUS_SUCCESS)
    q.in_caller_context = lambda q, r: dev.enqueue(r)
    q.arrive(Irp("N", READ))
    order = [e[0] for e in dev.log if e[0] in ("request_resources_cb", "in_caller_context")]
    assert order == ["request_resources_cb", "in_caller_context"]
    dev.log.clear()
    q.arrive(starved("R"))
    assert events(dev, "in_caller_context") == [] and presented(dev) == ["R"]


# --- Parked IRPs and cancellation -----------------------------------------------------------
def test_case_27_parked_irp_cancelled():
    dev, q = fp_queue(n=1)
    a, b, c = starved("A"), starved("B"), starved("C")
    for i in (a, b, c):
        q.arrive(i)
    dev.cancel_irp(b)
    assert b.status == STATUS_CANCELLED == 0xC0000120
    assert q.pool_state() == (0, 1, 1)
    dev.complete(a.request, STATUS_SUCCESS)
    assert presented(dev) == ["A", "C"]


def test_case_28_already_cancelled_no_free_member():
    dev, q = fp_queue(n=1)
    q.arrive(starved("A"))
    b = starved("B", cancel=True)
    assert q.arrive(b) == STATUS_CANCELLED and b.status == STATUS_CANCELLED
    assert not q.fp.parked


def test_case_29_already_cancelled_with_free_member():
    dev, q = fp_queue(n=2)
    a = starved("A", cancel=True)
    q.arrive(a)
    assert presented(dev) == ["A"] and not a.done          # direct path ignores Cancel
    dev2, q2 = fp_queue(n=2, dispatch=SEQUENTIAL)
    q2.arrive(Irp("X", READ))                               # busy: X with the driver
    b = starved("B", cancel=True)
    q2.arrive(b)
    assert b.status == STATUS_CANCELLED and ids(q2.fp.free) == ["A.R2", "A.R1"]


@pytest.mark.parametrize("with_res_cb", [True, False])
def test_case_30_queued_pool_member_cancelled(with_res_cb):
    res = (lambda q, r: STATUS_SUCCESS) if with_res_cb else None
    dev, q = fp_queue(n=2, dispatch=SEQUENTIAL, res=res)
    q.canceled_on_queue = lambda q, r: None                 # the driver completes it later
    q.arrive(Irp("X", READ))
    b = starved("B")
    q.arrive(b)
    member = b.request
    dev.cancel_irp(b)
    if with_res_cb:
        assert events(dev, "canceled_on_queue") == [("A", member.id)] and not b.done
        assert member in q.fp.in_use
        dev.complete(member, STATUS_CANCELLED)
        assert member in q.fp.free
    else:
        assert events(dev, "canceled_on_queue") == []
        assert b.status == STATUS_CANCELLED and member in q.fp.free


# --- Queue states ---------------------------------------------------------------------------
def test_case_31_purge_parked_cancelled_purge_complete_waits_for_members():
    dev, q = fp_queue(n=2)
    a, b, p1, p2 = starved("A"), starved("B"), starved("P1"), starved("P2")
    for i in (a, b, p1, p2):
        q.arrive(i)
    q.purge(lambda q: None)
    assert p1.status == p2.status == STATUS_CANCELLED
    assert events(dev, "purge_complete") == []
    dev.complete(a.request, STATUS_SUCCESS)
    assert events(dev, "purge_complete") == [] and ids(q.fp.free) == ["A.R1"]
    dev.complete(b.request, STATUS_SUCCESS)
    assert events(dev, "purge_complete") == [("A",)] and ids(q.fp.free) == ["A.R1", "A.R2"]


def _queued_member_and_parked():
    dev, q = fp_queue(n=2, dispatch=SEQUENTIAL)
    a, b, p1, p2 = starved("A"), starved("B"), starved("P1"), starved("P2")
    for i in (a, b, p1, p2):
        q.arrive(i)
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


def presented_request(dev, q, irp_id):
    return next(r for r in q.driver_owned if r.irp.id == irp_id)


def test_case_35_stop_leaves_parked_recycle_queues_start_presents():
    dev, q = fp_queue(n=1)
    a, p = starved("A"), starved("P")
    q.arrive(a)
    q.arrive(p)
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
    p1, p2 = starved("P1"), starved("P2")
    q.arrive(p1)
    q.arrive(p2)
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
    a, p = starved("A"), starved("P")
    q.arrive(a)
    q.arrive(p)
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
    a, p = starved("A"), starved("P")
    q.arrive(a)
    q.arrive(p)
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
