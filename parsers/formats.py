"""Recognising an input by its content, and the registry of readers.

A reader is `read(path, options, diagnostics, stats) -> Iterator[pl.DataFrame]`.
Add a format by adding a sniff rule and an entry in READERS; nothing else needs to change.
"""

from __future__ import annotations

import gzip
import importlib
import zipfile
from pathlib import Path

from fpreplay.errors import InputError

# format name -> "module:function" (imported lazily so that one broken reader cannot break others)
READERS: dict[str, str] = {
    "etl": "fpreplay.parsers.etl.reader:read_events",
    "parquet": "fpreplay.parsers.table:read_parquet",
    "ndjson": "fpreplay.parsers.table:read_ndjson",
    "events_csv": "fpreplay.parsers.table:read_csv",
    "ifr": "fpreplay.parsers.text.ifr:read_events",
    "tracefmt": "fpreplay.parsers.text.tracefmt:read_events",
    "tracerpt_csv": "fpreplay.parsers.text.tracerpt:read_csv_events",
    "tracerpt_xml": "fpreplay.parsers.text.tracerpt:read_xml_events",
    "xperf_dumper": "fpreplay.parsers.text.xperf:read_events",
}

# Text sniffers register here: name -> predicate(first_lines: list[str]) -> bool, tried in order.
TEXT_SNIFFERS: list[tuple[str, str]] = [
    ("ifr", "fpreplay.parsers.text.ifr:looks_like"),
    ("tracefmt", "fpreplay.parsers.text.tracefmt:looks_like"),
    ("tracerpt_xml", "fpreplay.parsers.text.tracerpt:looks_like_xml"),
    ("tracerpt_csv", "fpreplay.parsers.text.tracerpt:looks_like_csv"),
    ("xperf_dumper", "fpreplay.parsers.text.xperf:looks_like"),
]

WMI_BUFFER_HEADER_SIZE = 0x48


def _load(spec: str):
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def reader_for(kind: str):
    return _load(READERS[kind])


def zip_member(path: Path, z: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The file a zipped trace stands for: its first .etl member, else its first file."""
    names = [i for i in z.infolist() if not i.is_dir()]
    etl = [i for i in names if i.filename.lower().endswith(".etl")]
    if not (etl or names):
        raise InputError(path, "zip archive holds no file", 0)
    return (etl or names)[0]


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        head = f.read(n)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                return g.read(n)
        except (OSError, EOFError) as e:
            raise InputError(path, f"damaged gzip stream: {e}", 0) from None
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                with z.open(zip_member(path, z)) as m:
                    return m.read(n)
        except zipfile.BadZipFile as e:
            raise InputError(path, f"damaged zip archive: {e}", 0) from None
    return head


def looks_like_etl(head: bytes) -> bool:
    """A WMI_BUFFER_HEADER whose first event is a trace-header-flagged record."""
    if len(head) < WMI_BUFFER_HEADER_SIZE + 4:
        return False
    size = int.from_bytes(head[0:4], "little")
    marker = head[WMI_BUFFER_HEADER_SIZE + 3]
    return size >= WMI_BUFFER_HEADER_SIZE and (marker & 0xC0) == 0xC0


def sniff(path: Path) -> str:
    head = _head(path)
    if not head:
        raise InputError(path, "empty file", 0)
    if head[:4] == b"PAR1":
        return "parquet"
    if looks_like_etl(head):
        return "etl"
    # tracerpt -en Unicode writes UTF-16 with a BOM
    encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip()][:40]
    if lines and lines[0].lstrip().startswith("{") and '"ts_ns"' in lines[0]:
        return "ndjson"
    if lines and "ts_ns" in lines[0] and "kind" in lines[0] and "," in lines[0]:
        return "events_csv"
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text) / max(1, len(text))
    if printable > 0.95:
        for name, spec in TEXT_SNIFFERS:
            try:
                if _load(spec)(lines):
                    return name
            except (ImportError, AttributeError):
                continue
        raise InputError(path, "text in no format fpreplay knows (expected a KMDF in-flight-recorder "
                               "dump, tracefmt output, tracerpt CSV/XML, xperf dumper text or an "
                               "fpreplay event table)", 0)
    raise InputError(path, "not an ETW trace: no WMI_BUFFER_HEADER with a trace header event at "
                           "offset 0", 0)
