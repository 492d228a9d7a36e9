"""Damage the buffer stream shows, named instead of silently read (issue 12).

ETW has no checksums, but a trace keeps invariants every writer keeps, and every real trace
under ../shared/traces/real keeps them (checked when this module was written, 1,100 buffers):
  * each buffer of a logger has its own SequenceNumber (but 0: the header buffer's, or a
    writer that numbers none), and no two buffers are byte-identical;
  * a logger's buffers are in the file in the order they were flushed: the buffer header's
    TimeStamp never goes backwards (in ring order for a circular file);
  * an uncompressed buffer's bytes after FilledBytes are fill (all 0x00 or all 0xFF), and its
    records run exactly up to FilledBytes (walk.py checks that part).
A duplicated buffer breaks the first (it is skipped, said so), a shuffled one the second, a
damaged header the third. Each is a warning naming the file and byte offset, summarised with a
count when it recurs (Diagnostics.warn_repeated).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.etl import layouts as L

_HEADER = L.packed(L.WMI_BUFFER_HEADER, last="BufferType")
_FINGERPRINT_BYTES = L.BUFFER_HEADER_SIZE + 1024    # header + the start of the records


class BufferChecks:
    """Per buffer, in the order the reader walks them: `admit` says whether to walk it."""

    def __init__(self, path: Path, diagnostics: Diagnostics):
        self.path = path
        self.diag = diagnostics
        self._fingerprints: dict[bytes, int] = {}       # fingerprint -> byte offset
        self._sequences: dict[tuple[int, int], int] = {}  # (logger, sequence) -> byte offset
        self._flushed: dict[int, tuple[int, int]] = {}  # logger -> (newest TimeStamp, offset)

    def admit(self, offset: int, data: bytes) -> bool:
        """False for a byte-identical repeat of a buffer already walked (skipped, with a
        warning); other broken invariants are warned and the buffer is walked."""
        (_size, _saved, _current, _refs, flushed, sequence, _freq, _cpu_lo, _cpu_hi, logger,
         _state, filled, flag, _btype) = _HEADER.unpack_from(data, 0)
        where = f"byte {offset}"
        fingerprint = hashlib.blake2b(data[:_FINGERPRINT_BYTES], digest_size=16,
                                      person=len(data).to_bytes(8, "little")).digest()
        first = self._fingerprints.setdefault(fingerprint, offset)
        if first != offset:
            self._warn("etl_duplicate_buffers", "duplicate buffer", where,
                       f"buffer repeats the one at byte {first} (sequence number {sequence}, "
                       "same contents): a duplicated buffer; skipped")
            return False
        # (Sequence 0 is the header buffer's, and writers that number no buffer write 0.)
        earlier = self._sequences.setdefault((logger, sequence), offset) if sequence else offset
        if earlier != offset:
            self._warn("etl_repeated_sequences", "sequence repeated", where,
                       f"buffer sequence number {sequence} already seen at byte {earlier} (other "
                       "contents): a damaged or duplicated buffer; read anyway")
        newest = self._flushed.get(logger)
        if newest is not None and flushed < newest[0]:
            self._warn("etl_buffers_out_of_order", "buffer out of order", where,
                       f"buffer flushed before the one at byte {newest[1]} (TimeStamp {flushed} "
                       f"< {newest[0]}): buffers out of order (shuffled or damaged); its events "
                       "are merged by their own times")
        else:
            self._flushed[logger] = (flushed, offset)
        if not flag & L.BUFFER_FLAG_COMPRESSED:
            self._check_fill(offset, data, filled, _saved)
        return True

    def _check_fill(self, offset: int, data: bytes, filled: int, saved: int) -> None:
        """Bytes past an uncompressed buffer's FilledBytes are fill; records there mean the
        header's FilledBytes is damaged (they are not read)."""
        if filled < L.BUFFER_HEADER_SIZE:
            filled = saved                     # as unpack_buffer reads it
        if filled < L.BUFFER_HEADER_SIZE or filled > len(data):
            if data[L.BUFFER_HEADER_SIZE:].strip(b"\0") and data[L.BUFFER_HEADER_SIZE:].strip(
                    b"\xff"):
                self._damaged(offset, f"FilledBytes {filled:#x} outside the buffer's "
                              f"{len(data):#x} bytes")
            return
        tail = data[filled:]
        if tail.strip(b"\xff") and tail.strip(b"\0"):
            self._damaged(offset, f"data after FilledBytes {filled:#x}, which should be fill")

    def _damaged(self, offset: int, what: str) -> None:
        self._warn("etl_damaged_buffer_headers", "damaged buffer header", f"byte {offset}",
                   f"damaged buffer header ({what}); records past it not read")

    def _warn(self, counter: str, kind: str, where: str, message: str) -> None:
        """One kind of damage: counted, and said once per file with its places when it recurs
        ('<file>: <where>: <message>')."""
        self.diag.warn_repeated(f"{self.path}: {kind}", where, f"{self.path}: {where}: {message}")
        self.diag.count(counter)
