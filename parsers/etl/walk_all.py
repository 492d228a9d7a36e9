"""--all: every record becomes a row of its kind's header fields (time, process, thread,
provider, id, opcode, version, header kind, event name), unless a decoder turns it into rows of
its own. The fields are gathered in numpy for the records of many buffers at once (walk.py's
`drain`); names are made once per distinct HookId or (provider, id). Only WPP messages, whose
option fields vary, and the records a decoder wants take a Python step each. The rows are those
headers.HeaderKind.row gives record by record.
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from fpreplay.parsers.etl.headers import (
    BY_MESSAGE, CLASSIC_TYPE_AT, EVENT_PROVIDER, KINDS, message_fields,
)
from fpreplay.parsers.etl.providers import kernel_event
from fpreplay.schema import ALL_RECORD_COLUMNS, EVENT_COLUMNS

_EH_ID_AT, _EH_VERSION_AT, _EH_OPCODE_AT = 40, 42, 45       # EVENT_HEADER descriptor fields
_CLASSIC_VERSION_AT = 6
_GUID = np.arange(EVENT_PROVIDER.start, EVENT_PROVIDER.stop, dtype=np.int64)  # also classic's
# Per TypeMarker: what its kind reads (0 nothing, 1 kernel, 2 PERFINFO, 3 EVENT_HEADER,
# 4 classic, 5 WPP), where its timestamp is (-1: untimed), its name's index in NAMES.
F_NONE, F_KERNEL, F_PERFINFO, F_EVENT, F_CLASSIC, F_MESSAGE = range(6)
_FORM = {"system": F_KERNEL, "compact": F_KERNEL, "perfinfo": F_PERFINFO,
         "event_header": F_EVENT, "event_trace": F_CLASSIC, "instance": F_CLASSIC}
NAMES = sorted({k.name for k in KINDS})
FORM = np.array([F_MESSAGE if k.lookup is BY_MESSAGE else _FORM.get(k.name, F_NONE)
                 for k in KINDS], dtype=np.uint8)
TS_AT = np.array([-1 if k.ts_at is None else k.ts_at for k in KINDS], dtype=np.int64)
KIND_NAME = np.array([NAMES.index(k.name) for k in KINDS], dtype=np.int64)
_TID_AT, _PID_AT = KINDS[0xC000 | 0x14].tid_at, KINDS[0xC000 | 0x14].pid_at
assert all(k.tid_at in (None, _TID_AT) and k.pid_at in (None, _PID_AT) for k in KINDS)


def rows_at(raw: np.ndarray, offs: np.ndarray, width: int) -> np.ndarray:
    """`width` bytes from each offset of `raw` as the rows of a new array, copied through a
    strided view (no index matrix). Offsets too near the end are moved back to fit: only
    records already known to be damaged ask for those, and their rows are not used."""
    n = len(raw)
    if n < width:
        raw, n = np.concatenate([raw, np.zeros(width - n, dtype=np.uint8)]), width
    at = offs.astype(np.int64, copy=False)
    if len(at) and int(at.max()) > n - width:
        at = np.minimum(at, n - width)
    view = np.ndarray((n - width + 1, width), dtype=np.uint8, buffer=raw, strides=(1, 1))
    return view[at]


def gather(raw: np.ndarray, offs: np.ndarray, width: int, dtype: str) -> np.ndarray:
    """The `width`-byte little-endian values at `offs` of `raw`."""
    if not offs.size:
        return np.zeros(0, dtype=dtype)
    return rows_at(raw, offs, width).view(dtype).ravel()


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, each row's index among them) of a 2-D uint8 array: the rows keyed by a
    64-bit mix of their 8-byte words, checked byte for byte against their key's first row (a
    collision falls back to numpy's exact unique of whole rows)."""
    rows = np.ascontiguousarray(rows)
    n, width = rows.shape
    padded = rows if width % 8 == 0 else np.pad(rows, ((0, 0), (0, 8 - width % 8)))
    words = np.ascontiguousarray(padded).view("<u8")
    key = words[:, 0].copy()
    for j in range(1, words.shape[1]):
        key = key * np.uint64(0x9E3779B97F4A7C15) ^ words[:, j]
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    if (rows == rows[first[inv]]).all():
        return rows[first], inv.ravel()
    whole = rows.view(f"V{width}").ravel()
    uniq, inv = np.unique(whole, return_inverse=True)
    return uniq.view(np.uint8).reshape(-1, width), inv.ravel()


def buffer_times(walker, data, recs, end: int):
    """A buffer's record times as --all reads them, at walk time (the merge needs how far each
    CPU has logged): (records kept, stop or None, times with untimed records taking the time
    of the record before them in the buffer, whether that time is known, WPP fields by index,
    newest time). A WPP record too short for its option fields ends the buffer's records as
    a bad record, as the record-by-record walk did."""
    n = len(recs)
    raw = np.frombuffer(data, dtype=np.uint8)
    tm = recs["tm"]
    ts_at = TS_AT[tm]
    timed = ts_at >= 0
    ts = np.zeros(n, dtype=np.int64)
    ts[timed] = gather(raw, recs["off"][timed].astype(np.int64) + ts_at[timed], 8, "<i8")
    wpp, stop = {}, None
    for i in np.flatnonzero(FORM[tm] == F_MESSAGE).tolist():
        off, size = int(recs["off"][i]), int(recs["size"][i])
        try:
            number, _, guid, t, tid, pid, _ = message_fields(data, off, size)
        except ValueError:           # option fields past the record: keep the record
            walker.diag.count("etl_undecodable_records")
            number = guid = t = tid = pid = None
        except struct.error:
            stop = (off, size)
            recs, ts, timed = recs[:i], ts[:i], timed[:i]
            wpp = {k: v for k, v in wpp.items() if k < i}
            break
        wpp[i] = (number, guid, tid, pid)
        if t is not None:
            ts[i], timed[i] = t, True
    last = np.maximum.accumulate(np.where(timed, np.arange(len(recs)), -1)) if len(recs) \
        else np.zeros(0, dtype=np.int64)
    known = last >= 0
    filled = ts[np.maximum(last, 0)] if len(recs) else ts
    newest = int(ts[timed].max()) if timed.any() else None
    return recs, stop, filled, known, wpp, newest


def header_rows(walker, big, recs, offs, keep, seqs, cpus, filled, known, wpp) -> pl.DataFrame:
    """The --all rows of the records where `keep` is set (those no decoder turned into rows).
    Long because each header field is one short gather and a name table per kind."""
    reg = walker.reg
    at = np.flatnonzero(keep)
    recs, offs, filled, known = recs[at], offs[at], filled[at], known[at]
    tm = recs["tm"]
    form = FORM[tm]
    k = len(at)
    pid = np.zeros(k, dtype=np.int64)
    tid = np.zeros(k, dtype=np.int64)
    has_ids = (form == F_KERNEL) | (form == F_EVENT) | (form == F_CLASSIC)
    tid[has_ids] = gather(big, offs[has_ids] + _TID_AT, 4, "<u4")
    pid[has_ids] = gather(big, offs[has_ids] + _PID_AT, 4, "<u4")
    ids_known = has_ids.copy()
    event_id = np.zeros(k, dtype=np.int64)
    opcode = np.zeros(k, dtype=np.int64)
    version = np.zeros(k, dtype=np.int64)
    has_id = form == F_EVENT
    has_op = has_ids | (form == F_PERFINFO)
    names: list = [None]                       # provider and event name strings by index
    index: dict = {None: 0}

    def name(text):
        i = index.get(text)
        if i is None:
            i = index[text] = len(names)
            names.append(text)
        return i

    prov = np.zeros(k, dtype=np.int64)
    ename = np.zeros(k, dtype=np.int64)
    kern = (form == F_KERNEL) | (form == F_PERFINFO)
    if kern.any():
        hooks = recs["w3"][kern].astype(np.int64)
        opcode[kern] = hooks & 0xFF
        version[kern] = recs["w0"][kern] & 0xFF
        uniq, inv = np.unique(hooks, return_inverse=True)
        pairs = [kernel_event(h) for h in uniq.tolist()]
        prov[kern] = np.array([name(p) for p, _ in pairs], dtype=np.int64)[inv]
        ename[kern] = np.array([name(e) for _, e in pairs], dtype=np.int64)[inv]
    for f in (F_EVENT, F_CLASSIC):
        sel = form == f
        if not sel.any():
            continue
        o = offs[sel]
        if f == F_EVENT:
            ev = gather(big, o + _EH_ID_AT, 2, "<u2").astype(np.int64)
            event_id[sel] = ev
            opcode[sel] = big[o + _EH_OPCODE_AT]
            version[sel] = big[o + _EH_VERSION_AT]
        else:
            ev = big[o + CLASSIC_TYPE_AT].astype(np.int64)
            opcode[sel] = ev
            version[sel] = gather(big, o + _CLASSIC_VERSION_AT, 2, "<u2") & 0xFF
        reps, gi = unique_rows(big[o[:, None] + _GUID])
        texts = [reg.guid(g.tobytes()) for g in reps]
        prov[sel] = np.array([name(t) for t in texts], dtype=np.int64)[gi]
        pair = gi.astype(np.int64) << 16 | ev
        up, pi = np.unique(pair, return_inverse=True)
        ename[sel] = np.array([name(f"{texts[p >> 16]}/{p & 0xFFFF}") for p in up.tolist()],
                              dtype=np.int64)[pi]
    event_known = has_id.copy()
    if wpp:
        positions = {int(g): j for j, g in enumerate(at.tolist()) if int(g) in wpp}
        for g, j in positions.items():
            number, guid, t_id, p_id = wpp[g]
            text = reg.guid(guid) if guid else None
            prov[j] = name(text)
            ename[j] = name(f"WPP/{text}/{number}")
            if number is not None:
                event_id[j], event_known[j] = number, True
            if t_id is not None:
                tid[j], ids_known[j] = t_id, True
            if p_id is not None:
                pid[j] = p_id
    pid_known = ids_known.copy()
    if wpp:
        for g, j in positions.items():
            pid_known[j] = wpp[g][3] is not None
    columns = {   # name: (values as the column's numpy type, where known or None: everywhere)
        "_ts_raw": (filled, known), "_seq": (seqs[at], None),
        "cpu": (cpus[at].astype(np.uint16), None),
        "pid": (pid.astype(np.uint32), pid_known), "tid": (tid.astype(np.uint32), ids_known),
        "event_id": (event_id.astype(np.uint16), event_known),
        "opcode": (opcode.astype(np.uint8), has_op), "version": (version.astype(np.uint8), has_op),
    }
    # a column with unknown values: its nulls from a numpy mask, no polars expression
    frame = {n: pl.Series(n, v if m is None or m.all() else np.ma.MaskedArray(v, mask=~m))
             for n, (v, m) in columns.items()}
    frame["provider"] = pl.Series(names, dtype=pl.String).gather(prov)
    frame["header_kind"] = pl.Series(NAMES, dtype=pl.String).gather(KIND_NAME[tm])
    frame["event_name"] = pl.Series(names, dtype=pl.String).gather(ename)
    frame["kind"] = pl.Series(["other"], dtype=pl.String).new_from_index(0, k)
    frame["source"] = pl.Series([walker.source], dtype=pl.String).new_from_index(0, k)
    return pl.DataFrame([frame[c].alias(c) for c in ALL_ORDER])


ALL_ORDER = ("_ts_raw", "_seq", "cpu", "pid", "tid", "provider", "event_id", "opcode", "version",
             "header_kind", "event_name", "kind", "source")
