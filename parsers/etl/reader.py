"""The .etl reader: buffers -> records -> decoded event rows, merged into time order, streamed.

How it stays fast (etw-formats.md sections 1 and 4):
  * buffers are read one at a time from a stream (.etl, .etl.zip, .etl.gz) and walked by their own
    BufferSize; compressed buffers go through libfwnt's LZ77 Xpress;
  * per record the hot loop reads one 8-byte prefix (size + header type + HookId), counts it and
    looks the raw key up in a snapshot of the decoder registry; only hits are decoded;
  * IRP-bearing kernel events are decoded a flush at a time: the walk copies their fixed bytes,
    numpy reads them as one record array, polars maps the fields (a decoder's `columns`);
    TraceLogging events go through a plan compiled once per metadata blob; everything else
    becomes an EtlRecord for its decoder;
  * per-CPU buffers arrive out of time order, so rows wait in a bounded pending table and are
    released once every recently active CPU has logged past them (a watermark merge).
"""

from __future__ import annotations

import gzip
import struct
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
from pyfwnt import lzxpress_decompress

from fpreplay.diagnostics import Diagnostics
from fpreplay.errors import InputError
from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.record import EtlRecord
from fpreplay.parsers.formats import zip_member
from fpreplay.schema import ALL_RECORD_COLUMNS, EVENT_COLUMNS

FILETIME_UNIX_EPOCH = 116_444_736_000_000_000      # 100-ns ticks from 1601-01-01 to 1970-01-01
MAX_BUFFER_SIZE = 64 << 20                         # ETW caps buffers far below this
PENDING_FLUSH_ROWS = 200_000                       # rows collected before trying to release some
PENDING_MAX_ROWS = 500_000                         # bound on rows waiting for a slow CPU
MAX_CLOCK_HZ = 1 << 40                             # above any QPC or CPU clock
MAX_SPAN_S = 100 * 365 * 86_400                    # times further than this are damage
MAX_SPAN_NS = MAX_SPAN_S * 1_500_000_000          # start_ns + span must fit in int64

# Hot-path struct layouts; tests/parsers/test_etl_layouts.py checks each offset against layouts.py.
_BUFFER = struct.Struct("<II32xBBHIIHH16x")       # size, saved, cpu, align, logger, state, filled,
_PREFIX = struct.Struct("<HBBHH")                 # flag, type  /  w0, type, marker, w2, w3
_U32 = struct.Struct("<I")
_SYSTEM = struct.Struct("<HBBHHIIq")              # version, type, marker, size, hook, tid, pid, ts
_PERFINFO = struct.Struct("<HBBHHq")
_CLASSIC = struct.Struct("<HBBBBHIIq16s")         # size, type, marker, Type, level, version, ...
_EVENT_HEADER = struct.Struct("<HBBHHIIq16sHBBBBHQ")
_EXT_ITEM = struct.Struct("<HHHH")
_MESSAGE = struct.Struct("<HBBHH")
_TS = struct.Struct("<q")
_TID_PID_TS = struct.Struct("<IIq")               # @+8 of SYSTEM and EVENT_HEADER records
_PREFIX_WORDS = struct.Struct("<HHHH")            # _PREFIX with type | marker << 8 as one word
_NP_FORMAT = {"b": "i1", "B": "u1", "h": "<i2", "H": "<u2", "i": "<i4", "I": "<u4",
              "l": "<i4", "L": "<u4", "q": "<i8", "Q": "<u8"}

_SYSTEM_TYPES = frozenset((L.HT_SYSTEM32, L.HT_SYSTEM64, L.HT_COMPACT32, L.HT_COMPACT64))
_PERFINFO_TYPES = frozenset((L.HT_PERFINFO32, L.HT_PERFINFO64))
_KERNEL_TYPES = _SYSTEM_TYPES | _PERFINFO_TYPES
_EVENT_HEADER_TYPES = frozenset((L.HT_EVENT_HEADER32, L.HT_EVENT_HEADER64))
_CLASSIC_TYPES = frozenset((L.HT_FULL32, L.HT_FULL64, L.HT_INSTANCE32, L.HT_INSTANCE64))

# HookId group -> (name, GUID) for kernel events (etw-formats.md section 2.1).
KERNEL_GROUPS: dict[int, tuple[str, str]] = {
    0x00: ("EventTrace", "68fdd900-4a3e-11d1-84f4-0000f80464e3"),
    0x01: ("DiskIo", "3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c"),
    0x02: ("PageFault", "3d6fa8d3-fe05-11d0-9dda-00c04fd7ba7c"),
    0x03: ("Process", "3d6fa8d0-fe05-11d0-9dda-00c04fd7ba7c"),
    0x04: ("FileIo", "90cbdc39-4a3e-11d1-84f4-0000f80464e3"),
    0x05: ("Thread", "3d6fa8d1-fe05-11d0-9dda-00c04fd7ba7c"),
    0x06: ("TcpIp", "9a280ac0-c8e0-11d1-84e2-00c04fb998a2"),
    0x08: ("UdpIp", "bf3a50c5-a9c9-4988-a005-2df0b7c80f80"),
    0x09: ("Registry", "ae53722e-c863-11d2-8659-00c04fa321a1"),
    0x0B: ("SystemConfig", "01853a65-418f-4f36-aefc-dc0f1d2fd235"),
    0x0E: ("Pool", "0268a8b6-74fd-4302-9dd0-6e8f1795c0cf"),
    0x0F: ("PerfInfo", "ce1dbfb4-137e-4da6-87b0-3f59aa102cbc"),
    0x14: ("Image", "2cb15d1d-5fc1-11d2-abe1-00a0c911f518"),
    0x16: ("CC", "7687a439-f752-45b8-b741-321aec0f8df9"),
    0x18: ("StackWalk", "def2fe46-7bd6-4b80-bd94-f57fe20d0ce3"),
    0x1B: ("SplitIo", "d837ca92-12b9-44a5-ad6a-3a65b3578aa8"),
}
_IMAGE_GUID = KERNEL_GROUPS[0x14][1]
_KERNEL_UUIDS = {guid: uuid.UUID(guid) for _, guid in KERNEL_GROUPS.values()}

_HEADER_SENTINEL = object()      # marks HookId 0 (EventTrace/Header) in the kernel lookup


def kernel_provider(hook: int) -> str | None:
    group = hook >> 8
    if group == 0x03 and hook & 0xFF == 10:
        return _IMAGE_GUID       # Process/10 is reported under the Image GUID (sechost legacy)
    entry = KERNEL_GROUPS.get(group)
    return entry[1] if entry else None


# --- clock ---------------------------------------------------------------------------------------
class Clock:
    """Raw session timestamps -> absolute UTC nanoseconds (etw-formats.md section 1.7)."""

    def __init__(self, clock_type: int, start_filetime: int, t0: int, perf_freq: int,
                 cpu_mhz: int):
        self.clock_type = clock_type
        if clock_type == L.CLOCK_SYSTEM_TIME:
            freq = 10_000_000                      # raw values are FILETIMEs already
        elif clock_type == L.CLOCK_CPU_CYCLES:
            freq = cpu_mhz * 1_000_000
        else:                                      # QPC, or raw treated like QPC
            freq = perf_freq
        if not 0 < freq <= MAX_CLOCK_HZ:
            raise ValueError(f"clock type {clock_type} with no usable frequency ({freq})")
        start_ns = (start_filetime - FILETIME_UNIX_EPOCH) * 100
        if abs(start_ns) > MAX_SPAN_NS:
            raise ValueError(f"StartTime {start_filetime} is no plausible FILETIME")
        self.freq = freq
        self.t0 = t0
        self.start_ns = start_ns

    def to_ns(self, raw: int) -> int | None:
        """None for a timestamp too far from the trace start to be real (damaged input)."""
        d = raw - self.t0
        q, r = divmod(d, self.freq)
        if abs(q) > MAX_SPAN_S:
            return None
        return self.start_ns + q * 1_000_000_000 + (r * 1_000_000_000) // self.freq

    def expr(self, raw: pl.Expr) -> pl.Expr:
        """The same conversion on a column, without overflow (d * 1e9 overflows past ~10 days)."""
        d = raw - self.t0
        q = d.floordiv(self.freq)
        r = d - q * self.freq
        ns = self.start_ns + q * 1_000_000_000 + (r * 1_000_000_000).floordiv(self.freq)
        return pl.when(q.abs() <= MAX_SPAN_S).then(ns).otherwise(None)


# --- input streams -------------------------------------------------------------------------------
class _Stream:
    """A read-only stream that closes every layer under it (member, archive, file)."""

    def __init__(self, stream, *under):
        self.read = stream.read
        self._layers = (stream, *under)
        self.raw = (under or (stream,))[-1]       # the file itself: its position is progress

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
        return _Stream(gzip.GzipFile(fileobj=f, mode="rb"), f)
    if magic == b"PK\x03\x04":
        try:
            z = zipfile.ZipFile(f)
            return _Stream(z.open(zip_member(path, z)), z, f)
        except (zipfile.BadZipFile, NotImplementedError, OSError) as e:
            f.close()
            raise InputError(path, f"damaged zip archive: {e}", 0) from None
        except InputError:
            f.close()
            raise
    return _Stream(f)


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


def iter_buffers(path: Path, diagnostics: Diagnostics,
                 progress=None) -> Iterator[tuple[int, int, bytes]]:
    """(file offset, buffer index, buffer bytes) for every buffer, in file order. Offsets are
    in the .etl bytes (inside a .zip/.gz: the decompressed stream); `progress`, if given, is
    called now and then with the bytes of the input file consumed so far.

    Stops with a warning (naming the byte offset) at a buffer that cannot be right: size zero or
    below the header size, larger than any ETW buffer, or cut short by the end of the file.
    """
    stream = open_trace_stream(path)
    offset = index = 0
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
            size = _U32.unpack_from(head, 0)[0]
            if size < L.BUFFER_HEADER_SIZE + 8 or size > MAX_BUFFER_SIZE:
                if size == 0xFFFFFFFF or (size == 0 and not head.strip(b"\0")):
                    return             # padding after the last buffer
                msg = f"buffer size {size:#x} is impossible"
                if index == 0:
                    raise InputError(path, f"not a readable ETW trace: {msg}", offset)
                diagnostics.warn(f"{path}: byte {offset}: {msg}; stopped reading there")
                diagnostics.count("etl_bad_buffers")
                return
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


def unpack_buffer(path: Path, file_offset: int, data: bytes, diagnostics: Diagnostics):
    """(cpu, BufferFlag, event bytes, start, end, base) of one buffer, decompressed if it is;
    None (with a warning) if it cannot be read. `base` + offset = a record's position."""
    size, saved, cpu_lo, cpu_hi, _logger, _state, filled, flag, _btype = \
        _BUFFER.unpack_from(data, 0)
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
        diagnostics.warn(f"{path}: byte {file_offset}: {why}; buffer skipped")
        diagnostics.count("etl_bad_buffers")
        return None
    if len(events) < want:
        diagnostics.warn(f"{path}: byte {file_offset}: compressed buffer decompressed to "
                         f"{len(events)} of {want} bytes; read what was there")
        diagnostics.count("etl_short_buffers")
    return cpu, flag, events, 0, len(events), file_offset + L.BUFFER_HEADER_SIZE


# --- the walker ----------------------------------------------------------------------------------
class _Registry:
    """A snapshot of the decoder registries keyed by raw bytes, so lookups cost no conversions."""

    def __init__(self):
        from fpreplay.parsers.etl import decoders as D

        self.kernel = {(g << 8) | o: dec for (g, o), dec in D.KERNEL.items()}
        self.kernel_user_header = self.kernel.get(0)
        self.kernel[0] = _HEADER_SENTINEL
        self.manifest = {uuid.UUID(g).bytes_le + struct.pack("<H", i): dec
                         for (g, i), dec in D.MANIFEST.items()}
        self.classic = {(uuid.UUID(g).bytes_le, t): dec for (g, t), dec in D.CLASSIC.items()}
        self.tracelogging = D.TRACELOGGING
        self.wpp = D.WPP
        self._guids: dict[bytes, str] = {}
        self._uuids: dict[bytes, uuid.UUID] = {}

    def guid(self, raw: bytes) -> str:
        s = self._guids.get(raw)
        if s is None:
            s = self._guids[raw] = str(uuid.UUID(bytes_le=raw))
        return s

    def uuid(self, raw: bytes) -> uuid.UUID:
        u = self._uuids.get(raw)
        if u is None:
            u = self._uuids[raw] = uuid.UUID(bytes_le=raw)
        return u


def _ext_items(data, start: int, end: int) -> tuple[list[tuple[int, bytes]], int]:
    """EVENT_HEADER extended items from `start`; returns (items, payload offset)."""
    items = []
    off = start
    while off + 8 <= end:
        item_size, ext_type, linkage, data_size = _EXT_ITEM.unpack_from(data, off)
        if item_size < 8 or off + item_size > end:
            raise ValueError(f"extended item of size {item_size} at +{off - start:#x}")
        items.append((ext_type, bytes(data[off + 8: off + 8 + min(data_size, item_size - 8)])))
        off += item_size
        if not linkage & 1:
            break
    return items, off


class _BatchPlan:
    """How to decode every record of one kernel event (HookId, header type, version word) whose
    decoder has a column form: the walker only copies each record's fixed part (header and
    payload layout) into `raw`; the flush reads all of them at once as a numpy record array and
    maps the fields with polars. A record too short for the layout goes the per-record way
    (which falls back to older layouts or warns)."""

    __slots__ = ("dec", "need", "dtype", "names", "system", "raw", "keys")

    def __init__(self, dec, htype: int, version_word: int):
        kind, hlen, psize = L.HEADER_TYPES[htype]
        hlen += 8 * (1 if version_word & 0x8000 else 0) + 8 * ((version_word >> 8) & 7)
        st, names = dec.layout_for(version_word & 0xFF, psize)
        self.dec = dec
        self.need = hlen + st.size                 # smallest record size that fits the layout
        self.system = kind != "perfinfo"           # PERFINFO headers carry no thread/process
        fields = {"_ts_raw": ("<i8", 0x10 if self.system else 0x08)}
        if self.system:
            fields.update(tid=("<u4", 0x08), pid=("<u4", 0x0C))
        pos = hlen
        for name, code in zip(names, st.format[1:]):
            fields[f"f_{name}"] = (_NP_FORMAT[code], pos)
            pos += struct.calcsize("<" + code)
        self.names = names
        self.dtype = np.dtype({"names": list(fields), "formats": [f for f, _ in fields.values()],
                               "offsets": [o for _, o in fields.values()],
                               "itemsize": self.need})
        self.raw = bytearray()                     # `need` bytes per record
        self.keys: list[int] = []                  # record sequence number << 16 | cpu

    def frame(self, source: str) -> pl.DataFrame:
        recs = np.frombuffer(self.raw, dtype=self.dtype)
        keys = np.array(self.keys, dtype=np.int64)
        data = {name: np.ascontiguousarray(recs[name]) for name in self.dtype.names}
        data["_seq"] = keys >> 16
        data["cpu"] = (keys & 0xFFFF).astype(np.uint16)
        df = pl.DataFrame(data)
        del recs
        self.raw, self.keys = bytearray(), []
        # The row a decoder's `fields` would give, then what the walker fills in when absent.
        row = self.dec.columns({n: pl.col(f"f_{n}") for n in self.names})
        if row.get("irp") is not None:
            irp = row["irp"]
            row["irp"] = pl.when(irp != 0).then(irp)   # a null IRP pointer: no IRP
        base = {"cpu": pl.col("cpu"),
                "pid": pl.col("pid") if self.system else None,
                "tid": pl.col("tid") if self.system else None,
                "source": source, "kind": self.dec.kind, "event_name": self.dec.event_name}
        base.update(row)
        exprs = [pl.col("_ts_raw"), pl.col("_seq")]
        for name, value in base.items():
            dtype = EVENT_COLUMNS[name]
            expr = value if isinstance(value, pl.Expr) else pl.lit(value)
            exprs.append(expr.cast(dtype, strict=False).alias(name))
        return df.select(exprs)


class _TlPlan:
    """One TraceLogging metadata blob (with its provider): the kind and name of its events and,
    when its fields are wanted, the compiled payload -> instrumentation columns function."""

    __slots__ = ("kind", "event_name", "names", "columns", "rows")

    def __init__(self, kind: str, event_name: str, names: tuple, columns):
        self.kind, self.event_name, self.names, self.columns = kind, event_name, names, columns
        self.rows: list[tuple] = []       # (tid, pid, ts, seq, cpu, *column values)

    def frame(self, source: str) -> pl.DataFrame:
        names = ("tid", "pid", "_ts_raw", "_seq", "cpu", *self.names)
        dtypes = {**EVENT_COLUMNS, "_ts_raw": pl.Int64, "_seq": pl.Int64}
        series = [pl.Series(n, c, dtype=dtypes[n], strict=False)
                  for n, c in zip(names, zip(*self.rows))]
        self.rows = []
        return pl.DataFrame([s for s in series if s.null_count() < s.len()]).with_columns(
            source=pl.lit(source), kind=pl.lit(self.kind), event_name=pl.lit(self.event_name))


class _Reader:
    def __init__(self, path: Path, options, diagnostics: Diagnostics, stats: dict):
        from fpreplay.parsers.etl.decoders import DecodeContext

        self.path = path
        self.source = str(path)
        self.options = options
        self.all = bool(options.all_records)
        self.diag = diagnostics
        self.stats = stats
        self.reg = _Registry()
        self.ctx = DecodeContext(source=self.source, diagnostics=diagnostics,
                                 tmf_dirs=list(options.tmf_dirs),
                                 providers=list(options.providers))
        self.clock: Clock | None = None
        self.logfile = None
        self.records = 0
        self.seq = 0
        self.rows: list[dict] = []                 # decoded rows of the current flush window
        self.cols: dict[str, list] | None = self._new_cols() if self.all else None
        self.pending: pl.DataFrame | None = None
        self.pending_rows = 0
        self.cpu_last_ts: dict[int, int] = {}      # cpu -> newest raw ts seen on it
        self.cpu_expired: set[int] = set()         # quiet CPUs the merge stopped waiting for
        self.unseen_expired = False                # ... and for CPUs that never logged
        self.buffers_seen = 0
        self.released_upto: int | None = None
        self.decoder_failures: dict[str, int] = {}
        # Batch decoding (see _BatchPlan, _TlPlan): rows wait in their plan until the next flush.
        self.kernel_plans: dict[int, _BatchPlan | None] = {}
        self.tl_plans: dict[tuple, _TlPlan | None] = {}
        # provider GUID bytes -> header type -> [(extended-data bytes, plan)]: the extended data
        # of a provider's events repeats (metadata and traits only), so one comparison in place
        # of walking and copying it finds the plan.
        self.tl_recent: dict[bytes, dict[int, list]] = {}

    # --- rows ---------------------------------------------------------------------------------
    @staticmethod
    def _new_cols() -> dict[str, list]:
        return {k: [] for k in ("_ts_raw", "_seq", "cpu", "pid", "tid", "provider", "event_id",
                                "opcode", "version", "header_kind", "event_name")}

    def _record(self, data, off: int, size: int, htype: int, marker: int, cpu: int,
                file_offset: int) -> EtlRecord:
        """The full header of one record (only for records someone will look at)."""
        end = off + size
        ext = None
        flags = 0
        level = task = keyword = event_id = group = None
        pid = tid = None
        if marker == 0x90:
            return self._wpp_record(data, off, size, cpu, file_offset)
        kind, hlen, psize = L.HEADER_TYPES[htype]
        if htype in _SYSTEM_TYPES:
            version, _, _, _, hook, tid, pid, ts = _SYSTEM.unpack_from(data, off)
            provider = _KERNEL_UUIDS.get(kernel_provider(hook))
            group, opcode = hook >> 8, hook & 0xFF
            hlen += 8 * (1 if version & 0x8000 else 0) + 8 * ((version >> 8) & 7)
            version &= 0xFF
        elif htype in _PERFINFO_TYPES:
            version, _, _, _, hook, ts = _PERFINFO.unpack_from(data, off)
            provider = _KERNEL_UUIDS.get(kernel_provider(hook))
            group, opcode = hook >> 8, hook & 0xFF
            hlen += 8 * (1 if version & 0x8000 else 0) + 8 * ((version >> 8) & 7)
            version &= 0xFF
        elif htype in _EVENT_HEADER_TYPES:
            (_, _, _, flags, _, tid, pid, ts, g, event_id, version, _, level, opcode, task,
             keyword) = _EVENT_HEADER.unpack_from(data, off)
            provider = self.reg.uuid(g)
            if flags & L.EVENT_HEADER_FLAG_EXTENDED_INFO:
                ext, payload_start = _ext_items(data, off + hlen, end)
                hlen = payload_start - off
        else:
            _, _, _, opcode, level, version, tid, pid, ts, g = _CLASSIC.unpack_from(data, off)
            provider = self.reg.uuid(g)
            version &= 0xFF
        if hlen > size:
            raise ValueError(f"record of {size} bytes is shorter than its {kind} header")
        return EtlRecord(
            header_kind=kind, header_type=htype, pointer_size=psize, ts_raw=ts,
            ts_ns=self.clock.to_ns(ts) if self.clock else None, cpu=cpu, pid=pid, tid=tid,
            provider=provider, group=group, opcode=opcode,
            event_id=event_id, version=version, level=level, task=task, keyword=keyword,
            flags=flags, ext=ext, payload=bytes(data[off + hlen:end]), file_offset=file_offset)

    def _wpp_fields(self, data, off: int, size: int):
        """(message number, option flags, guid bytes|None, ts|None, tid, pid, payload offset)."""
        _, _, _, number, oflags = _MESSAGE.unpack_from(data, off)
        p = off + 8
        guid = ts = tid = pid = None
        if oflags & L.TRACE_MESSAGE_SEQUENCE:
            p += 4
        if oflags & L.TRACE_MESSAGE_GUID:
            guid = bytes(data[p:p + 16])
            p += 16
        elif oflags & L.TRACE_MESSAGE_COMPONENTID:
            p += 4
        if oflags & L.TRACE_MESSAGE_TIMESTAMP:
            ts = _TS.unpack_from(data, p)[0]
            p += 8
        if oflags & L.TRACE_MESSAGE_SYSTEMINFO:
            tid, pid = struct.unpack_from("<II", data, p)
            p += 8
        if p > off + size:
            raise ValueError(f"WPP record of {size} bytes shorter than its option fields")
        return number, oflags, guid, ts, tid, pid, p

    def _wpp_record(self, data, off, size, cpu, file_offset) -> EtlRecord:
        number, oflags, guid, ts, tid, pid, p = self._wpp_fields(data, off, size)
        if ts is None:
            ts = self._last_ts
            self.diag.count("etl_wpp_untimed")
        psize = 8 if oflags & L.TRACE_MESSAGE_POINTER64 else 4
        return EtlRecord(
            header_kind="wpp", header_type=0x90, pointer_size=psize, ts_raw=ts,
            ts_ns=self.clock.to_ns(ts) if self.clock else None, cpu=cpu, pid=pid, tid=tid,
            provider=self.reg.uuid(guid) if guid else None, group=None, opcode=0,
            event_id=number, version=0, level=None, task=None, keyword=None, flags=oflags,
            ext=None, payload=bytes(data[p:off + size]), file_offset=file_offset)

    def _decode(self, dec, data, off, size, htype, marker, cpu, file_offset) -> int:
        """Run one decoder; returns how many rows it added. A payload that breaks a decoder is
        counted and named in a warning, never a traceback: the bytes are untrusted."""
        try:
            rec = self._record(data, off, size, htype, marker, cpu, file_offset)
            rows = dec(rec, self.ctx)
        except Exception as e:  # noqa: BLE001 - decoders parse untrusted bytes
            name = getattr(dec, "__qualname__", repr(dec))
            n = self.decoder_failures.get(name, 0)
            self.decoder_failures[name] = n + 1
            self.diag.count("etl_undecodable_records")
            if n == 0:
                self.diag.warn(f"{self.path}: byte {file_offset}: record could not be decoded "
                               f"({name}: {e}); such records are counted, not decoded")
            return 0
        if not rows:
            return 0
        for row in rows:
            row["_seq"] = self.seq
            row["_ts_raw"] = rec.ts_raw
            if row.get("ts_ns") is None and rec.ts_ns is not None:
                row["ts_ns"] = rec.ts_ns
            row.setdefault("cpu", cpu)
            row.setdefault("pid", rec.pid)
            row.setdefault("tid", rec.tid)
            row.setdefault("source", self.source)
            row.setdefault("kind", "other")
            if row.get("event_name") is None:
                row["event_name"] = self._default_name(rec)
            if self.all:
                row.setdefault("provider", str(rec.provider) if rec.provider else None)
                row.setdefault("event_id", rec.event_id)
                row.setdefault("opcode", rec.opcode)
                row.setdefault("version", rec.version)
                row.setdefault("header_kind", rec.header_kind)
        self.rows.extend(rows)
        return len(rows)

    @staticmethod
    def _default_name(rec: EtlRecord) -> str:
        if rec.group is not None:
            name = KERNEL_GROUPS.get(rec.group, (f"Kernel{rec.group:#04x}",))[0]
            return f"{name}/{rec.opcode}"
        if rec.header_kind == "wpp":
            return f"WPP/{rec.provider}/{rec.event_id}"
        if rec.event_id is not None:
            return f"{rec.provider}/{rec.event_id}"
        return f"{rec.provider}/{rec.opcode}"

    # --- the trace header ----------------------------------------------------------------------
    def _trace_header(self, data, off: int, size: int, htype: int, file_offset: int) -> None:
        """EventTrace/Header: the first one sets the clock; merged files repeat it (ignored)."""
        if self.clock is not None or htype not in (L.HT_SYSTEM32, L.HT_SYSTEM64):
            return
        layout = L.TRACE_LOGFILE_HEADER64 if htype == L.HT_SYSTEM64 else L.TRACE_LOGFILE_HEADER32
        if size < 0x20 + layout.sizeof():
            self.diag.warn(f"{self.path}: byte {file_offset}: trace header record too short "
                           f"({size} bytes)")
            return
        lf = layout.parse(bytes(data[off + 0x20: off + 0x20 + layout.sizeof()]))
        t0 = _SYSTEM.unpack_from(data, off)[7]
        try:
            self.clock = Clock(lf.ReservedFlags, lf.StartTime, t0, lf.PerfFreq, lf.CpuSpeedInMHz)
        except ValueError as e:
            self.diag.warn(f"{self.path}: byte {file_offset}: trace header: {e}; "
                           "timestamps treated as 10 MHz ticks from the header's time")
            try:
                self.clock = Clock(L.CLOCK_QPC, lf.StartTime, t0, 10_000_000, 0)
            except ValueError:
                self.clock = Clock(L.CLOCK_QPC, FILETIME_UNIX_EPOCH, t0, 10_000_000, 0)
        self.logfile = lf
        self.ctx.state["clock"] = self.clock
        self.ctx.state["logfile_header"] = lf
        self.stats["trace_start_ns"] = self.clock.start_ns
        if lf.ReservedFlags not in (L.CLOCK_QPC, L.CLOCK_SYSTEM_TIME, L.CLOCK_CPU_CYCLES):
            self.diag.warn(f"{self.path}: clock type {lf.ReservedFlags} unknown; treated as QPC")

    # --- one buffer ----------------------------------------------------------------------------
    def buffer(self, file_offset: int, data: bytes, unpacked=None) -> None:
        """Walk one buffer; `unpacked` is what unpack_buffer() made of it (else done here)."""
        if unpacked is None:
            unpacked = unpack_buffer(self.path, file_offset, data, self.diag)
        if unpacked is None:
            return
        cpu, flag, events, start, end, base = unpacked
        if flag & L.BUFFER_FLAG_EVENTS_LOST:
            self.stats["events_lost_buffers"] = self.stats.get("events_lost_buffers", 0) + 1
        if flag & L.BUFFER_FLAG_BUFFER_LOST:
            self.stats["buffers_lost_flagged"] = self.stats.get("buffers_lost_flagged", 0) + 1
        before = self.cpu_last_ts.get(cpu)
        self._buffer_max_ts = None
        self._walk(events, start, end, cpu, base)
        self.buffers_seen += 1
        self.cpu_expired.discard(cpu)
        ts = self._buffer_max_ts       # how far this CPU has logged
        if ts is not None and ts > self.cpu_last_ts.get(cpu, ts - 1):
            self.cpu_last_ts[cpu] = ts
        if flag & L.BUFFER_FLAG_EVENTS_LOST and self.clock is not None:
            # The events were lost while this buffer was the CPU's current one: after the CPU's
            # previous buffer, up to this buffer's last record (None: unknown bound).
            self.stats.setdefault("lost_windows", []).append(
                (self.clock.to_ns(before) if before is not None else None,
                 self.clock.to_ns(ts) if ts is not None else None))

    def _walk(self, data, off: int, end: int, cpu: int, base: int) -> None:
        """Every record of one buffer. `base` + offset = the record's position for messages."""
        if self.all:
            return self._walk_all(data, off, end, cpu, base)
        prefix = _PREFIX_WORDS.unpack_from
        kernel_min = _KERNEL_MIN_SIZE.get
        kernel = self.reg.kernel.get
        manifest = self.reg.manifest
        classic = self.reg.classic
        tracelogging = self.reg.tracelogging
        plans = self.kernel_plans
        min_size = _MIN_SIZE
        n = 0
        prev = None
        limit = end - 8
        while off <= limit:
            w0, type_marker, w2, w3 = prefix(data, off)
            smallest = kernel_min(type_marker)
            if smallest is not None:                          # most records: size @+4, HookId
                size = w2
                if size < smallest or off + size > end:
                    self._bad_record(base + off, size, end - off)
                    break
                dec = kernel(w3)
                if dec is not None:
                    htype, marker = type_marker & 0xFF, 0xC0
                    plan = None
                    if dec is _HEADER_SENTINEL:
                        self._trace_header(data, off, size, htype, base + off)
                        dec = self.reg.kernel_user_header
                    else:
                        key = (w0 << 32) | (htype << 16) | w3
                        plan = plans.get(key, 0)
                        if plan == 0:
                            plan = self._kernel_plan(key, dec, htype, w0)
                    if plan is not None and size >= plan.need:
                        plan.raw += data[off:off + plan.need]
                        plan.keys.append((self.records + n) << 16 | cpu)
                    elif dec is not None:
                        self.seq = self.records + n
                        self._decode(dec, data, off, size, htype, marker, cpu, base + off)
            elif type_marker >> 8 == 0xC0:                     # size @+0
                htype, marker = type_marker & 0xFF, 0xC0
                size = w0
                if size < min_size[htype] or off + size > end:
                    self._bad_record(base + off, size, end - off)
                    break
                if htype in _EVENT_HEADER_TYPES:
                    dec = manifest.get(data[off + 0x18:off + 0x2A]) if manifest else None
                    if dec is None and tracelogging is not None and w2 & 1 \
                            and not self._tl_batch(data, off, size, htype, cpu, self.records + n) \
                            and self._has_tl_schema(data, off, size):
                        dec = tracelogging
                elif htype in _CLASSIC_TYPES and classic:
                    dec = classic.get((data[off + 0x18:off + 0x28], data[off + 4]))
                else:
                    dec = None             # ERROR / TIMED / WNODE and unknown types: skipped
                if dec is not None:
                    self.seq = self.records + n
                    self._decode(dec, data, off, size, htype, marker, cpu, base + off)
            else:
                htype, marker = type_marker & 0xFF, type_marker >> 8
                size = _other_size(w0, htype, marker)
                if size is None:
                    break                  # 0xFFFFFFFF or zero fill: end of the buffer's data
                if size < 8 or off + size > end:
                    self._bad_record(base + off, size, end - off)
                    break
                if marker == 0x90 and self.reg.wpp is not None:
                    self._last_ts = _record_ts(data, prev) if prev is not None else None
                    self.seq = self.records + n
                    self._decode(self.reg.wpp, data, off, size, 0x90, marker, cpu, base + off)
            n += 1
            prev = off
            off += (size + 7) & ~7
        self.records += n
        # Records of a buffer are (nearly) in time order: its last one tells how far the CPU got.
        self._buffer_max_ts = _record_ts(data, prev) if prev is not None else None

    # --- batch decoding --------------------------------------------------------------------------
    def _kernel_plan(self, key: int, dec, htype: int, version_word: int):
        plan = None
        if getattr(dec, "columns", None) is not None \
                and dec.layout_for(version_word & 0xFF, L.HEADER_TYPES[htype][2]) is not None:
            plan = _BatchPlan(dec, htype, version_word)
        self.kernel_plans[key] = plan
        return plan

    def _tl_batch(self, data, off: int, size: int, htype: int, cpu: int, seq: int) -> bool:
        """A TraceLogging event decoded by its metadata's compiled plan into `tl_rows`; False
        (nothing done) for anything the reference path must see: no or unreadable metadata,
        damaged items or payload, field types the plan does not read."""
        end = off + size
        start = p = off + 0x50
        guid = data[off + 0x18:off + 0x28]
        recent = self.tl_recent.get(guid)
        seen = recent.get(htype) if recent is not None else None
        plan = None
        if seen:
            for ext, known in seen:
                if data.startswith(ext, start, end):
                    plan, p = known, start + len(ext)
                    break
        if plan is None:
            meta = traits = None
            only_constant = True       # nothing but metadata and traits (same every event)
            linked = True
            while p + 8 <= end:
                item_size, ext_type, linkage, data_size = _EXT_ITEM.unpack_from(data, p)
                if item_size < 8 or p + item_size > end:
                    return False
                if ext_type == L.EXT_TYPE_EVENT_SCHEMA_TL:
                    meta = bytes(data[p + 8:p + 8 + min(data_size, item_size - 8)])
                elif ext_type == L.EXT_TYPE_PROV_TRAITS:
                    traits = bytes(data[p + 8:p + 8 + min(data_size, item_size - 8)])
                else:
                    only_constant = False
                p += item_size
                if not linkage & 1:
                    linked = False
                    break
            if meta is None:
                return False
            key = (meta, traits, bytes(guid), htype)
            plan = self.tl_plans.get(key, 0)
            if plan == 0:
                plan = self._tl_plan(key)
            if plan is None:
                return False
            if only_constant and not linked:     # the chain ended by itself, not at `end`
                seen = self.tl_recent.setdefault(bytes(guid), {}).setdefault(htype, [])
                if len(seen) < 16:
                    seen.append((bytes(data[start:p]), plan))
        if plan.columns is None:
            plan.rows.append((*_TID_PID_TS.unpack_from(data, off + 8), seq, cpu))
            return True
        try:
            values = plan.columns(bytes(data[p:end]))
        except (ValueError, struct.error):
            return False
        plan.rows.append((*_TID_PID_TS.unpack_from(data, off + 8), seq, cpu, *values))
        return True

    def _tl_plan(self, key: tuple):
        """(kind, event name, payload -> columns or None) for one metadata blob, as
        tracelogging.decode decides them; None when the reference path must decode."""
        from fpreplay.parsers.etl.decoders import tracelogging as TL
        from fpreplay.parsers.etl.decoders.tl_compiled import compile_columns

        meta, traits, guid, htype = key
        plan = None
        try:
            event = TL.parse_metadata(meta)
        except (TL.TlFormatError, struct.error, RecursionError):
            event = None
        if event is not None:
            guid_text = self.reg.guid(guid)
            provider = TL.provider_name(traits, guid_text)
            kind = TL.INSTRUMENTATION_KINDS.get(event.name.lower())
            wanted = TL.fields_wanted(self.ctx, kind, provider, guid_text)
            compiled = compile_columns(event, L.HEADER_TYPES[htype][2]) if wanted else ((), None)
            if compiled is not None:
                plan = _TlPlan(kind or "other", f"{provider}/{event.name}", *compiled)
        self.tl_plans[key] = plan
        return plan

    def _batch_frames(self) -> list[pl.DataFrame]:
        """Everything the batch plans and tl_rows hold, as frames; empties them."""
        return [p.frame(self.source) for p in self.kernel_plans.values()
                if p is not None and p.keys] \
            + [p.frame(self.source) for p in self.tl_plans.values() if p is not None and p.rows]

    def _batched(self) -> int:
        return sum(len(p.keys) for p in self.kernel_plans.values() if p is not None) \
            + sum(len(p.rows) for p in self.tl_plans.values() if p is not None)

    @staticmethod
    def _has_tl_schema(data, off: int, size: int) -> bool:
        """Whether an EVENT_HEADER record carries an EVENT_SCHEMA_TL item (TraceLogging).
        Runs for every record with extended items, so it only peeks at item headers."""
        p, end = off + 0x50, off + size - 8
        while p <= end:
            item_size, ext_type, linkage, _ = _EXT_ITEM.unpack_from(data, p)
            if ext_type == L.EXT_TYPE_EVENT_SCHEMA_TL:
                return True
            if not linkage & 1 or item_size < 8:
                return False
            p += item_size
        return False

    def _bad_record(self, at: int, size: int, room: int) -> None:
        self.diag.warn(f"{self.path}: byte {at}: record size {size} does not fit the {room} "
                       "bytes left in its buffer; rest of that buffer skipped")
        self.diag.count("etl_bad_records")

    _buffer_max_ts: int | None = None
    _last_ts: int | None = None

    def _walk_all(self, data, off: int, end: int, cpu: int, base: int) -> None:
        """--all: every record becomes a row, decoded where a decoder exists."""
        prefix = _PREFIX.unpack_from
        kernel = self.reg.kernel.get
        manifest = self.reg.manifest
        classic = self.reg.classic
        reg = self.reg
        c = self.cols
        c_ts, c_seq, c_cpu, c_pid, c_tid = c["_ts_raw"], c["_seq"], c["cpu"], c["pid"], c["tid"]
        c_prov, c_id, c_op, c_ver, c_kind = (c["provider"], c["event_id"], c["opcode"],
                                             c["version"], c["header_kind"])
        c_name = c["event_name"]
        n = 0
        last_ts = None
        max_ts = self._buffer_max_ts
        limit = end - 8
        while off <= limit:
            w0, htype, marker, w2, w3 = prefix(data, off)
            dec = None
            size = 0
            row = None                     # (ts, pid, tid, provider, id, opcode, version, kind)
            try:
                if marker == 0xC0 and htype in _KERNEL_TYPES:
                    size = w2
                    if size < _MIN_SIZE[htype] or off + size > end:
                        raise ValueError
                    if htype in _PERFINFO_TYPES:
                        version, _, _, _, hook, ts = _PERFINFO.unpack_from(data, off)
                        pid = tid = None
                        kind = "perfinfo"
                    else:
                        version, _, _, _, hook, tid, pid, ts = _SYSTEM.unpack_from(data, off)
                        kind = "system" if htype <= L.HT_SYSTEM64 else "compact"
                    dec = kernel(hook)
                    if dec is _HEADER_SENTINEL:
                        self._trace_header(data, off, size, htype, base + off)
                        dec = reg.kernel_user_header
                    group = hook >> 8
                    entry = KERNEL_GROUPS.get(group)
                    row = (ts, pid, tid, kernel_provider(hook), None, hook & 0xFF,
                           version & 0xFF, kind,
                           f"{entry[0] if entry else f'Kernel{group:#04x}'}/{hook & 0xFF}")
                elif marker == 0xC0 and htype in _EVENT_HEADER_TYPES:
                    size = w0
                    if size < _MIN_SIZE[htype] or off + size > end:
                        raise ValueError
                    (_, _, _, flags, _, tid, pid, ts, g, event_id, version, _, _, opcode, _,
                     _) = _EVENT_HEADER.unpack_from(data, off)
                    dec = manifest.get(data[off + 0x18:off + 0x2A]) if manifest else None
                    if dec is None and reg.tracelogging is not None and flags & 1 \
                            and self._has_tl_schema(data, off, size):
                        dec = reg.tracelogging
                    prov = reg.guid(g)
                    row = (ts, pid, tid, prov, event_id, opcode, version, "event_header",
                           f"{prov}/{event_id}")
                elif marker == 0xC0 and htype in _CLASSIC_TYPES:
                    size = w0
                    if size < _MIN_SIZE[htype] or off + size > end:
                        raise ValueError
                    _, _, _, typ, _, version, tid, pid, ts, g = _CLASSIC.unpack_from(data, off)
                    dec = classic.get((g, typ)) if classic else None
                    prov = reg.guid(g)
                    kind = "instance" if htype in (L.HT_INSTANCE32, L.HT_INSTANCE64) \
                        else "event_trace"
                    row = (ts, pid, tid, prov, None, typ, version & 0xFF, kind,
                           f"{prov}/{typ}")
                elif marker == 0x90:
                    size = w0
                    if size < 8 or off + size > end:
                        raise ValueError
                    try:
                        number, _, guid, ts, tid, pid, _ = self._wpp_fields(data, off, size)
                    except ValueError:     # option fields past the record: keep the record
                        number = guid = ts = tid = pid = None
                        self.diag.count("etl_undecodable_records")
                    if ts is None:
                        ts = last_ts
                    dec = reg.wpp
                    self._last_ts = last_ts
                    prov = reg.guid(guid) if guid else None
                    row = (ts, pid, tid, prov, number, None, None, "wpp", f"WPP/{prov}/{number}")
                else:
                    size = w0 if marker == 0xC0 else _other_size(w0, htype, marker)
                    if size is None:
                        break
                    if size < _MIN_SIZE[htype if marker == 0xC0 else 0] or off + size > end:
                        raise ValueError
                    kind = "other" if marker == 0xC0 else "ulong32_time" if marker == 0xB0 \
                        else "wnode"
                    row = (last_ts, None, None, None, None, None, None, kind, None)
            except (ValueError, struct.error):
                self._bad_record(base + off, size, end - off)
                break
            n += 1
            self.seq += 1
            ts = row[0]
            if ts is not None:
                last_ts = ts
                if max_ts is None or ts > max_ts:
                    max_ts = ts
            if dec is None or not self._decode(dec, data, off, size, htype, marker, cpu,
                                               base + off):
                c_ts.append(ts)
                c_seq.append(self.seq)
                c_cpu.append(cpu)
                c_pid.append(row[1])
                c_tid.append(row[2])
                c_prov.append(row[3])
                c_id.append(row[4])
                c_op.append(row[5])
                c_ver.append(row[6])
                c_kind.append(row[7])
                c_name.append(row[8])
            off += (size + 7) & ~7
        self.records += n
        self._buffer_max_ts = max_ts

    # --- merge ---------------------------------------------------------------------------------
    def _frame(self) -> pl.DataFrame | None:
        """Rows collected since the last flush as one frame with _ts_raw/_seq/ts_ns."""
        frames = []
        if self.rows:
            schema = dict(EVENT_COLUMNS)
            if self.all:
                schema.update(ALL_RECORD_COLUMNS)
            schema["_ts_raw"] = pl.Int64
            schema["_seq"] = pl.Int64
            rows = self.rows
            # Column by column, not strict: a value a damaged payload pushed out of its dtype's
            # range becomes null instead of failing the whole read. Unknown keys are dropped.
            frames.append(pl.DataFrame([
                pl.Series(name, [r.get(name) for r in rows], dtype=dtype, strict=False)
                for name, dtype in schema.items()]))
            self.rows = []
        frames += self._batch_frames()
        if self.cols is not None and self.cols["_seq"]:
            c = self.cols
            data = {k: pl.Series(k, v, dtype=(pl.Int64 if k in ("_ts_raw", "_seq")
                                              else ALL_RECORD_COLUMNS.get(k)
                                              or EVENT_COLUMNS.get(k)), strict=False)
                    for k, v in c.items()}
            df = pl.DataFrame(data).with_columns(kind=pl.lit("other"),
                                                 source=pl.lit(self.source))
            frames.append(df)
            self.cols = self._new_cols()
        if not frames:
            return None
        df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        if "ts_ns" not in df.columns:
            df = df.with_columns(ts_ns=pl.lit(None, dtype=pl.Int64))
        if self.clock is not None:
            df = df.with_columns(ts_ns=pl.coalesce(pl.col("ts_ns"),
                                                   self.clock.expr(pl.col("_ts_raw"))))
        return df

    def _rows_buffered(self) -> int:
        return len(self.rows) + (len(self.cols["_seq"]) if self.cols is not None else 0) \
            + self._batched()

    def flush(self, final: bool = False) -> Iterator[pl.DataFrame]:
        """Release every pending row no CPU can still precede (all rows if final)."""
        if not final and self._rows_buffered() < PENDING_FLUSH_ROWS:
            return
        df = self._frame()
        if df is not None:
            self.pending = df if self.pending is None else pl.concat(
                [self.pending, df], how="diagonal_relaxed")
            self.pending_rows = self.pending.height
        if self.pending is None or self.pending.height == 0:
            return
        pending = self.pending.sort(["_ts_raw", "_seq"], nulls_last=False, maintain_order=True)
        if final:
            out, rest = pending, None
        else:
            # Each CPU's buffers come in time order, so nothing older than the slowest CPU's
            # newest record can still arrive. A CPU that went quiet would hold every row back:
            # past PENDING_MAX_ROWS stop waiting for the slowest until it logs again.
            # CPUs not seen yet (the header says how many there are) could precede anything.
            marks = {c: t for c, t in self.cpu_last_ts.items() if c not in self.cpu_expired}
            ts = pending["_ts_raw"]
            unseen = self.logfile is not None and not self.unseen_expired \
                and len(self.cpu_last_ts) < self.logfile.NumberOfProcessors
            cut = 0 if unseen or not marks else ts.search_sorted(min(marks.values()), "right")
            while pending.height - cut > PENDING_MAX_ROWS and (unseen or marks):
                if unseen:
                    unseen, self.unseen_expired = False, True
                else:
                    del marks[min(marks, key=marks.__getitem__)]
                    self.cpu_expired = set(self.cpu_last_ts) - set(marks)
                self.diag.count("etl_merge_forced")
                cut = ts.search_sorted(min(marks.values()), "right") if marks \
                    else pending.height
            out, rest = pending.head(cut), pending.slice(cut)
        self.pending = rest
        self.pending_rows = rest.height if rest is not None else 0
        if out.height:
            lo = out["_ts_raw"].drop_nulls()
            if self.released_upto is not None and lo.len() and lo.min() < self.released_upto:
                self.diag.count("etl_rows_released_late")
            if lo.len():
                self.released_upto = lo.max()
            yield out.drop(["_ts_raw", "_seq"])


def read_events(path, options, diagnostics: Diagnostics, stats: dict) -> Iterator[pl.DataFrame]:
    """Conformed event batches of one .etl (.zip/.gz) in time order; see parsers/api.py."""
    from fpreplay.schema import conform_events

    path = Path(path)
    reader = _Reader(path, options, diagnostics, stats)
    progress = options.progress
    circular_start = None          # index of the oldest buffer of a wrapped circular file
    deferred: list[int] = []       # indices read in a second pass (the newest part of the ring)
    seen_any = False
    walked, end_offset = 0, 0

    def process(offset: int, data: bytes, unpacked=None) -> None:
        nonlocal seen_any
        reader.buffer(offset, data, unpacked)
        seen_any = True

    def unpacked(buffers):
        for offset, index, data in buffers:
            yield offset, index, data, unpack_buffer(path, offset, data, diagnostics)

    try:
        # (A helper thread reading and decompressing ahead was tried: on two cores the hand-over
        # between threads cost more than it hid, for plain, LZ77 and zipped files alike.)
        for offset, index, data, ready in unpacked(iter_buffers(path, diagnostics, progress)):
            walked, end_offset = index + 1, offset + len(data)
            if index == 1 and reader.logfile is not None:
                circular_start = _circular_start(reader.logfile)
            if circular_start is not None and 1 <= index < circular_start:
                deferred.append(index)
                continue
            process(offset, data, ready)
            for batch in reader.flush():
                yield conform_events(batch, keep_extra=True)
        if deferred:
            wanted = set(deferred)
            for offset, index, data in iter_buffers(path, Diagnostics()):
                if index in wanted:
                    process(offset, data)
                    for batch in reader.flush():
                        yield conform_events(batch, keep_extra=True)
                if index >= max(wanted):
                    break
        if not seen_any or reader.records == 0:
            raise InputError(path, "no ETW records could be read", 0)
        # (A wrapped circular file counts overwritten buffers in BuffersWritten too.)
        if reader.logfile is not None and walked < reader.logfile.BuffersWritten \
                and not reader.logfile.LogFileMode & L.EVENT_TRACE_FILE_MODE_CIRCULAR:
            diagnostics.warn(f"{path}: byte {end_offset}: trace cut short: its header says "
                             f"{reader.logfile.BuffersWritten} buffers were written, "
                             f"{walked} are present")
            diagnostics.count("etl_truncated")
        for batch in reader.flush(final=True):
            yield conform_events(batch, keep_extra=True)
    finally:
        _finish_stats(reader, stats, diagnostics)


# Smallest valid record per header type (its fixed header); other types need 8 bytes.
_MIN_SIZE = [8] * 256
for _t, (_k, _hlen, _p) in L.HEADER_TYPES.items():
    _MIN_SIZE[_t] = _hlen
# type | 0xC0 marker << 8 of the kernel header types -> their smallest size (one lookup decides
# both "kernel header?" and the size check in the walk)
_KERNEL_MIN_SIZE = {(0xC0 << 8) | _t: _MIN_SIZE[_t] for _t in _KERNEL_TYPES}


def _other_size(w0: int, htype: int, marker: int) -> int | None:
    """Size of a record that has no 0xC0 marker; None at the end of a buffer's data."""
    if marker == 0x90 or marker == 0xB0:          # WPP message / ULONG32_TIME: u16 size @+0
        return w0
    m = w0 | (htype << 16) | (marker << 24)
    if m == 0xFFFFFFFF or m == 0:                  # unused tail (0xFF fill) or zero fill
        return None
    if marker & 0x80 == 0:
        return m                                   # raw WNODE_HEADER: u32 BufferSize @+0
    return 0                                       # unknown marker: damage


def _record_ts(data, off: int) -> int | None:
    """The raw timestamp of the record at `off` (None for untimed kinds)."""
    try:
        _, htype, marker, _, _ = _PREFIX.unpack_from(data, off)
        if marker == 0xC0:
            if htype in _PERFINFO_TYPES:
                return _TS.unpack_from(data, off + 8)[0]
            if htype in _KERNEL_TYPES or htype in _EVENT_HEADER_TYPES or htype in _CLASSIC_TYPES:
                return _TS.unpack_from(data, off + 0x10)[0]
    except struct.error:
        pass
    return None


def _circular_start(lf) -> int | None:
    """StartBuffers of a circular file that has wrapped; None when file order is ring order."""
    if lf.LogFileMode & L.EVENT_TRACE_FILE_MODE_CIRCULAR and 1 < lf.StartBuffers < (1 << 24):
        return lf.StartBuffers
    return None


def _finish_stats(reader: _Reader, stats: dict, diagnostics: Diagnostics) -> None:
    path = reader.path
    stats["records"] = stats.get("records", 0) + reader.records
    lf = reader.logfile
    events_lost = (lf.EventsLost if lf is not None else 0) + stats.pop("events_lost_buffers", 0)
    buffers_lost = (lf.BuffersLost if lf is not None else 0) + stats.pop("buffers_lost_flagged", 0)
    stats["events_lost"] = stats.get("events_lost", 0) + events_lost
    stats["buffers_lost"] = stats.get("buffers_lost", 0) + buffers_lost
    if events_lost:
        diagnostics.warn(f"{path}: the trace lost events ({events_lost} by the session's count "
                         "and buffers flagged EVENTS_LOST); lifecycles across them may be "
                         "incomplete")
    if buffers_lost:
        diagnostics.warn(f"{path}: the trace lost {buffers_lost} buffer(s)")
    if reader.logfile is None and reader.records:
        diagnostics.warn(f"{path}: no EventTrace/Header record; event times are unknown")
    diagnostics.count("etl_records", reader.records)
