"""`compare --explain`: one IRP's story under each policy, in the framework's words."""

from __future__ import annotations

import polars as pl

from fpreplay.errors import ConfigError
from fpreplay.replay.whatif.comparison import Comparison
from fpreplay.units import TimeBound, format_duration_ns, parse_time_bound

# Arrival times print to the microsecond: a time copied from a table picks the IRP that arrived
# within it.
_PRINTED_RESOLUTION_NS = 1_000

_STORY = {
    "normal": "a request object was allocated; the driver received it normally",
    "reserved": "allocation failed; the driver received it at once in reserved request {rid}",
    "parked_reserved": "allocation failed and no reserved request was free; parked {wait}, then "
                       "delivered in reserved request {rid}",
    "refused": "allocation failed and the policy refused it: completed with 0x{status:08X}",
    "cancelled": "completed with STATUS_CANCELLED (0x{status:08X}) by a queue purge or stop",
    "invalid_state": "the queue was not accepting: completed with 0x{status:08X}",
    "alloc_failed": "allocation failed on a queue without forward progress: completed with "
                    "0x{status:08X}",
    "parked_at_end": "allocation failed; still parked when the trace ended",
}


def parse_irp_address(text: str) -> int:
    """`0xffffa0012345b010` (or the same digits without 0x) -> the address."""
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text, 16)
    except ValueError:
        raise ConfigError(f"{text!r} is not an IRP address (e.g. 0xffffa0012345b010)") from None


def parse_irp_at(text: str) -> tuple[int, TimeBound | None]:
    """`ADDRESS` or `ADDRESS@TIME` (TIME as --range takes it: a UTC clock time as the tables
    print it, a date and time, or seconds / a duration after the trace start) -> the address
    and the time that picks one of the IRPs the address served."""
    address, at, when = str(text).partition("@")
    if not at:
        return parse_irp_address(address), None
    try:
        return parse_irp_address(address), parse_time_bound(when)
    except ConfigError as e:
        raise ConfigError(f"{text!r}: {e}") from None


def _wait(ns) -> str:
    return f"for {format_duration_ns(ns)}" if ns is not None else ""


def explain(cmp: Comparison, irp: int | str, at_ns: int | None = None) -> list[dict]:
    """One IRP's story under each policy: one dict per IRP the address served (Windows recycles
    IRP addresses), those some policy changes first, each group in arrival order. With `at_ns`
    only the IRP of that address in flight then (else the last to arrive before it)."""
    address = irp if isinstance(irp, int) else parse_irp_address(irp)
    rows = cmp.per_irp.with_row_index("_row").filter(pl.col("irp") == address)
    if not rows.height:
        raise ConfigError(f"IRP 0x{address:x}: no IRP with that address in the trace")
    if at_ns is not None:
        rows = _instance_at(rows, address, at_ns)
    stories = [_story(cmp, r) for r in rows.sort("arrive_ns", nulls_last=True,
                                                  maintain_order=True).iter_rows(named=True)]
    changed = [any(p["verdict"] != "same" for p in s["policies"]) for s in stories]
    return ([s for s, c in zip(stories, changed) if c]
            + [s for s, c in zip(stories, changed) if not c])


def _instance_at(rows: pl.DataFrame, address: int, at_ns: int) -> pl.DataFrame:
    """The IRP in flight at `at_ns` (arrived by then, not completed before), else the last to
    arrive by then."""
    arrived = rows.filter(pl.col("arrive_ns") <= at_ns + _PRINTED_RESOLUTION_NS)
    if not arrived.height:
        first = rows["arrive_ns"].min()
        raise ConfigError(f"IRP 0x{address:x}: none of its {rows.height} IRPs had arrived by "
                          f"then; the first arrived {format_duration_ns(first - at_ns)} later")
    return arrived.sort("arrive_ns", nulls_last=True).tail(1)


def stories_of_rows(cmp: Comparison, rows: list[int]) -> list[dict]:
    """The stories of the IRPs at these row numbers of `cmp.per_irp` (as `explain` tells them),
    each policy's outcomes sorted once however many IRPs are told (the report tells hundreds)."""
    by_row = {p: cmp.outcomes[p].sort("row") for p in cmp.policies}
    per = cmp.per_irp.with_row_index("_row")
    return [_story(cmp, per.row(n, named=True), by_row) for n in rows]


def _story(cmp: Comparison, r: dict, by_row: dict[str, pl.DataFrame] | None = None) -> dict:
    entry = {k: r.get(k) for k in ("irp", "arrive_ns", "complete_ns", "device", "queue",
                                   "major", "paging", "status", "actual", "evidence")}
    entry["policies"] = []
    for p in cmp.policies:
        o = (by_row[p] if by_row else cmp.outcomes[p].sort("row")).row(r["_row"], named=True)
        status = o.get("status")
        story = _STORY.get(o["outcome"], o["outcome"]).format(
            rid=o.get("reserved_id"), status=status or 0, wait=_wait(o.get("park_wait_ns")))
        entry["policies"].append({
            "policy": p, "outcome": o["outcome"], "status": status,
            "parked": bool(o.get("parked")), "park_wait_ns": o.get("park_wait_ns"),
            "deliver_ns": o.get("deliver_ns"), "complete_ns": o.get("complete_ns"),
            "reserved_id": o.get("reserved_id"), "verdict": r[f"{p}:verdict"],
            "story": story})
    return entry
