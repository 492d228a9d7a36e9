"""What happens in the scenario: IRPs arrive, KMDF allocates (or fails to allocate) a request for
each, applies the forward-progress policy the driver really had, parks, recycles, purges — and
every observable effect becomes an Emission (one ETW record or IFR line) at its time.

KMDF behaviour follows forward-progress.md: section 3.7 (only READ, WRITE, DEVICE_CONTROL and
INTERNAL_DEVICE_CONTROL reach a queue; each device has its own queues and pools), section 4 (arrival: allocation, policy verdict, free
reserved request or parking), 5.3 (recycling a completed reserved request into the oldest parked
IRP), 6.5-6.7 (purge, stop-and-purge, drain, start), 8.2 (IFR message texts) and 8.3 (what is not
traced). The queues dispatch in parallel and the driver never marks requests cancelable, so a
purge leaves requests the driver holds to finish (contract section 5 default).

Deterministic: one random.Random(seed) drives every draw, in a fixed order.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from fpreplay.schema import (
    IO_QUEUE_MAJORS, IRP_MJ_CLEANUP, IRP_MJ_CREATE, IRP_MJ_FLUSH_BUFFERS, IRP_MJ_READ,
    IRP_MJ_WRITE, IRP_PAGING_IO, STATUS_CANCELLED,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS,
    STATUS_UNSUCCESSFUL, is_paging, nt_error,
)
from fpreplay.synth.scenario import Device, Queue, Scenario

US = 1_000
DISK_MAJORS = (IRP_MJ_READ, IRP_MJ_WRITE, IRP_MJ_FLUSH_BUFFERS)     # the ones DiskIo logs


def kernel_record_written(what: str, major: int, kernel: set[str]) -> bool:
    """Does the kernel record `what` of an IRP reach the .etl with these kernel families? (The
    FileIo records are only emitted when their family is on.)"""
    if what in ("diskio_init", "diskio_done"):
        return "diskio" in kernel and major in DISK_MAJORS
    if what in ("drv_call", "drv_compl"):
        return "driver" in kernel
    return True


@dataclass
class Irp:
    """One IRP instance and everything the truth needs to say about it."""

    index: int
    addr: int
    device: Device
    queue: Queue
    major: int
    minor: int
    flags: int               # Irp->Flags without the priority bits
    priority: int
    size: int
    offset: int
    arrive_ns: int
    service_ns: int
    cpu: int
    tid: int
    pid: int
    file_object: int
    match_id: int
    request: int = 0         # WDFREQUEST that carried it (normal or reserved)
    reserved: bool = False
    parked_ns: int | None = None
    delivered_ns: int | None = None
    complete_ns: int | None = None
    status: int | None = None
    fate: str = "pending"    # what really happened, in KMDF's words (truth.json)
    evidence: set = field(default_factory=set)   # event kinds the trace shows for it
    completion_lost: bool = False
    status_seen: bool = False    # does any record of the trace carry the completion status?
    fs_addr: int | None = None   # the file system's IRP above it (kernel family "fileio")

    @property
    def paging(self) -> bool:
        return is_paging(self.flags, self.major)

    @property
    def driver_received(self) -> bool:
        return self.delivered_ns is not None

    def actual(self) -> str:
        """The contract's `actual` (section 4, first match wins) from what the trace shows."""
        ev = self.evidence
        if self.completion_lost:
            return "incomplete"
        if "reserved_request_used" in ev:
            return "reserved"
        if "fp_policy_refused" in ev:
            return "refused"
        seen = self.status if self.status_seen else None
        if "request_alloc_failed" in ev or (seen == STATUS_INSUFFICIENT_RESOURCES
                                            and not self.driver_received):
            return "alloc_failed"
        if seen == STATUS_CANCELLED:
            return "cancelled"
        if seen == STATUS_INVALID_DEVICE_STATE:
            return "invalid_state"
        if self.status is None:
            return "incomplete"
        if nt_error(seen):
            return "failed"
        return "ok"


@dataclass
class Emission:
    """One thing written: an ETW record (`what` names the record) or an IFR line."""

    ts_ns: int
    seq: int
    cpu: int
    what: str                # diskio_init, drv_call, fileio_op, tl:<EventName>, drv_compl,
                             # diskio_done, fileio_end, opend, ifr
    irp: Irp | None = None
    values: dict | None = None   # TraceLogging fields; for ifr: {"key", "args"} (synth.wpp)


@dataclass
class QueueState:
    queue: Queue
    device: Device
    accept: bool = True
    dispatch: bool = True
    free: deque = field(default_factory=deque)       # reserved request handles
    in_use: set = field(default_factory=set)
    parked: deque = field(default_factory=deque)     # IRPs waiting for a reserved request
    held: deque = field(default_factory=deque)       # delivered while not dispatching
    reserve_high_water: int = 0
    last_op: str = "start"

    def state_name(self) -> str:
        # %!WDF_IO_QUEUE_STATE! of a queue that does not accept requests.
        return "WdfIoQueueDrained" if self.last_op == "drain" else "WdfIoQueuePurged"


class Simulation:
    def __init__(self, sc: Scenario):
        self.sc = sc
        self.rng = random.Random(sc.seed)
        # Its own generator, so that one-instant completions leave every other draw as it was.
        self._spread = random.Random(f"{sc.seed}/completions")
        self._one_instant = sc.completions == "one-instant"
        self.emissions: list[Emission] = []
        self.irps: list[Irp] = []
        self._seq = 0
        self._heap: list = []
        self._free_addrs: list[tuple[int, int]] = []     # (free from ns, address)
        self._next_addr = 0xFFFF_C58A_0634_0000
        self._free_fs_addrs: list[tuple[int, int]] = []
        self._next_fs_addr = 0xFFFF_C58A_0F21_0000
        self._free_handles: list[tuple[int, int]] = []
        self._next_handle = 0x0000_3A75_F9C1_0000
        self.queues: dict[tuple[str, str], QueueState] = {}
        self._lose_left = sc.lost_events
        self._rules: dict = {}
        # KMDF's own messages reach the reader when the IFR is dumped or replayed as WPP; they
        # never say that a request is reserved (forward-progress.md 8.3).
        self._framework_messages = sc.ifr or sc.wpp
        self._setup_devices()

    # --- identities ------------------------------------------------------------------------
    def _setup_devices(self) -> None:
        for n, dev in enumerate(self.sc.devices):
            dev.handle = 0x0000_29FC_B944_1918 + n * 0x10_0000
            dev.devobj = 0xFFFF_D603_41DC_FAD0 + n * 0x10_0000
            dev.dispatch_routine = 0xFFFF_F806_2A31_1040 + n * 0x4000
            for k, q in enumerate(dev.queues):
                q.handle = 0x0000_5E7F_3A6D_6FD8 + n * 0x10_0000 + k * 0x1000
                st = QueueState(q, dev)
                # The N reserved requests exist from policy assignment on (3.2), handles fixed.
                for r in range(q.policy.reserve):
                    st.free.append(0x0000_5E7F_3A1C_8FD8 + n * 0x10_0000 + k * 0x1000 + r * 0x100)
                self.queues[(dev.name, q.name)] = st

    def _alloc(self, pool: list, t: int, fresh: str, step: int) -> int:
        # Lookaside reuse: an address freed earlier is handed out again, else a new one.
        if pool and pool[0][0] <= t:
            return heapq.heappop(pool)[1]
        value = getattr(self, fresh)
        setattr(self, fresh, value + step)
        return value

    def _emit(self, t: int, cpu: int, what: str, irp: Irp | None = None, **values) -> None:
        self._seq += 1
        self.emissions.append(Emission(t, self._seq, cpu, what, irp, values or None))

    def _ifr(self, t: int, cpu: int, key: str, args: tuple, irp: Irp | None = None) -> None:
        """A framework message (synth.wpp.MESSAGES): an IFR line, and a WPP record if asked."""
        self._seq += 1
        self.emissions.append(Emission(t, self._seq, cpu, "ifr", irp, {"key": key, "args": args}))

    def _evidence(self, irp: Irp, kind: str) -> None:
        """Note an event kind the trace shows for the IRP, if a source that shows it is written:
        the driver's TraceLogging events, or the framework's messages (IFR dump or WPP)."""
        if self.sc.instrumentation or (kind != "reserved_request_used"
                                       and self._framework_messages):
            irp.evidence.add(kind)

    def _tl(self, t: int, cpu: int, name: str, irp: Irp | None = None, **values) -> None:
        if self.sc.instrumentation:
            self._emit(t, cpu, f"tl:{name}", irp, **values)

    def _push(self, t: int, kind: str, obj) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, obj))

    # --- arrivals --------------------------------------------------------------------------
    def _generate_arrivals(self) -> None:
        rng = self.rng
        for a in self.sc.arrivals:
            dev = self.sc.device(a.device)
            majors = [m for m, _ in a.mix]
            weights = [w for _, w in a.mix]
            t = a.start_ns
            while True:
                # Times on the 10 MHz QPC grid, so that the trace states them exactly.
                t += max(1 * US, int(rng.expovariate(a.rate) * 1e9) // 100 * 100)
                if t >= a.end_ns or t >= self.sc.duration_ns:
                    break
                major = rng.choices(majors, weights)[0]
                paging = rng.random() < a.paging
                size = rng.choice(a.sizes)
                if a.service_fixed:
                    service = a.service_ns
                else:
                    service = max(20 * US, int(rng.expovariate(1.0 / a.service_ns)) // 100 * 100)
                flags = 0
                if major in (IRP_MJ_READ, IRP_MJ_WRITE):
                    if paging:
                        # Hard-fault page-in 0x43; modified-page-writer write 0x0A (etw-formats 2.4)
                        flags = 0x43 if major == IRP_MJ_READ else 0x0A
                    else:
                        flags = 0x0 if rng.random() < 0.5 else 0x1
                elif paging:
                    flags = IRP_PAGING_IO
                self._push(t, "arrival", dict(
                    device=dev, major=major, flags=flags, priority=a.priority, size=size,
                    offset=rng.randrange(0, 1 << 30) & ~0xFFF, service=service,
                    cpu=rng.randrange(self.sc.cpus),
                    pid=4 if (paging and major == IRP_MJ_WRITE) else rng.choice((4, 1812, 2644)),
                    tid=rng.randrange(0x100, 0x4000 if a.threads is None else 0x100 + 4 * a.threads,
                                      4)))

    def _fails(self, t: int, major: int) -> bool:
        for p in self.sc.pressure:
            if p.start_ns <= t < p.end_ns:
                prob = p.fail_probability(major)
                # Draw even when the probability is 0 or 1: the sequence of draws, and so
                # every later IRP, does not depend on the window's settings.
                return self.rng.random() < prob
        return False

    # --- the run ---------------------------------------------------------------------------
    def run(self) -> "Simulation":
        self._generate_arrivals()
        for op in self.sc.queue_ops:
            self._push(op.at_ns, "queue_op", op)
        for p in self.sc.pressure:
            self._push(p.start_ns, "pressure", p)
        while self._heap:
            t, _, kind, obj = heapq.heappop(self._heap)
            if kind == "arrival":
                self._arrive(t, obj)
            elif kind == "done":
                self._done(t, obj)
            elif kind == "queue_op":
                self._queue_op(t, obj)
            elif kind == "pressure":
                self._pressure(t, obj)
        return self

    def _pressure(self, t: int, p) -> None:
        # The memory manager's gauge, sampled every 100 ms while memory is low.
        cpu = 0
        s = t
        while s < min(p.end_ns, self.sc.duration_ns):
            self._tl(s, cpu, "MemoryPressure", None, Bytes=p.available_mb * 1024 * 1024)
            s += 100_000_000

    def _arrive(self, t: int, a: dict) -> None:
        dev: Device = a["device"]
        q = dev.queue_for(a["major"])
        st = self.queues[(dev.name, q.name)]
        addr = self._alloc(self._free_addrs, t, "_next_addr", 0x1A0)
        irp = Irp(index=len(self.irps), addr=addr, device=dev, queue=q, major=a["major"], minor=0,
                  flags=a["flags"], priority=a["priority"], size=a["size"], offset=a["offset"],
                  arrive_ns=t, service_ns=a["service"], cpu=a["cpu"], tid=a["tid"],
                  pid=a["pid"], file_object=0xFFFF_C58A_0A11_0000 + (a["tid"] << 4),
                  match_id=len(self.irps) + 1)
        self.irps.append(irp)
        cpu = irp.cpu
        irp.evidence.add("irp_dispatch")
        if "fileio" in self.sc.kernel and irp.major in (IRP_MJ_READ, IRP_MJ_WRITE):
            # The file system's own IRP (a different IRP, etw-formats.md 2.9): FileIo Read/Write
            # when it is issued, OpEnd with the final status once the disk IRP below completes.
            irp.fs_addr = self._alloc(self._free_fs_addrs, t, "_next_fs_addr", 0x1A0)
            self._emit(t, cpu, "fileio_op", irp)
        self._emit(t, cpu, "diskio_init", irp)
        self._emit(t + 1 * US, cpu, "drv_call", irp)
        self._tl(t + 2 * US, cpu, "IrpDispatch", irp, Irp=addr, Queue=f"0x{q.handle:x}",
                 Device=dev.name, Major=irp.major, Minor=irp.minor, IrpFlags=irp.flags,
                 Bytes=irp.size, Offset=irp.offset)
        self._ifr(t + 2 * US, cpu, "dispatch",
                  (dev.handle, dev.devobj, irp.major, irp.minor, addr), irp)
        t3 = t + 3 * US
        fp = q.policy.kind != "none"
        fails = self._fails(t, irp.major)
        if irp.major not in IO_QUEUE_MAJORS and irp.major != IRP_MJ_CREATE:
            # 3.7: no queue, no request object to allocate, so nothing memory could fail; the
            # driver's preprocess callback serves it. (The handle its IrpComplete names comes
            # from the same lookaside as before, so that older traces keep their bytes.)
            irp.request = self._alloc(self._free_handles, t, "_next_handle", 0x120)
            if irp.major == IRP_MJ_CLEANUP:
                self._flush_file_object(t3, irp)
            self._present(t3, st, irp)
            return
        if not fails:
            irp.request = self._alloc(self._free_handles, t, "_next_handle", 0x120)
            self._offer(t3, st, irp, in_dispatch=True)
            return
        # The request object could not be allocated (4.1 step 4).
        self._evidence(irp, "request_alloc_failed")
        self._tl(t3, cpu, "RequestAllocFailed", irp, Irp=addr, Queue=f"0x{q.handle:x}",
                 Device=dev.name, Major=irp.major, Status=STATUS_INSUFFICIENT_RESOURCES)
        if not fp or irp.major == IRP_MJ_CREATE:
            self._ifr(t3, cpu, "could_not_create", (STATUS_INSUFFICIENT_RESOURCES,), irp)
            irp.fate = "alloc_failed"
            self._complete(t3 + 2 * US, irp, STATUS_INSUFFICIENT_RESOURCES, by_driver=False,
                           in_dispatch=True)
            return
        self._ifr(t3, cpu, "alloc_failed", (STATUS_INSUFFICIENT_RESOURCES,), irp)
        use = (q.policy.kind == "always" or (q.policy.kind == "paging" and irp.paging)
               or (q.policy.kind == "examine" and self._examine(q, irp)))
        if not use:
            # 4.2 step B: the policy says fail; STATUS_UNSUCCESSFUL, not insufficient resources.
            self._evidence(irp, "fp_policy_refused")
            self._tl(t3 + 1 * US, cpu, "ForwardProgressRefused", irp, Irp=addr,
                     Queue=f"0x{q.handle:x}", Device=dev.name, Major=irp.major,
                     Status=STATUS_UNSUCCESSFUL)
            self._ifr(t3 + 1 * US, cpu, "forward_fail", (q.handle, addr, STATUS_UNSUCCESSFUL),
                      irp)
            irp.fate = "refused"
            self._complete(t3 + 3 * US, irp, STATUS_UNSUCCESSFUL, by_driver=False,
                           in_dispatch=True)
            return
        if st.free:
            member = st.free.popleft()
            st.in_use.add(member)
            st.reserve_high_water = max(st.reserve_high_water, len(st.in_use))
            irp.reserved = True
            irp.request = member
            self._deliver_reserved(t3 + 1 * US, st, irp, in_dispatch=True)
        else:
            # 4.4: parked at the tail; nothing is traced.
            irp.parked_ns = t3
            irp.fate = "parked"
            st.parked.append(irp)

    def _examine(self, q: Queue, irp: Irp) -> bool:
        """The driver's EvtIoWdmIrpForForwardProgress: its rule says use the reserve or fail."""
        import polars as pl

        expr = self._rules.get(q.policy.sql)
        if expr is None:
            expr = self._rules[q.policy.sql] = pl.sql_expr(q.policy.sql)   # vetted (scenario)
        row = pl.DataFrame({"major": [irp.major], "minor": [irp.minor], "irp_flags": [irp.flags],
                            "bytes": [irp.size], "offset": [irp.offset], "paging": [irp.paging]})
        return bool(row.select(expr.fill_null(False)).item())

    def _deliver_reserved(self, t: int, st: QueueState, irp: Irp,
                          in_dispatch: bool = False) -> None:
        self._offer(t, st, irp, in_dispatch)

    def _offer(self, t: int, st: QueueState, irp: Irp, in_dispatch: bool = False) -> None:
        """FxIoQueue::QueueRequest (6.2): refused if not accepting, else queued/presented."""
        q = st.queue
        if not st.accept:
            irp.fate = "invalid_state"
            self._complete(t + 2 * US, irp, STATUS_INVALID_DEVICE_STATE, by_driver=False,
                           in_dispatch=in_dispatch, line=(
                               t, irp.cpu, "not_accepting", (q.handle, st.state_name(), "",
                                                             irp.request,
                                                             STATUS_INVALID_DEVICE_STATE)))
            if irp.reserved:
                self._recycle(t + 3 * US, st, irp.request)
            return
        self._ifr(t, irp.cpu, "queuing", (irp.request, q.handle), irp)
        if not st.dispatch:
            st.held.append(irp)
            return
        self._present(t, st, irp)

    def _present(self, t: int, st: QueueState, irp: Irp) -> None:
        irp.delivered_ns = t
        if irp.reserved:
            # The driver's EvtIo callback sees WdfRequestIsReserved: only a presented request.
            self._evidence(irp, "reserved_request_used")
            self._tl(t, irp.cpu, "ReservedRequestUsed", irp, Irp=irp.addr, Request=irp.request,
                     Queue=f"0x{st.queue.handle:x}", Device=st.device.name, Major=irp.major)
        if irp.fate == "parked":
            irp.fate = "parked_then_reserved"
        elif irp.reserved:
            irp.fate = "reserved"
        else:
            irp.fate = "ok"
        self._push(t + irp.service_ns, "done", (st, irp))

    def _done(self, t: int, arg) -> None:
        st, irp = arg
        if (self._lose_left > 0 and not irp.reserved and t >= self.sc.duration_ns * 6 // 10
                and not any(p.start_ns <= t < p.end_ns for p in self.sc.pressure)):
            # Lost events: this completion's records never reach the file (the writer counts
            # them in EventsLost and flags the buffer). Its address is never reused, so the
            # open lifecycle cannot be confused with a later IRP.
            irp.completion_lost = True
            self._lose_left -= 1
        if self._one_instant:
            self._complete(t, irp, STATUS_SUCCESS, by_driver=True)
        else:
            for what, values in self._driver_completion(irp):
                self._record(t, irp.cpu, irp, what, values)
            self._complete(t + 1 * US, irp, STATUS_SUCCESS, by_driver=True)
        if irp.reserved:
            self._recycle(t + 2 * US, st, irp.request)
        else:
            heapq.heappush(self._free_handles, (t + 10 * US, irp.request))

    def _recycle(self, t: int, st: QueueState, member: int) -> None:
        """5.3: a completed reserved request serves the oldest parked IRP, else goes free."""
        if st.parked:
            nxt = st.parked.popleft()
            nxt.reserved = True
            nxt.request = member
            self._deliver_reserved(t, st, nxt)
            return
        st.in_use.discard(member)
        st.free.append(member)

    def _driver_completion(self, irp: Irp) -> list[tuple[str, dict]]:
        """What the driver writes when it completes the request it was presented (EvtIo* ->
        WdfRequestComplete): its IrpComplete, and the framework's "Completing WDFREQUEST" line
        (an IRP that never reached a queue has no WDFREQUEST)."""
        out = [("tl:IrpComplete", dict(Irp=irp.addr, Request=irp.request, Status=STATUS_SUCCESS,
                                       Bytes=irp.size))]
        if irp.major in IO_QUEUE_MAJORS or irp.major == IRP_MJ_CREATE:
            out.append(("ifr", dict(key="completing",
                                    args=(irp.request, irp.addr, irp.size, STATUS_SUCCESS))))
        return out

    def _in_etl(self, what: str, irp: Irp) -> bool:
        if what.startswith("tl:"):
            return self.sc.instrumentation
        if what == "ifr":
            return self.sc.wpp
        return kernel_record_written(what, irp.major, self.sc.kernel)

    def _record(self, t: int, cpu: int, irp: Irp, what: str, values: dict | None) -> None:
        if what.startswith("tl:"):
            self._tl(t, cpu, what[3:], irp, **values)
        elif what == "ifr":
            self._ifr(t, cpu, values["key"], values["args"], irp)
        else:
            self._emit(t, cpu, what, irp)

    def _complete(self, t: int, irp: Irp, status: int, *, by_driver: bool,
                  in_dispatch: bool = False, line: tuple | None = None) -> None:
        """The IRP completes at t: its completion records. `line` is the framework's own
        message completing it, (time, cpu, key, args): written at its time, or at t with the
        others when they all share one instant."""
        irp.complete_ns = t
        irp.status = status
        irp.evidence.add("irp_complete")
        cpu = (irp.cpu + 1) % self.sc.cpus if by_driver else irp.cpu
        records: list[tuple[int, str, dict | None]] = []    # (µs after t when staggered, ...)
        if line is not None:
            if self._one_instant:
                records.append((0, "ifr", dict(key=line[2], args=line[3])))
            else:
                self._ifr(line[0], line[1], line[2], line[3], irp)
        if by_driver:
            # TraceLogging IrpComplete, or the IFR's "Completing WDFREQUEST ... STATUS_x".
            irp.status_seen = self.sc.instrumentation or self._framework_messages
            if self._one_instant:
                records += [(0, what, values) for what, values in self._driver_completion(irp)]
        elif in_dispatch:
            # KMDF completed the IRP inside the dispatch routine: the driver's preprocess callback
            # (EvtDeviceWdmIrpPreprocess) sees WdfDeviceWdmDispatchPreprocessedIrp return that
            # status and logs it. Later framework completions (a purge cancelling parked IRPs, a
            # recycled request refused by the queue) happen where the driver cannot see them.
            # The framework's own line for it names the status too (Could not create
            # WDFREQUEST, Forward action ..., not accepting requests ... completing).
            records.append((0, "tl:IrpComplete", dict(Irp=irp.addr, Status=status)))
            irp.status_seen = self.sc.instrumentation or self._framework_messages
        records += [(0, "drv_compl", None), (1, "diskio_done", None)]
        if irp.fs_addr is not None:
            records.append((3, "fileio_end", None))
        if "opend" in self.sc.kernel:
            records.append((3, "opend", None))
            irp.status_seen = True
        if self._one_instant:
            # Every record at the one instant, each on another CPU, in a drawn order; the
            # framework's own line stays on the CPU of the call that writes it.
            order = self._spread.sample(records, len(records))
            cpus = self._spread.sample(range(self.sc.cpus), self.sc.cpus)
            k = 0
            for _, what, values in order:
                if what == "ifr":
                    self._record(t, irp.cpu, irp, what, values)
                    continue
                self._record(t, cpus[k % len(cpus)], irp, what, values)
                k += self._in_etl(what, irp)
        else:
            for dt, what, values in records:
                self._record(t + dt * US, cpu, irp, what, values)
        if not irp.completion_lost:
            heapq.heappush(self._free_addrs, (t + 5 * US, irp.addr))
            if irp.fs_addr is not None:
                heapq.heappush(self._free_fs_addrs, (t + 5 * US, irp.fs_addr))

    def _flush_file_object(self, t: int, cleanup: Irp) -> None:
        """3.7: IRP_MJ_CLEANUP -> FlushAllQueuesByFileObject: the device's parked IRPs of that
        file object complete with STATUS_CANCELLED (untraced but for their completion) before
        the cleanup itself completes."""
        k = 0
        for st in self.queues.values():
            if st.device is not cleanup.device:
                continue
            keep = deque()
            for p in st.parked:
                if p.file_object != cleanup.file_object:
                    keep.append(p)
                    continue
                p.fate = "cancelled_parked"
                self._complete(t + k * US, p, STATUS_CANCELLED, by_driver=False)
                k += 1
            st.parked = keep

    # --- queue operations ------------------------------------------------------------------
    def _queue_op(self, t: int, op) -> None:
        dev = self.sc.device(op.device)
        q = next(x for x in dev.queues if x.name == op.queue)
        st = self.queues[(dev.name, q.name)]
        name = {"purge": "QueuePurge", "stop": "QueueStop", "stop_purge": "QueueStopPurge",
                "drain": "QueueDrain", "start": "QueueStart"}[op.op]
        self._tl(t, 0, name, None, Queue=f"0x{q.handle:x}", Device=dev.name)
        st.last_op = op.op
        if op.op == "start":
            st.accept = True
            st.dispatch = True
            while st.held:
                self._present(t + 1 * US, st, st.held.popleft())
            return
        if op.op in ("purge", "drain"):
            st.accept = False           # 6.5 step 2 (drain clears ACCEPT too)
        if op.op in ("stop", "stop_purge"):
            st.accept = True            # 6.6 step 2: Stop keeps accepting, stops dispatching
            st.dispatch = False
        if op.op in ("purge", "stop_purge"):
            # Requests waiting in the queue are cancelled (6.5 step 4 / 6.6 step 4).
            while st.held:
                h = st.held.popleft()
                h.fate = "cancelled_queued"
                self._complete(t + 1 * US, h, STATUS_CANCELLED, by_driver=False,
                               line=(t, 0, "cancelling", (h.request, q.handle)))
                # the framework's "Cancelling WDFREQUEST" line means STATUS_CANCELLED (6.5)
                h.status_seen = h.status_seen or self._framework_messages
                if h.reserved:
                    self._recycle(t + 2 * US, st, h.request)
        if op.op in ("purge", "drain", "stop_purge"):
            # Parked IRPs are completed with STATUS_CANCELLED, untraced (6.5 step 6, 8.3).
            k = 0
            while st.parked:
                p = st.parked.popleft()
                p.fate = "cancelled_parked"
                self._complete(t + (2 + k) * US, p, STATUS_CANCELLED, by_driver=False)
                k += 1


def simulate(sc: Scenario) -> Simulation:
    return Simulation(sc).run()
