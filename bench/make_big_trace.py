"""Build a ~1 GB .etl by repeating the data buffers of a real trace (bench/out/, not committed).

Each repetition is shifted in time by the span of the original trace, so the result reads like
one long capture: per-CPU buffers keep their interleaving and every CPU's clock keeps rising.
Buffers are stored decompressed (the timestamps are patched in place), which makes the file
hold more records per byte than the compressed original: a harder test of the reader.

    python3 bench/make_big_trace.py [--size-mb 1024] [--source PATH] [-o bench/out/big.etl]
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl.headers import KINDS, PREFIX_WORDS, TS
from fpreplay.parsers.etl.stream import iter_buffers

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "traces" / "real" / "etl" / "net.4.5.2.x64.etl.zip"


def _timestamp_offsets(events: bytes, start: int, end: int) -> list[int]:
    """Offsets of every record's raw timestamp in one buffer's event bytes."""
    out, off = [], start
    while off + 8 <= end:
        w0, type_marker, w2, _ = PREFIX_WORDS.unpack_from(events, off)
        kind = KINDS[type_marker]
        if kind.ts_at is not None:
            size = kind.size(w0, w2, type_marker)
            out.append(off + kind.ts_at)
        elif kind.name == "wpp":
            size = w0            # WPP timestamps sit behind optional fields: left as they are
        else:
            break
        if size < 8 or off + size > end:
            break
        off += (size + 7) & ~7
    return out


def _decompressed(data: bytes) -> bytes:
    """The buffer as an uncompressed buffer: header (flag 0x40 cleared) + events."""
    head = L.WMI_BUFFER_HEADER.parse(data[:L.BUFFER_HEADER_SIZE])
    size, filled, flag = head.BufferSize, head.FilledBytes, head.BufferFlag
    if not flag & L.BUFFER_FLAG_COMPRESSED:
        return data[:size]
    from pyfwnt import lzxpress_decompress

    events = lzxpress_decompress(data[L.BUFFER_HEADER_SIZE:], filled - L.BUFFER_HEADER_SIZE)
    body = events + b"\xff" * (-len(events) % 8)
    head = bytearray(data[:L.BUFFER_HEADER_SIZE])
    total = L.BUFFER_HEADER_SIZE + len(body)
    struct.pack_into("<I", head, L.offset_of(L.WMI_BUFFER_HEADER, "BufferSize"), total)
    struct.pack_into("<H", head, L.offset_of(L.WMI_BUFFER_HEADER, "BufferFlag"),
                     flag & ~L.BUFFER_FLAG_COMPRESSED)
    return bytes(head) + body


def build(source: Path, out: Path, size_mb: int) -> tuple[int, int]:
    buffers = [data for _, _, data in iter_buffers(source, Diagnostics())]
    header, data_buffers = buffers[0], [bytearray(_decompressed(b)) for b in buffers[1:]]
    patches, first, last = [], None, None
    for buf in data_buffers:
        filled = L.WMI_BUFFER_HEADER.parse(bytes(buf[:L.BUFFER_HEADER_SIZE])).FilledBytes
        offs = _timestamp_offsets(buf, L.BUFFER_HEADER_SIZE, min(filled, len(buf)))
        patches.append(offs)
        for o in offs:
            t = TS.unpack_from(buf, o)[0]
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
    span = (last - first) + 1
    per_copy = sum(len(b) for b in data_buffers)
    copies = max(1, (size_mb << 20) // per_copy)
    out.parent.mkdir(parents=True, exist_ok=True)
    hdr = bytearray(header)
    # BuffersWritten in the logfile header, so the reader does not report the file as cut.
    at = L.BUFFER_HEADER_SIZE + L.SYSTEM_TRACE_HEADER.sizeof() \
        + L.offset_of(L.TRACE_LOGFILE_HEADER64, "BuffersWritten")
    struct.pack_into("<I", hdr, at, 1 + copies * len(data_buffers))
    with open(out, "wb") as f:
        f.write(hdr)
        for k in range(copies):
            shift = k * span
            for buf, offs in zip(data_buffers, patches):
                if k:
                    chunk = bytearray(buf)
                    for o in offs:
                        TS.pack_into(chunk, o, TS.unpack_from(buf, o)[0] + shift)
                    f.write(chunk)
                else:
                    f.write(buf)
    return copies, out.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "bench" / "out" / "big.etl")
    args = ap.parse_args()
    if not args.source.exists():
        sys.exit(f"source trace {args.source} not found")
    copies, size = build(args.source, args.output, args.size_mb)
    print(f"{args.output}: {size / 2**20:.0f} MiB, {copies} copies of {args.source.name}")


if __name__ == "__main__":
    main()
