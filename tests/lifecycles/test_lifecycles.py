"""IRP lifecycles: the real fixtures' expected counts, and event tables with known lifecycles."""

from __future__ import annotations

import time

import polars as pl
import pytest

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles import build_lifecycles
from fpreplay.schema import IRP_COLUMNS, IRP_EXTENSION_COLUMNS, conform_events

MS = 1_000_000
T0 = 1_700_000_000 * 10**9


def events(*rows: dict) -> pl.DataFrame:
    return conform_events(pl.DataFrame([{**r, "ts_ns": T0 + r["ts_ns"]} for r in rows],
                                       infer_schema_length=None))


def D(ts, irp, name="DiskIo/ReadInit", **kw):
    return {"ts_ns": ts, "kind": "irp_dispatch", "irp": irp, "event_name": name, **kw}


def C(ts, irp, name="DiskIo/Read", **kw):
    return {"ts_ns": ts, "kind": "irp_complete", "irp": irp, "event_name": name, **kw}


def build(*rows):
    diag = Diagnostics()
    return build_lifecycles(events(*rows), diag), diag


# --- the real fixtures (through the project's own .etl reader) ---------------------------------

def _real_lifecycles(path):
    from fpreplay.parsers import read_inputs

    read = read_inputs([path])
    return build_lifecycles(read.events, read.diagnostics), read.diagnostics


def _disk(lc):
    disk = lc.filter(pl.col("major").is_in([3, 4, 9]))
    both = disk.filter(pl.col("complete_ns").is_not_null() & pl.col("arrive_ns").is_not_null())
    return both.height, disk.height - both.height


@pytest.mark.parametrize("name,with_both_ends", [("etl/net.4.5.2.x64.etl.zip", 1231),
                                                 ("etl/net.4.5.2.x86.etl.zip", 2393)])
def test_perfview_traces_disk_lifecycles(real, name, with_both_ends):
    lc, diag = _real_lifecycles(real(name))
    assert _disk(lc) == (with_both_ends, 0)
    assert lc.columns == [*IRP_COLUMNS, *IRP_EXTENSION_COLUMNS]
    # Kernel-File Create IRPs never complete in these captures (no OperationEnd): said so.
    assert any("operation-end" in w for w in diag.warnings)


def test_perfview_x86_service_time_matches_perfview(real):
    lc, _ = _real_lifecycles(real("etl/net.4.5.2.x86.etl.zip"))
    # baseline: "DiskIO/Read ... Irp=0xfffffa83033b3680; ElapsedTimeMSec=10.947"
    row = lc.filter(pl.col("irp") == 0xFFFFFA83033B3680).sort("arrive_ns").row(0, named=True)
    assert round(row["service_ns"] / MS, 3) == 10.947
    assert (row["major"], row["device"], row["actual"], row["paging"]) == (3, "disk0", "ok", True)


def test_filtrace_broken_lifecycles_are_counted_and_reported(real):
    lc, diag = _real_lifecycles(real("etl/filtrace_diskio.etl"))
    assert _disk(lc) == (119, 3)
    assert diag.counters["irp_redispatched"] == 2 and diag.counters["irp_open_at_end"] == 1
    assert any(w.startswith("2 IRP instance(s) were dispatched again") for w in diag.warnings)
    assert any(w.startswith("1 IRP instance(s) were still open at the end") for w in diag.warnings)
    assert (lc["actual"] == "incomplete").sum() == 3


# --- instances ----------------------------------------------------------------------------------

def test_address_reuse_gives_one_row_per_instance():
    lc, diag = build(D(0, 0xA), C(1 * MS, 0xA), D(2 * MS, 0xA), C(5 * MS, 0xA),
                     D(6 * MS, 0xA), C(7 * MS, 0xA))
    assert lc["service_ns"].to_list() == [1 * MS, 3 * MS, 1 * MS]
    assert set(lc["actual"]) == {"ok"} and not diag.warnings


def test_completions_close_in_time_order_whatever_the_input_order():
    rows = [D(0, 0xA), C(1 * MS, 0xA), D(2 * MS, 0xA), C(3 * MS, 0xA)]
    a, _ = build(*rows)
    b, _ = build(*reversed(rows))
    assert a.equals(b)


def test_redispatch_orphan_and_open_at_end_are_counted():
    lc, diag = build(D(0, 0xA), D(1 * MS, 0xA, "DiskIo/WriteInit"), C(2 * MS, 0xA, "DiskIo/Write"),
                     C(3 * MS, 0xB), D(4 * MS, 0xC))
    got = {(r["irp"], r["actual"]): r for r in lc.to_dicts()}
    assert "re-dispatched" in got[(0xA, "incomplete")]["evidence"]
    assert got[(0xA, "ok")]["major"] is None or got[(0xA, "ok")]["service_ns"] == 1 * MS
    orphan = got[(0xB, "ok")]
    assert orphan["arrive_ns"] == orphan["complete_ns"] and orphan["service_ns"] is None
    assert "no dispatch seen" in orphan["evidence"]
    assert "still open" in got[(0xC, "incomplete")]["evidence"]
    assert dict(diag.counters) == {"irp_redispatched": 1, "irp_completion_without_dispatch": 1,
                                   "irp_open_at_end": 1}
    assert len(diag.warnings) == 3


def test_sources_merge_into_one_instance():
    lc, diag = build(D(0, 0xA, "DiskIo/ReadInit", major=3),
                     D(10, 0xA, "DiskIo/DrvMjFnCall", major=3, minor=0),
                     D(20, 0xA, "DiskIo/DrvMjFnCall", major=3, minor=0),   # next driver down
                     C(1 * MS, 0xA, "DiskIo/DrvComplReq"),
                     C(1 * MS + 10, 0xA, "DiskIo/Read", device="disk0", irp_flags=0x43,
                       bytes=4096))
    assert lc.height == 1 and not diag.warnings
    r = lc.row(0, named=True)
    assert (r["device"], r["major"], r["minor"], r["bytes"], r["paging"]) == \
        ("disk0", 3, 0, 4096, True)
    assert r["complete_ns"] == T0 + 1 * MS      # closed at the first completion
    assert r["evidence"] == "ok: DiskIo/ReadInit -> DiskIo/DrvComplReq"


def test_file_system_irp_without_end_does_not_swallow_the_disk_irp():
    lc, diag = build(D(0, 0xA, "Kernel-File/Create", major=0), D(1 * MS, 0xA, major=3),
                     C(2 * MS, 0xA, device="disk0"))
    assert lc.sort("arrive_ns")["actual"].to_list() == ["incomplete", "ok"]
    assert lc.sort("arrive_ns")["major"].to_list() == [0, 3]
    assert diag.counters["irp_address_reused"] == 1


def test_inputs_share_one_timeline_by_absolute_time():
    kernel = events(D(0, 0xA), C(3 * MS, 0xA, device="disk0")).with_columns(source=pl.lit("k"))
    ifr = events(D(1 * MS, 0xA, "IFR/Dispatch", device="0xdev", request=None),
                 {"ts_ns": 2 * MS, "kind": "request_alloc_failed", "irp": 0xA,
                  "event_name": "IFR/Could not create WDFREQUEST"}).with_columns(source=pl.lit("i"))
    lc = build_lifecycles(pl.concat([ifr, kernel]), Diagnostics())
    assert lc.height == 1 and lc["actual"][0] == "alloc_failed"
    assert lc["evidence"][0] == "alloc_failed: IFR/Could not create WDFREQUEST"



def test_file_object_comes_from_the_first_event_that_names_one():
    # The engine flushes a file object's parked IRPs on its IRP_MJ_CLEANUP (edge case 62).
    lc, _ = build(D(0, 0xA, "DiskIo/DrvMjFnCall", major=3, file_object=0),   # 0: names none
                  D(1, 0xA, "FileIo/Read", major=3, file_object=0xF1),
                  D(2, 0xA, "DiskIo/DrvMjFnCall", major=3, file_object=0xF2),
                  C(3, 0xA, "FileIo/OpEnd", status=0),
                  D(4, 0xB, "TL/IrpDispatch"), C(5, 0xB, "TL/IrpComplete", status=0))
    assert dict(zip(lc["irp"], lc["file_object"])) == {0xA: 0xF1, 0xB: None}
    assert lc.schema["file_object"] == pl.UInt64

# --- actual, first match wins --------------------------------------------------------------------

@pytest.mark.parametrize("extra,status,handle,actual", [
    (["reserved_request_used", "fp_policy_refused"], 0, None, "reserved"),
    (["fp_policy_refused"], 0xC0000001, None, "refused"),
    (["request_resources_failed"], 0, None, "alloc_failed"),
    ([], 0xC000009A, None, "alloc_failed"),          # no sign the driver received it
    ([], 0xC000009A, 0x77, "failed"),                # a request existed: the driver failed it
    ([], 0xC0000120, None, "cancelled"),
    ([], 0xC0000184, None, "invalid_state"),
    ([], 0xC0000001, None, "failed"),
    ([], 0x80000005, None, "ok"),                    # a warning status is not an error
    ([], 0, None, "ok"),
])
def test_actual_rules(extra, status, handle, actual):
    rows = [D(0, 0xA, "TL/IrpDispatch", request=handle)]
    rows += [{"ts_ns": 10 + i, "kind": k, "irp": 0xA, "event_name": f"TL/{k}"}
             for i, k in enumerate(extra)]
    rows.append(C(1 * MS, 0xA, "TL/IrpComplete", status=status))
    lc, _ = build(*rows)
    assert lc["actual"].to_list() == [actual]
    assert lc["evidence"][0].startswith(actual + ":")
    served = actual in ("ok", "reserved", "cancelled", "invalid_state", "failed")
    assert (lc["service_ns"][0] == 1 * MS) if served else lc["service_ns"][0] is None


def test_incomplete_and_status_text_in_evidence():
    lc, _ = build(D(0, 0xA, "TL/IrpDispatch"), D(1, 0xB, "TL/IrpDispatch"),
                  C(2, 0xB, "TL/IrpComplete", status=0xC0000001))
    got = dict(zip(lc["irp"], lc["evidence"]))
    assert got[0xA].startswith("incomplete: TL/IrpDispatch")
    assert got[0xB] == "failed: status 0xC0000001 from TL/IrpComplete"


def test_request_only_events_find_their_irp():
    lc, _ = build(D(0, 0xA, "TL/IrpDispatch", request=0x77),
                  {"ts_ns": 5, "kind": "reserved_request_used", "request": 0x77,
                   "event_name": "TL/ReservedRequestUsed"},
                  C(1 * MS, 0xA, "TL/IrpComplete", status=0))
    assert lc["actual"].to_list() == ["reserved"]
    assert lc["evidence"][0] == "reserved: TL/ReservedRequestUsed"


def test_irpless_alloc_failure_tied_to_the_devices_completion():
    fail = {"kind": "request_alloc_failed", "event_name": "IFR/Could not create WDFREQUEST",
            "status": 0xC000009A}
    lc, diag = build(D(0, 0xA, "DiskIo/DrvMjFnCall", major=3),
                     {**fail, "ts_ns": 1 * MS, "device": "0xdev1"},
                     C(1 * MS + 200, 0xA, "DiskIo/DrvComplReq", status=0xC000009A,
                       device="0xdev1", request=0x5),      # a request: not alloc by status
                     {**fail, "ts_ns": 50 * MS, "device": "0xdev2"})   # nothing to tie to
    assert lc["actual"].to_list() == ["alloc_failed"]
    assert "tied by device and time" in lc["evidence"][0]
    assert diag.counters["alloc_failure_without_irp"] == 1


def test_paging_follows_the_frameworks_test():
    lc, _ = build(D(0, 0xA, major=3, irp_flags=0x43), C(1, 0xA),
                  D(2, 0xB, "FileIo/FSControl", major=0x0D, irp_flags=0x2),
                  C(3, 0xB, "FileIo/OpEnd", status=0),
                  D(4, 0xC, major=3), C(5, 0xC))
    assert dict(zip(lc["irp"], lc["paging"])) == {0xA: True, 0xB: False, 0xC: False}


def test_no_irp_events_gives_an_empty_conforming_table():
    lc, _ = build({"ts_ns": 0, "kind": "memory_pressure", "bytes": 1})
    assert lc.height == 0 and lc.columns == [*IRP_COLUMNS, *IRP_EXTENSION_COLUMNS]


def test_a_million_events_in_a_few_seconds():
    n = 500_000                      # IRPs; two events each
    irps = (pl.int_range(0, n, eager=True) % 97).cast(pl.UInt64) + 0xFFFF_FA80_0000_0000
    ts = pl.int_range(0, n, eager=True) * 1_000
    disp = pl.DataFrame({"ts_ns": ts, "kind": "irp_dispatch", "irp": irps,
                         "event_name": "DiskIo/ReadInit", "major": 3})
    comp = pl.DataFrame({"ts_ns": ts + 500, "kind": "irp_complete", "irp": irps,
                         "event_name": "DiskIo/Read", "device": "disk0"})
    ev = conform_events(pl.concat([disp, comp], how="diagonal")).sort("ts_ns")
    start = time.perf_counter()
    lc = build_lifecycles(ev, Diagnostics())
    elapsed = time.perf_counter() - start
    assert lc.height == n and (lc["service_ns"] == 500).all()
    assert elapsed < 20, elapsed


def test_irpless_failure_never_ties_to_another_devices_completion():
    fail = {"kind": "request_alloc_failed", "event_name": "IFR/Could not create WDFREQUEST"}
    lc, diag = build(D(0, 0xA, "TL/IrpDispatch", request=1),
                     {**fail, "ts_ns": 1 * MS, "device": "0xdevX"},
                     C(1 * MS + 10, 0xA, "TL/IrpComplete", status=0xC000009A, device="0xdevY"),
                     D(2 * MS, 0xB, "TL/IrpDispatch", request=2),
                     {**fail, "ts_ns": 3 * MS},                        # names no device
                     C(3 * MS + 10, 0xB, "TL/IrpComplete", status=0xC000009A, device="0xdevZ"))
    assert dict(zip(lc["irp"], lc["actual"])) == {0xA: "failed", 0xB: "alloc_failed"}
    assert diag.counters["alloc_failure_without_irp"] == 1


def test_irpless_failure_never_ties_to_a_major_that_allocates_no_request():
    """A FLUSH_BUFFERS completed with STATUS_INSUFFICIENT_RESOURCES is the driver's own failure:
    a framework message at that moment is about another IRP, never tied to it."""
    fail = {"kind": "request_alloc_failed", "event_name": "IFR/Could not create WDFREQUEST",
            "device": "0xdev1"}
    lc, diag = build(D(0, 0xA, "TL/IrpDispatch", major=9, device="0xdev1"),
                     {**fail, "ts_ns": 1 * MS},
                     C(1 * MS + 10, 0xA, "TL/IrpComplete", status=0xC000009A, device="0xdev1"),
                     D(20 * MS, 0xB, "TL/IrpDispatch", major=0, device="0xdev1"),  # a create
                     {**fail, "ts_ns": 21 * MS},
                     C(21 * MS + 10, 0xB, "TL/IrpComplete", status=0xC000009A, device="0xdev1"))
    got = {r["irp"]: (r["actual"], r["alloc_failure"]) for r in lc.iter_rows(named=True)}
    assert got == {0xA: ("failed", None), 0xB: ("alloc_failed", "request")}
    assert diag.counters["alloc_failure_without_irp"] == 1
    assert diag.counters["insufficient_resources_not_alloc"] == 1
    assert "alloc_failure_inferred" not in diag.counters


def test_fast_io_attempts_and_null_irps_are_not_lifecycles():
    lc, diag = build(D(0, 0xA, "FileIo/Read", major=3),
                     C(1, 0xA, "FileIo/OpEnd", status=0xC01C0004),
                     D(2, 0xA, "FileIo/Read", major=3), C(3, 0xA, "FileIo/OpEnd", status=0),
                     D(4, 0, "DiskIo/DrvMjFnCall"), D(5, 0, "DiskIo/DrvMjFnCall"))
    assert lc["actual"].to_list() == ["ok"] and lc["arrive_ns"][0] == T0 + 2
    assert diag.counters["fast_io_attempts"] == 1 and "fast-I/O" in diag.warnings[0]
    assert "irp_redispatched" not in diag.counters


def test_other_rows_add_queue_and_request_but_never_open_an_instance():
    lc, diag = build(D(0, 0xA, "IFR/Dispatch", device="0xd0"),
                     {"ts_ns": 1, "kind": "other", "irp": 0xA, "request": 0x77, "queue": "0xq1",
                      "event_name": "IFR/Queuing WDFREQUEST"},
                     C(2, 0xA, "DiskIo/DrvComplReq", status=0xC000009A),
                     {"ts_ns": 3, "kind": "other", "irp": 0xB, "event_name": "DiskIo/DrvMjFnRet"})
    assert lc.height == 1 and not diag.warnings
    r = lc.row(0, named=True)
    assert (r["queue"], r["device"], r["actual"]) == ("0xq1", "0xd0", "failed")


# --- property: any set of non-overlapping lifecycles per address comes back exactly ----------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

lifecycle = st.tuples(st.integers(0, 3),                 # address index (heavy reuse)
                      st.integers(1, 10_000),            # gap before the dispatch
                      st.integers(1, 10_000),            # service time
                      st.sampled_from([0, 0xC0000120, 0xC0000184, 0xC0000001, None]))


@given(st.lists(lifecycle, min_size=1, max_size=40))
def test_known_lifecycles_come_back(specs):
    free_at = [0, 0, 0, 0]
    rows, want = [], []
    for addr, gap, service, status in specs:
        irp = 0xFFFF_FA80_0000_1000 + addr * 0x100
        arrive = free_at[addr] + gap
        done = arrive + service
        free_at[addr] = done
        rows.append(D(arrive, irp, "TL/IrpDispatch", device="dev"))
        rows.append(C(done, irp, "TL/IrpComplete", status=status))
        actual = {0xC0000120: "cancelled", 0xC0000184: "invalid_state",
                  0xC0000001: "failed"}.get(status, "ok")
        want.append((irp, T0 + arrive, T0 + done, service, actual))
    lc, diag = build(*rows)
    got = sorted(zip(lc["irp"], lc["arrive_ns"], lc["complete_ns"], lc["service_ns"],
                     lc["actual"]))
    assert got == sorted(want) and not diag.warnings


def test_dispatch_lines_of_two_devices_are_one_irp_going_down_the_stack():
    lc, diag = build(D(0, 0xA, "IFR/Dispatch", device="0xfilter"),
                     D(1, 0xA, "IFR/Dispatch", device="0xfdo"),
                     D(2, 0xA, "IFR/Dispatch", device="0xfdo"),     # same device again: re-sent
                     C(3, 0xA, "IFR/Completing WDFREQUEST", status=0, request=5))
    assert lc.sort("arrive_ns")["actual"].to_list() == ["incomplete", "ok"]
    assert lc.sort("arrive_ns")["device"].to_list() == ["0xfilter", "0xfdo"]
    assert diag.counters["irp_redispatched"] == 1
