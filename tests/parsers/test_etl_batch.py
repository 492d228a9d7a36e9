"""The reader's batch decoding gives exactly what the per-record decoders give.

Kernel IRP events are decoded a flush at a time from their fixed bytes (a decoder's `columns`
twin of its `fields`), TraceLogging events by a plan compiled per metadata blob; every other
record, and any record those paths cannot take, goes through the per-record decoders. These
tests hold the batch paths to the per-record ones: on real and synthesized traces (whole event
tables, warnings and counters), and decoder by decoder on random payloads.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fpreplay.parsers.api import ReadOptions, read_inputs
from fpreplay.parsers.etl.plans import Plans
from fpreplay.parsers.etl.decoders import KERNEL, tracelogging as TL
from fpreplay.parsers.etl.decoders.layouts import fixed
from fpreplay.parsers.etl.decoders.tl_compiled import PayloadDamage, compile_columns
from fpreplay.parsers.etl.record import EtlRecord
from fpreplay.schema import EVENT_COLUMNS

from conftest import SAMPLES, real_trace


def _read_per_record(path, monkeypatch, options=None):
    """read_inputs with the batch paths turned off: every record decoded one by one."""
    with monkeypatch.context() as m:
        def no_plan(self, key, dec, htype, version_word):
            self.kernel[key] = None
        m.setattr(Plans, "kernel_plan", no_plan)
        m.setattr(Plans, "tl_batch", lambda self, *a: False)
        m.setattr(Plans, "tl_many", lambda self, big, offs, *a: (
            np.ones(len(offs), dtype=bool), np.zeros(len(offs), dtype=bool)))
        return read_inputs([path], options)


def _same_read(path, monkeypatch, options=None):
    batch = read_inputs([path], options)
    single = _read_per_record(path, monkeypatch, options)
    assert batch.records == single.records
    assert batch.diagnostics.warnings == single.diagnostics.warnings
    assert dict(batch.diagnostics.counters) == dict(single.diagnostics.counters)
    assert_frame_equal(batch.events, single.events)
    return batch


@pytest.mark.parametrize("sample", ["a-paging-storm", "c-purge-during-incident"])
def test_synthesized_trace_batch_equals_per_record(sample, monkeypatch):
    read = _same_read(SAMPLES / sample / "trace.etl", monkeypatch)
    kinds = set(read.events["kind"].unique().to_list())
    assert {"irp_dispatch", "irp_complete"} <= kinds      # both paths really ran


def test_provider_selection_batch_equals_per_record(monkeypatch):
    _same_read(SAMPLES / "a-paging-storm" / "trace.etl", monkeypatch,
               ReadOptions(providers=["Contoso.StorDrv"]))


@pytest.mark.parametrize("relative", ["etl/net.4.5.2.x64.etl.zip", "etl/filtrace_diskio.etl",
                                      "format_only/ebpf_ebpforwindows.etl",
                                      "format_only/perfview_primitive-types.etl"])
def test_real_trace_batch_equals_per_record(relative, monkeypatch):
    _same_read(real_trace(relative), monkeypatch)


def _random_value(rng: random.Random, code: str) -> int:
    size = struct.calcsize("<" + code)
    if code.islower():
        return rng.choice([0, -1, 1, rng.randrange(-(1 << (8 * size - 1)), 1 << (8 * size - 1))])
    return rng.choice([0, 1, rng.randrange(1 << (8 * size))])


@pytest.mark.parametrize("key", sorted(k for k, d in KERNEL.items() if d.columns is not None))
def test_kernel_columns_twin_matches_fields(key):
    """Every decoder's `columns` gives, over a frame, the rows its `fields` gives one by one."""
    dec = KERNEL[key]
    rng = random.Random(hash(key) & 0xFFFF)
    for psize in (4, 8):
        for version in sorted({v for v, _ in dec.versions}):
            st, names = dec.layout_for(version, psize)
            rows = [dict(zip(names, (_random_value(rng, c) for c in st.format[1:])))
                    for _ in range(40)]
            expected = []
            for values in rows:
                rec = EtlRecord("system", 2, psize, 0, None, 0, 1, 2, None, key[0], key[1],
                                None, version, None, None, None, 0, None,
                                st.pack(*values.values()), 0)
                expected.append(dec(rec, None)[0])
            frame = pl.DataFrame({f"f_{n}": [r[n] for r in rows] for n in names},
                                 schema={f"f_{n}": pl.Int64 if c.islower() else pl.UInt64
                                         for n, c in zip(names, st.format[1:])})
            out = dec.columns({n: pl.col(f"f_{n}") for n in names})
            if out.get("irp") is not None:
                out["irp"] = pl.when(out["irp"] != 0).then(out["irp"])
            got = frame.select([(v if isinstance(v, pl.Expr) else pl.lit(v))
                                .cast(EVENT_COLUMNS[k], strict=False).alias(k)
                                for k, v in out.items()]).to_dicts()
            for want, have in zip(expected, got):
                want = {k: v for k, v in want.items() if k not in ("kind", "event_name")}
                assert set(want) == set(have), (key, version)
                assert want == have, (key, version, psize)


_TL_TYPES = [(TL.IN_INT8, 0), (TL.IN_UINT8, 0), (TL.IN_INT16, 0), (TL.IN_UINT16, 0),
             (TL.IN_INT32, 0), (TL.IN_UINT32, 0), (TL.IN_INT64, 0), (TL.IN_UINT64, 0),
             (TL.IN_BOOL32, 0), (TL.IN_HEXINT32, 0), (TL.IN_HEXINT64, 0), (TL.IN_POINTER, 0),
             (TL.IN_UNICODESTRING, 0), (TL.IN_ANSISTRING, 0), (TL.IN_UINT32, TL.OUT_BOOLEAN),
             (TL.IN_UINT64, TL.OUT_HEX)]
_TL_NAMES = ["Irp", "Request", "Queue", "Device", "Major", "Minor", "IrpFlags", "Status",
             "Bytes", "Offset", "Other"]


def _tl_value(rng: random.Random, f: TL.TlField, psize: int):
    if f.in_type in (TL.IN_UNICODESTRING, TL.IN_ANSISTRING):
        return rng.choice(["q0", "0x1f", " 12 ", "zz", "", "dév"])
    if f.in_type == TL.IN_BOOL32:
        return rng.choice([True, False])
    if f.in_type == TL.IN_POINTER:
        return rng.randrange(1 << (8 * psize))
    st = TL._FIXED[f.in_type]
    return _random_value(rng, st.format[-1])


def test_compiled_tracelogging_columns_match_reference():
    """Random instrumentation events (types, order, damage): the compiled plan gives what
    decode_payload + instrumentation_columns give, or declines a damaged payload."""
    rng = random.Random(7)
    for _ in range(400):
        fields = [TL.TlField(name, *rng.choice(_TL_TYPES))
                  for name in rng.sample(_TL_NAMES, rng.randint(1, 6))]
        event = TL.TlEvent("IrpDispatch", fields)
        for psize in (4, 8):
            values = {f.name: _tl_value(rng, f, psize) for f in fields}
            payload = TL.encode_payload(event, values, psize)
            if rng.random() < 0.25:
                payload = payload[:rng.randrange(len(payload) + 1)]
            decoded, problem = TL.decode_payload(event, payload, psize)
            names, decode = compile_columns(event, psize)
            try:
                got = {k: v for k, v in zip(names, decode(payload)) if v is not None}
            except (PayloadDamage, struct.error):
                assert problem is not None
                continue
            assert problem is None
            assert got == TL.instrumentation_columns(decoded)


def test_compiled_tracelogging_declines_what_it_does_not_read():
    array = TL.TlField("Irp", TL.IN_UINT64, count=TL.COUNT_VAR)
    twice = [TL.TlField("Irp", TL.IN_UINT64), TL.TlField("IRP", TL.IN_UINT64)]
    real = [TL.TlField("Bytes", 12)]                            # a double
    for fields in ([array], twice, real):
        assert compile_columns(TL.TlEvent("IrpDispatch", fields), 8) is None
