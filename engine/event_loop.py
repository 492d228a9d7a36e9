"""The event-by-event part of a replay: the IRPs that can interact (through the reserved pool, a
dispatch limit, a sequential or manual queue, queue operations) driven through the queue model
(fpreplay.engine.model) in time order, and each one's outcome read back off it."""

from __future__ import annotations

import heapq
from collections import deque
from typing import NamedTuple

from fpreplay.diagnostics import Diagnostics

from .config import DriverModel
from .model import Device, ForwardProgressPolicy, Irp, Request
from .policies import Precomputed
from .status import (POLICY_ALWAYS, POLICY_EXAMINE, POLICY_PAGING, STATUS_INSUFFICIENT_RESOURCES,
                     STATUS_SUCCESS)

_POLICY_CODE = {"always": POLICY_ALWAYS, "paging": POLICY_PAGING, "examine": POLICY_EXAMINE}
_FATE_OUTCOME = {"alloc_failed": "alloc_failed", "refused": "refused", "cancelled": "cancelled",
                 "invalid_state": "invalid_state"}


class ReplayIrp(Irp):
    """An IRP of the trace as the replay drives it: the model's IRP plus the replay's inputs
    (row, arrival, queue, hold, the status the driver completes it with, whether its
    EvtIoAllocateRequestResources fails) and what the replay reads back (delivery, reserved
    request, completion)."""

    __slots__ = ("row", "arrive_ns", "queue_name", "hold_ns", "driver_status",
                 "resources_fail", "cancel_ns", "deliver_ns", "reserved", "reserved_index",
                 "complete_ns")

    def __init__(self, row: int, major: int, minor: int, flags: int, length: int | None,
                 alloc_ok: bool, verdict: int, arrive_ns: int, queue_name: str,
                 hold_ns: int | None, driver_status: int, resources_fail: bool,
                 file_object: int | None = None, cancel_ns: int | None = None):
        Irp.__init__(self, row, major, minor=minor, flags=flags, file=file_object, length=length,
                     alloc_ok=alloc_ok, verdict=verdict)
        self.row = row
        self.arrive_ns = arrive_ns
        self.queue_name = queue_name
        self.hold_ns = hold_ns              # None: the driver never completes it
        self.driver_status = driver_status
        self.resources_fail = resources_fail   # the allocation itself succeeded
        self.cancel_ns = cancel_ns          # the trace saw the I/O manager cancel it then
        self.deliver_ns = None
        self.reserved = False
        self.reserved_index = None
        self.complete_ns = None


class _NullLog:
    """The replay reads outcomes off the IRPs; the effect log would only cost memory."""

    __slots__ = ()

    def append(self, item) -> None:
        pass


def _request_resources(queue, request) -> int:
    """The driver's EvtIoAllocateRequestResources: fails where the trace saw it fail."""
    return STATUS_INSUFFICIENT_RESOURCES if request.irp.resources_fail else STATUS_SUCCESS


def build_device(driver: DriverModel, fp_queues: dict, pool_sizes: dict[str, int],
                 ready_notify=None):
    """A model Device with the driver model's queues, each forward-progress queue's policy
    assigned with a pool of pool_sizes[name] (default: the policy's N) reserved requests.
    Returns the device and {queue name: the assignment's NTSTATUS} for those queues."""
    dev = Device(bound_version=driver.bound_version)
    statuses = {}
    for qm in driver.queues:
        q = dev.create_queue(qm.name, qm.dispatch, qm.limit, default=qm.default,
                             majors=qm.majors)
        q.allow_zero_length = True     # the trace shows what the driver did with them
        q.ready_notify = ready_notify
        pol = fp_queues[qm.name]
        if pol is None:
            continue
        res_cb = None
        if qm.reserved_resources:
            calls = [0]

            def res_cb(queue, request, calls=calls, fail_at=qm.reserved_resources_fail_at):
                calls[0] += 1
                return STATUS_INSUFFICIENT_RESOURCES if calls[0] == fail_at else STATUS_SUCCESS
        code = _POLICY_CODE[pol.kind]
        statuses[qm.name] = q.assign_forward_progress(ForwardProgressPolicy(
            total=pool_sizes.get(qm.name, pol.reserved), policy=code, reserved_resources=res_cb,
            request_resources=_request_resources if qm.request_resources else None,
            strategy=Precomputed(code, pol.kind)))
    return dev, statuses


def assignable_policies(driver: DriverModel, diag: Diagnostics) -> dict:
    """{queue name: its policy, or None where the queue has no forward progress}.

    The framework itself decides: each policy is assigned on a trial device (a pool just big
    enough to meet a failing EvtIoAllocateResourcesForReservedRequest). Where the assignment
    fails (a KMDF 1.9 driver's queue outside the dispatch table: STATUS_INVALID_PARAMETER,
    case 63; that callback failing during the pre-allocation, 3.4) the queue runs without
    forward progress, with a warning naming it."""
    fp_queues = {q.name: (q.policy if q.policy.forward_progress else None) for q in driver.queues}
    trial = {qm.name: qm.reserved_resources_fail_at or 1 for qm in driver.queues
             if fp_queues[qm.name] is not None}
    trial = {name: min(n, fp_queues[name].reserved) for name, n in trial.items()}
    dev, statuses = build_device(driver, fp_queues, trial)
    for name, status in statuses.items():
        if status == STATUS_SUCCESS:
            continue
        fp_queues[name] = None
        diag.count("fp_policy_not_assigned")
        fail_at = driver.queue(name).reserved_resources_fail_at
        if fail_at is not None and status == STATUS_INSUFFICIENT_RESOURCES:
            # Section 3.4: the failing callback rolls the pool back to zero.
            diag.warn(f"queue {name}: EvtIoAllocateResourcesForReservedRequest fails on call "
                      f"{fail_at} of the pre-allocation; the queue has no reserved requests")
        else:
            diag.warn(f"queue {name}: WdfIoQueueAssignForwardProgressPolicy fails "
                      f"(0x{status:08X}, KMDF {driver.bound_version[0]}.{driver.bound_version[1]}: "
                      f"\"{dev.traces[-1] if dev.traces else '?'}\"); the queue runs without "
                      "forward progress")
    return fp_queues


class Replay:
    """Drives one model Device (one device of the trace: its own queues, pools, parked lists and
    queue states) with the rows that need event-by-event simulation. Snapshots are keyed
    `key_base` + the queue's index in the driver model."""

    def __init__(self, driver: DriverModel, fp_queues: dict, race_windows: bool,
                 diag: Diagnostics, pool_sizes: dict[str, int], key_base: int = 0,
                 ops: list[tuple] = (), timeline: bool = True):
        self.diag = diag
        self.fp_queues = fp_queues
        self.ops = list(ops)          # (ts, method, queue object), in time order
        self.next_op = 0
        self.timeline = timeline
        self.race = race_windows
        dev, statuses = build_device(driver, fp_queues, pool_sizes, self._retrieve_all)
        for name, status in statuses.items():     # assignable_policies found the refusals
            if status != STATUS_SUCCESS:
                diag.warn(f"queue {name}: forward-progress policy not assigned (0x{status:08X})")
        self.device = dev
        dev.tracing = False
        dev.log = _NullLog()
        self.queues = {q.name: q for q in dev.queues}
        self.ops = [(ts, method, self.queues[name]) for ts, method, name in self.ops]
        self.cancelable = {qm.name: qm.cancelable for qm in driver.queues}
        self.key = {qm.name: key_base + i for i, qm in enumerate(driver.queues)}
        dev.on_present = self._on_present
        dev.on_irp_complete = self._on_complete
        dev.on_park = self._on_park
        self.now = 0
        self.heap: list = []
        self.seq = 0
        self.snapshots: list[tuple] = []
        self.last_state: dict[str, tuple] = {}
        self.cancelled_parked = 0

    def _retrieve_all(self, q):
        # A manual queue's driver retrieves whatever is ready when notified.
        while q.retrieve_next() is not None:
            pass

    def _on_present(self, q, r):
        irp = r.irp
        irp.deliver_ns = self.now
        irp.reserved = r.reserved
        irp.reserved_index = r.index
        if self.cancelable[q.name]:
            self.device.mark_cancelable(r)
        hold = irp.hold_ns
        if hold is not None:
            self.seq += 1
            heapq.heappush(self.heap, (self.now + hold, 0, self.seq, r, irp))

    def _on_park(self, q, irp):
        # The trace saw this IRP cancelled: the I/O manager cancels it at that time if it is
        # still parked then (_WdmCancelRoutineForReservedIrp: STATUS_CANCELLED at once).
        if irp.cancel_ns is not None:
            self.seq += 1
            heapq.heappush(self.heap, (max(irp.cancel_ns, self.now), 0, self.seq, None, irp))

    def _on_complete(self, irp):
        irp.complete_ns = self.now

    def _cancel_parked(self, irp) -> None:
        where = irp.location
        if not irp.done and where is not None and where[0] == "parked":
            self.device.cancel_irp(irp)
            self.cancelled_parked += 1
            self.snapshot(where[1])

    def grow_pools(self, sizes: dict[str, int]) -> None:
        """Each forward-progress queue's pool grown to sizes[name] members (never past the
        policy's N). A pool bigger than the IRPs that ever use it is never exhausted: each user
        takes a member never used before, the lowest index first. Growing keeps that order (the
        new members go after the unused ones, before those recycled), so a pool grown as a
        chunked replay finds users answers as the policy's N built up front would."""
        for name, want in sizes.items():
            q = self.queues[name]
            fp = q.fp
            if fp is None:
                continue
            want = min(want, self.fp_queues[name].reserved)
            have = len(fp.members)
            if want <= have:
                continue
            free = list(fp.free)
            unused = 0                 # the unused members: the free list's head, in order
            while unused < len(free) and free[unused].index == free[0].index + unused:
                unused += 1
            new = [Request(self.device.new_request_id(q, reserved=True, index=k), True, q, q,
                           index=k) for k in range(have, want)]
            for r in new:       # as the pre-allocation leaves them (its callback never fails
                r.presented = fp.reserved_res_cb is not None   # below N: assignable_policies)
            fp.free = deque([*free[:unused], *new, *free[unused:]])
            fp.members.extend(new)

    def snapshot(self, q) -> None:
        if not self.timeline:
            return
        fp = q.fp
        state = (len(fp.in_use) if fp else 0, len(fp.parked) if fp else 0, q.driver_count)
        if self.last_state.get(q.name) != state:
            self.last_state[q.name] = state
            self.snapshots.append((self.key[q.name], self.now, *state))

    def run(self, arrivals: list[tuple], final: bool = True, until: int | None = None) -> None:
        """Run `arrivals` ((ts, irp), sorted, none before an earlier call's) with the device's
        queue operations (self.ops, sorted) and the completions they bring. Final: run to the
        end. Not final: after the last arrival, go on only with what comes before `until` (no
        later call brings an arrival before it; at `until` itself a completion may still race
        an arrival to come). An arrival without a queue is an IRP_MJ_CLEANUP: it
        flushes its file object's IRPs from every queue (FlushAllQueuesByFileObject: parked
        ones and queued ones complete STATUS_CANCELLED).

        Long because the replay's hot loop keeps its state in locals."""
        dev, heap, ops = self.device, self.heap, self.ops
        ai, oi, na, no = 0, self.next_op, len(arrivals), len(ops)
        inf = float("inf")
        while True:
            ta = arrivals[ai][0] if ai < na else inf
            to = ops[oi][0] if oi < no else inf
            tc = heap[0][0] if heap else inf
            if ai >= na and not final and (until is None or min(tc, to) >= until):
                break
            if tc <= ta and tc <= to:
                if tc == inf:
                    break
                t, _, _, r, irp = heapq.heappop(heap)
                self.now = t
                if r is None:                         # a cancel (see _on_park)
                    self._cancel_parked(irp)
                    continue
                if irp.done or r.irp is not irp:
                    continue                          # already completed (cancelled) earlier
                if self.race and ai < na and arrivals[ai][0] == t \
                        and arrivals[ai][1].queue_name is not None:
                    a = arrivals[ai][1]
                    qa = self.queues[a.queue_name]
                    if qa is r.owner and not a.alloc_ok and not r.owner.fp.free:
                        # Lost wake-up (5.9): this arrival races the last member's recycle.
                        dev.concurrent_arrival = (qa, a)
                        ai += 1
                q = r.current_queue
                owner = r.owner
                dev.complete(r, irp.driver_status)
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
                qname = irp.queue_name
                if qname is None:
                    dev.cleanup(irp.file)
                    for q in self.queues.values():
                        self.snapshot(q)
                    continue
                q = self.queues[qname]
                q.arrive(irp)
                self.snapshot(q)
        self.next_op = oi


def run_slow(slow, replay: Replay, final: bool = True, until: int | None = None
             ) -> list[ReplayIrp]:
    """Build a ReplayIrp per row of `slow` (see Simulator) and run them through `replay` (see
    Replay.run); the IRPs that reached a queue, whose outcomes the model decides. A row that
    does not reach a queue is an IRP_MJ_CLEANUP flushing its file object at its arrival."""
    arrivals, irp_objs = [], []
    for row, arrive, major, minor, flags, nbytes, qname, fail, verdict, hold, dstatus, res, \
            file_object, io, cancel_ns in slow.iter_rows():
        if not io:
            arrivals.append((arrive, ReplayIrp(row, major, minor or 0, flags or 0, nbytes, True,
                                               0, arrive, None, None, 0, False, file_object)))
            continue
        irp = ReplayIrp(row, major if major is not None else 0xFF, minor or 0, flags or 0, nbytes,
                        not fail or res, int(verdict), arrive, qname, hold, dstatus, res,
                        file_object, cancel_ns)
        arrivals.append((arrive, irp))
        irp_objs.append(irp)
    replay.run(arrivals, final, until)
    return irp_objs


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


def record(irp: ReplayIrp) -> IrpOutcome:
    """Read the model's verdict off an IRP the event loop ran."""
    deliver, reserved = irp.deliver_ns, irp.reserved
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
    return IrpOutcome(irp.row, irp.queue_name, outcome, irp.status, not irp.alloc_ok,
                      irp.parked, deliver, irp.complete_ns,
                      deliver - irp.arrive_ns if deliver is not None and irp.parked else None,
                      irp.reserved_index if reserved else None)
