"""What happened to each IRP instance: `actual` (contract section 4, first match wins), the
`evidence` that decided it, `alloc_failure`, `service_ns` and `paging`.

A message that names no IRP ("Could not create WDFREQUEST" when no dispatch line preceded it) is
tied to the IRP that the same device completed with STATUS_INSUFFICIENT_RESOURCES at that moment
(within TIE_WINDOW_NS, nearest; a message or completion without a device matches any device), of
a major the framework can fail so (fpreplay.schema.ALLOC_FAILURE_MAJORS).

Such a completion with no framework message and no request seen is what a trace cannot decide
(contract section 4): for a major in ALLOC_FAILURE_MAJORS it is taken as a request allocation
failure, marked alloc_failure "inferred", counted and warned; any other major (a FLUSH_BUFFERS)
never meets a request allocation, so it is the driver's own failure (`failed`), counted and warned.
Whether the IRP's queue had a forward-progress policy (then the framework never completes so) is
for the what-if, which knows the driver model.
"""

from __future__ import annotations

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.schema import (
    ALLOC_FAILURE_MAJORS, STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE, nt_error_expr,
    paging_expr,
)
from fpreplay.units import parse_duration_ns

# "At that moment": 5 ms covers IFR text timestamps' coarseness.
TIE_WINDOW_NS = parse_duration_ns("5ms")

_NOTE_TEXT = {
    "redispatched": "re-dispatched before a completion was seen",
    "reused": "address reused by the other layer before a completion was seen",
    "open_at_end": "still open at the end of the trace",
}


def tie_irpless_failures(lc: pl.DataFrame, loose: pl.DataFrame,
                          diagnostics: Diagnostics) -> pl.DataFrame:
    """IRP-less allocation failures -> the IRP the same device completed with
    STATUS_INSUFFICIENT_RESOURCES at that moment. Adds `_tied_name` and `_tied_kind` (the
    message's event kind) to the lifecycles."""
    lc = lc.with_columns(pl.lit(None, dtype=pl.String).alias("_tied_name"),
                         pl.lit(None, dtype=pl.String).alias("_tied_kind"))
    if loose.height == 0:
        return lc
    cand = (lc.filter(tie_candidates())
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


def _status_hex(frame: pl.DataFrame, col: str) -> pl.Expr:
    # Formatted once per distinct status (a handful), not once per IRP.
    values = frame[col].drop_nulls().unique().to_list()
    return pl.col(col).replace_strict(values, [f"0x{s:08X}" for s in values], default=None,
                                      return_dtype=pl.String)


def _may_fail_allocation() -> pl.Expr:
    """The IRP's major can meet a failed request allocation (a major the trace does not tell:
    it may)."""
    return pl.col("major").is_in(ALLOC_FAILURE_MAJORS).fill_null(True)


def _insufficient_unexplained() -> pl.Expr:
    """A completion with STATUS_INSUFFICIENT_RESOURCES, no request seen and no framework message
    naming or tied to the IRP: the trace alone cannot say who failed it."""
    insufficient = (pl.col("status") == STATUS_INSUFFICIENT_RESOURCES).fill_null(False)
    return insufficient & ~pl.col("_has_request") & ~pl.col("_alloc") \
        & pl.col("_tied_name").is_null()


def _alloc_by_status() -> pl.Expr:
    """Such a completion of a major the framework can fail so: taken as a failed request
    allocation (inferred)."""
    return _insufficient_unexplained() & _may_fail_allocation()


def _actual() -> pl.Expr:
    status = pl.col("status")
    return (pl.when(pl.col("_reserved")).then(pl.lit("reserved"))
            .when(pl.col("_refused")).then(pl.lit("refused"))
            .when(pl.col("_alloc") | pl.col("_tied_name").is_not_null() | _alloc_by_status())
            .then(pl.lit("alloc_failed"))
            .when(status == STATUS_CANCELLED).then(pl.lit("cancelled"))
            .when(status == STATUS_INVALID_DEVICE_STATE).then(pl.lit("invalid_state"))
            .when(nt_error_expr(status)).then(pl.lit("failed"))
            .when(pl.col("complete_ns").is_null()).then(pl.lit("incomplete"))
            .otherwise(pl.lit("ok"))).alias("actual")


def _alloc_failure() -> pl.Expr:
    """Which failure sent the IRP down the framework's reserved path (or failed it). The request
    object is created first, so a failed creation wins over a failed resources callback
    (forward-progress.md 4.1: the callback is only called after a successful creation)."""
    return (
        pl.when(pl.col("_request_failed") | (pl.col("_tied_kind") == "request_alloc_failed"))
        .then(pl.lit("request"))
        .when(pl.col("_resources_failed") | (pl.col("_tied_kind") == "request_resources_failed"))
        .then(pl.lit("resources"))
        .when(_alloc_by_status()).then(pl.lit("inferred"))
        .otherwise(pl.lit(None, pl.String))).alias("alloc_failure")


def _evidence() -> pl.Expr:
    done = pl.col("_complete_name").fill_null("?")
    came = pl.when(pl.col("_orphan")).then(pl.lit("no dispatch seen")) \
        .otherwise(pl.col("_dispatch_name").fill_null("?"))
    st = pl.col("_status_hex").fill_null("")
    actual = pl.col("actual")
    return (
        pl.when(actual == "reserved")
        .then(pl.lit("reserved: ") + pl.col("_reserved_name"))
        .when(actual == "refused").then(pl.lit("refused: ") + pl.col("_refused_name"))
        .when((actual == "alloc_failed") & pl.col("_alloc"))
        .then(pl.lit("alloc_failed: ") + pl.col("_alloc_name"))
        .when((actual == "alloc_failed") & pl.col("_tied_name").is_not_null())
        .then(pl.lit("alloc_failed: ") + pl.col("_tied_name") + pl.lit(", tied by device and "
              "time to the completion with STATUS_INSUFFICIENT_RESOURCES by ") + done)
        .when(actual == "alloc_failed")
        .then(pl.lit("alloc_failed: ") + done + pl.lit(" with STATUS_INSUFFICIENT_RESOURCES, "
              "no request seen, no framework message (inferred)"))
        .when(actual.is_in(["cancelled", "invalid_state", "failed"]))
        .then(actual + pl.lit(": status ") + st + pl.lit(" from ") + done)
        .when(actual == "incomplete")
        .then(pl.lit("incomplete: ") + came + pl.lit(", ")
              + pl.col("_note").replace_strict(_NOTE_TEXT, default="no completion seen"))
        .otherwise(pl.lit("ok: ") + came + pl.lit(" -> ") + done
                   + pl.when(st != "").then(pl.lit(" ") + st).otherwise(pl.lit("")))
    ).alias("evidence")


def undecided_counts(lc: pl.DataFrame) -> tuple[int, int]:
    """What the trace could not tell about STATUS_INSUFFICIENT_RESOURCES completions, counted
    over decided rows: (taken as inferred allocation failures, taken as the driver's own)."""
    inferred, not_alloc = lc.select(
        (pl.col("alloc_failure") == "inferred").sum(),
        (_insufficient_unexplained() & ~_may_fail_allocation()).sum()).row(0)
    return int(inferred), int(not_alloc)


def warn_undecided(diagnostics: Diagnostics, inferred: int, not_alloc: int) -> None:
    """Say what undecided_counts counted."""
    if inferred:
        diagnostics.count("alloc_failure_inferred", inferred)
        diagnostics.warn(f"{inferred} IRP(s) completed with STATUS_INSUFFICIENT_RESOURCES and no "
                         "framework message nor sign that the driver received them were taken as "
                         "request allocation failures (alloc_failure 'inferred'): the trace cannot "
                         "tell them from the driver's own failures")
    if not_alloc:
        diagnostics.count("insufficient_resources_not_alloc", not_alloc)
        diagnostics.warn(f"{not_alloc} IRP(s) of majors that never meet a request allocation "
                         "(e.g. FLUSH_BUFFERS) completed with STATUS_INSUFFICIENT_RESOURCES: "
                         "taken as the driver's own failures (failed), not allocation failures")


def tie_candidates() -> pl.Expr:
    """The IRPs an IRP-less allocation-failure message may be tied to."""
    return ((pl.col("status") == STATUS_INSUFFICIENT_RESOURCES)
            & pl.col("complete_ns").is_not_null() & _may_fail_allocation()).fill_null(False)


def decide_outcomes(lc: pl.DataFrame, diagnostics: Diagnostics | None = None) -> pl.DataFrame:
    """`actual`, `alloc_failure`, `evidence`, `service_ns` and `paging` of one row per instance
    (the aggregated flags and names of build.py, the tied messages of tie_irpless_failures);
    what the trace could not decide is counted and warned in `diagnostics`."""
    lc = lc.with_columns(_actual(), _alloc_failure(),
                         _status_hex(lc, "status").alias("_status_hex"))
    if diagnostics is not None:
        warn_undecided(diagnostics, *undecided_counts(lc))
    served = pl.col("actual").is_in(["ok", "reserved", "cancelled", "invalid_state", "failed"]) \
        & ~pl.col("_orphan")
    return lc.with_columns(
        _evidence(),
        pl.when(served).then(pl.col("complete_ns") - pl.col("arrive_ns")).otherwise(None)
        .alias("service_ns"),
        paging_expr(),
    )
