"""A KMDF I/O queue with forward progress: policy assignment (section 3), arrival and the
reserved path (section 4), the dispatch loop and presentation (section 6.2-6.4), purge, drain,
stop, start and deletion (section 6.5-6.10)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

from fpreplay.schema import IRP_MJ_CREATE, IRP_MJ_READ, IRP_MJ_WRITE, nt_success

from ..policies import strategy_for_code
from ..status import (ACTION_FAIL, ACTION_USE_RESERVED, FP_POLICY_STRUCT_SIZE, POLICY_EXAMINE,
                      STATUS_CANCELLED, STATUS_DELETE_PENDING, STATUS_INFO_LENGTH_MISMATCH,
                      STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_REQUEST,
                      STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_PENDING,
                      STATUS_SUCCESS, STATUS_UNSUCCESSFUL)
from .objects import (MANUAL, PARALLEL, SEQUENTIAL, UNLIMITED, BugCheck, ForwardProgressPolicy,
                      FpContext, Irp, Request)

if TYPE_CHECKING:
    from .device import Device


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

    def _begin(self, what: str, slot: str, cb, refusal: str) -> int | None:
        """What purge (6.5) and stop (6.6) do alike before they differ: a deleted queue refuses,
        a completion callback takes its slot unless one is pending (`refusal` is the trace
        line then), the operation is logged. None: go on."""
        if self.deleted:
            return STATUS_DELETE_PENDING
        if cb is not None:
            if getattr(self, slot) is not None:
                self.device.trace(f"WDFQUEUE {self.name} already has a {refusal}")
                return STATUS_INVALID_DEVICE_REQUEST
            setattr(self, slot, cb)
        self.device.log.append((what, self.name))
        return None

    def _purge(self, cancel_queued: bool, cancel_driver: bool, cb, what: str) -> int:
        """Purge and drain (6.5): stop accepting, cancel, then cancel the parked IRPs one by one
        (a member recycled meanwhile can take one first: case 32)."""
        dev = self.device
        refused = self._begin(what, "purge_cb", cb, "PurgeComplete callback registered "
                                                    "STATUS_INVALID_DEVICE_REQUEST")
        if refused is not None:
            return refused
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
        """Stop and stop-and-purge (6.6): keep accepting, stop dispatching; with cancel, take the
        parked IRPs as a snapshot first, so all of them complete STATUS_CANCELLED (case 33)."""
        dev = self.device
        refused = self._begin(what, "idle_cb", cb, "IdleComplete callback registered, "
                                                   "STATUS_INVALID_DEVICE_REQUEST")
        if refused is not None:
            return refused
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
