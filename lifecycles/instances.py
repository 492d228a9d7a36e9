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
"""

from __future__ import annotations

import polars as pl

REPEATABLE_DISPATCH = frozenset({"DiskIo/DrvMjFnCall"})

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


def _names_with(names, code):
    """A per-instance set of event-name codes, kept as a bare code until a second one arrives."""
    if type(names) is set:
        names.add(code)
        return names
    return names if names == code else {names, code}


def _has_name(names, code) -> bool:
    return code in names if type(names) is set else code == names


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


def _per_row(ev: pl.DataFrame) -> tuple[list, list, list, list, list, list, set]:
    """The pass's inputs as Python lists: ts_ns, irp, kind code, layer, event-name code, device
    code (0: no device named), and the codes of REPEATABLE_DISPATCH names."""
    # Codes only need to tell names apart: a categorical's physical codes (hashing) instead of a
    # dense rank (a sort of millions of strings).
    coded = ev.select(pl.col("event_name").fill_null("").cast(pl.Categorical).to_physical()
                      .alias("c"),
                      pl.col("event_name").is_in(list(REPEATABLE_DISPATCH)).alias("rep"),
                      (pl.col("device").cast(pl.Categorical).to_physical().cast(pl.Int64) + 1)
                      .fill_null(0).alias("d"))
    repeatable = set(coded.filter(pl.col("rep"))["c"].unique().to_list())
    return (ev["ts_ns"].to_list(), ev["irp"].to_list(), ev["_code"].to_list(),
            ev["_layer"].to_list(), coded["c"].to_list(), coded["d"].to_list(), repeatable)


def assign_instances(ev: pl.DataFrame) -> tuple[list, list, dict]:
    """The one sorted pass over IRP-bearing events (state per address).

    Returns the instance number of every row, whether the row closed its instance (the
    completion that ends it, or an orphan completion), and the notes of broken instances
    (instance -> "redispatched" | "reused" | "open_at_end"). Event names travel as integer
    codes; a per-instance set of names is only built when a second name arrives.

    One IRP's completions at one instant are one completion, whatever their sources, layers and
    order (a writer may log DrvComplReq, DiskIo/Read and FileIo/OpEnd of one IRP at one tick on
    different CPUs): the first closes the instance, the others join it. A completion at another
    instant joins the instance just closed only as a second source's word (a name not seen yet,
    no other layer); an address reused needs a new dispatch, at the same tick or later.

    Long because the loop runs once per event (millions on a big trace) on local names; a helper
    call per event would add its cost to every one."""
    ts, irps, kinds, layers, codes, devices, repeatable = _per_row(ev)
    n = len(irps)
    inst_of = [0] * n
    closes = [False] * n
    note: dict = {}
    open_: dict = {}     # irp -> [instance, layer, names (code or set), has a layer's dispatch,
    #                            devices its dispatches named (None or a set of codes)]
    closed: dict = {}    # irp -> [instance, layer, completion names (code or set), its instant]
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
                        _has_name(o[2], nm) or (lay and lay == o[1] and o[3])) and not (
                        devices[r] and o[4] and devices[r] not in o[4]):
                    # (the same dispatch line from another device is the IRP going down
                    # the stack, not a re-dispatch)
                    note[o[0]] = "redispatched"
                else:
                    inst_of[r] = o[0]
                    if k == DISPATCH:
                        o[2] = _names_with(o[2], nm)
                        o[3] = o[3] or bool(lay)
                        if devices[r]:
                            o[4] = (o[4] or frozenset()) | {devices[r]}
                    o[1] = o[1] or lay
                    continue
            open_[a] = [nxt, lay, nm, bool(lay) and k == DISPATCH,
                        frozenset((devices[r],)) if devices[r] and k == DISPATCH else None]
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
                closed[a] = [o[0], o[1] or lay, nm, ts[r]]
                continue
            note[o[0]] = "reused"
        c = closed.get(a)
        if c is not None and (ts[r] == c[3] or not (
                (lay and c[1] and lay != c[1]) or _has_name(c[2], nm))):
            inst_of[r] = c[0]           # the same instant, or a second source's word
            c[2] = _names_with(c[2], nm)
            continue
        inst_of[r] = nxt                # an orphan completion: its own instance
        closes[r] = True
        closed[a] = [nxt, lay, nm, ts[r]]
        nxt += 1
    for o in open_.values():
        note.setdefault(o[0], "open_at_end")
    return inst_of, closes, note
