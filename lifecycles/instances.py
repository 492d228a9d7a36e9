"""Which IRP instance each event belongs to: the one sorted pass over IRP-bearing events.

An IRP instance is an address plus its dispatch time: lookaside lists hand the same address out
again and again (57 addresses served 1,231 disk I/Os in a real trace), so an instance opens at a
dispatch and closes at the first matching completion in time order, after which the address is
free for the next instance. Identity is the IRP address (plus time), never the device.
`other` rows that name the IRP (IFR "Queuing WDFREQUEST … on WDFQUEUE …") lend their queue and
request to the open instance but never open one.

Layers. The file system's IRP and the disk's IRP are different IRPs (etw-formats.md 2.9), and a
file-system IRP whose completion the trace never logs (Kernel-File Create without OpEnd) would
otherwise swallow the disk I/O that later reuses its address. Events of the disk layer
(DiskIo Init/Read/Write/Flush*, Kernel-Disk) and of the file-system layer (FileIo, Kernel-File)
therefore only merge within their layer; evidence that names no layer (DrvMjFnCall/DrvComplReq,
IFR, instrumentation) merges with whatever instance of the address is open.

Broken instances are noted here and counted by broken.py:
* a dispatch of an address whose instance is open and already has a dispatch of the same name,
  or of the same layer (a second DiskIo Init), re-opens it (DrvMjFnCall excepted: it is logged
  once per driver of the stack; so is a dispatch line naming another device than the
  instance's): the old instance stays `incomplete` ("redispatched");
* a dispatch or completion of one layer while an instance of the other layer is open: the address
  was reused, the open instance's completion is not in the trace ("reused");
* a completion with nothing open, that is not a second source's word on the instance just closed
  (DrvComplReq then DiskIo/Read), becomes its own instance (an orphan);
* instances still open at the end ("open_at_end").

A completion joins the instance just closed (a second source's word on it) only within
CLOSED_JOIN_NS of its close: later it is an orphan. So an instance is final (no event can join
it) once its address has a newer instance or that span has passed, and the stream can emit it
(live() says which instances may still change) instead of holding every instance to the end.
"""

from __future__ import annotations

import polars as pl

REPEATABLE_DISPATCH = frozenset({"DiskIo/DrvMjFnCall"})
# How long after its close a completion of another source may still join an instance: sources
# log one completion within microseconds (IFR text is coarser, milliseconds); a second
# completion seconds later is a new I/O whose dispatch the trace missed.
CLOSED_JOIN_NS = 1_000_000_000

DISPATCH, COMPLETE, RESERVED, REFUSED, ALLOC, RESOURCES, OTHER = range(7)
KIND_CODES = {"irp_dispatch": DISPATCH, "irp_complete": COMPLETE,
              "reserved_request_used": RESERVED, "fp_policy_refused": REFUSED,
              "request_alloc_failed": ALLOC, "request_resources_failed": RESOURCES,
              "other": OTHER}

# event_name prefix -> layer; names with no layer merge with either.
_DISK_PREFIXES = ("DiskIo/", "Kernel-Disk/")
FS_PREFIXES = ("FileIo/", "Kernel-File/")
_LAYERLESS = ("DiskIo/Drv",)


def layer_expr() -> pl.Expr:
    """`_layer`: 1 disk, 2 file system, 0 none (merges with either)."""
    name = pl.col("event_name").fill_null("")
    disk = pl.any_horizontal([name.str.starts_with(p) for p in _DISK_PREFIXES])
    fs = pl.any_horizontal([name.str.starts_with(p) for p in FS_PREFIXES])
    layerless = pl.any_horizontal([name.str.starts_with(p) for p in _LAYERLESS])
    return (pl.when(layerless).then(0).when(disk).then(1).when(fs).then(2).otherwise(0)
            .cast(pl.Int8).alias("_layer"))


def _completes_at_same_instant(r: int, ts: list, irps: list, kinds: list, layers: list,
                               layer: int) -> bool:
    """Does another completion of row r's IRP at row r's instant (later rows of the same ts_ns)
    come from a source of `layer` or of no layer? Then row r, of the other layer, is one more
    source's word on the open instance, not a reuse of its address."""
    t, a = ts[r], irps[r]
    for j in range(r + 1, len(ts)):
        if ts[j] != t:
            return False
        if irps[j] == a:
            if kinds[j] == DISPATCH:
                return False
            if kinds[j] == COMPLETE and layers[j] in (0, layer):
                return True
    return False


class InstanceAssigner:
    """The one sorted pass over IRP-bearing events (state per address), fed in time order a
    batch at a time; the state (open and just-closed instances per address, the next instance
    number, name and device codes) carries over, so a split run numbers instances as one run
    over the whole table does. A batch must hold every row of each of its instants (the
    same-instant rules look ahead within one).

    assign(ev) returns, per row, its instance number (-1: none) and whether it closed its
    instance (the completion that ends it, or an orphan completion); finish() the notes of
    broken instances (instance -> "redispatched" | "reused" | "open_at_end"). Event names and
    devices travel as integer codes, and an instance's sets of them as bit masks.

    One IRP's completions at one instant are one completion, whatever their sources, layers and
    order (a writer may log DrvComplReq, DiskIo/Read and FileIo/OpEnd of one IRP at one tick on
    different CPUs): the first closes the instance, the others join it. A completion at another
    instant joins the instance just closed only as a second source's word (a name not seen yet,
    no other layer); an address reused needs a new dispatch, at the same tick or later."""

    def __init__(self) -> None:
        self.open_: dict = {}   # irp -> [instance, layer, names (bit mask of codes), has a
        #                         layer's dispatch, devices its dispatches named (bit mask)]
        self.closed: dict = {}  # irp -> [instance, layer, completion names (bit mask), instant]
        self.note: dict = {}
        self.nxt = 0
        self._codes: dict[str, int] = {}            # event name -> code
        self._device_codes: dict[str, int] = {}     # device -> code (from 1; 0: none)
        self._repeatable: set[int] = set()

    def _coded(self, col: pl.Series, codes: dict, first: int) -> list:
        """`col` as integer codes stable across batches (a dict of the few distinct values)."""
        for v in col.unique().to_list():
            if v is not None and v not in codes:
                codes[v] = len(codes) + first
        return col.replace_strict(codes, default=first - 1, return_dtype=pl.Int64).to_list()

    def _per_row(self, ev: pl.DataFrame) -> tuple[list, list, list, list, list, list]:
        """The pass's inputs as Python lists: ts_ns, irp, kind code, layer, event-name code,
        device code (0: no device named)."""
        names = ev["event_name"].fill_null("")
        codes = self._coded(names, self._codes, 0)
        self._repeatable |= {self._codes[n] for n in REPEATABLE_DISPATCH if n in self._codes}
        devices = self._coded(ev["device"].cast(pl.String), self._device_codes, 1)
        return (ev["ts_ns"].to_list(), ev["irp"].to_list(), ev["_code"].to_list(),
                ev["_layer"].to_list(), codes, devices)

    def finish(self) -> dict:
        """The notes of broken instances, the ones still open noted "open_at_end"."""
        for o in self.open_.values():
            self.note.setdefault(o[0], "open_at_end")
        return self.take_notes()

    def take_notes(self) -> dict:
        """The notes given since the last call (instance -> note): each noted instance has left
        its address, so no later event joins it."""
        note, self.note = self.note, {}
        return note

    def live(self, now: int) -> list[int]:
        """The instances a later event (at `now` or after) may still join: those open, and
        those closed within CLOSED_JOIN_NS of `now` (older closes are forgotten)."""
        closed = self.closed
        for a in [a for a, c in closed.items() if now - c[3] > CLOSED_JOIN_NS]:
            del closed[a]
        return [o[0] for o in self.open_.values()] + [c[0] for c in closed.values()]

    def assign(self, ev: pl.DataFrame) -> tuple[list, list]:
        """Instance and closing flag of every row of `ev` (time order), see the class.

        Long because the loop runs once per event (millions on a big trace) on local names; a
        helper call per event would add its cost to every one. Sets of event names and of
        devices are bit masks (bit `code`): an int's | and >> cost less than a set's."""
        ts, irps, kinds, layers, codes, devices = self._per_row(ev)
        note, open_, closed = self.note, self.open_, self.closed
        repeatable = sum(1 << c for c in self._repeatable)
        n = len(irps)
        inst_of = [0] * n
        closes = [False] * n
        nxt = self.nxt
        for r, (a, k, lay, nm, dev) in enumerate(zip(irps, kinds, layers, codes, devices)):
            o = open_.get(a)
            if k == OTHER:
                inst_of[r] = o[0] if o is not None else -1
                continue
            bit = 1 << nm
            if k != COMPLETE:
                if o is not None:
                    if lay and o[1] and lay != o[1]:
                        note[o[0]] = "reused"
                    elif k == DISPATCH and not repeatable & bit and (
                            o[2] & bit or (lay and lay == o[1] and o[3])) and not (
                            dev and o[4] and not o[4] >> dev & 1):
                        # (the same dispatch line from another device is the IRP going down
                        # the stack, not a re-dispatch)
                        note[o[0]] = "redispatched"
                    else:
                        inst_of[r] = o[0]
                        if k == DISPATCH:
                            o[2] |= bit
                            o[3] = o[3] or bool(lay)
                            if dev:
                                o[4] |= 1 << dev
                        o[1] = o[1] or lay
                        continue
                open_[a] = [nxt, lay, bit, bool(lay) and k == DISPATCH,
                            1 << dev if dev and k == DISPATCH else 0]
                closed.pop(a, None)
                inst_of[r] = nxt
                nxt += 1
                continue
            # a completion
            if o is not None:
                del open_[a]
                if not (lay and o[1] and lay != o[1]) or _completes_at_same_instant(
                        r, ts, irps, kinds, layers, o[1]):
                    inst_of[r] = o[0]
                    closes[r] = True
                    closed[a] = [o[0], o[1] or lay, bit, ts[r]]
                    continue
                note[o[0]] = "reused"
            c = closed.get(a)
            t = ts[r]
            if c is not None and t - c[3] <= CLOSED_JOIN_NS and (t == c[3] or not (
                    (lay and c[1] and lay != c[1]) or c[2] & bit)):
                inst_of[r] = c[0]           # the same instant, or a second source's word
                c[2] |= bit
                continue
            inst_of[r] = nxt                # an orphan completion: its own instance
            closes[r] = True
            closed[a] = [nxt, lay, bit, t]
            nxt += 1
        self.nxt = nxt
        return inst_of, closes
