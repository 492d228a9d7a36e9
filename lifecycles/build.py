"""Events -> IRP lifecycles (contract section 4): one row per IRP instance.

The steps, each its own module or function:
1. the IRP-bearing events, typed, in time order; request-only rows take their IRP (here);
2. which instance each event belongs to: one sorted pass, state per address (instances.py);
3. one row per instance: everything several sources say about one IRP (DiskIo Init and
   completion, DrvMjFnCall, FileIo, IFR lines, driver instrumentation) merges by polars group-bys,
   each attribute from the first event of the instance that knows it (here);
4. each instance's row emitted once no later event can change it, in arrival order, into an
   IrpSpool (order.py, spool.py);
5. at the end, what needs every IRP (finish.py): one device, one name (devices.py); IRP-less
   allocation failures tied (outcome.py); broken lifecycles and lost events counted and
   reported, never dropped (broken.py); applied as the spool is read back, with what happened:
   `actual`, `evidence`, `alloc_failure`, service time (outcome.py).

Several inputs share one timeline by absolute time, so their events simply interleave. Request-only
events (a WDFREQUEST handle, no IRP) take the IRP of the latest earlier event that named both, else
of the next one.

Streamed: LifecycleStream takes the reader's time-ordered batches and keeps, between batches,
only the state of the addresses (instances.py), the partial rows of the instances a later event
may still change (open, or closed within instances.CLOSED_JOIN_NS: aggregate.py), the rows
waiting for an earlier-arriving instance to settle (order.py: in memory, then on disk), the
latest IRP of each request, and the events not yet processed: those of the batch's last instant
(the same-instant rules look ahead within an instant) and, bounded, those from a request-only
event whose IRP no earlier event gave. Finished rows go to the spool's files. So memory follows
the IRPs open at once, not the trace's length. build_lifecycles(events) is the stream fed one
batch, read back whole.
"""

from __future__ import annotations

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles.aggregate import DeviceKinds, merge_partials, partial_rows
from fpreplay.lifecycles.finish import Finisher, empty_lifecycles
from fpreplay.lifecycles.instances import KIND_CODES, InstanceAssigner, layer_expr
from fpreplay.lifecycles.order import ArrivalOrder
from fpreplay.lifecycles.spool import IrpSpool
from fpreplay.perf import cyclic_gc_paused
from fpreplay.schema import EVENT_COLUMNS

_EMPTY_SETTLED = pl.DataFrame()
ALLOC_KINDS = ("request_alloc_failed", "request_resources_failed")
_EVENT_COLUMNS = ("ts_ns", "kind", "irp", "request", "queue", "device", "major", "minor",
                  "irp_flags", "status", "bytes", "file_object", "event_name")
# Events held back waiting for a request-only event's IRP (named by a later event) at most; past
# it the request-only event goes without (the whole-table build would look further ahead).
HOLD_MAX_ROWS = 1_000_000


def _irp_events(events: pl.DataFrame) -> pl.DataFrame:
    """The events that can say something about an IRP, typed, with an event name; `_paired`:
    the event names both an IRP and a request (request-only events take their IRP from those)."""
    ev = events.select([pl.col(c) if c in events.columns else pl.lit(None).alias(c)
                        for c in _EVENT_COLUMNS])
    ev = ev.with_columns([pl.col(c).cast(EVENT_COLUMNS[c], strict=False) for c in _EVENT_COLUMNS])
    # A table from another tool may have no event names; the kind then names the evidence.
    ev = ev.with_columns(pl.coalesce("event_name", "kind").alias("event_name"))
    # `other` rows that name an IRP or a request (IFR "Queuing WDFREQUEST … on WDFQUEUE …",
    # "Calling driver EvtIo…") add attributes (queue, request) to an open instance; they never
    # open one.
    ev = _keep(ev, pl.col("ts_ns").is_not_null() & (
        (pl.col("kind").is_in(list(KIND_CODES)) & (pl.col("kind") != "other"))
        | ((pl.col("kind") == "other")
           & (pl.col("irp").is_not_null() | pl.col("request").is_not_null()))))
    ev = ev.with_columns(pl.when(pl.col(c) != 0).then(pl.col(c)).alias(c)
                         for c in ("irp", "file_object"))
    return ev.with_columns((pl.col("irp").is_not_null() & pl.col("request").is_not_null())
                           .alias("_paired"))


def _fill_irp_from_request(ev: pl.DataFrame, known: pl.DataFrame | None) -> pl.DataFrame:
    """Request-only rows take the IRP of the nearest earlier (else later) row naming both;
    `known`: the latest such rows of earlier batches (ts_ns, request, _irp_of_request)."""
    need = ev["irp"].is_null() & ev["request"].is_not_null()
    if not need.any():
        return ev
    pairs = ev.filter(pl.col("_paired")).select("ts_ns", "request",
                                                 pl.col("irp").alias("_irp_of_request"))
    if known is not None:
        pairs = pl.concat([known, pairs])
    if pairs.height == 0:
        return ev
    pairs = _by_time(pairs)
    ev = _by_time(ev)
    for strategy in ("backward", "forward"):
        joined = ev.join_asof(pairs, on="ts_ns", by="request", strategy=strategy,
                              check_sortedness=False)   # both sides sorted by ts_ns above
        ev = joined.with_columns(pl.col("irp").fill_null(pl.col("_irp_of_request"))) \
                   .drop("_irp_of_request")
    return ev


def _keep(ev: pl.DataFrame, predicate: pl.Expr) -> pl.DataFrame:
    """ev.filter(predicate) without copying a table it keeps whole (the usual case)."""
    mask = ev.select(predicate.fill_null(False)).to_series()
    return ev if mask.all() else ev.filter(mask)


def _by_time(ev: pl.DataFrame) -> pl.DataFrame:
    """`ev` stably sorted by ts_ns (no copy when it is already: readers deliver time order)."""
    ts = ev["ts_ns"]
    return ev if not ts.null_count() and ts.is_sorted() else ev.sort("ts_ns", maintain_order=True)


class LifecycleStream:
    """Lifecycles built from event batches in time order (see the module's docstring):
    feed(batch) for each, then finish(lost_windows) for the IrpSpool holding the table
    build_lifecycles returns. Nothing is reported before finish, so the warnings come out as one
    build's."""

    def __init__(self, diagnostics: Diagnostics | None = None) -> None:
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self._assigner = InstanceAssigner()
        self._kinds = DeviceKinds()
        self.spool = IrpSpool()
        self._order = ArrivalOrder(self.spool)
        self._finisher = Finisher()
        self._pending: pl.DataFrame | None = None   # rows of instances a later event may change
        self._loose: list[pl.DataFrame] = []
        self._names: set[str] = set()     # event names of the rows of some instance
        self._pairs: pl.DataFrame | None = None
        self._carry: pl.DataFrame | None = None
        self._seen_irp_events = False

    def feed(self, events: pl.DataFrame, last: bool = False) -> None:
        """One batch; `last`: no batch follows, so nothing waits for one (a whole table)."""
        ev = _irp_events(events)
        if ev.height == 0:
            return
        self._seen_irp_events = True
        if self._carry is not None:
            ev = pl.concat([self._carry, ev], how="vertical_relaxed")
            self._carry = None
        self._process(_by_time(ev), final=last)

    def _process(self, ev: pl.DataFrame, final: bool) -> None:
        ev = _fill_irp_from_request(ev, self._pairs)
        if not final:
            ev = self._hold_back(ev)
        if ev.height == 0:
            return
        self._remember_pairs(ev)
        loose = ev.filter(pl.col("irp").is_null() & pl.col("kind").is_in(ALLOC_KINDS))
        if loose.height:
            self._loose.append(loose)
        ev = _keep(ev, pl.col("irp").is_not_null())
        if ev.height == 0:
            return
        ev = ev.with_columns(
            pl.col("kind").replace_strict(KIND_CODES, return_dtype=pl.Int8).alias("_code"),
            layer_expr())
        with cyclic_gc_paused():
            inst_of, closes = self._assigner.assign(ev)
        ev = ev.with_columns(pl.Series("_inst", inst_of, dtype=pl.Int64),
                             pl.Series("_closes", closes, dtype=pl.Boolean))
        del inst_of, closes
        part = partial_rows(ev, self._kinds)
        self._names.update(ev.filter(pl.col("_inst") >= 0)["event_name"].unique().to_list())
        if part.height:
            self._pending = merge_partials(
                [part] if self._pending is None else [self._pending, part])
        # Every event still to come is at or after the first one held back (else the last).
        now = self._carry["ts_ns"][0] if self._carry is not None else ev["ts_ns"][-1]
        self._settle(self._assigner.live(now), self._assigner.take_notes(), now)

    def _settle(self, live: list[int] | None, notes: dict, now: int | None) -> None:
        """Emit the pending rows no later event can change (all with live None)."""
        pending = self._pending
        if pending is None:
            self._order.add(_EMPTY_SETTLED, None if now is None else now)
            return
        if live is None:
            settled, self._pending = pending, None
        else:
            alive = pending["_inst"].is_in(pl.Series(live, dtype=pl.Int64).implode())
            settled = pending.filter(~alive)
            self._pending = pending.filter(alive) if not alive.all() else pending
            if not alive.any():
                self._pending = None
        if settled.height:
            note = pl.DataFrame({"_inst": pl.Series(list(notes), dtype=pl.Int64),
                                 "_note": pl.Series(list(notes.values()), dtype=pl.String)})
            settled = settled.join(note, on="_inst", how="left", maintain_order="left") \
                .with_columns(pl.coalesce("_arrive", "complete_ns").alias("arrive_ns"))
            self._finisher.add(settled, now, self._loose)
        watermark = None
        if now is not None:
            watermark = now
            if self._pending is not None:
                earliest = self._pending.select(pl.coalesce("_arrive", "complete_ns").min()).item()
                watermark = min(watermark, earliest)
        self._order.add(settled, watermark)

    def _hold_back(self, ev: pl.DataFrame) -> pl.DataFrame:
        """The rows to process now; the others wait for the next batch: the last instant's
        (more of it may come), and from a request-only row still without an IRP on (a later
        event may name it), unless that holds more than HOLD_MAX_ROWS."""
        ts = ev["ts_ns"]
        cut = ts.search_sorted(ts[-1], "left")
        waiting = (ev["irp"].is_null() & ev["request"].is_not_null()).arg_true()
        # Only rows within the last HOLD_MAX_ROWS wait: one request that never gets an IRP must
        # not release the rows after it that still may.
        waiting = waiting.filter(waiting >= max(0, ev.height - HOLD_MAX_ROWS))
        if waiting.len():
            cut = min(cut, ts.search_sorted(ts[waiting[0]], "left"))
        self._carry = ev.slice(cut) if cut < ev.height else None
        return ev.head(cut)

    def _remember_pairs(self, ev: pl.DataFrame) -> None:
        """Keep, per request, the rows naming it with an IRP at its latest instant."""
        pairs = ev.filter(pl.col("_paired")).select("ts_ns", "request",
                                                     pl.col("irp").alias("_irp_of_request"))
        if pairs.height == 0:
            return
        if self._pairs is not None:
            pairs = pl.concat([self._pairs, pairs])
        self._pairs = pairs.filter(pl.col("ts_ns") == pl.col("ts_ns").max().over("request"))

    def finish(self, lost_windows: list[tuple[int | None, int | None]] | None = None
               ) -> IrpSpool:
        """The lifecycle table (see build_lifecycles) in an IrpSpool; broken lifecycles
        reported."""
        if self._carry is not None:
            carry, self._carry = self._carry, None
            self._process(carry, final=True)
        if not self._seen_irp_events:
            self.spool.finish(0, {}, empty_lifecycles())
            return self.spool
        self._settle(None, self._assigner.finish(), None)
        loose = pl.concat(self._loose) if self._loose else _irp_events(pl.DataFrame())
        self._finisher.finish(self.spool, loose, pl.Series(sorted(self._names), dtype=pl.String),
                              lost_windows, self.diagnostics)
        return self.spool


def read_lifecycles(stream) -> tuple:
    """Lifecycles from a reader's stream of time-ordered batches (fpreplay.parsers.InputStream)
    without holding its event table: (TraceRead whose `events` are only the side events the
    analyses read besides lifecycles (incidents.side_events), lifecycle table)."""
    read, spool = read_lifecycles_spooled(stream)
    with spool:
        return read, spool.collect()


def read_lifecycles_spooled(stream) -> tuple:
    """read_lifecycles with the lifecycle table in an IrpSpool (spool.py): (TraceRead,
    IrpSpool), the spool read back in arrival order a chunk at a time; close it when done."""
    from fpreplay.lifecycles.incidents import side_events

    build = LifecycleStream(stream.diagnostics)
    side = []
    for batch in stream:
        build.feed(batch)
        side.append(side_events(batch))
    read = stream.result(kept=side)
    return read, build.finish(read.lost_windows)


def build_lifecycles(events: pl.DataFrame, diagnostics: Diagnostics | None = None,
                     lost_windows: list[tuple[int | None, int | None]] | None = None
                     ) -> pl.DataFrame:
    """One row per IRP instance: fpreplay.schema.IRP_COLUMNS, then IRP_EXTENSION_COLUMNS.

    lost_windows: TraceRead.lost_windows, the times around buffers flagged EVENTS_LOST; IRPs
    open across one are counted and reported as possibly incomplete."""
    stream = LifecycleStream(diagnostics)
    stream.feed(events, last=True)
    with stream.finish(lost_windows) as spool:
        return spool.collect()
