"""One device under several names is one device (issue 9 item 6): the driver's instrumentation
says "stordrv", the framework's IFR lines a device object, DiskIo a disk number. The driver's name
wins, the others stay in device_alias, for every IRP of the device; a warning counts them."""

from __future__ import annotations

import polars as pl

from fpreplay.diagnostics import Diagnostics
from fpreplay.lifecycles import build_lifecycles, detect_incidents
from fpreplay.lifecycles.devices import alias_map, name_kind
from fpreplay.schema import STATUS_INSUFFICIENT_RESOURCES, conform_events
from scenario_tables import ev

DEVOBJ = "0xffffe0012345a000"


def build(rows: list[dict]) -> tuple[pl.DataFrame, Diagnostics]:
    diag = Diagnostics()
    lc = build_lifecycles(conform_events(pl.DataFrame(rows, infer_schema_length=None)), diag)
    return lc.sort("arrive_ns"), diag


def irp(t: float, a: int, dispatch_device: str | None, complete_device: str | None,
        name: str = "Contoso/IrpDispatch", status: int = 0) -> list[dict]:
    return [ev(t, "irp_dispatch", a, event_name=name, device=dispatch_device, major=3),
            ev(t + 1, "irp_complete", a, event_name="DiskIo/Read", device=complete_device,
               status=status)]


def test_name_kinds():
    assert [name_kind(n) for n in ("stordrv", "\\Device\\Harddisk0\\DR0", DEVOBJ, "disk12",
                                   "0xq", "diskette")] == [0, 1, 2, 3, 0, 0]


def test_the_drivers_name_wins_for_every_irp_of_the_device():
    rows = (irp(0, 0xA, "stordrv", "disk0")              # both names: stordrv is disk0
            + irp(10, 0xB, None, "disk0", name="DiskIo/ReadInit")     # only the disk saw it
            + irp(20, 0xC, DEVOBJ, None, name="IFR/Dispatch")         # devobj and the driver
            + [ev(20.5, "irp_dispatch", 0xC, event_name="Contoso/IrpDispatch",
                  device="stordrv")]
            + irp(30, 0xD, DEVOBJ, None, name="IFR/Dispatch")         # only the IFR saw it
            + irp(40, 0xE, "other", "disk1"))                          # another device
    lc, diag = build(rows)
    got = {r["irp"]: (r["device"], r["device_alias"]) for r in lc.iter_rows(named=True)}
    assert got == {0xA: ("stordrv", "disk0"), 0xB: ("stordrv", "disk0"),
                   0xC: ("stordrv", DEVOBJ), 0xD: ("stordrv", DEVOBJ), 0xE: ("other", "disk1")}
    assert diag.counters["device_names_unified"] == 5
    assert any("more than one source's words" in w and "disk0 -> stordrv" in w
               for w in diag.warnings)
    assert alias_map(lc) == {"disk0": "stordrv", DEVOBJ: "stordrv", "disk1": "other"}


def test_a_chain_of_names_leads_to_the_driver():
    # The disk is seen with the device object, the device object with the driver's name.
    rows = (irp(0, 0xA, DEVOBJ, "disk0", name="IFR/Dispatch")
            + [ev(0.5, "irp_dispatch", 0xB, event_name="IFR/Dispatch", device=DEVOBJ),
               ev(0.6, "irp_dispatch", 0xB, event_name="Contoso/IrpDispatch", device="stordrv"),
               ev(0.7, "irp_complete", 0xB, event_name="Contoso/IrpComplete", status=0)])
    lc, _ = build(rows)
    assert lc["device"].to_list() == ["stordrv", "stordrv"]
    assert lc["device_alias"].to_list() == [f"{DEVOBJ}, disk0", DEVOBJ]


def test_a_disk_never_joins_two_better_names_it_was_seen_with():
    # disk0 beside a device object in one IRP and beside the driver's name in another: the disk
    # may hold both devices, so nothing says they are one.
    rows = (irp(0, 0xA, DEVOBJ, "disk0", name="IFR/Dispatch") + irp(10, 0xB, "stordrv", "disk0"))
    lc, diag = build(rows)
    assert lc["device"].to_list() == [DEVOBJ, "stordrv"]
    assert diag.counters["device_names_ambiguous"] == 1


def test_a_device_object_seen_beside_the_driver_name_maps_it_everywhere():
    rows = irp(0, 0xA, "stordrv", None) + [
        ev(0.5, "other", 0xA, event_name="IFR/Queuing WDFREQUEST", device=DEVOBJ),
    ] + irp(10, 0xB, DEVOBJ, None, name="IFR/Dispatch")
    lc, _ = build(rows)
    assert lc["device"].to_list() == ["stordrv", "stordrv"]
    assert lc["device_alias"].to_list() == [DEVOBJ, DEVOBJ]


def test_a_disk_seen_with_two_devices_keeps_its_name_where_alone():
    rows = (irp(0, 0xA, "d0", "disk0") + irp(10, 0xB, "d1", "disk0")
            + irp(20, 0xC, None, "disk0", name="DiskIo/ReadInit"))
    lc, diag = build(rows)
    assert lc["device"].to_list() == ["d0", "d1", "disk0"]
    assert lc["device_alias"].to_list() == ["disk0", "disk0", None]
    assert diag.counters["device_names_ambiguous"] == 1
    assert any("disk0 with d0, d1" in w for w in diag.warnings)


def test_two_device_objects_of_one_stack_stay_two_devices():
    # A filter's and the FDO's dispatch lines name two device objects: one kind, two devices.
    lc, diag = build([ev(0, "irp_dispatch", 0xA, event_name="IFR/Dispatch", device="0xf1"),
                      ev(1, "irp_dispatch", 0xA, event_name="IFR/Dispatch", device="0xf2"),
                      ev(2, "irp_complete", 0xA, event_name="IFR/Completing", status=0),
                      ev(3, "irp_dispatch", 0xB, event_name="IFR/Dispatch", device="0xf2"),
                      ev(4, "irp_complete", 0xB, event_name="IFR/Completing", status=0)])
    assert lc["device"].to_list() == ["0xf1", "0xf2"]
    assert lc["device_alias"].to_list() == [None, None] and not diag.warnings


def test_one_name_per_device_leaves_tables_as_they_were():
    lc, diag = build(irp(0, 0xA, "stordrv", None) + irp(10, 0xB, None, "disk0",
                                                        name="DiskIo/ReadInit"))
    assert lc["device"].to_list() == ["stordrv", "disk0"]
    assert lc["device_alias"].to_list() == [None, None] and not diag.warnings


def test_incidents_name_one_device():
    # The IFR's allocation failure names the device object; the IRPs are the driver's.
    rows = (irp(0, 0xA, "stordrv", None) + irp(0.2, 0xA + 1, DEVOBJ, None, name="IFR/Dispatch")
            + [ev(0.1, "other", 0xA, event_name="IFR/x", device=DEVOBJ),
               ev(5, "request_alloc_failed", None, event_name="IFR/Could not create WDFREQUEST",
                  device=DEVOBJ)]
            + irp(5, 0xC, "stordrv", None, status=STATUS_INSUFFICIENT_RESOURCES))
    events = conform_events(pl.DataFrame(rows, infer_schema_length=None))
    lc = build_lifecycles(events, Diagnostics())
    assert set(lc["device"]) == {"stordrv"}
    inc = detect_incidents(events, lc)
    assert inc.height == 1 and inc["devices"].to_list() == [["stordrv"]]
