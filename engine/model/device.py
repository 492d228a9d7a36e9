"""A KMDF device: its queues and dispatch table, the verifier's knobs and generator, request
completion and recycling (section 5), driver actions, the I/O manager's cancel and cleanup, power
(section 6.8, 6.13), and the effect log the tests read."""

from __future__ import annotations

import itertools
from collections import deque
from typing import Callable

from fpreplay.schema import IO_QUEUE_MAJORS, IRP_MJ_CLEANUP, IRP_MJ_CREATE

from ..status import (STATUS_CANCELLED, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_DEVICE_STATE,
                      STATUS_PENDING, STATUS_SUCCESS, STATUS_WDF_BUSY, map_wdf_private)
from .objects import MANUAL, PARALLEL, Irp, Request
from .queue import Queue


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
        """The framework's dispatch by major code (FxDevice::GetDispatchPackage, 3.7). READ,
        WRITE, DEVICE_CONTROL and INTERNAL_DEVICE_CONTROL go to the I/O package and a queue; a
        CREATE to the general package, which hands it to its queue with an ordinary request.
        Every other major reaches no queue (no request, no reserved pool, no fault injection):
        an IRP_MJ_CLEANUP first flushes its file object's IRPs (OnCleanup ->
        FlushAllQueuesByFileObject); completing it is the other handlers' business (the
        caller's), so it stays pending here."""
        if irp.major in IO_QUEUE_MAJORS or irp.major == IRP_MJ_CREATE:
            return self.route(irp.major).arrive(irp)
        self.log.append(("no_queue", irp.id, irp.major))
        if irp.major == IRP_MJ_CLEANUP and irp.file is not None:
            self.cleanup(irp.file)
        return STATUS_PENDING

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
        self._release(r)
        if r.reserved:
            if self.kmdf_verifier and r.in_presentation:
                r.recycle_deferred = True
            else:
                self.recycle(r)
        else:
            self.destroy(r)

    def _release(self, r: Request) -> None:
        """A request the driver owned leaves it: its queue counts one fewer and may dispatch
        (this bookkeeping comes before recycling a pool member, 5.2)."""
        if r.owned:
            r.owned = False
            c = r.current_queue
            del c.driver_owned[r]
            c.driver_count -= 1
            if c.depth == 0:
                c._dispatch_loop()

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
        self._release(r)
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
            fp = q.fp
            flushed = [i for i in fp.parked if i.file == file] if fp is not None else ()
            if flushed:                      # PurgeForwardProgressIrps(FileObject), then the rest
                fp.parked = deque(i for i in fp.parked if i.file != file)
                for irp in flushed:
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
