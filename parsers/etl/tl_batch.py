"""TraceLogging events decoded many at a time: numpy over every record of one metadata blob.

The walk hands `Plans.tl_many` the EVENT_HEADER records with extended items that no manifest
decoder takes, gathered from many buffers. Their extended-item chains are walked in numpy (one
step per item depth, not per record); records are grouped by the plan key the per-record path
builds (metadata bytes, traits bytes, provider GUID, header type), and each group's payloads are
read field by field over the whole group: fixed-size runs in one gather, strings by searching a
table of the NUL bytes, each distinct string decoded once. The column conversions are those of
tl_compiled.compile_columns (the per-record twin, itself held to tracelogging.decode).

Anything not plain goes the per-record way, which warns as it always did: a chain with a damaged
or excess item, unreadable metadata or a plan that declines, a payload shorter than its fields.
tests/parsers/test_etl_tl_batch.py holds this path to the per-record one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.decoders.tl_compiled import _number, field_plan
from fpreplay.parsers.etl.headers import EVENT_PAYLOAD_AT, EVENT_PROVIDER, TID_PID_TS_AT
from fpreplay.parsers.etl.walk_all import rows_at, unique_rows
from fpreplay.schema import ALL_RECORD_COLUMNS, EVENT_COLUMNS

EXT_MAX_ITEMS = 4                  # deeper chains go the per-record way
STRING_GATHER_MAX = 256            # longest string deduplicated in numpy; longer ones per record
_NP = {"b": "i1", "B": "u1", "h": "<i2", "H": "<u2", "i": "<i4", "I": "<u4", "q": "<i8",
       "Q": "<u8"}
_HEAD = np.dtype({"names": ["tid", "pid", "_ts_raw"], "formats": ["<u4", "<u4", "<i8"],
                  "offsets": [0, 4, 8], "itemsize": 16})
_DTYPES = {**EVENT_COLUMNS, **ALL_RECORD_COLUMNS, "_ts_raw": pl.Int64, "_seq": pl.Int64}
_EH = L.field_offsets(L.EVENT_HEADER)


def _gather(big: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """`width` bytes from each offset in `at` as rows (walk_all.rows_at)."""
    return rows_at(big, at, width)


def ext_chains(big: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Each record's extended-item chain from `start` (its items' first byte), as the
    per-record path walks it (Plans._tl_plan_of, headers.has_tl_schema): (plain, payload
    offset, metadata offset, metadata length, traits offset, traits length); offsets -1 where
    the item is absent (the last one counts when repeated). Not plain: an item under 8 bytes or
    past the record, or more than EXT_MAX_ITEMS items."""
    n = len(start)
    p = start.copy()
    plain = np.ones(n, dtype=bool)
    live = np.ones(n, dtype=bool)
    meta_at, meta_len = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    traits_at, traits_len = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for _ in range(EXT_MAX_ITEMS):
        live &= p + 8 <= end
        i = np.flatnonzero(live)
        if not i.size:
            return plain, p, meta_at, meta_len, traits_at, traits_len
        q = p[i]
        head = np.ascontiguousarray(_gather(big, q, 8)).view("<u2").astype(np.int64)
        size, ext_type, linkage, data_size = head.T
        bad = (size < 8) | (q + size > end[i])
        plain[i[bad]] = False
        live[i[bad]] = False
        good = ~bad
        length = np.minimum(data_size, size - 8)
        for kind, at, ln in ((L.EXT_TYPE_EVENT_SCHEMA_TL, meta_at, meta_len),
                             (L.EXT_TYPE_PROV_TRAITS, traits_at, traits_len)):
            hit = good & (ext_type == kind)
            at[i[hit]] = q[hit] + 8
            ln[i[hit]] = length[hit]
        p[i[good]] += size[good]
        live[i[good & ((linkage & 1) == 0)]] = False
    plain[live & (p + 8 <= end)] = False
    return plain, p, meta_at, meta_len, traits_at, traits_len


def plan_groups(big, sel, htypes, meta_at, meta_len, traits_at, traits_len):
    """The records `sel` grouped by plan key: yields (key, member indices into `sel`'s arrays)
    where key is the per-record path's (metadata bytes, traits bytes or None, GUID bytes,
    header type)."""
    guid_at = sel + EVENT_PROVIDER.start
    shape = meta_len * 65537 + (traits_len + 1) * (traits_at >= 0)
    shapes, which = np.unique(shape, return_inverse=True)
    for s in range(len(shapes)):
        members = np.flatnonzero(which == s)
        m = members[0]
        ml, tl, has_traits = int(meta_len[m]), int(traits_len[m]), traits_at[m] >= 0
        parts = [_gather(big, guid_at[members], 16), htypes[members, None].astype(np.uint8),
                 _gather(big, meta_at[members], ml)]
        if has_traits:
            parts.append(_gather(big, traits_at[members], tl))
        for row, rows in _distinct(np.hstack(parts)):
            raw = row.tobytes()
            key = (raw[17:17 + ml], raw[17 + ml:] if has_traits else None, raw[:16], raw[16])
            yield key, members[rows]


def _distinct(rows: np.ndarray, tries: int = 4):
    """(row, indices of its copies) per distinct row of a 2-D uint8 array: the first row left
    compared with the rest a few times (a drain's records of one shape are mostly one or two
    events), then unique_rows for whatever is left."""
    left = np.arange(len(rows))
    for _ in range(tries):
        if not left.size:
            return
        here = rows if len(left) == len(rows) else rows[left]
        same = (here == here[0]).all(axis=1)
        yield here[0], left[same]
        left = left[~same]
    if left.size:
        uniq, inv = unique_rows(rows[left])
        for u, row in enumerate(uniq):
            yield row, left[inv == u]


def compile_program(event, pointer_size: int):
    """The steps reading an event's payload over many records, from tl_compiled.field_plan:
    ("fixed", numpy dtype of a run of fixed-size fields, their indices) or ("ansi"/"utf16",
    field index); and its columns (name, field index, conversion, mask). None where
    field_plan declines."""
    plan = field_plan(event, pointer_size)
    if plan is None:
        return None
    fields, columns = plan
    steps, run = [], []
    for i, code in enumerate(fields + ["end"]):
        if code in _NP:
            run.append(i)
            continue
        if run:
            steps.append(("fixed", np.dtype({"names": [f"v{j}" for j in run],
                                             "formats": [_NP[fields[j]] for j in run]}), run))
            run = []
        if code != "end":
            steps.append((code, i))
    return steps, columns


_WINDOWS = (32, 256)               # bytes searched for a terminator in numpy, widening


class _Nuls:
    """Where each string's terminator is: the first NUL byte (ANSI) or NUL code unit at an
    even distance (UTF-16) at or after a position, searched in a window of bytes after each
    string, widening; the few strings longer than the widest window through a table of the
    drain's NUL bytes."""

    def __init__(self, big: np.ndarray):
        self.big = big
        self._padded = None
        self._one = self._pairs = None

    def window_bytes(self, pos, width: int) -> np.ndarray:
        """The drain's bytes, padded with zeros (past every record's end) when a window from
        `pos` would run off them."""
        if len(pos) and int(pos.max()) + width > len(self.big):
            if self._padded is None:
                self._padded = np.concatenate([self.big,
                                               np.zeros(_WINDOWS[-1], dtype=np.uint8)])
            return self._padded
        return self.big

    def find(self, kind: str, pos, end):
        """Each terminator's position (at or past `end`, or huge, where it is not before
        `end`)."""
        q = np.full(len(pos), _NONE, dtype=np.int64)
        todo = np.arange(len(pos))
        for width in _WINDOWS:
            if not todo.size:
                return q
            at = pos[todo]
            win = _gather(self.window_bytes(at, width), at, width) == 0
            if kind == "utf16":
                win = win[:, 0::2] & win[:, 1::2]
            first = win.argmax(axis=1)
            hit = win[np.arange(len(first)), first]
            first *= 2 if kind == "utf16" else 1
            q[todo[hit]] = pos[todo[hit]] + first[hit]
            todo = todo[~hit & (pos[todo] + width < end[todo])]
        if todo.size:
            q[todo] = self.ansi(pos[todo]) if kind == "ansi" else self.utf16(pos[todo])
        return q

    def ansi(self, pos):
        if self._one is None:
            self._one = np.flatnonzero(self.big == 0)
        return _next(self._one, pos)

    def utf16(self, pos):
        if self._pairs is None:
            z = self.big == 0
            pairs = np.flatnonzero(z[:-1] & z[1:])
            self._pairs = (pairs[pairs % 2 == 0], pairs[pairs % 2 == 1])
        q = np.empty_like(pos)
        odd = (pos & 1).astype(bool)
        q[~odd] = _next(self._pairs[0], pos[~odd])
        q[odd] = _next(self._pairs[1], pos[odd])
        return q


_NONE = np.iinfo(np.int64).max // 2


def _next(table: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The first entry of `table` at or after each position (a huge number where none)."""
    k = np.searchsorted(table, pos)
    out = np.full(len(pos), _NONE, dtype=np.int64)
    found = k < len(table)
    out[found] = table[k[found]]
    return out


class Lookup(NamedTuple):
    """A column as its distinct values and each row's index among them (made a Series once,
    when the plan's rows are taken)."""
    values: list
    codes: np.ndarray


def decode_group(program, big, nuls: _Nuls, pos, end):
    """The payloads [pos, end) of one plan's records: (plain mask, {column: numpy array or
    Lookup over every record}) with the values compile_columns gives; not plain: a payload
    shorter than its fields or a string without its terminator (the per-record path reports
    it)."""
    steps, columns = program
    pos = pos.copy()
    plain = np.ones(len(pos), dtype=bool)
    values: dict[int, tuple] = {}
    for step in steps:
        if step[0] == "fixed":
            dtype, fields = step[1], step[2]
            plain &= pos + dtype.itemsize <= end
            rows = np.ascontiguousarray(_gather(big, pos, dtype.itemsize)).view(dtype).ravel()
            for i in fields:
                values[i] = ("int", rows[f"v{i}"])
            pos = pos + dtype.itemsize
        else:
            i = step[1]
            q = nuls.find(step[0], pos, end)
            stop = q + (1 if step[0] == "ansi" else 2)
            plain &= stop <= end
            values[i] = (step[0], pos, np.minimum(q, end))
            pos = stop
    out = {}
    for col, i, how, mask in columns:
        out[col] = _column(values[i], how, mask, big, plain)
    return plain, out


def _column(value, how, mask, big, plain):
    if value[0] == "int":
        v = value[1]
        if how in ("hex", "hexbool"):
            if how == "hexbool":
                v = (v != 0).astype(np.int64)
            uniq, inv = np.unique(v, return_inverse=True)
            return Lookup([f"0x{x:x}" for x in uniq.tolist()], inv.ravel())
        if how == "bool":
            v = (v != 0).astype(np.int64)
        if mask is not None:
            v = v.astype(np.int64) & mask
        return v
    texts, inv = _strings(big, value[0], value[1], value[2], plain)
    if how == "number":
        return Lookup([_number(t, mask) for t in texts], inv)
    return Lookup(texts, inv)


def keep(column, ok: np.ndarray):
    """The rows of a column (numpy array or Lookup) where `ok` is set."""
    return Lookup(column.values, column.codes[ok]) if isinstance(column, Lookup) \
        else column[ok]


def _strings(big, kind, a, b, plain):
    """The distinct strings of spans [a, b) and each span's index among them; spans of records
    not plain read as empty (they are dropped later)."""
    codec = "utf-8" if kind == "ansi" else "utf-16-le"
    length = np.where(plain, b - a, 0)
    width = int(length.max()) if len(length) else 0
    if width > STRING_GATHER_MAX:
        raw = big.tobytes()
        spans = [raw[x:x + n] for x, n in zip(a.tolist(), length.tolist())]
        uniq: dict[bytes, int] = {}
        inv = np.array([uniq.setdefault(s, len(uniq)) for s in spans], dtype=np.int64)
        return [s.decode(codec, errors="replace") for s in uniq], inv
    rows = _gather(big, a, max(width, 1))
    rows[np.arange(rows.shape[1])[None, :] >= length[:, None]] = 0
    key = np.hstack([rows, length.astype("<u2")[:, None].view(np.uint8)])
    uniq_rows, inv = unique_rows(key)
    texts = [r[:-2][:int(r[-2:].view("<u2")[0])].tobytes().decode(codec, errors="replace")
             for r in uniq_rows]
    return texts, inv


def head_columns(big, offs, keys) -> dict[str, np.ndarray]:
    """tid, pid, _ts_raw, _seq, cpu of the records at `offs` (keys: seq << 16 | cpu)."""
    head = np.ascontiguousarray(_gather(big, offs + TID_PID_TS_AT, 16)).view(_HEAD).ravel()
    return {"tid": head["tid"], "pid": head["pid"], "_ts_raw": head["_ts_raw"],
            "_seq": keys >> 16, "cpu": (keys & 0xFFFF).astype(np.uint16)}


def header_columns(big, offs, provider: str, kind) -> dict:
    """--all: the header columns of TraceLogging records of one provider and header kind."""
    same = np.zeros(len(offs), dtype=np.int64)
    return {"provider": Lookup([provider], same),
            "event_id": np.ascontiguousarray(_gather(big, offs + _EH["Id"], 2)).view("<u2")
            .ravel(), "opcode": big[offs + _EH["Opcode"]], "version": big[offs + _EH["Version"]],
            "header_kind": Lookup([kind.name], same)}


def chunk_frame(chunks: list[dict]) -> pl.DataFrame:
    """Rows decoded many at a time (dicts of column -> numpy array or Lookup, the same
    columns in each) as one frame, each column made a Series once and cast to its dtype."""
    series = []
    for name in chunks[0]:
        parts = [c[name] for c in chunks]
        dtype = _DTYPES[name]
        if isinstance(parts[0], Lookup):
            values, codes = [], []
            for part in parts:
                codes.append(part.codes + len(values))
                values += part.values
            series.append(pl.Series(name, values, dtype=dtype, strict=False)
                          .gather(np.concatenate(codes)))
        else:
            series.append(pl.Series(name, np.concatenate(parts)).cast(dtype, strict=False))
    return pl.DataFrame(series)


def payload_start(offs: np.ndarray) -> np.ndarray:
    return offs + EVENT_PAYLOAD_AT
