"""Events -> IRP lifecycles (contract section 4): one row per IRP instance.

An IRP instance is an address plus its dispatch time: lookaside lists hand the same address out
again and again (57 addresses served 1,231 disk I/Os in a real trace), so an instance opens at a
dispatch and closes at the first matching completion in time order, after which the address is
free for the next instance. Everything about one IRP that several sources say (DiskIo Init and
completion, DrvMjFnCall, FileIo, IFR lines, driver instrumentation) merges into one row; each
attribute comes from the first event of the instance that knows it. Identity is the IRP
address (plus time), never the device: `device` ("disk0" from DiskIo, a devobj or driver name from
IFR/instrumentation) is an attribute. `other` rows that name the IRP (IFR "Queuing WDFREQUEST …
on WDFQUEUE …") lend their queue and request to the open instance but never open one. Several
inputs share one timeline by absolute time, so their events simply interleave.

Layers. The file system's IRP and the disk's IRP are different IRPs (etw-formats.md 2.9), and a
file-system IRP whose completion the trace never logs (Kernel-File Create without OpEnd) would
otherwise swallow the disk I/O that later reuses its address. Events of the disk layer
(DiskIo Init/Read/Write/Flush*, Kernel-Disk) and of the file-system layer (FileIo, Kernel-File)
therefore only merge within their layer; evidence that names no layer (DrvMjFnCall/DrvComplReq,
IFR, instrumentation) merges with whatever instance of the address is open.

Broken lifecycles are counted (Diagnostics.count) and reported (Diagnostics.warn), never dropped:
* a dispatch of an address whose instance is open and already has a dispatch of the same name,
  or of the same layer (a second DiskIo Init), re-opens it (DrvMjFnCall excepted: it is logged
  once per driver of the stack; so is a dispatch line naming another device than the
  instance's): the old instance stays `incomplete` ("irp_redispatched");
* a dispatch or completion of one layer while an instance of the other layer is open: the address
  was reused, the open instance's completion is not in the trace ("irp_address_reused");
* a completion with nothing open, that is not a second source's word on the instance just closed
  (DrvComplReq then DiskIo/Read), becomes its own row with arrive_ns = complete_ns
  ("irp_completion_without_dispatch");
* instances still open at the end ("irp_open_at_end").

A message that names no IRP ("Could not create WDFREQUEST" when no dispatch line preceded it) is
tied to the IRP that the same device completed with STATUS_INSUFFICIENT_RESOURCES at that moment
(within TIE_WINDOW_NS, nearest; a message or completion without a device matches any device).
Request-only events (a WDFREQUEST handle, no IRP) take the IRP of the latest earlier event that
named both, else of the next one.

`actual` follows contract section 4, first match wins; `evidence` says which events decided it.
Per-event work is one Python pass over the sorted IRP-bearing events (state per address); all
attribute merging is done by polars group-bys.
"""

from __future__ import annotations

import gc

import numpy as np
import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.schema import (
    EVENT_COLUMNS, IRP_COLUMNS, STATUS_CANCELLED, IRP_EXTENSION_COLUMNS,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE, conform_irps, empty_irps,
    paging_expr,
)

STATUS_FLT_DISALLOW_FAST_IO = 0xC01C0004   # a fast-I/O try, not an IRP (etw-formats.md 2.4)
TIE_WINDOW_NS = 5_000_000      # "at that moment": 5 ms covers IFR text timestamps' coarseness
REPEATABLE_DISPATCH = frozenset({"DiskIo/DrvMjFnCall"})

DISPATCH, COMPLETE, RESERVED, REFUSED, ALLOC, RESOURCES, OTHER = range(7)
KIND_CODES = {"irp_dispatch": DISPATCH, "irp_complete": COMPLETE,
              "reserved_request_used": RESERVED, "fp_policy_refused": REFUSED,
              "request_alloc_failed": ALLOC, "request_resources_failed": RESOURCES,
              "other": OTHER}
ALLOC_KINDS = ("request_alloc_failed", "request_resources_failed")
# `other` rows that mark the driver receiving the IRP (the IFR presentation line, VERBOSE).
DELIVERY_NAMES = ("IFR/Calling driver",)

# event_name prefix -> layer; names with no layer merge with either.
_DISK_PREFIXES = ("DiskIo/", "Kernel-Disk/")
_FS_PREFIXES = ("FileIo/", "Kernel-File/")
_LAYERLESS = ("DiskIo/Drv",)

_NOTE_TEXT = {
    "redispatched": "re-dispatched before a completion was seen",
    "reused": "address reused by the other layer before a completion was seen",
    "open_at_end": "still open at the end of the trace",
}


def _layer_expr() -> pl.Expr:
    name = pl.col("event_name").fill_null("")
    disk = pl.any_horizontal([name.str.starts_with(p) for p in _DISK_PREFIXES])
    fs = pl.any_horizontal([name.str.starts_with(p) for p in _FS_PREFIXES])
    layerless = pl.any_horizontal([name.str.starts_with(p) for p in _LAYERLESS])
    return (pl.when(layerless).then(0).when(disk).then(1).when(fs).then(2).otherwise(0)
            .cast(pl.Int8).alias("_layer"))


def _fill_irp_from_request(ev: pl.DataFrame) -> pl.DataFrame:
    """Request-only rows take the IRP of the nearest earlier (else later) row naming both."""
    need = ev["irp"].is_null() & ev["request"].is_not_null()
    if not need.any():
        return ev
    pairs = (ev.filter(pl.col("irp").is_not_null() & pl.col("request").is_not_null())
             .select("ts_ns", "request", pl.col("irp").alias("_irp_of_request"))
             .sort("ts_ns"))
    if pairs.height == 0:
        return ev
    ev = _by_time(ev)
    for strategy in ("backward", "forward"):
        joined = ev.join_asof(pairs, on="ts_ns", by="request", strategy=strategy,
                              check_sortedness=False)   # both sides sorted by ts_ns above
        ev = joined.with_columns(pl.col("irp").fill_null(pl.col("_irp_of_request"))) \
                   .drop("_irp_of_request")
    return ev


def _assign_instances(ev: pl.DataFrame) -> tuple[list, list, dict]:
    """The one sorted pass over IRP-bearing events (state per address).

    Returns the instance number of every row, whether the row closed its instance (the
    completion that ends it, or an orphan completion), and the notes of broken instances
    (instance -> "redispatched" | "reused" | "open_at_end"). Event names travel as integer
    codes; a per-instance set of names is only built when a second name arrives."""
    # Codes only need to tell names apart: a categorical's physical codes (hashing) instead of a
    # dense rank (a sort of millions of strings).
    coded = ev.select(pl.col("event_name").fill_null("").cast(pl.Categorical).to_physical()
                      .alias("c"),
                      pl.col("event_name").is_in(list(REPEATABLE_DISPATCH)).alias("rep"),
                      (pl.col("device").cast(pl.Categorical).to_physical().cast(pl.Int64) + 1)
                      .fill_null(0).alias("d"))
    codes = coded["c"].to_list()
    devices = coded["d"].to_list()      # 0: no device named
    repeatable = set(coded.filter(pl.col("rep"))["c"].unique().to_list())
    irps = ev["irp"].to_list()
    kinds = ev["_code"].to_list()
    layers = ev["_layer"].to_list()
    n = len(irps)
    inst_of = [0] * n
    closes = [False] * n
    note: dict = {}
    open_: dict = {}     # irp -> [instance, layer, names (code or set), has a layer's dispatch,
    #                            devices its dispatches named (None or a set of codes)]
    closed: dict = {}    # irp -> [instance, layer, completion names (code or set)]
    nxt = 0
    for r in range(n):
        a = irps[r]
        k = kinds[r]
        lay = layers[r]
        nm = codes[r]
        o = open_.get(a)
        if k == OTHER:
            inst_of[r] = o[0] if o is not None else -1
            continue
        if k != COMPLETE:
            if o is not None:
                if lay and o[1] and lay != o[1]:
                    note[o[0]] = "reused"
                elif k == DISPATCH and nm not in repeatable and (
                        (nm in o[2] if type(o[2]) is set else nm == o[2])
                        or (lay and lay == o[1] and o[3])) and not (
                        devices[r] and o[4] and devices[r] not in o[4]):
                    # (the same dispatch line from another device is the IRP going down
                    # the stack, not a re-dispatch)
                    note[o[0]] = "redispatched"
                else:
                    inst_of[r] = o[0]
                    if k == DISPATCH:
                        seen = o[2]
                        if type(seen) is set:
                            seen.add(nm)
                        elif seen != nm:
                            o[2] = {seen, nm}
                        if lay:
                            o[3] = True
                    if devices[r] and k == DISPATCH:
                        o[4] = (o[4] or frozenset()) | {devices[r]}
                    if not o[1]:
                        o[1] = lay
                    continue
            open_[a] = [nxt, lay, nm, bool(lay) and k == DISPATCH,
                        frozenset((devices[r],)) if devices[r] and k == DISPATCH else None]
            closed.pop(a, None)
            inst_of[r] = nxt
            nxt += 1
            continue
        # a completion
        if o is not None:
            if not (lay and o[1] and lay != o[1]):
                inst_of[r] = o[0]
                closes[r] = True
                del open_[a]
                closed[a] = [o[0], lay or o[1], nm]
                continue
            note[o[0]] = "reused"
            del open_[a]
        c = closed.get(a)
        if c is not None and not (lay and c[1] and lay != c[1]):
            seen = c[2]
            if (nm not in seen) if type(seen) is set else (nm != seen):
                inst_of[r] = c[0]       # a second source's word on the instance just closed
                c[2] = (seen | {nm}) if type(seen) is set else {seen, nm}
                continue
        inst_of[r] = nxt                # an orphan completion: its own instance
        closes[r] = True
        closed[a] = [nxt, lay, nm]
        nxt += 1
    for o in open_.values():
        note.setdefault(o[0], "open_at_end")
    return inst_of, closes, note


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


def _report(diagnostics: Diagnostics, inst: pl.DataFrame, names: pl.Series) -> None:
    """Count each kind of broken lifecycle and say which events they came from; say so when a
    source never logs completions at all (e.g. Kernel-File without its OperationEnd).
    `inst` has one row per instance: _note, _opener."""
    broken = inst.filter(pl.col("_note").is_not_null())
    for key, (counter_name, text) in _REPORTS.items():
        part = broken.filter(pl.col("_note") == key)
        if part.height == 0:
            continue
        diagnostics.count(counter_name, part.height)
        top = part.group_by("_opener").len().sort(["len", "_opener"], descending=[True, False])
        parts = ", ".join(f"{o} {c}" for o, c in top.head(4).iter_rows())
        diagnostics.warn(f"{part.height} {text}; by first event: {parts}")
    seen = set(names.unique().to_list())
    ends = ("/OpEnd", "/OperationEnd")
    if any(str(n).startswith(_FS_PREFIXES) for n in seen) and \
            not any(str(n).endswith(ends) for n in seen):
        diagnostics.warn("the trace holds file-system IRP dispatches but no FileIo/Kernel-File "
                         "operation-end events (the OP_END keyword was off): those IRPs never "
                         "show a completion")


def _first(col: str) -> pl.Expr:
    return pl.col(col).drop_nulls().first().alias(col)


def _first_name(code: int | tuple, alias: str) -> pl.Expr:
    codes = (code,) if isinstance(code, int) else code
    return pl.col("event_name").filter(pl.col("_code").is_in(codes)).first().alias(alias)


def _tie_irpless_failures(lc: pl.DataFrame, loose: pl.DataFrame,
                          diagnostics: Diagnostics) -> pl.DataFrame:
    """IRP-less allocation failures -> the IRP the same device completed with
    STATUS_INSUFFICIENT_RESOURCES at that moment. Adds `_tied_name` and `_tied_kind` (the
    message's event kind) to the lifecycles."""
    lc = lc.with_columns(pl.lit(None, dtype=pl.String).alias("_tied_name"),
                         pl.lit(None, dtype=pl.String).alias("_tied_kind"))
    if loose.height == 0:
        return lc
    cand = (lc.filter((pl.col("status") == STATUS_INSUFFICIENT_RESOURCES)
                      & pl.col("complete_ns").is_not_null())
            .select("_inst", pl.col("complete_ns").alias("_t"), pl.col("device").alias("_dev"))
            .sort("_t"))
    msgs = (loose.select(pl.col("ts_ns").alias("_t"), pl.col("device").alias("_dev"),
                         "event_name", "kind")
            .with_row_index("_m").sort("_t"))
    tied = pl.DataFrame(schema={"_m": pl.UInt32, "_inst": pl.Int64})
    if cand.height:
        # Same device first; then messages or completions that name no device match any.
        with_dev = msgs.filter(pl.col("_dev").is_not_null())
        a = with_dev.join_asof(cand.filter(pl.col("_dev").is_not_null()), on="_t", by="_dev",
                               strategy="nearest", tolerance=TIE_WINDOW_NS,
                               check_sortedness=False)   # both sorted by _t above
        a = a.filter(pl.col("_inst").is_not_null()).select("_m", "_inst")
        rest = msgs.join(a, on="_m", how="anti")
        # A message naming a device falls back to completions naming none; one naming no
        # device takes the nearest completion of any device.
        b_dev = rest.filter(pl.col("_dev").is_not_null()).drop("_dev").join_asof(
            cand.filter(pl.col("_dev").is_null()).drop("_dev"), on="_t", strategy="nearest",
            tolerance=TIE_WINDOW_NS)
        b_any = rest.filter(pl.col("_dev").is_null()).drop("_dev").join_asof(
            cand.drop("_dev"), on="_t", strategy="nearest", tolerance=TIE_WINDOW_NS)
        b = pl.concat([b_dev, b_any]).filter(pl.col("_inst").is_not_null()).select("_m", "_inst")
        tied = pl.concat([a, b]).with_columns(pl.col("_m").cast(pl.UInt32),
                                              pl.col("_inst").cast(pl.Int64))
    names = msgs.join(tied, on="_m").group_by("_inst").agg(
        pl.col("event_name").first().alias("_tied_name"),
        pl.col("kind").first().alias("_tied_kind"))
    untied = msgs.height - tied.height
    if untied:
        diagnostics.count("alloc_failure_without_irp", untied)
        diagnostics.warn(f"{untied} allocation-failure message(s) named no IRP and matched no "
                         "completion with STATUS_INSUFFICIENT_RESOURCES on the same device "
                         "within 5 ms; they are not in the IRP table")
    return (lc.drop("_tied_name", "_tied_kind").join(names, on="_inst", how="left"))


def _report_lost(lc: pl.DataFrame, lost_windows, diagnostics: Diagnostics) -> pl.DataFrame:
    """Count and report the instances open while events were lost; an incomplete one says so in
    its evidence (its completion may be among the lost events)."""
    lc = lc.with_columns(_open_across_loss(lc, lost_windows))
    hit = lc.filter(pl.col("_lost_meanwhile"))
    if hit.height:
        never = hit.filter(pl.col("actual") == "incomplete").height
        orphans = hit.filter(pl.col("_orphan")).height
        diagnostics.count("irps_open_across_lost_events", hit.height)
        diagnostics.warn(f"{hit.height} IRP instance(s) were open while a buffer flagged "
                         f"EVENTS_LOST was written: their lifecycles may be incomplete ({never} "
                         f"never completed, {orphans} completion(s) without a dispatch)")
    return lc.with_columns(
        pl.when(pl.col("_lost_meanwhile") & (pl.col("actual") == "incomplete"))
        .then(pl.col("evidence") + pl.lit("; events were lost while it was open"))
        .otherwise(pl.col("evidence")).alias("evidence"))


def _status_hex(frame: pl.DataFrame, col: str) -> pl.Expr:
    # Formatted once per distinct status (a handful), not once per IRP.
    values = frame[col].drop_nulls().unique().to_list()
    return pl.col(col).replace_strict(values, [f"0x{s:08X}" for s in values], default=None,
                                      return_dtype=pl.String)


def _keep(ev: pl.DataFrame, predicate: pl.Expr) -> pl.DataFrame:
    """ev.filter(predicate) without copying a table it keeps whole (the usual case)."""
    mask = ev.select(predicate.fill_null(False)).to_series()
    return ev if mask.all() else ev.filter(mask)


def _by_time(ev: pl.DataFrame) -> pl.DataFrame:
    """`ev` stably sorted by ts_ns (no copy when it is already: readers deliver time order)."""
    ts = ev["ts_ns"]
    return ev if not ts.null_count() and ts.is_sorted() else ev.sort("ts_ns", maintain_order=True)


def _empty_lifecycles() -> pl.DataFrame:
    return empty_irps().with_columns(pl.lit(None, dtype=t).alias(c)
                                     for c, t in IRP_EXTENSION_COLUMNS.items())


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


def build_lifecycles(events: pl.DataFrame, diagnostics: Diagnostics | None = None,
                     lost_windows: list[tuple[int | None, int | None]] | None = None
                     ) -> pl.DataFrame:
    """One row per IRP instance: fpreplay.schema.IRP_COLUMNS, then IRP_EXTENSION_COLUMNS.

    lost_windows: TraceRead.lost_windows, the times around buffers flagged EVENTS_LOST; IRPs
    open across one are counted and reported as possibly incomplete."""
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    cols = ["ts_ns", "kind", "irp", "request", "queue", "device", "major", "minor", "irp_flags",
            "status", "bytes", "event_name"]
    ev = events.select([pl.col(c) if c in events.columns else pl.lit(None).alias(c)
                        for c in cols])
    ev = ev.with_columns([pl.col(c).cast(EVENT_COLUMNS[c], strict=False) for c in cols])
    # A table from another tool may have no event names; the kind then names the evidence.
    ev = ev.with_columns(pl.coalesce("event_name", "kind").alias("event_name"))
    # `other` rows that name an IRP or a request (IFR "Queuing WDFREQUEST … on WDFQUEUE …",
    # "Calling driver EvtIo…") add attributes (queue, request) to an open instance; they never
    # open one.
    ev = _keep(ev, pl.col("ts_ns").is_not_null() & (
        (pl.col("kind").is_in(list(KIND_CODES)) & (pl.col("kind") != "other"))
        | ((pl.col("kind") == "other")
           & (pl.col("irp").is_not_null() | pl.col("request").is_not_null()))))
    ev = ev.with_columns(pl.when(pl.col("irp") != 0).then(pl.col("irp")).alias("irp"))
    if ev.height == 0:
        return _empty_lifecycles()
    ev = _fill_irp_from_request(ev)
    ev = _by_time(ev)
    loose = ev.filter(pl.col("irp").is_null() & pl.col("kind").is_in(ALLOC_KINDS))
    ev = _keep(ev, pl.col("irp").is_not_null()).with_columns(
        pl.col("kind").replace_strict(KIND_CODES, return_dtype=pl.Int8).alias("_code"),
        _layer_expr())
    if ev.height == 0:
        if loose.height:
            _tie_irpless_failures(empty_irps().with_columns(pl.lit(0).alias("_inst")), loose,
                                  diagnostics)
        return _empty_lifecycles()

    gc_was_enabled = gc.isenabled()
    gc.disable()    # per-address state for millions of events, no cycles: the collector only
    try:            # costs time here
        inst_of, closes, notes = _assign_instances(ev)
    finally:
        if gc_was_enabled:
            gc.enable()
    # Rows of no instance (_inst -1) form one group that is dropped after the aggregation:
    # cheaper than a copy of the event rows without them.
    ev = ev.with_columns(pl.Series("_inst", inst_of, dtype=pl.Int64),
                         pl.Series("_closes", closes, dtype=pl.Boolean))
    del inst_of, closes
    is_complete = pl.col("_code") == COMPLETE
    lc = (ev.group_by("_inst", maintain_order=True).agg(
        pl.col("irp").first(),
        *[_first(c) for c in ("device", "queue", "major", "minor", "irp_flags", "bytes")],
        pl.col("ts_ns").filter(~is_complete).min().alias("_arrive"),
        pl.col("ts_ns").filter(pl.col("_closes")).first().alias("complete_ns"),
        pl.col("status").filter(is_complete).drop_nulls().first().alias("status"),
        (pl.col("_code") == RESERVED).any().alias("_reserved"),
        (pl.col("_code") == REFUSED).any().alias("_refused"),
        pl.col("_code").is_in([ALLOC, RESOURCES]).any().alias("_alloc"),
        (pl.col("_code") == ALLOC).any().alias("_request_failed"),
        (pl.col("_code") == RESOURCES).any().alias("_resources_failed"),
        pl.col("ts_ns").filter((pl.col("_code") == RESERVED)
                               | pl.col("event_name").is_in(DELIVERY_NAMES)).min()
        .alias("deliver_ns"),
        pl.col("request").is_not_null().any().alias("_has_request"),
        (pl.col("_code").first() == COMPLETE).alias("_orphan"),
        pl.col("event_name").first().alias("_opener"),
        _first_name(DISPATCH, "_dispatch_name"),
        _first_name(COMPLETE, "_complete_name"),
        _first_name(RESERVED, "_reserved_name"),
        _first_name(REFUSED, "_refused_name"),
        _first_name((ALLOC, RESOURCES), "_alloc_name"),
    ))
    lc = _keep(lc, pl.col("_inst") >= 0)
    note_frame = pl.DataFrame({"_inst": pl.Series(list(notes), dtype=pl.Int64),
                               "_note": pl.Series(list(notes.values()), dtype=pl.String)})
    lc = lc.join(note_frame, on="_inst", how="left")
    _report(diagnostics, lc.select(
        pl.when(pl.col("_orphan")).then(pl.lit("orphan")).otherwise(pl.col("_note"))
        .alias("_note"), "_opener"),
        ev.lazy().filter(pl.col("_inst") >= 0).select(pl.col("event_name").unique())
        .collect()["event_name"])
    lc = lc.with_columns(pl.coalesce("_arrive", "complete_ns").alias("arrive_ns"))
    lc = _tie_irpless_failures(lc, loose, diagnostics)

    status = pl.col("status")
    insufficient = (status == STATUS_INSUFFICIENT_RESOURCES).fill_null(False)
    alloc_by_status = insufficient & ~pl.col("_has_request")
    actual = (pl.when(pl.col("_reserved")).then(pl.lit("reserved"))
              .when(pl.col("_refused")).then(pl.lit("refused"))
              .when(pl.col("_alloc") | pl.col("_tied_name").is_not_null() | alloc_by_status)
              .then(pl.lit("alloc_failed"))
              .when(status == STATUS_CANCELLED).then(pl.lit("cancelled"))
              .when(status == STATUS_INVALID_DEVICE_STATE).then(pl.lit("invalid_state"))
              .when(status >= 0xC0000000).then(pl.lit("failed"))
              .when(pl.col("complete_ns").is_null()).then(pl.lit("incomplete"))
              .otherwise(pl.lit("ok")))
    lc = lc.with_columns(actual.alias("actual"), _status_hex(lc, "status").alias("_status_hex"))
    # Which failure sent the IRP down the framework's reserved path (or failed it). The request
    # object is created first, so a failed creation wins over a failed resources callback
    # (forward-progress.md 4.1: the callback is only called after a successful creation).
    alloc_failure = (
        pl.when(pl.col("_request_failed") | (pl.col("_tied_kind") == "request_alloc_failed"))
        .then(pl.lit("request"))
        .when(pl.col("_resources_failed") | (pl.col("_tied_kind") == "request_resources_failed"))
        .then(pl.lit("resources"))
        .when(alloc_by_status).then(pl.lit("request"))
        .otherwise(pl.lit(None, pl.String)))
    lc = lc.with_columns(alloc_failure.alias("alloc_failure"))
    done = pl.col("_complete_name").fill_null("?")
    came = pl.when(pl.col("_orphan")).then(pl.lit("no dispatch seen")) \
        .otherwise(pl.col("_dispatch_name").fill_null("?"))
    st = pl.col("_status_hex").fill_null("")
    evidence = (
        pl.when(pl.col("actual") == "reserved")
        .then(pl.lit("reserved: ") + pl.col("_reserved_name"))
        .when(pl.col("actual") == "refused").then(pl.lit("refused: ") + pl.col("_refused_name"))
        .when((pl.col("actual") == "alloc_failed") & pl.col("_alloc"))
        .then(pl.lit("alloc_failed: ") + pl.col("_alloc_name"))
        .when((pl.col("actual") == "alloc_failed") & pl.col("_tied_name").is_not_null())
        .then(pl.lit("alloc_failed: ") + pl.col("_tied_name") + pl.lit(", tied by device and "
              "time to the completion with STATUS_INSUFFICIENT_RESOURCES by ") + done)
        .when(pl.col("actual") == "alloc_failed")
        .then(pl.lit("alloc_failed: ") + done + pl.lit(" with STATUS_INSUFFICIENT_RESOURCES, "
              "no request seen"))
        .when(pl.col("actual").is_in(["cancelled", "invalid_state", "failed"]))
        .then(pl.col("actual") + pl.lit(": status ") + st + pl.lit(" from ") + done)
        .when(pl.col("actual") == "incomplete")
        .then(pl.lit("incomplete: ") + came + pl.lit(", ")
              + pl.col("_note").replace_strict(_NOTE_TEXT, default="no completion seen"))
        .otherwise(pl.lit("ok: ") + came + pl.lit(" -> ") + done
                   + pl.when(st != "").then(pl.lit(" ") + st).otherwise(pl.lit("")))
    )
    served = pl.col("actual").is_in(["ok", "reserved", "cancelled", "invalid_state", "failed"]) \
        & ~pl.col("_orphan")
    lc = lc.with_columns(
        evidence.alias("evidence"),
        pl.when(served).then(pl.col("complete_ns") - pl.col("arrive_ns")).otherwise(None)
        .alias("service_ns"),
        paging_expr(),
    )
    if lost_windows:
        lc = _report_lost(lc, lost_windows, diagnostics)
    fast_io = lc["status"] == STATUS_FLT_DISALLOW_FAST_IO
    if fast_io.any():
        n = int(fast_io.sum())
        diagnostics.count("fast_io_attempts", n)
        diagnostics.warn(f"{n} fast-I/O attempt(s) a filter refused (status 0xC01C0004, the I/O "
                         "manager then retries with an IRP) are not IRPs and are not in the table")
        lc = lc.filter(~fast_io.fill_null(False))
    lc = lc.sort(["arrive_ns", "_inst"])
    # The contract's columns, then the extensions (fpreplay.schema.IRP_EXTENSION_COLUMNS).
    return conform_irps(lc.select([c for c in (*IRP_COLUMNS, *IRP_EXTENSION_COLUMNS)
                                   if c in lc.columns]), keep_extra=True)
