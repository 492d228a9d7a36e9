"""The stream of buffers: a trace file (.etl, its .gz body or a .zip's .etl member) read one
buffer at a time, each advanced by its own BufferSize, and each buffer unpacked (LZ77 Xpress
through libfwnt when compressed) into its CPU, flags and event bytes
(etw-formats.md sections 1.2-1.4). Damage ends the stream with a warning naming the byte offset.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from pyfwnt import lzxpress_decompress

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import InputError
from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.formats import zip_member

MAX_BUFFER_SIZE = 64 << 20                         # ETW caps buffers far below this
# The most trace bytes read out of a .gz or .zip: what the event table of a trace that size
# holds stays within a workstation's memory (README: 1 GiB of trace, 3.7 GB for `compare`).
# A compressed input that says, or turns out, to hold more is refused in one line: decompress
# it and give the .etl, whose size the user can see.
MAX_DECOMPRESSED_BYTES = 2 << 30

_BUFFER = L.packed(L.WMI_BUFFER_HEADER, last="BufferType")
_BUFFER_SIZE = L.packed(L.WMI_BUFFER_HEADER, last="BufferSize")


class _Stream:
    """A read-only stream that closes every layer under it (member, archive, file)."""

    def __init__(self, stream, *under, member: str | None = None, unread: list[str] = (),
                 compressed: bool = False):
        self.read = stream.read
        self.compressed = compressed              # a .gz body or a .zip member
        self._layers = (stream, *under)
        self.raw = (under or (stream,))[-1]       # the file itself: its position is progress
        self.member = member                      # a zip's member read ...
        self.unread = list(unread)                # ... and its other .etl members

    def close(self) -> None:
        for layer in self._layers:
            layer.close()


def open_trace_stream(path: Path) -> _Stream:
    """A binary stream of the .etl bytes: the file itself, its gzip body, or a zip's .etl member
    (the one parsers/formats.py sniffs)."""
    f = open(path, "rb")
    magic = f.read(4)
    f.seek(0)
    if magic[:2] == b"\x1f\x8b":
        f.seek(-4, 2)
        claimed = int.from_bytes(f.read(4), "little")      # ISIZE: the size mod 2^32
        f.seek(0)
        if claimed > MAX_DECOMPRESSED_BYTES:
            f.close()
            raise InputError(path, _too_big(f"its gzip trailer says {claimed:,} bytes"), 0)
        return _Stream(gzip.GzipFile(fileobj=f, mode="rb"), f, compressed=True)
    if magic == b"PK\x03\x04":
        try:
            z = zipfile.ZipFile(f)
            member = zip_member(path, z)
            unread = [i.filename for i in z.infolist() if i is not member and not i.is_dir()
                      and i.filename.lower().endswith(".etl")]
            if member.file_size > MAX_DECOMPRESSED_BYTES:
                raise InputError(path, _too_big(f"{member.filename} is {member.file_size:,} "
                                                "bytes"), 0)
            return _Stream(z.open(member), z, f, member=member.filename, unread=unread,
                           compressed=True)
        except (zipfile.BadZipFile, NotImplementedError, OSError) as e:
            f.close()
            raise InputError(path, f"damaged zip archive: {e}", 0) from None
        except InputError:
            f.close()
            raise
    return _Stream(f)


def _too_big(what: str) -> str:
    return (f"compressed trace too large to read: {what}, more than the "
            f"{MAX_DECOMPRESSED_BYTES:,} bytes fpreplay reads out of a .gz or .zip; decompress "
            "it and give the .etl")


def _read_exactly(stream, n: int) -> bytes:
    """Up to n bytes; short only at the end of the stream. Stream damage ends the stream."""
    parts, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


_STREAM_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, ValueError)


class _Damage(Exception):
    """The stream itself is damaged (bad gzip/zip data) at a known decompressed offset."""


def _warn_unread_members(path: Path, stream: _Stream, diagnostics: Diagnostics) -> None:
    if stream.unread:
        others = stream.unread
        diagnostics.warn(f"{path}: the zip holds {len(others) + 1} .etl files; only "
                         f"{stream.member} is read ({', '.join(others[:5])}"
                         f"{', ...' if len(others) > 5 else ''} not: unzip and give each as its "
                         "own input)")


def iter_buffers(path: Path, diagnostics: Diagnostics,
                 progress=None) -> Iterator[tuple[int, int, bytes]]:
    """(file offset, buffer index, buffer bytes) for every buffer, in file order. Offsets are
    in the .etl bytes (inside a .zip/.gz: the decompressed stream); `progress`, if given, is
    called now and then with the bytes of the input file consumed so far.

    Stops with a warning (naming the byte offset) at a buffer that cannot be right: size zero or
    below the header size, larger than any ETW buffer, or cut short by the end of the file.
    """
    stream = open_trace_stream(path)
    _warn_unread_members(path, stream, diagnostics)
    offset = index = 0
    sizes: set[int] = set()        # the data buffers' sizes: one size = fixed-size buffers
    limit = MAX_DECOMPRESSED_BYTES if stream.compressed else None
    stream = _Pushback(stream)
    try:
        while True:
            try:
                head = _read_exactly(stream, L.BUFFER_HEADER_SIZE)
            except _STREAM_ERRORS as e:
                raise _Damage(f"{offset}:{e}") from None
            if len(head) == 0:
                return
            if len(head) < L.BUFFER_HEADER_SIZE:
                diagnostics.warn(f"{path}: byte {offset}: trace cut inside a buffer header "
                                 f"({len(head)} of {L.BUFFER_HEADER_SIZE} bytes); stopped there")
                diagnostics.count("etl_truncated")
                return
            size = _BUFFER_SIZE.unpack_from(head, 0)[0]
            if size < L.BUFFER_HEADER_SIZE + 8 or size > MAX_BUFFER_SIZE:
                fill = b"\xff" if size == 0xFFFFFFFF else b"\0"
                if not head.strip(fill) and index > 0:
                    # Padding after the last buffer, or a zeroed region before more buffers.
                    try:
                        resume = _after_fill(stream, path, offset, fill, sizes, diagnostics)
                    except _STREAM_ERRORS as e:
                        raise _Damage(f"{offset}:{e}") from None
                    if resume is None:
                        return
                    offset, index = resume, index + 1
                    continue
                msg = f"buffer size {size:#x} is impossible"
                if index == 0:
                    raise InputError(path, f"not a readable ETW trace: {msg}", offset)
                diagnostics.warn(f"{path}: byte {offset}: {msg}; stopped reading there")
                diagnostics.count("etl_bad_buffers")
                return
            if limit is not None and offset + size > limit:
                raise InputError(path, _too_big(f"more than {limit:,} bytes"), offset)
            try:
                body = _read_exactly(stream, size - L.BUFFER_HEADER_SIZE)
            except _STREAM_ERRORS as e:
                raise _Damage(f"{offset}:{e}") from None
            data = head + body
            if len(data) < size:
                diagnostics.warn(f"{path}: byte {offset}: trace cut inside a buffer ({len(data)} "
                                 f"of {size} bytes present); read what was there")
                diagnostics.count("etl_truncated")
                yield offset, index, data
                return
            yield offset, index, data
            if index:
                sizes.add(size)
            offset += size
            index += 1
            if progress is not None and index % 16 == 0:
                progress(stream.raw.tell())
    except _Damage as e:
        at, _, why = str(e).partition(":")
        if int(at) == 0 and index == 0:
            raise InputError(path, f"damaged compressed stream: {why}", 0) from None
        diagnostics.warn(f"{path}: byte {at} (decompressed): damaged compressed stream ({why}); "
                         "read what came before")
        diagnostics.count("etl_truncated")
    finally:
        stream.close()


class _Pushback:
    """A stream with bytes put back in front of it (read past a zeroed region)."""

    def __init__(self, stream):
        self.stream, self.raw, self.front = stream, stream.raw, b""

    def read(self, n: int) -> bytes:
        if self.front:
            part, self.front = self.front[:n], self.front[n:]
            return part
        return self.stream.read(n)

    def close(self) -> None:
        self.stream.close()


def _after_fill(stream: _Pushback, path: Path, offset: int, fill: bytes, sizes: set[int],
                diagnostics: Diagnostics) -> int | None:
    """After a buffer header of nothing but fill at `offset`: None if only fill follows to the
    end (padding after the last buffer). Otherwise the region is damage, named in a warning;
    with fixed-size buffers the stream is put at the first buffer boundary whose buffer is not
    all fill (returned), else the rest of the trace is not read (None)."""
    run = L.BUFFER_HEADER_SIZE
    while True:
        try:
            chunk = stream.read(1 << 20)
        except _STREAM_ERRORS as e:
            raise _Damage(f"{offset + run}:{e}") from None
        if not chunk:
            return None                # fill to the end: padding
        rest = chunk.lstrip(fill)
        run += len(chunk) - len(rest)
        if rest:
            break
    data_at = offset + run             # the first byte that is not fill
    if len(sizes) == 1:
        size = next(iter(sizes))
        resume = offset + max(1, run // size) * size
        if resume <= data_at:
            stream.front = fill * (data_at - resume) + rest
        else:                          # the data is inside this buffer: skip to the next
            stream.front = rest[resume - data_at:]
            _read_exactly(stream, resume - data_at - len(rest))
        diagnostics.warn_repeated(
            f"{path}: zeroed region", f"byte {offset}",
            f"{path}: byte {offset}: {resume - offset} bytes of fill ({fill.hex()} bytes) where "
            "buffers should be (a zeroed or overwritten region); read on from byte "
            f"{resume}")
        diagnostics.count("etl_bad_buffers")
        return resume
    diagnostics.warn(f"{path}: byte {offset}: {run} bytes of fill where a buffer should start, "
                     f"then data again at byte {data_at} (a zeroed or overwritten region); the "
                     "rest of the trace is not read")
    diagnostics.count("etl_bad_buffers")
    return None


def unpack_buffer(path: Path, file_offset: int, data: bytes, diagnostics: Diagnostics):
    """(cpu, BufferFlag, event bytes, start, end, base) of one buffer, decompressed if it is;
    None (with a warning) if it cannot be read. `base` + offset = a record's position."""
    (_size, saved, _current, _refs, _flushed, _sequence, _frequency, cpu_lo, cpu_hi, _logger,
     _state, filled, flag, _btype) = _BUFFER.unpack_from(data, 0)
    cpu = ((cpu_hi << 8) | cpu_lo) & 0x7FF if flag & L.BUFFER_FLAG_PROC_INDEX else cpu_lo
    if filled < L.BUFFER_HEADER_SIZE:
        filled = saved
    if not flag & L.BUFFER_FLAG_COMPRESSED:
        if filled > len(data):
            diagnostics.count("etl_short_buffers")
        return cpu, flag, data, L.BUFFER_HEADER_SIZE, min(filled, len(data)), file_offset
    want = filled - L.BUFFER_HEADER_SIZE
    why = None
    if want <= 0 or want > MAX_BUFFER_SIZE:
        why = f"compressed buffer claims {filled:#x} bytes"
    else:
        try:
            events = lzxpress_decompress(data[L.BUFFER_HEADER_SIZE:], want)
        except Exception as e:  # noqa: BLE001 - libfwnt raises IOError/ValueError/...
            why = f"compressed buffer does not decompress ({e})"
    if why is not None:
        diagnostics.warn_repeated(f"{path}: buffer skipped", f"byte {file_offset}",
                                  f"{path}: byte {file_offset}: {why}; buffer skipped")
        diagnostics.count("etl_bad_buffers")
        return None
    if len(events) < want:
        diagnostics.warn_repeated(
            f"{path}: buffer short", f"byte {file_offset}",
            f"{path}: byte {file_offset}: compressed buffer decompressed to {len(events)} of "
            f"{want} bytes; read what was there")
        diagnostics.count("etl_short_buffers")
    return cpu, flag, events, 0, len(events), file_offset + L.BUFFER_HEADER_SIZE
