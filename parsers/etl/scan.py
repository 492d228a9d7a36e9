"""The structural walk of one buffer: where each record starts, how long it is, and its prefix
words, as one numpy record array; the walk (walk.py) classifies and decodes from those arrays.

Two implementations give the same arrays: `_walkc.scan` in C (built by setup.py when a compiler
is there; about 50x faster) and `scan_python` below. The C one is used when it imports, unless
FPREPLAY_PURE_PYTHON_WALK=1 is set; tests/parsers/test_etl_scan.py holds both to the same
tables.

The rules (etw-formats.md section 1.8): per record an 8-byte prefix of four u16 words; word 1 is
the TypeMarker, whose HeaderKind (headers.py) says where the size is (word 0, word 2 for kernel
headers, or, with no ETW marker, word 0 | TypeMarker << 16 with zero or 0xFF fill ending the
data) and the smallest size a valid record has. Records are 8-byte aligned. The walk stops at
the end, at fill, or at a record whose size is below that smallest size or runs past the end.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from fpreplay.parsers.etl.headers import BY_HOOK, NO_MARKER, WALK

RECORD = np.dtype([("off", "<u4"), ("size", "<u4"), ("tm", "<u2"), ("w3", "<u2"),
                   ("w0", "<u2"), ("w2", "<u2")])
STOP_END, STOP_FILL, STOP_BAD = 0, 1, 2
_SIZE_IN_WORD0, _SIZE_IN_WORD2, _SIZE_RAW = 0, 1, 2


def _table() -> bytes:
    """65536 u32: size mode << 16 | smallest size, per TypeMarker (from headers.WALK)."""
    entries = np.zeros(65536, dtype="<u4")
    for tm, (_kind, smallest, lookup) in enumerate(WALK):
        mode = _SIZE_IN_WORD2 if lookup is BY_HOOK else _SIZE_RAW if lookup is NO_MARKER \
            else _SIZE_IN_WORD0
        entries[tm] = mode << 16 | smallest
    return entries.tobytes()


TABLE = _table()
_MODES: list = []             # the table as (mode, smallest) pairs, made at the first Python walk
_PREFIX = struct.Struct("<HHHH").unpack_from


def scan_python(data, start: int, end: int, table: bytes = TABLE):
    """The pure-Python walk: what `_walkc.scan` returns, byte for byte."""
    if table is TABLE and not _MODES:
        _MODES.extend((e >> 16, e & 0xFFFF) for e in np.frombuffer(TABLE, dtype="<u4").tolist())
    modes = _MODES if table is TABLE else \
        [(e >> 16, e & 0xFFFF) for e in np.frombuffer(table, dtype="<u4").tolist()]
    end = min(end, len(data))
    prefix = _PREFIX
    offs, sizes, tms, w3s, w0s, w2s = [], [], [], [], [], []
    off, stop, stop_at, stop_size = max(start, 0), STOP_END, 0, 0
    while off + 8 <= end:
        w0, tm, w2, w3 = prefix(data, off)
        mode, smallest = modes[tm]
        if mode == _SIZE_IN_WORD2:
            size = w2
        elif mode == _SIZE_RAW:
            m = w0 | tm << 16
            if m == 0xFFFFFFFF or m == 0:
                stop, stop_at = STOP_FILL, off
                break
            size = m if tm & 0x8000 == 0 else 0
        else:
            size = w0
        if size < smallest or off + size > end:
            stop, stop_at, stop_size = STOP_BAD, off, size
            break
        offs.append(off)
        sizes.append(size)
        tms.append(tm)
        w3s.append(w3)
        w0s.append(w0)
        w2s.append(w2)
        off += (size + 7) & ~7
    recs = np.empty(len(offs), dtype=RECORD)
    for name, values in (("off", offs), ("size", sizes), ("tm", tms), ("w3", w3s),
                         ("w0", w0s), ("w2", w2s)):
        recs[name] = values
    return recs.tobytes(), stop, stop_at, stop_size


def _compiled():
    if os.environ.get("FPREPLAY_PURE_PYTHON_WALK", "") not in ("", "0"):
        return None
    try:
        from fpreplay.parsers.etl import _walkc
    except ImportError:
        return None
    return _walkc.scan


_C_SCAN = _compiled()
COMPILED = _C_SCAN is not None           # which walk this process uses (bench and tests say)


def scan(data, start: int, end: int):
    """(records as a RECORD array, stop, stop offset, stop size) of one buffer."""
    raw, stop, at, size = (_C_SCAN or scan_python)(data, start, end, TABLE)
    return np.frombuffer(raw, dtype=RECORD), stop, at, size
