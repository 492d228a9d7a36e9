"""Terminal output: rich tables drawn from the JSON documents (render/json.py), 100 columns wide.

Colour comes from the console (replay/cli/app.py): only on a terminal, never with NO_COLOR.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timezone

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fpreplay import schema
from fpreplay.schema import ACTUAL_OUTCOMES
from fpreplay.units import format_duration_ns as fmt_duration


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


def _figure(text: str, r: dict | None = None, fmt=str, colour: str = "") -> Text:
    """A table cell: the figure (the median over seeds, when several ran) and, below it, its
    min–max over the seeds."""
    cell = Text(text, style=colour)
    extra = spread(r, fmt)
    if extra:
        cell.append("\n" + extra, style="dim")
    return cell


def _row_figures(row: dict, keys, colours: dict | None = None) -> list[Text]:
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


def _table(title: str | None = None) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False,
                 show_edge=False,
                 padding=(0, 0, 0, 1), title_style="bold")


def _needed_width(table: Table) -> int:
    """Columns that never wrap at their widest cell or header line, the others at their
    min_width, each with its two-character gap."""
    total = 0
    for col in table.columns:
        if col.no_wrap:
            cells = [str(col.header), *(str(c) for c in col._cells)]
            total += max(len(line) for c in cells for line in c.split("\n"))
        else:
            total += col.min_width or 1
        total += 2
    return total


def _show(out: Console, table: Table) -> None:
    # Rich drops whole columns from a table too wide for the terminal. Close the gaps between
    # columns to one space first (an 80-column terminal then holds every column).
    if _needed_width(table) > out.width:
        table.padding = (0, 0, 0, 0)
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


def render_analyze(doc: dict, out: Console, args: str = "TRACE") -> None:
    out.print(doc["verdict"], style="bold red" if doc["incidents"] else "bold green",
              markup=False)
    out.print(f"events {doc['events']}  records {doc['records']}  events lost "
              f"{doc['events_lost']}  IRPs {doc['irps']}", markup=False)
    if not doc["irps"]:   # empty outcome tables would only hide the advice below them
        print_next(out, next_analyze(doc, args))
        return
    out.print("Outcomes: ok, resv = served from the reserve, refus = refused by the policy, "
              "allocF = request allocation failed, cancl = cancelled, inval = invalid device "
              "state, fail = other error, incompl = never completed.", markup=False,
              style="dim")
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
              f"{fp['memory_pressure']}"
              + (" (hard faults or memory readings, too few or too far apart to make an "
                 "incident)" if fp["memory_pressure"] and not doc["incidents"] else "")
              + ".", markup=False)
    nc = doc["never_completed"]
    if nc["count"]:
        t = _table(f"IRPs that never completed ({nc['count']})")
        for c in ("IRP", "arrived (UTC)", "device", "queue", "major"):
            # An address or a time broken over two lines cannot be pasted into --explain.
            t.add_column(c, overflow="fold", no_wrap=c in ("IRP", "arrived (UTC)"))
        for r in nc["irps"][:20]:
            t.add_row(fmt_irp(r["irp"]), fmt_time(r["arrive_ns"]), str(r["device"] or "-"),
                      str(r["queue"] or "(default)"),
                      major_name(r["major"]) if r["major"] is not None else "-")
        if nc["count"] > 20:
            t.caption = f"{nc['count'] - 20} more (see --json or fpreplay irps)"
        _show(out, t)
    else:
        out.print("Every IRP completed.", markup=False)
    print_next(out, next_analyze(doc, args))


# --- compare ----------------------------------------------------------------------------------

def compare_table(doc: dict) -> Table:
    t = _table(f"{doc['irps']} IRPs, memory model {doc['memory']}{seeds_note(doc)}")
    rows = [doc["observed"], *doc["policies"]]
    # The policy column folds a long examine rule but never shrinks below a short policy name.
    t.add_column("policy", overflow="fold", ratio=1,
                 min_width=min(10, max(len(r["policy"]) for r in rows)))
    # cancelled / invalid state come only from queue purges and stops: two columns of zeros
    # would push the policy names off an 80-column terminal, so one column "cancelled/invalid"
    # appears when some row has one.
    purges = any(r["cancelled"] or r["invalid_state"] for r in rows)
    for c in ("rescued", "still\nfailed", "regress", "parked", "wait\np50", "p99", "max",
              *(("cancl/\ninval",) if purges else ()), "high\nwater"):
        # Numbers never wrap: the policy column (a long examine rule) folds instead.
        t.add_column(c, justify="right", no_wrap=True)

    for row in rows:
        cells = _row_figures(row, ("rescued", "still_failed", "regressed", "parked",
                                   "park_wait_ns"),
                             {"rescued": "green", "still_failed": "red", "regressed": "red"})
        # Colour says which way a number cuts, so a zero stays plain; the console drops colour
        # off a terminal and with NO_COLOR.
        t.add_row(row["policy"], *cells,
                  *((f"{row['cancelled']}/{row['invalid_state']}",) if purges else ()),
                  *_row_figures(row, ("reserve_high_water",)))
    return t


# An address reused by more IRPs than this: the others go in one table, not a story each.
EXPLAIN_FULL = 5


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
        t = _table()
        t.add_column("arrived (UTC)", no_wrap=True)
        t.add_column("major")
        t.add_column("actual", no_wrap=True)
        for p in stories[0]["policies"]:
            t.add_column(p["policy"], overflow="fold", max_width=24)
        for s in stories[:20]:
            t.add_row(fmt_time(s["arrive_ns"])[11:],
                      major_name(s["major"]) if s["major"] is not None else "-", s["actual"],
                      *[Text(f"{p['outcome']} [{p['verdict']}]") for p in s["policies"]])
        if len(stories) > 20:
            t.caption = f"{len(stories) - 20} more (see --json)"
        _show(out, t)
    for s in told:
        out.print(f"IRP {fmt_irp(s['irp'])} arrived {fmt_time(s['arrive_ns'])} on "
                  f"{s['device'] or '-'} queue {s['queue'] or '(default)'}, "
                  f"{major_name(s['major']) if s['major'] is not None else '-'}"
                  f"{', paging' if s['paging'] else ''}", style="bold", markup=False)
        out.print(f"  actually: {s['actual']} (status {fmt_status(s['status'])}; evidence: "
                  f"{s['evidence'] or '-'})", markup=False)
        for p in s["policies"]:
            out.print(f"  {p['policy']}: {p['outcome']} [{p['verdict']}]: {p['story']}",
                      markup=False)


def render_compare(doc: dict, out: Console, args: str = "TRACE") -> None:
    a = doc["actual"]
    out.print(f"Actually, of {doc['irps']} IRPs: "
              + (", ".join(f"{k} {a[k]}" for k in ACTUAL_OUTCOMES if a[k]) or "-"),
              markup=False)
    _show(out, compare_table(doc))
    if doc.get("explain"):
        render_explain(doc["explain"], out)
        out.print()
    print_next(out, compare_summary(doc, args))


# --- sweep ------------------------------------------------------------------------------------

def over_seeds(doc: dict, key: str) -> str:
    """' (seeds: 3–6)' after a sweep answer whose seeds disagree; None is 'none' (not found)."""
    text = spread((doc.get("range") or {}).get(key),
                  lambda v: "none" if v is None else str(v))
    return f" (over the seeds: {text})" if text else ""


def render_sweep(doc: dict, out: Console, args: str = "TRACE") -> None:
    t = _table(f"Reserve size against outcome: {doc['kind']}, memory model {doc['memory']}"
               f"{seeds_note(doc)}")
    for c in ("reserved", "rescued", "still\nfailed", "regress", "parked", "wait\np50", "p99",
              "max", "high\nwater"):
        t.add_column(c, justify="right", no_wrap=True)
    for r in doc["rows"]:
        t.add_row(str(r["reserved"]), *_row_figures(r, (
            "rescued", "still_failed", "regressed", "parked", "park_wait_ns",
            "reserve_high_water")))
    _show(out, t)
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
        out.print("  alloc fail: IRPs whose request allocation failed, served from the reserve or "
                  "not; outst.: the most IRPs in the driver at once; per policy the most "
                  "reserved requests in use / the deepest parked list.", markup=False,
                  style="dim")
        t = _table("Timeline")
        t.add_column("from (UTC)", no_wrap=True)
        t.add_column("arrived", justify="right", no_wrap=True)
        t.add_column("alloc\nfail", justify="right", no_wrap=True)
        t.add_column("outst.", justify="right", no_wrap=True)
        for p in doc["policies"]:
            t.add_column(f"{p}\nresv/park", justify="right", overflow="fold", max_width=16)
        for b in i["timeline"]:
            t.add_row(fmt_time(b["start_ns"])[11:], str(b["arrived"]), str(b["failed"]),
                      str(b["outstanding"]),
                      *[f"{b['policies'][p]['reserved_in_use']}/{b['policies'][p]['parked']}"
                        for p in doc["policies"]])
        _show(out, t)
        _show(out, compare_table({"irps": i["irps"], "memory": doc["memory"],
                                  "seeds": doc.get("seeds"),
                                  "observed": i["observed"], "policies": i["policies"]}))
        if i["irp_list"]:
            t = _table(f"IRPs that decided it ({i['deciding_irps']})")
            t.add_column("IRP", no_wrap=True)
            t.add_column("arrived (UTC)", no_wrap=True)
            t.add_column("actual", no_wrap=True)
            for p in doc["policies"]:
                t.add_column(p, overflow="fold", max_width=18)
            for r in i["irp_list"][:20]:
                t.add_row(fmt_irp(r["irp"]), fmt_time(r["arrive_ns"])[11:], r["actual"],
                          *[f"{r['policies'][p]['outcome']}" for p in doc["policies"]])
            if i["deciding_irps"] > 20:
                t.caption = f"{i['deciding_irps'] - 20} more (see --json)"
            _show(out, t)
    print_next(out, next_incidents(doc, args))


# --- what to do next ---------------------------------------------------------------------------
# Each command ends on the command a user would run next, with their own inputs and options, so
# the answer to "so what now?" can be pasted. `args` is the inputs and options as typed.

def _policy_kind(policy: str) -> str | None:
    """`always:8` -> `always`, `examine:8:SQL` -> `examine:SQL`; `none` has no reserve to size."""
    parts = policy.split(":", 2)
    if parts[0] == "examine" and len(parts) == 3:
        return f"examine:{parts[2]}"
    return parts[0] if parts[0] in ("always", "paging") else None


def _kind_arg(kind: str) -> str:
    return "" if kind == "always" else f" --kind {shlex.quote(kind)}"


def _policy_arg(kind: str, n: int) -> str:
    if kind.startswith("examine:"):
        return shlex.quote(f"examine:{n}:{kind.split(':', 1)[1]}")
    return f"{kind}:{n}"


def next_analyze(doc: dict, args: str) -> str:
    a = doc["actual"]
    if not doc["irps"]:
        return (f"None of its {doc['records']} records is an IRP dispatch or completion. Capture "
                "the kernel's disk I/O and driver events (xperf -on "
                "PROC_THREAD+LOADER+DISK_IO+DISK_IO_INIT+DRIVERS) or your driver's own provider "
                "(read with --provider NAME).")
    failed = a["alloc_failed"] + a["refused"]
    if failed:
        return (f"Next: `fpreplay sweep {args} --budget 2ms` finds the smallest reserve that "
                f"would have served these {failed} IRPs; `fpreplay incidents {args}` tells each "
                "incident's story.")
    if a["reserved"]:
        return (f"Next: the reserve held ({a['reserved']} IRPs served from it). "
                f"`fpreplay sweep {args} --budget 2ms` shows how a bigger or smaller reserve "
                "changes parking.")
    if doc["incidents"]:
        return (f"Nothing failed for want of memory. `fpreplay incidents {args}` shows the "
                "incident's timeline.")
    return ("Nothing failed for want of memory. To see what a reserve would do in a low-memory "
            f"event anyway: `fpreplay sweep {args} --memory fail-all`.")


def best_policy(doc: dict) -> dict | None:
    """The policy a user would pick from a comparison: rescues most, regresses least, fails
    least, parks least, with the fewest reserved requests in use."""
    rows = [r for r in doc["policies"] if _policy_kind(r["policy"])]
    if not rows:
        return None
    return min(rows, key=lambda r: (-r["rescued"], r["regressed"], r["still_failed"],
                                    r["parked"], r["reserve_high_water"]))


def compare_summary(doc: dict, args: str, with_next: bool = True) -> str:
    """The policy to pick and, with_next, the sweep that sizes it (the report, which holds the
    sweep already, leaves that out)."""
    a = doc["actual"]
    failed = a["alloc_failed"] + a["refused"]
    best = best_policy(doc)
    if best is None:
        return "No policy with a reserve was compared; add e.g. --policy always:8."
    kind = _policy_kind(best["policy"])
    sweep = f"`fpreplay sweep {args}{_kind_arg(kind)} --budget 2ms`"
    clean = all(not r["regressed"] and not r["parked"] for r in doc["policies"])
    if not failed and not a["reserved"] and clean:
        if doc["memory"] != "observed":
            return (f"Under --memory {doc['memory']} every policy serves every IRP without "
                    "parking.")
        return ("Nothing failed for want of memory, so no policy had anything to rescue. To "
                "compare them in a low-memory event: add --memory fail-all.")
    if failed:
        head = (f"Best here: {best['policy']} rescues {best['rescued']} of {failed} failed "
                f"IRPs, regresses {best['regressed']}, parks {best['parked']}")
    else:   # nothing failed for real: what matters is what a policy breaks or delays
        head = (f"Best here: {best['policy']} regresses {best['regressed']}, parks "
                f"{best['parked']}")
    if best["still_failed"]:
        why = []
        if best["invalid_state"]:   # no reserve helps an IRP a purged or stopped queue refuses
            why.append(f"{best['invalid_state']} invalid state: the queue was purged or stopped")
        if kind == "paging":
            why.append("paging:N refuses what is not paging I/O: try --policy always:N")
        head += f", still fails {best['still_failed']}" + (f" ({'; '.join(why)})" if why else "")
    if best["parked"]:
        nxt = f" Next: {sweep} finds the smallest reserve whose park wait fits 2 ms."
    else:
        head += f", with at most {best['reserve_high_water']} reserved requests in use"
        nxt = f" Next: {sweep} confirms the smallest reserve that does as well."
    return head + "." + (nxt if with_next else "")


def next_sweep(doc: dict, args: str) -> str | None:
    kind = doc["kind"]
    if doc["peak_demand"] == 0 and doc["memory"] == "observed":
        return f"Next: `fpreplay sweep {args}{_kind_arg(kind)} --memory fail-all`."
    if doc["budget_ns"] is not None:
        n, why = (doc["min_reserved_within_budget"],
                  f"the smallest reserve whose p99 park wait fits "
                  f"{fmt_duration(doc['budget_ns'])}")
    else:
        n, why = doc["min_reserved_no_park"], "the smallest reserve at which nothing parks"
    if n is None:
        return (f"No reserve up to {doc['max_reserved']} does it. Next: "
                f"`fpreplay sweep {args}{_kind_arg(kind)} --max {2 * doc['max_reserved']}`.")
    row = next((r for r in doc["rows"] if r["reserved"] == n), None)
    tail = ""
    if row is not None and row["still_failed"] and kind == "paging":
        tail = (f" ({row['still_failed']} IRPs still fail: they are not paging I/O; "
                "`--kind always` sizes a reserve for them too)")
    return (f"Next: `fpreplay compare {args} --policy {_policy_arg(kind, n)}` replays {why}, "
            f"IRP by IRP (add -o per-irp.csv or --explain IRP){tail}.")


def next_incidents(doc: dict, args: str) -> str | None:
    """Point at the first deciding IRP some policy treats differently: its story is the one a
    support engineer retells."""
    for i in doc["incidents"]:
        for r in i["irp_list"]:
            for p in doc["policies"]:
                if r["policies"][p]["verdict"] in ("rescued", "regressed") and _policy_kind(p):
                    return (f"Next: `fpreplay compare {args} --policy {shlex.quote(p)} --explain "
                            f"{fmt_irp(r['irp'])}` tells how {p} treats the first IRP it "
                            "changes.")
    return None


def print_next(out: Console, text: str | None) -> None:
    if text:
        out.print(text, markup=False, style="bold")

