"""The event-by-event model of a KMDF device's I/O queues with forward progress.

This is forward-progress.md section 9.5 made executable: a `Device` owns `Queue`s; an `Irp`
arrives (`Device.dispatch_irp` or `Queue.arrive`); the framework turns it into a `Request`
(normal, or one of the queue's N reserved requests), parks it, or completes it; driver actions
(`Device.complete`, `forward`, `requeue`, `send_and_forget`, ...) and queue operations
(`Queue.purge`, `stop`, `stop_and_purge`, `drain`, `start`, `delete`) drive it from there.
Every input event is applied to completion, synchronous cascades included, before the next one
(section 9.7). `Device.log` records every observable effect in order, which is what tests read.

Driver behaviour is plugged in as callables on the queue (`io_handlers`, `io_default`,
`canceled_on_queue`, `in_caller_context`, `ready_notify`) and on the request (`cancel_routine`).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Callable

from fpreplay.schema import IRP_MJ_CREATE, IRP_MJ_READ, IRP_MJ_WRITE

from .policies import ReservePolicy, strategy_for_code
from .status import (ACTION_FAIL, ACTION_USE_RESERVED, FP_POLICY_STRUCT_SIZE, POLICY_EXAMINE,
                     STATUS_CANCELLED, STATUS_DELETE_PENDING, STATUS_INFO_LENGTH_MISMATCH,
                     STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_REQUEST,
                     STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_PENDING,
                     STATUS_SUCCESS, STATUS_UNSUCCESSFUL, STATUS_WDF_BUSY, WDF_QUEUE_FATAL_ERROR,
                     WDF_VIOLATION, map_wdf_private, nt_success)

SEQUENTIAL, PARALLEL, MANUAL = "sequential", "parallel", "manual"
UNLIMITED = 0xFFFFFFFF


class BugCheck(Exception):
    """WDF_VIOLATION (0x10D) with parameter 1 = WDF_QUEUE_FATAL_ERROR: a failed Stop/Purge/Drain."""

    def __init__(self, status: int):
        self.code, self.parameter1, self.status = WDF_VIOLATION, WDF_QUEUE_FATAL_ERROR, status
        super().__init__(f"bugcheck 0x{WDF_VIOLATION:X} param1 0x{WDF_QUEUE_FATAL_ERROR:X} "
                         f"status 0x{status:08X}")


class Irp:
    """One IRP instance plus the replay inputs the model needs (section 9.2 ARRIVE)."""

    __slots__ = ("id", "major", "minor", "flags", "file", "length", "cancel", "alloc_ok",
                 "verdict", "status", "done", "fate", "location", "request", "parked",
                 "row", "payload")

    def __init__(self, id, major=IRP_MJ_READ, *, minor=0, flags=0, file=None, length=None,
                 cancel=False, alloc_ok=True, verdict=ACTION_USE_RESERVED, row=-1, payload=None):
        self.id = id
        self.major, self.minor, self.flags = major, minor, flags
        self.file, self.length = file, length
        self.cancel = cancel
        self.alloc_ok = alloc_ok
        self.verdict = verdict          # Examine value when a VerdictPolicy is in use
        self.status = None              # final completion status
        self.done = False
        self.fate = None                # who completed it: "driver", "refused", "cancelled", ...
        self.location = None            # ("parked", Q) | ("main", Q) | None
        self.request = None
        self.parked = False             # was parked at some time
        self.row = row                  # replay: row in the input table
        self.payload = payload          # replay: whatever the driver model needs

    def __repr__(self):
        return f"Irp({self.id!r})"


class Request:
    """A framework request object; `reserved` ones are pool members (never change)."""

    __slots__ = ("id", "reserved", "owner", "current_queue", "presented", "completed",
                 "canceled", "owned", "irp", "in_presentation", "recycle_deferred",
                 "cancelable", "cancel_routine", "index")

    def __init__(self, id, reserved, owner, queue, irp=None, index=None):
        self.id = id
        self.reserved = reserved
        self.owner = owner              # fp_owner: the queue whose pool it belongs to
        self.current_queue = queue
        self.presented = False
        self.completed = False
        self.canceled = False
        self.owned = False              # completion state QUEUE: driver-owned on current_queue
        self.irp = irp
        self.in_presentation = False
        self.recycle_deferred = False
        self.cancelable = False
        self.cancel_routine = None
        self.index = index              # pool index (creation order) for reserved requests

    @property
    def is_reserved(self) -> bool:      # WdfRequestIsReserved
        return self.reserved

    def __repr__(self):
        return f"Request({self.id!r}{', reserved' if self.reserved else ''})"


@dataclass
class ForwardProgressPolicy:
    """WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY as the driver fills it in."""

    total: int
    policy: int = 1
    examine: Callable | None = None                 # EvtIoWdmIrpForForwardProgress
    reserved_resources: Callable | None = None      # EvtIoAllocateResourcesForReservedRequest
    request_resources: Callable | None = None       # EvtIoAllocateRequestResources
    size: int = FP_POLICY_STRUCT_SIZE
    strategy: ReservePolicy | None = None           # overrides the enum-derived strategy


class FpContext:
    __slots__ = ("n", "strategy", "req_res_cb", "reserved_res_cb", "free", "in_use", "parked",
                 "members", "high_water")

    def __init__(self, n, strategy, req_res_cb, reserved_res_cb):
        self.n = n
        self.strategy = strategy
        self.req_res_cb = req_res_cb
        self.reserved_res_cb = reserved_res_cb
        self.free: deque[Request] = deque()
        self.in_use: dict[Request, None] = {}       # insertion-ordered set
        self.parked: deque[Irp] = deque()
        self.members: list[Request] = []
        self.high_water = 0                          # most members in use at once


class Queue:
    def __init__(self, device: "Device", name: str, dispatch: str = PARALLEL,
                 limit: int | None = None):
        if dispatch not in (SEQUENTIAL, PARALLEL, MANUAL):
            raise ValueError(f"dispatch type {dispatch!r}")
        self.device, self.name, self.dispatch = device, name, dispatch
        self.limit = UNLIMITED if limit is None else limit
        self.accept = True
        self.dispatching = True
        self.shutdown = False
        self.power_off = False
        self.main: deque[Request] = deque()
        self.driver_owned: dict[Request, None] = {}
        self.driver_count = 0
        self.depth = 0
        self.purge_cb = None
        self.idle_cb = None
        self.transition_from_empty = False
        self.cancel_dispatched = False
        self.disposing = False
        self.deleted = False
        self.cancelled_driver: deque[Request] = deque()
        self.canceled_on_queue_list: deque[Request] = deque()
        self.fp: FpContext | None = None
        self.teardown_pending = False
        # Driver callbacks (None = not registered).
        self.io_handlers: dict[int, Callable] = {}
        self.io_default: Callable | None = lambda q, r: None   # driver keeps the request
        self.canceled_on_queue: Callable | None = None
        self.in_caller_context: Callable | None = None
        self.ready_notify: Callable | None = None
        self.allow_zero_length = False

    def __repr__(self):
        return f"Queue({self.name!r})"

    @property
    def supports_fp(self) -> bool:
        return self.fp is not None

    # --- section 3: WdfIoQueueAssignForwardProgressPolicy -----------------------------------
    def assign_forward_progress(self, p: ForwardProgressPolicy, irql: int = 0) -> int:
        dev = self.device
        if dev.kmdf_verifier and irql > 0:
            dev.trace(f"Called at wrong IRQL; at level {irql}, should be at level 0")
            return STATUS_INVALID_DEVICE_REQUEST
        if self.fp is not None:
            dev.trace("Queue is already configured for forward progress STATUS_INVALID_PARAMETER")
            return STATUS_INVALID_PARAMETER
        if p.size != FP_POLICY_STRUCT_SIZE:
            dev.trace(f"WDF_IO_QUEUE_FORWARD_PROGRESS_POLICY Size 0x{p.size:x}, expected "
                      f"0x{FP_POLICY_STRUCT_SIZE:x}, STATUS_INFO_LENGTH_MISMATCH")
            return STATUS_INFO_LENGTH_MISMATCH
        if p.policy == POLICY_EXAMINE and p.examine is None and p.strategy is None:
            dev.trace("Examine callback can't be null for "
                      "WdfIoForwardProgressReservedPolicyUseExamine  STATUS_INVALID_PARAMETER")
            return STATUS_INVALID_PARAMETER
        if p.total == 0:
            dev.trace("Need to have more than  0 reserved Requests STATUS_INVALID_PARAMETER")
            return STATUS_INVALID_PARAMETER
        if dev.bound_version < (1, 11) and not dev.is_top_level(self):
            dev.trace("Setting Forward progress policy on non-top level queue "
                      "STATUS_INVALID_PARAMETER")
            return STATUS_INVALID_PARAMETER
        if not dev.allocation_ok("fp_context", 0):
            dev.trace("Could not allocate memory for forward progress context "
                      "STATUS_INSUFFICIENT_RESOURCES")
            return STATUS_INSUFFICIENT_RESOURCES
        strategy = p.strategy or strategy_for_code(p.policy, p.examine)
        ctx = FpContext(p.total, strategy, p.request_resources, p.reserved_resources)
        status = STATUS_SUCCESS
        for k in range(p.total):
            if not dev.allocation_ok("reserved", k):
                dev.trace("Memory allocation failed STATUS_INSUFFICIENT_RESOURCES")
                dev.trace("Failure to allocate request STATUS_INSUFFICIENT_RESOURCES")
                status = STATUS_INSUFFICIENT_RESOURCES
                break
            r = Request(dev.new_request_id(self, reserved=True, index=k), True, self, self, index=k)
            if p.reserved_resources is not None:
                r.presented = True
                dev.log.append(("reserved_resources_cb", self.name, r.id))
                s = p.reserved_resources(self, r)
                if not nt_success(s):
                    dev.trace(f"Failure from m_IoReservedResourcesAllocate callback 0x{s:08X}")
                    dev.destroy(r)
                    status = s
                    break
            ctx.free.append(r)
        if status != STATUS_SUCCESS:
            while ctx.free:                           # roll back, head first: zero remain
                dev.destroy(ctx.free.popleft())
            return status
        ctx.members = list(ctx.free)
        self.fp = ctx                                 # published last
        return STATUS_SUCCESS

    # --- section 4: arrival -------------------------------------------------------------------
    def arrive(self, irp: Irp) -> int:
        dev = self.device
        dev.log.append(("arrive", self.name, irp.id))
        fp = self.fp
        if irp.major == IRP_MJ_CREATE or fp is None:
            # Creates are converted by the general package: never the pool (section 3.7).
            if not irp.alloc_ok:
                if fp is None:
                    dev.trace("Could not create WDFREQUEST, STATUS_INSUFFICIENT_RESOURCES")
                dev.complete_irp(irp, STATUS_INSUFFICIENT_RESOURCES, "alloc_failed")
                return STATUS_INSUFFICIENT_RESOURCES
            return self._handoff(Request(dev.new_request_id(self), False, None, self, irp))
        ok = irp.alloc_ok
        if not ok:
            dev.trace("Memory allocation failed STATUS_INSUFFICIENT_RESOURCES")
        if ok and dev.inject_failure():
            ok = False                                # silent, and no driver callback
            dev.log.append(("injected", self.name, irp.id))
        irp.alloc_ok = ok
        r = None
        if ok:
            r = Request(dev.new_request_id(self), False, None, self, irp)
            if fp.req_res_cb is not None:
                r.presented = True
                dev.log.append(("request_resources_cb", self.name, irp.id, r.reserved))
                if not nt_success(fp.req_res_cb(self, r)):
                    r.irp = None
                    dev.destroy(r)
                    r = None
        if r is None:
            res = self._get_reserved(irp)
            if isinstance(res, int):
                if res != STATUS_PENDING:
                    dev.complete_irp(irp, res, "refused" if res == STATUS_UNSUCCESSFUL
                                     else "cancelled")
                return res
            r = res
        return self._handoff(r)

    def _handoff(self, r: Request) -> int:
        if r.irp is not None:
            r.irp.request = r
        if self.in_caller_context is not None and not r.reserved:
            self.device.log.append(("in_caller_context", self.name, r.irp.id))
            self.in_caller_context(self, r)           # the driver enqueues or completes it
            return STATUS_PENDING
        return self.queue_request(r)

    def _get_reserved(self, irp: Irp):
        dev, fp = self.device, self.fp
        act = fp.strategy.action(self, irp)
        if fp.strategy.code == POLICY_EXAMINE and act not in (ACTION_FAIL, ACTION_USE_RESERVED):
            dev.trace(f"EvtIoExamineIrp callback on WDFQUEUE {self.name} returned an invalid "
                      f"action {act}, STATUS_UNSUCCESSFUL")
            return STATUS_UNSUCCESSFUL
        if act == ACTION_FAIL:
            dev.trace(f"Forward action on WDFQUEUE {self.name} says that framework should fail the "
                      f"Irp {irp.id}, STATUS_UNSUCCESSFUL")
            return STATUS_UNSUCCESSFUL
        if fp.free:
            r = fp.free.popleft()
            fp.in_use[r] = None
            if len(fp.in_use) > fp.high_water:
                fp.high_water = len(fp.in_use)
            r.irp = irp
            dev.log.append(("take", self.name, r.id, irp.id))
            return r
        fp.parked.append(irp)
        irp.location = ("parked", self)
        if irp.cancel:                                # cancel routine removed again at once
            fp.parked.remove(irp)
            irp.location = None
            return STATUS_CANCELLED
        irp.parked = True
        dev.log.append(("park", self.name, irp.id))
        dev.on_park(self, irp)
        return STATUS_PENDING

    # --- section 6.2: offer a request to the queue --------------------------------------------
    def queue_request(self, r: Request) -> int:
        dev = self.device
        if not self.accept:
            dev.log.append(("not_accepting", self.name, r.id, r.irp.id))
            dev.complete(r, STATUS_INVALID_DEVICE_STATE, fate="invalid_state")
            return STATUS_INVALID_DEVICE_STATE
        if r.reserved and self.depth > 0:
            self._insert_new(r)
            return STATUS_PENDING
        self._dispatch_loop(r)
        return STATUS_PENDING

    def _insert_new(self, r: Request | None) -> None:
        if r is None:
            return
        r.current_queue = self
        if r.irp.cancel:
            self.device.complete(r, STATUS_CANCELLED, fate="cancelled")
            return
        self.main.append(r)
        r.irp.location = ("main", self)
        if len(self.main) == 1:
            self.transition_from_empty = True

    # --- section 6.3: the dispatch loop -------------------------------------------------------
    def _dispatch_loop(self, new: Request | None = None) -> None:
        if self.deleted:
            return
        dev = self.device
        self.depth += 1
        try:
            while True:
                total = len(self.main) + self.driver_count + (1 if new is not None else 0)
                if self.cancelled_driver:
                    self._insert_new(new); new = None
                    while self.cancelled_driver:
                        r = self.cancelled_driver.popleft()
                        dev.log.append(("request_cancel", self.name, r.id))
                        (r.cancel_routine or _default_cancel)(r)
                    continue
                if self.canceled_on_queue_list:
                    self._insert_new(new); new = None
                    while self.canceled_on_queue_list:
                        r = self.canceled_on_queue_list.popleft()
                        dev.log.append(("canceled_on_queue", self.name, r.id))
                        self.canceled_on_queue(self, r)
                    continue
                if self.idle_cb is not None and self.depth == 1 and self.driver_count == 0:
                    self._insert_new(new); new = None
                    self.cancel_dispatched = False
                    cb, self.idle_cb = self.idle_cb, None
                    dev.log.append(("idle_complete", self.name))
                    cb(self)
                    continue
                if self.purge_cb is not None and total == 0 and self.depth == 1:
                    self.cancel_dispatched = False
                    cb, self.purge_cb = self.purge_cb, None
                    dev.log.append(("purge_complete", self.name))
                    cb(self)
                    continue
                if self.disposing and total == 0 and self.depth == 1:
                    self.deleted = True
                    dev.log.append(("deleted", self.name))
                    self._teardown_pool()
                    return
                if self.power_off or not self.dispatching:
                    self._insert_new(new); new = None
                    break
                if self.dispatch == MANUAL:
                    self._insert_new(new); new = None
                    if self.ready_notify is not None and self.transition_from_empty:
                        self.transition_from_empty = False
                        dev.log.append(("ready_notify", self.name))
                        self.ready_notify(self)
                        continue
                    break
                if self.dispatch == SEQUENTIAL and self.driver_count > 0:
                    self._insert_new(new); new = None
                    break
                if self.dispatch == PARALLEL and self.driver_count >= self.limit:
                    self._insert_new(new); new = None
                    break
                if self.main:
                    r = self.main.popleft()
                    self._insert_new(new); new = None
                elif new is not None:
                    r, new = new, None
                    r.current_queue = self
                else:
                    break
                self.driver_count += 1
                self._present(r)
        finally:
            self.depth -= 1

    def _present(self, r: Request) -> None:
        dev = self.device
        r.owned = True
        self.driver_owned[r] = None
        r.in_presentation = True
        irp = r.irp
        irp.location = None
        handler = self.io_handlers.get(irp.major) or self.io_default
        if (handler is not None and irp.major in (IRP_MJ_READ, IRP_MJ_WRITE) and irp.length == 0
                and not self.allow_zero_length):
            dev.log.append(("zero_length", self.name, r.id, irp.id))
            dev.complete(r, STATUS_SUCCESS, fate="zero_length")
        elif handler is not None:
            r.presented = True
            dev.log.append(("present", self.name, r.id, irp.id, r.reserved))
            dev.on_present(self, r)
            handler(self, r)
        else:
            dev.trace(f"Driver has no event callback for major 0x{irp.major:x}, completing "
                      f"WDFREQUEST {r.id} with STATUS_INVALID_DEVICE_REQUEST")
            dev.complete(r, STATUS_INVALID_DEVICE_REQUEST, fate="no_handler")
        r.in_presentation = False
        if r.recycle_deferred:
            r.recycle_deferred = False
            dev.recycle(r)

    # --- section 6.5-6.7: purge, drain, stop, stop-and-purge, start ---------------------------
    def _cancel_for_queue(self, r: Request) -> None:
        r.canceled = True
        if self.canceled_on_queue is not None and r.presented:
            r.owned = True
            self.driver_owned[r] = None
            self.driver_count += 1
            self.canceled_on_queue_list.append(r)
        else:
            self.device.complete(r, STATUS_CANCELLED, fate="cancelled")
        if self.depth == 0:
            self._dispatch_loop()

    def _cancel_driver_cancelable(self) -> None:
        for r in [r for r in self.driver_owned if r.cancelable]:
            r.cancelable = False
            r.canceled = True
            self.cancelled_driver.append(r)
            if self.depth == 0:
                self._dispatch_loop()

    def _purge(self, cancel_queued: bool, cancel_driver: bool, cb, what: str) -> int:
        dev = self.device
        if self.deleted:
            return STATUS_DELETE_PENDING
        if cb is not None:
            if self.purge_cb is not None:
                dev.trace(f"WDFQUEUE {self.name} already has a PurgeComplete callback registered "
                          "STATUS_INVALID_DEVICE_REQUEST")
                return STATUS_INVALID_DEVICE_REQUEST
            self.purge_cb = cb
        dev.log.append((what, self.name))
        self.accept = False
        if cancel_queued and cancel_driver and dev.bound_version >= (1, 11):
            self.cancel_dispatched = True
        if cancel_queued:
            while self.main:
                self._cancel_for_queue(self.main.popleft())
        if cancel_driver:
            self._cancel_driver_cancelable()
        if self.fp is not None:                     # unconditional, also for drain (section 6.5)
            while self.fp.parked:
                irp = self.fp.parked.popleft()
                irp.location = None
                dev.complete_irp(irp, STATUS_CANCELLED, "cancelled")
        self._dispatch_loop()
        return STATUS_SUCCESS

    def _idle(self, cancel: bool, cb, what: str) -> int:
        dev = self.device
        if self.deleted:
            return STATUS_DELETE_PENDING
        if cb is not None:
            if self.idle_cb is not None:
                dev.trace(f"WDFQUEUE {self.name} already has a IdleComplete callback registered, "
                          "STATUS_INVALID_DEVICE_REQUEST")
                return STATUS_INVALID_DEVICE_REQUEST
            self.idle_cb = cb
        dev.log.append((what, self.name))
        self._set_accept()
        self.dispatching = False
        snapshot = []
        if cancel:
            self.cancel_dispatched = True
            for r in self.main:
                r.canceled = True
            if self.fp is not None:
                snapshot = list(self.fp.parked)
                self.fp.parked.clear()
            while self.main:
                r = self.main.popleft()
                if not r.canceled and not r.irp.cancel:
                    self.main.appendleft(r)
                    break
                self._cancel_for_queue(r)
            self._cancel_driver_cancelable()
            for irp in snapshot:
                irp.location = None
                dev.complete_irp(irp, STATUS_CANCELLED, "cancelled")
        self._dispatch_loop()
        return STATUS_SUCCESS

    def _set_accept(self) -> None:
        if self.shutdown:
            self.device.trace(f"WDFQUEUE {self.name} is shut down, preventing queue from accepting "
                              "requests")
        else:
            self.accept = True

    def _ddi(self, status: int) -> int:
        if status != STATUS_SUCCESS:
            raise BugCheck(status)
        return status

    def purge(self, cb: Callable | None = None) -> int:
        return self._ddi(self._purge(True, True, cb, "purge"))

    def drain(self, cb: Callable | None = None) -> int:
        return self._ddi(self._purge(False, False, cb, "drain"))

    def stop(self, cb: Callable | None = None) -> int:
        return self._ddi(self._idle(False, cb, "stop"))

    def stop_and_purge(self, cb: Callable | None = None) -> int:
        return self._ddi(self._idle(True, cb, "stop_and_purge"))

    def start(self) -> None:
        self.device.log.append(("start", self.name))
        self._set_accept()
        self.dispatching = True
        self.cancel_dispatched = False
        if self.main:
            self.transition_from_empty = True
        self._dispatch_loop()

    def delete(self) -> None:
        """Queue deletion (section 6.10): purge without callback, then dispose once empty."""
        if self.deleted:
            raise BugCheck(STATUS_DELETE_PENDING)
        self._purge(True, True, None, "delete")
        self.disposing = True
        if self in self.device.queues:
            self.device.queues.remove(self)
        self._dispatch_loop()

    def _teardown_pool(self) -> None:
        fp = self.fp
        if fp is None:
            return
        away = [r.id for r in fp.in_use if r.current_queue is not self]
        if away:     # section 5.9: the owner is gone while a forwarded member is in flight
            self.device.diagnostic("FORWARDED_MEMBER_OUTLIVES_OWNER",
                                   f"{', '.join(map(str, away))} of deleted {self.name}")
        if fp.in_use and not self.device.race_delete_vs_completion:
            self.teardown_pending = True            # put-back first, then teardown (section 5.9)
            return
        if fp.in_use or fp.parked:
            self.device.diagnostic("POOL_TEARDOWN_WITH_MEMBERS_IN_USE", self.name)
        while fp.free:
            self.device.destroy(fp.free.popleft())
        self.teardown_pending = False
        self.device.log.append(("pool_freed", self.name))

    # --- manual queues ------------------------------------------------------------------------
    def retrieve_next(self) -> Request | None:
        """WdfIoQueueRetrieveNextRequest: the driver takes the head of a manual queue."""
        if not self.main or self.power_off or not self.dispatching:
            return None
        r = self.main.popleft()
        r.irp.location = None
        r.owned = True
        r.presented = True
        self.driver_owned[r] = None
        self.driver_count += 1
        self.device.log.append(("retrieve", self.name, r.id, r.irp.id, r.reserved))
        self.device.on_present(self, r)
        return r

    # --- observation helpers ------------------------------------------------------------------
    def pool_state(self) -> tuple[int, int, int]:
        """(free, in use, parked) sizes."""
        fp = self.fp
        return (0, 0, 0) if fp is None else (len(fp.free), len(fp.in_use), len(fp.parked))


def _default_cancel(r: Request) -> None:
    """A driver that marks requests cancelable completes them STATUS_CANCELLED on cancel."""
    r.current_queue.device.complete(r, STATUS_CANCELLED, fate="driver")


class LcgRandom:
    """The framework's per-device generator (FxRandom) behind ForwardProgressFailRandom (4.7)."""

    A, C = 1103515245, 12345

    def __init__(self, seed: int):
        self.seed = seed & 0xFFFFFFFF

    def next_value(self) -> int:
        self.seed = (self.seed * self.A + self.C) & 0xFFFFFFFF
        return (self.seed >> 16) & 0x7FFF

    def next_fail(self) -> bool:
        return self.next_value() % 17 == 0


class Device:
    """One KMDF device: its queues, its dispatch table, verifier knobs and the effect log."""

    def __init__(self, *, bound_version: tuple[int, int] = (1, 33), kmdf_verifier: bool = False,
                 fault_injection: str | None = None, seed: int = 0, lost_wakeup: bool = False,
                 race_delete_vs_completion: bool = False, legacy_requeue_diagnostic: bool = True):
        self.bound_version = bound_version
        self.kmdf_verifier = kmdf_verifier
        self.fault_injection = fault_injection       # None | "all" | "random"
        self.rng = LcgRandom(seed)
        self.lost_wakeup = lost_wakeup
        self.race_delete_vs_completion = race_delete_vs_completion
        self.legacy_requeue_diagnostic = legacy_requeue_diagnostic
        self.queues: list[Queue] = []
        self.dispatch_table: dict[int, Queue] = {}
        self.default_queue: Queue | None = None
        self.log: list[tuple] = []
        self.traces: list[str] = []
        self.tracing = True             # the replay turns the IFR text off: nobody reads it
        self.diagnostics: list[tuple[str, str]] = []
        self.concurrent_arrival: tuple[Queue, Irp] | None = None
        self._ids = itertools.count(1)
        self.alloc_failures: set[tuple[str, int]] = set()   # ("reserved", k), ("fp_context", 0)
        # Replay hooks (no-ops for the low-level API).
        self.on_present = _noop2
        self.on_park = _noop2
        self.on_irp_complete = _noop1

    # --- construction -------------------------------------------------------------------------
    def create_queue(self, name: str, dispatch: str = PARALLEL, limit: int | None = None, *,
                     default: bool = False, majors: tuple[int, ...] = ()) -> Queue:
        q = Queue(self, name, dispatch, limit)
        self.queues.append(q)
        if default:
            self.default_queue = q
        for m in majors:
            self.dispatch_table[m] = q
        return q

    def is_top_level(self, q: Queue) -> bool:
        return q is self.default_queue or q in self.dispatch_table.values()

    def route(self, major: int) -> Queue:
        return self.dispatch_table.get(major) or self.default_queue

    def new_request_id(self, queue: Queue, reserved: bool = False, index: int | None = None):
        if reserved:
            return f"{queue.name}.R{index + 1}"
        return next(self._ids)

    def allocation_ok(self, what: str, index: int) -> bool:
        return (what, index) not in self.alloc_failures

    def inject_failure(self) -> bool:
        if self.fault_injection == "all":
            return True
        if self.fault_injection == "random":
            return self.rng.next_fail()
        return False

    def trace(self, text: str) -> None:
        if self.tracing:
            self.traces.append(text)
            self.log.append(("trace", text))

    def diagnostic(self, code: str, detail: str) -> None:
        self.diagnostics.append((code, detail))
        self.log.append(("diagnostic", code, detail))

    # --- IRP entry points ---------------------------------------------------------------------
    def dispatch_irp(self, irp: Irp) -> int:
        return self.route(irp.major).arrive(irp)

    def complete_irp(self, irp: Irp, status: int, fate: str) -> None:
        if irp.done:
            raise RuntimeError(f"{irp!r} completed twice")
        irp.done = True
        irp.status = status
        irp.fate = fate
        irp.request = None
        self.log.append(("complete", irp.id, status))
        self.on_irp_complete(irp)

    # --- section 5: completion and recycling --------------------------------------------------
    def complete(self, r: Request, status: int, fate: str = "driver") -> None:
        """WdfRequestComplete (fate "driver") or a framework completion of request r."""
        if r.completed:
            raise RuntimeError(f"{r!r} completed twice")
        r.completed = True
        r.cancelable = False
        irp, r.irp = r.irp, None
        self.complete_irp(irp, map_wdf_private(status), fate)
        if r.owned:
            r.owned = False
            c = r.current_queue
            del c.driver_owned[r]
            c.driver_count -= 1
            if c.depth == 0:
                c._dispatch_loop()                    # bookkeeping before recycling (5.2)
        if r.reserved:
            if self.kmdf_verifier and r.in_presentation:
                r.recycle_deferred = True
            else:
                self.recycle(r)
        else:
            self.destroy(r)

    def recycle(self, r: Request) -> None:
        """ReturnReservedRequest on the owner (5.3); iterative so long parked lists are fine."""
        owner = r.owner
        fp = owner.fp
        while True:
            if owner.deleted and not owner.teardown_pending:
                self.diagnostic("RECYCLE_INTO_DELETED_QUEUE", f"{r.id} owner {owner.name}")
                return
            irp = fp.parked.popleft() if fp.parked else None
            r.completed = r.canceled = r.cancelable = False
            r.cancel_routine = None
            r.current_queue = owner
            if irp is None:
                if self.concurrent_arrival is not None:
                    # Lost wake-up window (5.9): an arrival runs between the parked-list check
                    # and the put-back, sees an empty free list and parks.
                    q, a = self.concurrent_arrival
                    self.concurrent_arrival = None
                    q.arrive(a)
                    if a.location is not None and a.location[0] == "parked":
                        self.diagnostic("LOST_WAKEUP", f"IRP {a.id} parked on {q.name} while "
                                        f"{r.id} goes to the free list")
                del fp.in_use[r]
                fp.free.append(r)
                self.log.append(("free", owner.name, r.id))
                if owner.teardown_pending and not fp.in_use:
                    owner._teardown_pool()
                return
            irp.location = None
            r.irp = irp
            irp.request = r
            self.log.append(("bind", owner.name, r.id, irp.id))
            if owner.accept:
                owner.queue_request(r)
                return
            # Not accepting: completed STATUS_INVALID_DEVICE_STATE, which recycles r again.
            self.log.append(("not_accepting", owner.name, r.id, irp.id))
            r.irp = None
            self.complete_irp(irp, STATUS_INVALID_DEVICE_STATE, "invalid_state")

    def destroy(self, r: Request) -> None:
        if r.presented:
            self.log.append(("cleanup", r.id))
            self.log.append(("destroy", r.id))

    # --- driver actions -----------------------------------------------------------------------
    def mark_cancelable(self, r: Request, routine: Callable | None = None) -> None:
        r.cancelable = True
        r.cancel_routine = routine

    def forward(self, r: Request, dest: Queue) -> int:
        """WdfRequestForwardToIoQueue: pool ownership never changes."""
        if not dest.accept:
            self.trace(f"WDFQUEUE {dest.name} is not accepting requests, WDFREQUEST {r.id} "
                       "STATUS_WDF_BUSY")
            return STATUS_WDF_BUSY
        c = r.current_queue
        r.owned = False
        r.cancelable = False
        del c.driver_owned[r]
        self.log.append(("forward", r.id, c.name, dest.name))
        if r.irp.cancel:
            r.current_queue = dest
            dest._cancel_for_queue(r)
        else:
            dest._insert_new(r)
            dest._dispatch_loop()
        c.driver_count -= 1
        if c.depth == 0:
            c._dispatch_loop()
        return STATUS_SUCCESS

    def requeue(self, r: Request) -> int:
        """WdfRequestRequeue (section 6.12)."""
        q = r.current_queue
        if q.dispatch != MANUAL:
            self.trace(f"Requeue is allowed only for a manual queue, WDFREQUEST {r.id} "
                       "STATUS_INVALID_DEVICE_REQUEST")
            return STATUS_INVALID_DEVICE_REQUEST
        r.owned = False
        r.cancelable = False
        del q.driver_owned[r]
        q.driver_count -= 1
        if q.cancel_dispatched or r.irp.cancel:
            q._cancel_for_queue(r)
        else:
            q.main.appendleft(r)
            r.irp.location = ("main", q)
            if (self.legacy_requeue_diagnostic and self.bound_version < (1, 11)
                    and not q.accept):
                self.diagnostic("LEGACY_REQUEUE_AFTER_PURGE", f"{r.id} on {q.name}")
            if len(q.main) == 1:
                q.transition_from_empty = True
        q._dispatch_loop()
        return STATUS_SUCCESS

    def send_and_forget(self, r: Request) -> None:
        """The IRP leaves WDF; a pool member recycles right after the send."""
        irp, r.irp = r.irp, None
        irp.request = None
        r.completed = True
        self.log.append(("send_and_forget", r.id, irp.id))
        if r.owned:
            r.owned = False
            c = r.current_queue
            del c.driver_owned[r]
            c.driver_count -= 1
            if c.depth == 0:
                c._dispatch_loop()
        if r.reserved:
            self.recycle(r)

    def enqueue(self, r: Request) -> int:
        """WdfDeviceEnqueueRequest from EvtIoInCallerContext."""
        return r.current_queue.queue_request(r)

    # --- I/O manager and PnP ------------------------------------------------------------------
    def cancel_irp(self, irp: Irp) -> None:
        """IoCancelIrp (section 6.8)."""
        irp.cancel = True
        loc = irp.location
        if loc is None:
            r = irp.request
            if r is not None and r.owned and r.cancelable:
                q = r.current_queue
                r.cancelable = False
                r.canceled = True
                q.cancelled_driver.append(r)
                if q.depth == 0:
                    q._dispatch_loop()
            return
        where, q = loc
        if where == "parked":
            q.fp.parked.remove(irp)
            irp.location = None
            self.complete_irp(irp, STATUS_CANCELLED, "cancelled")
        else:
            r = irp.request
            q.main.remove(r)
            irp.location = None
            q._cancel_for_queue(r)

    def cleanup(self, file) -> None:
        """IRP_MJ_CLEANUP for a file object: every queue, in the device's queue-list order."""
        self.log.append(("cleanup_file", file))
        for q in list(self.queues):
            if q.fp is not None:
                for irp in [i for i in q.fp.parked if i.file == file]:
                    q.fp.parked.remove(irp)
                    irp.location = None
                    self.complete_irp(irp, STATUS_CANCELLED, "cancelled")
            for r in [r for r in q.main if r.irp.file == file]:
                if r in q.main:
                    q.main.remove(r)
                    r.irp.location = None
                    q._cancel_for_queue(r)
            q._dispatch_loop()

    def power_hold(self) -> None:
        """Device leaving D0: power-managed queues accept but do not dispatch (section 6.13)."""
        for q in self.queues:
            q.power_off = True

    def power_resume(self) -> None:
        for q in list(self.queues):
            q.power_off = False
            q._dispatch_loop()

    def power_purge(self) -> None:
        """Surprise removal: SHUTDOWN, then purge every queue (section 6.13)."""
        for q in list(self.queues):
            q.shutdown = True
            q._purge(True, True, None, "power_purge")


def _noop1(a):
    return None


def _noop2(a, b):
    return None
