"""The KMDF framework message catalogue: message text -> event kinds and fields, with context."""

from __future__ import annotations

import pytest

from fpreplay.parsers.kmdf_messages import CATALOGUE, KmdfMessageStream, match
from fpreplay.schema import EVENT_KINDS

Q = "0x00005E7F3A6D6FD8"
IRP = "0xFFFF8A0C1E2E6A20"
DISPATCH = (f"WDFDEVICE 0x00005E7F3A6D3FD8 !devobj 0xFFFF8A0C1F0A2E30 0x00000003(IRP_MJ_READ), "
            f"IRP_MN 0, IRP {IRP}")


def test_catalogue_kinds_are_contract_kinds():
    assert {kind for _, _, kind in CATALOGUE} <= set(EVENT_KINDS)


@pytest.mark.parametrize("text,kind,fields", [
    # real line (usbip-win2 issue 52, etw-formats.md section 3.5)
    ("Completing WDFREQUEST 0x00003A77F9C19F68 for IRP 0xFFFFC58806B53B50 with Information 0x0, "
     "STATUS_SUCCESS", "irp_complete",
     {"request": 0x3A77F9C19F68, "irp": 0xFFFFC58806B53B50, "bytes": 0, "status": 0}),
    ("WDFDEVICE 0x000029FCB9441918 !devobj 0xFFFFD60341DCFAD0 0x0000000f(IRP_MJ_INTERNAL_DEVICE_CONTROL), "
     "IRP_MN 0, IRP 0xFFFFD60343780010", "irp_dispatch",
     {"irp": 0xFFFFD60343780010, "major": 0x0F, "minor": 0, "device": "0xffffd60341dcfad0"}),
    (f"Forward action on WDFQUEUE 00005E7F3A6D6FD8 says that framework should fail the Irp "
     f"FFFF8A0C1E2E6A20, STATUS_UNSUCCESSFUL", "fp_policy_refused",
     {"queue": "0x5e7f3a6d6fd8", "irp": 0xFFFF8A0C1E2E6A20, "status": 0xC0000001}),
    ("Completing WDFREQUEST 0x1 for IRP 0x2 with Information 0x200, STATUS_CANCELLED(0xc0000120)",
     "irp_complete", {"request": 1, "irp": 2, "bytes": 0x200, "status": 0xC0000120}),
    ("Completing WDFREQUEST 0x1 for IRP 0x2 with Information 0x0, 0xc0000185", "irp_complete",
     {"request": 1, "irp": 2, "bytes": 0, "status": 0xC0000185}),
    ("Need to have more than  0 reserved Requests STATUS_INVALID_PARAMETER", "other",
     {"status": 0xC000000D}),
    ("Examine callback can't be null for WdfIoForwardProgressReservedPolicyUseExamine  "
     "STATUS_INVALID_PARAMETER", "other", {"status": 0xC000000D}),
    ("Failure from m_IoReservedResourcesAllocate callback STATUS_INSUFFICIENT_RESOURCES", "other",
     {"status": 0xC000009A}),
    (f"WDFQUEUE {Q} is purged, calling driver callback", "queue_purge", {"queue": "0x5e7f3a6d6fd8"}),
    (f"WDFQUEUE {Q} is idle, calling driver callback", "queue_stop", {"queue": "0x5e7f3a6d6fd8"}),
])
def test_single_messages(text, kind, fields):
    hit = KmdfMessageStream().classify(text)
    assert hit is not None and hit.kind == kind
    assert hit.fields == fields


def test_driver_text_is_not_a_framework_message():
    assert KmdfMessageStream().classify("MyEvtIoRead: length 4096") is None
    assert match("Completing the job") is None


def test_alloc_failure_takes_the_irp_of_the_dispatch_line():
    s = KmdfMessageStream()
    s.classify(DISPATCH)
    mem = s.classify("Memory allocation failed STATUS_INSUFFICIENT_RESOURCES")
    cnc = s.classify("Could not create WDFREQUEST, STATUS_INSUFFICIENT_RESOURCES")
    assert mem.kind == cnc.kind == "request_alloc_failed"
    assert mem.fields["irp"] == cnc.fields["irp"] == int(IRP, 16)
    assert cnc.fields["major"] == 3 and cnc.fields["status"] == 0xC000009A
    # nothing pending any more: a pre-allocation failure names no IRP and is not an IRP's failure
    assert s.classify("Memory allocation failed STATUS_INSUFFICIENT_RESOURCES").kind == "other"


def test_request_handles_are_tied_to_irps():
    s = KmdfMessageStream()
    s.classify(DISPATCH)
    q = s.classify(f"Queuing WDFREQUEST 0x00005E7F3A1C8FD8 on WDFQUEUE {Q}")
    assert q.kind == "other" and q.fields["irp"] == int(IRP, 16) and q.fields["queue"] == "0x5e7f3a6d6fd8"
    c = s.classify("Calling driver EvtIoRead for WDFREQUEST 0x00005E7F3A1C8FD8")
    assert c.fields["irp"] == int(IRP, 16)


def test_queue_state_changes_are_emitted_once():
    s = KmdfMessageStream()
    kinds = [[r["kind"] for r in s.rows(t)] for t in (
        f"All WDFQUEUE {Q} requests cancelled",
        f"WDFQUEUE {Q} is purged, calling driver callback",        # same purge, second message
        f"Queuing WDFREQUEST 0x10 on WDFQUEUE {Q}",                # accepted again: started
        f"All WDFQUEUE {Q} requests cancelled",
        f"WDFQUEUE {Q} is idle, calling driver callback",          # stop-and-purge
        f"WDFQUEUE {Q} is not accepting requests, state is WdfIoQueuePowerStoppingDrain, power stopping "
        f"(Drain) in progress,completing WDFREQUEST 0x20 STATUS_INVALID_DEVICE_STATE",
        f"WDFQUEUE {Q} is not accepting requests, state is WdfIoQueuePowerStoppingDrain, power stopping "
        f"(Drain) in progress,completing WDFREQUEST 0x21 STATUS_INVALID_DEVICE_STATE",
    )]
    assert kinds == [["queue_purge"], ["other"], ["queue_start"], ["queue_purge"], ["queue_stop_purge"],
                     ["queue_drain", "irp_complete"], ["irp_complete"]]


def test_framework_completions_count_once():
    s = KmdfMessageStream()
    s.classify(DISPATCH)
    refused = s.rows(f"WDFQUEUE {Q} is not accepting requests, state is WdfIoQueuePurged, completing "
                     "WDFREQUEST 0x00005E7F3A1C8FD8 STATUS_INVALID_DEVICE_STATE")
    assert [(r["kind"], r["irp"], r["status"]) for r in refused] == [
        ("irp_complete", int(IRP, 16), 0xC0000184)]
    # the same completion as FxRequest::Complete logs it (VERBOSE): not a second completion
    again = s.rows(f"Completing WDFREQUEST 0x00005E7F3A1C8FD8 for IRP {IRP} with Information 0x0, "
                   "STATUS_INVALID_DEVICE_STATE")
    assert [r["kind"] for r in again] == ["other"]
    # a queued request cancelled by a purge: completed STATUS_CANCELLED, and the purge is implied
    s.classify(DISPATCH.replace("6A20", "7000"))
    s.classify(f"Queuing WDFREQUEST 0x00005E7F3A1C9000 on WDFQUEUE {Q}")
    cancel = s.rows(f"Cancelling WDFREQUEST 0x00005E7F3A1C9000, WDFQUEUE {Q}")
    assert [(r["kind"], r.get("irp"), r.get("status")) for r in cancel] == [
        ("queue_purge", None, None), ("irp_complete", 0xFFFF8A0C1E2E7000, 0xC0000120)]
    assert s.rows(f"Cancelling WDFREQUEST 0x00005E7F3A1C9100, WDFQUEUE {Q}")[0]["kind"] == "irp_complete"
    zero = s.rows(f"Zero length WDFREQUEST 0x00005E7F3A1C9200 completed automatically by WDFQUEUE {Q}")
    assert (zero[0]["kind"], zero[0]["status"], zero[0]["bytes"]) == ("irp_complete", 0, 0)


def _dispatch(irp: int) -> str:
    return DISPATCH.replace(IRP, f"0x{irp:016X}")


MAF = "Memory allocation failed STATUS_INSUFFICIENT_RESOURCES"
R = 0x00005E7F3A1C8FD8


def test_parked_irps_are_served_oldest_first_by_recycled_requests():
    s = KmdfMessageStream()
    for irp in (0xA0, 0xB0):                   # two arrivals, no free reserved request: parked
        s.classify(_dispatch(irp))
        s.classify(MAF)
    s.classify(f"Completing WDFREQUEST 0x{R:X} for IRP 0x90 with Information 0x0, STATUS_SUCCESS")
    first = s.classify(f"Queuing WDFREQUEST 0x{R:X} on WDFQUEUE {Q}")      # a recycle, no dispatch
    assert first.fields["irp"] == 0xA0
    s.classify(f"Completing WDFREQUEST 0x{R:X} for IRP 0xA0 with Information 0x0, STATUS_SUCCESS")
    assert s.classify(f"Queuing WDFREQUEST 0x{R:X} on WDFQUEUE {Q}").fields["irp"] == 0xB0
    # an arrival that got a free reserved request at once: the same call sequence
    s.classify(_dispatch(0xC0))
    s.classify(MAF)
    assert s.classify(f"Queuing WDFREQUEST 0x{R:X} on WDFQUEUE {Q}").fields["irp"] == 0xC0


def test_an_untraced_purge_drops_the_irps_parked_before_it():
    s = KmdfMessageStream()
    s.classify(_dispatch(0xA0))
    s.classify(MAF)                             # parked, later cancelled by a purge (untraced)
    s.classify(_dispatch(0xB0))
    s.classify(f"Queuing WDFREQUEST 0x10 on WDFQUEUE {Q}")           # the queue still accepted
    s.classify(_dispatch(0xC0))
    s.classify(MAF)                             # parked after that: may outlive the purge
    s.classify(f"Completing WDFREQUEST 0x{R:X} for IRP 0x90 with Information 0x0, STATUS_SUCCESS")
    refused = s.rows(f"WDFQUEUE {Q} is not accepting requests, state is WdfIoQueuePurged, completing "
                     f"WDFREQUEST 0x{R:X} STATUS_INVALID_DEVICE_STATE")
    assert [(r["kind"], r["irp"], r["status"]) for r in refused] == [("irp_complete", 0xC0, 0xC0000184)]
