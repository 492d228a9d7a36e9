"""`compare --explain`: one IRP's story under each policy, in the framework's words."""

from __future__ import annotations

import polars as pl

from fpreplay.errors import ConfigError
from fpreplay.replay.whatif.comparison import Comparison
from fpreplay.units import format_duration_ns

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


def _wait(ns) -> str:
    return f"for {format_duration_ns(ns)}" if ns is not None else ""


def explain(cmp: Comparison, irp: int | str) -> list[dict]:
    """One IRP's story under each policy: one dict per instance of the address (reused IRPs)."""
    address = irp if isinstance(irp, int) else parse_irp_address(irp)
    rows = cmp.per_irp.with_row_index("_row").filter(pl.col("irp") == address)
    if not rows.height:
        raise ConfigError(f"IRP 0x{address:x}: no IRP with that address in the trace")
    stories = []
    for r in rows.iter_rows(named=True):
        entry = {k: r.get(k) for k in ("irp", "arrive_ns", "complete_ns", "device", "queue",
                                       "major", "paging", "status", "actual", "evidence")}
        entry["policies"] = []
        for p in cmp.policies:
            o = cmp.outcomes[p].sort("row").row(r["_row"], named=True)
            status = o.get("status")
            story = _STORY.get(o["outcome"], o["outcome"]).format(
                rid=o.get("reserved_id"), status=status or 0, wait=_wait(o.get("park_wait_ns")))
            entry["policies"].append({
                "policy": p, "outcome": o["outcome"], "status": status,
                "parked": bool(o.get("parked")), "park_wait_ns": o.get("park_wait_ns"),
                "deliver_ns": o.get("deliver_ns"), "complete_ns": o.get("complete_ns"),
                "reserved_id": o.get("reserved_id"), "verdict": r[f"{p}:verdict"],
                "story": story})
        stories.append(entry)
    return stories
