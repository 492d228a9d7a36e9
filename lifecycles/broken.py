"""Broken lifecycles are counted (Diagnostics.count) and reported (Diagnostics.warn), never
dropped: instances re-dispatched, reused by the other layer, completed without a dispatch, still
open at the end (instances.py says when each happens), and instances open while events were lost.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles.instances import FS_PREFIXES

# Counter: file-system IRPs never completed because the trace has no operation-end events.
NO_OPERATION_END = "fs_irps_without_operation_end"

_REPORTS = {
    "redispatched": ("irp_redispatched", "IRP instance(s) were dispatched again before a "
                     "completion was seen, each reported 'incomplete'"),
    "reused": ("irp_address_reused", "IRP instance(s) had their address reused by the other "
               "layer (file system vs disk) before a completion was seen, each reported "
               "'incomplete'"),
    "orphan": ("irp_completion_without_dispatch", "IRP completion(s) had no dispatch in the "
               "trace, each a row whose arrive_ns is its completion time"),
    "open_at_end": ("irp_open_at_end", "IRP instance(s) were still open at the end of the "
                    "trace, each reported 'incomplete'"),
}


def broken_counts(inst: pl.DataFrame) -> pl.DataFrame:
    """Per kind of broken lifecycle (_note) and first event (_opener), how many (`len`), over
    rows of one instance each: _note, _opener, actual. An instance re-dispatched or still open
    whose outcome the trace shows otherwise (its request allocation failed, the policy refused
    it, it was served from the reserve) is no broken lifecycle and is not counted."""
    broken = inst.filter(pl.col("_note").is_not_null()
                         & ((pl.col("_note") == "orphan") | (pl.col("actual") == "incomplete")))
    return broken.group_by("_note", "_opener").len()


def fs_incomplete(inst: pl.DataFrame) -> int:
    """The file-system instances left incomplete (for want of operation-end events, when the
    trace has none)."""
    return inst.filter(
        (pl.col("actual") == "incomplete")
        & pl.any_horizontal([pl.col("_opener").str.starts_with(p) for p in FS_PREFIXES])).height


def report_broken(diagnostics: Diagnostics, counts: pl.DataFrame, fs_open: int,
                  names: pl.Series) -> None:
    """Count each kind of broken lifecycle (broken_counts, summed over the table) and say which
    events they came from; say so when a source never logs completions at all (e.g.
    Kernel-File without its OperationEnd), counting its incomplete instances (fs_incomplete) as
    `fs_irps_without_operation_end` (the verdict names that cause). `names`: the event names of
    the rows of some instance."""
    counts = counts.group_by("_note", "_opener").agg(pl.col("len").sum())
    for key, (counter_name, text) in _REPORTS.items():
        part = counts.filter(pl.col("_note") == key)
        if part.height == 0:
            continue
        total = int(part["len"].sum())
        diagnostics.count(counter_name, total)
        top = part.select("_opener", "len").sort(["len", "_opener"], descending=[True, False])
        parts = ", ".join(f"{o} {c}" for o, c in top.head(4).iter_rows())
        diagnostics.warn(f"{total} {text}; by first event: {parts}")
    seen = set(names.unique().to_list())
    ends = ("/OpEnd", "/OperationEnd")
    if any(str(n).startswith(FS_PREFIXES) for n in seen) and \
            not any(str(n).endswith(ends) for n in seen):
        diagnostics.warn("the trace holds file-system IRP dispatches but no FileIo/Kernel-File "
                         "operation-end events (the OP_END keyword was off): those IRPs never "
                         "show a completion")
        if fs_open:
            diagnostics.count(NO_OPERATION_END, fs_open)


def lost_counts(lc: pl.DataFrame, lost_windows) -> tuple[int, int, int]:
    """Instances open while events were lost (mark_lost's `_lost_meanwhile`): (how many, of them
    never completed, of them completions without a dispatch)."""
    hit = lc.filter(pl.col("_lost_meanwhile"))
    return hit.height, hit.filter(pl.col("actual") == "incomplete").height, \
        hit.filter(pl.col("_orphan")).height


def report_lost(diagnostics: Diagnostics, hit: int, never: int, orphans: int) -> None:
    """Count and report the instances open while events were lost (lost_counts, summed)."""
    if hit:
        diagnostics.count("irps_open_across_lost_events", hit)
        diagnostics.warn(f"{hit} IRP instance(s) were open while a buffer flagged "
                         f"EVENTS_LOST was written: their lifecycles may be incomplete ({never} "
                         f"never completed, {orphans} completion(s) without a dispatch)")


def mark_lost(lc: pl.DataFrame, lost_windows) -> pl.DataFrame:
    """`_lost_meanwhile` per instance; an incomplete one open while events were lost says so in
    its evidence (its completion may be among the lost events)."""
    lc = lc.with_columns(_open_across_loss(lc, lost_windows))
    return lc.with_columns(
        pl.when(pl.col("_lost_meanwhile") & (pl.col("actual") == "incomplete"))
        .then(pl.col("evidence") + pl.lit("; events were lost while it was open"))
        .otherwise(pl.col("evidence")).alias("evidence"))


def _open_across_loss(lc: pl.DataFrame, lost_windows) -> pl.Series:
    """Per instance: was it open (arrive_ns .. complete_ns, or to the end if never completed)
    while a buffer flagged EVENTS_LOST was being written? Windows are (start_ns, end_ns), None
    for an unknown bound."""
    lo_inf, hi_inf = -(1 << 63), (1 << 63) - 1
    spans = sorted((lo_inf if lo is None else lo, hi_inf if hi is None else hi)
                   for lo, hi in lost_windows)
    merged: list[list[int]] = []
    for lo, hi in spans:                      # disjoint, sorted windows
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    los = np.array([m[0] for m in merged], dtype=np.int64)
    his = np.array([m[1] for m in merged], dtype=np.int64)
    arrive = lc["arrive_ns"].fill_null(lo_inf).to_numpy()
    complete = lc["complete_ns"].fill_null(hi_inf).to_numpy()
    # the first window that ends at or after the arrival overlaps iff it starts by the completion
    k = np.searchsorted(his, arrive, side="left")
    inside = k < len(his)
    hit = np.zeros(len(arrive), dtype=bool)
    hit[inside] = los[k[inside]] <= complete[inside]
    return pl.Series("_lost_meanwhile", hit)
