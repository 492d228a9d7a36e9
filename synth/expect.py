"""What `fpreplay compare --policy P` must say about a synthesized trace: an independent, small
what-if under the contract's defaults (contract sections 5-7), computed from the truth.

Defaults only: memory `observed` (the allocations that fail are those of IRPs whose actual is
alloc_failed, refused or reserved, at their arrival), each device with its own default queue
(parallel dispatch, no resource callbacks), its own reserved pool, parked list and queue state
(forward-progress.md 3.7), queue operations replayed at their times on their device's queue. Only
READ, WRITE, DEVICE_CONTROL and INTERNAL_DEVICE_CONTROL reach the queue; every other major
(creates included) keeps its observed outcome, except that an IRP_MJ_CLEANUP cancels the parked
and queued IRPs of its file object at its arrival. IRPs the trace saw served (ok, reserved) hold
the driver for what the trace shows of it: from their delivery (deliver_ns, a
ReservedRequestUsed) to their completion where the delivery is seen, else their observed service
time; others for the median of those holds over the device's served IRPs of the same major
function, else of all its served IRPs, else 1 ms. KMDF rules from forward-progress.md 4.2-4.4,
5.3, 6.5-6.7: free list FIFO, parked FIFO, a recycled request serves the oldest parked IRP, a
purge cancels the parked IRPs, a queue that does not accept fails what is offered with
STATUS_INVALID_DEVICE_STATE. The devices' figures add up;
reserve_high_water is the most reserved requests in use at once in any one device's pool.

Written independently of fpreplay.engine on purpose: two models agreeing is the test.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import deque

import polars as pl

from fpreplay.examine_rule import vet_examine_rule
from fpreplay.schema import (
    FAILED_ACTUALS, IO_QUEUE_MAJORS, IRP_MJ_CLEANUP, STARVED_ACTUALS, STATUS_CANCELLED,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS,
    STATUS_UNSUCCESSFUL, nt_error,
)


def nearest_rank(values: list[int]) -> dict:
    if not values:
        return {"p50": 0, "p99": 0, "max": 0}
    s = sorted(values)
    n = len(s)
    return {"p50": s[max(0, math.ceil(0.5 * n) - 1)], "p99": s[max(0, math.ceil(0.99 * n) - 1)],
            "max": s[-1]}


def _median(values: list[int]) -> int:
    s = sorted(values)
    n = len(s)
    if n % 2:
        return s[n // 2]
    return (s[n // 2 - 1] + s[n // 2]) // 2


def _use_reserved(policy: str, rows: list[dict]) -> list[bool]:
    """Per IRP: would a failed allocation take the reserved path under this policy?"""
    kind = policy.split(":", 1)[0]
    if kind == "none":
        return [False] * len(rows)
    if kind == "always":
        return [True] * len(rows)
    if kind == "paging":
        return [bool(r["paging"]) for r in rows]
    df = pl.DataFrame(rows, infer_schema_length=None)
    sql = vet_examine_rule(policy.split(":", 2)[2], df.columns)
    return df.select(pl.sql_expr(sql).fill_null(False).alias("v"))["v"].to_list()


def _holds(rows: list[dict]):
    """How long the driver holds each IRP the replay delivers (contract section 6)."""
    served = [r for r in rows if r["actual"] in ("ok", "reserved") and r["service_ns"] is not None]

    def observed_hold(r: dict) -> int:
        # A parked IRP's service_ns counts its wait; the driver held it from its delivery.
        if r.get("deliver_ns") is not None and r["complete_ns"] is not None:
            return r["complete_ns"] - r["deliver_ns"]
        return r["service_ns"]

    by_major: dict[int, list[int]] = {}
    for r in served:
        by_major.setdefault(r["major"], []).append(observed_hold(r))
    all_served = [observed_hold(r) for r in served]

    def hold(r: dict) -> int:
        if r["actual"] in ("ok", "reserved") and r["service_ns"] is not None:
            return observed_hold(r)
        if by_major.get(r["major"]):
            return _median(by_major[r["major"]])
        return _median(all_served) if all_served else 1_000_000
    return hold


class _DeviceReplay:
    """One device's default queue and reserved pool, replayed over its IRPs in arrival order."""

    def __init__(self, reserve: int, hold):
        self.reserve = reserve
        self.hold = hold
        self.free = deque(range(reserve))
        self.in_use = self.high = 0
        self.parked: deque = deque()
        self.accept = self.dispatching = True
        self.held: deque = deque()
        self.heap: list = []
        self.seq = 0
        self.out: dict = {}            # id(row) -> (outcome, status)
        self.wait: dict = {}           # id(row) -> park wait of a parked IRP later served
        self.parked_ids: set = set()

    def _push(self, t: int, order: int, what: str, arg) -> None:
        # order at equal times: 0 completion (frees first), 1 queue op, 2 arrival
        self.seq += 1
        heapq.heappush(self.heap, (t, order, self.seq, what, arg))

    def run(self, rows: list[dict], use: list[bool], ops: list[tuple[int, str]]) -> "_DeviceReplay":
        self.rows = rows
        for t, kind in ops:
            self._push(t, 1, "op", kind)
        for i, r in enumerate(rows):
            self._push(r["arrive_ns"], 2, "arrive", i)
        while self.heap:
            t, _, _, what, arg = heapq.heappop(self.heap)
            if what == "done":
                if arg[1] is not None:
                    self._recycle(t, arg[1])
            elif what == "op":
                self._queue_op(t, arg)
            else:
                self._arrive(t, arg, use[arg])
        return self

    def _arrive(self, t: int, i: int, use: bool) -> None:
        r = self.rows[i]
        if r["major"] not in IO_QUEUE_MAJORS:
            # Never reaches a queue: its observed outcome stands (3.7).
            self.out[id(r)] = ("observed", r["status"])
            if r["major"] == IRP_MJ_CLEANUP and r.get("file_object") is not None:
                self._flush_file_object(t, r["file_object"])
            return
        if r["actual"] not in STARVED_ACTUALS:
            self._deliver(t, i, None)
        elif not use or self.reserve == 0:
            self.out[id(r)] = (("failed", STATUS_INSUFFICIENT_RESOURCES) if self.reserve == 0
                               else ("refused", STATUS_UNSUCCESSFUL))
        elif self.free:
            member = self.free.popleft()
            self.in_use += 1
            self.high = max(self.high, self.in_use)
            self._deliver(t, i, member)
        else:
            self.parked_ids.add(id(r))
            self.parked.append(i)

    def _flush_file_object(self, t: int, file_object: int) -> None:
        """FlushByFileObject (forward-progress.md 3.7, 6): the file object's parked IRPs, then
        its requests still in the queue (held by a stopped queue), complete STATUS_CANCELLED; a
        cancelled reserved request is recycled."""
        mine = [i for i in self.parked if self.rows[i].get("file_object") == file_object]
        self.parked = deque(i for i in self.parked if i not in mine)
        for i in mine:
            self.out[id(self.rows[i])] = ("cancelled", STATUS_CANCELLED)
        held = [(i, m) for i, m in self.held if self.rows[i].get("file_object") == file_object]
        self.held = deque(h for h in self.held if h not in held)
        for i, member in held:
            self.out[id(self.rows[i])] = ("cancelled", STATUS_CANCELLED)
            if member is not None:
                self._recycle(t, member)

    def _deliver(self, t: int, i: int, member) -> None:
        if not self.accept:
            self.out[id(self.rows[i])] = ("invalid_state", STATUS_INVALID_DEVICE_STATE)
            if member is not None:
                self._recycle(t, member)
        elif not self.dispatching:
            self.held.append((i, member))
        else:
            self._present(t, i, member)

    def _present(self, t: int, i: int, member) -> None:
        r = self.rows[i]
        parked = id(r) in self.parked_ids
        self.out[id(r)] = ("normal" if member is None else
                           "parked_reserved" if parked else "reserved", STATUS_SUCCESS)
        if parked:
            self.wait[id(r)] = t - r["arrive_ns"]
        self._push(t + self.hold(r), 0, "done", (i, member))

    def _recycle(self, t: int, member) -> None:
        if self.parked:
            self._deliver(t, self.parked.popleft(), member)
        else:
            self.in_use -= 1
            self.free.append(member)

    def _queue_op(self, t: int, kind: str) -> None:
        if kind == "queue_start":
            self.accept = self.dispatching = True
            while self.held:
                self._present(t, *self.held.popleft())
            return
        if kind in ("queue_purge", "queue_drain"):
            self.accept = False
        if kind in ("queue_stop", "queue_stop_purge"):
            self.accept, self.dispatching = True, False
        if kind in ("queue_purge", "queue_stop_purge"):
            while self.held:
                i, member = self.held.popleft()
                self.out[id(self.rows[i])] = ("cancelled", STATUS_CANCELLED)
                if member is not None:
                    self._recycle(t, member)
        if kind in ("queue_purge", "queue_drain", "queue_stop_purge"):
            while self.parked:
                self.out[id(self.rows[self.parked.popleft()])] = ("cancelled", STATUS_CANCELLED)


def compare_expectation(irps: list[dict], policy: str,
                        queue_ops: list[tuple[int, str, str]]) -> dict:
    """irps: lifecycle rows (irp, device, major, paging, irp_flags, arrive_ns, complete_ns,
    deliver_ns, service_ns, status, actual, file_object, ...), queue_ops: (ts_ns, kind, device)
    on that device's default queue. Returns the compare/1 policy row."""
    m = re.fullmatch(r"(none)|(always|paging|examine):(\d+)(:.+)?", policy)
    if not m:
        raise ValueError(f"policy {policy!r}")
    reserve = 0 if m.group(1) else int(m.group(3))
    rows = sorted(irps, key=lambda r: r["arrive_ns"])
    use = _use_reserved(policy, rows)
    replays = []
    for device in dict.fromkeys(r["device"] for r in rows):
        mine = [i for i, r in enumerate(rows) if r["device"] == device]
        # holds from the device's own served IRPs: another disk's speed says nothing of its own
        hold = _holds([rows[i] for i in mine])
        replays.append(_DeviceReplay(reserve, hold).run(
            [rows[i] for i in mine], [use[i] for i in mine],
            [(t, kind) for t, kind, d in queue_ops if d == device]))
    out = {k: v for rp in replays for k, v in rp.out.items()}
    wait = {k: v for rp in replays for k, v in rp.wait.items()}
    rescued = still = regressed = cancelled = invalid = 0
    waits = []
    for r in rows:
        kind, status = out.get(id(r)) or ("incomplete", None)
        error = nt_error(status)
        delivered = kind in ("normal", "reserved", "parked_reserved")
        if r["actual"] in FAILED_ACTUALS:
            if delivered:
                rescued += 1
            elif error:
                still += 1
        elif r["actual"] in ("ok", "reserved") and error:
            regressed += 1
        cancelled += status == STATUS_CANCELLED
        invalid += status == STATUS_INVALID_DEVICE_STATE
        if kind == "parked_reserved":
            waits.append(wait[id(r)])
    return {"policy": policy, "rescued": rescued, "still_failed": still, "regressed": regressed,
            "parked": sum(len(rp.parked_ids) for rp in replays),
            "park_wait_ns": nearest_rank(waits),
            "cancelled": int(cancelled), "invalid_state": int(invalid),
            "reserve_high_water": max((rp.high for rp in replays), default=0)}
