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


def assign_instances(ev: pl.DataFrame) -> tuple[list, list, dict]:
    """The one sorted pass over IRP-bearing events (state per address).

    Returns the instance number of every row, whether the row closed its instance (the
    completion that ends it, or an orphan completion), and the notes of broken instances
    (instance -> "redispatched" | "reused" | "open_at_end"). Event names travel as integer
    codes; a per-instance set of names is only built when a second name arrives.

    One function of ~90 lines on purpose: the loop runs once per event (millions on a big trace)
    on local names; a helper call per event would add its cost to every one."""
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
