"""Shared fixtures. Real traces are read from ../shared/traces/real and never copied here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(os.environ.get("FPREPLAY_REAL_TRACES", ROOT.parent / "shared" / "traces" / "real"))
SAMPLES = ROOT / "traces" / "samples"

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def real_trace(relative: str) -> Path:
    """Path of a real fixture, or skip the test saying why."""
    path = REAL / relative
    if not path.exists():
        pytest.skip(f"real fixture {relative} not found under {REAL} "
                    "(CI has ../shared beside the checkout)")
    return path


@pytest.fixture
def real():
    return real_trace


def etl_parser_tracelogging(path: Path) -> list:
    """Every TraceLogging event the test-only oracle etl-parser decodes, buffer by buffer (it
    cannot decompress, so compressed buffers are decompressed with pyfwnt first)."""
    import pyfwnt
    from etl.etl import ChunkParser
    from etl.event import Event
    from etl.wmi import WmiBufferHeader

    data = path.read_bytes()
    out, off = [], 0
    while off + 0x48 <= len(data):
        head = WmiBufferHeader.parse(data[off:off + 0x48])
        size, filled = head.wnode.buffer_size, head.offset
        body = data[off + 0x48:off + size]
        if head.buffer_flag.ETW_BUFFER_FLAG_COMPRESSED:
            body = pyfwnt.lzxpress_decompress(body, filled - 0x48)
        else:
            body = body[:filled - 0x48]
        if off:
            for chunk in ChunkParser.parse(body):
                if chunk.type == "EventRecord":
                    tl = Event(chunk.value).parse_tracelogging()
                    out.append((tl.get_name(), dict(tl)))
        off += size
    return out


def build_fields(layout, values: dict) -> bytes:
    """A payload built with a construct layout from those of `values` it has fields for."""
    names = {sc.name for sc in layout.subcons}
    return layout.build({k: v for k, v in values.items() if k in names})


def kmdf_tmf(guid) -> str:
    """A KMDF framework (Wdf01000) TMF with two messages under `guid`: 11, FxPkgIo::Dispatch
    (device, devobj, major as text, minor, IRP) and 12, the WDFREQUEST allocation failure."""
    return f"""// PDB:  Wdf01000.pdb
{guid} Wdf01000 // SRC=fxpkgio.cpp MJ= MN=
#typev fxpkgio_cpp400 11 "%0WDFDEVICE 0x%10!p! !devobj 0x%11!p! %12!s!, IRP_MN %13!x!, IRP 0x%14!p!" //   LEVEL=TRACE_LEVEL_VERBOSE FLAGS=TRACINGIO FUNC=FxPkgIo::Dispatch
{{
device, ItemPtr -- 10
devobj, ItemPtr -- 11
major, ItemString -- 12
minor, ItemLong -- 13
irp, ItemPtr -- 14
}}
#typev fxpkgio_cpp421 12 "%0Could not create WDFREQUEST, %10!s!" //   LEVEL=TRACE_LEVEL_ERROR FLAGS=TRACINGIO FUNC=FxPkgIo::DispatchStep2
{{
status, ItemNTSTATUS -- 10
}}
"""


def measured(call):
    """(call(), seconds, peak bytes Python allocated meanwhile): the bound a hostile-input test
    asserts (polars' own allocations are not seen: a refusal must come before polars)."""
    import time
    import tracemalloc

    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, time.perf_counter() - t0, peak
