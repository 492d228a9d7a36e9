"""The 59 edge cases of forward-progress.md section 10, one test per case number: assignment,
arrival and policy, parked IRPs and cancellation (cases 1-30; test_engine_edge_cases_queues.py
has cases 31-59). The setup they share, and its conventions, is in kmdf_edge.py.
"""

from __future__ import annotations

import pytest

from fpreplay.engine.model import SEQUENTIAL, Device, ForwardProgressPolicy, Irp
from fpreplay.engine.status import (ACTION_FAIL, ACTION_USE_RESERVED, POLICY_ALWAYS,
                                    POLICY_EXAMINE, POLICY_PAGING, STATUS_CANCELLED,
                                    STATUS_INFO_LENGTH_MISMATCH, STATUS_INSUFFICIENT_RESOURCES,
                                    STATUS_INVALID_PARAMETER, STATUS_PENDING, STATUS_SUCCESS,
                                    STATUS_UNSUCCESSFUL)

from kmdf_edge import (CREATE, FSCTL, READ, WRITE, arrive_starved, events, fp_queue, ids,
                       presented, starved, traced)


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
    a, b = arrive_starved(q, "A", "B")
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
    a, b, c = arrive_starved(q, "A", "B", "C")
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


