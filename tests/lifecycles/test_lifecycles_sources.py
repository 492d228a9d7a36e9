"""One IRP seen by several sources is one lifecycle (issue 9 item 5): DiskIo Init, DrvMjFnCall and
the driver's instrumentation dispatch it; at one instant the instrumentation's completion,
DrvComplReq, the DiskIo completion and FileIo/OpEnd complete it, in any order (sources on different
CPUs). A genuinely reused address still opens a new instance."""

from __future__ import annotations

from itertools import permutations

import polars as pl
import pytest

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles import build_lifecycles
from fpreplay.schema import STATUS_CANCELLED, conform_events
from scenario_tables import MS, T0, ev

TICK = 0.0001      # 100 ns, one QPC tick at 10 MHz, in ms

COMPLETIONS = {
    "TL": lambda t, irp, status: ev(t, "irp_complete", irp, event_name="Contoso/IrpComplete",
                                    status=status),
    "DrvComplReq": lambda t, irp, status: ev(t, "irp_complete", irp,
                                             event_name="DiskIo/DrvComplReq"),
    "DiskIo": lambda t, irp, status: ev(t, "irp_complete", irp, event_name="DiskIo/Read",
                                        device="disk0", irp_flags=0x43, bytes=4096),
    "OpEnd": lambda t, irp, status: ev(t, "irp_complete", irp, event_name="FileIo/OpEnd",
                                       status=status),
}


def dispatch(t: float, irp: int) -> list[dict]:
    return [ev(t, "irp_dispatch", irp, event_name="DiskIo/ReadInit", major=3),
            ev(t + TICK, "irp_dispatch", irp, event_name="DiskIo/DrvMjFnCall", major=3, minor=0),
            ev(t + 2 * TICK, "irp_dispatch", irp, event_name="Contoso/IrpDispatch",
               device="stordrv", major=3)]


def one_irp(t: float, done: float, irp: int, order, status: int = 0) -> list[dict]:
    return dispatch(t, irp) + [COMPLETIONS[name](done, irp, status) for name in order]


def build(rows: list[dict]) -> tuple[pl.DataFrame, Diagnostics]:
    diag = Diagnostics()
    lc = build_lifecycles(conform_events(pl.DataFrame(rows, infer_schema_length=None)), diag)
    return lc.sort("arrive_ns"), diag


def broken(diag: Diagnostics) -> dict:
    """The counters of broken lifecycles (re-dispatched, reused, orphans, open at the end)."""
    return {k: v for k, v in diag.counters.items() if k.startswith("irp_")}


def ns(t_ms: float) -> int:
    return ev(t_ms, "x")["ts_ns"]


@pytest.mark.parametrize("order", list(permutations(COMPLETIONS)))
def test_same_instant_completions_from_four_sources_close_one_instance(order):
    lc, diag = build(one_irp(0, 1, 0xA, order, status=STATUS_CANCELLED))
    assert lc.height == 1 and not broken(diag)
    r = lc.row(0, named=True)
    assert (r["device"], r["device_alias"]) == ("stordrv", "disk0")
    assert (r["arrive_ns"], r["complete_ns"], r["service_ns"]) == (T0, ns(1), 1 * MS)
    assert (r["major"], r["status"], r["actual"], r["paging"]) == (3, STATUS_CANCELLED,
                                                                   "cancelled", True)
    assert r["evidence"].endswith(f"from {COMPLETIONS[order[0]](1, 0xA, 0)['event_name']}")


@pytest.mark.parametrize("order", list(permutations(COMPLETIONS)))
@pytest.mark.parametrize("gap", [0, TICK, 1])
def test_an_address_reused_right_after_opens_a_new_instance(order, gap):
    # The second IRP at the same address is dispatched at the completion's tick (after all of
    # them), one tick later, or a millisecond later; its completions come in reverse order.
    rows = one_irp(0, 1, 0xA, order) + one_irp(1 + gap, 3, 0xA, order[::-1], status=0xC0000001)
    lc, diag = build(rows)
    assert not broken(diag)
    got = [(r["arrive_ns"], r["complete_ns"], r["actual"]) for r in lc.iter_rows(named=True)]
    assert got == [(T0, ns(1), "ok"), (ns(1 + gap), ns(3), "failed")]


def test_interleaved_irps_on_other_cpus_keep_their_own_completions():
    # Two IRPs complete at the same instant, their sources interleaved.
    a = one_irp(0, 1, 0xA, ["OpEnd", "TL", "DiskIo", "DrvComplReq"], status=0)
    b = one_irp(0.5, 1, 0xB, ["DiskIo", "OpEnd", "DrvComplReq", "TL"], status=STATUS_CANCELLED)
    done_a, done_b = a[3:], b[3:]
    rows = a[:3] + b[:3] + [x for pair in zip(done_a, done_b) for x in pair]
    lc, diag = build(rows)
    assert dict(zip(lc["irp"], lc["actual"])) == {0xA: "ok", 0xB: "cancelled"}
    assert lc.height == 2 and not broken(diag)


def test_a_completion_of_the_other_layer_alone_is_still_a_reused_address():
    # A file-system completion with no other source at that instant, while a disk IRP is open:
    # the disk IRP's completion is not in the trace (unchanged rule).
    rows = [ev(0, "irp_dispatch", 0xA, event_name="DiskIo/ReadInit", major=3),
            ev(1, "irp_complete", 0xA, event_name="FileIo/OpEnd", status=0),
            ev(1 + TICK, "irp_complete", 0xA, event_name="DiskIo/Read", device="disk0")]
    lc, diag = build(rows)
    assert lc["actual"].to_list() == ["incomplete", "ok", "ok"]      # two orphan completions
    assert diag.counters["irp_address_reused"] == 1
    assert diag.counters["irp_completion_without_dispatch"] == 2


def test_a_later_completion_of_the_same_source_is_an_orphan():
    # The same instant joins any source; at another instant only a new source's word joins.
    rows = one_irp(0, 1, 0xA, ["DiskIo", "OpEnd"]) + \
        [ev(2, "irp_complete", 0xA, event_name="DiskIo/Read", device="disk0")]
    lc, diag = build(rows)
    assert lc.height == 2 and diag.counters["irp_completion_without_dispatch"] == 1
