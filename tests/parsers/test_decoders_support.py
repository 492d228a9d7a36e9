"""Test-only oracle: real records out of real .etl files, through dissect.etl (AGPL, tests only).

dissect.etl walks buffers and decompresses them; every header field we hand to the decoders is read
here from the raw record bytes (etw-formats.md 1.8), not from dissect's decoding, to stay clear of
its known bugs (byte-swapped EVENT_HEADER GUIDs, opcode-keyed events). The result is the same
EtlRecord the project's walker builds, so decoders can be tested before and independently of it.

No tests here: helpers only (the file name keeps it in the decoders' test family).
"""

from __future__ import annotations

import io
import struct
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.etl import decoders
from fpreplay.parsers.etl.record import EtlRecord
from fpreplay.schema import conform_events

FILETIME_EPOCH_DELTA = 116444736000000000   # 100-ns ticks between 1601 and 1970
_32BIT = {0x01, 0x03, 0x10, 0x0A, 0x0B, 0x12}
_KERNEL_TYPES = {0x01, 0x02, 0x03, 0x04, 0x10, 0x11}


def _open(path: Path) -> io.BytesIO:
    if str(path).endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            member = next(i for i in z.infolist() if i.filename.lower().endswith(".etl"))
            return io.BytesIO(z.read(member))
    return io.BytesIO(Path(path).read_bytes())


def _ext_items(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    items, off = [], 0
    while True:
        size, ext_type, linkage, data_size = struct.unpack_from("<HHHH", data, off)
        items.append((ext_type, bytes(data[off + 8: off + 8 + data_size])))
        off += size
        if not linkage & 1:
            return items, off


def oracle_records(path: Path) -> Iterator[EtlRecord]:
    """Every record of an .etl as an EtlRecord, in file order, ts_ns filled from the file's clock."""
    from dissect.etl.etl import ETL

    etl = ETL(_open(path))
    for buffer in etl.buffers():
        for rec in buffer:
            h = rec.header
            raw = bytes(h.data[: h.size])
            if len(raw) < 8:
                continue
            flags, htype = raw[3], raw[2]
            if flags == 0x90:
                continue   # WPP: not decoded from real files (none exist)
            if flags & 0xC0 != 0xC0:
                continue
            psize = 4 if htype in _32BIT else 8
            group = opcode = event_id = provider = level = task = keyword = None
            ext = None
            eflags = version = 0
            pid = tid = None
            if htype in _KERNEL_TYPES:
                version = raw[0]
                group, opcode = raw[7], raw[6]
                if htype in (0x10, 0x11):
                    ts_raw = struct.unpack_from("<q", raw, 8)[0]
                    start = 0x10
                else:
                    tid, pid, ts_raw = struct.unpack_from("<IIq", raw, 8)
                    start = 0x20 if htype in (0x01, 0x02) else 0x18
                vword = struct.unpack_from("<H", raw, 0)[0]
                start += (8 if vword & 0x8000 else 0) + 8 * ((vword >> 8) & 0x7)
                kind = {0x01: "system", 0x02: "system", 0x03: "compact", 0x04: "compact"}.get(
                    htype, "perfinfo")
                payload = raw[start:]
            elif htype in (0x12, 0x13):
                eflags = struct.unpack_from("<H", raw, 4)[0]
                tid, pid, ts_raw = struct.unpack_from("<IIq", raw, 8)
                provider = uuid.UUID(bytes_le=raw[0x18:0x28])
                event_id, version, _chan, level, opcode, task, keyword = struct.unpack_from(
                    "<HBBBBHQ", raw, 0x28)
                start = 0x50
                if eflags & 1:
                    ext, n = _ext_items(raw[0x50:])
                    start += n
                payload = raw[start:]
                kind = "event_header"
            elif htype in (0x0A, 0x14, 0x0B, 0x15):
                opcode, level, version = raw[4], raw[5], struct.unpack_from("<H", raw, 6)[0]
                tid, pid, ts_raw = struct.unpack_from("<IIq", raw, 8)
                provider = uuid.UUID(bytes_le=raw[0x18:0x28])
                start = 0x30 if htype in (0x0A, 0x14) else 0x48
                payload = raw[start:]
                kind = "event_trace" if htype in (0x0A, 0x14) else "instance"
            else:
                continue
            filetime = etl.get_filetime_for_event(ts_raw)
            ts_ns = (filetime - FILETIME_EPOCH_DELTA) * 100
            yield EtlRecord(header_kind=kind, header_type=htype, pointer_size=psize,
                            ts_raw=ts_raw, ts_ns=ts_ns, cpu=0, pid=pid, tid=tid,
                            provider=provider, group=group, opcode=opcode, event_id=event_id,
                            version=version, level=level, task=task, keyword=keyword,
                            flags=eflags, ext=ext, payload=payload, file_offset=0)


def decoder_for(record: EtlRecord):
    """The registry lookup the walker does (parsers/etl/decoders/__init__.py)."""
    if record.header_kind in ("system", "compact", "perfinfo"):
        return decoders.KERNEL.get((record.group, record.opcode))
    if record.header_kind == "event_header":
        d = decoders.MANIFEST.get((str(record.provider), record.event_id))
        if d is None and record.ext and any(t == 11 for t, _ in record.ext):
            d = decoders.TRACELOGGING
        return d
    if record.header_kind in ("event_trace", "instance"):
        return decoders.CLASSIC.get((str(record.provider), record.opcode))
    return None


def decode_records(records, source: str = "test", providers=None,
                   diagnostics: Diagnostics | None = None) -> pl.DataFrame:
    """Decode records as the walker would; rows get header ts/pid/tid/source where absent."""
    diagnostics = diagnostics or Diagnostics()
    ctx = decoders.DecodeContext(source=source, diagnostics=diagnostics,
                                 providers=list(providers or []))
    rows = []
    for r in records:
        d = decoder_for(r)
        if d is None:
            continue
        for row in d(r, ctx):
            row.setdefault("ts_ns", r.ts_ns)
            if row.get("pid") is None and r.pid is not None:
                row["pid"] = r.pid
            if row.get("tid") is None and r.tid is not None:
                row["tid"] = r.tid
            row.setdefault("cpu", r.cpu)
            row.setdefault("source", source)
            rows.append(row)
    if not rows:
        from fpreplay.schema import empty_events
        return empty_events()
    df = pl.DataFrame(rows, infer_schema_length=None)
    return conform_events(df).sort("ts_ns", maintain_order=True)


_CACHE: dict = {}


def decode_real(path: Path, providers=None) -> pl.DataFrame:
    """A real trace decoded through the oracle walker; cached per path for the session."""
    key = (str(path), tuple(providers or []))
    if key not in _CACHE:
        _CACHE[key] = decode_records(oracle_records(path), source=Path(path).name,
                                     providers=providers)
    return _CACHE[key]
