"""Terminal output: rich tables drawn from the JSON documents (render_json.py), 100 columns wide.

Colour comes from the console (replay/app.py): only on a terminal, never with NO_COLOR.
"""

from __future__ import annotations

from datetime import datetime, timezone

from rich import box
from rich.console import Console
from rich.table import Table

from fpreplay.schema import ACTUAL_OUTCOMES

MAJOR_NAMES = {
    0x00: "CREATE", 0x01: "CREATE_NAMED_PIPE", 0x02: "CLOSE", 0x03: "READ", 0x04: "WRITE",
    0x05: "QUERY_INFORMATION", 0x06: "SET_INFORMATION", 0x07: "QUERY_EA", 0x08: "SET_EA",
    0x09: "FLUSH_BUFFERS", 0x0A: "QUERY_VOLUME_INFORMATION", 0x0B: "SET_VOLUME_INFORMATION",
    0x0C: "DIRECTORY_CONTROL", 0x0D: "FILE_SYSTEM_CONTROL", 0x0E: "DEVICE_CONTROL",
    0x0F: "INTERNAL_DEVICE_CONTROL", 0x10: "SHUTDOWN", 0x11: "LOCK_CONTROL", 0x12: "CLEANUP",
    0x13: "CREATE_MAILSLOT", 0x14: "QUERY_SECURITY", 0x15: "SET_SECURITY", 0x16: "POWER",
    0x17: "SYSTEM_CONTROL", 0x18: "DEVICE_CHANGE", 0x19: "QUERY_QUOTA", 0x1A: "SET_QUOTA",
    0x1B: "PNP",
}

# Short column headings for the actual outcomes, so the breakdown fits 100 columns.
_ACTUAL_HEAD = {"ok": "ok", "reserved": "resv", "refused": "refus", "alloc_failed": "allocF",
                "cancelled": "cancl", "invalid_state": "inval", "failed": "fail",
                "incomplete": "incompl"}


def major_name(code) -> str:
    """`3` or `"3"` -> `READ`; names pass through (breakdown keys are text)."""
    try:
        n = int(code)
    except (TypeError, ValueError):
        return str(code)
    return MAJOR_NAMES.get(n, f"0x{n:02X}")


def fmt_duration(ns) -> str:
    if ns is None:
        return "-"
    ns = int(ns)
    if ns == 0:
        return "0"
    for unit, scale in (("s", 1_000_000_000), ("ms", 1_000_000), ("µs", 1_000)):
        if abs(ns) >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns} ns"


def fmt_time(ns) -> str:
    """Epoch ns as UTC wall-clock time to the microsecond (what a user finds in other tools)."""
    if ns is None:
        return "-"
    ns = int(ns)
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%S") + f".{(ns % 1_000_000_000) // 1000:06d}"


def fmt_share(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def fmt_irp(irp) -> str:
    return "-" if irp is None else f"0x{int(irp):x}"


def fmt_status(status) -> str:
    return "-" if status is None else f"0x{int(status):08X}"


def _table(title: str | None = None) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False,
                 show_edge=False,
                 padding=(0, 0, 0, 1), title_style="bold")


def _show(out: Console, table: Table) -> None:
    out.print(table)
    out.print()


def _join(names: list[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return ", ".join(names) or "-"
    return ", ".join(names[:limit]) + f" +{len(names) - limit}"


# --- analyze ----------------------------------------------------------------------------------

def breakdown_table(title: str, rows: list[dict], names=str, limit: int = 15) -> Table:
    t = _table(title)
    t.add_column("", overflow="fold", max_width=24)
    t.add_column("IRPs", justify="right")
    for a in ACTUAL_OUTCOMES:
        t.add_column(_ACTUAL_HEAD[a], justify="right")
    for r in rows[:limit]:
        t.add_row(names(r["name"]), str(r["irps"]), *[str(r["actual"][a]) for a in
                                                      ACTUAL_OUTCOMES])
    if len(rows) > limit:
        t.caption = f"{len(rows) - limit} more not shown (see --json)"
    return t


def incidents_table(incidents: list[dict]) -> Table:
    days = {fmt_time(i["start_ns"])[:10] for i in incidents}
    one_day = len(days) == 1
    t = _table("Low-memory incidents" + (f" on {days.pop()} (UTC)" if one_day else ""))
    for name, just in (("#", "right"), ("start", "nowrap"), ("length", "right"),
                       ("allocF", "right"), ("refus", "right"), ("resv", "right"),
                       ("insuf", "right"), ("press", "right"), ("IRPs", "right"),
                       ("paging", "right"), ("devices", "left")):
        if just == "nowrap":
            t.add_column(name, no_wrap=True)
        else:
            t.add_column(name, justify=just, overflow="fold")
    for i in incidents:
        start = fmt_time(i["start_ns"])
        t.add_row(str(i["incident"]), start[11:] if one_day else start,
                  fmt_duration(i["duration_ns"]),
                  str(i["alloc_failed"]), str(i["refused"]), str(i["reserved"]),
                  str(i["insufficient_resources"]), str(i["memory_pressure"]), str(i["irps"]),
                  fmt_share(i["paging_share"]), _join(i["devices"], 2))
    return t


def render_analyze(doc: dict, out: Console) -> None:
    out.print(doc["verdict"], style="bold red" if doc["incidents"] else "bold green",
              markup=False)
    out.print(f"events {doc['events']}  records {doc['records']}  events lost "
              f"{doc['events_lost']}  IRPs {doc['irps']}", markup=False)
    _show(out, breakdown_table("Actual outcomes by device", doc["by_device"]))
    _show(out, breakdown_table("By queue", doc["by_queue"]))
    _show(out, breakdown_table("By major function", doc["by_major"], names=major_name))
    if doc["incidents"]:
        _show(out, incidents_table(doc["incidents"]))
    else:
        out.print("No low-memory incident.", markup=False)
    fp = doc["forward_progress"]
    out.print(f"Forward-progress evidence: reserved requests used {fp['reserved_request_used']} "
              f"(IRPs served from the reserve {fp['reserved_irps']}), policy refusals "
              f"{fp['fp_policy_refused']} (IRPs refused {fp['refused_irps']}), request "
              f"allocation failures {fp['request_alloc_failed']}, resource-callback failures "
              f"{fp['request_resources_failed']}, memory-pressure signals "
              f"{fp['memory_pressure']}.", markup=False)
    nc = doc["never_completed"]
    if nc["count"]:
        t = _table(f"IRPs that never completed ({nc['count']})")
        for c in ("IRP", "arrived (UTC)", "device", "queue", "major"):
            t.add_column(c, overflow="fold")
        for r in nc["irps"][:20]:
            t.add_row(fmt_irp(r["irp"]), fmt_time(r["arrive_ns"]), str(r["device"] or "-"),
                      str(r["queue"] or "(default)"),
                      major_name(r["major"]) if r["major"] is not None else "-")
        if nc["count"] > 20:
            t.caption = f"{nc['count'] - 20} more (see --json or fpreplay irps)"
        _show(out, t)
    else:
        out.print("Every IRP completed.", markup=False)


# --- compare ----------------------------------------------------------------------------------

def compare_table(doc: dict) -> Table:
    t = _table(f"{doc['irps']} IRPs, memory model {doc['memory']}")
    t.add_column("policy", overflow="fold", min_width=10, ratio=1)
    for c in ("rescued", "still\nfailed", "regress", "parked", "wait\np50", "p99", "max",
              "cancl", "inval", "high\nwater"):
        # Colour says which way a number cuts; the console drops it off a terminal/NO_COLOR.
        style = {"rescued": "green", "still\nfailed": "red", "regress": "red"}.get(c)
        # Numbers never wrap: the policy column (a long examine rule) folds instead.
        t.add_column(c, justify="right", style=style, no_wrap=True)
    for row in [doc["observed"], *doc["policies"]]:
        w = row["park_wait_ns"]
        t.add_row(row["policy"], str(row["rescued"]), str(row["still_failed"]),
                  str(row["regressed"]), str(row["parked"]), fmt_duration(w["p50"]),
                  fmt_duration(w["p99"]), fmt_duration(w["max"]), str(row["cancelled"]),
                  str(row["invalid_state"]), str(row["reserve_high_water"]))
    return t


def render_explain(stories: list[dict], out: Console) -> None:
    for s in stories:
        out.print(f"IRP {fmt_irp(s['irp'])} arrived {fmt_time(s['arrive_ns'])} on "
                  f"{s['device'] or '-'} queue {s['queue'] or '(default)'}, "
                  f"{major_name(s['major']) if s['major'] is not None else '-'}"
                  f"{', paging' if s['paging'] else ''}", style="bold", markup=False)
        out.print(f"  actually: {s['actual']} (status {fmt_status(s['status'])}; evidence: "
                  f"{s['evidence'] or '-'})", markup=False)
        for p in s["policies"]:
            out.print(f"  {p['policy']}: {p['outcome']} [{p['verdict']}]: {p['story']}",
                      markup=False)


def render_compare(doc: dict, out: Console) -> None:
    a = doc["actual"]
    out.print("Actually: " + ", ".join(f"{k} {a[k]}" for k in ACTUAL_OUTCOMES), markup=False)
    _show(out, compare_table(doc))
    if doc.get("explain"):
        render_explain(doc["explain"], out)


# --- sweep ------------------------------------------------------------------------------------

def render_sweep(doc: dict, out: Console) -> None:
    t = _table(f"Reserve size against outcome: {doc['kind']}, memory model {doc['memory']}")
    for c in ("reserved", "rescued", "still failed", "regress", "parked", "wait p50", "p99",
              "max", "high water"):
        t.add_column(c, justify="right", no_wrap=True)
    for r in doc["rows"]:
        w = r["park_wait_ns"]
        t.add_row(str(r["reserved"]), str(r["rescued"]), str(r["still_failed"]),
                  str(r["regressed"]), str(r["parked"]), fmt_duration(w["p50"]),
                  fmt_duration(w["p99"]), fmt_duration(w["max"]), str(r["reserve_high_water"]))
    _show(out, t)
    if doc["peak_demand"] is not None:
        out.print(f"Peak demand (reserved requests in use at once with an unlimited reserve): "
                  f"{doc['peak_demand']}", markup=False)
    if doc["peak_demand"] == 0 and doc["memory"] == "observed":
        out.print("No allocation failed in the trace, so no reserve was needed. To size one "
                  "for a low-memory event, replay with --memory fail-all or verifier-random.",
                  markup=False)
    n = doc["min_reserved_no_park"]
    out.print("Smallest reserve at which nothing parks: "
              + (str(n) if n is not None else f"none up to {doc['max_reserved']}"),
              markup=False)
    if doc["budget_ns"] is not None:
        b = doc["min_reserved_within_budget"]
        out.print(f"Smallest reserve whose p99 park wait fits {fmt_duration(doc['budget_ns'])}: "
                  + (str(b) if b is not None else f"none up to {doc['max_reserved']}"),
                  markup=False)


# --- incidents --------------------------------------------------------------------------------

def render_incidents(doc: dict, out: Console) -> None:
    if not doc["incidents"]:
        out.print("No low-memory incident.", markup=False)
        return
    for i in doc["incidents"]:
        share = fmt_share(i["paging_share"])
        out.print(f"Incident {i['incident']}: {fmt_time(i['start_ns'])} for "
                  f"{fmt_duration(i['duration_ns'])}; {i['irps']} IRPs arrived, "
                  f"{i['alloc_failed']} alloc_failed, {i['refused']} refused, {i['reserved']} "
                  f"reserved, {i['insufficient_resources']} insufficient-resources completions, "
                  f"{i['memory_pressure']} pressure signals; paging {share}; devices "
                  f"{_join(i['devices'], 4)}; queues {_join(i['queues'], 4)}",
                  style="bold", markup=False)
        t = _table("Timeline")
        t.add_column("from (UTC)")
        t.add_column("arrived", justify="right")
        t.add_column("failed", justify="right")
        t.add_column("outst.", justify="right")
        for p in doc["policies"]:
            t.add_column(f"{p} resv/park", justify="right", overflow="fold", max_width=16)
        for b in i["timeline"]:
            t.add_row(fmt_time(b["start_ns"])[11:], str(b["arrived"]), str(b["failed"]),
                      str(b["outstanding"]),
                      *[f"{b['policies'][p]['reserved_in_use']}/{b['policies'][p]['parked']}"
                        for p in doc["policies"]])
        _show(out, t)
        _show(out, compare_table({"irps": i["irps"], "memory": doc["memory"],
                                  "observed": i["observed"], "policies": i["policies"]}))
        if i["irp_list"]:
            t = _table(f"IRPs that decided it ({i['deciding_irps']})")
            t.add_column("IRP", overflow="fold")
            t.add_column("arrived (UTC)")
            t.add_column("actual")
            for p in doc["policies"]:
                t.add_column(p, overflow="fold", max_width=18)
            for r in i["irp_list"][:20]:
                t.add_row(fmt_irp(r["irp"]), fmt_time(r["arrive_ns"])[11:], r["actual"],
                          *[f"{r['policies'][p]['outcome']}" for p in doc["policies"]])
            if i["deciding_irps"] > 20:
                t.caption = f"{i['deciding_irps'] - 20} more (see --json)"
            _show(out, t)


def stderr_note(message: str) -> None:
    from fpreplay.replay.app import stderr_console

    stderr_console().print(message, markup=False)
