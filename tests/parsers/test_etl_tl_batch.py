"""TraceLogging events decoded many at a time (parsers/etl/tl_batch.py) give exactly what the
per-record decoders give: the same event tables, warnings and counters, on every real .etl, the
samples, and synthesized TraceLogging that goes out of its way to be awkward (ANSI and UTF-16
strings of odd lengths, strings longer than the numpy gather, truncated payloads, damaged and
long extended-item chains, unreadable metadata, 32-bit headers, events whose fields nobody
asked for).
"""

from __future__ import annotations

import random
import uuid

import numpy as np
import pytest
from polars.testing import assert_frame_equal

from fpreplay.parsers.api import ReadOptions, read_inputs
from fpreplay.parsers.etl import layouts as L
from fpreplay.parsers.etl import tl_batch
from fpreplay.parsers.etl.decoders import tracelogging as TL
from fpreplay.parsers.etl.plans import Plans

from conftest import REAL, SAMPLES

T0 = 10**7


def _read(path, options=None, batched=True):
    """read_inputs, with the batch paths turned off when not `batched` (every TraceLogging
    event then takes the per-record path, compiled plan or reference decoder, and every kernel
    event its decoder), and how many TraceLogging records the batch decoded."""
    decoded = [0]
    real_head = tl_batch.head_columns

    def counting(big, offs, keys):
        decoded[0] += len(offs)
        return real_head(big, offs, keys)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(tl_batch, "head_columns", counting)
        if not batched:
            def no_plan(self, key, dec, htype, version_word):
                self.kernel[key] = None
            m.setattr(Plans, "kernel_plan", no_plan)
            m.setattr(Plans, "tl_many", lambda self, big, offs, *a: (
                np.ones(len(offs), bool), np.zeros(len(offs), bool)))
        return read_inputs([path], options), decoded[0]


def _same(path, options=None) -> int:
    batch, taken = _read(path, options)
    single, none = _read(path, options, batched=False)
    assert none == 0
    assert batch.records == single.records
    assert batch.diagnostics.warnings == single.diagnostics.warnings
    assert dict(batch.diagnostics.counters) == dict(single.diagnostics.counters)
    assert_frame_equal(batch.events, single.events)
    return taken


_REAL = sorted(str(p.relative_to(REAL)) for p in REAL.rglob("*")
               if p.name.endswith((".etl", ".etl.zip"))) if REAL.exists() else []


_ALL = [False, True]


@pytest.mark.parametrize("all_records", _ALL, ids=["events", "all"])
@pytest.mark.parametrize("relative", _REAL or ["(no real traces)"])
def test_real_traces_read_the_same_batched(relative, all_records):
    if not _REAL:
        pytest.skip(f"real traces not found under {REAL}")
    _same(REAL / relative, ReadOptions(all_records=all_records))


@pytest.mark.parametrize("all_records", _ALL, ids=["events", "all"])
@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir()
                                          if (p / "trace.etl").exists()))
def test_samples_read_the_same_batched(sample, all_records):
    taken = _same(SAMPLES / sample / "trace.etl", ReadOptions(all_records=all_records))
    assert taken > 0                       # the driver's events really went the batch way


# --- synthesized TraceLogging ------------------------------------------------------------------
_TYPES = [(TL.IN_INT8, 0), (TL.IN_UINT8, 0), (TL.IN_INT16, 0), (TL.IN_UINT16, 0),
          (TL.IN_INT32, 0), (TL.IN_UINT32, 0), (TL.IN_INT64, 0), (TL.IN_UINT64, 0),
          (TL.IN_BOOL32, 0), (TL.IN_HEXINT32, 0), (TL.IN_HEXINT64, 0), (TL.IN_POINTER, 0),
          (TL.IN_UNICODESTRING, 0), (TL.IN_ANSISTRING, 0), (TL.IN_ANSISTRING, 0),
          (TL.IN_UNICODESTRING, 0), (TL.IN_UINT32, TL.OUT_BOOLEAN), (TL.IN_UINT64, TL.OUT_HEX)]
_NAMES = ["Irp", "Request", "Queue", "Device", "Major", "Minor", "IrpFlags", "Status", "Bytes",
          "Offset", "Other"]
_EVENTS = ["IrpDispatch", "IrpComplete", "RequestAllocFailed", "SomethingElse"]
_STRINGS = ["", "q", "q0", "0x1f", " 12 ", "zz", "dév", "\u0100\u0101x", "Ā", "x" * 300,
            "\\Device\\Stor0", "0X7", "-3"]


def _value(rng, f, psize):
    if f.in_type in (TL.IN_UNICODESTRING, TL.IN_ANSISTRING):
        return rng.choice(_STRINGS)
    if f.in_type == TL.IN_BOOL32:
        return rng.choice([True, False])
    if f.in_type == TL.IN_POINTER:
        return rng.choice([0, 1, rng.randrange(1 << (8 * psize))])
    code = TL._FIXED[f.in_type].format[-1]
    bits = 8 * TL._FIXED[f.in_type].size
    if code.islower():
        return rng.choice([0, -1, 1, rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1))])
    return rng.choice([0, 1, (1 << bits) - 1, rng.randrange(1 << bits)])


def _item(ext_type: int, data: bytes, more: bool, size: int | None = None) -> bytes:
    item_size = (8 + len(data) + 7) & ~7 if size is None else size
    return L.EXTENDED_ITEM_HEADER.build(dict(ItemSize=item_size, ExtType=ext_type,
                                             Linkage=1 if more else 0, DataSize=len(data))) \
        + data + b"\0" * max(0, item_size - 8 - len(data))


def _chain(rng, meta: bytes, traits: bytes) -> bytes:
    """Mostly the plain chain TraceLoggingWrite writes; sometimes a per-event item, a chain too
    long for the numpy walk, no metadata, or damage."""
    roll = rng.random()
    if roll < 0.6:
        return _item(L.EXT_TYPE_PROV_TRAITS, traits, True) \
            + _item(L.EXT_TYPE_EVENT_SCHEMA_TL, meta, False)
    if roll < 0.68:
        return _item(L.EXT_TYPE_EVENT_SCHEMA_TL, meta, False)
    if roll < 0.76:
        return _item(L.EXT_TYPE_RELATED_ACTIVITYID, uuid.UUID(int=rng.getrandbits(128)).bytes,
                     True) + _item(L.EXT_TYPE_PROV_TRAITS, traits, True) \
            + _item(L.EXT_TYPE_EVENT_SCHEMA_TL, meta, False)
    if roll < 0.82:
        return b"".join(_item(L.EXT_TYPE_RELATED_ACTIVITYID, bytes(16), True)
                        for _ in range(4)) + _item(L.EXT_TYPE_EVENT_SCHEMA_TL, meta, False)
    if roll < 0.86:
        return _item(L.EXT_TYPE_RELATED_ACTIVITYID, bytes(16), False)
    if roll < 0.9:
        return _item(L.EXT_TYPE_EVENT_SCHEMA_TL, meta, False, size=4)
    if roll < 0.94:
        return _item(L.EXT_TYPE_EVENT_SCHEMA_TL, meta, False, size=0x7FF8)
    if roll < 0.97:
        return _item(L.EXT_TYPE_EVENT_SCHEMA_TL, b"\x05\x00\x00", False)     # unreadable
    return _item(L.EXT_TYPE_PROV_TRAITS, traits, True)      # linked, nothing after it


def _record(rng, ts, event, provider: str, htype: int) -> bytes:
    psize = 4 if htype == L.HT_EVENT_HEADER32 else 8
    payload = TL.encode_payload(event, {f.name: _value(rng, f, psize) for f in event.fields},
                                psize)
    if rng.random() < 0.12:
        payload = payload[:rng.randrange(len(payload) + 1)]           # truncated
    ext = _chain(rng, TL.build_metadata(event), TL.provider_traits(provider))
    head = L.EVENT_HEADER.build(dict(
        Size=L.EVENT_HEADER.sizeof() + len(ext) + len(payload), HeaderType=htype,
        MarkerFlags=L.MARKER_TRACE_HEADER,
        Flags=L.EVENT_HEADER_FLAG_EXTENDED_INFO, EventProperty=0,
        ThreadId=rng.randrange(1 << 32), ProcessId=rng.randrange(1 << 32), TimeStamp=ts,
        ProviderId=TL.provider_guid(provider), Id=0, Version=0, Channel=11, Level=4,
        Opcode=0, Task=0, Keyword=0, KernelTime=0, UserTime=0, ActivityId=uuid.UUID(int=0)))
    return head + ext + payload


def _synthesized(path, seed: int, n: int = 3000) -> None:
    from fpreplay.synth.etlwriter import EtlWriter

    rng = random.Random(seed)
    events = [TL.TlEvent("IrpDispatch", [          # the driver's shape, strings of both kinds
        TL.TlField("Irp", TL.IN_UINT64, TL.OUT_HEX), TL.TlField("Queue", TL.IN_ANSISTRING),
        TL.TlField("Device", TL.IN_UNICODESTRING), TL.TlField("Major", TL.IN_UINT8),
        TL.TlField("Status", TL.IN_UINT32, TL.OUT_NTSTATUS)])]
    for _ in range(12):
        fields = [TL.TlField(name, *rng.choice(_TYPES))
                  for name in rng.sample(_NAMES, rng.randint(1, 7))]
        events.append(TL.TlEvent(rng.choice(_EVENTS), fields))
    with open(path, "wb") as fh:
        w = EtlWriter(fh, start_unix_ns=1_700_000_000 * 10**9, t0_raw=T0, ncpu=2,
                      buffer_size=0x2000)
        for i in range(n):
            htype = L.HT_EVENT_HEADER32 if rng.random() < 0.2 else L.HT_EVENT_HEADER64
            record = _record(rng, T0 + 10 * i, rng.choice(events),
                             rng.choice(["Contoso.StorDrv", "Other.Provider"]), htype)
            if len(record) <= 0x2000 - 0x100:
                w.write(i % 2, T0 + 10 * i, record)
        w.close()


@pytest.mark.parametrize("all_records", _ALL, ids=["events", "all"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthesized_tracelogging_reads_the_same_batched(tmp_path, seed, all_records):
    path = tmp_path / f"tl{seed}.etl"
    _synthesized(path, seed)
    options = ReadOptions(all_records=all_records)
    taken = _same(path, options)
    assert taken > 500
    read, _ = _read(path, options)
    assert read.events["queue"].drop_nulls().len() > 0
    assert read.events["device"].drop_nulls().len() > 0
    assert read.diagnostics.warnings             # the damaged ones were reported, not dropped


def test_synthesized_tracelogging_with_provider_fields_reads_the_same(tmp_path):
    """--provider: every event of the provider has its fields decoded, not only the
    instrumentation names'."""
    path = tmp_path / "tl.etl"
    _synthesized(path, 4, n=1500)
    assert _same(path, ReadOptions(providers=["Other.Provider"])) > 200


def test_small_flushes_read_the_same(tmp_path):
    """Records spread over many small drains (a plan filled from several) read the same."""
    path = tmp_path / "tl.etl"
    _synthesized(path, 5, n=1500)
    assert _same(path, ReadOptions(batch_rows=97)) > 200


def test_distinct_rows_partition_the_rows():
    """The grouping of records by plan key: every row in exactly one group, each group's rows
    equal to its row, as many groups as distinct rows (past the first few the hashed unique
    takes over)."""
    rng = np.random.default_rng(3)
    for kinds in (1, 3, 9, 40):
        table = rng.integers(0, 3, size=(kinds, 37), dtype=np.uint8)
        rows = table[rng.integers(0, kinds, size=500)]
        seen = np.zeros(len(rows), dtype=int)
        groups = list(tl_batch._distinct(rows))
        for row, members in groups:
            seen[members] += 1
            assert (rows[members] == row).all()
        assert (seen == 1).all()
        assert len(groups) == len({r.tobytes() for r in rows})
