"""Terminal output: tables drawn from the JSON documents (render/json.py), laid out for the
console's width by terminal_tables (no cell ever broken; one legend style for every table), each
command ending on what to do next (terminal_next).

Colour comes from the console (replay/cli/app.py): only on a terminal, never with NO_COLOR.
"""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Console
from rich.text import Text

from fpreplay import schema
from fpreplay.replay.render.terminal_next import (   # noqa: F401 (the report uses them too)
    compare_summary, next_analyze, next_incidents, next_sweep, over_seeds, print_next,
    sweep_recommendation,
)
from fpreplay.replay.render.terminal_tables import SHORT_OUTCOMES, Col, Grid, policy_heads, show
from fpreplay.schema import ACTUAL_OUTCOMES
from fpreplay.units import format_duration_ns as fmt_duration

# The actual outcomes as column headings: one word each, and what each means.
ACTUAL_COLS = {
    "ok": ("ok", "completed without error"),
    "reserved": ("resv", "served from the reserve (a reserved request)"),
    "refused": ("refus", "refused by the forward-progress policy"),
    "alloc_failed": ("allocF", "request allocation failed and not served from the reserve"),
    "cancelled": ("cancl", "cancelled (STATUS_CANCELLED)"),
    "invalid_state": ("inval", "invalid device state (STATUS_INVALID_DEVICE_STATE: a purged or "
                      "stopped queue)"),
    "failed": ("fail", "completed with another error status"),
    "incomplete": ("incompl", "never completed in the trace"),
}
# Least worth keeping first when a terminal is too narrow (None: never dropped).
_ACTUAL_DROP = {"cancelled": 3, "invalid_state": 4, "failed": 5, "refused": 6,
                "incomplete": 7}


def major_name(code) -> str:
    """`3` or `"3"` -> `READ`; names pass through (breakdown keys are text)."""
    try:
        n = int(code)
    except (TypeError, ValueError):
        return str(code)
    return schema.major_name(n)


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


def fmt_waits(row: dict) -> list[str]:
    """p50 / p99 / max park wait, or "-" when no IRP parked (JSON carries zeros there)."""
    w = row["park_wait_ns"]
    if not row.get("parked"):
        return ["-", "-", "-"]
    return [fmt_duration(w["p50"]), fmt_duration(w["p99"]), fmt_duration(w["max"])]


def spread(r: dict | None, fmt=str) -> str:
    """A figure's range over the seeds as 'min–max' ('' when it has none or all seeds agree)."""
    if not r or r["min"] == r["max"]:
        return ""
    lo, hi = fmt(r["min"]), fmt(r["max"])
    if fmt is fmt_duration and lo.split()[-1:] == hi.split()[-1:]:
        lo = lo.split()[0]   # one unit: '1.1–4.2 ms'
    return f"{lo}–{hi}"


def _figure(text: str, r: dict | None = None, fmt=str, colour: str = ""):
    """A table cell: the figure (the median over seeds, when several ran) and, on the line
    below it, its min–max over the seeds."""
    extra = spread(r, fmt)
    cell = Text(text, style=colour)
    return [cell, Text(extra, style="dim")] if extra else cell


def _row_figures(row: dict, keys, colours: dict | None = None) -> list:
    """The cells of a compare or sweep row: counts, then the three park waits where asked."""
    ranges, colours = row.get("range") or {}, colours or {}
    cells = []
    for key in keys:
        if key == "park_wait_ns":
            waits = ranges.get("park_wait_ns") or {}
            cells += [_figure(text, waits.get(p), fmt_duration)
                      for p, text in zip(("p50", "p99", "max"), fmt_waits(row))]
        else:
            colour = colours.get(key, "") if row[key] else ""
            cells.append(_figure(str(row[key]), ranges.get(key), colour=colour))
    return cells


def seeds_note(doc: dict) -> str:
    """The title's words for several seeds (verifier-random without a seed)."""
    seeds = doc.get("seeds")
    if not seeds:
        return ""
    return f", seeds {', '.join(map(str, seeds))}: median, min–max below"


def _join(names: list[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return ", ".join(names) or "-"
    return ", ".join(names[:limit]) + f" +{len(names) - limit}"


# --- analyze ----------------------------------------------------------------------------------

_BY = {"device": "the device, as the trace names it", "queue": "the WDFQUEUE, or (default)",
       "major": "the IRP major function"}


def breakdown_grid(title: str, by: str, rows: list[dict], names=str, limit: int = 15,
                   legend: bool = True) -> Grid:
    """One breakdown of the actual outcomes; the last of the three carries the legend, naming
    the first columns of the two before it too."""
    g = Grid(title, [Col(by, _BY[by], right=False, abbreviate=True),
                     Col("IRPs", "IRP instances")]
             + [Col(*ACTUAL_COLS[a], drop=_ACTUAL_DROP.get(a)) for a in ACTUAL_OUTCOMES],
             legend=legend,
             legend_first=[Col(b, _BY[b]) for b in _BY if b != by] if legend else [])
    for r in rows[:limit]:
        g.add(names(r["name"]), str(r["irps"]), *[str(r["actual"][a]) for a in ACTUAL_OUTCOMES])
    if len(rows) > limit:
        g.caption = f"{len(rows) - limit} more not shown (see --json)"
    return g


def incidents_grid(incidents: list[dict]) -> Grid:
    days = {fmt_time(i["start_ns"])[:10] for i in incidents}
    one_day = len(days) == 1
    g = Grid("Low-memory incidents" + (f" on {days.pop()} (UTC)" if one_day else ""), [
        Col("#", "incident number"),
        Col("start", "its first low-memory signal, UTC", right=False),
        Col("length", "from its first to its last signal"),
        Col("allocF", "IRPs whose request allocation failed, not served from the reserve"),
        Col("refus", "IRPs the forward-progress policy refused", drop=4),
        Col("resv", "IRPs served from the reserve"),
        Col("insuf", "completions with STATUS_INSUFFICIENT_RESOURCES", drop=1),
        Col("press", "memory-pressure signals (hard faults, low available memory)", drop=2),
        Col("IRPs", "IRPs that arrived during it"),
        Col("paging", "share of its failing IRPs (allocF, refus, resv) that were paging I/O",
            drop=3),
        Col("devices", "the devices involved", right=False, abbreviate=True)])
    for i in incidents:
        start = fmt_time(i["start_ns"])
        g.add(str(i["incident"]), start[11:] if one_day else start,
              fmt_duration(i["duration_ns"]), str(i["alloc_failed"]), str(i["refused"]),
              str(i["reserved"]), str(i["insufficient_resources"]), str(i["memory_pressure"]),
              str(i["irps"]), fmt_share(i["paging_share"]), _join(i["devices"], 2))
    return g


_IRP_COLS = {"IRP": "the IRP's address (for --explain)", "arrived": "when it arrived, UTC",
             "device": "the device, as the trace names it", "queue": "the WDFQUEUE, or (default)",
             "major": "the IRP major function",
             "actual": "what happened to it in the trace"}


def _never_completed(out: Console, doc: dict) -> None:
    nc = doc["never_completed"]
    if not nc["count"]:
        out.print("Every IRP completed.", markup=False)
        return
    g = Grid(f"IRPs that never completed ({nc['count']})", [
        Col("IRP", _IRP_COLS["IRP"], right=False),
        Col("arrived", _IRP_COLS["arrived"], right=False, drop=3),
        Col("device", _IRP_COLS["device"] + " (-: the events name none)", right=False,
            abbreviate=True),
        Col("queue", _IRP_COLS["queue"], right=False, abbreviate=True, drop=4),
        Col("major", _IRP_COLS["major"], right=False)])
    for r in nc["irps"][:20]:
        g.add(fmt_irp(r["irp"]), fmt_time(r["arrive_ns"]), str(r["device"] or "-"),
              str(r["queue"] or "(default)"),
              major_name(r["major"]) if r["major"] is not None else "-")
    if nc["count"] > 20:
        g.caption = f"{nc['count'] - 20} more (see --json or fpreplay irps)"
    show(out, g)


def render_analyze(doc: dict, out: Console, args: str = "TRACE") -> None:
    out.print(doc["verdict"], style="bold red" if doc["incidents"] else "bold green",
              markup=False)
    out.print(f"events {doc['events']}  records {doc['records']}  events lost "
              f"{doc['events_lost']}  IRPs {doc['irps']}", markup=False)
    if not doc["irps"]:   # empty outcome tables would only hide the advice below them
        print_next(out, next_analyze(doc, args))
        return
    out.print()
    show(out, breakdown_grid("Actual outcomes by device", "device", doc["by_device"],
                             legend=False))
    show(out, breakdown_grid("By queue", "queue", doc["by_queue"], legend=False))
    show(out, breakdown_grid("By major function", "major", doc["by_major"], names=major_name))
    if doc["incidents"]:
        show(out, incidents_grid(doc["incidents"]))
    else:
        out.print("No low-memory incident.", markup=False)
    fp = doc["forward_progress"]
    out.print(f"Forward-progress evidence: reserved requests used {fp['reserved_request_used']} "
              f"(IRPs served from the reserve {fp['reserved_irps']}), policy refusals "
              f"{fp['fp_policy_refused']} (IRPs refused {fp['refused_irps']}), request "
              f"allocation failures {fp['request_alloc_failed']}, resource-callback failures "
              f"{fp['request_resources_failed']}, memory-pressure signals "
              f"{fp['memory_pressure']}"
              + (" (hard faults or memory readings, too few or too far apart to make an "
                 "incident)" if fp["memory_pressure"] and not doc["incidents"] else "")
              + ".", markup=False)
    out.print()
    _never_completed(out, doc)
    print_next(out, next_analyze(doc, args))


# --- compare ----------------------------------------------------------------------------------

_COMPARE_COLS = {
    "rescued": "IRPs that failed for real and that the policy delivers to the driver",
    "failed": "IRPs that failed for real and still fail under the policy",
    "regress": "IRPs served for real that fail under the policy",
    "parked": "IRPs that waited parked for a reserved request",
    "p50": "median park wait of the parked IRPs (-: none parked)",
    "p99": "99th-percentile park wait", "max": "longest park wait",
    "cancl/inval": "IRPs completed cancelled / invalid device state (queue purges and stops)",
    "water": "high water: the most reserved requests in use at once on one queue",
}


def _figure_cols(first: Col, purges: bool) -> list[Col]:
    c = _COMPARE_COLS
    return [first, Col("rescued", c["rescued"]), Col("failed", c["failed"]),
            Col("regress", c["regress"]), Col("parked", c["parked"]),
            Col("p50", c["p50"], drop=4), Col("p99", c["p99"]), Col("max", c["max"], drop=3),
            *([Col("cancl/inval", c["cancl/inval"], drop=5)] if purges else []),
            Col("water", c["water"], drop=6)]


def compare_grid(doc: dict) -> Grid:
    rows = [doc["observed"], *doc["policies"]]
    # cancelled / invalid state come only from queue purges and stops: the column appears when
    # some row has one.
    purges = any(r["cancelled"] or r["invalid_state"] for r in rows)
    g = Grid(f"{doc['irps']} IRPs, memory model {doc['memory']}{seeds_note(doc)}",
             _figure_cols(Col("policy", "actual: what happened; else the policy replayed",
                              right=False, abbreviate=True), purges))
    for row in rows:
        cells = _row_figures(row, ("rescued", "still_failed", "regressed", "parked",
                                   "park_wait_ns"),
                             {"rescued": "green", "still_failed": "red", "regressed": "red"})
        # Colour says which way a number cuts, so a zero stays plain; the console drops colour
        # off a terminal and with NO_COLOR.
        g.add(row["policy"], *cells,
              *((f"{row['cancelled']}/{row['invalid_state']}",) if purges else ()),
              *_row_figures(row, ("reserve_high_water",)))
    return g


# An address reused by more IRPs than this: the others go in one table, not a story each.
EXPLAIN_FULL = 5


def _explain_table(stories: list[dict], out: Console) -> None:
    heads, notes = policy_heads([p["policy"] for p in stories[0]["policies"]])
    g = Grid(None, [Col("arrived", _IRP_COLS["arrived"], right=False),
                    Col("major", _IRP_COLS["major"], right=False, drop=1),
                    Col("actual", _IRP_COLS["actual"], right=False, short=SHORT_OUTCOMES)]
             + [Col(h, "its outcome [verdict] under that policy", right=False,
                    short=SHORT_OUTCOMES) for h in heads], notes=notes)
    for s in stories[:20]:
        g.add(fmt_time(s["arrive_ns"])[11:],
              major_name(s["major"]) if s["major"] is not None else "-", s["actual"],
              *[f"{p['outcome']} [{p['verdict']}]" for p in s["policies"]])
    if len(stories) > 20:
        g.caption = f"{len(stories) - 20} more (see --json)"
    show(out, g)


def render_explain(stories: list[dict], out: Console) -> None:
    told = stories
    if len(stories) > EXPLAIN_FULL:
        # Windows recycles IRP addresses: tell in full the instances some policy changes.
        changed = [s for s in stories if any(p["verdict"] != "same" for p in s["policies"])]
        told = (changed or stories)[:EXPLAIN_FULL]
        out.print(f"IRP {fmt_irp(stories[0]['irp'])}: the address served {len(stories)} IRPs; "
                  + (f"{len(changed)} of them a policy changes, the first {len(told)} of those "
                     "told below the table" if changed else
                     f"every policy treats them as they were; the first {len(told)} told below "
                     "the table"), markup=False)
        _explain_table(stories, out)
    for s in told:
        head, *rest = story_lines(s)
        out.print(head, style="bold", markup=False)
        for line in rest:
            out.print(line, markup=False)


def story_lines(s: dict) -> list[str]:
    """One IRP's story as plain lines: the terminal prints them (the first in bold), the report's
    click shows them. Plain strings, so the report can tell thousands without a console."""
    lines = [f"IRP {fmt_irp(s['irp'])} arrived {fmt_time(s['arrive_ns'])} on "
             f"{s['device'] or '-'} queue {s['queue'] or '(default)'}, "
             f"{major_name(s['major']) if s['major'] is not None else '-'}"
             f"{', paging' if s['paging'] else ''}",
             f"  actually: {s['actual']} (status {fmt_status(s['status'])}; evidence: "
             f"{s['evidence'] or '-'})"]
    lines += [f"  {p['policy']}: {p['outcome']} [{p['verdict']}]: {p['story']}"
              for p in s["policies"]]
    return lines


def render_compare(doc: dict, out: Console, args: str = "TRACE") -> None:
    a = doc["actual"]
    out.print(f"Actually, of {doc['irps']} IRPs: "
              + (", ".join(f"{k} {a[k]}" for k in ACTUAL_OUTCOMES if a[k]) or "-"),
              markup=False)
    out.print()
    show(out, compare_grid(doc))
    if doc.get("explain"):
        render_explain(doc["explain"], out)
        out.print()
    print_next(out, compare_summary(doc, args))


# --- sweep ------------------------------------------------------------------------------------

def render_sweep(doc: dict, out: Console, args: str = "TRACE") -> None:
    g = Grid(f"Reserve size against outcome: {doc['kind']}, memory model {doc['memory']}"
             f"{seeds_note(doc)}",
             _figure_cols(Col("reserved", "the reserve size N: reserved requests"), False))
    for r in doc["rows"]:
        g.add(str(r["reserved"]), *_row_figures(r, (
            "rescued", "still_failed", "regressed", "parked", "park_wait_ns",
            "reserve_high_water")))
    show(out, g)
    if doc["peak_demand"] is not None:
        out.print(f"Peak demand (reserved requests in use at once with an unlimited reserve): "
                  f"{doc['peak_demand']}{over_seeds(doc, 'peak_demand')}", markup=False)
    if doc["peak_demand"] == 0 and doc["memory"] == "observed":
        out.print("No allocation failed in the trace, so no reserve was needed. To size one "
                  "for a low-memory event, replay with --memory fail-all or verifier-random.",
                  markup=False)
    n = doc["min_reserved_no_park"]
    out.print("Smallest reserve at which nothing parks: "
              + (str(n) if n is not None else f"none up to {doc['max_reserved']}")
              + over_seeds(doc, "min_reserved_no_park"), markup=False)
    if doc["budget_ns"] is not None:
        b = doc["min_reserved_within_budget"]
        out.print(f"Smallest reserve whose p99 park wait fits {fmt_duration(doc['budget_ns'])}: "
                  + (str(b) if b is not None else f"none up to {doc['max_reserved']}")
                  + over_seeds(doc, "min_reserved_within_budget"), markup=False)
    if doc["peak_demand"] != 0 or doc["memory"] != "observed":
        out.print(sweep_recommendation(doc), style="bold", markup=False)
    print_next(out, next_sweep(doc, args))


# --- incidents --------------------------------------------------------------------------------

def queue_ops_line(i: dict, queue_ops) -> str | None:
    """A purge or stop inside an incident decides many IRPs' fate: say when it happened."""
    inside = [(t, k, q) for t, k, q in queue_ops if i["start_ns"] <= t <= i["end_ns"]]
    if not inside:
        return None
    return "The driver acted on its queues during the incident: " + "; ".join(
        f"{k.removeprefix('queue_').replace('_', ' and ')} at {fmt_time(t)[11:]} "
        f"(+{fmt_duration(t - i['start_ns'])})" + (f" on {q}" if q else "")
        for t, k, q in inside) + "."


def _timeline_grid(i: dict, policies: list[str]) -> Grid:
    heads, notes = policy_heads(policies)
    g = Grid("Timeline", [
        Col("from", "the step's start, UTC", right=False),
        Col("arrived", "IRPs that arrived in the step", drop=2),
        Col("allocF", "IRPs whose request allocation failed, served from the reserve or not"),
        Col("outst", "the most IRPs in the driver at once", drop=1)]
        + [Col(h, "under that policy, the most reserved requests in use / the deepest "
               "parked list") for h in heads], notes=notes)
    for b in i["timeline"]:
        g.add(fmt_time(b["start_ns"])[11:], str(b["arrived"]), str(b["failed"]),
              str(b["outstanding"]),
              *[f"{b['policies'][p]['reserved_in_use']}/{b['policies'][p]['parked']}"
                for p in policies])
    return g


def _deciding_grid(i: dict, policies: list[str]) -> Grid:
    heads, notes = policy_heads(policies)
    g = Grid(f"IRPs that decided it ({i['deciding_irps']})", [
        Col("IRP", _IRP_COLS["IRP"], right=False),
        Col("arrived", _IRP_COLS["arrived"], right=False, drop=1),
        Col("actual", _IRP_COLS["actual"], right=False, short=SHORT_OUTCOMES)]
        + [Col(h, "its outcome under that policy", right=False, short=SHORT_OUTCOMES)
           for h in heads], notes=notes)
    for r in i["irp_list"][:20]:
        g.add(fmt_irp(r["irp"]), fmt_time(r["arrive_ns"])[11:], r["actual"],
              *[r["policies"][p]["outcome"] for p in policies])
    if i["deciding_irps"] > 20:
        g.caption = f"{i['deciding_irps'] - 20} more (see --json)"
    return g


def render_incidents(doc: dict, out: Console, args: str = "TRACE", queue_ops=()) -> None:
    if not doc["incidents"]:
        out.print("No low-memory incident.", markup=False)
        return
    for i in doc["incidents"]:
        share = fmt_share(i["paging_share"])
        out.print(f"Incident {i['incident']}: {fmt_time(i['start_ns'])} UTC for "
                  f"{fmt_duration(i['duration_ns'])}; devices {_join(i['devices'], 4)}; queues "
                  f"{_join(i['queues'], 4)}", style="bold", markup=False)
        out.print(f"  {i['irps']} IRPs arrived: {i['alloc_failed']} alloc_failed, "
                  f"{i['refused']} refused, {i['reserved']} reserved; "
                  f"{i['insufficient_resources']} insufficient-resources completions, "
                  f"{i['memory_pressure']} memory-pressure signals; paging I/O {share} of the "
                  "IRPs whose allocation failed", markup=False)
        ops_text = queue_ops_line(i, queue_ops)
        if ops_text:
            out.print("  " + ops_text, markup=False)
        out.print()
        show(out, _timeline_grid(i, doc["policies"]))
        show(out, compare_grid({"irps": i["irps"], "memory": doc["memory"],
                                "seeds": doc.get("seeds"),
                                "observed": i["observed"], "policies": i["policies"]}))
        if i["irp_list"]:
            show(out, _deciding_grid(i, doc["policies"]))
    print_next(out, next_incidents(doc, args))
