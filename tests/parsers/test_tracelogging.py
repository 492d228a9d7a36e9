"""TraceLogging / EventSource self-describing events: metadata, every in-type, instrumentation
names, provider selection by name-hashed GUID; on real fixtures and on events we encode."""

from __future__ import annotations

import uuid

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fpreplay.diagnostics import Diagnostics
from fpreplay.parsers.etl import decoders as D
from fpreplay.parsers.etl.decoders import tracelogging as T
from fpreplay.parsers.etl.decoders.tracelogging import (
    COUNT_CONST, COUNT_VAR, TlEvent, TlField, build_metadata, decode_payload, encode_payload,
    parse_metadata, provider_guid, provider_traits,
)
from fpreplay.parsers.etl.record import EtlRecord
from test_decoders_support import decode_real, oracle_records


# --- provider name -> GUID --------------------------------------------------------------------

@pytest.mark.parametrize("name,guid", [
    # pairs PerfView logged when it enabled EventSources by name (perfview_net...LogFile.txt)
    ("DotNet", "319dc449-ada5-50f7-428e-957db6791668"),
    ("Microsoft-AspNetCore-Hosting", "9e620d2a-55d4-5ade-deb7-c26046d245a8"),
    ("Microsoft.Tasks.Nuget", "b734069e-103c-5376-2080-4f009207881a"),
    ("Microsoft-AdoNet-SystemData", "6a4dfe53-eb50-5332-8473-7b7e10a94fd1"),
    ("mysource", "a61ea624-4944-55fc-c2a8-37838829438d"),     # case does not matter
])
def test_provider_guid_known_pairs(name, guid):
    assert str(provider_guid(name)) == guid


def test_provider_guid_matches_a_real_trace(real):
    recs = [r for r in oracle_records(real("format_only/perfview_SelfDescribingSingleEvent.etl"))
            if r.header_kind == "event_header" and r.ext]
    assert len(recs) == 1
    traits = dict(recs[0].ext)[12]
    assert b"MySource" in traits
    assert recs[0].provider == provider_guid("MySource")


# --- real fixtures ----------------------------------------------------------------------------

def _tl_records(path):
    return [r for r in oracle_records(path)
            if r.header_kind == "event_header" and r.ext and 11 in dict(r.ext)]


def test_real_struct_event_decodes(real):
    (r,) = _tl_records(real("format_only/perfview_SelfDescribingSingleEvent.etl"))
    ev = parse_metadata(dict(r.ext)[11])
    assert ev.name == "TestEvent"
    assert decode_payload(ev, r.payload, r.pointer_size) == ({"a": {"b": "Hello",
                                                                    "c": "World!"}}, None)


def test_real_eventsource_primitive_types(real):
    recs = _tl_records(real("format_only/perfview_primitive-types.etl"))
    assert len(recs) == 5
    names = []
    for r in recs:
        ev = parse_metadata(dict(r.ext)[11])
        values, problem = decode_payload(ev, r.payload, r.pointer_size)
        assert problem is None
        names.append(values["string_type"])
        assert values["uint16_type"] * 2 == values["uint32_type"]
        assert values["int16_type"] == -values["uint16_type"]
        assert isinstance(values["boolean_type"], bool)
        uuid.UUID(values["guid_type"])
        assert values["system_time_type"].startswith("2021-09-09T14:59:")
    assert names == ["Mercury", "Venus", "Earth", "Mars", "Jupiter"]


def test_real_ebpf_kernel_tracelogging_named_by_provider(real):
    ev = decode_real(real("format_only/ebpf_ebpforwindows.etl"))
    assert ev.height == 13_841          # every TraceLogging record of the file, one row each
    assert set(ev["kind"]) == {"other"}
    assert ev.filter(pl.col("event_name") == "EbpfForWindowsProvider/EbpfGenericMessage").height


# --- every in-type, arrays, structs: encode -> decode -------------------------------------------

def _f(name, in_type, **kw):
    return TlField(name=name, in_type=in_type, **kw)


ALL_TYPES = TlEvent("AllTypes", [
    _f("u16s", 1), _f("a8s", 2), _f("i8", 3), _f("u8", 4), _f("i16", 5), _f("u16", 6),
    _f("i32", 7), _f("u32", 8), _f("i64", 9), _f("u64", 10), _f("f32", 11), _f("f64", 12),
    _f("b32", 13), _f("bin", 14), _f("guid", 15), _f("ptr", 16), _f("ft", 17), _f("st", 18),
    _f("sid", 19), _f("h32", 20), _f("h64", 21), _f("cs", 22), _f("cas", 23),
    _f("s", 24, out_type=2, members=[_f("x", 8), _f("y", 1)]), _f("cbin", 25),
    _f("arr", 8, count=COUNT_VAR), _f("carr", 6, count=COUNT_CONST, const_count=3),
    _f("sarr", 1, count=COUNT_VAR), _f("bool", 4, out_type=3),
])
ALL_VALUES = {
    "u16s": "wide ü", "a8s": "narrow", "i8": -5, "u8": 250, "i16": -300, "u16": 60000,
    "i32": -70000, "u32": 4_000_000_000, "i64": -(2**40), "u64": 2**63 + 5, "f32": 1.5,
    "f64": -2.25, "b32": True, "bin": b"\x00\x01\xff", "guid": "544d4c9d-942c-46d5-bf50-df5cd9524a50",
    "ptr": 0xFFFFFA8012345678, "ft": 132756731757990000, "st": "2021-09-09T14:59:35.799",
    "sid": "S-1-5-21-1-2-3-500", "h32": 0xC000009A, "h64": 0xDEADBEEF00, "cs": "counted",
    "cas": "counted ansi", "s": {"x": 7, "y": "inner"}, "cbin": b"xyz", "arr": [1, 2, 3],
    "carr": [9, 8, 7], "sarr": ["a", "bc"], "bool": True,
}


def test_every_in_type_round_trips():
    meta = build_metadata(ALL_TYPES)
    assert parse_metadata(meta) == ALL_TYPES
    values, problem = decode_payload(parse_metadata(meta), encode_payload(ALL_TYPES, ALL_VALUES),
                                     8)
    assert problem is None
    assert values == ALL_VALUES


def test_pointer_width_follows_the_record():
    ev = TlEvent("P", [_f("p", 16), _f("after", 8)])
    values, _ = decode_payload(ev, encode_payload(ev, {"p": 0x1234, "after": 9}, 4), 4)
    assert values == {"p": 0x1234, "after": 9}


@given(st.lists(st.integers(0, 2**32 - 1), max_size=20), st.text(max_size=30),
       st.binary(max_size=40))
def test_arrays_strings_binary_property(ints, text, blob):
    ev = TlEvent("Prop", [_f("ints", 8, count=COUNT_VAR), _f("text", 1), _f("blob", 14),
                          _f("tail", 10)])
    vals = {"ints": ints, "text": text.replace("\0", ""), "blob": blob, "tail": 42}
    assert decode_payload(ev, encode_payload(ev, vals), 8) == (vals, None)


def test_damaged_payload_keeps_what_was_read():
    ev = TlEvent("Cut", [_f("a", 8), _f("b", 10)])
    values, problem = decode_payload(ev, (5).to_bytes(4, "little") + b"\x01\x02", 8)
    assert values == {"a": 5} and "b" in problem


# --- the decoder: instrumentation names, fields, --provider -------------------------------------

def tl_record(provider: str, name: str, fields: list[TlField], values: dict,
              traits: bool = True) -> EtlRecord:
    ev = TlEvent(name, fields)
    ext = [(11, build_metadata(ev))]
    if traits:
        ext.insert(0, (12, provider_traits(provider)))
    return EtlRecord(header_kind="event_header", header_type=0x13, pointer_size=8, ts_raw=0,
                     ts_ns=5, cpu=0, pid=4, tid=8, provider=provider_guid(provider), group=None,
                     opcode=0, event_id=0, version=0, level=4, task=0, keyword=0, flags=1,
                     ext=ext, payload=encode_payload(ev, values), file_offset=128)


INSTR_FIELDS = [_f("Irp", 10, out_type=4), _f("Request", 10), _f("Queue", 2), _f("Device", 1),
                _f("Major", 4), _f("Minor", 4), _f("IrpFlags", 20), _f("Status", 8),
                _f("Bytes", 10), _f("Offset", 10)]
INSTR_VALUES = {"Irp": 0xFFFFFA8000001000, "Request": 0x7FF0, "Queue": "0x5a5a",
                "Device": "mydrv", "Major": 3, "Minor": 0, "IrpFlags": 0x20043,
                "Status": 0xC000009A, "Bytes": 4096, "Offset": 8192}


@pytest.mark.parametrize("name,kind", [
    ("IrpDispatch", "irp_dispatch"), ("irpcomplete", "irp_complete"),
    ("REQUESTALLOCFAILED", "request_alloc_failed"),
    ("RequestResourcesFailed", "request_resources_failed"),
    ("ReservedRequestUsed", "reserved_request_used"),
    ("ForwardProgressRefused", "fp_policy_refused"), ("QueueStart", "queue_start"),
    ("QueueStop", "queue_stop"), ("QueueStopPurge", "queue_stop_purge"),
    ("QueuePurge", "queue_purge"), ("QueueDrain", "queue_drain"),
    ("MemoryPressure", "memory_pressure"),
])
def test_instrumentation_names_become_kinds(name, kind):
    ctx = D.DecodeContext(source="t.etl", diagnostics=Diagnostics())
    (row,) = D.TRACELOGGING(tl_record("AnyDriver", name, INSTR_FIELDS, INSTR_VALUES), ctx)
    assert row["kind"] == kind and row["event_name"] == f"AnyDriver/{name}"
    assert row["irp"] == 0xFFFFFA8000001000 and row["request"] == 0x7FF0
    assert (row["queue"], row["device"], row["major"], row["minor"]) == ("0x5a5a", "mydrv", 3, 0)
    assert row["irp_flags"] == 0x43 and row["status"] == 0xC000009A
    assert (row["bytes"], row["offset"]) == (4096, 8192)


def test_field_names_are_case_insensitive_and_numbers_become_handles():
    fields = [_f("irp", 16), _f("QUEUE", 10), _f("device", 8)]
    ctx = D.DecodeContext(source="t.etl", diagnostics=Diagnostics())
    (row,) = D.TRACELOGGING(tl_record("P", "IrpDispatch", fields,
                                      {"irp": 0x10, "QUEUE": 0xABC, "device": 7}), ctx)
    assert (row["irp"], row["queue"], row["device"]) == (0x10, "0xabc", "0x7")


def test_provider_selection_by_name():
    rec = tl_record("Contoso-Storage-Driver", "SomethingElse", [_f("Irp", 10)], {"Irp": 0x44},
                    traits=False)
    plain = D.DecodeContext(source="t.etl", diagnostics=Diagnostics())
    (row,) = D.TRACELOGGING(rec, plain)
    assert row["kind"] == "other" and "irp" not in row      # not selected: name only
    assert row["event_name"].startswith(str(provider_guid("Contoso-Storage-Driver")))
    picked = D.DecodeContext(source="t.etl", diagnostics=Diagnostics(),
                             providers=["contoso-storage-driver"])
    (row,) = D.TRACELOGGING(rec, picked)
    assert row["kind"] == "other" and row["irp"] == 0x44     # selected through its hashed GUID


def test_bad_metadata_is_warned_not_raised():
    rec = tl_record("P", "IrpDispatch", [_f("Irp", 10)], {"Irp": 1})
    rec.ext = [(11, b"\x09\x00\x00Trunc")]       # name never terminated
    ctx = D.DecodeContext(source="t.etl", diagnostics=Diagnostics())
    assert D.TRACELOGGING(rec, ctx) == []
    assert ctx.diagnostics.counters["tracelogging_bad_metadata"] == 1
    assert "byte 128" in ctx.diagnostics.warnings[0]


def test_metadata_is_parsed_once_per_distinct_blob():
    ctx = D.DecodeContext(source="t.etl", diagnostics=Diagnostics())
    for i in range(3):
        D.TRACELOGGING(tl_record("P", "IrpDispatch", [_f("Irp", 10)], {"Irp": i}), ctx)
    assert len(ctx.state["tl_metadata"]) == 1
    assert T.INSTRUMENTATION_KINDS["irpdispatch"] == "irp_dispatch"


@given(st.binary(max_size=60), st.binary(max_size=60))
def test_any_metadata_and_payload_never_raise(meta, payload):
    rec = tl_record("P", "IrpDispatch", [_f("Irp", 10)], {"Irp": 1})
    rec.ext = [(11, meta)]
    rec.payload = payload
    ctx = D.DecodeContext(source="t.etl", diagnostics=Diagnostics(), providers=["P"])
    rows = D.TRACELOGGING(rec, ctx)
    assert rows or ctx.diagnostics.counters["tracelogging_bad_metadata"] == 1
