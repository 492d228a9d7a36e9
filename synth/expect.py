"""What `fpreplay compare --policy P` must say about a synthesized trace: an independent, small
what-if under the contract's defaults (contract sections 5-7), computed from the truth.

Defaults only: memory `observed` (the allocations that fail are those of IRPs whose actual is
alloc_failed, refused or reserved, at their arrival), one default queue with parallel dispatch
receiving every IRP, no resource callbacks, IRP_MJ_CREATE never uses the pool, queue operations
replayed at their times. IRPs the trace saw served (ok, reserved) hold the driver for what the
trace shows of it: from their delivery (deliver_ns, a ReservedRequestUsed) to their completion
where the delivery is seen, else their observed service time; others for the median of those
holds over served IRPs of the same major function, else of all served IRPs, else 1 ms. KMDF
rules from forward-progress.md 4.2-4.4, 5.3, 6.5-6.7: free list FIFO, parked FIFO, a recycled
request serves the oldest parked IRP, a purge cancels the parked IRPs, a queue that does not
accept fails what is offered with STATUS_INVALID_DEVICE_STATE.

Written independently of fpreplay.engine on purpose: two models agreeing is the test.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import deque

import polars as pl

from fpreplay.schema import (
    FAILED_ACTUALS, IRP_MJ_CREATE, STARVED_ACTUALS, STATUS_CANCELLED,
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
    sql = policy.split(":", 2)[2]
    df = pl.DataFrame(rows, infer_schema_length=None)
    return df.select(pl.sql_expr(sql).fill_null(False).alias("v"))["v"].to_list()


def compare_expectation(irps: list[dict], policy: str, queue_ops: list[tuple[int, str]]) -> dict:
    """irps: lifecycle rows (irp, major, paging, irp_flags, arrive_ns, complete_ns, deliver_ns,
    service_ns, actual, ...),
    queue_ops: (ts_ns, kind) on the default queue. Returns the compare/1 policy row."""
    m = re.fullmatch(r"(none)|(always|paging|examine):(\d+)(:.+)?", policy)
    if not m:
        raise ValueError(f"policy {policy!r}")
    reserve = 0 if m.group(1) else int(m.group(3))
    rows = sorted(irps, key=lambda r: r["arrive_ns"])
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

    use = _use_reserved(policy, rows)
    free = deque(range(reserve))
    in_use = 0
    high = 0
    parked: deque = deque()
    accept = True
    dispatching = True
    held: deque = deque()
    out = {id(r): None for r in rows}     # outcome, status
    wait: dict[int, int] = {}
    parked_ids: set = set()
    heap: list = []
    seq = 0
    # Events: 0 = completion (frees first at equal times), 1 = queue op, 2 = arrival.
    for t, kind in queue_ops:
        seq += 1
        heapq.heappush(heap, (t, 1, seq, "op", kind))
    for i, r in enumerate(rows):
        seq += 1
        heapq.heappush(heap, (r["arrive_ns"], 2, seq, "arrive", i))

    def deliver(t: int, i: int, member):
        nonlocal seq
        r = rows[i]
        if not accept:
            out[id(r)] = ("invalid_state", STATUS_INVALID_DEVICE_STATE)
            if member is not None:
                recycle(t, member)
            return
        if not dispatching:
            held.append((i, member))
            return
        present(t, i, member)

    def present(t: int, i: int, member):
        nonlocal seq
        r = rows[i]
        kind = "normal" if member is None else ("parked_reserved" if id(r) in parked_ids
                                                else "reserved")
        out[id(r)] = (kind, STATUS_SUCCESS)
        if id(r) in parked_ids:
            wait[id(r)] = t - r["arrive_ns"]
        seq += 1
        heapq.heappush(heap, (t + hold(r), 0, seq, "done", (i, member)))

    def recycle(t: int, member):
        nonlocal in_use
        if parked:
            deliver(t, parked.popleft(), member)
        else:
            in_use -= 1
            free.append(member)

    while heap:
        t, _, _, what, arg = heapq.heappop(heap)
        if what == "done":
            i, member = arg
            if member is not None:
                recycle(t, member)
        elif what == "op":
            if arg == "queue_start":
                accept = dispatching = True
                while held:
                    i, member = held.popleft()
                    present(t, i, member)
                continue
            if arg in ("queue_purge", "queue_drain"):
                accept = False
            if arg in ("queue_stop", "queue_stop_purge"):
                accept, dispatching = True, False
            if arg in ("queue_purge", "queue_stop_purge"):
                while held:
                    i, member = held.popleft()
                    out[id(rows[i])] = ("cancelled", STATUS_CANCELLED)
                    if member is not None:
                        recycle(t, member)
            if arg in ("queue_purge", "queue_drain", "queue_stop_purge"):
                while parked:
                    out[id(rows[parked.popleft()])] = ("cancelled", STATUS_CANCELLED)
        else:
            i = arg
            r = rows[i]
            if r["actual"] not in STARVED_ACTUALS:
                deliver(t, i, None)
                continue
            if r["major"] == IRP_MJ_CREATE or not use[i] or reserve == 0:
                if reserve == 0 or r["major"] == IRP_MJ_CREATE:
                    out[id(r)] = ("failed", STATUS_INSUFFICIENT_RESOURCES)
                else:
                    out[id(r)] = ("refused", STATUS_UNSUCCESSFUL)
                continue
            if free:
                member = free.popleft()
                in_use += 1
                high = max(high, in_use)
                deliver(t, i, member)
            else:
                parked_ids.add(id(r))
                parked.append(i)

    rescued = still = regressed = cancelled = invalid = 0
    waits = []
    for r in rows:
        kind, status = out[id(r)] or ("incomplete", None)
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
            "parked": len(parked_ids), "park_wait_ns": nearest_rank(waits),
            "cancelled": int(cancelled), "invalid_state": int(invalid),
            "reserve_high_water": high}

